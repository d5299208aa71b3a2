"""Ranking metrics of extreme multi-label classification.

The definitions follow the Extreme Classification Repository's evaluation code
(pyxclib), so that numbers can be compared with its published tables:

- rows without any positive label count as 0 in every average;
- P@k divides by ``k`` even when fewer than ``k`` labels were retrieved;
- PSP@k and PSnDCG@k are *normalised*: the propensity-weighted quantity of the
  predictions, averaged over rows, divided by the same average for the ideal
  ranking (each row's true labels sorted by inverse propensity).

Every metric takes the scores in one of three forms and reduces them to one
top-k extraction (:func:`~skxmc.utils._sparse.csr_row_topk` and friends):
ties are broken by the lower label index in all three forms, so the forms give
identical results.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp

from skxmc.utils._sparse import (
    _canonical_csr,
    _check_k,
    _check_no_duplicates,
    _csr_entries_in,
    _csr_topk,
    _dense_topk,
    _entries_in,
)

__all__ = [
    "precision_at_k",
    "ndcg_at_k",
    "recall_at_k",
    "psp_at_k",
    "psndcg_at_k",
    "inverse_propensity",
    "coverage_at_k",
    "xmc_report",
]

# ------------------------------------------------------------ shared docstrings
_DOC = {
    "y_true": """y_true : {array-like, sparse matrix} of shape (n_samples, n_labels)
        True labels as a 0/1 indicator matrix (any scipy sparse format or a
        dense array). Label lists must be binarized first, e.g. with
        :class:`~sklearn.preprocessing.MultiLabelBinarizer`.""",
    "y_score": """y_score : sparse matrix, array-like or tuple of two arrays
        Predicted scores, in one of three forms:

        - a sparse matrix of shape (n_samples, n_labels): the stored entries
          are the retrieved labels and their scores (absent means "not
          retrieved"), as returned by the estimators' ``decision_function``;
        - a dense array of shape (n_samples, n_labels): every label is
          ranked;
        - a tuple ``(scores, indices)`` of two arrays of shape
          (n_samples, n_retrieved), as returned by ``predict_topk``; indices
          ``-1`` pad rows with fewer retrieved labels. The pair is re-ranked,
          so it need not be sorted.

        Labels are ranked by decreasing score, ties going to the lower label
        index. NaN scores are refused.""",
    "k": """k : int, default=5
        Rank cut-off.""",
    "filter": """filter : {array-like, sparse matrix} of shape (n_samples, \
n_labels), default=None
        (sample, label) pairs, given by the nonzero entries, to remove from
        both ``y_true`` and ``y_score`` before the top-k is taken: the
        reciprocal-pair protocol of the LF data sets of the Extreme
        Classification Repository. A filtered label never takes a top-k slot
        and never counts as a positive.""",
    "inv_propensity": """inv_propensity : array-like of shape (n_labels,)
        Inverse propensity of each label, from :func:`inverse_propensity` on
        the *training* label matrix. Must be finite and non-negative.""",
}


def _fill_doc(func):
    func.__doc__ = func.__doc__ % _DOC
    return func


# ------------------------------------------------------------------ validation
def _check_y_true(y_true, name: str = "y_true") -> sp.csr_matrix:
    """A fresh canonical CSR copy of a 0/1 indicator matrix."""
    if sp.issparse(y_true):
        if y_true.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got shape {y_true.shape}.")
        Y = _canonical_csr(y_true, copy=True)
    else:
        try:
            array = np.asarray(y_true)
        except ValueError as exc:  # ragged label lists
            raise ValueError(
                f"{name} must be a 0/1 indicator matrix (sparse or dense); "
                "binarize label lists first, e.g. with MultiLabelBinarizer."
            ) from exc
        if array.ndim != 2 or array.dtype.kind not in "biuf":
            raise ValueError(
                f"{name} must be a 2-D 0/1 indicator matrix (sparse or dense), got "
                f"an array of shape {array.shape} and dtype {array.dtype}; "
                "binarize label lists first, e.g. with MultiLabelBinarizer."
            )
        Y = sp.csr_matrix(array)
    Y.eliminate_zeros()
    if Y.nnz and not np.all(Y.data == 1):
        bad = Y.data[Y.data != 1][0]
        raise ValueError(
            f"{name} must be a 0/1 indicator matrix; found the value {bad!r}."
        )
    if Y.shape[0] == 0:
        raise ValueError(f"{name} has no rows; at least one sample is required.")
    return Y


def _check_filter(filter, shape: tuple[int, int]) -> sp.csr_matrix | None:
    if filter is None:
        return None
    F = filter if sp.issparse(filter) else np.asarray(filter)
    if F.ndim != 2 or F.shape != shape:
        raise ValueError(
            f"filter must have the shape of y_true {shape}, got {F.shape}."
        )
    F = _canonical_csr(F, copy=True)
    F.eliminate_zeros()
    F.indptr = F.indptr.astype(np.int64, copy=False)
    F.indices = F.indices.astype(np.int64, copy=False)
    return F


def _check_inv_propensity(inv_propensity, n_labels: int | None) -> np.ndarray:
    try:
        weights = np.asarray(inv_propensity, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError("inv_propensity must be an array of numbers.") from exc
    if weights.ndim != 1:
        raise ValueError(
            f"inv_propensity must be 1-D (one weight per label), got shape "
            f"{weights.shape}."
        )
    if n_labels is not None and weights.shape[0] != n_labels:
        raise ValueError(
            f"inv_propensity has {weights.shape[0]} entries but y_true has "
            f"{n_labels} labels."
        )
    if not np.all(np.isfinite(weights)):
        raise ValueError("inv_propensity contains NaN or infinite values.")
    if weights.size and weights.min() < 0:
        raise ValueError(
            f"inv_propensity must be non-negative; found {weights.min()!r}."
        )
    return weights


def _check_ks(k) -> tuple[int, ...]:
    ks = (k,) if isinstance(k, (Integral, np.integer)) else k
    if not isinstance(ks, Iterable):
        raise ValueError(f"k must be a positive integer or a sequence of them: {k!r}")
    ks = tuple(_check_k(value) for value in ks)
    if not ks:
        raise ValueError("k must name at least one cut-off.")
    return ks


def _topk_of_scores(
    y_score, k: int, n_rows: int | None, n_labels: int | None, skip
) -> tuple[np.ndarray, np.ndarray]:
    """Validate y_score in any of its three forms and return its row top-k.

    ``n_rows`` and ``n_labels`` give the expected shape (None: not checked).
    """
    if isinstance(y_score, tuple):
        return _topk_of_pair(y_score, k, n_rows, n_labels, skip)
    if sp.issparse(y_score):
        if y_score.ndim != 2:
            raise ValueError(f"y_score must be 2-D, got shape {y_score.shape}.")
        _check_score_shape(y_score.shape, n_rows, n_labels)
        S = _canonical_csr(y_score)
        if S.data.dtype.kind not in "biuf":
            raise ValueError(f"y_score must hold numbers, got dtype {S.dtype}.")
        if S.nnz and S.data.dtype.kind == "f" and np.isnan(S.data).any():
            raise ValueError("y_score contains NaN scores.")
        return _csr_topk(S.data, S.indices, S.indptr, k, skip)
    array = np.asarray(y_score)
    if array.ndim != 2 or array.dtype.kind not in "biuf":
        raise ValueError(
            "y_score must be a sparse matrix, a 2-D numeric array or a "
            f"(scores, indices) tuple; got an array of shape {array.shape} and "
            f"dtype {array.dtype}."
        )
    _check_score_shape(array.shape, n_rows, n_labels)
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise ValueError("y_score contains NaN scores.")
    return _dense_topk(array, k, skip)


def _check_score_shape(shape, n_rows: int | None, n_labels: int | None) -> None:
    expected = (
        shape[0] if n_rows is None else n_rows,
        shape[1] if n_labels is None else n_labels,
    )
    if tuple(shape) != expected:
        raise ValueError(
            f"y_score has shape {tuple(shape)} but y_true has shape {expected}."
        )


def _topk_of_pair(pair, k, n_rows, n_labels, skip):
    if len(pair) != 2:
        raise ValueError(
            "A tuple y_score must be a (scores, indices) pair, got a tuple of "
            f"length {len(pair)}."
        )
    scores, indices = np.asarray(pair[0]), np.asarray(pair[1])
    if scores.ndim != 2 or scores.shape != indices.shape:
        raise ValueError(
            "The (scores, indices) pair must hold two 2-D arrays of the same "
            f"shape, got {scores.shape} and {indices.shape}."
        )
    if n_rows is not None and scores.shape[0] != n_rows:
        raise ValueError(
            f"The (scores, indices) pair has {scores.shape[0]} rows but y_true has "
            f"{n_rows}."
        )
    if indices.dtype.kind not in "iu":
        raise ValueError(f"indices must be integers, got dtype {indices.dtype}.")
    if scores.dtype.kind not in "biuf":
        raise ValueError(f"scores must be numbers, got dtype {scores.dtype}.")
    indices = indices.astype(np.int64, copy=False)
    if indices.size:
        low, high = indices.min(), indices.max()
        if low < -1 or (n_labels is not None and high >= n_labels):
            bound = "" if n_labels is None else f" and below n_labels={n_labels}"
            raise ValueError(
                f"indices must be -1 (padding) or non-negative{bound}; found "
                f"{low if low < -1 else high}."
            )
        # NaN is allowed in padding slots only (a full isnan pass first: cheap)
        if scores.dtype.kind == "f" and np.isnan(scores).any():
            if np.isnan(scores[indices >= 0]).any():
                raise ValueError("y_score contains NaN scores.")
    _check_no_duplicates(indices, n_labels)
    width = indices.shape[1]
    indptr = np.arange(scores.shape[0] + 1, dtype=np.int64) * width
    return _csr_topk(scores.ravel(), indices.ravel(), indptr, k, skip)


# --------------------------------------------------------------------- ranking
@dataclass
class _Ranking:
    """What every metric needs, from a single top-k extraction."""

    indices: np.ndarray  # (n, K) int64, best first, -1 padded
    hits: np.ndarray  # (n, K) bool: indices[i, j] is a true label of row i
    y_true: sp.csr_matrix  # canonical, filtered
    n_pos: np.ndarray  # (n,) positives per row, after filtering
    scores: np.ndarray  # (n, K) scores of ``indices``


def _rank(y_true, y_score, k: int, filter) -> _Ranking:
    Y = _check_y_true(y_true)
    F = _check_filter(filter, Y.shape)
    skip = None
    if F is not None:
        Y.data[_entries_in(Y, F)] = 0
        Y.eliminate_zeros()
        skip = (F.indptr, F.indices)
    scores, indices = _topk_of_scores(y_score, k, Y.shape[0], Y.shape[1], skip)
    n, width = indices.shape
    hits = np.empty(n * width, dtype=np.bool_)
    # the top-k indices, read as a CSR pattern with `width` entries per row
    topk_indptr = np.arange(n + 1, dtype=np.int64) * width
    _csr_entries_in(topk_indptr, indices.ravel(), Y.indptr, Y.indices, hits)
    hits = hits.reshape(n, width)
    return _Ranking(indices, hits, Y, np.diff(Y.indptr), scores)


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def _dcg_norm(n_pos: np.ndarray, k: int) -> np.ndarray:
    """Ideal DCG of a row with ``n_pos`` positives: sum of the first
    ``min(k, n_pos)`` discounts (0 for rows without positives)."""
    cumulative = np.concatenate([[0.0], np.cumsum(_discounts(k))])
    return cumulative[np.minimum(n_pos, k)]


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Row-wise numerator / denominator, 0 where the denominator is 0."""
    out = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _score(value) -> float:
    """A Python float clipped to [0, 1] (only rounding can push it outside)."""
    return float(min(max(value, 0.0), 1.0))


def _precision(r: _Ranking, k: int) -> float:
    return r.hits[:, :k].sum() / (k * r.hits.shape[0])


def _recall(r: _Ranking, k: int) -> float:
    return _safe_ratio(r.hits[:, :k].sum(axis=1), r.n_pos).mean()


def _ndcg(r: _Ranking, k: int) -> float:
    dcg = r.hits[:, :k] @ _discounts(k)
    return _safe_ratio(dcg, _dcg_norm(r.n_pos, k)).mean()


def _ps_gains(r: _Ranking, inv_p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Propensity-weighted gains of the ranking and of the ideal ranking."""
    width = r.indices.shape[1]
    gains = np.where(r.hits, inv_p[np.maximum(r.indices, 0)], 0.0)
    Y = r.y_true
    _, ideal = _csr_topk(inv_p[Y.indices], Y.indices, Y.indptr, width)
    ideal_gains = np.where(ideal >= 0, inv_p[np.maximum(ideal, 0)], 0.0)
    return gains, ideal_gains


def _psp(gains: np.ndarray, ideal: np.ndarray, k: int) -> float:
    # the 1 / (k n) of both averages cancels
    denominator = ideal[:, :k].sum()
    return gains[:, :k].sum() / denominator if denominator > 0 else 0.0


def _psndcg(gains, ideal, n_pos, k: int) -> float:
    norm = _dcg_norm(n_pos, k)
    numerator = _safe_ratio(gains[:, :k] @ _discounts(k), norm).sum()
    denominator = _safe_ratio(ideal[:, :k] @ _discounts(k), norm).sum()
    return numerator / denominator if denominator > 0 else 0.0


# ---------------------------------------------------------------------- public
@_fill_doc
def precision_at_k(y_true, y_score, *, k=5, filter=None):
    """Precision at k: the fraction of the top ``k`` labels that are true.

    ``P@k = mean_i |top_k(i) ∩ y_i| / k``, averaged over all rows (rows without
    positives count as 0, and the division is by ``k`` even when fewer than
    ``k`` labels were retrieved).

    Parameters
    ----------
    %(y_true)s
    %(y_score)s
    %(k)s
    %(filter)s

    Returns
    -------
    score : float
        Precision at ``k``, in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.metrics import precision_at_k
    >>> y_true = np.array([[1, 0, 1, 0], [0, 1, 0, 0]])
    >>> y_score = np.array([[0.9, 0.8, 0.1, 0.0], [0.2, 0.1, 0.7, 0.0]])
    >>> precision_at_k(y_true, y_score, k=2)  # (1/2 + 0/2) / 2
    0.25
    """
    k = _check_k(k)
    return _score(_precision(_rank(y_true, y_score, k, filter), k))


@_fill_doc
def recall_at_k(y_true, y_score, *, k=5, filter=None):
    """Recall at k: the fraction of each row's true labels in its top ``k``.

    ``R@k = mean_i |top_k(i) ∩ y_i| / |y_i|``; rows without positives count
    as 0.

    Parameters
    ----------
    %(y_true)s
    %(y_score)s
    %(k)s
    %(filter)s

    Returns
    -------
    score : float
        Recall at ``k``, in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.metrics import recall_at_k
    >>> y_true = np.array([[1, 0, 1, 0], [0, 1, 0, 0]])
    >>> y_score = np.array([[0.9, 0.8, 0.1, 0.0], [0.2, 0.1, 0.7, 0.0]])
    >>> recall_at_k(y_true, y_score, k=2)  # (1/2 + 0/1) / 2
    0.25
    """
    k = _check_k(k)
    return _score(_recall(_rank(y_true, y_score, k, filter), k))


@_fill_doc
def ndcg_at_k(y_true, y_score, *, k=5, filter=None):
    """Normalised discounted cumulative gain at k.

    ``DCG@k(i) = sum_{r=1..k} y_i[top_r(i)] / log2(r + 1)``, divided by the
    best value a row with ``|y_i|`` positives can reach,
    ``sum_{r=1..min(k, |y_i|)} 1 / log2(r + 1)``, then averaged over rows
    (rows without positives count as 0).

    Parameters
    ----------
    %(y_true)s
    %(y_score)s
    %(k)s
    %(filter)s

    Returns
    -------
    score : float
        Normalised DCG at ``k``, in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.metrics import ndcg_at_k
    >>> y_true = np.array([[0, 1, 1]])
    >>> y_score = np.array([[0.9, 0.8, 0.1]])
    >>> # DCG = 1/log2(3) = 0.6309; ideal = 1 + 1/log2(3) = 1.6309
    >>> round(ndcg_at_k(y_true, y_score, k=2), 4)
    0.3869
    """
    k = _check_k(k)
    return _score(_ndcg(_rank(y_true, y_score, k, filter), k))


@_fill_doc
def psp_at_k(y_true, y_score, inv_propensity, *, k=5, filter=None):
    """Propensity-scored precision at k, normalised as in pyxclib.

    Each hit in the top ``k`` is weighted by its label's inverse propensity
    (rare labels weigh more): ``PSP@k = sum_i sum_{l in top_k(i) ∩ y_i} w_l``
    divided by the same sum for the ideal ranking, where each row's true
    labels are sorted by decreasing ``w`` (its ``k`` heaviest true labels).
    This is a ratio of averages over rows, as in pyxclib and napkinXC's
    ``normalize=True``; rows without positives add 0 to both sums, and the
    result is 0 when no row has a positive of nonzero weight.

    Parameters
    ----------
    %(y_true)s
    %(y_score)s
    %(inv_propensity)s
    %(k)s
    %(filter)s

    Returns
    -------
    score : float
        Normalised PSP at ``k``, in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.metrics import psp_at_k
    >>> y_true = np.array([[1, 1, 0]])
    >>> y_score = np.array([[0.9, 0.1, 0.5]])
    >>> inv_p = np.array([1.0, 3.0, 2.0])
    >>> psp_at_k(y_true, y_score, inv_p, k=1)  # hit label 0 (1.0) / ideal 3.0
    0.333...
    """
    k = _check_k(k)
    r = _rank(y_true, y_score, k, filter)
    inv_p = _check_inv_propensity(inv_propensity, r.y_true.shape[1])
    return _score(_psp(*_ps_gains(r, inv_p), k))


@_fill_doc
def psndcg_at_k(y_true, y_score, inv_propensity, *, k=5, filter=None):
    """Propensity-scored nDCG at k, normalised as in pyxclib.

    Each row's propensity-weighted DCG, ``sum_{r=1..k} w[top_r(i)]
    y_i[top_r(i)] / log2(r + 1)``, is divided by the row's count-based ideal
    DCG ``sum_{r=1..min(k, |y_i|)} 1 / log2(r + 1)`` (as in :func:`ndcg_at_k`)
    and averaged over rows; the result is divided by the same average for the
    ideal ranking (true labels sorted by decreasing ``w``). Rows without
    positives add 0 to both averages.

    Parameters
    ----------
    %(y_true)s
    %(y_score)s
    %(inv_propensity)s
    %(k)s
    %(filter)s

    Returns
    -------
    score : float
        Normalised PSnDCG at ``k``, in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.metrics import psndcg_at_k
    >>> y_true = np.array([[1, 1, 0]])
    >>> y_score = np.array([[0.9, 0.5, 0.1]])
    >>> inv_p = np.array([1.0, 3.0, 2.0])
    >>> # (1 + 3/log2(3)) / (3 + 1/log2(3)) = 2.8928 / 3.6309
    >>> round(psndcg_at_k(y_true, y_score, inv_p, k=2), 4)
    0.7967
    """
    k = _check_k(k)
    r = _rank(y_true, y_score, k, filter)
    inv_p = _check_inv_propensity(inv_propensity, r.y_true.shape[1])
    return _score(_psndcg(*_ps_gains(r, inv_p), r.n_pos, k))


def inverse_propensity(Y_train, A=0.55, B=1.5):
    """Inverse label propensities of Jain et al. (2016), from training labels.

    ``w_l = 1 + C (n_l + B)^(-A)`` with ``C = (ln N - 1) (B + 1)^A``, where
    ``N`` is the number of training rows and ``n_l`` the number of them
    tagged with label ``l``. The Extreme Classification Repository uses
    ``A=0.6, B=2.6`` for Amazon data sets, ``A=0.5, B=0.4`` for Wikipedia
    ones and the defaults otherwise.

    Parameters
    ----------
    Y_train : {array-like, sparse matrix} of shape (n_samples, n_labels)
        Training label indicator matrix (all of it: labels absent from a
        split still need a weight).
    A : float, default=0.55
        Exponent, non-negative.
    B : float, default=1.5
        Offset added to the label counts, positive.

    Returns
    -------
    inv_propensity : ndarray of shape (n_labels,), dtype float64
        Weights of at least 1 (the formula needs ``N >= 3`` for that).

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.metrics import inverse_propensity
    >>> Y = np.array([[1, 0], [1, 0], [1, 1], [1, 0]])
    >>> inverse_propensity(Y, A=0.5, B=1.0).round(4)  # C = (ln 4 - 1) sqrt(2)
    array([1.2443, 1.3863])
    """
    for name, value in (("A", A), ("B", B)):
        if isinstance(value, bool) or not isinstance(value, Real):
            raise ValueError(f"{name} must be a real number, got {value!r}.")
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}.")
    if A < 0:
        raise ValueError(f"A must be non-negative, got {A!r}.")
    if B <= 0:
        raise ValueError(f"B must be positive, got {B!r}.")
    Y = _check_y_true(Y_train, name="Y_train")
    n_samples = Y.shape[0]
    if n_samples < 3:
        raise ValueError(
            f"inverse_propensity needs at least 3 training rows, got {n_samples}: "
            "below e, the formula's (ln N - 1) turns negative."
        )
    counts = np.bincount(Y.indices, minlength=Y.shape[1])
    return _jain_inverse_propensity(counts, n_samples, A, B)


def _jain_inverse_propensity(counts, n_samples: int, A=0.55, B=1.5) -> np.ndarray:
    """``1 + C (n_l + B)^(-A)`` of label counts (see inverse_propensity)."""
    C = (np.log(n_samples) - 1.0) * (B + 1.0) ** A
    return 1.0 + C * (np.asarray(counts, dtype=np.float64) + B) ** (-A)


def coverage_at_k(y_score, threshold, k=1):
    """Fraction of rows whose ``k``-th best retrieved score exceeds ``threshold``.

    A row passes when it retrieved at least ``k`` labels and its ``k``-th
    best score is strictly greater than ``threshold``, i.e. when the
    estimators' ``predict`` (which keeps the labels scoring above
    ``threshold``, with ``top_k >= k``) returns at least ``k`` labels for it.
    ``k=1`` gives the fraction of rows that get any label at all. Rows that
    retrieved fewer than ``k`` labels never pass, whatever the threshold.

    Parameters
    ----------
    y_score : sparse matrix, array-like or tuple of two arrays
        Scores as a sparse matrix (stored entries are the retrieved labels),
        a dense array, or a ``(scores, indices)`` pair with ``-1`` padding.
    threshold : float
        Decision threshold.
    k : int, default=1
        Rank of the score compared with the threshold.

    Returns
    -------
    coverage : float
        Fraction of rows passing, in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.metrics import coverage_at_k
    >>> scores = np.array([[0.9, 0.6], [0.4, -np.inf], [0.8, 0.2]])
    >>> indices = np.array([[3, 1], [0, -1], [2, 5]])
    >>> coverage_at_k((scores, indices), 0.5, k=1)  # rows 0 and 2
    0.666...
    >>> coverage_at_k((scores, indices), 0.5, k=2)  # row 0 only
    0.333...
    """
    k = _check_k(k)
    if isinstance(threshold, bool) or not isinstance(threshold, Real):
        raise ValueError(f"threshold must be a real number, got {threshold!r}.")
    if np.isnan(threshold):
        raise ValueError("threshold must not be NaN.")
    scores, indices = _topk_of_scores(y_score, k, None, None, None)
    if scores.shape[0] == 0:
        raise ValueError("y_score has no rows; at least one sample is required.")
    passed = (indices[:, k - 1] >= 0) & (scores[:, k - 1] > threshold)
    return _score(passed.mean())


@_fill_doc
def xmc_report(y_true, y_score, *, k=(1, 3, 5), inv_propensity=None, filter=None):
    """P@k, nDCG@k, PSP@k, PSnDCG@k and R@k from a single top-k extraction.

    The scores are ranked once, at the largest cut-off, and every metric is
    read off that ranking: much cheaper than calling each metric in turn.

    Parameters
    ----------
    %(y_true)s
    %(y_score)s
    k : int or sequence of int, default=(1, 3, 5)
        Rank cut-offs.
    inv_propensity : array-like of shape (n_labels,), default=None
        Inverse propensities from :func:`inverse_propensity` on the training
        labels; PSP@k and PSnDCG@k are reported only when given.
    %(filter)s

    Returns
    -------
    report : dict of str to float
        Keys ``"P@k"``, ``"nDCG@k"``, ``"PSP@k"``, ``"PSnDCG@k"`` (with
        ``inv_propensity``) and ``"R@k"`` for each cut-off, in that order;
        the same values as the individual metric functions.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.metrics import xmc_report
    >>> y_true = np.array([[1, 0, 1, 0], [0, 1, 0, 0]])
    >>> y_score = np.array([[0.9, 0.8, 0.1, 0.0], [0.2, 0.1, 0.7, 0.0]])
    >>> xmc_report(y_true, y_score, k=(1, 2))
    {'P@1': 0.5, 'P@2': 0.25, 'nDCG@1': 0.5, 'nDCG@2': 0.3065..., 'R@1': 0.25,
     'R@2': 0.25}
    """
    ks = _check_ks(k)
    r = _rank(y_true, y_score, max(ks), filter)
    report = {f"P@{c}": _score(_precision(r, c)) for c in ks}
    report.update({f"nDCG@{c}": _score(_ndcg(r, c)) for c in ks})
    if inv_propensity is not None:
        inv_p = _check_inv_propensity(inv_propensity, r.y_true.shape[1])
        gains, ideal = _ps_gains(r, inv_p)
        report.update({f"PSP@{c}": _score(_psp(gains, ideal, c)) for c in ks})
        report.update(
            {f"PSnDCG@{c}": _score(_psndcg(gains, ideal, r.n_pos, c)) for c in ks}
        )
    report.update({f"R@{c}": _score(_recall(r, c)) for c in ks})
    return report
