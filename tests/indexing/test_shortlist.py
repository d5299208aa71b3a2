"""LabelShortlist (skxmc.indexing._shortlist): exact search and ANN recall."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from skxmc.indexing import LabelShortlist


def _cosine(X, Z):
    X = np.asarray(X.todense() if sp.issparse(X) else X, dtype=np.float64)
    Z = np.asarray(Z.todense() if sp.issparse(Z) else Z, dtype=np.float64)
    X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-30)
    Z = Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-30)
    return X @ Z.T


def test_exact_matches_brute_force():
    Z = sp.random(70, 40, density=0.2, random_state=0, format="csr")
    X = sp.random(15, 40, density=0.2, random_state=1, format="csr")
    S = _cosine(X, Z)
    scores, labels = LabelShortlist(method="exact", batch_size=4).fit(Z).query(X, k=5)
    order = np.lexsort((np.broadcast_to(np.arange(70), S.shape), -S), axis=1)[:, :5]
    np.testing.assert_array_equal(labels, order)
    np.testing.assert_allclose(scores, np.take_along_axis(S, order, 1), atol=1e-6)
    index = pickle.loads(pickle.dumps(LabelShortlist().fit(Z)))
    np.testing.assert_allclose(index.similarity(X).toarray(), S, atol=1e-6)
    np.testing.assert_allclose(index.similarity(X.toarray()), S, atol=1e-6)
    # more neighbours than labels: -1 / -inf padding
    scores, labels = LabelShortlist(method="exact").fit(Z[:3]).query(X[:2], k=5)
    assert (labels[:, 3:] == -1).all() and np.isneginf(scores[:, 3:]).all()


@pytest.mark.parametrize("seed", range(4))
def test_sparse_exact_query_is_the_dense_paths_row_for_row(seed, monkeypatch):
    """The sparse exact query (top k + 1 of the product, dense only for rows
    with a tie or zeros at the k-th place) answers as the dense blocks do."""
    rng = np.random.default_rng(seed)
    Z = sp.random(120, 60, density=0.08, random_state=rng, format="csr")
    Z = sp.vstack([Z, Z[:10]], format="csr")  # duplicate labels: tied cosines
    X = sp.random(40, 60, density=0.1, random_state=rng, format="csr")
    X = sp.vstack([X, Z[:5], sp.csr_matrix((2, 60))], format="csr")  # ties, empty
    negative = -X[:6]  # negative cosines: unstored (zero) labels come first
    X = sp.vstack([X, negative], format="csr")
    index = LabelShortlist(method="exact", batch_size=7).fit(Z)
    calls = []
    dense = index._exact_dense

    def counting(Xb, ZT, k):
        calls.append(Xb.shape[0])
        return dense(Xb, ZT, k)

    for k in (1, 3, 8, 40):
        scores, labels = index.query(X, k=k)
        expected = LabelShortlist._exact_dense(
            index, index._prepare(X), index._labels_transposed(), k
        )
        np.testing.assert_array_equal(labels, expected[1])
        np.testing.assert_array_equal(scores, expected[0])
        monkeypatch.setattr(index, "_exact_dense", counting)
        index.query(X, k=k)
        monkeypatch.undo()
    # both paths ran: some rows (ties, empty rows) densified, most not
    assert calls and 0 < min(calls) and max(calls) < X.shape[0]


# pynndescent compiles its kernels on first use in a process (~20 s here).
@pytest.mark.slow
def test_ann_recall_against_exact():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(20, 32))
    Z = centers[rng.integers(0, 20, 2000)] + 0.3 * rng.normal(size=(2000, 32))
    X = centers[rng.integers(0, 20, 100)] + 0.3 * rng.normal(size=(100, 32))
    k = 10
    _, exact = LabelShortlist(method="exact").fit(Z).query(X, k=k)
    scores, approx = LabelShortlist(method="ann", random_state=0).fit(Z).query(X, k=k)
    recall = np.mean([len(set(a) & set(e)) / k for a, e in zip(approx, exact)])
    assert recall >= 0.9
    # returned scores are the true cosine similarities, best first
    S = _cosine(X, Z)
    np.testing.assert_allclose(
        scores, np.take_along_axis(S, approx, 1), rtol=1e-4, atol=1e-4
    )
    assert np.all(scores[:, :-1] >= scores[:, 1:])


def test_errors():
    with pytest.raises(ValueError, match="not fitted"):
        LabelShortlist().query(np.ones((1, 2)))
    with pytest.raises(ValueError, match="method"):
        LabelShortlist(method="hnsw").fit(np.eye(3))
    sl = LabelShortlist(method="exact").fit(np.eye(3))
    with pytest.raises(ValueError, match="features"):
        sl.query(np.ones((1, 4)))
    with pytest.raises(ValueError, match="features"):
        sl.similarity(np.ones((1, 4)))
    with pytest.raises(ValueError, match="not fitted"):
        LabelShortlist().similarity(np.ones((1, 2)))


def test_similarity_topk_is_the_top_of_the_sparse_similarity():
    from skxmc.utils import csr_row_topk

    rng = np.random.default_rng(2)
    Z = sp.random(
        200, 60, density=0.1, random_state=rng, format="csr", dtype=np.float32
    )
    X = sp.random(12, 60, density=0.1, random_state=rng, format="csr", dtype=np.float32)
    index = LabelShortlist(method="exact").fit(Z)
    for k in (1, 7, 300):  # 300: more labels than have a non-zero cosine
        expected = csr_row_topk(sp.csr_matrix(index.similarity(X)), k)
        got = index.similarity_topk(X, k)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
    # rows one at a time (the single-query path), float64 and dense queries
    for i in range(3):
        one = index.similarity_topk(X[i], 5)
        np.testing.assert_array_equal(
            one[1], csr_row_topk(index.similarity(X[i]), 5)[1]
        )
    np.testing.assert_array_equal(
        index.similarity_topk(X.astype(np.float64), 5)[1],
        index.similarity_topk(X.toarray(), 5)[1],
    )
    # a refit on other labels answers for them (no stale caches), pickles
    index.fit(Z[:50])
    assert index.similarity_topk(X, 60)[1].max() < 50
    clone = pickle.loads(pickle.dumps(index))
    np.testing.assert_array_equal(
        clone.similarity_topk(X, 5)[1], index.similarity_topk(X, 5)[1]
    )
