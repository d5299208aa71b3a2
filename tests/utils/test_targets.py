"""Targets: offending values named, pandas inputs, label names kept (issue 14)."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.preprocessing import MultiLabelBinarizer

from skxmc import LabelInfo
from skxmc.exceptions import XMCDataWarning
from skxmc.utils._testing import CentroidRanker

X = np.array([[0.0], [0.2], [10.0], [10.2], [20.0], [20.2]], dtype=np.float32)
LISTS = [["a"], ["a"], ["b"], ["b"], ["c", "a"], ["c"]]


def _indicator():
    return MultiLabelBinarizer().fit_transform(LISTS)


@pytest.mark.parametrize(
    "value, shown",
    [(2, "2"), (-1, "-1"), (np.nan, "nan"), (0.5, "0.5"), (np.inf, "inf")],
)
@pytest.mark.parametrize("sparse", [False, True])
def test_bad_indicator_value_is_named_with_its_position(value, shown, sparse):
    Y = _indicator().astype(type(value))
    Y[3, 1] = value
    if sparse:
        Y = sp.csr_matrix(Y)
    with pytest.raises(ValueError, match=f"found the value {shown} at row 3, column 1"):
        CentroidRanker().fit(X, Y)


def test_mixed_label_types_are_named():
    Y = _indicator().astype(object)
    Y[3, 1] = "1"  # not all numbers: read as label lists, as sklearn does
    with pytest.raises(ValueError, match=r"mix types.*int, str"):
        CentroidRanker().fit(X, Y)


def test_all_string_indicator_is_named():
    Y = _indicator().astype(str)
    with pytest.raises(
        ValueError, match=r"found the value '1' \(str\) at row 0.*astype"
    ):
        CentroidRanker().fit(X, Y)


def test_label_info_labels_name_the_columns_of_an_indicator_y():
    mlb = MultiLabelBinarizer()
    Y = mlb.fit_transform(LISTS)
    est = CentroidRanker().fit(X, Y, label_info=LabelInfo(labels=mlb.classes_))
    assert list(est.classes_) == ["a", "b", "c"]
    est = CentroidRanker().fit(
        X, sp.csr_matrix(Y), label_info=LabelInfo(labels=["x", "y", "z"])
    )
    assert list(est.classes_) == ["x", "y", "z"]
    # with text, the rows follow the names
    _RecordingText.seen = None
    est = _RecordingText().fit(
        X, Y, label_info=LabelInfo(text=["A", "B", "C"], labels=["a", "b", "c"])
    )
    assert _RecordingText.seen == ["A", "B", "C"]
    # never silently ignored: a wrong number of names is an error
    with pytest.raises(ValueError, match="lists 2 labels but y has 3 columns"):
        CentroidRanker().fit(X, Y, label_info=LabelInfo(labels=["a", "b"]))
    # column indices keep their meaning: which column each row describes
    est = _RecordingText().fit(
        X, Y, label_info=LabelInfo(text=["C", "A", "B"], labels=[2, 0, 1])
    )
    assert list(est.classes_) == [0, 1, 2] and _RecordingText.seen == ["A", "B", "C"]


class _RecordingText(CentroidRanker):
    seen = None

    def _fit(self, X, Y, *, label_info, seed):
        type(self).seen = None if label_info is None else label_info.text
        return super()._fit(X, Y, label_info=label_info, seed=seed)


@pytest.fixture
def pd():
    return pytest.importorskip("pandas")


def test_a_series_of_label_lists_is_accepted_like_a_list(pd):
    est = CentroidRanker().fit(X, pd.Series(LISTS))
    assert list(est.classes_) == ["a", "b", "c"]
    assert est.predict_topk(X[:1], 1)[1].tolist() == [[0]]
    assert isinstance(est.predict(X[:1]), list)  # label tuples, as for lists
    assert est.score(X, pd.Series(LISTS)) == 1.0
    # a Series of class labels stays a 1-D multiclass target
    est = CentroidRanker().fit(X, pd.Series(["a", "a", "b", "b", "c", "c"]))
    assert est.predict(X[:1]).tolist() == ["a"]


def test_dataframe_columns_become_classes(pd):
    frame = pd.get_dummies(pd.Series(["a", "a", "b", "b", "c", "c"]))
    est = CentroidRanker().fit(X, frame)
    assert list(est.classes_) == ["a", "b", "c"]
    assert est.predict(X).dtype == bool
    mlb = MultiLabelBinarizer()
    frame = pd.DataFrame(mlb.fit_transform(LISTS), columns=mlb.classes_)
    est = CentroidRanker().fit(X, frame)
    assert list(est.classes_) == ["a", "b", "c"]
    assert est.score(X, frame) == 1.0
    # the test frame's columns are matched by name; unseen ones are misses
    test = frame[["c", "b", "a"]].assign(zebra=[0, 1, 0, 0, 0, 0])
    test.loc[1, "a"] = 0
    assert est.score(X, test) == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match="duplicates"):
        CentroidRanker().fit(X, pd.concat([frame, frame[["a"]]], axis=1))


def test_score_counts_unseen_labels_as_misses():
    est = CentroidRanker().fit(X, LISTS)
    assert est.score(X, [["a"], ["new"], ["b"], ["b"], ["c"], ["c", "d"]]) == (
        pytest.approx(5 / 6)
    )
    binary = CentroidRanker().fit(X[:4], ["a", "a", "b", "b"])
    assert binary.score(X[:4], ["a", "a", "b", "zebra"]) == 0.75
    with pytest.warns(XMCDataWarning):
        est = CentroidRanker().fit(X, sp.csr_matrix(np.c_[_indicator(), np.zeros(6)]))
    with pytest.raises(ValueError, match="fitted on 4 labels"):
        est.score(X, _indicator())
