"""Scale-robust linear rankers: the feature scale never changes the model (issue 14)."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from skxmc import XRLinearClassifier
from skxmc.indexing import LabelTree, XRLinearModel, fit_binary, fit_level
from skxmc.indexing._linear import feature_scale


def _level_problem(seed=0, n=150, d=40, n_nodes=6):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.2, random_state=seed, format="csr", dtype=np.float32)
    relevance = sp.csc_matrix((rng.random((n, n_nodes)) < 0.3).astype(np.float32))
    return X, relevance, np.array([0, n_nodes]), np.arange(n_nodes)


def test_feature_scale_is_the_median_row_norm_and_exactly_one_for_unit_rows():
    X = sp.csr_matrix(np.array([[3.0, 4.0], [0.0, 0.0], [0.0, 1.0], [6.0, 8.0]]))
    assert feature_scale(X) == 5.0  # the empty row is left out
    assert feature_scale(30 * X) == pytest.approx(150.0)
    unit = sp.csr_matrix(np.array([[0.6, 0.8], [0.0, 1.0]], dtype=np.float32))
    assert feature_scale(unit) == 1.0
    assert feature_scale(sp.csr_matrix((3, 4))) == 1.0


@pytest.mark.parametrize("factor", [30.0, 1e-3])
def test_fit_level_gives_the_same_models_for_scaled_features(factor):
    X, relevance, ptr, idx = _level_problem()
    W1, b1, _ = fit_level(X, relevance, None, ptr, idx, weight_threshold=0.1)
    W2, b2, _ = fit_level(X * factor, relevance, None, ptr, idx, weight_threshold=0.1)
    assert W1.nnz > 0
    # same kept weights, in the units of the features
    assert (abs(W1 - W2 * factor) > 1e-4 * abs(W1).max()).nnz == 0
    assert W1.nnz == W2.nnz
    np.testing.assert_allclose(b1, b2, atol=1e-5)


def test_fit_level_with_unit_scale_solves_liblinear_problem():
    X, relevance, ptr, idx = _level_problem(seed=1)
    W, b, _ = fit_level(
        X, relevance, None, ptr, idx, tol=1e-9, max_iter=100_000,
        weight_threshold=0, feature_scale=1.0,
    )  # fmt: skip
    coef, intercept, _ = fit_binary(
        X, relevance[:, 1].toarray().ravel(), tol=1e-9, max_iter=100_000
    )
    np.testing.assert_allclose(W[1].toarray().ravel(), coef, atol=1e-4)
    assert b[1] == pytest.approx(intercept, abs=1e-4)


@pytest.mark.parametrize("value", ["max", 0.0, -1.0, np.nan, True])
def test_fit_level_rejects_a_bad_feature_scale(value):
    X, relevance, ptr, idx = _level_problem()
    with pytest.raises(ValueError, match="feature_scale"):
        fit_level(X, relevance, None, ptr, idx, feature_scale=value)


def test_fit_level_warns_when_pruning_removes_most_weights():
    X, relevance, ptr, idx = _level_problem()
    with pytest.warns(UserWarning, match=r"weight_threshold=50.* removed 100%"):
        W, _, _ = fit_level(X, relevance, None, ptr, idx, weight_threshold=50.0)
    assert W.nnz == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_level(X * 30, relevance, None, ptr, idx)  # the default threshold


def test_xr_linear_model_ranks_scaled_features_identically():
    rng = np.random.default_rng(0)
    X = sp.random(60, 30, density=0.3, random_state=0, format="csr", dtype=np.float32)
    Y = sp.csr_matrix((rng.random((60, 4)) < 0.4).astype(np.float32))
    tree = LabelTree.from_leaf_codes([0, 0, 1, 1], 2, branching_factor=2)
    s1, l1 = XRLinearModel.train(X, Y, tree).predict_topk(X, k=4)
    s2, l2 = XRLinearModel.train(X * 30, Y, tree).predict_topk(X * 30, k=4)
    np.testing.assert_array_equal(l1, l2)
    np.testing.assert_allclose(s1, s2, rtol=1e-4)


@pytest.fixture(scope="module")
def debian():
    from sklearn.feature_extraction.text import TfidfVectorizer

    from skxmc.datasets import load_debian_packages_sample

    data = load_debian_packages_sample()
    features = {}
    for norm in ("l2", None):
        vectorizer = TfidfVectorizer(
            sublinear_tf=True, min_df=2, norm=norm, dtype=np.float32
        )
        features[norm] = (
            vectorizer.fit_transform(data.text_train),
            vectorizer.transform(data.text_test),
        )
    return data, features


def _p_at_1(data, X_train, X_test):
    from skxmc.metrics import precision_at_k

    clf = XRLinearClassifier(negative_sampling="tfn", random_state=0, n_jobs=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.fit(X_train, data.Y_train)
    # the default threshold keeps most of every level's weights
    assert not [w for w in caught if "weight_threshold" in str(w.message)]
    return 100 * precision_at_k(data.Y_test, clf.predict_topk(X_test, 1), k=1)


def test_xr_linear_p_at_1_is_scale_robust_on_the_debian_sample(debian):
    # Issue 14: with the absolute threshold TF-IDF x30 kept no weight (every
    # row got the same labels) and norm=None lost 17 points of P@1.
    data, features = debian
    X_train, X_test = features["l2"]
    p_x1 = _p_at_1(data, X_train, X_test)
    p_x30 = _p_at_1(data, X_train * 30, X_test * 30)
    p_raw = _p_at_1(data, *features[None])
    assert p_x1 > 55
    assert abs(p_x30 - p_x1) <= 1.0
    assert abs(p_raw - p_x1) <= 1.0
