"""The engines of the torch estimators: plain objects, no scikit-learn base class.

Each engine assembles its network (:mod:`skxmc.nn`), trains it through the
one :class:`~skxmc.training.Trainer` with an optional
:class:`~skxmc.training.CheckpointStore`, and predicts from plain arrays; the
estimators of :mod:`skxmc` validate parameters and data and assemble them.
"""

from skxmc.models._elias import EliasConfig, EliasModel

__all__ = ["EliasConfig", "EliasModel"]
