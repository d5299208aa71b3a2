"""The Display objects of skxmc.metrics against literal computations."""

import sys

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator

from skxmc.metrics import (
    LabelFrequencyDisplay,
    PropensityTiltDisplay,
    ThresholdDisplay,
    coverage_at_k,
    inverse_propensity,
    precision_at_k,
    psp_at_k,
)


def _problem(rng, n=40, n_labels=30, n_train=80):
    """Random ground truth, training labels with skewed frequencies, scores."""
    popularity = 1.0 / np.arange(1, n_labels + 1)
    popularity = popularity[rng.permutation(n_labels)]
    Y_train = (rng.random((n_train, n_labels)) < 0.3 * popularity).astype(int)
    Y_train[:, -1] = 0  # a label never seen in training
    y_true = (rng.random((n, n_labels)) < 0.4 * popularity).astype(int)
    y_score = rng.random((n, n_labels))
    return y_true, y_score, Y_train


def _literal_buckets(counts, n_buckets):
    """Labels by decreasing frequency (ties: lower index), cut at every
    1/n_buckets of the total frequency; zero-frequency labels in the last."""
    order = sorted(range(len(counts)), key=lambda j: (-counts[j], j))
    total = sum(counts)
    bucket, running = {}, 0.0
    for j in order:
        if counts[j] == 0:
            bucket[j] = n_buckets - 1
        else:
            bucket[j] = min(int(running * n_buckets // total), n_buckets - 1)
        running += counts[j]
    return bucket


def _literal_topk(row_scores, k, skip=()):
    ranked = sorted(
        (j for j in range(len(row_scores)) if j not in skip),
        key=lambda j: (-row_scores[j], j),
    )
    return ranked[:k]


@pytest.mark.parametrize("metric", ["precision", "recall"])
@pytest.mark.parametrize("k", [1, 3])
def test_label_frequency_matches_literal(rng, metric, k):
    y_true, y_score, Y_train = _problem(rng)
    n_buckets = 4
    counts = Y_train.sum(axis=0).tolist()
    bucket = _literal_buckets(counts, n_buckets)
    hits = [0] * n_buckets
    true = [0] * n_buckets
    for i in range(y_true.shape[0]):
        positives = set(np.flatnonzero(y_true[i]).tolist())
        for j in positives:
            true[bucket[j]] += 1
        for j in _literal_topk(y_score[i].tolist(), k):
            if j in positives:
                hits[bucket[j]] += 1
    if metric == "precision":
        expected = [h / (k * y_true.shape[0]) for h in hits]
    else:
        expected = [h / t if t else 0.0 for h, t in zip(hits, true)]
    display = LabelFrequencyDisplay.from_predictions(
        sp.csr_matrix(y_true), y_score, y_train=sp.csr_matrix(Y_train), k=k,
        n_buckets=n_buckets, metric=metric, plot=False,
    )  # fmt: skip
    np.testing.assert_allclose(display.values, expected)
    sizes = [sum(1 for b in bucket.values() if b == c) for c in range(n_buckets)]
    np.testing.assert_array_equal(display.n_labels, sizes)
    assert display.frequency_range[-1, 0] == 0  # the unseen label is in the tail
    if metric == "precision":  # the bars add up to P@k
        assert display.values.sum() == pytest.approx(
            precision_at_k(y_true, y_score, k=k)
        )


def test_label_frequency_filter_and_counts(rng):
    y_true, y_score, Y_train = _problem(rng)
    filter = (rng.random(y_true.shape) < 0.1).astype(int)
    from_matrix = LabelFrequencyDisplay.from_predictions(
        y_true, y_score, y_train=Y_train, k=3, filter=filter, plot=False
    )
    from_counts = LabelFrequencyDisplay.from_predictions(
        y_true, y_score, y_train=Y_train.sum(axis=0), k=3, filter=filter, plot=False
    )
    np.testing.assert_allclose(from_matrix.values, from_counts.values)
    assert from_matrix.values.sum() == pytest.approx(
        precision_at_k(y_true, y_score, k=3, filter=filter)
    )
    with pytest.raises(ValueError, match="labels but y_true has"):
        LabelFrequencyDisplay.from_predictions(
            y_true, y_score, y_train=Y_train[:, :-1], plot=False
        )
    with pytest.raises(ValueError, match="metric must be"):
        LabelFrequencyDisplay.from_predictions(
            y_true, y_score, y_train=Y_train, metric="f1", plot=False
        )


class _TiltedScorer(BaseEstimator):
    """Dense scores times inv_p ** propensity_tilt (no fit needed)."""

    def __init__(self, scores=None, inv_p=None, propensity_tilt=0.0):
        self.scores = scores
        self.inv_p = inv_p
        self.propensity_tilt = propensity_tilt

    def predict_topk(self, X, k):
        tilted = self.scores[X] * self.inv_p**self.propensity_tilt
        order = np.argsort(-tilted, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(tilted, order, axis=1), order


def test_propensity_tilt_matches_metrics(rng):
    y_true, y_score, Y_train = _problem(rng)
    inv_p = inverse_propensity(Y_train)
    tilts = [0.0, 0.5, 1.0]
    estimator = _TiltedScorer(y_score, inv_p, propensity_tilt=0.25)
    rows = np.arange(y_true.shape[0])
    display = PropensityTiltDisplay.from_estimator(
        estimator, rows, y_true, inv_propensity=inv_p, tilts=tilts, k=3, plot=False
    )
    assert estimator.propensity_tilt == 0.25  # restored
    for i, tilt in enumerate(tilts):
        literal = y_score * inv_p**tilt
        assert display.precision[i] == pytest.approx(
            precision_at_k(y_true, literal, k=3)
        )
        assert display.psp[i] == pytest.approx(psp_at_k(y_true, literal, inv_p, k=3))
    # tilting towards rare labels raises PSP@k here
    assert display.psp[-1] > display.psp[0]
    assert display.name == "_TiltedScorer"
    with pytest.raises(ValueError, match="one prediction per tilt"):
        PropensityTiltDisplay.from_predictions(
            y_true, [y_score], tilts=[0, 1], inv_propensity=inv_p, plot=False
        )
    with pytest.raises(ValueError, match="no propensity_tilt"):
        PropensityTiltDisplay.from_estimator(
            BaseEstimator(), rows, y_true, inv_propensity=inv_p, plot=False
        )


@pytest.mark.parametrize("form", ["dense", "pair", "csr"])
def test_threshold_matches_literal(rng, form):
    y_true, y_score, _ = _problem(rng)
    k = 5
    order = np.argsort(-y_score, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(y_score, order, axis=1)
    if form == "dense":
        given, retrieved = y_score, [dict(enumerate(r)) for r in y_score.tolist()]
    else:
        retrieved = [dict(zip(o.tolist(), s.tolist())) for o, s in zip(order, top)]
        given = (top, order)
        if form == "csr":
            given = sp.csr_matrix(
                (top.ravel(), order.ravel(), np.arange(0, top.size + 1, k)),
                shape=y_true.shape,
            )
    thresholds = [0.1, 0.5, 0.9, 0.99]
    display = ThresholdDisplay.from_predictions(
        y_true, given, thresholds=thresholds, plot=False
    )
    for i, t in enumerate(thresholds):
        predicted = [
            [j for j, s in row.items() if s > t] for row in retrieved
        ]  # fmt: skip
        n_pred = sum(len(p) for p in predicted)
        n_hit = sum(y_true[r, j] for r, p in enumerate(predicted) for j in p)
        expected = n_hit / n_pred if n_pred else np.nan
        np.testing.assert_allclose(display.precision[i], expected)
        covered = np.mean([len(p) > 0 for p in predicted])
        assert display.coverage[i] == pytest.approx(covered)
        assert display.coverage[i] == pytest.approx(coverage_at_k(given, t, k=1))


def test_threshold_filter_and_default_thresholds(rng):
    y_true, y_score, _ = _problem(rng, n=10, n_labels=6)
    filter = np.zeros_like(y_true)
    filter[:, 0] = 1  # label 0 removed everywhere
    display = ThresholdDisplay.from_predictions(
        y_true, y_score, thresholds=[-1.0], filter=filter, plot=False
    )
    # at a threshold below every score each row predicts labels 1..5
    expected = y_true[:, 1:].sum() / (10 * 5)
    assert display.precision[0] == pytest.approx(expected)
    default = ThresholdDisplay.from_predictions(y_true, y_score, plot=False)
    assert np.all(np.diff(default.thresholds) > 0)
    assert default.coverage[0] == 1.0 and default.coverage[-1] == 0.0


def test_plots_with_agg(rng):
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    y_true, y_score, Y_train = _problem(rng)
    display = LabelFrequencyDisplay.from_predictions(
        y_true, y_score, y_train=Y_train, n_buckets=3, name="model"
    )
    np.testing.assert_allclose(display.line_.get_ydata(), 100 * display.values)
    assert len(display.ax_.get_xticklabels()) == 3
    assert display.ax_.get_legend().get_texts()[0].get_text() == "model"
    _, ax = plt.subplots()
    tilt = PropensityTiltDisplay.from_predictions(
        y_true, [y_score, y_score**2], tilts=[0, 1],
        inv_propensity=inverse_propensity(Y_train), ax=ax,
    )  # fmt: skip
    assert tilt.ax_ is ax
    np.testing.assert_allclose(tilt.line_.get_xdata(), 100 * tilt.precision)
    threshold = ThresholdDisplay.from_predictions(y_true, y_score)
    assert len(threshold.lines_) == 2
    np.testing.assert_allclose(
        threshold.lines_[1].get_ydata(), 100 * threshold.coverage
    )
    plt.close("all")


def test_clear_error_without_matplotlib(rng, monkeypatch):
    y_true, y_score, Y_train = _problem(rng)
    # None in sys.modules makes `import matplotlib` raise ImportError
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    display = LabelFrequencyDisplay.from_predictions(
        y_true, y_score, y_train=Y_train, plot=False
    )  # the numbers need no matplotlib
    with pytest.raises(ImportError, match=r"requires matplotlib.*pip install"):
        display.plot()
    with pytest.raises(ImportError, match=r"ThresholdDisplay\.plot requires"):
        ThresholdDisplay.from_predictions(y_true, y_score)
