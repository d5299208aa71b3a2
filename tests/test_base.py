"""The shared estimator contract (skxmc.base), tested through CentroidRanker."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold

from skxmc import LabelInfo
from skxmc.exceptions import XMCDataWarning
from skxmc.utils._testing import CentroidRanker

# Three well separated points per label on a line: label j sits at x = 10 j.
X_TOY = np.array([[0.0], [0.2], [10.0], [10.2], [20.0], [20.2]], dtype=np.float32)
Y_TOY = sp.csr_matrix(np.repeat(np.eye(3), 2, axis=0))


def _fit(**params):
    return CentroidRanker(**params).fit(X_TOY, Y_TOY)


def test_scores_match_hand_computation():
    est = _fit(top_k=3)
    scores, indices = est.predict_topk(np.array([[10.0]]), k=3)
    # centroids at 0.1, 10.1, 20.1 -> squared distances 0.01, 98.01, 102.01
    assert indices.tolist() == [[1, 0, 2]]
    np.testing.assert_allclose(
        scores[0], [1 / 1.01, 1 / 99.01, 1 / 103.01], rtol=1e-5, atol=2e-6
    )


def test_predict_topk_pads_when_k_exceeds_labels():
    scores, indices = _fit().predict_topk(X_TOY[:2], k=5)
    assert scores.shape == indices.shape == (2, 5)
    assert scores.dtype == np.float32 and indices.dtype == np.int64
    assert (indices[:, 3:] == -1).all() and np.isneginf(scores[:, 3:]).all()
    assert (np.diff(scores[:, :3], axis=1) <= 0).all()  # best first
    assert _fit().predict_topk(X_TOY[:2], k=2, return_scores=False).shape == (2, 2)


def test_decision_function_is_sparse_topk():
    est = _fit(top_k=2)
    decision = est.decision_function(X_TOY)
    assert sp.issparse(decision) and decision.shape == (6, 3)
    assert (np.diff(decision.indptr) == 2).all()
    scores, indices = est.predict_topk(X_TOY, k=2)
    for row in range(6):
        assert sorted(decision[row].indices) == sorted(indices[row])
        np.testing.assert_allclose(
            decision[row, indices[row]].toarray()[0], scores[row]
        )


@pytest.mark.parametrize("container", ["sparse", "dense", "lists", "sets"])
def test_predict_returns_the_container_fit_received(container):
    names = np.array(["apple", "banana", "cherry"])
    if container == "sparse":
        y = Y_TOY.astype(np.int32)
    elif container == "dense":
        y = Y_TOY.toarray().astype(bool)
    elif container == "lists":
        y = [[names[j]] for j in Y_TOY.indices]
    else:
        y = [{names[j]} for j in Y_TOY.indices]
    est = CentroidRanker(threshold=0.5).fit(X_TOY, y)
    pred = est.predict(X_TOY)
    if container == "sparse":
        assert sp.issparse(pred) and pred.dtype == np.int32
        assert (pred != Y_TOY).nnz == 0
    elif container == "dense":
        assert isinstance(pred, np.ndarray) and pred.dtype == bool
        np.testing.assert_array_equal(pred, Y_TOY.toarray().astype(bool))
    else:
        assert list(est.classes_) == list(names)
        assert pred == [(names[j],) for j in Y_TOY.indices]


def test_predict_applies_threshold_within_top_k():
    est = _fit(top_k=3, threshold=0.5)
    # x = 5.1 is 5 away from two centroids: score 1/26 < 0.5 for every label
    assert _fit(threshold=0.5).predict(np.array([[5.1]])).nnz == 0
    est.set_params(threshold=0.0)
    assert est.predict(np.array([[5.1]])).nnz == 3
    est.set_params(threshold=0.0, top_k=1)
    assert est.predict(np.array([[5.1]])).nnz == 1


def test_one_dimensional_targets_give_sklearn_shapes():
    y = np.array(["a", "a", "b", "b", "c", "c"])
    est = CentroidRanker().fit(X_TOY, y)
    assert est.decision_function(X_TOY).shape == (6, 3)
    np.testing.assert_array_equal(est.predict(X_TOY), y)
    binary = CentroidRanker().fit(X_TOY[:4], y[:4])
    decision = binary.decision_function(X_TOY[:4])
    assert decision.shape == (4,)
    np.testing.assert_array_equal(
        binary.predict(X_TOY[:4]), np.where(decision > 0, "b", "a")
    )
    assert binary.score(X_TOY[:4], y[:4]) == 1.0


def test_score_is_precision_at_one_and_counts_unseen_labels_as_misses():
    y = [["a"], ["a"], ["b"], ["b"], ["c"], ["c"]]
    est = CentroidRanker().fit(X_TOY, y)
    assert est.score(X_TOY, y) == 1.0
    swapped = [["b"], ["b"], ["a"], ["a"], ["c"], ["c"]]
    assert est.score(X_TOY, swapped) == pytest.approx(2 / 6)
    # issue 14: labels unseen in training are normal in XMC; they are misses
    assert est.score(X_TOY, [["a"], ["zebra"], ["b"], ["b"], ["c"], ["c"]]) == (
        pytest.approx(5 / 6)
    )
    est_sparse = _fit()
    with pytest.raises(ValueError, match="fitted on 3 labels"):
        est_sparse.score(X_TOY, sp.csr_matrix((6, 4)))


@pytest.mark.parametrize(
    "X, y, error, match",
    [
        ("a lone string", Y_TOY, ValueError, "Iterable over raw text documents"),
        (["some", "text", "a", "b", "c", "d"], Y_TOY, TypeError, "expects numeric"),
        (X_TOY[:5], Y_TOY, ValueError, "inconsistent numbers of samples"),
        (np.where(X_TOY == 0, np.nan, X_TOY), Y_TOY, ValueError, "NaN"),
        (np.where(X_TOY == 0, np.inf, X_TOY), Y_TOY, ValueError, "infinity"),
        (X_TOY, sp.csr_matrix((6, 3)), ValueError, "label space is empty"),
        (X_TOY, sp.csr_matrix((6, 0)), ValueError, "label space is empty"),
        (X_TOY, 2 * Y_TOY, ValueError, "0/1 label indicator"),
        (X_TOY, np.full((6, 2), 0.5), ValueError, "Unknown label type"),
        (X_TOY, np.zeros(6), ValueError, "only one class"),
        (X_TOY, None, ValueError, "requires y to be passed"),
    ],
)
def test_fit_errors(X, y, error, match):
    with pytest.raises(error, match=match):
        CentroidRanker().fit(X, y)


def test_text_estimator_checks_its_input():
    est = CentroidRanker(accept="text")
    docs = ["aaa", "aab", "mmm", "mmn", "zzz", "zzy"]
    est.fit(docs, Y_TOY)
    assert est.predict_topk(["aaa"], k=1, return_scores=False).tolist() == [[0]]
    assert not hasattr(est, "n_features_in_")
    with pytest.raises(ValueError, match="Iterable over raw text documents"):
        est.predict("aaa")
    with pytest.raises(TypeError, match="element 1 is int"):
        est.predict(["aaa", 3])
    with pytest.raises(TypeError, match="expects raw text"):
        est.predict(X_TOY)


def test_predict_errors():
    with pytest.raises(NotFittedError):
        CentroidRanker().predict_topk(X_TOY)
    est = _fit()
    for k in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            est.predict_topk(X_TOY, k=k)
    with pytest.raises(ValueError, match="features"):
        est.predict(np.ones((2, 4)))
    with pytest.raises(ValueError, match="NaN"):
        est.predict(np.array([[np.nan]]))


def test_warns_but_keeps_empty_rows_and_labels():
    Y = sp.hstack([Y_TOY, sp.csr_matrix((6, 1))]).tocsr()
    Y[0, 0] = 0
    Y.eliminate_zeros()
    with pytest.warns(XMCDataWarning, match=r"1 training row.*1 label"):
        est = CentroidRanker().fit(X_TOY, Y)
    assert est.n_labels_ == 4  # the empty label is kept, not dropped


class _RecordingRanker(CentroidRanker):
    """Records the label_info each fit received."""

    seen: list = []

    def _fit(self, X, Y, *, label_info, seed):
        type(self).seen.append(
            (Y.shape, None if label_info is None else label_info.text)
        )
        return super()._fit(X, Y, label_info=label_info, seed=seed)


def test_grid_search_never_splits_label_info_even_when_n_labels_equals_n_samples():
    n = 6  # as many labels as samples: sklearn would split any per-sample fit param
    X = np.arange(n, dtype=np.float32)[:, None] * 10
    Y = sp.eye(n, format="csr")
    texts = [f"label {j}" for j in range(n)]
    _RecordingRanker.seen = []
    search = GridSearchCV(
        _RecordingRanker(),
        {"top_k": [1, 2]},
        cv=KFold(3),
        scoring=None,
        error_score="raise",
    )
    with pytest.warns(XMCDataWarning):  # each fold misses the held-out labels
        search.fit(X, Y, label_info=LabelInfo(text=texts))
    assert len(_RecordingRanker.seen) == 2 * 3 + 1
    assert all(text == texts for _, text in _RecordingRanker.seen)
    # A bare list of length n_samples *is* split by sklearn: we must fail loudly.
    with pytest.raises(ValueError, match=r"wrap label data in skxmc\.LabelInfo"):
        GridSearchCV(
            _RecordingRanker(), {"top_k": [1]}, cv=KFold(3), error_score="raise"
        ).fit(X, Y, label_info=texts)


def test_label_info_aligns_to_classes():
    y = [["b"], ["b"], ["a"], ["a"], ["c"], ["c"]]
    info = LabelInfo(text={"c": "cherry", "a": "apple", "b": "banana", "d": "date"})
    _RecordingRanker.seen = []
    with pytest.warns(XMCDataWarning, match="1 label"):
        est = _RecordingRanker().fit(X_TOY, y, label_info=info)
    # label order follows LabelInfo.labels; "d" joins the label space, unseen in y
    assert list(est.classes_) == ["c", "a", "b", "d"]
    assert _RecordingRanker.seen[-1][1] == ["cherry", "apple", "banana", "date"]
    with pytest.raises(ValueError, match="does not list"):
        CentroidRanker().fit(X_TOY, y, label_info=LabelInfo(text={"a": "x", "b": "y"}))
    with pytest.raises(ValueError, match="describes 2 labels but y has 3"):
        CentroidRanker().fit(X_TOY, Y_TOY, label_info=["x", "y"])
    with pytest.raises(ValueError, match="not in the label space"):
        CentroidRanker().fit(
            X_TOY,
            Y_TOY,
            label_info=LabelInfo(text=["x", "y", "z", "w"], labels=[0, 1, 2, 7]),
        )
    with pytest.raises(ValueError, match=r"no row for 1 label\(s\) of y, e.g. \[2\]"):
        CentroidRanker().fit(
            X_TOY, Y_TOY, label_info=LabelInfo(text=["x", "y"], labels=[0, 1])
        )
    with pytest.raises(TypeError, match="LabelInfo"):
        CentroidRanker().fit(X_TOY, Y_TOY, label_info=42)


def test_label_info_is_not_array_like():
    from sklearn.utils.validation import _is_arraylike

    assert not _is_arraylike(LabelInfo(text=["a", "b"]))


def test_random_state_reproducible():
    a = _fit(random_state=0).tie_breaker_
    b = _fit(random_state=0).tie_breaker_
    c = _fit(random_state=1).tie_breaker_
    assert np.array_equal(a.numpy(), b.numpy()) and not np.array_equal(
        a.numpy(), c.numpy()
    )


def test_verbose_shows_progress(capsys):
    _fit(verbose=1)
    assert "centroids" in capsys.readouterr().err
    _fit(verbose=0)
    assert capsys.readouterr().err == ""


def test_device_parameter():
    with pytest.raises(ValueError, match="device must be"):
        CentroidRanker(device="gpu").fit(X_TOY, Y_TOY)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            CentroidRanker(device="cuda").fit(X_TOY, Y_TOY)
        # a model whose device vanished (fitted on a GPU, loaded on a laptop)
        # still predicts, on the CPU, with a warning
        est = _fit().set_params(device="cuda:0")
        with pytest.warns(RuntimeWarning, match="Falling back to the CPU"):
            est.predict_topk(X_TOY)


def test_pickle_round_trip():
    est = _fit(random_state=0)
    clone = pickle.loads(pickle.dumps(est))
    for a, b in zip(est.predict_topk(X_TOY), clone.predict_topk(X_TOY)):
        np.testing.assert_array_equal(a, b)


_LOAD_ON_CPU = """
import pickle, sys, numpy as np, torch
assert not torch.cuda.is_available()
est = pickle.load(open(sys.argv[1], "rb"))
assert est.centroids_.device.type == "cpu"
np.save(sys.argv[2], est.predict_topk(np.array([[0.0], [10.0]], np.float32))[1])
"""


@pytest.mark.gpu
def test_gpu_fit_unpickles_on_cpu_only_machine(tmp_path):
    est = CentroidRanker(device="cuda", random_state=0).fit(X_TOY, Y_TOY)
    assert est.centroids_.device.type == "cuda"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(est))
    env = {"CUDA_VISIBLE_DEVICES": "", "PATH": ""}
    subprocess.run(
        [sys.executable, "-c", _LOAD_ON_CPU, str(path), str(tmp_path / "out.npy")],
        check=True,
        env=env,
    )
    expected = est.predict_topk(np.array([[0.0], [10.0]], np.float32))[1]
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)


def test_fast_csr_validation_returns_what_validate_data_returns():
    import warnings

    from sklearn.utils.validation import validate_data

    est = _fit()
    csr = sp.csr_matrix(X_TOY)
    cases = {
        "csr float32": csr,
        "csr_array": sp.csr_array(X_TOY),
        "int64 indices": sp.csr_matrix(
            (csr.data, csr.indices.astype(np.int64), csr.indptr.astype(np.int64)),
            shape=csr.shape,
        ),
        "unsorted duplicates": sp.csr_matrix(
            (np.ones(2, np.float32), [0, 0], [0, 2]), shape=(1, 1)
        ),
        "float64": sp.csr_matrix(X_TOY, dtype=np.float64),
        "csc": sp.csc_matrix(X_TOY),
        "dense": X_TOY,
        "NaN": sp.csr_matrix(np.array([[np.nan]], dtype=np.float32)),
        "inf": sp.csr_matrix(np.array([[np.inf]], dtype=np.float32)),
        "2 features": sp.csr_matrix(np.ones((1, 2), dtype=np.float32)),
        "no rows": sp.csr_matrix((0, 1), dtype=np.float32),
    }
    fast = {name for name, X in cases.items() if est._is_valid_csr(X)}
    assert fast == {"csr float32", "csr_array", "int64 indices", "unsorted duplicates"}
    for name in fast:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            X = cases[name]
            # the slow path hands the very same matrix back
            assert validate_data(est, X, accept_sparse="csr", dtype=np.float32,
                                 reset=False) is X  # fmt: skip
            assert est._validate_X(X, reset=False) is X
    for name in set(cases) - fast - {"float64", "csc", "dense"}:
        with pytest.raises(ValueError):
            est.predict_topk(cases[name])
    # fitted with feature names (a DataFrame): the name check stays sklearn's
    est.feature_names_in_ = np.array(["a"], dtype=object)
    assert not est._is_valid_csr(csr)
