"""TunedThresholdXMC and ScoreCalibrator: the tuned threshold against a
literal search on the held-out rows, calibration, and the estimator contract."""

import math

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import GridSearchCV, KFold

from skxmc import TunedThresholdXMC, XRLinearClassifier, make_xmc_pipeline
from skxmc.datasets import make_xmc_classification
from skxmc.metrics import XMC_SCORERS, make_coverage_scorer
from skxmc.models import ScoreCalibrator
from skxmc.utils._testing import CentroidRanker


@pytest.fixture(scope="module")
def data():
    X, Y = make_xmc_classification(
        n_samples=240, n_features=20, n_labels=6, random_state=0
    )
    return X, Y


def _literal_micro_threshold(Y, scores, indices, target):
    """Lowest v whose accepted set {entries scoring >= v} reaches the target."""
    entries = [
        (float(scores[i, j]), bool(Y[i, indices[i, j]]))
        for i in range(len(scores))
        for j in range(scores.shape[1])
        if indices[i, j] >= 0
    ]
    best = math.inf
    for v in sorted({s for s, _ in entries}, reverse=True):
        accepted = [h for s, h in entries if s >= v]
        if sum(accepted) / len(accepted) >= target:
            best = v
    return best


@pytest.mark.parametrize("target", [0.5, 0.7, 0.9])
@pytest.mark.parametrize("k", [1, 3])
def test_threshold_is_the_literal_search_on_the_held_out_rows(data, target, k):
    X, Y = data
    Y = Y.toarray()
    clf = TunedThresholdXMC(
        CentroidRanker(device="cpu", random_state=0),
        target_precision=target, k=k, top_k=3, random_state=1,
    ).fit(X, Y)  # fmt: skip
    val = clf.validation_indices_
    assert len(val) == 48
    train = np.setdiff1d(np.arange(len(Y)), val)
    inner = CentroidRanker(device="cpu", random_state=0).fit(X[train], Y[train])
    scores, indices = inner.predict_topk(X[val], 3)
    scores, indices = scores[:, :k], indices[:, :k]
    v = _literal_micro_threshold(Y[val], scores, indices, target)
    if v == math.inf:
        assert clf.threshold_ == math.inf
    else:
        assert clf.threshold_ < v
        valid = indices >= 0
        assert np.array_equal(scores[valid] > clf.threshold_, scores[valid] >= v)
        assert clf.validation_precision_ >= target or k > 1


def test_confidence_tunes_on_the_precision_lower_bound(data):
    from skxmc.metrics import precision_threshold

    X, Y = data
    params = {"target_precision": 0.9, "k": 1, "top_k": 3, "random_state": 1}
    plain = TunedThresholdXMC(CentroidRanker(device="cpu", random_state=0), **params)
    sure = TunedThresholdXMC(
        CentroidRanker(device="cpu", random_state=0), confidence=0.9, **params
    )
    plain.fit(X, Y)
    sure.fit(X, Y)
    val = sure.validation_indices_
    scores, indices = sure.estimator_.predict_topk(X[val], 3)
    expected = precision_threshold(
        Y[val], (scores, indices), target_precision=0.9, k=1, confidence=0.9
    )
    assert sure.threshold_ == expected
    # 46 of 48 held-out top-1 labels right (95.8%) reach 0.9, but their lower
    # bound at 90% confidence (0.89) does not: the bound accepts nothing
    assert plain.validation_coverage_ == 1.0
    assert plain.validation_precision_ >= 0.9
    assert sure.threshold_ == math.inf and sure.validation_coverage_ == 0.0


def test_predict_reaches_the_target_on_the_held_out_rows(data):
    X, Y = data
    clf = TunedThresholdXMC(
        CentroidRanker(device="cpu", random_state=0), target_precision=0.8,
        top_k=3, random_state=0,
    ).fit(X, Y)  # fmt: skip
    val = clf.validation_indices_
    predicted = clf.predict(X[val])
    hits = predicted.multiply(Y[val]).sum()
    assert predicted.nnz > 0
    assert hits / predicted.nnz >= 0.8
    # the plain estimator with the default 0.5 threshold is a different rule
    plain = CentroidRanker(device="cpu", top_k=3, random_state=0)
    assert clf.threshold_ != plain.threshold


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_calibrated_scores_are_probabilities_in_the_same_order(data, method):
    X, Y = data
    clf = TunedThresholdXMC(
        CentroidRanker(device="cpu", random_state=0), calibration=method,
        top_k=4, random_state=0,
    ).fit(X, Y)  # fmt: skip
    raw, raw_idx = clf.estimator_.predict_topk(X, 4)
    cal, idx = clf.predict_topk(X, 4)
    np.testing.assert_array_equal(idx, raw_idx)
    assert ((cal >= 0) & (cal <= 1)).all()
    # monotone: a higher raw score never gets a lower probability
    order = np.argsort(raw.ravel(), kind="stable")
    assert (np.diff(cal.ravel()[order]) >= -1e-7).all()
    assert 0 <= clf.threshold_ <= 1 or clf.threshold_ == math.inf


def test_calibration_matches_the_held_out_frequencies():
    rng = np.random.default_rng(0)
    scores = rng.uniform(size=4000)
    hits = rng.uniform(size=4000) < scores  # P(hit | s) = s
    for method in ("isotonic", "sigmoid"):
        cal = ScoreCalibrator(method).fit(scores, hits)
        got = cal.transform(np.array([0.2, 0.5, 0.8]))
        np.testing.assert_allclose(got, [0.2, 0.5, 0.8], atol=0.08)


def test_a_fixed_threshold_is_used_as_given(data):
    X, Y = data
    clf = TunedThresholdXMC(
        CentroidRanker(device="cpu"), threshold=0.5, calibration="isotonic",
        top_k=3, random_state=0,
    ).fit(X, Y)  # fmt: skip
    assert clf.threshold_ == 0.5
    scores, indices = clf.predict_topk(X, 3)
    expected = (scores > 0.5) & (indices >= 0)
    assert clf.predict(X).nnz == expected.sum()


def test_refit_fits_on_every_row(data):
    X, Y = data
    clf = TunedThresholdXMC(
        CentroidRanker(device="cpu", random_state=0), refit=True, random_state=0
    ).fit(X, Y)
    full = CentroidRanker(device="cpu", random_state=0).fit(X, Y)
    np.testing.assert_allclose(
        clf.estimator_.centroids_.numpy(), full.centroids_.numpy()
    )


def test_unreachable_target_predicts_nothing():
    # two inputs, each with two equally frequent labels: every top-1 is right
    # for half the rows only, so precision 1 is out of reach
    i = np.arange(400)
    X = np.eye(2)[i % 2]
    Y = np.zeros((400, 4))
    Y[i, 2 * (i % 2) + (i // 2) % 2] = 1
    clf = TunedThresholdXMC(
        CentroidRanker(device="cpu", random_state=0), target_precision=1.0,
        top_k=1, random_state=0,
    ).fit(X, Y)  # fmt: skip
    assert clf.threshold_ == math.inf
    assert clf.validation_coverage_ == 0.0
    assert clf.predict(X).sum() == 0


def test_text_pipeline_and_grid_search():
    from skxmc.utils._testing import make_keyword_docs

    docs, Y = make_keyword_docs(120, seed=0)
    pipe = make_xmc_pipeline(TfidfVectorizer(), XRLinearClassifier(top_k=3))
    clf = TunedThresholdXMC(pipe, target_precision=0.8, random_state=0, top_k=3)
    search = GridSearchCV(
        clf,
        {"target_precision": [0.7, 0.9]},
        scoring={**XMC_SCORERS, "C@1": make_coverage_scorer(0.9)},
        refit="C@1",
        cv=KFold(3, shuffle=True, random_state=0),
    ).fit(docs, Y)
    assert search.best_estimator_.predict(docs[:5]).shape == (5, 8)


def test_too_few_rows_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 2 samples"):
        TunedThresholdXMC(CentroidRanker(device="cpu")).fit(
            np.ones((1, 2)), np.array([[1, 1]])
        )
