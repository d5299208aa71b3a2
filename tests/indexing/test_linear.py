"""Dual coordinate descent solvers and per-level training (skxmc.indexing._linear)."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from skxmc.indexing import LabelTree, fit_binary, fit_level


def _problem(seed, n=80, d=25):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.3, random_state=seed, format="csr", dtype=np.float32)
    w_true = rng.normal(size=d)
    y = (X @ w_true + 0.3 * rng.normal(size=n) > 0).astype(int)
    return X, y


def _augmented(X, bias):
    return sp.hstack([X, np.full((X.shape[0], 1), bias)]).tocsr()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("seed", [0, 1])
def test_squared_hinge_matches_liblinear(seed):
    X, y = _problem(seed)
    C, bias = 0.7, 1.0
    coef, intercept, _ = fit_binary(
        X, y, loss="squared_hinge", C=C, tol=1e-9, max_iter=100_000, bias=bias
    )
    ref = LinearSVC(
        C=C, loss="squared_hinge", dual=True, fit_intercept=False, tol=1e-12,
        max_iter=1_000_000,
    ).fit(_augmented(X, bias), y)  # fmt: skip
    np.testing.assert_allclose(coef, ref.coef_[0, :-1], atol=1e-4)
    np.testing.assert_allclose(intercept, ref.coef_[0, -1] * bias, atol=1e-4)
    # KKT: the primal gradient vanishes at the optimum
    Xa = _augmented(X, bias).toarray()
    w = np.r_[coef, intercept / bias]
    s = np.where(y > 0, 1.0, -1.0)
    slack = np.maximum(0, 1 - s * (Xa @ w))
    grad = w - 2 * C * Xa.T @ (s * slack)
    assert np.abs(grad).max() < 1e-3


@pytest.mark.parametrize("seed", [0, 1])
def test_logistic_matches_lbfgs(seed):
    X, y = _problem(seed)
    C, bias = 2.0, 0.5
    coef, intercept, _ = fit_binary(
        X, y, loss="logistic", C=C, tol=1e-10, max_iter=100_000, bias=bias
    )
    ref = LogisticRegression(C=C, fit_intercept=False, tol=1e-12, max_iter=100_000)
    ref.fit(_augmented(X, bias), y)
    np.testing.assert_allclose(coef, ref.coef_[0, :-1], atol=1e-4)
    np.testing.assert_allclose(intercept, ref.coef_[0, -1] * bias, atol=1e-4)


def test_default_tolerance_is_close_and_bias_zero_disables_intercept():
    X, y = _problem(2, n=300)
    tight, b_tight, _ = fit_binary(X, y, tol=1e-9, max_iter=100_000)
    loose, b_loose, n_iter = fit_binary(X, y)  # eps=0.1 as in LIBLINEAR
    assert n_iter <= 100
    margin = (X @ tight + b_tight) * (X @ loose + b_loose)
    assert np.mean(margin > 0) > 0.95
    _, intercept, _ = fit_binary(X, y, bias=0.0)
    assert intercept == 0.0


def test_fit_binary_errors():
    with pytest.raises(ValueError, match="loss"):
        fit_binary(np.eye(2), [0, 1], loss="hinge")
    with pytest.raises(ValueError, match="rows"):
        fit_binary(np.eye(2), [0, 1, 1])


def test_fit_level_matches_per_node_oracle():
    rng = np.random.default_rng(3)
    X = sp.random(120, 30, density=0.3, random_state=3, format="csr", dtype=np.float32)
    # 2 parents with 3 and 2 children; training rows of each parent chosen at random
    tree = LabelTree.from_leaf_codes([0, 0, 0, 1, 1], 2, branching_factor=2)
    ptr, idx = tree.children(1)
    relevance = sp.csc_matrix((rng.random((120, 5)) < 0.25).astype(np.float32))
    parent_rows = sp.csc_matrix((rng.random((120, 2)) < 0.6).astype(np.float32))
    kwargs = {"C": 1.5, "tol": 1e-9, "max_iter": 100_000, "weight_threshold": 0.05}
    # feature_scale=1.0: LIBLINEAR's problem on X as given, as fit_binary solves it
    W, b, n_iter = fit_level(
        X, relevance, parent_rows, ptr, idx, feature_scale=1.0, **kwargs
    )
    assert np.all(n_iter >= 1)
    assert W.shape == (5, 30) and b.shape == (5,)
    assert np.all(np.abs(W.data) >= 0.05)
    parent = tree.parents(2)
    for node in range(5):
        rows = parent_rows[:, parent[node]].nonzero()[0]
        y = relevance[rows, node].toarray().ravel()
        coef, intercept, _ = fit_binary(X[rows], y, C=1.5, tol=1e-9, max_iter=100_000)
        coef[np.abs(coef) < 0.05] = 0
        np.testing.assert_allclose(W[node].toarray().ravel(), coef, atol=1e-4)
        np.testing.assert_allclose(b[node], intercept, atol=1e-4)


def test_fit_level_independent_of_threads_and_root_uses_all_rows():
    X = sp.random(200, 40, density=0.2, random_state=4, format="csr", dtype=np.float32)
    rng = np.random.default_rng(4)
    relevance = sp.csc_matrix((rng.random((200, 6)) < 0.3).astype(np.float32))
    ptr, idx = np.array([0, 6]), np.arange(6)
    W1, b1, it1 = fit_level(X, relevance, None, ptr, idx, n_threads=1, seed=5)
    W2, b2, it2 = fit_level(X, relevance, None, ptr, idx, n_threads=2, seed=5)
    assert np.array_equal(it1, it2) and np.all(it1 <= 100)
    assert (W1 != W2).nnz == 0 and np.array_equal(b1, b2)
    coef, intercept, _ = fit_binary(
        X, relevance[:, 2].toarray().ravel(), tol=1e-9, max_iter=100_000
    )
    W, b, _ = fit_level(
        X, relevance, None, ptr, idx, tol=1e-9, max_iter=100_000, weight_threshold=0,
        feature_scale=1.0,
    )  # fmt: skip
    np.testing.assert_allclose(W[2].toarray().ravel(), coef, atol=1e-4)
    np.testing.assert_allclose(b[2], intercept, atol=1e-4)
    with pytest.raises(ValueError, match="below the root"):
        fit_level(X, relevance, None, np.array([0, 3, 6]), idx)
    with pytest.raises(ValueError, match="loss"):
        fit_level(X, relevance, None, ptr, idx, loss="hinge")
