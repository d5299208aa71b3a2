"""XRLinearClassifier: the scikit-learn facade of the XR-Linear engine."""

import time

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import InvalidParameterError

from skxmc import LabelInfo
from skxmc._xr_linear import XRLinearClassifier
from skxmc.datasets import make_xmc_classification
from skxmc.indexing import hierarchical_kmeans, label_embedding, post_process
from skxmc.metrics import precision_at_k


@pytest.fixture(scope="module")
def data():
    X, Y = make_xmc_classification(
        n_samples=600, n_labels=60, n_features=300, random_state=0
    )
    return X[:400], Y[:400], X[400:], Y[400:]


def _fit(data, **params):
    X, Y, _, _ = data
    params = {"max_leaf_size": 8, "branching_factor": 4, "random_state": 0, **params}
    return XRLinearClassifier(**params).fit(X, Y)


def test_learns_far_above_popularity(data):
    _, Ytr, Xte, Yte = data
    clf = _fit(data)
    p1 = precision_at_k(Yte, clf.predict_topk(Xte, 5), k=1)
    popular = np.argmax(np.asarray(Ytr.sum(axis=0)).ravel())
    baseline = float(Yte[:, popular].mean())
    assert p1 > max(0.9, baseline + 0.3)
    assert clf.label_tree_.n_levels >= 2 and clf.label_tree_.n_labels == 60
    assert clf.n_features_in_ == 300 and clf.n_labels_ == 60


@pytest.mark.parametrize(
    "params",
    [
        {"negative_sampling": "tfn"},
        {"negative_sampling": "man"},
        {"loss": "logistic", "post_processor": "sigmoid"},
        {"post_processor": "sigmoid"},
    ],
)
def test_options_learn(data, params):
    _, _, Xte, Yte = data
    clf = _fit(data, **params)
    assert precision_at_k(Yte, clf.predict_topk(Xte, 5), k=1) > 0.85


def test_wide_beam_equals_brute_force(data):
    _, _, Xte, _ = data
    clf = _fit(data, beam_size=100)
    tree, model = clf.label_tree_, clf.model_
    P = np.ones((Xte.shape[0], 1))
    for t in range(tree.n_levels):
        W, b = model.weights(t + 1)
        P = P[:, tree.parents(t + 1)] * post_process((Xte @ W.T).toarray() + b)
    scores, labels = clf.predict_topk(Xte, 7)
    top = np.lexsort((np.broadcast_to(np.arange(60), P.shape), -P), axis=1)[:, :7]
    np.testing.assert_array_equal(labels, top)
    np.testing.assert_allclose(scores, np.take_along_axis(P, top, 1), rtol=1e-5)


def test_deterministic_given_random_state_and_n_jobs(data):
    _, _, Xte, _ = data
    a = _fit(data, random_state=5, n_jobs=1)
    b = _fit(data, random_state=5, n_jobs=2)
    np.testing.assert_array_equal(a.predict_topk(Xte, 5)[1], b.predict_topk(Xte, 5)[1])
    np.testing.assert_array_equal(
        a.label_tree_.leaf_of_label(), b.label_tree_.leaf_of_label()
    )
    c = _fit(data, random_state=6)
    assert not np.array_equal(
        a.label_tree_.leaf_of_label(), c.label_tree_.leaf_of_label()
    )


@pytest.mark.parametrize(
    "method", ["pifa", "text", "pifa_text_concat", "pifa_text_convex"]
)
def test_label_embedding_options(data, method):
    X, Y, Xte, Yte = data
    # label features: a noisy copy of each label's PIFA, in the space of X
    rng = np.random.default_rng(0)
    pifa = label_embedding(X, Y).toarray()
    features = np.abs(pifa + 0.05 * rng.random(pifa.shape)).astype(np.float32)
    info = LabelInfo(features=sp.csr_matrix(features))
    clf = XRLinearClassifier(
        label_embedding=method, max_leaf_size=8, branching_factor=4, random_state=3
    ).fit(X, Y, label_info=info)
    # the tree is the one clustering the requested embedding
    seed = int(check_random_state(3).randint(np.iinfo(np.int32).max))
    Z = label_embedding(X, Y, method=method, label_features=features)
    expected = hierarchical_kmeans(
        Z, branching_factor=4, max_leaf_size=8, random_state=seed
    )
    np.testing.assert_array_equal(
        clf.label_tree_.leaf_of_label(), expected.leaf_of_label()
    )
    assert precision_at_k(Yte, clf.predict_topk(Xte, 5), k=1) > 0.85


def test_single_query_path(data):
    _, _, Xte, _ = data
    clf = _fit(data)
    scores, labels = clf.predict_topk(Xte[:20], 4)
    for i in range(20):
        s, lab = clf.predict_topk_one(Xte[i], k=4)
        np.testing.assert_array_equal(lab, labels[i])
        np.testing.assert_array_equal(s, scores[i])
    s, lab = clf.predict_topk_one(Xte[3].toarray().ravel(), k=4)
    np.testing.assert_array_equal(lab, labels[3])
    with pytest.raises(ValueError, match="one row"):
        clf.predict_topk_one(Xte[:2])
    with pytest.raises(NotFittedError):
        XRLinearClassifier().predict_topk_one(Xte[0])


def test_tiny_config_and_multiclass_y():
    rng = np.random.default_rng(0)
    y = np.repeat(np.array(["a", "b", "c"]), 7)[:20]
    X = rng.normal(size=(20, 3)) + 4 * (y[:, None] == np.array(["a", "b", "c"]))
    clf = XRLinearClassifier(max_leaf_size=2, branching_factor=2, random_state=0)
    clf.fit(X, y)  # warm-up
    start = time.perf_counter()
    clf.fit(X, y)
    assert time.perf_counter() - start < 0.5
    assert clf.predict(X).tolist() == y.tolist()
    assert clf.decision_function(X).shape == (20, 3)


def test_errors(data):
    X, Y, Xte, _ = data
    with pytest.raises(ValueError, match="needs label features"):
        XRLinearClassifier(label_embedding="text").fit(X, Y)
    with pytest.raises(ValueError, match="feature space of X"):
        XRLinearClassifier(label_embedding="pifa_text_convex").fit(
            X, Y, label_info=LabelInfo(features=np.ones((60, 5)))
        )
    with pytest.raises(InvalidParameterError):
        XRLinearClassifier(branching_factor=1).fit(X, Y)
    with pytest.raises(InvalidParameterError):
        XRLinearClassifier(negative_sampling="usn").fit(X, Y)
    with pytest.raises(NotFittedError):
        XRLinearClassifier().predict_topk(Xte)
    clf = _fit(data)
    with pytest.raises(ValueError, match="features"):
        clf.predict_topk(Xte[:, :10])


def test_verbose_shows_a_progress_bar_and_quiet_shows_nothing(data, capsys):
    X, Y = data[0], data[1]
    XRLinearClassifier(max_leaf_size=8, random_state=0, verbose=1).fit(X, Y)
    out = capsys.readouterr()
    assert "XR-Linear levels" in out.err
    XRLinearClassifier(max_leaf_size=8, random_state=0).fit(X, Y)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
