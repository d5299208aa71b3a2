import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from skxmc.indexing import ScoreFusion, candidate_relevance
from skxmc.indexing._fusion import _row_ranks


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(1, 6),
    n_labels=st.integers(1, 8),
    m=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_candidate_relevance_matches_a_literal_lookup(n, n_labels, m, seed):
    rng = np.random.default_rng(seed)
    Y = sp.random(n, n_labels, density=0.4, random_state=rng, format="csr")
    candidates = rng.integers(-1, n_labels, size=(n, m))
    dense = Y.toarray() != 0
    expected = [[c >= 0 and bool(dense[i, c]) for c in candidates[i]] for i in range(n)]
    np.testing.assert_array_equal(candidate_relevance(candidates, Y), expected)


def test_row_ranks_hand_case_ties_share_a_rank():
    values = np.array([[0.2, 0.9, 0.5], [1.0, 1.0, 3.0], [0.0, 2.0, 0.0]])
    valid = np.array([[True, True, False], [True, True, True], [True] * 3])
    np.testing.assert_array_equal(
        _row_ranks(values, valid), [[1, 0, 2], [1, 1, 0], [1, 0, 1]]
    )


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_row_ranks_count_the_better_entries_whatever_the_order(seed):
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 4, size=(3, 6)).astype(float)
    valid = np.ones_like(values, dtype=bool)
    expected = (values[:, None, :] > values[:, :, None]).sum(-1)
    np.testing.assert_array_equal(_row_ranks(values, valid), expected)
    perm = rng.permutation(6)
    np.testing.assert_array_equal(_row_ranks(values[:, perm], valid), expected[:, perm])


def _trust_problem(n, seed):
    """Feature 0 is the truth when feature 1 is on, noise otherwise."""
    rng = np.random.default_rng(seed)
    Y = sp.csr_matrix(np.eye(4)[rng.integers(0, 4, n)])
    trust = (rng.random((n, 1)) > 0.5).repeat(4, 1)
    signal = np.where(trust, Y.toarray(), rng.random((n, 4)))
    features = np.stack([signal, trust.astype(float)], axis=-1)
    return features, np.tile(np.arange(4), (n, 1)), Y, trust[:, 0]


def test_fusion_learns_when_to_trust_a_score():
    features, candidates, Y, _ = _trust_problem(400, seed=0)
    fusion = ScoreFusion(random_state=0).fit(features, candidates, Y)
    test_features, test_candidates, Y_test, trust = _trust_problem(300, seed=1)
    p = fusion.predict(test_features, test_candidates)
    truth = Y_test.toarray().argmax(1)
    assert (p.argmax(1)[trust] == truth[trust]).all()
    # confident where the score is trustworthy, not elsewhere
    assert p[trust].max(1).min() > 0.9 > 0.6 > p[~trust].max(1).mean()


def test_fusion_pads_empty_slots_and_is_reproducible():
    features, candidates, Y, _ = _trust_problem(200, seed=2)
    candidates = candidates.copy()
    candidates[::3, 3] = -1
    a = ScoreFusion(random_state=0, max_pairs=300).fit(features, candidates, Y)
    b = ScoreFusion(random_state=0, max_pairs=300).fit(features, candidates, Y)
    pa, pb = a.predict(features, candidates), b.predict(features, candidates)
    np.testing.assert_array_equal(pa, pb)
    assert np.isneginf(pa[::3, 3]).all() and np.isfinite(pa[candidates >= 0]).all()


def test_fusion_rejects_bad_input():
    features, candidates, Y, _ = _trust_problem(50, seed=3)
    with pytest.raises(ValueError, match="shape"):
        ScoreFusion().fit(features[:, :3], candidates, Y)
    bad = features.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ScoreFusion().fit(bad, candidates, Y)
    with pytest.raises(ValueError, match="nothing to learn"):
        ScoreFusion().fit(features, candidates, sp.csr_matrix(Y.shape))
    fusion = ScoreFusion(random_state=0).fit(features, candidates, Y)
    with pytest.raises(ValueError, match="fitted with 2"):
        fusion.predict(features[:, :, :1], candidates)
    with pytest.raises(ValueError, match="rows"):
        candidate_relevance(candidates[:3], Y)


def test_only_nominees_train_and_they_rank_first():
    rng = np.random.default_rng(4)
    n, m = 300, 8
    Y = sp.csr_matrix(np.eye(m)[rng.integers(0, m, n)])
    features = rng.random((n, m, 2))
    features[..., 0] += Y.toarray()  # feature 0 knows the truth, feature 1 noise
    candidates = np.tile(np.arange(m), (n, 1))
    candidates[::5, -1] = -1
    valid = candidates >= 0
    fusion = ScoreFusion(nominees=2, add_ranks=False, random_state=0)
    scores = fusion.fit(features, candidates, Y).predict(features, candidates)
    # literal nominees: fewer than 2 valid candidates beat it on some feature
    beaten_by = (
        (features[:, None, :, :] > features[:, :, None, :]) & valid[:, None, :, None]
    ).sum(2)
    nominated = valid & (beaten_by.min(-1) < 2)
    assert nominated.sum(1).min() >= 2 and (~nominated & valid).any()
    # the same classifier as one trained on the nominees alone
    alone = np.where(nominated, candidates, -1)
    reference = ScoreFusion(nominees=None, add_ranks=False, random_state=0)
    reference.fit(features, alone, Y)
    probability = reference.classifier_.predict_proba(features.reshape(n * m, 2))
    probability = probability[:, 1].reshape(n, m)
    np.testing.assert_allclose(scores[nominated], probability[nominated], rtol=1e-6)
    # the others: probability times the row's lowest nominee score
    floor = np.where(nominated, scores, np.inf).min(1, keepdims=True)
    others = valid & ~nominated
    np.testing.assert_allclose(scores[others], (probability * floor)[others], rtol=1e-5)
    assert np.isneginf(scores[~valid]).all()
    with pytest.raises(ValueError, match="nominees"):
        ScoreFusion(nominees=0).fit(features, candidates, Y)


class _ZeroProbability:
    """Stands in for the fitted classifier (``flat``: its flattened trees,
    which return the positive class only): every pair gets probability 0, as
    float32 gives a confident negative."""

    def __init__(self, flat):
        self.flat = flat

    def predict_proba(self, pairs):
        zero = np.zeros(len(pairs), dtype=np.float32)
        return zero if self.flat else np.c_[1 + zero, zero]


@pytest.mark.parametrize("n_rows", [3, 4_000])  # the fast and the sklearn path
def test_floor_of_zero_never_touches_the_padding(monkeypatch, n_rows):
    """A row whose lowest nominee scores 0 (its floor) and with padding: the
    floor multiplies only the other candidates. Multiplying the whole row, as
    before, computed -inf * 0 on the padding and leaked a RuntimeWarning
    ("invalid value encountered in multiply") into every prediction block."""
    rng = np.random.default_rng(5)
    m = 6
    n = 200
    Y = sp.csr_matrix(np.eye(m)[rng.integers(0, m, n)])
    features = rng.random((n, m, 2))
    features[..., 0] += Y.toarray()
    candidates = np.tile(np.arange(m), (n, 1))
    fusion = ScoreFusion(nominees=1, add_ranks=False, random_state=0)
    fusion.fit(features, candidates, Y)
    monkeypatch.setattr(fusion, "_flat_trees", lambda: _ZeroProbability(flat=True))
    fusion.classifier_ = _ZeroProbability(flat=False)
    test = rng.random((n_rows, m, 2))
    test_candidates = np.tile(np.arange(m), (n_rows, 1))
    test_candidates[:, -2:] = -1  # padding in every row
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = fusion.predict(test, test_candidates)
    assert np.isneginf(scores[:, -2:]).all()
    # nominees score 0; the others 0 times the floor 0: no NaN anywhere
    np.testing.assert_array_equal(scores[:, :-2], 0.0)


# ------------------------------------------- fast paths of a single query
def test_flat_trees_equal_sklearn_predict_proba_exactly():
    from sklearn.ensemble import HistGradientBoostingClassifier

    from skxmc.indexing._fusion import _FlatTrees

    rng = np.random.default_rng(5)
    X = rng.normal(size=(600, 4))
    y = X[:, 0] + 0.5 * X[:, 1] ** 2 + rng.normal(size=600) > 0.5
    X[rng.random(X.shape) < 0.05] = np.nan  # the trees learn where NaN goes
    clf = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(X, y)
    assert _FlatTrees.supports(clf)
    X_test = rng.normal(size=(200, 4))
    # values equal to the split thresholds' neighbours (NaN-free: X has NaN)
    X_test[:20] = np.where(np.isnan(X[:20]), 0.0, X[:20])
    root = clf._predictors[0][0].nodes[0]
    X_test[20:30, root["feature_idx"]] = root["num_threshold"]  # on a threshold
    flat = _FlatTrees(clf)
    # the branch-free walk (no NaN), then the branchy one (NaN)
    assert not np.isnan(X_test).any()
    np.testing.assert_array_equal(
        flat.predict_proba(X_test), clf.predict_proba(X_test)[:, 1]
    )
    X_test[rng.random(X_test.shape) < 0.1] = np.nan
    np.testing.assert_array_equal(
        flat.predict_proba(X_test), clf.predict_proba(X_test)[:, 1]
    )
    # many rows: chunks on threads, NaN in some chunks only
    X_big = rng.normal(size=(9000, 4))
    X_big[:50, 1] = np.nan
    expected = clf.predict_proba(X_big)[:, 1]
    for n_jobs in (1, 2):
        np.testing.assert_array_equal(
            flat.predict_proba(X_big, n_jobs=n_jobs), expected
        )
    # trees that are a single leaf (nothing to split on): no step at all
    stumps = HistGradientBoostingClassifier(max_iter=3).fit(np.ones((50, 2)), y[:50])
    assert all(p[0].nodes["is_leaf"][0] for p in stumps._predictors)
    np.testing.assert_array_equal(
        _FlatTrees(stumps).predict_proba(np.zeros((5, 2))),
        stumps.predict_proba(np.zeros((5, 2)))[:, 1],
    )
    categorical = HistGradientBoostingClassifier(
        max_iter=3, categorical_features=[0]
    ).fit(np.column_stack([rng.integers(0, 3, 600), X[:, 1]]), y)
    assert not _FlatTrees.supports(categorical)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_row_ranks_kernel_equals_row_ranks(seed):
    from skxmc.indexing._fusion import _row_ranks_kernel

    rng = np.random.default_rng(seed)
    values = rng.integers(0, 4, size=(3, 7, 2)).astype(float) * 0.5
    valid = rng.random((3, 7)) > 0.3
    out = np.empty(values.shape, dtype=np.int64)
    _row_ranks_kernel(values, valid, out)
    for f in range(2):
        np.testing.assert_array_equal(out[..., f], _row_ranks(values[..., f], valid))


def test_fast_predict_of_few_rows_equals_the_sklearn_path(monkeypatch):
    import skxmc.indexing._fusion as fusion_module

    features, candidates, Y, _ = _trust_problem(300, seed=6)
    candidates = candidates.copy()
    candidates[::4, 0] = -1
    fusion = ScoreFusion(nominees=2, random_state=0).fit(features, candidates, Y)
    fast = [
        fusion.predict(features[i : i + 1], candidates[i : i + 1]) for i in range(9)
    ]
    assert fusion._flat_trees() is not None
    # the sklearn path: predict_proba of every pair, NumPy ranks
    monkeypatch.setattr(fusion_module, "_SMALL_INPUT", 0)
    monkeypatch.setattr(fusion_module, "_FEW_ROWS", -1)
    slow = fusion.predict(features[:9], candidates[:9])
    np.testing.assert_array_equal(np.concatenate(fast), slow)
    # the flattened trees are not pickled, and rebuilt after a refit
    assert "_flat" not in pickle.loads(pickle.dumps(fusion)).__dict__
    before = fusion._flat_trees()
    fusion.fit(features[:100], candidates[:100], Y[:100])
    assert fusion._flat_trees() is not before


@pytest.mark.parametrize("aside", [True, False])
def test_single_query_split_over_the_helper_thread_changes_nothing(monkeypatch, aside):
    # a few rows send half their pairs to the helper thread (run_aside)
    from skxmc.utils import _threads

    monkeypatch.setattr(_threads, "ASIDE_ENABLED", aside)
    features, candidates, Y, _ = _trust_problem(400, seed=0)
    fusion = ScoreFusion(random_state=0).fit(features, candidates, Y)
    # one row of 200 candidates (odd halves included) and many rows
    rng = np.random.default_rng(2)
    one = rng.random((1, 201, 2))
    ids = rng.permutation(201)[None]
    ids[0, -7:] = -1
    many = np.repeat(one, 20, axis=0)
    single = fusion.predict(one, ids)
    batch = fusion.predict(many, np.repeat(ids, 20, axis=0))
    np.testing.assert_array_equal(single[0], batch[0])
    expected = fusion.classifier_.predict_proba(fusion._pair_matrix(one, ids)[0][0])
    valid = ids[0] >= 0
    nominated = fusion._pair_matrix(one, ids)[2][0]
    np.testing.assert_array_equal(
        single[0][nominated], expected[nominated, 1].astype(np.float32)
    )
    assert np.isneginf(single[0][~valid]).all()


# --------------------------------------------- top-k callers (predict's k)
def _topk(scores, k):
    """torch's top k of every row, as DecafModel takes it (values and slots)."""
    import torch

    values, slots = torch.topk(torch.from_numpy(scores), k, dim=1)
    return values.numpy(), slots.numpy()


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    k=st.integers(1, 12),
    tilted=st.booleans(),
    coarse=st.booleans(),
)
def test_top_k_of_predict_with_k_equals_top_k_of_every_score(seed, k, tilted, coarse):
    """Skipping the non-nominees that cannot reach the top k changes no slot
    and no value of the caller's top k, with or without factors, also with
    many tied scores (coarse features put many pairs in the same leaves)."""
    rng = np.random.default_rng(seed)
    n, m = 40, 30
    Y = sp.csr_matrix((rng.random((n, m)) < 0.1).astype(np.float32))
    features = rng.random((n, m, 3))
    features[..., 0] += Y.toarray()
    if coarse:
        features = np.round(features * 2) / 2
    candidates = np.tile(np.arange(m), (n, 1))
    candidates[::3, -4:] = -1
    fusion = ScoreFusion(nominees=3, max_iter=20, random_state=0)
    fusion.fit(features, candidates, Y)
    factors = None
    if tilted:
        factors = rng.uniform(0.05, 1.0, (n, m)).astype(np.float32)
    full = fusion.predict(features, candidates)
    skipped = fusion.predict(features, candidates, k=k, factors=factors)
    if factors is not None:
        full, skipped = full * factors, skipped * factors
    k = min(k, m)
    for expected, got in zip(_topk(full, k), _topk(skipped, k), strict=True):
        np.testing.assert_array_equal(got, expected)
    # a score is either the one of every pair or skipped (-inf)
    kept = np.isfinite(skipped)
    np.testing.assert_array_equal(skipped[kept], full[kept])


def test_predict_with_k_runs_the_trees_on_the_nominees_only(monkeypatch):
    features, candidates, Y, _ = _trust_problem(400, seed=1)
    rng = np.random.default_rng(3)
    one = rng.random((1, 200, 2))
    ids = np.arange(200)[None]
    fusion = ScoreFusion(nominees=2, random_state=0).fit(features, candidates, Y)
    nominated = fusion._pair_matrix(one, ids)[2][0]
    scored = []
    flat_proba = fusion._flat_proba

    def counting(pairs, few_rows):
        scored.append(len(pairs))
        return flat_proba(pairs, few_rows)

    monkeypatch.setattr(fusion, "_flat_proba", counting)
    scores = fusion.predict(one, ids, k=3)
    assert scored == [nominated.sum()] and nominated.sum() < 20
    assert np.isneginf(scores[0, ~nominated]).all()
    # without k every valid pair is scored
    scored.clear()
    fusion.predict(one, ids)
    assert scored == [200]
    with pytest.raises(ValueError, match="k must be"):
        fusion.predict(one, ids, k=0)
    with pytest.raises(ValueError, match="factors must have shape"):
        fusion.predict(one, ids, k=1, factors=np.ones((1, 3)))
