import os
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path:
    return Path(os.environ.get("SKXMC_SHARED_DIR", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's shared data folder (``<repo>/../shared``); skip if absent."""
    path = _shared_dir()
    if not (path / "data").is_dir():
        pytest.skip(f"shared data folder not found at {path}")
    return path


@pytest.fixture
def global_random_seed() -> int:
    """sklearn-style seed fixture; SKXMC_TESTS_SEED overrides the default 42."""
    return int(os.environ.get("SKXMC_TESTS_SEED", 42))


@pytest.fixture
def rng(global_random_seed) -> np.random.Generator:
    return np.random.default_rng(global_random_seed)


def pytest_collection_modifyitems(config, items):
    """Skip ``gpu``-marked tests when no CUDA device is present."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover - torch is a hard dependency
        has_cuda = False
    if has_cuda:
        return
    skip_gpu = pytest.mark.skip(reason="no CUDA device")
    for item in items:
        # the marker itself: item.keywords also holds the names of the parent
        # nodes, e.g. a checkout folder called "gpu"
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip_gpu)
