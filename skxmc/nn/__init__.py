"""torch modules of the deep estimators: encoders, label classifiers, losses.

Modules only (``forward``); data loading, devices and training loops live in
:mod:`skxmc.training`.
"""

from skxmc.utils._deps import require_deep

require_deep("skxmc.nn")

from skxmc.nn._dual_encoder import (
    DUAL_ENCODER_LOSSES,
    DualEncoderLoss,
    DualEncoderNetwork,
    PairClassifier,
    pair_features,
)
from skxmc.nn._encoders import BagOfWordsEncoder, ResidualBlock, SpectralNormLinear
from skxmc.nn._heads import (
    DecafNetwork,
    LabelEmbeddingClassifier,
    LabelTextClassifier,
    gather_rows,
    score_pairs,
)
from skxmc.nn._losses import (
    hardest_negatives,
    in_batch_softmax_loss,
    query_label_loss,
    shortlist_bce_loss,
    tcm_loss,
    triplet_loss,
)
from skxmc.nn._text_encoder import StateCache, TextEncoder, static_term_embeddings

__all__ = [
    "DUAL_ENCODER_LOSSES",
    "DualEncoderLoss",
    "DualEncoderNetwork",
    "PairClassifier",
    "hardest_negatives",
    "in_batch_softmax_loss",
    "pair_features",
    "query_label_loss",
    "tcm_loss",
    "triplet_loss",
    "BagOfWordsEncoder",
    "DecafNetwork",
    "LabelEmbeddingClassifier",
    "LabelTextClassifier",
    "ResidualBlock",
    "SpectralNormLinear",
    "StateCache",
    "TextEncoder",
    "gather_rows",
    "score_pairs",
    "shortlist_bce_loss",
    "static_term_embeddings",
]
