"""Coverage at a target precision, its threshold and OPIS against literal loops."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from skxmc.metrics import (
    coverage_at_precision,
    make_coverage_scorer,
    make_opis_scorer,
    opis,
    precision_lower_bound,
    precision_threshold,
)
from skxmc.utils._testing import CentroidRanker


def _case(seed, n=30, n_labels=5, levels=None):
    rng = np.random.default_rng(seed)
    Y = (rng.uniform(size=(n, n_labels)) < 0.35).astype(int)
    S = rng.uniform(size=(n, n_labels))
    if levels is not None:  # many ties
        S = np.round(S * levels) / levels
    S = S + 0.3 * Y  # informative scores
    return Y, S.astype(np.float32)


def _top1(Y, S):
    """Each row's best score and whether its best label (lowest index on
    ties) is true, written as a loop."""
    out = []
    for i in range(len(S)):
        best_j = 0
        for j in range(1, len(S[i])):
            if S[i][j] > S[i][best_j]:
                best_j = j
        out.append((float(S[i][best_j]), bool(Y[i][best_j])))
    return out


def _literal_threshold_value(entries, target, confidence=None):
    """The lowest score v such that the entries scoring >= v reach the target
    (with ``confidence``: the exact binomial interval's lower end does)."""
    from scipy.stats import binomtest

    best = math.inf
    for v in sorted({s for s, _ in entries}, reverse=True):
        accepted = [hit for s, hit in entries if s >= v]
        if confidence is None:
            precision = sum(accepted) / len(accepted)
        elif sum(accepted) == 0:
            precision = 0.0
        else:
            # the one-sided bound at c is the lower end of the two-sided
            # Clopper-Pearson interval at 2c - 1
            interval = binomtest(sum(accepted), len(accepted)).proportion_ci(
                confidence_level=2 * confidence - 1, method="exact"
            )
            precision = interval.low
        if precision >= target:
            best = v
    return best


def _literal_coverage(entries, threshold):
    accepted = [hit for s, hit in entries if s > threshold]
    precision = sum(accepted) / len(accepted) if accepted else math.nan
    return len(accepted) / len(entries), precision


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("target", [0.5, 0.8, 0.9, 1.0])
@pytest.mark.parametrize("levels", [None, 4])
def test_threshold_and_coverage_equal_the_literal_loop(seed, target, levels):
    Y, S = _case(seed, levels=levels)
    entries = _top1(Y, S)
    v = _literal_threshold_value(entries, target)
    tau = precision_threshold(Y, S, target_precision=target)
    if v == math.inf:
        assert tau == math.inf
    else:
        # score > tau accepts exactly the entries scoring >= v
        assert tau < v and all((s > tau) == (s >= v) for s, _ in entries)
    # oracle C@1: tuned on the same rows
    result = coverage_at_precision(Y, S, target_precision=target)
    coverage, precision = _literal_coverage(entries, tau)
    assert result.coverage == pytest.approx(coverage)
    assert result.threshold == tau
    if math.isnan(precision):
        assert math.isnan(result.precision)
    else:
        assert result.precision == pytest.approx(precision)
        assert result.precision >= target


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("target", [0.5, 0.7, 0.9])
@pytest.mark.parametrize("confidence", [0.6, 0.95])
def test_confidence_threshold_equals_the_literal_binomial_loop(
    seed, target, confidence
):
    Y, S = _case(seed, n=60, levels=6)
    entries = _top1(Y, S)
    v = _literal_threshold_value(entries, target, confidence)
    tau = precision_threshold(Y, S, target_precision=target, confidence=confidence)
    if v == math.inf:
        assert tau == math.inf
    else:
        assert tau < v and all((s > tau) == (s >= v) for s, _ in entries)
    # never more permissive than the plain rule
    assert tau >= precision_threshold(Y, S, target_precision=target)


def test_confidence_keeps_new_rows_at_the_target():
    # rows whose top-1 is right with probability 0.6 + 0.4 * score: the
    # plain rule, tuned on 400 rows, lands below 0.8 on new rows about a
    # quarter of the time (55 of 200 with this seed); the 0.95 bound at most
    # about one time in twenty (8 of 200)
    rng = np.random.default_rng(0)

    def rows(n):
        score = rng.uniform(size=n)
        right = rng.uniform(size=n) < 0.6 + 0.4 * score
        Y = np.stack([right, ~right], axis=1).astype(int)
        return Y, np.stack([score, np.full(n, -1.0)], axis=1)

    below = {None: 0, 0.95: 0}
    for _ in range(200):
        Y_val, S_val = rows(400)
        Y_new, S_new = rows(20000)
        for confidence in below:
            tau = precision_threshold(
                Y_val, S_val, target_precision=0.8, confidence=confidence
            )
            reached = coverage_at_precision(Y_new, S_new, threshold=tau).precision
            below[confidence] += not reached >= 0.8
    assert below[None] >= 30
    assert below[0.95] <= 20


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, True, "0.9"])
def test_bad_confidence(bad):
    with pytest.raises(ValueError, match="confidence must be"):
        precision_threshold(np.eye(2), np.eye(2), confidence=bad)


def test_precision_lower_bound_is_below_the_precision_and_tightens():
    bound = precision_lower_bound([8, 80, 800], [10, 100, 1000], 0.95)
    assert np.all(bound < 0.8) and np.all(np.diff(bound) > 0)
    assert precision_lower_bound(0, 5, 0.9) == 0.0
    # all right: (1 - confidence) ** (1 / n), the literal formula
    assert precision_lower_bound(10, 10, 0.9) == pytest.approx(0.1 ** (1 / 10))


@pytest.mark.parametrize("seed", range(3))
def test_coverage_with_a_validation_threshold_equals_the_literal_loop(seed):
    Y_val, S_val = _case(seed)
    Y_test, S_test = _case(seed + 100)
    tau = precision_threshold(Y_val, S_val, target_precision=0.8)
    result = coverage_at_precision(Y_test, S_test, threshold=tau)
    coverage, precision = _literal_coverage(_top1(Y_test, S_test), tau)
    assert result.coverage == pytest.approx(coverage)
    assert result.precision == pytest.approx(precision)


@pytest.mark.parametrize("k", [2, 3])
def test_micro_threshold_over_the_top_k_equals_the_literal_loop(k):
    Y, S = _case(5)
    entries = []
    for i in range(len(S)):
        order = sorted(range(S.shape[1]), key=lambda j: (-S[i][j], j))[:k]
        entries += [(float(S[i][j]), bool(Y[i][j])) for j in order]
    v = _literal_threshold_value(entries, 0.7)
    tau = precision_threshold(Y, S, target_precision=0.7, k=k)
    assert tau < v and all((s > tau) == (s >= v) for s, _ in entries)


def test_score_forms_agree_and_unretrieved_rows_are_never_covered():
    Y, S = _case(7)
    order = np.argsort(-S, axis=1, kind="stable")[:, :2]
    scores = np.take_along_axis(S, order, 1)
    order[:3] = -1  # three rows retrieved nothing
    scores[:3] = -np.inf
    dense = np.full(S.shape, -np.inf, dtype=np.float32)
    rows = np.nonzero(order[:, 0] >= 0)[0]
    for r in rows:
        dense[r, order[r]] = scores[r]
    csr = sp.csr_matrix(np.where(np.isfinite(dense), dense, 0))
    results = [
        coverage_at_precision(Y, form, target_precision=0.6)
        for form in ((scores, order), csr)
    ]
    assert results[0] == pytest.approx(results[1], nan_ok=True)
    covered = results[0].coverage * len(Y)
    assert covered <= len(Y) - 3


def test_unreachable_target_covers_nothing():
    Y = np.array([[0, 1], [0, 1]])
    S = np.array([[0.9, 0.1], [0.8, 0.2]])  # every top-1 is wrong
    assert precision_threshold(Y, S, target_precision=0.5) == math.inf
    result = coverage_at_precision(Y, S)
    assert result.coverage == 0.0 and math.isnan(result.precision)


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, True, "0.9"])
def test_target_precision_is_checked(bad):
    with pytest.raises(ValueError, match="target_precision"):
        precision_threshold(np.eye(2), np.eye(2), target_precision=bad)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    target=st.floats(0.05, 1.0),
)
def test_property_oracle_coverage_is_maximal(seed, target):
    """No threshold covers more rows while keeping the target precision."""
    Y, S = _case(seed, n=12, n_labels=3, levels=5)
    result = coverage_at_precision(Y, S, target_precision=target)
    for s, _ in _top1(Y, S):
        c, p = _literal_coverage(_top1(Y, S), np.nextafter(s, -np.inf))
        if p >= target:
            assert c <= result.coverage + 1e-12


# -------------------------------------------------------------------- OPIS
def _literal_opis(Y, S, far_range, n_thresholds):
    n, n_labels = Y.shape
    negatives = sorted(
        S[i][j]
        for i in range(n)
        for j in range(n_labels)
        if not Y[i][j] and S[i][j] > -math.inf  # retrieved negatives
    )
    low, high = far_range
    d_min, d_max = np.quantile(negatives, [1 - high, 1 - low])
    grid = [
        d_min + (d_max - d_min) * t / (n_thresholds - 1) for t in range(n_thresholds)
    ]
    classes = [j for j in range(n_labels) if 0 < sum(Y[:, j]) < n]
    U = []
    for j in classes:
        row = []
        for d in grid:
            tp = sum(1 for i in range(n) if Y[i][j] and S[i][j] > d)
            tn = sum(1 for i in range(n) if not Y[i][j] and S[i][j] <= d)
            tpr, tnr = tp / sum(Y[:, j]), tn / (n - sum(Y[:, j]))
            row.append(2 * tpr * tnr / (tpr + tnr) if tpr + tnr else 0.0)
        U.append(row)
    total = 0.0
    for row in U:
        integral = 0.0
        for t in range(n_thresholds - 1):
            mean0 = sum(u[t] for u in U) / len(U)
            mean1 = sum(u[t + 1] for u in U) / len(U)
            f0, f1 = (row[t] - mean0) ** 2, (row[t + 1] - mean1) ** 2
            integral += (f0 + f1) / 2 * (grid[t + 1] - grid[t])
        total += integral / (d_max - d_min)
    return total / len(U)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("far_range", [(0.0, 1.0), (0.05, 0.5)])
def test_opis_equals_the_literal_loop(seed, far_range):
    Y, S = _case(seed, n=20, n_labels=4)
    Y[:, 3] = 0  # a label without positives is not a class of the average
    expected = _literal_opis(Y, S.astype(np.float64), far_range, 7)
    got = opis(Y, S, far_range=far_range, n_thresholds=7)
    assert got == pytest.approx(expected, rel=1e-6)


def test_opis_of_sparse_top_k_treats_unretrieved_pairs_as_minus_inf():
    Y, S = _case(3, n=20, n_labels=4)
    top = np.argsort(-S, axis=1)[:, :2]
    kept = np.full(S.shape, -np.inf)
    np.put_along_axis(kept, top, np.take_along_axis(S, top, 1), 1)
    csr = sp.csr_matrix(np.where(np.isfinite(kept), kept, 0))
    got = opis(Y, csr, far_range=(0.0, 1.0), n_thresholds=5)
    assert got == pytest.approx(_literal_opis(Y, kept, (0.0, 1.0), 5), rel=1e-6)
    pair = (np.take_along_axis(S, top, 1), top)
    assert opis(Y, pair, far_range=(0.0, 1.0), n_thresholds=5) == pytest.approx(got)


def test_opis_is_zero_for_identical_label_behaviour():
    Y = np.array([[1, 0], [0, 1], [1, 0], [0, 1]])
    S = np.array([[0.9, 0.1], [0.1, 0.9], [0.8, 0.2], [0.2, 0.8]])
    assert opis(Y, S, far_range=(0.0, 1.0)) == 0.0


# ----------------------------------------------------------------- scorers
def test_coverage_and_opis_scorers_equal_the_metrics():
    from skxmc.datasets import make_xmc_classification

    X, Y = make_xmc_classification(
        n_samples=60, n_features=12, n_labels=6, random_state=0
    )[:2]
    est = CentroidRanker(top_k=3, device="cpu").fit(X, Y)
    decision = est.decision_function(X)
    c = make_coverage_scorer(0.8)(est, X, Y)
    assert c == coverage_at_precision(Y, decision, target_precision=0.8).coverage
    o = make_opis_scorer(far_range=(0.0, 1.0), n_thresholds=5)(est, X, Y)
    assert o == -opis(Y, decision, far_range=(0.0, 1.0), n_thresholds=5)
