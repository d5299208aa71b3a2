import numpy as np
import pytest
import scipy.sparse as sp

from skxmc.indexing import ShortlistReranker, fit_binary, post_process
from skxmc.indexing._linear import feature_scale


def _problem(seed=0, n=60, n_features=12, n_labels=5, m=3):
    rng = np.random.default_rng(seed)
    X = sp.random(n, n_features, density=0.5, random_state=rng, format="csr")
    Y = sp.csr_matrix((rng.random((n, n_labels)) < 0.3).astype(np.float32))
    candidates = np.stack(
        [rng.choice(n_labels, size=m, replace=False) for _ in range(n)]
    )
    candidates[rng.random((n, m)) < 0.2] = -1
    return X.astype(np.float32), Y, candidates


def test_each_label_model_is_trained_on_its_shortlisted_and_positive_rows():
    X, Y, candidates = _problem()
    params = {"C": 2.0, "max_iter": 2000, "tol": 1e-8, "bias": 1.0}
    reranker = ShortlistReranker.train(X, Y, candidates, weight_threshold=0.0, **params)
    Yd = Y.toarray()
    # the label models are trained on X / feature_scale(X), in the units of X
    scale = feature_scale(X)
    for label in range(Y.shape[1]):
        rows = np.flatnonzero((candidates == label).any(1) | (Yd[:, label] > 0))
        coef, intercept, _ = fit_binary(X[rows] / scale, Yd[rows, label], **params)
        np.testing.assert_allclose(
            reranker.weights[label].toarray().ravel() * scale, coef, atol=1e-3
        )
        assert reranker.intercepts[label] == pytest.approx(intercept, abs=1e-3)


def test_score_is_the_post_processed_linear_score_and_pads_with_minus_inf():
    X, Y, candidates = _problem(seed=1)
    reranker = ShortlistReranker.train(X, Y, candidates, C=1.0)
    raw = reranker.score(X, candidates, raw=True)
    scores = reranker.score(X, candidates)
    dense = X.toarray() @ reranker.weights.toarray().T + reranker.intercepts
    ok = candidates >= 0
    np.testing.assert_allclose(
        raw[ok],
        np.take_along_axis(dense, np.maximum(candidates, 0), 1)[ok],
        atol=1e-5,
    )
    np.testing.assert_allclose(scores[ok], post_process(raw[ok], "l3-hinge"), rtol=1e-5)
    assert np.isneginf(scores[~ok]).all() and np.isneginf(raw[~ok]).all()
    assert ((scores[ok] >= 0) & (scores[ok] <= 1)).all()


def test_labels_never_shortlisted_nor_positive_keep_zero_weights():
    X, Y, candidates = _problem(seed=2, n_labels=6)
    Y = sp.csr_matrix(Y[:, :5].toarray())
    Y = sp.hstack([Y, sp.csr_matrix((Y.shape[0], 1))], format="csr")
    candidates[candidates == 5] = -1
    reranker = ShortlistReranker.train(X, Y, candidates)
    assert reranker.weights[5].nnz == 0 and reranker.intercepts[5] == 0


def test_reranker_separates_what_the_shortlist_confuses():
    # two labels always shortlisted together; the features tell them apart
    rng = np.random.default_rng(3)
    label = rng.integers(0, 2, size=200)
    X = sp.csr_matrix(np.eye(2)[label] + 0.1 * rng.random((200, 2)))
    Y = sp.csr_matrix(np.eye(2)[label])
    candidates = np.tile([1, 0], (200, 1))
    reranker = ShortlistReranker.train(X, Y, candidates)
    best = candidates[np.arange(200), reranker.score(X, candidates).argmax(1)]
    assert (best == label).all()


def test_train_rejects_inconsistent_input():
    X, Y, candidates = _problem()
    with pytest.raises(ValueError, match="same rows"):
        ShortlistReranker.train(X, Y, candidates[:-1])
    with pytest.raises(ValueError, match="label 9"):
        ShortlistReranker.train(X, Y, np.full_like(candidates, 9))
    with pytest.raises(ValueError, match="post_processor"):
        ShortlistReranker(np.zeros((1, 2)), np.zeros(1), "relu")
