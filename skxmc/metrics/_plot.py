"""Visualisations of extreme multi-label predictions, in scikit-learn's style.

Each ``*Display`` computes its numbers in ``from_predictions`` (or
``from_estimator``, which predicts first) and draws them in ``plot``; the
numbers stay on the display as attributes, so a display can be re-plotted, or
read, without matplotlib. matplotlib is imported only inside ``plot``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from skxmc.metrics._ranking import (
    _check_inv_propensity,
    _check_y_true,
    _precision,
    _ps_gains,
    _psp,
    _rank,
)
from skxmc.utils._sparse import _check_k

__all__ = [
    "LabelFrequencyDisplay",
    "PropensityTiltDisplay",
    "ThresholdDisplay",
]


def _import_pyplot(caller: str):
    """matplotlib.pyplot, or an ImportError that says how to get it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            f"{caller} requires matplotlib, which is not installed. Install it "
            "with `pip install matplotlib` (or `pip install skxmc[docs]`); the "
            "numbers of the display are available without it."
        ) from exc
    return plt


def _get_ax(ax, caller: str):
    plt = _import_pyplot(caller)
    if ax is None:
        _, ax = plt.subplots()
    return ax


def _label_frequency(y_train, n_labels: int) -> np.ndarray:
    """Training positives per label, from a label matrix or a 1-D count array."""
    if sp.issparse(y_train) or np.ndim(y_train) == 2:
        counts = np.asarray(_check_y_true(y_train, "y_train").sum(axis=0)).ravel()
    else:
        counts = np.asarray(y_train, dtype=np.float64)
        if counts.ndim != 1 or not np.all(np.isfinite(counts)) or counts.min() < 0:
            raise ValueError(
                "y_train must be the training label matrix or a 1-D array of "
                "non-negative label counts."
            )
    if counts.shape[0] != n_labels:
        raise ValueError(
            f"y_train has {counts.shape[0]} labels but y_true has {n_labels}."
        )
    return counts


def _frequency_buckets(counts: np.ndarray, n_buckets: int) -> np.ndarray:
    """Bucket of every label, 0 = head: labels sorted by decreasing training
    frequency (ties: lower index first) and cut where the running sum of
    frequencies crosses each ``1 / n_buckets`` of the total, so every bucket
    holds about the same number of training positives. Labels never seen in
    training fall in the last (tail) bucket."""
    order = np.lexsort((np.arange(counts.shape[0]), -counts))
    before = np.concatenate([[0.0], np.cumsum(counts[order])[:-1]])
    total = counts.sum()
    if total > 0:
        position = np.floor(before * n_buckets / total).astype(np.int64)
    else:
        position = np.zeros(counts.shape[0], dtype=np.int64)
    position[counts[order] == 0] = n_buckets - 1
    buckets = np.empty(counts.shape[0], dtype=np.int64)
    buckets[order] = np.minimum(position, n_buckets - 1)
    return buckets


class LabelFrequencyDisplay:
    """A metric split by label-frequency bucket, from head to tail labels.

    Labels are sorted by their number of training positives and cut into
    ``n_buckets`` buckets that each hold about the same number of training
    positives: the first bucket has a few very frequent (head) labels, the
    last many rare (tail) labels, including those never seen in training.
    Two metrics:

    - ``"precision"``: the share of P@k contributed by each bucket, i.e. the
      correct top-k predictions whose label is in the bucket, divided by
      ``k * n_samples``. The bars sum to P@k.
    - ``"recall"``: for each bucket, the fraction of the true (sample, label)
      pairs with a label in the bucket that appear in the top k (pooled over
      samples). A model that only learns head labels has high head recall
      and near-zero tail recall.

    Build it with :meth:`from_predictions` or :meth:`from_estimator`; draw it
    with :meth:`plot` (matplotlib needed only there).

    Parameters
    ----------
    values : ndarray of shape (n_buckets,)
        The metric of each bucket, head first.
    n_labels : ndarray of shape (n_buckets,)
        Labels per bucket.
    frequency_range : ndarray of shape (n_buckets, 2)
        Smallest and largest training frequency of each bucket's labels.
    metric : {"precision", "recall"}
        Which metric ``values`` holds.
    k : int
        Rank cut-off.
    name : str, default=None
        Name of the model, for the legend.

    Attributes
    ----------
    ax_ : matplotlib Axes
        Axes of the plot (after :meth:`plot`).
    figure_ : matplotlib Figure
        Figure of the plot.
    line_ : matplotlib Line2D
        The metric by bucket (one point per bucket).

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.metrics import LabelFrequencyDisplay
    >>> y_train = np.array([[1, 1, 0], [1, 0, 0], [1, 0, 1]])
    >>> y_true = np.array([[1, 0, 0], [0, 1, 1]])
    >>> y_score = np.array([[0.9, 0.1, 0.0], [0.8, 0.7, 0.1]])
    >>> display = LabelFrequencyDisplay.from_predictions(
    ...     y_true, y_score, y_train=y_train, k=1, n_buckets=2, metric="recall"
    ... )
    >>> display.values  # head label 0 found once of once; 1 and 2 never
    array([1., 0.])
    """

    def __init__(self, values, n_labels, frequency_range, *, metric, k, name=None):
        self.values = values
        self.n_labels = n_labels
        self.frequency_range = frequency_range
        self.metric = metric
        self.k = k
        self.name = name

    @classmethod
    def from_predictions(
        cls,
        y_true,
        y_score,
        *,
        y_train,
        k=5,
        n_buckets=5,
        metric="precision",
        filter=None,
        name=None,
        ax=None,
        plot=True,
    ):
        """Compute the metric of each frequency bucket, and plot it.

        Parameters
        ----------
        y_true : {array-like, sparse matrix} of shape (n_samples, n_labels)
            True labels (0/1 indicator matrix).
        y_score : sparse matrix, array-like or tuple of two arrays
            Scores, in any form the ranking metrics accept (a sparse or dense
            score matrix, or a ``(scores, indices)`` pair).
        y_train : {array-like, sparse matrix} of shape (n_train, n_labels) \
or (n_labels,)
            The training label matrix, or each label's training frequency.
        k : int, default=5
            Rank cut-off.
        n_buckets : int, default=5
            Number of frequency buckets.
        metric : {"precision", "recall"}, default="precision"
            See the class description.
        filter : {array-like, sparse matrix}, default=None
            (sample, label) pairs removed from ``y_true`` and ``y_score``
            before the top-k is taken (the LF protocol).
        name : str, default=None
            Name of the model, for the legend.
        ax : matplotlib Axes, default=None
            Where to plot (a new figure when None).
        plot : bool, default=True
            Whether to draw; ``False`` only computes.

        Returns
        -------
        display : LabelFrequencyDisplay
        """
        k = _check_k(k)
        n_buckets = _check_k(n_buckets)
        if metric not in ("precision", "recall"):
            raise ValueError(f"metric must be 'precision' or 'recall', got {metric!r}.")
        r = _rank(y_true, y_score, k, filter)
        n_samples, n_all = r.y_true.shape
        counts = _label_frequency(y_train, n_all)
        buckets = _frequency_buckets(counts, n_buckets)
        hit_labels = r.indices[r.hits]
        hits_per_bucket = np.bincount(buckets[hit_labels], minlength=n_buckets)
        if metric == "precision":
            values = hits_per_bucket / (k * n_samples)
        else:
            true_per_bucket = np.bincount(
                buckets[r.y_true.indices], minlength=n_buckets
            )
            values = np.zeros(n_buckets)
            np.divide(
                hits_per_bucket, true_per_bucket, out=values,
                where=true_per_bucket > 0,
            )  # fmt: skip
        n_labels = np.bincount(buckets, minlength=n_buckets)
        frequency_range = np.zeros((n_buckets, 2))
        for b in range(n_buckets):
            in_bucket = counts[buckets == b]
            if in_bucket.size:
                frequency_range[b] = in_bucket.min(), in_bucket.max()
        display = cls(
            values.astype(np.float64),
            n_labels,
            frequency_range,
            metric=metric,
            k=k,
            name=name,
        )
        return display.plot(ax=ax) if plot else display

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        y,
        *,
        y_train,
        k=5,
        n_buckets=5,
        metric="precision",
        filter=None,
        name=None,
        ax=None,
        plot=True,
    ):
        """Predict the top ``k`` labels of ``X`` and build the display.

        Parameters
        ----------
        estimator : fitted skxmc estimator
            Anything with ``predict_topk(X, k=k)``.
        X : array-like, sparse matrix or list of str
            Inputs of the estimator.
        y : {array-like, sparse matrix} of shape (n_samples, n_labels)
            True labels.
        y_train, k, n_buckets, metric, filter, ax, plot
            As in :meth:`from_predictions`.
        name : str, default=None
            Legend name; the estimator's class name when None.

        Returns
        -------
        display : LabelFrequencyDisplay
        """
        y_score = estimator.predict_topk(X, k=_check_k(k))
        return cls.from_predictions(
            y, y_score, y_train=y_train, k=k, n_buckets=n_buckets, metric=metric,
            filter=filter, name=name or type(estimator).__name__, ax=ax, plot=plot,
        )  # fmt: skip

    def plot(self, ax=None, *, name=None, **kwargs):
        """Draw the metric of each bucket, head on the left.

        A line with one marker per bucket, so that several models drawn on
        the same axes compare at a glance.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to plot (a new figure when None).
        name : str, default=None
            Legend name, overriding the display's.
        **kwargs
            Passed to ``ax.plot``.

        Returns
        -------
        display : LabelFrequencyDisplay
            ``self``, with ``ax_``, ``figure_`` and ``line_`` set.
        """
        ax = _get_ax(ax, f"{type(self).__name__}.plot")
        name = name if name is not None else self.name
        positions = np.arange(len(self.values))
        ticks = [
            f"{b + 1}\n{int(lo)}-{int(hi)}\n({n} labels)"
            for b, ((lo, hi), n) in enumerate(zip(self.frequency_range, self.n_labels))
        ]
        kwargs = {"marker": "o", **kwargs}
        (self.line_,) = ax.plot(positions, 100 * self.values, label=name, **kwargs)
        ax.set_xticks(positions)
        ax.set_xticklabels(ticks, fontsize="small")
        ax.set_xlabel("label bucket (head to tail): training frequency")
        what = "share of P" if self.metric == "precision" else "R"
        ax.set_ylabel(f"{what}@{self.k} (%)")
        if name is not None:
            ax.legend()
        self.ax_, self.figure_ = ax, ax.figure
        return self


class PropensityTiltDisplay:
    """The P@k - PSP@k trade-off of an estimator's ``propensity_tilt``.

    ``propensity_tilt`` multiplies every score by a power of the label's
    inverse propensity: rare labels move up, PSP@k (tail accuracy) rises and
    P@k (head accuracy) falls. The display holds P@k and PSP@k at each tilt
    and draws PSP@k against P@k, one point per tilt.

    Parameters
    ----------
    tilts : ndarray of shape (n_tilts,)
        The tilts.
    precision : ndarray of shape (n_tilts,)
        P@k at each tilt.
    psp : ndarray of shape (n_tilts,)
        PSP@k at each tilt.
    k : int
        Rank cut-off.
    name : str, default=None
        Name of the model, for the legend.

    Attributes
    ----------
    ax_, figure_ : matplotlib Axes and Figure
        After :meth:`plot`.
    line_ : matplotlib Line2D
        The trade-off curve.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.metrics import PropensityTiltDisplay
    >>> y_true = np.array([[1, 0], [0, 1]])
    >>> untilted = np.array([[0.9, 0.5], [0.9, 0.5]])
    >>> tilted = np.array([[0.9, 1.0], [0.9, 1.0]])
    >>> display = PropensityTiltDisplay.from_predictions(
    ...     y_true, [untilted, tilted], tilts=[0, 1], inv_propensity=[1.0, 3.0],
    ...     k=1, plot=False,
    ... )
    >>> display.precision, display.psp
    (array([0.5, 0.5]), array([0.25, 0.75]))
    """

    def __init__(self, tilts, precision, psp, *, k, name=None):
        self.tilts = tilts
        self.precision = precision
        self.psp = psp
        self.k = k
        self.name = name

    @classmethod
    def from_predictions(
        cls,
        y_true,
        y_scores,
        *,
        tilts,
        inv_propensity,
        k=1,
        filter=None,
        name=None,
        ax=None,
        plot=True,
    ):
        """Build the display from one prediction per tilt.

        Parameters
        ----------
        y_true : {array-like, sparse matrix} of shape (n_samples, n_labels)
            True labels.
        y_scores : sequence of y_score
            The predictions made at each tilt, in the order of ``tilts``, in
            any form the ranking metrics accept.
        tilts : array-like of shape (n_tilts,)
            The tilt of each prediction.
        inv_propensity : array-like of shape (n_labels,)
            Inverse propensities from
            :func:`~skxmc.metrics.inverse_propensity` on the training labels.
        k : int, default=1
            Rank cut-off.
        filter : {array-like, sparse matrix}, default=None
            (sample, label) pairs removed before the top-k (LF protocol).
        name : str, default=None
            Name of the model, for the legend.
        ax : matplotlib Axes, default=None
            Where to plot.
        plot : bool, default=True
            Whether to draw.

        Returns
        -------
        display : PropensityTiltDisplay
        """
        k = _check_k(k)
        tilts = np.asarray(tilts, dtype=np.float64)
        y_scores = list(y_scores)
        if tilts.ndim != 1 or len(y_scores) != tilts.shape[0] or not len(y_scores):
            raise ValueError(
                f"y_scores must hold one prediction per tilt: got {len(y_scores)} "
                f"predictions and tilts of shape {tilts.shape}."
            )
        precision, psp = [], []
        for y_score in y_scores:
            r = _rank(y_true, y_score, k, filter)
            inv_p = _check_inv_propensity(inv_propensity, r.y_true.shape[1])
            gains, ideal = _ps_gains(r, inv_p)
            precision.append(_precision(r, k))
            psp.append(_psp(gains, ideal, k))
        display = cls(
            tilts, np.asarray(precision, float), np.asarray(psp, float), k=k, name=name
        )
        return display.plot(ax=ax) if plot else display

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        y,
        *,
        inv_propensity,
        tilts=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
        k=1,
        filter=None,
        name=None,
        ax=None,
        plot=True,
    ):
        """Predict ``X`` at each tilt (no refit) and build the display.

        The estimator's ``propensity_tilt`` is set to each value in turn with
        ``set_params`` and restored afterwards; the tilt acts at prediction
        time only, so one fit serves every tilt.

        Parameters
        ----------
        estimator : fitted estimator with a ``propensity_tilt`` parameter
            E.g. :class:`~skxmc.DecafClassifier`.
        X : array-like, sparse matrix or list of str
            Inputs of the estimator.
        y : {array-like, sparse matrix} of shape (n_samples, n_labels)
            True labels.
        inv_propensity, k, filter, ax, plot
            As in :meth:`from_predictions`.
        tilts : array-like, default=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
            Tilts to evaluate.
        name : str, default=None
            Legend name; the estimator's class name when None.

        Returns
        -------
        display : PropensityTiltDisplay
        """
        if "propensity_tilt" not in estimator.get_params():
            raise ValueError(
                f"{type(estimator).__name__} has no propensity_tilt parameter."
            )
        k = _check_k(k)
        original = estimator.get_params()["propensity_tilt"]
        y_scores = []
        try:
            for tilt in tilts:
                estimator.set_params(propensity_tilt=float(tilt))
                y_scores.append(estimator.predict_topk(X, k=k))
        finally:
            estimator.set_params(propensity_tilt=original)
        return cls.from_predictions(
            y, y_scores, tilts=tilts, inv_propensity=inv_propensity, k=k,
            filter=filter, name=name or type(estimator).__name__, ax=ax, plot=plot,
        )  # fmt: skip

    def plot(self, ax=None, *, name=None, **kwargs):
        """Draw PSP@k against P@k, each point labelled with its tilt.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to plot.
        name : str, default=None
            Legend name, overriding the display's.
        **kwargs
            Passed to ``ax.plot``.

        Returns
        -------
        display : PropensityTiltDisplay
            ``self``, with ``ax_``, ``figure_`` and ``line_`` set.
        """
        ax = _get_ax(ax, f"{type(self).__name__}.plot")
        name = name if name is not None else self.name
        kwargs = {"marker": "o", **kwargs}
        (self.line_,) = ax.plot(
            100 * self.precision, 100 * self.psp, label=name, **kwargs
        )
        for tilt, x, y in zip(self.tilts, self.precision, self.psp):
            ax.annotate(
                f"{tilt:g}", (100 * x, 100 * y), textcoords="offset points",
                xytext=(4, 4), fontsize="small",
            )  # fmt: skip
        ax.set_xlabel(f"P@{self.k} (%)")
        ax.set_ylabel(f"PSP@{self.k} (%)")
        ax.set_title("propensity_tilt: head (P@k) against tail (PSP@k)")
        if name is not None:
            ax.legend()
        self.ax_, self.figure_ = ax, ax.figure
        return self


class ThresholdDisplay:
    """Precision and coverage of the thresholded predictions, by threshold.

    At a threshold ``t`` the predicted labels of a sample are its retrieved
    labels scoring strictly above ``t``, as the estimators' ``predict`` keeps
    them (among the ``top_k`` best). Two curves:

    - precision: the fraction of all predicted (sample, label) pairs that are
      true, pooled over samples (NaN where nothing is predicted);
    - coverage: the fraction of samples with at least one predicted label
      (:func:`~skxmc.metrics.coverage_at_k` with ``k=1``).

    Raising the threshold trades coverage for precision.

    Parameters
    ----------
    thresholds : ndarray of shape (n_thresholds,)
        Increasing thresholds.
    precision : ndarray of shape (n_thresholds,)
        Pooled precision at each threshold.
    coverage : ndarray of shape (n_thresholds,)
        Fraction of samples with a predicted label at each threshold.
    name : str, default=None
        Name of the model, for the legend.

    Attributes
    ----------
    ax_, figure_ : matplotlib Axes and Figure
        After :meth:`plot`.
    lines_ : list of matplotlib Line2D
        The precision and the coverage curves.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.metrics import ThresholdDisplay
    >>> y_true = np.array([[1, 0, 0], [0, 0, 1]])
    >>> y_score = np.array([[0.9, 0.6, 0.0], [0.3, 0.0, 0.2]])
    >>> display = ThresholdDisplay.from_predictions(
    ...     y_true, y_score, thresholds=[0.1, 0.5], plot=False
    ... )
    >>> display.precision, display.coverage
    (array([0.5, 0.5]), array([1. , 0.5]))
    """

    def __init__(self, thresholds, precision, coverage, *, name=None):
        self.thresholds = thresholds
        self.precision = precision
        self.coverage = coverage
        self.name = name

    @classmethod
    def from_predictions(
        cls,
        y_true,
        y_score,
        *,
        thresholds=None,
        filter=None,
        name=None,
        ax=None,
        plot=True,
    ):
        """Compute precision and coverage at each threshold, and plot them.

        Parameters
        ----------
        y_true : {array-like, sparse matrix} of shape (n_samples, n_labels)
            True labels.
        y_score : sparse matrix, array-like or tuple of two arrays
            Scores in any form the ranking metrics accept; with a sparse
            matrix or a ``(scores, indices)`` pair, only the stored labels
            count as retrieved (as ``decision_function`` and
            ``predict_topk`` return them).
        thresholds : array-like, default=None
            Thresholds to evaluate; by default 50 quantiles of the retrieved
            scores, from the lowest to the highest.
        filter : {array-like, sparse matrix}, default=None
            (sample, label) pairs removed from ``y_true`` and the predictions
            (LF protocol).
        name : str, default=None
            Name of the model, for the legend.
        ax : matplotlib Axes, default=None
            Where to plot.
        plot : bool, default=True
            Whether to draw.

        Returns
        -------
        display : ThresholdDisplay
        """
        width = _retrieved_width(y_score)
        r = _rank(y_true, y_score, width, filter)
        valid = r.indices >= 0
        scores = np.where(valid, r.scores, -np.inf)
        if thresholds is None:
            retrieved = scores[valid]
            if not retrieved.size:
                raise ValueError("y_score retrieves no label; nothing to threshold.")
            thresholds = np.unique(np.quantile(retrieved, np.linspace(0, 1, 50)))
        else:
            thresholds = np.sort(np.asarray(thresholds, dtype=np.float64).ravel())
            if not thresholds.size or not np.all(np.isfinite(thresholds)):
                raise ValueError("thresholds must be a non-empty array of numbers.")
        precision = np.empty(thresholds.shape[0])
        coverage = np.empty(thresholds.shape[0])
        for i, t in enumerate(thresholds):
            predicted = scores > t
            n_predicted = predicted.sum()
            precision[i] = (
                (predicted & r.hits).sum() / n_predicted if n_predicted else np.nan
            )
            coverage[i] = predicted.any(axis=1).mean()
        display = cls(thresholds, precision, coverage, name=name)
        return display.plot(ax=ax) if plot else display

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        y,
        *,
        k=None,
        thresholds=None,
        filter=None,
        name=None,
        ax=None,
        plot=True,
    ):
        """Predict the top ``k`` labels of ``X`` and build the display.

        Parameters
        ----------
        estimator : fitted skxmc estimator
            Anything with ``predict_topk(X, k=k)``.
        X : array-like, sparse matrix or list of str
            Inputs of the estimator.
        y : {array-like, sparse matrix} of shape (n_samples, n_labels)
            True labels.
        k : int, default=None
            Labels retrieved per sample; the estimator's ``top_k`` when None
            (what its ``predict`` thresholds).
        thresholds, filter, ax, plot
            As in :meth:`from_predictions`.
        name : str, default=None
            Legend name; the estimator's class name when None.

        Returns
        -------
        display : ThresholdDisplay
        """
        if k is None:
            k = estimator.get_params().get("top_k", 10)
        y_score = estimator.predict_topk(X, k=_check_k(k))
        return cls.from_predictions(
            y, y_score, thresholds=thresholds, filter=filter,
            name=name or type(estimator).__name__, ax=ax, plot=plot,
        )  # fmt: skip

    def plot(self, ax=None, *, name=None, **kwargs):
        """Draw precision and coverage against the threshold.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to plot.
        name : str, default=None
            Legend name prefix, overriding the display's.
        **kwargs
            Passed to both ``ax.plot`` calls.

        Returns
        -------
        display : ThresholdDisplay
            ``self``, with ``ax_``, ``figure_`` and ``lines_`` set.
        """
        ax = _get_ax(ax, f"{type(self).__name__}.plot")
        name = name if name is not None else self.name
        prefix = f"{name}: " if name else ""
        self.lines_ = [
            ax.plot(self.thresholds, 100 * self.precision,
                    label=f"{prefix}precision", **kwargs)[0],
            ax.plot(self.thresholds, 100 * self.coverage, linestyle="--",
                    label=f"{prefix}coverage (rows with a label)", **kwargs)[0],
        ]  # fmt: skip
        ax.set_xlabel("threshold on the score")
        ax.set_ylabel("%")
        ax.legend()
        self.ax_, self.figure_ = ax, ax.figure
        return self


def _retrieved_width(y_score) -> int:
    """The most labels any row of ``y_score`` retrieves (its top-k width)."""
    if isinstance(y_score, tuple):
        indices = np.asarray(y_score[1]) if len(y_score) == 2 else None
        if indices is None or indices.ndim != 2:
            raise ValueError(
                "A tuple y_score must be a (scores, indices) pair of 2-D arrays."
            )
        return max(indices.shape[1], 1)
    if sp.issparse(y_score):
        S = sp.csr_matrix(y_score)
        return max(int(np.diff(S.indptr).max(initial=0)), 1)
    shape = np.shape(y_score)
    if len(shape) != 2:
        raise ValueError(f"y_score must be 2-D, got shape {shape}.")
    return max(shape[1], 1)
