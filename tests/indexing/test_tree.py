"""Label trees (skxmc.indexing._tree): structure, balance, determinism."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from skxmc.indexing import LabelTree, hierarchical_kmeans


def _random_embeddings(n_labels, n_features, seed):
    return sp.random(
        n_labels, n_features, density=0.3, random_state=seed, format="csr"
    ) + sp.eye(n_labels, n_features, format="csr")


def _check_structure(tree, n_labels, branching_factor, max_leaf_size):
    assert tree.n_labels == n_labels
    chain = tree.cluster_chain
    assert chain[0].shape[1] == 1
    for t, c in enumerate(chain):
        # every node has exactly one parent, with value 1
        assert np.array_equal(c.getnnz(axis=1), np.ones(c.shape[0]))
        assert np.all(c.data == 1)
        if t:
            assert c.shape[1] == chain[t - 1].shape[0]
        if t < len(chain) - 1:
            assert c.getnnz(axis=0).max() <= branching_factor
    leaf_sizes = chain[-1].getnnz(axis=0)
    assert leaf_sizes.sum() == n_labels
    assert leaf_sizes.max() <= max_leaf_size
    return leaf_sizes


@settings(max_examples=25, deadline=None)
@given(
    n_labels=st.integers(1, 120),
    branching_factor=st.integers(2, 9),
    max_leaf_size=st.integers(1, 20),
    seed=st.integers(0, 2**16),
)
def test_every_label_in_one_balanced_leaf(
    n_labels, branching_factor, max_leaf_size, seed
):
    Z = _random_embeddings(n_labels, 15, seed)
    tree = hierarchical_kmeans(
        Z,
        branching_factor=branching_factor,
        max_leaf_size=max_leaf_size,
        random_state=seed,
    )
    leaf_sizes = _check_structure(tree, n_labels, branching_factor, max_leaf_size)
    if n_labels > max_leaf_size:
        # balanced binary splits: leaf sizes differ by at most one, no empty leaf
        depth = max(1, math.ceil(math.log2(n_labels / max_leaf_size)))
        assert leaf_sizes.shape[0] == min(2**depth, n_labels)
        assert leaf_sizes.max() - leaf_sizes.min() <= 1
        assert leaf_sizes.min() >= 1
    else:
        assert tree.n_levels == 1  # flat: every label under the root


def test_deterministic_given_seed_and_independent_of_threads():
    Z = _random_embeddings(300, 40, 0)
    trees = [
        hierarchical_kmeans(Z, max_leaf_size=10, random_state=7, n_jobs=n_jobs)
        for n_jobs in (1, 2, None)
    ]
    leaves = [t.leaf_of_label() for t in trees]
    assert all(np.array_equal(leaves[0], leaf) for leaf in leaves)
    other = hierarchical_kmeans(Z, max_leaf_size=10, random_state=8)
    assert not np.array_equal(leaves[0], other.leaf_of_label())


def test_recovers_separated_groups():
    # 8 groups of 5 labels; group g lives on features 3g..3g+2 (orthogonal)
    rng = np.random.default_rng(0)
    rows = []
    for g in range(8):
        block = np.zeros((5, 24))
        block[:, 3 * g : 3 * g + 3] = rng.random((5, 3)) + 0.5
        rows.append(block)
    Z = sp.csr_matrix(np.vstack(rows))
    perm = rng.permutation(40)
    tree = hierarchical_kmeans(
        Z[perm], branching_factor=2, max_leaf_size=5, random_state=0
    )
    group = (np.arange(40) // 5)[perm]
    leaf = tree.leaf_of_label()
    for g in range(8):
        assert np.unique(leaf[group == g]).shape[0] == 1
    assert np.unique(leaf).shape[0] == 8


def test_from_leaf_codes_grouping_like_pecos():
    # 512 leaves, 16-way: 512 -> 32 -> 2 -> root
    codes = np.arange(1024) // 2
    tree = LabelTree.from_leaf_codes(codes, 512, branching_factor=16)
    assert tree.n_nodes == [1, 2, 32, 512, 1024]
    np.testing.assert_array_equal(tree.parents(3), np.arange(512) // 16)
    anc = tree.ancestors()
    np.testing.assert_array_equal(anc[:, 2], codes)
    np.testing.assert_array_equal(anc[:, 1], codes // 16)
    np.testing.assert_array_equal(anc[:, 0], codes // 256)


def test_children_ancestors_and_project():
    tree = LabelTree.from_leaf_codes([1, 0, 2, 1, 2], 3, branching_factor=2)
    assert tree.n_nodes == [1, 2, 3, 5]
    ptr, idx = tree.children(2)
    assert [idx[ptr[p] : ptr[p + 1]].tolist() for p in range(3)] == [
        [1],
        [0, 3],
        [2, 4],
    ]
    Y = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 1, 0, 0, 1], [0, 0, 0, 0, 0]]))
    np.testing.assert_array_equal(
        tree.project(Y, 2).toarray(), [[0, 1, 0], [1, 0, 1], [0, 0, 0]]
    )
    np.testing.assert_array_equal(
        tree.project(Y, 1).toarray(), [[1, 0], [1, 1], [0, 0]]
    )
    np.testing.assert_array_equal(
        tree.ancestors()[:, :2], [[0, 1], [0, 0], [1, 2], [0, 1], [1, 2]]
    )


def test_validation_errors():
    with pytest.raises(ValueError, match="one column"):
        LabelTree([sp.csr_matrix(np.ones((2, 2)))])
    with pytest.raises(ValueError, match="exactly one parent"):
        LabelTree([sp.csr_matrix(np.ones((2, 1))), sp.csr_matrix(np.ones((3, 2)))])
    with pytest.raises(ValueError, match="columns but level"):
        LabelTree([sp.csr_matrix(np.ones((2, 1))), sp.csr_matrix(np.ones((3, 1)))])
    with pytest.raises(ValueError, match="branching_factor"):
        hierarchical_kmeans(np.eye(3), branching_factor=1)
    with pytest.raises(ValueError, match="max_leaf_size"):
        hierarchical_kmeans(np.eye(3), max_leaf_size=0)
    with pytest.raises(ValueError, match="zero labels"):
        hierarchical_kmeans(np.zeros((0, 3)))
