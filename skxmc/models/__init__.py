"""The engines behind the torch estimators: plain objects, not estimators.

Each facade (``skxmc.XRTransformerClassifier``, ...) validates its parameters
and assembles its engine; the engine trains (``train``) and predicts
(``predict_topk``) on plain arrays, with an int seed, a device and an optional
:class:`~skxmc.training.CheckpointStore`.
"""

from skxmc.models._xr_transformer import (
    MatcherParams,
    RankerParams,
    TreeParams,
    XRTransformerModel,
)

__all__ = ["MatcherParams", "RankerParams", "TreeParams", "XRTransformerModel"]
