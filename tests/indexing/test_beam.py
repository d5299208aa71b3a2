"""Beam search (skxmc.indexing._beam) against brute-force path scoring."""

import numpy as np
import pytest
import scipy.sparse as sp

from skxmc.indexing import LabelTree, TreeScorer, beam_search, post_process


def _random_model(n_labels, n_leaves, branching_factor, n_features, seed):
    rng = np.random.default_rng(seed)
    codes = np.concatenate(
        [np.arange(n_leaves), rng.integers(0, n_leaves, n_labels - n_leaves)]
    )
    tree = LabelTree.from_leaf_codes(codes, n_leaves, branching_factor)
    weights, intercepts = [], []
    for t in range(tree.n_levels):
        n = tree.n_nodes[t + 1]
        # some dense rows (binary-search path) and some sparse ones
        density = rng.uniform(0.005, 0.6, size=n)
        W = sp.vstack(
            [
                sp.random(1, n_features, density=d, random_state=rng, format="csr")
                for d in density
            ]
        ).tocsr()
        W.data = (W.data - 0.5) * 4
        weights.append(W)
        intercepts.append(rng.normal(size=n))
    return tree, weights, intercepts


def _brute_force(X, tree, weights, intercepts, post):
    """Path score of every label: product of post(score) over its ancestors."""
    P = np.ones((X.shape[0], 1))
    for t in range(tree.n_levels):
        raw = (X @ weights[t].T).toarray() + intercepts[t]
        P = P[:, tree.parents(t + 1)] * post_process(raw, post)
    return P


def _ranking(P):
    # best first, ties broken by lower label index
    return np.lexsort((np.broadcast_to(np.arange(P.shape[1]), P.shape), -P), axis=1)


@pytest.mark.parametrize("post", ["l3-hinge", "sigmoid"])
@pytest.mark.parametrize("seed", [0, 1])
def test_wide_beam_equals_brute_force(post, seed):
    tree, W, b = _random_model(60, 9, 3, 400, seed)
    X = sp.random(25, 400, density=0.02, random_state=seed, format="csr")
    X = sp.diags(np.r_[0.0, np.ones(24)]) @ X  # row 0: an empty query
    X = X.tocsr()
    X.eliminate_zeros()
    P = _brute_force(X, tree, W, b, post)
    k = 64
    scores, labels = beam_search(X, tree, W, b, beam_size=60, k=k, post_processor=post)
    assert scores.shape == labels.shape == (25, k)
    assert scores.dtype == np.float32 and labels.dtype == np.int64
    order = _ranking(P)
    np.testing.assert_array_equal(labels[:, :60], order)
    np.testing.assert_allclose(
        scores[:, :60], np.take_along_axis(P, order, 1), rtol=1e-5, atol=1e-7
    )
    assert (labels[:, 60:] == -1).all() and np.isneginf(scores[:, 60:]).all()


def test_narrow_beam_returns_true_path_scores_in_order():
    tree, W, b = _random_model(80, 12, 4, 300, 3)
    X = sp.random(30, 300, density=0.05, random_state=3, format="csr")
    P = _brute_force(X, tree, W, b, "l3-hinge")
    scores, labels = beam_search(X, tree, W, b, beam_size=2, k=5)
    rows = np.broadcast_to(np.arange(30)[:, None], labels.shape)
    valid = labels >= 0
    assert valid[:, 0].all()
    assert np.all(np.diff(valid.astype(int), axis=1) <= 0)  # padding at the end
    np.testing.assert_allclose(
        scores[valid], P[rows[valid], labels[valid]], rtol=1e-5, atol=1e-7
    )
    assert np.all(scores[:, :-1] >= scores[:, 1:])
    # a beam of 1 follows the best child at every level
    _, greedy = beam_search(X, tree, W, b, beam_size=1, k=1)
    for i in range(30):
        node = 0
        for t in range(tree.n_levels - 1):
            kids = np.flatnonzero(tree.parents(t + 1) == node)
            raw = X[i] @ W[t][kids].T
            node = kids[np.argmax(post_process(raw.toarray()[0] + b[t][kids]))]
        assert tree.parents(tree.n_levels)[greedy[i, 0]] == node


def test_threads_and_single_row_path_agree():
    tree, W, b = _random_model(50, 8, 2, 200, 5)
    scorer = TreeScorer(tree, W, b)
    X = sp.random(40, 200, density=0.05, random_state=5, format="csr")
    s1, i1 = scorer.search(X, beam_size=3, k=7, n_jobs=1)
    s2, i2 = scorer.search(X, beam_size=3, k=7, n_jobs=2)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(s1, s2)
    _s3, i3 = scorer.search(X[7], beam_size=3, k=7)
    np.testing.assert_array_equal(i3[0], i1[7])
    # dense input and unsorted / duplicated sparse indices give the same answer
    np.testing.assert_array_equal(scorer.search(X.toarray(), beam_size=3, k=7)[1], i1)
    Xd = sp.csr_matrix((X.data / 2, X.indices, X.indptr), shape=X.shape)
    Xdup = sp.csr_matrix(
        (
            np.concatenate([Xd.data, Xd.data]),
            np.concatenate([Xd.indices, Xd.indices]),
            np.concatenate([[0], np.cumsum(2 * np.diff(Xd.indptr))]),
        ),
        shape=X.shape,
    )
    Xdup.indices = np.concatenate(
        [
            np.concatenate([X.indices[a:c], X.indices[a:c]])
            for a, c in zip(X.indptr[:-1], X.indptr[1:])
        ]
    )
    Xdup.data = np.concatenate(
        [
            np.concatenate([Xd.data[a:c], Xd.data[a:c]])
            for a, c in zip(X.indptr[:-1], X.indptr[1:])
        ]
    )
    Xdup.has_canonical_format = False
    np.testing.assert_allclose(scorer.search(Xdup, beam_size=3, k=7)[0], s1, rtol=1e-5)


def test_level_weights_round_trip_and_partial_search():
    tree, W, b = _random_model(40, 6, 3, 100, 7)
    scorer = TreeScorer(tree, W, b)
    for t in range(tree.n_levels):
        Wt, bt = scorer.level_weights(t)
        assert abs(Wt - W[t]).max() < 1e-6
        np.testing.assert_allclose(bt, b[t], rtol=1e-6)
    # searching only the first level scores its nodes exactly
    X = sp.random(10, 100, density=0.1, random_state=7, format="csr")
    partial = TreeScorer(tree, W[:1], b[:1])
    _scores, nodes = partial.search(X, k=tree.n_nodes[1], n_levels=1)
    P = post_process((X @ W[0].T).toarray() + b[0])
    np.testing.assert_array_equal(nodes, _ranking(P))


def test_post_process_literal_values():
    s = np.array([-1.0, 0.0, 0.5, 1.0, 3.0])
    np.testing.assert_allclose(
        post_process(s, "l3-hinge"), np.exp(-np.array([8.0, 1.0, 0.125, 0.0, 0.0]))
    )
    np.testing.assert_allclose(post_process(s, "sigmoid"), 1 / (1 + np.exp(-s)))
    with pytest.raises(ValueError, match="post_processor"):
        post_process(s, "l2-hinge")


def test_errors():
    tree, W, b = _random_model(10, 3, 2, 20, 0)
    scorer = TreeScorer(tree, W, b)
    with pytest.raises(ValueError, match="features"):
        scorer.search(np.ones((1, 21)))
    with pytest.raises(ValueError, match="post_processor"):
        scorer.search(np.ones((1, 20)), post_processor="noop")
    with pytest.raises(ValueError, match="n_levels"):
        scorer.search(np.ones((1, 20)), n_levels=9)
    with pytest.raises(ValueError, match="shape"):
        TreeScorer(tree, [W[0].T, *W[1:]], b)


@pytest.mark.parametrize("post", ["l3-hinge", "sigmoid"])
def test_single_rows_equal_the_node_by_node_search_to_the_bit(post):
    # a few rows are scored feature-major (_beam_rows_by_feature), many rows
    # node by node (_beam_rows): the same sums, so the same answer to the bit
    tree, W, b = _random_model(70, 10, 3, 300, 11)
    scorer = TreeScorer(tree, W, b)
    X = sp.random(30, 300, density=0.06, random_state=11, format="csr")
    X = X.tolil()
    X[3, :] = 0  # an empty row
    X[4, 7] = 0.0  # an explicitly stored zero
    X = X.tocsr()
    X.data[X.indptr[4]] = 0.0
    for beam_size, k in ((1, 3), (3, 7), (40, 70)):
        s_all, i_all = scorer.search(
            X, beam_size=beam_size, k=k, post_processor=post, n_jobs=1
        )
        for i in range(X.shape[0]):
            s, ids = scorer.search(X[i], beam_size=beam_size, k=k, post_processor=post)
            np.testing.assert_array_equal(ids[0], i_all[i])
            np.testing.assert_array_equal(s[0], s_all[i])
    # four rows at once take the feature-major path as well
    s4, i4 = scorer.search(X[5:9], beam_size=3, k=7, post_processor=post)
    s_all, i_all = scorer.search(X, beam_size=3, k=7, post_processor=post, n_jobs=1)
    np.testing.assert_array_equal(i4, i_all[5:9])
    np.testing.assert_array_equal(s4, s_all[5:9])
