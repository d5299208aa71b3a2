"""Sphinx configuration for skxmc."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import skxmc

project = "skxmc"
copyright = "2026, the skxmc developers"
version = release = skxmc.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

html_theme = "pydata_sphinx_theme"
html_title = f"skxmc {release}"
html_static_path = []

intersphinx_mapping = {}  # no network at build time: keep the build offline

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "abort_on_example_error": True,
    "reset_modules": (),
    "remove_config_comments": True,
}

# Examples print tables; keep their runtime small on CI machines.
os.environ.setdefault("SKXMC_DOCS_BUILD", "1")
