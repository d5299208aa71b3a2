"""skxmc: deep extreme multi-label classification with a scikit-learn API."""

from skxmc._decaf import DecafClassifier
from skxmc._dual_encoder import DualEncoderClassifier
from skxmc._eclare import EclareClassifier
from skxmc._elias import EliasClassifier
from skxmc._label_info import LabelInfo
from skxmc._persistence import load, save
from skxmc._pipeline import XMCPipeline, make_xmc_pipeline
from skxmc._thresholds import TunedThresholdXMC
from skxmc._xr_linear import XRLinearClassifier
from skxmc._xr_transformer import XRTransformerClassifier

__version__ = "0.1.0.dev0"

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
