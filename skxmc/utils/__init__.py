"""Utilities shared by skxmc's estimators, engines and tests.

Public: the vectorised row-wise top-k helpers that turn score matrices into the
``(scores, indices)`` pairs every estimator and metric uses, and back, and
:func:`labels_to_classes`, which turns the label indices of ``predict_topk``
into label names without misreading the ``-1`` padding, and
:func:`dask_predict_topk`, batch prediction over the row blocks of a Dask
array (needs the ``dask`` extra), and :func:`fit_stable_vocabulary`, a
text vectorizer's fit whose ``max_features`` cut keeps the same terms on
every machine.
"""

from skxmc.utils._dask import dask_predict_topk
from skxmc.utils._labels import labels_to_classes
from skxmc.utils._sparse import (
    csr_row_topk,
    dense_row_topk,
    sparse_pair_scores,
    topk_to_csr,
)
from skxmc.utils._text import fit_stable_vocabulary

__all__ = [
    "csr_row_topk",
    "dask_predict_topk",
    "dense_row_topk",
    "fit_stable_vocabulary",
    "labels_to_classes",
    "sparse_pair_scores",
    "topk_to_csr",
]
