"""torch modules of the deep estimators: encoders, label classifiers, losses.

Modules only (``forward``); data loading, devices and training loops live in
:mod:`skxmc.training`.
"""

from skxmc.nn._encoders import BagOfWordsEncoder, ResidualBlock, SpectralNormLinear
from skxmc.nn._heads import (
    DecafNetwork,
    LabelTextClassifier,
    gather_rows,
    score_pairs,
)
from skxmc.nn._losses import shortlist_bce_loss
from skxmc.nn._text_encoder import StateCache, TextEncoder

__all__ = [
    "BagOfWordsEncoder",
    "DecafNetwork",
    "LabelTextClassifier",
    "ResidualBlock",
    "SpectralNormLinear",
    "StateCache",
    "TextEncoder",
    "gather_rows",
    "score_pairs",
    "shortlist_bce_loss",
]
