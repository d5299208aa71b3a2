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


# ------------------------------------------------------------- raw text
def _text_estimators():
    from skxmc import DecafClassifier, EclareClassifier
    from skxmc._elias import EliasClassifier
    from skxmc._xr_transformer import XRTransformerClassifier

    return [
        DecafClassifier(),
        EclareClassifier(),
        XRTransformerClassifier(encoder="unused"),
        EliasClassifier(encoder="unused"),
    ]


def _generator():
    yield "some text"


BAD_TEXT = [
    ([np.nan, "text", "more"], TypeError, r"element 0 is float \(nan\)"),
    (["text", 1, "more"], TypeError, "element 1 is int"),
    ([1, "text", "more"], TypeError, "element 0 is int"),
    ([b"text", b"more", b"bytes"], TypeError, "element 0 is bytes.*decode"),
    (["text", b"more", "x"], TypeError, "element 1 is bytes"),
    (["text", None, "x"], TypeError, "element 1 is NoneType"),
    (np.array([["a"], ["b"], ["c"]]), ValueError, r"shape \(3, 1\).*ravel"),
    (_generator, TypeError, "generator.*list"),
    ([], ValueError, "no sample"),
    (np.array([], dtype=str), ValueError, "no sample"),
    ("one document", ValueError, "Iterable over raw text documents"),
]


def _fake_fitted(est):
    """Just enough fitted state for check_is_fitted: the input checks come first."""
    est.classes_ = np.arange(3)
    est.n_labels_ = 3
    est._y_container = "sparse"
    return est


@pytest.mark.parametrize("bad, error, match", BAD_TEXT)
@pytest.mark.parametrize("make", range(4), ids=["decaf", "eclare", "xrt", "elias"])
def test_every_text_estimator_names_the_bad_element(make, bad, error, match):
    Y = sp.csr_matrix(np.eye(3, dtype=np.float32))
    bad = bad() if callable(bad) else bad
    est = _text_estimators()[make]
    with pytest.raises(error, match=match):
        est.fit(bad, Y)
    bad = _generator() if isinstance(bad, type(_generator())) else bad
    for method in ("predict_topk", "predict", "decision_function"):
        with pytest.raises(error, match=match):
            getattr(_fake_fitted(_text_estimators()[make]), method)(bad)


def test_numeric_estimator_says_it_wants_numbers_for_mixed_text(xr_linear):
    clf, X, _ = xr_linear
    for bad in ([np.nan, "text"], [1, "text"], np.array([["a"], ["b"]])):
        with pytest.raises(TypeError, match="expects numeric features"):
            clf.predict_topk(bad)
    with pytest.raises(TypeError, match=r"generator.*list"):
        clf.predict_topk(row for row in X[:2].toarray())
    with pytest.raises(ValueError, match=r"row 1 has 2 values but row 0 has 3"):
        XRLinearClassifier().fit([[0.0, 1.0, 2.0], [1.0, 2.0]], [[0, 1], [1, 0]])
    with pytest.raises(TypeError, match=r"X\[1\]\[0\] is dict"):
        XRLinearClassifier().fit([[0.0, 1.0], [{"a": 1}, 2.0]], [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="NaN"):  # numpy reads None as NaN
        XRLinearClassifier().fit([[0.0, 1.0], [None, 2.0]], [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="no sample"):
        clf.predict_topk([])


def test_check_text_accepts_sequences_and_lone_surrogates():
    from skxmc.utils._validation import check_label_text, check_text

    assert check_text(("a", "b")) == ["a", "b"]
    assert check_text(np.array(["a", "b"])) == ["a", "b"]
    assert check_text(np.array(["a", "b"], dtype=object)) == ["a", "b"]
    assert check_text(["ok", "bad \ud800 text"]) == ["ok", "bad \ud800 text"]
    with pytest.raises(ValueError, match="single str"):
        check_label_text("one label")
    with pytest.raises(TypeError, match="element 0 is NoneType"):
        check_label_text([None])
    with pytest.raises(ValueError, match="label_text holds no label text"):
        check_label_text([])
    with pytest.raises(TypeError, match="sparse"):
        check_text(sp.csr_matrix(np.eye(2)))


def test_pandas_text_inputs():
    pd = pytest.importorskip("pandas")
    from skxmc.utils._validation import check_text, looks_like_text

    assert check_text(pd.Series(["a", "b"])) == ["a", "b"]
    with pytest.raises(TypeError, match="element 1 is float"):
        check_text(pd.Series(["a", np.nan]))
    frame = pd.DataFrame({"text": ["a", "b"]})
    assert looks_like_text(frame)
    with pytest.raises(ValueError, match=r"X\['text'\]"):
        check_text(frame)
    assert not looks_like_text(pd.DataFrame({"x": [1.0, 2.0]}))


@pytest.fixture(scope="module")
def decaf():
    from skxmc import DecafClassifier, LabelInfo

    d = make_xmc_classification(
        n_samples=120, n_labels=10, n_features=60, return_text=True, random_state=0
    )
    clf = DecafClassifier(
        embedding_dim=8, n_epochs=1, batch_size=32, max_leaf_size=4, beam_size=2,
        random_state=0,
    )  # fmt: skip
    return clf.fit(d.text, d.Y, label_info=LabelInfo(text=d.label_text)), d


def test_fitted_text_estimator_rejects_empty_input_clearly(decaf):
    clf, d = decaf
    with pytest.raises(ValueError, match="no sample"):
        clf.predict_topk([])
    with pytest.raises(TypeError, match="element 1 is float"):
        clf.predict_topk([d.text[0], np.nan])
    # a lone surrogate is text: accepted and passed through, as before
    _, labels = clf.predict_topk([d.text[0] + " \ud800"], k=2)
    assert labels.shape == (1, 2)
