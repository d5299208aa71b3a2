"""Coverage at a target precision and threshold consistency (OPIS).

A production system accepts a prediction automatically when its score passes
a threshold ``tau``; the other rows go to a person. *Coverage* is the share of
rows accepted. Decisions recorded in ``../shared/ALC.md``:

- a row (or a (row, label) entry) is accepted when its score is **strictly
  above** ``tau``, as in the estimators' ``predict`` and
  :func:`~skxmc.metrics.coverage_at_k`;
- :func:`precision_threshold` picks, on validation rows, the threshold that
  accepts the most entries while the precision of the accepted ones reaches
  the target: for each distinct score ``v`` (descending) the candidate set is
  every entry scoring ``>= v``; the lowest ``v`` whose set reaches the target
  wins, and ``tau`` is the largest float below ``v``, so that ``score > tau``
  accepts exactly that set. ``+inf`` when no set reaches the target.
- with a ``confidence`` level, a set reaches the target when the one-sided
  Clopper-Pearson lower bound of its precision does (the accepted entries
  taken as Bernoulli draws): a threshold chosen so keeps the precision of new
  rows at the target with that probability, instead of about half the time.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from skxmc.metrics._ranking import _check_y_true, _fill_doc, _rank
from skxmc.utils._sparse import _check_k

__all__ = [
    "CoverageResult",
    "coverage_at_precision",
    "opis",
    "precision_lower_bound",
    "precision_threshold",
]


class CoverageResult(NamedTuple):
    """What :func:`coverage_at_precision` returns.

    Parameters
    ----------
    coverage : float
        Share of rows whose top-1 score passes the threshold.
    precision : float
        Share of those rows whose top-1 label is right (NaN when no row passes).
    threshold : float
        The threshold used (``score > threshold`` passes).
    """

    coverage: float
    precision: float
    threshold: float


def _check_target(target_precision) -> float:
    if (
        isinstance(target_precision, bool)
        or not isinstance(target_precision, Real)
        or not 0 < target_precision <= 1
    ):
        raise ValueError(
            f"target_precision must be a number in (0, 1], got {target_precision!r}."
        )
    return float(target_precision)


def _entries(y_true, y_score, k: int, filter):
    """Scores and hits of each row's top ``k`` retrieved labels (flattened),
    and the number of rows; unretrieved slots are dropped."""
    ranking = _rank(y_true, y_score, k, filter)
    valid = ranking.indices >= 0
    return ranking.scores[valid], ranking.hits[valid], ranking.indices.shape[0]


def _check_confidence(confidence) -> float | None:
    if confidence is None:
        return None
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, Real)
        or not 0 < confidence < 1
    ):
        raise ValueError(
            f"confidence must be None or a number in (0, 1), got {confidence!r}."
        )
    return float(confidence)


def precision_lower_bound(n_hits, n_accepted, confidence):
    """One-sided Clopper-Pearson lower bound of a precision ``n_hits / n_accepted``.

    The largest ``p`` with ``P(Binomial(n_accepted, p) >= n_hits) <=
    1 - confidence``: the true precision is at least this with probability
    ``confidence`` (exact, conservative). 0 when ``n_hits`` is 0.

    Parameters
    ----------
    n_hits : array-like of int
        Right entries among the accepted ones.
    n_accepted : array-like of int
        Accepted entries (at least 1).
    confidence : float
        Confidence level, in (0, 1).

    Returns
    -------
    bound : ndarray of float
        The lower bounds, elementwise.

    Examples
    --------
    >>> from skxmc.metrics import precision_lower_bound
    >>> float(precision_lower_bound(80, 100, 0.95).round(4))
    0.7228
    """
    from scipy.stats import beta

    confidence = _check_confidence(confidence)
    if confidence is None:
        raise ValueError("confidence must be a number in (0, 1), got None.")
    n_hits = np.asarray(n_hits, dtype=np.float64)
    n_accepted = np.asarray(n_accepted, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bound = beta.ppf(1 - confidence, n_hits, n_accepted - n_hits + 1)
    return np.where(n_hits > 0, bound, 0.0)


def _threshold_of(
    scores: np.ndarray, hits: np.ndarray, target: float, confidence=None
) -> float:
    """The threshold of the module docstring, on flattened entries."""
    if scores.size == 0:
        return float("inf")
    order = np.argsort(-scores, kind="stable")
    s, h = scores[order], hits[order].astype(np.float64)
    # the candidate sets end where the score changes (ties enter together)
    ends = np.flatnonzero(np.append(s[1:] != s[:-1], True))
    n_hits = np.cumsum(h)[ends]
    if confidence is None:
        precision = n_hits / (ends + 1)
    else:
        precision = precision_lower_bound(n_hits, ends + 1, confidence)
    reaching = np.flatnonzero(precision >= target)
    if reaching.size == 0:
        return float("inf")
    v = s[ends[reaching[-1]]]
    return float(np.nextafter(v, -np.inf))


@_fill_doc
def precision_threshold(
    y_true, y_score, *, target_precision=0.9, k=1, confidence=None, filter=None
):
    """The lowest threshold at which the accepted predictions reach a precision.

    With ``k=1``, a row's top-1 label is accepted when its score is above
    the threshold, and precision is the share of accepted rows whose top-1
    label is true (the coverage rule of :func:`coverage_at_precision`). With
    ``k > 1``, every one of a row's top ``k`` labels scoring above the
    threshold is accepted (what ``predict`` returns with ``top_k=k``) and
    precision is the micro-precision of the accepted (row, label) entries.
    Pick it on validation rows, apply it to new ones.

    Parameters
    ----------
    %(y_true)s
    %(y_score)s
    target_precision : float, default=0.9
        Precision to reach, in (0, 1].
    k : int, default=1
        Labels per row that may be accepted.
    confidence : float or None, default=None
        None: the accepted entries' precision must reach the target on these
        rows (on new rows it then falls short about half the time). A level
        in (0, 1), e.g. 0.95: the one-sided Clopper-Pearson lower bound of
        that precision (:func:`precision_lower_bound`) must reach it, so
        that new rows reach the target with about that probability; it
        accepts fewer entries, the fewer the rows. With ``k > 1`` a row's
        entries are not independent and the bound is approximate.
    %(filter)s

    Returns
    -------
    threshold : float
        Accept the entries scoring strictly above it; ``inf`` when no
        threshold reaches the target (nothing is accepted).

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.metrics import precision_threshold
    >>> y_true = np.array([[1, 0], [0, 1], [1, 0], [1, 0]])
    >>> y_score = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
    >>> tau = precision_threshold(y_true, y_score, target_precision=0.6)
    >>> 0.59 < tau < 0.6  # all 4 rows: 3 of 4 right
    True
    >>> tau = precision_threshold(y_true, y_score, target_precision=0.9)
    >>> tau < 0.9 < tau + 1e-6  # row 0 only: just below its score
    True
    """
    target = _check_target(target_precision)
    confidence = _check_confidence(confidence)
    scores, hits, _ = _entries(y_true, y_score, _check_k(k), filter)
    return _threshold_of(scores, hits, target, confidence)


@_fill_doc
def coverage_at_precision(
    y_true, y_score, *, target_precision=0.9, threshold=None, filter=None
):
    """Coverage at 1 (C@1) at a target precision, and the precision reached.

    A row is covered when its best score is strictly above ``threshold``; its
    top-1 prediction is right when it is any of the row's true labels
    (multi-label). Choose the threshold on validation rows with
    :func:`precision_threshold` and pass it here with the test rows: the
    result is the coverage and the precision actually reached on them. With
    ``threshold=None`` the threshold is tuned on these very rows: the
    *oracle* C@1, an upper bound that shows the cost of choosing it on
    validation rows.

    Parameters
    ----------
    %(y_true)s
    %(y_score)s
    target_precision : float, default=0.9
        Precision the threshold is tuned for (with ``threshold=None``).
    threshold : float, default=None
        The threshold (from validation rows); None tunes it on these rows.
    %(filter)s

    Returns
    -------
    result : CoverageResult
        ``(coverage, precision, threshold)``: the share of rows covered, the
        precision@1 among them (NaN when none is) and the threshold used.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.metrics import coverage_at_precision, precision_threshold
    >>> y_val = np.array([[1, 0], [0, 1], [1, 0], [1, 0]])
    >>> s_val = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
    >>> tau = precision_threshold(y_val, s_val, target_precision=0.6)
    >>> y_test = np.array([[1, 0], [0, 1]])
    >>> s_test = np.array([[0.95, 0.0], [0.3, 0.5]])
    >>> coverage_at_precision(y_test, s_test, threshold=tau)[:2]  # row 0 passes
    (0.5, 1.0)
    """
    if threshold is None:
        target = _check_target(target_precision)
    elif isinstance(threshold, bool) or not isinstance(threshold, Real):
        raise ValueError(f"threshold must be a real number, got {threshold!r}.")
    elif np.isnan(threshold):
        raise ValueError("threshold must not be NaN.")
    scores, hits, n_rows = _entries(y_true, y_score, 1, filter)
    if threshold is None:
        threshold = _threshold_of(scores, hits, target)
    accepted = scores > threshold
    n_accepted = int(accepted.sum())
    precision = hits[accepted].mean() if n_accepted else float("nan")
    return CoverageResult(n_accepted / n_rows, float(precision), float(threshold))


def _oracle_coverage(y_true, y_score, *, target_precision=0.9, filter=None):
    """The oracle C@1 as a plain float (the scorers' metric)."""
    return coverage_at_precision(
        y_true, y_score, target_precision=target_precision, filter=filter
    ).coverage


def _retrieved_entries(y_score, shape):
    """(rows, labels, scores) of the retrieved pairs; a dense array retrieves all."""
    if isinstance(y_score, tuple):
        scores, indices = (np.asarray(a) for a in y_score)
        rows, slots = np.nonzero(indices >= 0)
        return rows, indices[rows, slots], scores[rows, slots].astype(np.float64)
    if sp.issparse(y_score):
        S = sp.csr_matrix(y_score)
        if S.shape != shape:
            raise ValueError(f"y_score has shape {S.shape} but y_true has {shape}.")
        rows = np.repeat(np.arange(S.shape[0]), np.diff(S.indptr))
        return rows, S.indices.astype(np.int64), S.data.astype(np.float64)
    S = np.asarray(y_score, dtype=np.float64)
    if S.shape != shape:
        raise ValueError(f"y_score has shape {S.shape} but y_true has {shape}.")
    rows, labels = np.nonzero(np.ones(shape, dtype=bool))
    return rows, labels, S.ravel()


def opis(y_true, y_score, *, far_range=(1e-3, 1e-1), n_thresholds=100):
    """OPIS: how much the per-label utility of one global threshold varies.

    The threshold-consistency measure of TCM (Zhang et al., 2023), on
    (row, label) pairs: for every label ``l`` with at least one positive and
    one negative row, and threshold ``d``, the utility ``U(l, d)`` is the
    harmonic mean of the label's true-positive rate (positive rows scoring
    above ``d``) and true-negative rate (negative rows scoring at most
    ``d``; labels not retrieved for a row score ``-inf``).

    ``OPIS = mean_l integral (U(l, d) - mean_l U(l, d))^2 dd / (d_max - d_min)``

    computed with the trapezoidal rule on ``n_thresholds`` evenly spaced
    thresholds. Lower is more consistent. The range (our choice; the exact
    bounds of TCM are not known here): ``[d_min, d_max]`` are the thresholds
    at which the false-accept rate over the *retrieved* negative pairs is
    ``far_range[1]`` and ``far_range[0]`` (the ``1 - far`` quantiles of their
    scores); with dense scores every pair is retrieved.

    Parameters
    ----------
    y_true : {array-like, sparse matrix} of shape (n_samples, n_labels)
        True labels as a 0/1 indicator matrix.
    y_score : sparse matrix, array-like or tuple of two arrays
        Scores (the forms of :func:`~skxmc.metrics.precision_at_k`).
    far_range : tuple of 2 floats, default=(1e-3, 1e-1)
        False-accept rates bounding the thresholds, ``0 <= low < high <= 1``.
    n_thresholds : int, default=100
        Thresholds of the integral (at least 2).

    Returns
    -------
    opis : float
        The threshold inconsistency; 0 without any eligible label or when
        the range is a single point.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.metrics import opis
    >>> y_true = np.array([[1, 0], [0, 1], [1, 0], [0, 1]])
    >>> consistent = np.array([[0.9, 0.1], [0.1, 0.9], [0.8, 0.2], [0.2, 0.8]])
    >>> opis(y_true, consistent, far_range=(0.0, 1.0))
    0.0
    >>> shifted = np.array([[0.9, 0.5], [0.1, 0.95], [0.8, 0.6], [0.2, 0.9]])
    >>> opis(y_true, shifted, far_range=(0.0, 1.0)) > 0
    True
    """
    low, high = (float(v) for v in far_range)
    if not 0 <= low < high <= 1:
        raise ValueError(
            f"far_range must satisfy 0 <= low < high <= 1, got {far_range}."
        )
    if not isinstance(n_thresholds, Integral) or n_thresholds < 2:
        raise ValueError(f"n_thresholds must be an integer >= 2, got {n_thresholds!r}.")
    Y = _check_y_true(y_true)
    rows, labels, scores = _retrieved_entries(y_score, Y.shape)
    if np.isnan(scores).any():
        raise ValueError("y_score contains NaN scores.")
    gold = np.asarray(Y[rows, labels]).ravel() > 0
    n_rows, n_labels = Y.shape
    n_pos = np.bincount(Y.indices, minlength=n_labels)
    n_neg = n_rows - n_pos
    eligible = (n_pos > 0) & (n_neg > 0)
    negatives = scores[~gold & np.isfinite(scores)]
    if negatives.size == 0 or not eligible.any():
        return 0.0
    d_min, d_max = np.quantile(negatives, [1 - high, 1 - low])
    grid = np.linspace(d_min, d_max, n_thresholds)
    utility = np.empty((n_thresholds, int(eligible.sum())))
    for t, d in enumerate(grid):
        above = scores > d
        # unretrieved pairs score -inf: never above, a true negative
        tp = np.bincount(labels[above & gold], minlength=n_labels)
        fp = np.bincount(labels[above & ~gold], minlength=n_labels)
        tpr = tp[eligible] / n_pos[eligible]
        tnr = 1 - fp[eligible] / n_neg[eligible]
        total = tpr + tnr
        utility[t] = np.divide(
            2 * tpr * tnr, total, out=np.zeros_like(total), where=total > 0
        )
    squared = (utility - utility.mean(axis=1, keepdims=True)) ** 2
    if d_max == d_min:
        return float(squared[0].mean())
    return float((np.trapezoid(squared, grid, axis=0) / (d_max - d_min)).mean())
