"""torch modules of the deep estimators: encoders, label classifiers, losses.

Modules only (``forward``); data loading, devices and training loops live in
:mod:`skxmc.training`.
"""

from skxmc.utils._deps import require_deep

require_deep("skxmc.nn")

from skxmc.nn._encoders import BagOfWordsEncoder, ResidualBlock, SpectralNormLinear
from skxmc.nn._heads import (
    DecafNetwork,
    LabelTextClassifier,
    gather_rows,
    score_pairs,
)
from skxmc.nn._losses import shortlist_bce_loss

__all__ = [
    "BagOfWordsEncoder",
    "DecafNetwork",
    "LabelTextClassifier",
    "ResidualBlock",
    "SpectralNormLinear",
    "gather_rows",
    "score_pairs",
    "shortlist_bce_loss",
]
