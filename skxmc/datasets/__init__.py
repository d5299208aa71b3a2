"""Data set loaders and generators for extreme multi-label classification."""

from skxmc.datasets._sample import load_debian_packages_sample
from skxmc.datasets._synthetic import make_xmc_classification
from skxmc.datasets._xc_files import (
    dump_xc_file,
    dump_xc_matrix,
    load_xc_file,
    load_xc_matrix,
)
from skxmc.datasets._xmc_repo import load_xc_repo

__all__ = [
    "load_xc_repo",
    "load_xc_file",
    "load_xc_matrix",
    "dump_xc_file",
    "dump_xc_matrix",
    "load_debian_packages_sample",
    "make_xmc_classification",
]
