"""Utilities shared by skxmc's estimators, engines and tests.

Public: the vectorised row-wise top-k helpers that turn score matrices into the
``(scores, indices)`` pairs every estimator and metric uses, and back.
"""

from skxmc.utils._sparse import (
    csr_row_topk,
    dense_row_topk,
    sparse_pair_scores,
    topk_to_csr,
)

__all__ = ["csr_row_topk", "dense_row_topk", "sparse_pair_scores", "topk_to_csr"]
