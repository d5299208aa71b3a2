"""Scorers for scikit-learn model selection with sparse label matrices.

Every scorer here is built with ``make_scorer(metric,
response_method="decision_function", k=...)``: the estimators'
``decision_function`` returns a CSR matrix holding each row's ``top_k`` scores,
which the metrics read directly. Because all the scorers of
:data:`XMC_SCORERS` share one response method, scikit-learn's multi-metric
scorer calls ``decision_function`` once per split and reuses the result, so
``GridSearchCV(est, grid, scoring=XMC_SCORERS, refit="P@5")`` runs inference
once per (candidate, split), not once per metric. Keep ``top_k`` of the
estimator at least as large as the largest ``k`` scored: labels beyond
``top_k`` are not retrieved.

Model selection tools and a sparse ``y`` (scikit-learn 1.6 to 1.9):

- accept it: ``GridSearchCV``, ``RandomizedSearchCV``, ``HalvingGridSearchCV``,
  ``train_test_split`` and ``cross_val_predict`` (with ``method="predict"``).
  For multi-label targets ``check_cv`` picks an unshuffled ``KFold``; pass
  ``cv=KFold(5, shuffle=True, random_state=0)``.
- reject it: ``cross_val_score``, ``cross_validate``, ``learning_curve`` and
  ``validation_curve`` ("'y' ... must be an array-like"). Use ``GridSearchCV``
  with a single candidate to cross-validate one configuration.

The scorers need ``y`` as an indicator matrix (sparse or dense); an estimator
fitted on lists of label lists scores them through its own ``score`` method,
which knows ``classes_``.
"""

from __future__ import annotations

from sklearn.metrics import make_scorer

from skxmc.metrics._coverage import _check_target, _oracle_coverage, opis
from skxmc.metrics._ranking import (
    _check_inv_propensity,
    ndcg_at_k,
    precision_at_k,
    psp_at_k,
    recall_at_k,
)
from skxmc.utils._sparse import _check_k

__all__ = [
    "XMC_SCORERS",
    "make_coverage_scorer",
    "make_opis_scorer",
    "make_psp_scorer",
]


def _xmc_scorer(metric, k, **kwargs):
    return make_scorer(metric, response_method="decision_function", k=k, **kwargs)


#: Scorers for ``GridSearchCV(scoring=XMC_SCORERS, refit="P@5")``, keyed by the
#: usual names of the Extreme Classification Repository.
XMC_SCORERS = {
    "P@1": _xmc_scorer(precision_at_k, 1),
    "P@3": _xmc_scorer(precision_at_k, 3),
    "P@5": _xmc_scorer(precision_at_k, 5),
    "nDCG@3": _xmc_scorer(ndcg_at_k, 3),
    "nDCG@5": _xmc_scorer(ndcg_at_k, 5),
    "R@5": _xmc_scorer(recall_at_k, 5),
    "R@10": _xmc_scorer(recall_at_k, 10),
}


def make_psp_scorer(inv_propensity, k=5):
    """Make a propensity-scored precision scorer (PSP@k) for model selection.

    Compute the propensities once, from the whole training label matrix,
    *before* the search: ``inverse_propensity(Y_train)``. A scorer cannot
    compute them per split (it sees only the validation fold), and weights
    from the full training set keep every fold on the same scale; the
    validation folds' label counts leak into the weights, which is harmless
    for ranking candidates. The label columns of every fold must match
    ``inv_propensity``, which holds for any split of the rows of ``Y_train``.

    Parameters
    ----------
    inv_propensity : array-like of shape (n_labels,)
        Inverse propensities, e.g. from :func:`inverse_propensity`.
    k : int, default=5
        Rank cut-off.

    Returns
    -------
    scorer : callable
        A scorer ``scorer(estimator, X, y)`` calling
        ``estimator.decision_function(X)`` and :func:`psp_at_k`. It shares
        the response method of :data:`XMC_SCORERS`, so adding it to that
        dict keeps a single inference pass per split.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.metrics import XMC_SCORERS, inverse_propensity, make_psp_scorer
    >>> Y_train = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [1, 0, 1]])
    >>> scoring = {
    ...     **XMC_SCORERS,
    ...     "PSP@3": make_psp_scorer(inverse_propensity(Y_train), k=3),
    ... }
    >>> list(scoring)
    ['P@1', 'P@3', 'P@5', 'nDCG@3', 'nDCG@5', 'R@5', 'R@10', 'PSP@3']
    """
    k = _check_k(k)
    inv_propensity = _check_inv_propensity(inv_propensity, None)
    return _xmc_scorer(psp_at_k, k, inv_propensity=inv_propensity)


def make_coverage_scorer(target_precision=0.9):
    """Make a scorer of the coverage at 1 at a target precision (C@1).

    On each validation fold the threshold is tuned on the fold itself (the
    oracle C@1 of :func:`~skxmc.metrics.coverage_at_precision`): the share of
    the fold's rows that one global threshold can accept while the accepted
    top-1 predictions keep ``target_precision``. Higher is better. It shares
    the response method of :data:`XMC_SCORERS` (one inference pass per
    split); keep ``top_k >= 1``.

    Parameters
    ----------
    target_precision : float, default=0.9
        Precision the accepted predictions must reach, in (0, 1].

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)``.

    Examples
    --------
    >>> from skxmc.metrics import XMC_SCORERS, make_coverage_scorer
    >>> scoring = {**XMC_SCORERS, "C@1(0.9)": make_coverage_scorer(0.9)}
    >>> "C@1(0.9)" in scoring
    True
    """
    return make_scorer(
        _oracle_coverage,
        response_method="decision_function",
        target_precision=_check_target(target_precision),
    )


def make_opis_scorer(far_range=(1e-3, 1e-1), n_thresholds=100):
    """Make a scorer of threshold inconsistency (:func:`~skxmc.metrics.opis`).

    Lower OPIS is better, so the scorer returns ``-opis`` (scikit-learn's
    convention for losses: ``greater_is_better=False``).

    Parameters
    ----------
    far_range : tuple of 2 floats, default=(1e-3, 1e-1)
        See :func:`~skxmc.metrics.opis`.
    n_thresholds : int, default=100
        See :func:`~skxmc.metrics.opis`.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)``, the negated OPIS.

    Examples
    --------
    >>> from skxmc.metrics import make_opis_scorer
    >>> scorer = make_opis_scorer()
    >>> scorer._sign
    -1
    """
    return make_scorer(
        opis,
        response_method="decision_function",
        greater_is_better=False,
        far_range=tuple(far_range),
        n_thresholds=n_thresholds,
    )
