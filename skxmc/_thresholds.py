"""TunedThresholdXMC: a global decision threshold tuned for a target precision."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skxmc.base import BaseXMCClassifier

__all__ = ["TunedThresholdXMC"]


class TunedThresholdXMC(BaseXMCClassifier):
    """Wrap an XMC estimator with a decision threshold tuned for a target precision.

    The XMC counterpart of scikit-learn's
    :class:`~sklearn.model_selection.TunedThresholdClassifierCV`. The raw
    scores of skxmc's estimators have no common scale, so a fixed
    ``threshold`` of ``predict`` means something different for each; this
    meta-estimator picks it on held-out rows instead:

    1. ``validation_size`` of the training rows (shuffled with
       ``random_state``) are held out and ``estimator`` (a clone) is fitted
       on the rest;
    2. optionally, its top-``top_k`` scores on the held-out rows are
       calibrated (:class:`~skxmc.models.ScoreCalibrator`, isotonic or Platt):
       every retrieved (row, label) pair is a sample, and scores become
       probabilities that the label is right;
    3. ``threshold_`` is chosen on the held-out rows by
       :func:`~skxmc.metrics.precision_threshold`: the lowest threshold at
       which the accepted predictions reach ``target_precision``. With
       ``k=1`` the rule is coverage at 1 (a row's top-1 label is accepted
       when it passes), otherwise the micro-precision of all the labels
       ``predict`` returns (the top ``k`` scoring above the threshold); with
       ``confidence``, the lower confidence bound of that precision must
       reach the target instead, so that it also holds on new rows;
    4. with ``refit=True`` the estimator is fitted again on all rows (the
       threshold, chosen on the first model's held-out scores, is applied to
       the refitted model: more data, but scores of a model the threshold
       never saw; the default keeps the model that chose it).

    ``predict`` returns the labels among each row's ``top_k`` scoring
    strictly above ``threshold_``; ``predict_topk`` and ``decision_function``
    return the (calibrated) scores.

    Parameters
    ----------
    estimator : skxmc estimator
        The estimator to wrap (unfitted; cloned).
    target_precision : float, default=0.9
        Precision the accepted predictions must reach on the held-out rows.
    threshold : float or None, default=None
        A fixed threshold instead of a tuned one (with ``calibration`` it is
        a probability: ``0.5`` keeps the labels more likely right than
        wrong). None tunes it for ``target_precision``.
    k : int or None, default=None
        Labels per row the threshold is tuned for: 1 tunes coverage at 1,
        None uses ``top_k`` (the label sets of ``predict``).
    confidence : float or None, default=None
        None: the held-out precision itself must reach ``target_precision``;
        new rows then fall short of it about half the time. A level such as
        0.95: its one-sided Clopper-Pearson lower bound must reach it
        (:func:`~skxmc.metrics.precision_lower_bound`), so new rows like the
        held-out ones reach the target with about that probability, at the
        cost of some coverage (about ``1.6 * sqrt(p (1 - p) / n)`` of
        precision margin for ``n`` accepted held-out entries at 0.95).
    calibration : {"isotonic", "sigmoid"} or None, default=None
        Calibrate the scores on the held-out rows; None keeps raw scores.
    validation_size : float, default=0.2
        Share of the training rows held out (at least one row each side).
    refit : bool, default=False
        Refit the estimator on all rows after tuning (see step 4).
    top_k : int, default=10
        Labels retrieved per row (``predict`` and ``decision_function``).
    random_state : int, RandomState instance or None, default=None
        Seeds the row split, and the ``random_state`` parameters of
        ``estimator`` (nested ones included) that are None; those set are
        kept.
    verbose : int, default=0
        Log the tuned threshold.

    Attributes
    ----------
    estimator_ : skxmc estimator
        The fitted estimator.
    threshold_ : float
        The threshold of ``predict`` (``inf``: the target was never reached
        and ``predict`` returns no label).
    calibrator_ : ScoreCalibrator or None
        The score calibration.
    validation_indices_ : ndarray of shape (n_validation,)
        The held-out training rows (sorted).
    validation_coverage_ : float
        Share of held-out rows that get at least one label with
        ``threshold_``.
    validation_precision_ : float
        Precision of the accepted held-out predictions (NaN if none).
    classes_ : ndarray of shape (n_labels,)
        The labels.
    n_labels_ : int
        Number of labels.

    See Also
    --------
    skxmc.metrics.precision_threshold : The threshold rule.
    skxmc.metrics.coverage_at_precision : Coverage at 1 and the precision reached.

    Examples
    --------
    >>> from skxmc import TunedThresholdXMC, XRLinearClassifier
    >>> from skxmc.datasets import make_xmc_classification
    >>> X, Y = make_xmc_classification(n_samples=200, n_features=30, n_labels=8,
    ...                                random_state=0)
    >>> clf = TunedThresholdXMC(XRLinearClassifier(), target_precision=0.8,
    ...                         calibration="isotonic", random_state=0).fit(X, Y)
    >>> 0 <= clf.threshold_ <= 1  # a probability
    True
    >>> clf.predict(X).shape
    (200, 8)
    """

    _parameter_constraints: dict = {
        **BaseXMCClassifier._parameter_constraints,
        "estimator": [HasMethods(["fit", "predict_topk"])],
        "target_precision": [Interval(Real, 0, 1, closed="right")],
        "threshold": [Real, None],
        "k": [Interval(Integral, 1, None, closed="left"), None],
        "confidence": [Interval(Real, 0, 1, closed="neither"), None],
        "calibration": [StrOptions({"isotonic", "sigmoid"}), None],
        "validation_size": [Interval(Real, 0, 1, closed="neither")],
        "refit": ["boolean"],
    }

    def __init__(
        self,
        estimator,
        *,
        target_precision=0.9,
        threshold=None,
        k=None,
        confidence=None,
        calibration=None,
        validation_size=0.2,
        refit=False,
        top_k=10,
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.target_precision = target_precision
        self.threshold = threshold
        self.k = k
        self.confidence = confidence
        self.calibration = calibration
        self.validation_size = validation_size
        self.refit = refit
        self.top_k = top_k
        self.random_state = random_state
        self.verbose = verbose

    @property
    def _accepts_text(self):
        # a Pipeline (no flags) validates its own input: accept both kinds
        return getattr(self.estimator, "_accepts_text", True)

    @property
    def _accepts_numeric(self):
        return getattr(self.estimator, "_accepts_numeric", True)

    def _fit(self, X, Y, *, label_info, seed):
        from skxmc.metrics import coverage_at_precision, precision_threshold
        from skxmc.metrics._ranking import _rank
        from skxmc.models import ScoreCalibrator

        n = Y.shape[0]
        n_val = round(self.validation_size * n)
        if n < 2:
            raise ValueError(
                f"TunedThresholdXMC needs at least 2 samples to hold some out; "
                f"got {n} sample."
            )
        n_val = min(max(n_val, 1), n - 1)
        order = np.random.default_rng(seed).permutation(n)
        val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
        fit_params = {} if label_info is None else {"label_info": label_info}
        base = _seeded_clone(self.estimator, seed)
        estimator = clone(base).fit(_rows(X, train), Y[train], **fit_params)
        k = self.top_k if self.k is None else self.k
        scores, indices = estimator.predict_topk(_rows(X, val), max(k, self.top_k))
        Y_val = Y[val]
        self.calibrator_ = None
        if self.calibration is not None:
            ranking = _rank(Y_val, (scores, indices), indices.shape[1], None)
            valid = ranking.indices >= 0
            self.calibrator_ = ScoreCalibrator(self.calibration).fit(
                ranking.scores[valid], ranking.hits[valid]
            )
            scores = self.calibrator_.transform(scores)
        if self.threshold is None:
            self.threshold_ = precision_threshold(
                Y_val,
                (scores, indices),
                target_precision=self.target_precision,
                k=k,
                confidence=self.confidence,
            )
        else:
            self.threshold_ = float(self.threshold)
        held_out = coverage_at_precision(
            Y_val, (scores, indices), threshold=self.threshold_
        )
        self.validation_coverage_ = held_out.coverage
        self.validation_precision_ = held_out.precision
        self._log(
            f"threshold {self.threshold_:.4g}: held-out coverage at 1 "
            f"{held_out.coverage:.3f}, precision {held_out.precision:.3f}"
        )
        if self.refit:
            estimator = clone(base).fit(X, Y, **fit_params)
        self.estimator_ = estimator
        self.validation_indices_ = val
        return self

    def _predict_topk(self, X, k):
        scores, indices = self.estimator_.predict_topk(X, k)
        if self.calibrator_ is not None:
            scores = self.calibrator_.transform(scores)
        return scores, indices

    def _decision_threshold(self) -> float:
        check_is_fitted(self)
        return self.threshold_


def _seeded_clone(estimator, seed: int):
    """A clone whose ``random_state`` parameters left at None get seeds drawn
    from ``seed`` (as scikit-learn's ensembles do), so that a fit with an int
    ``random_state`` is reproducible."""
    estimator = clone(estimator)
    rng = np.random.default_rng(seed)
    unset = {
        name: int(rng.integers(np.iinfo(np.int32).max))
        for name, value in sorted(estimator.get_params(deep=True).items())
        if name.endswith("random_state") and value is None
    }
    return estimator.set_params(**unset) if unset else estimator


def _rows(X, rows):
    """Rows of a CSR matrix or of a list of documents."""
    if isinstance(X, list):
        return [X[i] for i in rows]
    return X[rows]
