"""ECLARE's label correlation graph: random walks with restart on labels x docs."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from skxmc.indexing import (
    label_correlation_graph,
    propagate_topk,
    random_walk_visits,
    smooth_over_graph,
)
from skxmc.indexing._label_graph import _normalize_graph
from skxmc.utils import csr_row_topk, topk_to_csr

# 5 documents x 5 labels; label 4 has no positive document.
Y_TOY = np.array(
    [
        [1, 1, 0, 0, 0],
        [1, 0, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [0, 0, 0, 1, 0],
        [1, 1, 0, 0, 0],
    ]
)


def expected_visits(Y, start, walk_length, restart_prob):
    """Brute force: the exact expected landing counts of one walk.

    From label l a hop picks one of l's documents uniformly, then one label of
    that document uniformly, so a hop is the label-to-label transition matrix
    P = D_labels^-1 Y^T D_docs^-1 Y; before each hop the walker is back at the
    start with probability ``restart_prob``.
    """
    Y = Y.astype(float)
    to_docs = Y.T / np.maximum(Y.sum(axis=0), 1)[:, None]  # empty labels: no hop
    to_labels = Y / Y.sum(axis=1)[:, None]
    P = to_docs @ to_labels
    here = np.eye(Y.shape[1])[start]
    total = np.zeros(Y.shape[1])
    for _ in range(walk_length):
        before = restart_prob * np.eye(Y.shape[1])[start] + (1 - restart_prob) * here
        here = before @ P
        total += here
    return total


@pytest.mark.parametrize("restart_prob", [0.0, 0.3, 0.8, 1.0])
@pytest.mark.parametrize("start", [0, 3])
def test_walk_visits_match_brute_force_expectation(start, restart_prob):
    n_walks, walk_length = 4000, 12
    visits = random_walk_visits(
        Y_TOY,
        np.full(n_walks, start),
        walk_length=walk_length,
        restart_prob=restart_prob,
        random_state=0,
    )
    mean = np.asarray(visits.mean(axis=0)).ravel()
    expected = expected_visits(Y_TOY, start, walk_length, restart_prob)
    # each per-label count has a standard deviation <= walk_length / 2 per
    # walk, so the mean over 4000 walks is within ~0.1 at 1 sigma
    np.testing.assert_allclose(mean, expected, atol=0.35)
    assert np.all(np.asarray(visits.sum(axis=1)).ravel() == walk_length)


def test_walks_never_leave_the_connected_component():
    Y = sp.block_diag([np.ones((3, 2)), np.ones((2, 3))]).tocsr()
    visits = random_walk_visits(Y, [0, 1, 2, 3, 4], walk_length=50, random_state=1)
    assert visits[:2, 2:].nnz == 0 and visits[2:, :2].nnz == 0


def test_normalization_matches_the_dense_formula():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 4, size=(6, 6)).astype(np.float32)
    counts[np.arange(6), np.arange(6)] = 1
    rows, cols = counts.sum(axis=1), counts.sum(axis=0)
    expected = counts / np.sqrt(rows)[:, None] / np.sqrt(cols)[None, :]
    got = _normalize_graph(sp.csr_matrix(counts)).toarray()
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_graph_on_disconnected_labels_is_the_identity():
    # every label has its own documents: walks only ever land on themselves
    Y = np.kron(np.eye(4), np.ones((2, 1)))
    G = label_correlation_graph(Y, random_state=0)
    np.testing.assert_allclose(G.toarray(), np.eye(4))


def test_frequent_and_empty_labels_keep_only_a_self_loop():
    G = label_correlation_graph(Y_TOY, n_neighbors=3, max_label_frequency=2)
    frequency = Y_TOY.sum(axis=0)  # [3, 3, 2, 2, 0]
    for label in np.flatnonzero((frequency > 2) | (frequency == 0)):
        assert G[label].indices.tolist() == [label]
    walked = np.flatnonzero((frequency <= 2) & (frequency > 0))
    assert all(G[label].nnz > 1 for label in walked)


def test_pruning_by_label_feature_distance():
    Y = np.ones((3, 3))  # every label co-occurs with every other one
    features = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    G = label_correlation_graph(Y, random_state=0)
    assert G.nnz == 9
    pruned = label_correlation_graph(
        Y, label_features=features, max_distance=0.5, random_state=0
    )
    # labels 0 and 1 are close (cosine 0.99), label 2 is orthogonal to label 0
    # (distance 1) and far from label 1 (distance 0.89): only self-loops join it
    assert sorted(pruned[0].indices.tolist()) == [0, 1]
    assert sorted(pruned[1].indices.tolist()) == [0, 1]
    assert pruned[2].indices.tolist() == [2]


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n_docs=st.integers(1, 12),
    n_labels=st.integers(1, 8),
    n_neighbors=st.integers(1, 4),
)
def test_property_rows_have_a_self_loop_and_at_most_n_neighbors(
    seed, n_docs, n_labels, n_neighbors
):
    rng = np.random.default_rng(seed)
    Y = (rng.random((n_docs, n_labels)) < 0.3).astype(int)
    G = label_correlation_graph(
        Y, walk_length=20, n_neighbors=n_neighbors, random_state=seed
    )
    assert G.shape == (n_labels, n_labels)
    assert np.all(G.diagonal() > 0)
    assert np.all(np.diff(G.indptr) <= n_neighbors)
    assert np.all(G.data > 0) and np.all(np.isfinite(G.data))
    # neighbours only among labels that share a document path: a label without
    # documents has only itself
    for label in np.flatnonzero(Y.sum(axis=0) == 0):
        assert G[label].indices.tolist() == [label]


def test_deterministic_given_random_state():
    Y = (np.random.default_rng(3).random((40, 15)) < 0.2).astype(int)
    a = label_correlation_graph(Y, random_state=7)
    b = label_correlation_graph(Y, random_state=7)
    assert (a != b).nnz == 0


def test_errors():
    with pytest.raises(ValueError, match="0/1"):
        label_correlation_graph(np.array([[2, 0], [0, 1]]))
    with pytest.raises(ValueError, match="without a positive"):
        random_walk_visits(Y_TOY, [4])
    with pytest.raises(ValueError, match="label ids"):
        random_walk_visits(Y_TOY, [5])
    with pytest.raises(ValueError, match="restart_prob"):
        label_correlation_graph(Y_TOY, restart_prob=1.5)
    with pytest.raises(ValueError, match="rows for 5 labels"):
        label_correlation_graph(Y_TOY, label_features=np.ones((3, 2)))


def test_propagate_topk_matches_the_dense_formula():
    rng = np.random.default_rng(0)
    n, n_labels, k_in = 7, 9, 3
    graph = sp.random(n_labels, n_labels, density=0.3, random_state=0, format="csr")
    graph = graph + sp.eye(n_labels)
    indices = np.array([rng.choice(n_labels, k_in, replace=False) for _ in range(n)])
    indices[0, 2] = -1  # padding contributes nothing
    scores = rng.random((n, k_in)).astype(np.float32)
    dense = np.zeros((n, n_labels))
    for i in range(n):
        for score, label in zip(scores[i], indices[i]):
            if label >= 0:
                dense[i] += score * graph[label].toarray().ravel()
    got_scores, got_indices = propagate_topk(scores, indices, graph, k=4)
    for i in range(n):
        order = np.argsort(-dense[i], kind="stable")
        best = [label for label in order if dense[i, label] > 0][:4]
        np.testing.assert_allclose(
            got_scores[i][: len(best)], dense[i, best], rtol=1e-5
        )
        assert set(got_indices[i][: len(best)]) == set(best)
        assert np.all(got_indices[i][len(best) :] == -1)
    # to the bit what the sparse product's top-k gives
    product = topk_to_csr(scores, indices, n_labels) @ graph.astype(np.float32)
    expected = csr_row_topk(product, 4)
    np.testing.assert_array_equal(got_scores, expected[0])
    np.testing.assert_array_equal(got_indices, expected[1])


def test_propagate_topk_with_identity_graph_keeps_the_ranking():
    scores = np.array([[0.9, 0.5, 0.1]], dtype=np.float32)
    indices = np.array([[4, 0, 2]])
    got = propagate_topk(scores, indices, sp.eye(5), k=3)
    np.testing.assert_array_equal(got[1], indices)
    np.testing.assert_allclose(got[0], scores)


def test_smooth_over_graph_matches_the_dense_formula():
    Z = sp.random(9, 30, density=0.5, random_state=1, format="csr")
    graph = sp.random(9, 9, density=0.3, random_state=2, format="csr") + sp.eye(9)
    got = smooth_over_graph(Z, graph, max_features=5, chunk_size=4).toarray()
    product = graph.toarray() @ Z.toarray()
    for row, full in zip(got, product):
        keep = np.argsort(-full, kind="stable")[:5]
        expected = np.zeros_like(full)
        expected[keep] = full[keep] / np.linalg.norm(full[keep])
        np.testing.assert_allclose(row, expected, rtol=1e-5, atol=1e-7)


def test_smooth_over_graph_equals_the_formed_product_to_the_bit():
    """The chunks' top entries come from the product without forming it:
    the same matrix as scipy's product, its row top-k and normalisation."""
    from sklearn.preprocessing import normalize

    from skxmc.utils import csr_row_topk, topk_to_csr

    rng = np.random.default_rng(3)
    Z = sp.random(60, 200, density=0.1, random_state=rng, format="csr")
    Z = sp.vstack([Z, Z[:5]], format="csr").astype(np.float32)  # tied rows
    Z.data = np.round(Z.data * 4) / 4  # many tied values
    Z.data[Z.data == 0] = 0.25
    graph = sp.random(65, 65, density=0.1, random_state=rng, format="csr")
    graph = (graph + sp.eye(65)).tocsr().astype(np.float32)
    for max_features in (1, 7, 300):
        got = smooth_over_graph(Z, graph, max_features=max_features, chunk_size=8)
        blocks = []
        for start in range(0, 65, 8):
            product = sp.csr_matrix(graph[start : start + 8] @ Z)
            scores, indices = csr_row_topk(product, max_features)
            blocks.append(topk_to_csr(scores, indices, Z.shape[1]))
        expected = normalize(sp.vstack(blocks, format="csr")).astype(np.float32)
        assert (got != expected).nnz == 0
        np.testing.assert_array_equal(got.toarray(), expected.toarray())
