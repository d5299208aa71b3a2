"""The XR-Linear engine (skxmc.indexing._xr_linear): which rows train which node."""

import numpy as np
import pytest
import scipy.sparse as sp

from skxmc.datasets import make_xmc_classification
from skxmc.indexing import (
    XRLinearModel,
    fit_binary,
    hierarchical_kmeans,
    pifa_embedding,
    post_process,
)

TIGHT = {"tol": 1e-9, "max_iter": 100_000, "weight_threshold": 0.0}


@pytest.fixture(scope="module")
def problem():
    X, Y = make_xmc_classification(
        n_samples=150, n_labels=24, n_features=60, random_state=0
    )
    tree = hierarchical_kmeans(
        pifa_embedding(X, Y), branching_factor=2, max_leaf_size=3, random_state=0
    )
    assert tree.n_levels >= 3
    return X, Y, tree


def _beam_nodes(X, model, tree, depth, beam_size):
    """Reference beam search (pure Python) returning each row's beam at ``depth``."""
    raw = []
    for t in range(depth):
        W, b = model.weights(t + 1)
        raw.append(post_process((X @ W.T).toarray() + b))
    beams = []
    for i in range(X.shape[0]):
        cur = [(1.0, 0)]
        for t in range(depth):
            parent = tree.parents(t + 1)
            cand = [
                (s * raw[t][i, j], j)
                for s, p in cur
                for j in np.flatnonzero(parent == p)
            ]
            cand.sort(key=lambda c: (-c[0], c[1]))
            cur = cand[:beam_size]
        beams.append({node for _, node in cur})
    return beams


@pytest.mark.parametrize("scheme", ["tfn", "man", "tfn+man"])
def test_training_rows_follow_negative_sampling(problem, scheme):
    X, Y, tree = problem
    beam_size = 2
    model = XRLinearModel.train(
        X, Y, tree, negative_sampling=scheme, beam_size=beam_size, C=2.0, **TIGHT
    )
    schemes_differ = False
    for t in range(tree.n_levels):  # ranker t trains the nodes of level t + 1
        W, b = model.weights(t + 1)
        relevance = tree.project(Y, t + 1).toarray()
        parent = tree.parents(t + 1)
        if t > 0:
            positive_parent = tree.project(Y, t).toarray() > 0
            beams = _beam_nodes(X, model, tree, t, beam_size)
        for node in range(0, tree.n_nodes[t + 1], 3):
            p = parent[node]
            if t == 0:
                rows = np.ones(X.shape[0], bool)
            else:
                tfn = positive_parent[:, p]
                man = np.array([p in beam for beam in beams])
                rows = {"tfn": tfn, "man": man, "tfn+man": tfn | man}[scheme]
                schemes_differ |= bool(np.any(tfn != man))
            if not rows.any():
                assert W[node].nnz == 0 and b[node] == 0
                continue
            coef, intercept, _ = fit_binary(
                X[rows], relevance[rows, node], C=2.0, tol=1e-9, max_iter=100_000
            )
            np.testing.assert_allclose(W[node].toarray().ravel(), coef, atol=2e-4)
            np.testing.assert_allclose(b[node], intercept, atol=2e-4)
    assert schemes_differ  # the data set tells the schemes apart


def test_wide_beam_is_exhaustive_and_pruning(problem):
    X, Y, tree = problem
    model = XRLinearModel.train(X, Y, tree, weight_threshold=0.2, seed=3)
    for level in range(1, tree.n_levels + 1):
        W, _ = model.weights(level)
        assert np.all(np.abs(W.data) >= 0.2)
    P = _literal_path_scores(X, model, tree, "l3-hinge")
    scores, labels = model.predict_topk(X, k=5, beam_size=max(tree.n_nodes))
    top = np.lexsort((np.broadcast_to(np.arange(P.shape[1]), P.shape), -P), axis=1)
    np.testing.assert_array_equal(labels, top[:, :5])
    np.testing.assert_allclose(scores, np.take_along_axis(P, top[:, :5], 1), rtol=1e-5)


def _literal_path_scores(X, model, tree, post_processor):
    """Path score of every label: the product of its ancestors' scores."""
    P = np.ones((X.shape[0], 1))
    for t in range(tree.n_levels):
        W, b = model.weights(t + 1)
        level = post_process((X @ W.T).toarray() + b, post_processor)
        P = P[:, tree.parents(t + 1)] * level
    return P


@pytest.mark.parametrize("post_processor", ["l3-hinge", "sigmoid"])
def test_score_pairs_match_literal_path_scores(problem, post_processor):
    X, Y, tree = problem
    model = XRLinearModel.train(X, Y, tree, C=2.0, seed=0)
    P = _literal_path_scores(X, model, tree, post_processor)
    labels = np.random.default_rng(0).integers(0, Y.shape[1], size=(X.shape[0], 7))
    labels[::4, -2:] = -1  # padding
    scores = model.score_pairs(X, labels, post_processor=post_processor, block_size=16)
    expected = np.where(labels >= 0, np.take_along_axis(P, labels, 1), 0.0)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-7)
    # labels the beam reaches get the beam's score
    beam_scores, beam_labels = model.predict_topk(X, k=3, post_processor=post_processor)
    np.testing.assert_allclose(
        model.score_pairs(X, beam_labels, post_processor=post_processor),
        beam_scores,
        rtol=1e-5,
    )
    with pytest.raises(ValueError, match="labels must"):
        model.score_pairs(X, labels[:-1])
    with pytest.raises(ValueError, match="labels must"):
        model.score_pairs(X, labels + Y.shape[1])
    with pytest.raises(ValueError, match="features"):
        model.score_pairs(X[:, :-1], labels)
    with pytest.raises(ValueError, match="post_processor"):
        model.score_pairs(X, labels, post_processor="noop")


def test_score_pairs_equal_the_scipy_products_to_the_bit(problem):
    from skxmc.utils import sparse_pair_scores

    X, Y, tree = problem
    # the kernels on the rows as given (row_norm=None), scipy's order kept
    model = XRLinearModel.train(X, Y, tree, C=2.0, seed=0, row_norm=None)
    labels = np.random.default_rng(1).integers(-1, Y.shape[1], size=(X.shape[0], 9))
    X = sp.csr_matrix(X, dtype=np.float32)
    # unsorted indices and a duplicate entry: scipy's summation order is kept
    indices, values = [], []
    for i in range(5):
        row = X[i]
        indices.append(np.r_[row.indices[::-1], row.indices[:1]])
        values.append(np.r_[row.data[::-1], np.full(min(1, row.nnz), 0.5, np.float32)])
    indptr = np.cumsum([0] + [len(i) for i in indices])
    shuffled = sp.csr_matrix(
        (np.concatenate(values), np.concatenate(indices), indptr), shape=(5, X.shape[1])
    )
    assert not shuffled.has_sorted_indices
    # one feature per row: the label level searches the parents' features
    single = sp.csr_matrix(
        (X.data[X.indptr[:-1]], X.indices[X.indptr[:-1]], np.arange(X.shape[0] + 1)),
        shape=X.shape,
    )
    cases = ((X, labels), (shuffled, labels[:5]), (X[7], labels[7:8]), (single, labels))
    for queries, pairs in cases:
        ancestors = tree.ancestors()
        safe = np.maximum(pairs, 0)
        expected = np.ones(pairs.shape)
        for t in range(tree.n_levels - 1):
            W, b = model.weights(t + 1)
            raw = (queries @ W.T.tocsr()).toarray() + b
            nodes = ancestors[safe, t]
            expected *= post_process(np.take_along_axis(raw, nodes, 1))
        W, b = model.weights(tree.n_levels)
        expected *= post_process(sparse_pair_scores(queries, W, safe) + b[safe])
        expected[pairs < 0] = 0.0
        scores = model.score_pairs(queries, pairs, block_size=64)
        np.testing.assert_array_equal(scores, expected.astype(np.float32))


@pytest.mark.parametrize("n_rows", [1, 3, 4, 40])  # few rows keep node sums
@pytest.mark.parametrize("post_processor", ["l3-hinge", "sigmoid"])
def test_pair_scorer_of_a_search_equals_score_pairs_to_the_bit(
    problem, n_rows, post_processor
):
    """predict_topk(return_pair_scorer=True): the same top k, and a scorer
    that gives score_pairs' values to the bit, whether the search kept its
    node sums (a few rows) or not, for labels reached by the beam or not."""
    X, Y, tree = problem
    model = XRLinearModel.train(X, Y, tree, C=2.0, seed=0)
    rows = sp.csr_matrix(X[5 : 5 + n_rows])
    plain = model.predict_topk(rows, k=4, post_processor=post_processor)
    scores, ids, pair_scorer = model.predict_topk(
        rows, k=4, post_processor=post_processor, return_pair_scorer=True
    )
    np.testing.assert_array_equal(scores, plain[0])
    np.testing.assert_array_equal(ids, plain[1])
    assert (pair_scorer._sums is not None) == (n_rows <= 4)
    rng = np.random.default_rng(n_rows)
    labels = rng.integers(-1, Y.shape[1], size=(n_rows, 11))
    for pairs in (labels, ids, np.arange(Y.shape[1])[None].repeat(n_rows, 0)):
        np.testing.assert_array_equal(
            pair_scorer(pairs),
            model.score_pairs(rows, pairs, post_processor=post_processor),
        )
    # the literal path scores, and its checks of the labels
    P = _literal_path_scores(rows, model, tree, post_processor)
    expected = np.where(labels >= 0, np.take_along_axis(P, np.maximum(labels, 0), 1), 0)
    np.testing.assert_allclose(pair_scorer(labels), expected, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="labels must"):
        pair_scorer(labels[:-1] if n_rows > 1 else labels[:, :, None])
    with pytest.raises(ValueError, match="labels must"):
        pair_scorer(labels + Y.shape[1])


def test_node_sums_of_a_search_are_the_products_of_every_node(problem):
    """TreeScorer.search(node_sums=True): every child of every node of every
    level gets x . w (an empty beam or not), float32 above the last level's
    parents, float64 below."""
    X, Y, tree = problem
    model = XRLinearModel.train(X, Y, tree, C=2.0, seed=0, row_norm=None)
    scorer = model.scorer
    rows = sp.csr_matrix(X[:2], dtype=np.float32)
    # a beam of 1 keeps one node per level; the sums cover all of them
    _, _, sums = scorer.search(rows, beam_size=1, k=1, node_sums=True)
    assert sums.upper.dtype == np.float32 and sums.last.dtype == np.float64
    _, parent_of, slot_of = model._tree_nodes_tables()
    for level in range(1, tree.n_levels + 1):
        W, _ = model.weights(level)
        expected = (rows @ W.T).toarray()
        nodes = scorer.offsets[level] + np.arange(W.shape[0])
        if level < tree.n_levels:
            got = sums.upper[:, parent_of[nodes] * sums.stride + slot_of[nodes]]
        else:
            first = sums.last_parents
            got = sums.last[
                :, (parent_of[nodes] - first) * sums.stride + slot_of[nodes]
            ]
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # more rows than a few: no sums
    assert scorer.search(sp.csr_matrix(X, dtype=np.float32), node_sums=True)[2] is None


def test_deterministic_and_thread_independent(problem):
    X, Y, tree = problem
    a = XRLinearModel.train(X, Y, tree, seed=1, n_jobs=1)
    b = XRLinearModel.train(X, Y, tree, seed=1, n_jobs=2)
    for level in range(1, tree.n_levels + 1):
        Wa, ba = a.weights(level)
        Wb, bb = b.weights(level)
        assert (Wa != Wb).nnz == 0 and np.array_equal(ba, bb)


def test_logistic_sigmoid_learns(problem):
    X, Y, tree = problem
    model = XRLinearModel.train(X, Y, tree, loss="logistic", post_processor="sigmoid")
    _, labels = model.predict_topk(X, k=1)
    assert np.mean(np.asarray(Y[np.arange(X.shape[0]), labels[:, 0]])) > 0.8


def test_errors(problem):
    X, Y, tree = problem
    with pytest.raises(ValueError, match="negative_sampling"):
        XRLinearModel.train(X, Y, tree, negative_sampling="usn")
    with pytest.raises(ValueError, match="loss"):
        XRLinearModel.train(X, Y, tree, loss="hinge")
    with pytest.raises(ValueError, match="post_processor"):
        XRLinearModel.train(X, Y, tree, post_processor="noop")
    with pytest.raises(ValueError, match="labels but the tree"):
        XRLinearModel.train(X, Y[:, :5], tree)
    with pytest.raises(ValueError, match="rows"):
        XRLinearModel.train(X[:10], Y, tree)
    Y_before = Y.copy()
    XRLinearModel.train(X, sp.csr_matrix(Y * 3), tree)  # non-binary values
    assert (Y != Y_before).nnz == 0


def test_score_pairs_of_single_rows_equal_the_batch_to_the_bit(problem):
    # a few rows are scored feature-major, blocks of rows parent by parent
    X, Y, tree = problem
    model = XRLinearModel.train(X, Y, tree, C=2.0, seed=0)
    rng = np.random.default_rng(3)
    labels = rng.integers(-1, Y.shape[1], size=(X.shape[0], 11))
    batch = model.score_pairs(X, labels)
    for i in range(X.shape[0]):
        np.testing.assert_array_equal(
            model.score_pairs(X[i], labels[i : i + 1])[0], batch[i]
        )
    np.testing.assert_array_equal(model.score_pairs(X[2:6], labels[2:6]), batch[2:6])
