"""Label embeddings (skxmc.indexing._label_embedding) against literal formulas."""

import numpy as np
import pytest
import scipy.sparse as sp

from skxmc.indexing import label_embedding, pifa_embedding


def _unit_rows(A):
    norms = np.linalg.norm(A, axis=1, keepdims=True)
    return np.divide(A, norms, out=np.zeros_like(A), where=norms > 0)


def test_pifa_hand_computed():
    # x0 = (3, 4) -> (0.6, 0.8); x1 = (0, 2) -> (0, 1)
    X = np.array([[3.0, 4.0], [0.0, 2.0]])
    Y = np.array([[1, 0], [1, 1]])
    Z = pifa_embedding(X, Y, normalize_Y=False)
    # label 0: (0.6, 1.8) / |.|; label 1: (0, 1)
    expected = np.array([[0.6, 1.8] / np.hypot(0.6, 1.8), [0.0, 1.0]])
    np.testing.assert_allclose(Z.toarray(), expected, rtol=1e-6)
    # with Y rows normalised, row 1 (2 labels) weighs 1/sqrt(2)
    Z = pifa_embedding(X, Y)
    v = np.array([0.6, 0.8 + 1 / np.sqrt(2)])
    np.testing.assert_allclose(Z.toarray()[0], v / np.linalg.norm(v), rtol=1e-6)


def test_pifa_matches_dense_formula(rng):
    X = sp.random(40, 30, density=0.2, random_state=1, format="csr") * 3
    Y = (rng.random((40, 12)) < 0.15).astype(np.float32)
    Y[:, 5] = 0  # a label without positives
    Z = pifa_embedding(X, sp.csr_matrix(Y))
    assert sp.isspmatrix_csr(Z) and Z.dtype == np.float32
    Xn = _unit_rows(X.toarray())
    weights = 1 / np.sqrt(np.maximum(Y.sum(axis=1), 1))
    expected = _unit_rows((Y * weights[:, None]).T @ Xn)
    np.testing.assert_allclose(Z.toarray(), expected, rtol=1e-5, atol=1e-6)
    assert Z[5].nnz == 0


def test_text_concat_and_convex():
    X = np.eye(3)
    Y = np.array([[1, 0], [0, 1], [0, 1]])
    text = np.array([[0.0, 0.0, 2.0], [3.0, 4.0, 0.0]])
    pifa = pifa_embedding(X, Y).toarray()
    text_unit = _unit_rows(text)
    Zt = label_embedding(X, Y, method="text", label_features=text)
    np.testing.assert_allclose(Zt.toarray(), text_unit, rtol=1e-6)
    Zc = label_embedding(X, Y, method="pifa_text_concat", label_features=text)
    np.testing.assert_allclose(Zc.toarray(), np.hstack([pifa, text_unit]), rtol=1e-6)
    Zv = label_embedding(
        X, Y, method="pifa_text_convex", label_features=sp.csr_matrix(text), alpha=0.3
    )
    np.testing.assert_allclose(Zv.toarray(), 0.3 * pifa + 0.7 * text_unit, rtol=1e-6)
    assert label_embedding(X, Y).nnz == sp.csr_matrix(pifa).nnz


def test_errors():
    X, Y = np.eye(3), np.array([[1, 0], [0, 1], [0, 1]])
    with pytest.raises(ValueError, match="needs label features"):
        label_embedding(X, Y, method="text")
    with pytest.raises(ValueError, match="3 rows but Y has 2"):
        label_embedding(X, Y, method="text", label_features=np.eye(3))
    with pytest.raises(ValueError, match="feature space of X"):
        label_embedding(X, Y, method="pifa_text_convex", label_features=np.ones((2, 5)))
    with pytest.raises(ValueError, match="Unknown label embedding"):
        label_embedding(X, Y, method="pii")
    with pytest.raises(ValueError, match="alpha"):
        label_embedding(X, Y, method="pifa", alpha=1.5)
    with pytest.raises(ValueError, match="different numbers of rows"):
        pifa_embedding(X, Y[:2])
