"""skxmc: deep extreme multi-label classification with a scikit-learn API."""

from skxmc._label_info import LabelInfo
from skxmc._persistence import load, save
from skxmc._pipeline import XMCPipeline, make_xmc_pipeline
from skxmc._thresholds import TunedThresholdXMC
from skxmc._xr_linear import XRLinearClassifier

__version__ = "0.1.0.dev0"

# The deep estimators need torch and transformers (the ``skxmc[deep]`` extra):
# they are imported on first access (PEP 562), so ``import skxmc`` and
# XR-Linear work without them, and fitting one without torch raises a
# ModuleNotFoundError that says what to install (skxmc.utils._deps).
_LAZY = {
    "DecafClassifier": "skxmc._decaf",
    "DualEncoderClassifier": "skxmc._dual_encoder",
    "EclareClassifier": "skxmc._eclare",
    "EliasClassifier": "skxmc._elias",
    "XRTransformerClassifier": "skxmc._xr_transformer",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skxmc' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "XRLinearClassifier",
    "XRTransformerClassifier",
    "DecafClassifier",
    "EclareClassifier",
    "EliasClassifier",
    "DualEncoderClassifier",
    "LabelInfo",
    "TunedThresholdXMC",
    "XMCPipeline",
    "make_xmc_pipeline",
    "save",
    "load",
    "__version__",
]
