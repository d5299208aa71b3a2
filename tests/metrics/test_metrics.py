"""skxmc.metrics against literal per-row implementations and hand-worked cases."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import GridSearchCV, KFold

from skxmc.metrics import (
    XMC_SCORERS,
    coverage_at_k,
    inverse_propensity,
    make_psp_scorer,
    ndcg_at_k,
    precision_at_k,
    psndcg_at_k,
    psp_at_k,
    recall_at_k,
    xmc_report,
)
from skxmc.utils._sparse import dense_row_topk, topk_to_csr


# ------------------------------------------------------------ literal oracles
# Deliberately naive: Python loops over rows, sets and sorted lists; a ranking is
# the retrieved (label, score) pairs sorted by decreasing score, ties to the
# lower label, with the filtered labels taken out first.
def _retrieved(y_score, form, n_labels):
    """Per row, a dict label -> score of the retrieved labels."""
    if form == "dense":
        return [dict(enumerate(row)) for row in np.asarray(y_score).tolist()]
    if form == "csr":
        y_score = sp.csr_matrix(y_score)
        return [
            dict(zip(y_score[i].indices.tolist(), y_score[i].data.tolist()))
            for i in range(y_score.shape[0])
        ]
    scores, indices = y_score
    return [
        {int(c): float(s) for s, c in zip(srow, crow) if c >= 0}
        for srow, crow in zip(scores, indices)
    ]


def _sets(matrix):
    matrix = sp.csr_matrix(matrix)
    return [set(matrix[i].nonzero()[1].tolist()) for i in range(matrix.shape[0])]


def _naive_rankings(y_true, y_score, form, k, filter=None):
    truth = _sets(y_true)
    removed = _sets(filter) if filter is not None else [set() for _ in truth]
    rankings = []
    for i, retrieved in enumerate(_retrieved(y_score, form, len(truth))):
        kept = [(label, s) for label, s in retrieved.items() if label not in removed[i]]
        kept.sort(key=lambda pair: (-pair[1], pair[0]))
        rankings.append([label for label, _ in kept[:k]])
    truth = [t - r for t, r in zip(truth, removed)]
    return truth, rankings


def naive_precision(y_true, y_score, form, k, filter=None):
    truth, rankings = _naive_rankings(y_true, y_score, form, k, filter)
    total = 0.0
    for t, ranking in zip(truth, rankings):
        total += sum(1 for label in ranking if label in t) / k
    return total / len(truth)


def naive_recall(y_true, y_score, form, k, filter=None):
    truth, rankings = _naive_rankings(y_true, y_score, form, k, filter)
    total = 0.0
    for t, ranking in zip(truth, rankings):
        if t:
            total += sum(1 for label in ranking if label in t) / len(t)
    return total / len(truth)


def naive_ndcg(y_true, y_score, form, k, filter=None):
    truth, rankings = _naive_rankings(y_true, y_score, form, k, filter)
    total = 0.0
    for t, ranking in zip(truth, rankings):
        if not t:
            continue
        dcg = 0.0
        for r, label in enumerate(ranking):
            if label in t:
                dcg += 1 / math.log2(r + 2)
        ideal = sum(1 / math.log2(r + 2) for r in range(min(k, len(t))))
        total += dcg / ideal
    return total / len(truth)


def naive_psp(y_true, y_score, form, k, w, filter=None):
    truth, rankings = _naive_rankings(y_true, y_score, form, k, filter)
    num = den = 0.0
    for t, ranking in zip(truth, rankings):
        num += sum(w[label] for label in ranking if label in t) / k
        den += sum(sorted((w[label] for label in t), reverse=True)[:k]) / k
    return num / den if den > 0 else 0.0


def naive_psndcg(y_true, y_score, form, k, w, filter=None):
    truth, rankings = _naive_rankings(y_true, y_score, form, k, filter)
    num = den = 0.0
    for t, ranking in zip(truth, rankings):
        if not t:
            continue
        norm = sum(1 / math.log2(r + 2) for r in range(min(k, len(t))))
        dcg = 0.0
        for r, label in enumerate(ranking):
            if label in t:
                dcg += w[label] / math.log2(r + 2)
        best = sorted((w[label] for label in t), reverse=True)[:k]
        ideal = sum(weight / math.log2(r + 2) for r, weight in enumerate(best))
        num += dcg / norm
        den += ideal / norm
    return num / den if den > 0 else 0.0


def naive_inverse_propensity(Y, A, B):
    Y = np.asarray(sp.csr_matrix(Y).toarray())
    N = Y.shape[0]
    out = []
    for label in range(Y.shape[1]):
        n_l = sum(1 for row in range(N) if Y[row, label] != 0)
        C = (math.log(N) - 1) * (B + 1) ** A
        out.append(1 + C * (n_l + B) ** (-A))
    return np.array(out)


# ------------------------------------------------------------- random cases
def _random_case(seed, n=40, n_labels=12, per_row=5):
    """y_true plus the same retrieved scores in the three forms.

    Scores are multiples of 0.1 so that ties are common. The CSR and the pair
    hold ``per_row`` retrieved labels per row (fewer for some rows, none for
    one); the dense form ranks every label.
    """
    rng = np.random.default_rng(seed)
    truth = rng.random((n, n_labels)) < 0.2
    truth[3] = False  # a row without positives
    y_true = sp.csr_matrix(truth.astype(np.float64))
    dense = np.round(rng.random((n, n_labels)), 1)
    dense += 0.3 * y_true.toarray()  # better than chance
    scores = np.full((n, per_row + 2), -np.inf)
    indices = np.full((n, per_row + 2), -1, dtype=np.int64)
    for i in range(n):
        size = 0 if i == 5 else int(rng.integers(1, per_row + 1))
        labels = rng.choice(n_labels, size=size, replace=False)
        slots = rng.choice(per_row + 2, size=size, replace=False)  # unsorted pair
        indices[i, slots] = labels
        scores[i, slots] = dense[i, labels]
    pair = (scores, indices)
    csr = topk_to_csr(scores, indices, n_labels)
    # CSR data is float32: give the pair and the oracle the same float32 values
    pair = (scores.astype(np.float32), indices)
    dense = dense.astype(np.float32)
    return y_true, dense, csr, pair, rng


def _train_weights(seed, n_labels=12):
    """Inverse propensities from a random training label matrix."""
    Y_train = np.random.default_rng(seed + 100).random((60, n_labels)) < 0.3
    return inverse_propensity(Y_train)


def _random_filter(rng, y_true, dense_share=0.3):
    """Filter some true pairs and some random pairs."""
    n, n_labels = y_true.shape
    mask = rng.random((n, n_labels)) < 0.1
    mask |= (y_true.toarray() > 0) & (rng.random((n, n_labels)) < dense_share)
    return sp.csr_matrix(mask.astype(np.float64))


FORMS = ["csr", "dense", "pair"]


def _form(case, form):
    _, dense, csr, pair, _ = case
    return {"csr": csr, "dense": dense, "pair": pair}[form]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("use_filter", [False, True])
@pytest.mark.parametrize("k", [1, 3, 5, 9])
def test_metrics_match_literal_implementations(seed, form, use_filter, k):
    case = _random_case(seed)
    y_true, rng = case[0], case[4]
    y_score = _form(case, form)
    filter = _random_filter(rng, y_true) if use_filter else None
    w = _train_weights(seed)
    kwargs = {"k": k, "filter": filter}
    args = (y_true, y_score, form, k)
    assert precision_at_k(y_true, y_score, **kwargs) == pytest.approx(
        naive_precision(*args, filter), abs=1e-12
    )
    assert recall_at_k(y_true, y_score, **kwargs) == pytest.approx(
        naive_recall(*args, filter), abs=1e-12
    )
    assert ndcg_at_k(y_true, y_score, **kwargs) == pytest.approx(
        naive_ndcg(*args, filter), abs=1e-12
    )
    assert psp_at_k(y_true, y_score, w, **kwargs) == pytest.approx(
        naive_psp(*args, w, filter), abs=1e-12
    )
    assert psndcg_at_k(y_true, y_score, w, **kwargs) == pytest.approx(
        naive_psndcg(*args, w, filter), abs=1e-12
    )


@pytest.mark.parametrize("form", FORMS)
def test_xmc_report_equals_the_individual_metrics(form):
    case = _random_case(7)
    y_true, rng = case[0], case[4]
    y_score = _form(case, form)
    filter = _random_filter(rng, y_true)
    w = _train_weights(7)
    report = xmc_report(y_true, y_score, k=(1, 3, 5), inv_propensity=w, filter=filter)
    expected = {}
    for name, metric in [("P", precision_at_k), ("nDCG", ndcg_at_k)]:
        for k in (1, 3, 5):
            expected[f"{name}@{k}"] = metric(y_true, y_score, k=k, filter=filter)
    for name, metric in [("PSP", psp_at_k), ("PSnDCG", psndcg_at_k)]:
        for k in (1, 3, 5):
            expected[f"{name}@{k}"] = metric(y_true, y_score, w, k=k, filter=filter)
    for k in (1, 3, 5):
        expected[f"R@{k}"] = recall_at_k(y_true, y_score, k=k, filter=filter)
    assert list(report) == list(expected)  # same keys, same order
    for key, value in expected.items():
        assert report[key] == pytest.approx(value, abs=1e-12), key
        assert isinstance(report[key], float)
    no_ps = xmc_report(y_true, y_score, k=2)
    assert list(no_ps) == ["P@2", "nDCG@2", "R@2"]


# --------------------------------------------------------- hand-worked cases
# 3 rows, 5 labels. True labels: row 0 {0, 3}, row 1 {1}, row 2 none.
HAND_TRUE = np.array([[1, 0, 0, 1, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0, 0]])
# Rankings: row 0: 1 (.9), 3 (.8), 2 (.3), 0 (.1), 4 (0)
#           row 1: 0 and 1 tie at .5 -> 0 first; then 2 (.2), 4 (.1), 3 (0)
#           row 2: 0, 1, 2, then 3 and 4 tie at 0 -> 3, 4
HAND_SCORE = np.array(
    [
        [0.1, 0.9, 0.3, 0.8, 0.0],
        [0.5, 0.5, 0.2, 0.0, 0.1],
        [0.3, 0.2, 0.1, 0.0, 0.0],
    ]
)
HAND_W = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
G = 1 / math.log2(3)  # discount of rank 2


def _hand_forms():
    csr = sp.csr_matrix(HAND_SCORE)  # drops the zeros: labels scored 0 not retrieved
    full_csr = topk_to_csr(*dense_row_topk(HAND_SCORE, 5), 5)  # keeps every entry
    pair = dense_row_topk(HAND_SCORE, 5)
    shuffled = (pair[0][:, ::-1].copy(), pair[1][:, ::-1].copy())  # worst first
    return {"dense": HAND_SCORE, "full_csr": full_csr, "pair": shuffled, "csr": csr}


@pytest.mark.parametrize("form", ["dense", "full_csr", "pair", "csr"])
def test_hand_case(form):
    y_score = _hand_forms()[form]
    # P@1: the top labels 1, 0, 0 are all wrong -> 0
    assert precision_at_k(HAND_TRUE, y_score, k=1) == 0.0
    # P@2: row 0 {1, 3} has 3, row 1 {0, 1} has 1 -> (1/2 + 1/2 + 0) / 3 = 1/3
    assert precision_at_k(HAND_TRUE, y_score, k=2) == pytest.approx(1 / 3)
    # P@3: rows 0 and 1 have one hit each in 3 -> (1/3 + 1/3) / 3 = 2/9
    assert precision_at_k(HAND_TRUE, y_score, k=3) == pytest.approx(2 / 9)
    # R@2: row 0 finds 1 of 2, row 1 finds 1 of 1, row 2 counts 0 -> 1.5 / 3
    assert recall_at_k(HAND_TRUE, y_score, k=2) == pytest.approx(0.5)
    # nDCG@2: row 0 hit at rank 2 -> G / (1 + G); row 1 hit at rank 2 with one
    # positive -> G / 1; row 2 -> 0
    assert ndcg_at_k(HAND_TRUE, y_score, k=2) == pytest.approx((G / (1 + G) + G) / 3)
    # PSP@2, weights 1..5: hits weigh 4 (row 0, label 3) + 2 (row 1, label 1) = 6;
    # ideal: row 0 {3, 0} -> 4 + 1, row 1 {1} -> 2: 7 -> 6/7
    assert psp_at_k(HAND_TRUE, y_score, HAND_W, k=2) == pytest.approx(6 / 7)
    assert psp_at_k(HAND_TRUE, y_score, HAND_W, k=1) == 0.0
    # PSnDCG@2: row 0: 4 G / (1 + G) vs ideal (4 + G) / (1 + G);
    #           row 1: 2 G / 1 vs ideal 2 / 1
    expected = (4 * G / (1 + G) + 2 * G) / ((4 + G) / (1 + G) + 2)
    assert psndcg_at_k(HAND_TRUE, y_score, HAND_W, k=2) == pytest.approx(expected)
    if form != "csr":
        # every label retrieved: all positives are within the top 5
        # nDCG@5 row 0: hits at ranks 2 and 4 -> (G + 1/log2(5)) / (1 + G)
        expected = ((G + 1 / math.log2(5)) / (1 + G) + G) / 3
        assert ndcg_at_k(HAND_TRUE, y_score, k=5) == pytest.approx(expected)
        assert recall_at_k(HAND_TRUE, y_score, k=5) == pytest.approx(2 / 3)
    else:
        # the sparse form does not retrieve label 4 of row 0 or labels 3, 4 of
        # rows 1 and 2 (zero scores are not stored); label 0 of row 0 is still
        # retrieved at rank 4, so the values agree here
        assert recall_at_k(HAND_TRUE, y_score, k=5) == pytest.approx(2 / 3)


@pytest.mark.parametrize("form", ["dense", "full_csr", "pair"])
def test_hand_case_with_filter(form):
    y_score = _hand_forms()[form]
    # filter (0, 3) (a true pair) and (1, 0) (a retrieved wrong label)
    filter = sp.csr_matrix(([1, 1], ([0, 1], [3, 0])), shape=(3, 5))
    # rankings now: row 0: 1, 2, 0, 4 with truth {0}; row 1: 1, 2, 4, 3 with {1}
    # P@1: (0 + 1 + 0) / 3
    assert precision_at_k(HAND_TRUE, y_score, k=1, filter=filter) == pytest.approx(
        1 / 3
    )
    # nDCG@3: row 0 hit at rank 3 -> 1/log2(4) = 1/2; row 1 hit at rank 1 -> 1
    assert ndcg_at_k(HAND_TRUE, y_score, k=3, filter=filter) == pytest.approx(0.5)
    # R@1: row 0 0/1, row 1 1/1 -> 1/3
    assert recall_at_k(HAND_TRUE, y_score, k=1, filter=filter) == pytest.approx(1 / 3)
    # PSP@3: hits weigh 1 (row 0) + 2 (row 1); ideal 1 + 2 -> 1
    assert psp_at_k(HAND_TRUE, y_score, HAND_W, k=3, filter=filter) == 1.0
    # dense filter works the same
    dense_filter = filter.toarray().astype(bool)
    assert precision_at_k(
        HAND_TRUE, y_score, k=1, filter=dense_filter
    ) == pytest.approx(1 / 3)


def test_short_rankings_still_divide_by_k():
    # one retrieved label, correct: P@5 = 1/5, R@5 = 1/2
    y_true = np.array([[1, 1, 0, 0, 0, 0]])
    pair = (np.array([[0.7, -np.inf]]), np.array([[1, -1]]))
    assert precision_at_k(y_true, pair, k=5) == pytest.approx(0.2)
    assert recall_at_k(y_true, pair, k=5) == pytest.approx(0.5)
    # nDCG@5 = 1 / (1 + 1/log2(3))
    assert ndcg_at_k(y_true, pair, k=5) == pytest.approx(1 / (1 + G))


def test_no_positive_at_all_gives_zero():
    y_true = sp.csr_matrix((2, 4))
    y_score = np.ones((2, 4))
    for metric in (precision_at_k, recall_at_k, ndcg_at_k):
        assert metric(y_true, y_score, k=2) == 0.0
    assert psp_at_k(y_true, y_score, np.ones(4), k=2) == 0.0
    assert psndcg_at_k(y_true, y_score, np.ones(4), k=2) == 0.0


def test_explicit_zero_scores_are_retrieved_in_csr():
    # label 2 is stored with score 0.0: retrieved, a hit at rank 2
    y_true = np.array([[0, 0, 1]])
    y_score = sp.csr_matrix(
        (np.array([0.5, 0.0]), np.array([0, 2]), np.array([0, 2])), shape=(1, 3)
    )
    assert precision_at_k(y_true, y_score, k=2) == pytest.approx(0.5)
    y_score.eliminate_zeros()  # now label 2 is not retrieved
    assert precision_at_k(y_true, y_score, k=2) == 0.0


def test_y_true_and_score_accept_many_containers():
    y_true = sp.coo_matrix(HAND_TRUE)
    for y in (y_true, y_true.tocsc(), sp.csr_array(HAND_TRUE), HAND_TRUE.tolist()):
        for y_score in (HAND_SCORE.tolist(), sp.csc_matrix(HAND_SCORE)):
            assert precision_at_k(y, y_score, k=2) == pytest.approx(1 / 3)
    assert precision_at_k(HAND_TRUE.astype(bool), HAND_SCORE, k=2) == pytest.approx(
        1 / 3
    )


def test_metrics_return_python_floats():
    for value in (
        precision_at_k(HAND_TRUE, HAND_SCORE),
        ndcg_at_k(HAND_TRUE, HAND_SCORE),
        recall_at_k(HAND_TRUE, HAND_SCORE),
        psp_at_k(HAND_TRUE, HAND_SCORE, HAND_W),
        psndcg_at_k(HAND_TRUE, HAND_SCORE, HAND_W),
        coverage_at_k(HAND_SCORE, 0.2),
    ):
        assert type(value) is float


# ------------------------------------------------------ inverse propensities
@pytest.mark.parametrize("A, B", [(0.55, 1.5), (0.6, 2.6), (0.5, 0.4), (0.0, 1.0)])
def test_inverse_propensity_matches_formula(A, B):
    Y = sp.csr_matrix(np.random.default_rng(3).random((50, 9)) < 0.2)
    np.testing.assert_allclose(
        inverse_propensity(Y, A=A, B=B), naive_inverse_propensity(Y, A, B), rtol=1e-12
    )


def test_inverse_propensity_hand_case():
    # N = 4, counts (4, 1), A = 0.5, B = 1: C = (ln 4 - 1) * sqrt(2)
    # w_0 = 1 + C / sqrt(5); w_1 = 1 + C / sqrt(2) = ln 4
    Y = np.array([[1, 0], [1, 0], [1, 1], [1, 0]])
    C = (math.log(4) - 1) * math.sqrt(2)
    np.testing.assert_allclose(
        inverse_propensity(Y, A=0.5, B=1.0), [1 + C / math.sqrt(5), math.log(4)]
    )
    # rare labels weigh more; a label never seen gets the largest weight
    w = inverse_propensity(np.array([[1, 0, 0], [1, 1, 0], [1, 0, 0]]))
    assert w[0] < w[1] < w[2]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"A": -0.1}, "A must be non-negative"),
        ({"B": 0.0}, "B must be positive"),
        ({"B": np.nan}, "B must be finite"),
        ({"A": "x"}, "A must be a real"),
    ],
)
def test_inverse_propensity_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        inverse_propensity(np.eye(4), **kwargs)


def test_inverse_propensity_needs_three_rows_and_binary_labels():
    with pytest.raises(ValueError, match="at least 3"):
        inverse_propensity(np.eye(2))
    with pytest.raises(ValueError, match="0/1"):
        inverse_propensity(np.array([[2, 0], [1, 0], [0, 1]]))


# ---------------------------------------------------------------- coverage
def naive_coverage(y_score, form, threshold, k):
    passed = 0
    rows = _retrieved(y_score, form, None)
    for retrieved in rows:
        ordered = sorted(retrieved.values(), reverse=True)
        if len(ordered) >= k and ordered[k - 1] > threshold:
            passed += 1
    return passed / len(rows)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("threshold", [-np.inf, 0.0, 0.35, 0.5, 0.9])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_coverage_matches_literal(form, threshold, k):
    y_score = _form(_random_case(11), form)
    assert coverage_at_k(y_score, threshold, k) == pytest.approx(
        naive_coverage(y_score, form, threshold, k)
    )


def test_coverage_hand_case():
    # k-th scores at k=2: row 0 -> 0.6, row 1 -> none retrieved, row 2 -> 0.5
    scores = np.array([[0.9, 0.6], [0.4, -np.inf], [0.8, 0.5]])
    indices = np.array([[3, 1], [0, -1], [2, 5]])
    # strict: 0.5 does not pass a threshold of 0.5 (as predict: score > threshold)
    assert coverage_at_k((scores, indices), 0.5, k=2) == pytest.approx(1 / 3)
    assert coverage_at_k((scores, indices), 0.45, k=2) == pytest.approx(2 / 3)
    # a row with a single retrieved label never passes at k=2, even at -inf
    assert coverage_at_k((scores, indices), -np.inf, k=2) == pytest.approx(2 / 3)
    assert coverage_at_k((scores, indices), 0.3, k=1) == 1.0


def test_coverage_rejects_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        coverage_at_k(np.ones((2, 2)), np.nan)
    with pytest.raises(ValueError, match="k must be"):
        coverage_at_k(np.ones((2, 2)), 0.5, k=0)
    with pytest.raises(ValueError, match="no rows"):
        coverage_at_k(np.ones((0, 2)), 0.5)


# ------------------------------------------------------------- validation
@pytest.mark.parametrize("k", [0, -2, 2.0, True, None])
def test_bad_k(k):
    with pytest.raises(ValueError, match="k must be"):
        precision_at_k(HAND_TRUE, HAND_SCORE, k=k)


def test_bad_k_sequence_for_report():
    with pytest.raises(ValueError, match="k must"):
        xmc_report(HAND_TRUE, HAND_SCORE, k=())
    with pytest.raises(ValueError, match="k must"):
        xmc_report(HAND_TRUE, HAND_SCORE, k=(1, 0))


@pytest.mark.parametrize(
    "y_score, message",
    [
        (np.ones((3, 4)), "shape"),
        (sp.csr_matrix(np.ones((2, 5))), "shape"),
        (np.ones(5), "2-D"),
        (np.array([[0.1, np.nan, 0, 0, 0]] * 3), "NaN"),
        (sp.csr_matrix(np.array([[0.1, np.nan, 0, 0, 0]] * 3)), "NaN"),
        ((np.ones((3, 2)), np.zeros((3, 3), dtype=int)), "same shape"),
        ((np.ones((2, 2)), np.zeros((2, 2), dtype=int)), "rows"),
        ((np.ones((3, 2)), np.full((3, 2), 5)), "n_labels=5"),
        ((np.ones((3, 2)), np.full((3, 2), -3)), "-3"),
        ((np.ones((3, 2)), np.zeros((3, 2))), "integers"),
        ((np.ones((3, 2)), np.array([[1, 1], [0, 2], [0, 2]])), "twice"),
        ((np.array([[np.nan, 1]] * 3), np.array([[0, 1]] * 3)), "NaN"),
        ((np.ones((3, 2)), np.zeros((3, 2), dtype=int), 1), "pair"),
        (np.array([["a"] * 5] * 3), "numeric"),
    ],
)
def test_bad_y_score(y_score, message):
    with pytest.raises(ValueError, match=message):
        precision_at_k(HAND_TRUE, y_score, k=2)


def test_nan_in_padding_slots_of_a_pair_is_fine():
    pair = (np.array([[0.9, np.nan]] * 3), np.array([[0, -1]] * 3))
    assert precision_at_k(HAND_TRUE, pair, k=1) == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    "y_true, message",
    [
        (np.array([[2, 0, 0, 0, 0]] * 3), "0/1"),
        (np.array([[0.5, 0, 0, 0, 0]] * 3), "0/1"),
        (np.array([[np.nan, 0, 0, 0, 0]] * 3), "0/1"),
        ([[0, 1], [2]], "indicator"),  # label lists
        ([[0, 1, 0, 0, 0], [1, 0, 0, 0, 0], [1]], "indicator"),
        (np.array([0, 1, 0]), "2-D"),
        (np.zeros((0, 5)), "no rows"),
    ],
)
def test_bad_y_true(y_true, message):
    y_score = np.ones((0, 5)) if message == "no rows" else np.ones((3, 5))
    with pytest.raises(ValueError, match=message):
        precision_at_k(y_true, y_score, k=1)


def test_bad_filter_and_propensities():
    with pytest.raises(ValueError, match="filter must have the shape"):
        precision_at_k(HAND_TRUE, HAND_SCORE, filter=np.ones((3, 4)))
    with pytest.raises(ValueError, match="non-negative"):
        psp_at_k(HAND_TRUE, HAND_SCORE, -HAND_W)
    with pytest.raises(ValueError, match="NaN or infinite"):
        psndcg_at_k(HAND_TRUE, HAND_SCORE, np.array([1, np.nan, 1, 1, 1]))
    with pytest.raises(ValueError, match="4 entries but y_true has 5"):
        psp_at_k(HAND_TRUE, HAND_SCORE, np.ones(4))
    with pytest.raises(ValueError, match="1-D"):
        psp_at_k(HAND_TRUE, HAND_SCORE, np.ones((5, 1)))
    with pytest.raises(ValueError, match="non-negative"):
        xmc_report(HAND_TRUE, HAND_SCORE, inv_propensity=-HAND_W)
    with pytest.raises(ValueError, match="non-negative"):
        make_psp_scorer(-HAND_W)


def test_inputs_are_not_modified():
    y_true = sp.csr_matrix(HAND_TRUE.astype(np.float64))
    y_score = sp.csr_matrix(HAND_SCORE)
    filter = sp.csr_matrix(([1.0], ([0], [3])), shape=(3, 5))
    copies = [m.copy() for m in (y_true, y_score, filter)]
    xmc_report(y_true, y_score, inv_propensity=HAND_W, filter=filter)
    for before, after in zip(copies, (y_true, y_score, filter)):
        assert (before != after).nnz == 0 and before.nnz == after.nnz


# ------------------------------------------------------- property tests
@st.composite
def _instances(draw, all_rows_positive=False):
    n = draw(st.integers(1, 6))
    n_labels = draw(st.integers(1, 7))
    cells = st.lists(st.booleans(), min_size=n_labels, max_size=n_labels)
    truth = np.array(draw(st.lists(cells, min_size=n, max_size=n)), dtype=bool)
    if all_rows_positive:
        cols = draw(st.lists(st.integers(0, n_labels - 1), min_size=n, max_size=n))
        truth[np.arange(n), cols] = True
    values = st.lists(
        st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0]),
        min_size=n_labels,
        max_size=n_labels,
    )
    scores = np.array(draw(st.lists(values, min_size=n, max_size=n)))
    retrieved = np.array(draw(st.lists(cells, min_size=n, max_size=n)), dtype=bool)
    filtered = np.array(draw(st.lists(cells, min_size=n, max_size=n)), dtype=bool)
    k = draw(st.integers(1, n_labels + 2))
    weights = np.array(
        draw(
            st.lists(
                st.floats(1.0, 10.0, allow_nan=False),
                min_size=n_labels,
                max_size=n_labels,
            )
        )
    )
    return (
        truth.reshape(n, n_labels),
        scores.reshape(n, n_labels),
        (
            retrieved.reshape(n, n_labels),
            filtered.reshape(n, n_labels),
            k,
            weights,
        ),
    )


def _sparse_scores(scores, retrieved):
    rows, cols = np.nonzero(retrieved)
    return sp.csr_matrix((scores[rows, cols], (rows, cols)), shape=scores.shape)


def _pair_of(csr, rng_seed=0):
    """The stored entries of ``csr`` as a (scores, indices) pair, shuffled."""
    width = max(int(np.diff(csr.indptr).max(initial=0)), 1) + 1
    scores = np.full((csr.shape[0], width), -np.inf)
    indices = np.full((csr.shape[0], width), -1, dtype=np.int64)
    rng = np.random.default_rng(rng_seed)
    for i in range(csr.shape[0]):
        start, end = csr.indptr[i], csr.indptr[i + 1]
        slots = rng.permutation(width)[: end - start]
        scores[i, slots] = csr.data[start:end]
        indices[i, slots] = csr.indices[start:end]
    return scores, indices


def _all_metrics(y_true, y_score, k, w, filter=None):
    report = xmc_report(y_true, y_score, k=k, inv_propensity=w, filter=filter)
    return np.array(list(report.values()))


@settings(max_examples=150, deadline=None)
@given(_instances())
def test_property_metrics_lie_in_unit_interval(instance):
    truth, scores, (retrieved, filtered, k, w) = instance
    for y_score in (scores, _sparse_scores(scores, retrieved)):
        for filter in (None, filtered):
            values = _all_metrics(truth, y_score, k, w, filter)
            assert np.all((values >= 0) & (values <= 1))
            assert precision_at_k(truth, y_score, k=k, filter=filter) <= 1


@settings(max_examples=150, deadline=None)
@given(_instances(all_rows_positive=True))
def test_property_perfect_rankings_score_one(instance):
    truth, _, (_, _, k, w) = instance
    # ranking the true labels first is a perfect nDCG ranking ...
    assert ndcg_at_k(truth, truth.astype(float), k=k) == pytest.approx(1.0)
    # ... and ranking them by inverse propensity a perfect PSP/PSnDCG ranking
    ideal = truth * w
    assert psp_at_k(truth, ideal, w, k=k) == pytest.approx(1.0)
    assert psndcg_at_k(truth, ideal, w, k=k) == pytest.approx(1.0)
    # recall reaches 1 when k covers every row's positives
    wide = int(truth.sum(axis=1).max())
    assert recall_at_k(truth, truth.astype(float), k=wide) == pytest.approx(1.0)
    # precision is capped by the positives available: mean(min(|y|, k)) / k
    expected = np.minimum(truth.sum(axis=1), k).mean() / k
    assert precision_at_k(truth, truth.astype(float), k=k) == pytest.approx(expected)


@settings(max_examples=150, deadline=None)
@given(_instances())
def test_property_results_do_not_depend_on_the_score_form(instance):
    truth, scores, (retrieved, filtered, k, w) = instance
    for filter in (None, filtered):
        # every label retrieved: dense == CSR with all entries == full pair
        full_csr = _sparse_scores(scores, np.ones_like(retrieved))
        dense_values = _all_metrics(truth, scores, k, w, filter)
        np.testing.assert_allclose(
            _all_metrics(truth, full_csr, k, w, filter), dense_values, atol=1e-12
        )
        np.testing.assert_allclose(
            _all_metrics(truth, _pair_of(full_csr), k, w, filter),
            dense_values,
            atol=1e-12,
        )
        # partial retrieval: CSR == the pair holding the same entries
        csr = _sparse_scores(scores, retrieved)
        np.testing.assert_allclose(
            _all_metrics(truth, _pair_of(csr, 1), k, w, filter),
            _all_metrics(truth, csr, k, w, filter),
            atol=1e-12,
        )


@settings(max_examples=150, deadline=None)
@given(_instances())
def test_property_filter_removes_exactly_the_listed_pairs(instance):
    truth, scores, (retrieved, filtered, k, w) = instance
    csr = _sparse_scores(scores, retrieved)
    # filtering == deleting the pairs from both sides by hand
    kept_truth = truth & ~filtered
    kept_scores = _sparse_scores(scores, retrieved & ~filtered)
    np.testing.assert_allclose(
        _all_metrics(truth, csr, k, w, filtered),
        _all_metrics(kept_truth, kept_scores, k, w),
        atol=1e-12,
    )
    # a filtered label is never counted: filtering all true pairs gives 0
    assert precision_at_k(truth, csr, k=k, filter=truth) == 0.0
    assert recall_at_k(truth, scores, k=k, filter=truth) == 0.0
    # pairs that are neither true nor retrieved change nothing
    inert = ~truth & ~retrieved
    np.testing.assert_allclose(
        _all_metrics(truth, csr, k, w, inert),
        _all_metrics(truth, csr, k, w),
        atol=1e-12,
    )


# ----------------------------------------------------------------- scorers
class _CountingRanker(ClassifierMixin, BaseEstimator):
    """Scores labels from the first n_labels columns of X, plus noise columns.

    ``quality`` weighs the informative columns. Counts decision_function calls
    on the class, because GridSearchCV clones instances.
    """

    decision_calls = 0

    def __init__(self, quality=1.0, top_k=10):
        self.quality = quality
        self.top_k = top_k

    def fit(self, X, y):
        self.classes_ = np.arange(y.shape[1])
        return self

    def decision_function(self, X):
        type(self).decision_calls += 1
        n_labels = len(self.classes_)
        scores = self.quality * X[:, :n_labels] + X[:, n_labels:]
        return topk_to_csr(*dense_row_topk(scores, self.top_k), n_labels)


def _scorer_data(n=60, n_labels=12, seed=0):
    rng = np.random.default_rng(seed)
    Y = sp.csr_matrix((rng.random((n, n_labels)) < 0.2).astype(np.float32))
    X = np.hstack([Y.toarray(), rng.random((n, n_labels))])
    return X, Y


def test_xmc_scorers_run_one_inference_per_split():
    X, Y = _scorer_data()
    w = inverse_propensity(Y)
    scoring = {**XMC_SCORERS, "PSP@5": make_psp_scorer(w, k=5)}
    search = GridSearchCV(
        _CountingRanker(),
        {"quality": [0.0, 0.5, 2.0]},
        scoring=scoring,
        refit="P@5",
        cv=KFold(4, shuffle=True, random_state=0),
        error_score="raise",
    )
    _CountingRanker.decision_calls = 0
    search.fit(X, Y)
    # 3 candidates x 4 splits; 8 scorers share one decision_function call each
    assert _CountingRanker.decision_calls == 3 * 4
    assert search.best_params_ == {"quality": 2.0}
    assert {f"mean_test_{name}" for name in scoring} <= set(search.cv_results_)
    # the counter really counts: scoring one by one costs a call per scorer
    _CountingRanker.decision_calls = 0
    for scorer in XMC_SCORERS.values():
        scorer(search.best_estimator_, X, Y)
    assert _CountingRanker.decision_calls == len(XMC_SCORERS)


@pytest.mark.parametrize("name", list(XMC_SCORERS))
def test_xmc_scorers_equal_the_metrics(name):
    X, Y = _scorer_data(seed=1)
    est = _CountingRanker(quality=0.7).fit(X, Y)
    decision = est.decision_function(X)
    metric, k = name.split("@")
    function = {"P": precision_at_k, "nDCG": ndcg_at_k, "R": recall_at_k}[metric]
    assert XMC_SCORERS[name](est, X, Y) == pytest.approx(
        function(Y, decision, k=int(k))
    )


def test_psp_scorer_equals_the_metric():
    X, Y = _scorer_data(seed=2)
    w = inverse_propensity(Y, A=0.6, B=2.6)
    est = _CountingRanker(quality=0.5).fit(X, Y)
    expected = psp_at_k(Y, est.decision_function(X), w, k=3)
    assert make_psp_scorer(w, k=3)(est, X, Y) == pytest.approx(expected)
    assert 0 < expected < 1
    with pytest.raises(ValueError, match="k must be"):
        make_psp_scorer(w, k=0)
