"""skxmc: deep extreme multi-label classification with a scikit-learn API."""

from skxmc._label_info import LabelInfo

__version__ = "0.1.0.dev0"

__all__ = ["LabelInfo", "__version__"]
