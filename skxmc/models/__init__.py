"""The engines of the torch estimators: plain objects, no scikit-learn base class.

Each estimator of :mod:`skxmc` validates its parameters and data and assembles
its engine; the engine builds its network (:mod:`skxmc.nn`), trains it through
the one :class:`~skxmc.training.Trainer` with an optional
:class:`~skxmc.training.CheckpointStore`, uses :mod:`skxmc.indexing`
components, and predicts (``predict_topk``) from plain arrays, with an int seed
and a device.
"""

from skxmc.utils._deps import require_deep

require_deep("skxmc.models (the deep estimators' engines)")

from skxmc.models._calibration import CALIBRATION_METHODS, ScoreCalibrator
from skxmc.models._decaf import DecafConfig, DecafModel, DecafScoring
from skxmc.models._dual_encoder import DualEncoderConfig, DualEncoderModel
from skxmc.models._elias import EliasConfig, EliasModel
from skxmc.models._encoder_component import EncoderComponent
from skxmc.models._label_graph import LabelGraphComponent
from skxmc.models._xr_transformer import (
    MatcherParams,
    RankerParams,
    TreeParams,
    XRTransformerModel,
)

__all__ = [
    "CALIBRATION_METHODS",
    "ScoreCalibrator",
    "DecafConfig",
    "DecafModel",
    "DecafScoring",
    "DualEncoderConfig",
    "DualEncoderModel",
    "EliasConfig",
    "EliasModel",
    "EncoderComponent",
    "LabelGraphComponent",
    "MatcherParams",
    "RankerParams",
    "TreeParams",
    "XRTransformerModel",
]
