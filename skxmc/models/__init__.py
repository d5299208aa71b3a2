"""The engines behind the torch estimators: plain objects, no sklearn API.

Each engine is built from :mod:`skxmc.nn` modules, the
:mod:`skxmc.training` machinery (one Trainer, one checkpoint store) and
:mod:`skxmc.indexing` components; the estimators in :mod:`skxmc` validate
their parameters and assemble it.
"""

from skxmc.models._decaf import DecafConfig, DecafModel, DecafScoring
from skxmc.models._label_graph import LabelGraphComponent

__all__ = ["DecafConfig", "DecafModel", "DecafScoring", "LabelGraphComponent"]
