"""Bad input gives a clear error, never a wrong answer (issue 14)."""

import numpy as np
import pytest
import scipy.sparse as sp

from skxmc import XRLinearClassifier
from skxmc.datasets import make_xmc_classification


@pytest.fixture(scope="module")
def xr_linear():
    X, Y = make_xmc_classification(
        n_samples=80, n_labels=12, n_features=30, random_state=0
    )
    clf = XRLinearClassifier(max_leaf_size=4, random_state=0, n_jobs=1).fit(X, Y)
    return clf, X, Y


# ------------------------------------------------------- predict_topk_one
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e39])
@pytest.mark.parametrize("sparse", [False, True])
def test_predict_topk_one_rejects_non_finite_rows(xr_linear, bad, sparse):
    clf, X, _ = xr_linear
    row = X[0].toarray().ravel().astype(np.float64)
    row[3] = bad
    x = sp.csr_matrix(row) if sparse else row
    with pytest.raises(ValueError, match=r"NaN|infinity"):
        clf.predict_topk_one(x)
    with pytest.raises(ValueError, match=r"NaN|infinity"):
        clf.predict_topk(x.reshape(1, -1))


def test_predict_topk_one_rejects_text_like_predict_topk(xr_linear):
    clf, X, _ = xr_linear
    with pytest.raises(ValueError, match="string object received"):
        clf.predict_topk("some query")
    with pytest.raises(ValueError, match="string object received"):
        clf.predict_topk_one("some query")
    with pytest.raises(TypeError, match="numeric features"):
        clf.predict_topk_one(["some", "query"])
    with pytest.raises(TypeError, match="numeric"):
        clf.predict_topk_one([{"a": 1}] * X.shape[1])


def test_predict_topk_one_rejects_bad_shapes(xr_linear):
    clf, X, _ = xr_linear
    with pytest.raises(ValueError, match="features"):
        clf.predict_topk_one(np.ones(X.shape[1] + 1))
    with pytest.raises(ValueError, match="one row"):
        clf.predict_topk_one(np.ones((2, X.shape[1])))
    _, lab = clf.predict_topk_one(X[5].toarray().ravel().tolist(), k=3)
    _, lab2 = clf.predict_topk(X[5], 3)
    np.testing.assert_array_equal(lab, lab2[0])
