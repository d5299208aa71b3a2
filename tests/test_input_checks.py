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


# ------------------------------------------------------ labels_to_classes
def test_labels_to_classes_keeps_the_padding_out_of_the_last_class(xr_linear):
    from skxmc.utils import labels_to_classes

    clf, X, _ = xr_linear
    # a beam of 1 reaches one leaf of 4 labels: rows of k=8 are padded with -1
    clf = XRLinearClassifier(max_leaf_size=4, beam_size=1, random_state=0).fit(
        X, xr_linear[2]
    )
    _, labels = clf.predict_topk(X[:3], k=8)
    assert (labels == -1).any()
    names = labels_to_classes(clf.classes_, labels)
    assert names.shape == labels.shape
    assert all(v is None for v in names[labels == -1])
    np.testing.assert_array_equal(
        names[labels >= 0].astype(np.int64), clf.classes_[labels[labels >= 0]]
    )
    # the idiom it replaces reads the padding as the last class
    assert (clf.classes_[labels][labels == -1] == clf.classes_[-1]).all()


def test_labels_to_classes_fill_dtypes_and_errors():
    from skxmc.utils import labels_to_classes

    classes = np.array(["a", "bb", "c"])
    out = labels_to_classes(classes, [[1, -1]], fill="")
    assert out.dtype.kind == "U" and out.tolist() == [["bb", ""]]
    assert labels_to_classes(["x", "y"], [1, -1]).tolist() == ["y", None]
    assert labels_to_classes(np.arange(3) * 10, [2, -1], fill=-1).tolist() == [20, -1]
    assert labels_to_classes(classes, [[2, -1]], fill=0).tolist() == [["c", 0]]
    assert labels_to_classes(classes, np.zeros((0, 5), int)).shape == (0, 5)
    with pytest.raises(ValueError, match="found 3"):
        labels_to_classes(classes, [0, 3])
    with pytest.raises(ValueError, match="found -2"):
        labels_to_classes(classes, [-2])
    with pytest.raises(TypeError, match="integer"):
        labels_to_classes(classes, [0.5])
