"""Fixed-width cluster-to-label adjacencies against dense oracles."""

import numpy as np
import pytest
import scipy.sparse as sp

from skxmc.indexing import (
    cluster_adjacency,
    label_cluster_matrix,
    reestimate_adjacency,
)


def test_cluster_adjacency_and_label_cluster_matrix():
    cluster_of_label = np.array([2, 0, 2, 1, 0, 2])
    index = cluster_adjacency(cluster_of_label, 4, kappa=3)
    assert index.tolist() == [[1, 4, -1], [3, -1, -1], [0, 2, 5], [-1, -1, -1]]
    matrix = label_cluster_matrix(index, 6).toarray()
    expected = np.zeros((6, 4))
    expected[np.arange(6), cluster_of_label] = 1
    np.testing.assert_array_equal(matrix, expected)
    with pytest.raises(ValueError, match="kappa=2 is smaller"):
        cluster_adjacency(cluster_of_label, 4, kappa=2)


def _oracle(Y, M, kappa, fallback):
    """Dense, row by row: sort each cluster row of (Y^T M)^T, fill, normalise."""
    A = (Y.toarray().T @ M.toarray()).T
    popular = np.argsort(-Y.toarray().sum(0), kind="stable")
    index = np.full((A.shape[0], kappa), -1)
    values = np.zeros((A.shape[0], kappa))
    for c, row in enumerate(A):
        stored = [(-row[j], j) for j in range(len(row)) if row[j] != 0]
        kept = [j for _, j in sorted(stored)[:kappa]]
        vals = [row[j] for j in kept]
        floor = min(vals) if vals else 1.0
        for label in [*(j for j in fallback[c] if j >= 0), *popular]:
            if len(kept) == kappa:
                break
            if label not in kept:
                kept.append(label)
                vals.append(0.1 * floor)
        index[c, : len(kept)] = kept
        values[c, : len(kept)] = vals
    share = values / values.sum(1, keepdims=True)
    logits = np.where(index >= 0, np.log(np.maximum(share, 1e-6)), 0.0)
    return index, logits


@pytest.mark.parametrize("kappa", [2, 4, 7])
def test_reestimate_adjacency_equals_the_dense_oracle(kappa):
    rng = np.random.default_rng(0)
    n, n_labels, n_clusters, beam = 30, 7, 5, 2
    Y = sp.csr_matrix((rng.uniform(size=(n, n_labels)) < 0.2).astype(np.float32))
    # cluster 4 is never in a beam: its row is all fill
    scores = rng.uniform(0.1, 1, size=(n, n_clusters - 1)).astype(np.float32)
    top = np.argsort(-scores, axis=1)[:, :beam]
    M = sp.lil_matrix((n, n_clusters), dtype=np.float32)
    for i, row in enumerate(top):
        M[i, row] = scores[i, row]
    fallback = cluster_adjacency(np.arange(n_labels) % n_clusters, n_clusters, 2)
    index, logits = reestimate_adjacency(Y, M.tocsr(), kappa, fallback)
    expected_index, expected_logits = _oracle(Y, M.tocsr(), kappa, fallback)
    np.testing.assert_array_equal(index, expected_index)
    np.testing.assert_allclose(logits, expected_logits, rtol=1e-5, atol=1e-6)
    assert index.dtype == np.int64 and logits.dtype == np.float32
    # exactly kappa distinct labels per row; softmax of a row: its shares
    assert all(len(set(row)) == kappa for row in index.tolist())
    assert index[4, 0] == fallback[4, 0] == 4  # its own label first
    np.testing.assert_allclose(np.exp(logits).sum(1), 1.0, rtol=1e-4)


@pytest.mark.parametrize("seed", range(4))
def test_reestimate_adjacency_fill_from_the_most_frequent_labels(seed):
    # Many more labels than kappa, skewed frequencies and beams on the most
    # frequent labels' clusters: short rows keep popular labels and are filled
    # from the next most frequent ones (the fill reads only the kappa most
    # frequent labels), as the oracle's fill over every label.
    rng = np.random.default_rng(seed)
    n, n_labels, n_clusters, kappa = 60, 80, 12, 4
    p = 1.0 / np.arange(1, n_labels + 1)
    Y = sp.lil_matrix((n, n_labels), dtype=np.float32)
    for i in range(n):
        Y[i, rng.choice(n_labels, size=2, replace=False, p=p / p.sum())] = 1.0
    Y = Y.tocsr()
    M = sp.lil_matrix((n, n_clusters), dtype=np.float32)
    for i in range(n):  # only clusters 0-2 are ever in a beam, one at a time
        M[i, rng.integers(0, 3)] = rng.uniform(0.1, 1)
    fallback = cluster_adjacency(np.arange(n_labels) % n_clusters, n_clusters, 7)
    fallback[5:, 1:] = -1  # rows with a single own label need popular fill
    index, logits = reestimate_adjacency(Y, M.tocsr(), kappa, fallback)
    expected_index, expected_logits = _oracle(Y, M.tocsr(), kappa, fallback)
    np.testing.assert_array_equal(index, expected_index)
    np.testing.assert_allclose(logits, expected_logits, rtol=1e-5, atol=1e-6)
    assert all(len(set(row)) == kappa for row in index.tolist())
