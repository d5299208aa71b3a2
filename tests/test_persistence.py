"""skxmc.save / skxmc.load: exact round trips, no code execution on load."""

import json
import os
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn

import skxmc
from skxmc import (
    DecafClassifier,
    EclareClassifier,
    EliasClassifier,
    XRLinearClassifier,
    XRTransformerClassifier,
)
from skxmc.exceptions import UnsafeModelError, XMCDataWarning
from skxmc.utils._testing import CentroidRanker, make_fast_estimator
from skxmc.utils.estimator_checks import _xmc_data

ESTIMATORS = [
    XRLinearClassifier,
    DecafClassifier,
    EclareClassifier,
    XRTransformerClassifier,
    EliasClassifier,
]


def _fitted(cls, **params):
    est = make_fast_estimator(cls, random_state=0, **params)
    data = _xmc_data(est)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XMCDataWarning)
        est.fit(data.X, data.Y, label_info=data.label_info)
    return est, data


@pytest.fixture(scope="module")
def xr_linear():
    return _fitted(XRLinearClassifier)


def _assert_same_predictions(expected, got, X):
    exp_scores, exp_labels = expected.predict_topk(X, 5)
    got_scores, got_labels = got.predict_topk(X, 5)
    np.testing.assert_array_equal(got_labels, exp_labels)
    np.testing.assert_array_equal(got_scores, exp_scores)


@pytest.mark.parametrize(
    "cls, params",
    [(cls, {}) for cls in ESTIMATORS] + [(DecafClassifier, {"fusion": "learned"})],
    ids=lambda p: p.__name__ if isinstance(p, type) else str(p),
)
def test_round_trip_predicts_identically(cls, params, tmp_path):
    est, data = _fitted(cls, **params)
    skxmc.save(est, tmp_path / "model")
    loaded = skxmc.load(tmp_path / "model")
    assert type(loaded) is cls
    assert loaded.get_params() == est.get_params()
    np.testing.assert_array_equal(loaded.classes_, est.classes_)
    _assert_same_predictions(est, loaded, data.X_test)
    # The folder holds no pickle: the npz loads with allow_pickle=False.
    with np.load(tmp_path / "model" / "arrays.npz", allow_pickle=False) as arrays:
        for key in arrays.files:
            arrays[key]


def test_round_trip_string_classes_and_shared_objects(tmp_path):
    rng = np.random.default_rng(0)
    X = sp.csr_matrix(rng.random((40, 6)).astype(np.float32))
    y = np.array(["apple", "pear", "fig", "kiwi"] * 10, dtype=object)
    est = XRLinearClassifier(max_leaf_size=2).fit(X, y)
    est.extra_ = {"same": est.classes_, "again": est.classes_, 3: (np.float32(1), {1})}
    skxmc.save(est, tmp_path / "m")
    loaded = skxmc.load(tmp_path / "m")
    assert loaded.classes_.dtype == est.classes_.dtype
    np.testing.assert_array_equal(loaded.classes_, est.classes_)
    assert loaded.extra_["same"] is loaded.extra_["again"]
    assert loaded.extra_[3] == (np.float32(1), {1})
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    _assert_same_predictions(est, loaded, X)


def test_unfitted_estimator_round_trip(tmp_path):
    est = DecafClassifier(embedding_dim=16)
    skxmc.save(est, tmp_path / "m")
    loaded = skxmc.load(tmp_path / "m")
    assert loaded.get_params() == est.get_params()


def test_save_refuses_non_allowlisted_objects(xr_linear, tmp_path):
    est, _ = xr_linear
    est = pickle.loads(pickle.dumps(est))
    est.callback_ = os.getcwd
    with pytest.raises(TypeError, match=r"builtin_function_or_method|posix"):
        skxmc.save(est, tmp_path / "m")


def test_save_refuses_a_non_empty_folder(xr_linear, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "file").write_text("x")
    with pytest.raises(FileExistsError):
        skxmc.save(xr_linear[0], tmp_path / "m")


# ------------------------------------------------------------ tampering
class _Payload:
    """Creates ``path`` when unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def _saved(est, folder):
    skxmc.save(est, folder)
    return json.loads((folder / "skxmc_model.json").read_text())


def _write(folder, document):
    (folder / "skxmc_model.json").write_text(json.dumps(document))


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"__object__": ["os", "system"], "state": None, "id": 0}, "'os.system'"),
        ({"__object__": ["builtins", "eval"], "state": None, "id": 0}, "builtins.eval"),
        # An attribute chain through an allowlisted module to a function.
        (
            {"__object__": ["skxmc._persistence", "np.load"], "state": None, "id": 0},
            "np.load",
        ),
        ({"__object__": ["subprocess", "Popen"], "state": {}, "id": 0}, "subprocess"),
        # scikit-learn classes outside the explicit list, missing skxmc names.
        (
            {"__object__": ["sklearn.utils", "Bunch"], "state": {}, "id": 0},
            "sklearn.utils.Bunch",
        ),
        (
            {"__object__": ["skxmc.nothing", "Here"], "state": {}, "id": 0},
            "does not exist",
        ),
        ({"__object__": ["os;rm", "x"], "state": {}, "id": 0}, "Invalid type name"),
        ({"__reduce__": ["os.system", ["touch MARKER"]]}, "__reduce__"),
        ({"__global__": "os.system"}, "os.system"),
        ({"__hf_model__": "hf/0", "class": "os", "id": 0}, "'os'"),
        ({"__hf_model__": "../../etc", "class": "BertModel", "id": 0}, "subfolder"),
    ],
)
def test_tampered_json_is_refused_without_executing(
    xr_linear, tmp_path, entry, message
):
    folder = tmp_path / "m"
    document = _saved(xr_linear[0], folder)
    marker = tmp_path / "MARKER"
    text = json.dumps(entry).replace("MARKER", str(marker))
    document["root"]["state"]["__dict__"]["model_"] = json.loads(text)
    _write(folder, document)
    with pytest.raises(UnsafeModelError, match=message):
        skxmc.load(folder)
    assert not marker.exists()


def test_tampered_root_type_is_refused(xr_linear, tmp_path):
    folder = tmp_path / "m"
    document = _saved(xr_linear[0], folder)
    document["root"]["__object__"] = ["os", "system"]
    _write(folder, document)
    with pytest.raises(UnsafeModelError, match=r"'os\.system'.*not on.*allowlist"):
        skxmc.load(folder)


def test_pickle_bearing_npz_is_refused_without_executing(xr_linear, tmp_path):
    folder = tmp_path / "m"
    skxmc.save(xr_linear[0], folder)
    marker = tmp_path / "marker"
    with np.load(folder / "arrays.npz", allow_pickle=False) as arrays:
        contents = {key: arrays[key] for key in arrays.files}
    payload = np.empty(1, dtype=object)
    payload[0] = _Payload(marker)
    contents = dict.fromkeys(contents, payload)  # every array carries it
    (folder / "arrays.npz").unlink()
    np.savez(folder / "arrays.npz", **contents)
    # Sanity: unpickling this file would create the marker.
    assert b"system" in (folder / "arrays.npz").read_bytes()
    with pytest.raises(UnsafeModelError, match="pickled Python objects"):
        skxmc.load(folder)
    assert not marker.exists()


def test_pickle_in_place_of_safetensors_is_refused(tmp_path):
    import torch

    est, _ = _fitted(DecafClassifier)
    folder = tmp_path / "m"
    skxmc.save(est, folder)
    marker = tmp_path / "marker"
    (folder / "tensors.safetensors").unlink()
    torch.save({"t0": _Payload(marker)}, folder / "tensors.safetensors")
    with pytest.raises(UnsafeModelError, match="not a valid safetensors file"):
        skxmc.load(folder)
    assert not marker.exists()


def test_pickle_in_place_of_json_is_refused(xr_linear, tmp_path):
    folder = tmp_path / "m"
    skxmc.save(xr_linear[0], folder)
    marker = tmp_path / "marker"
    (folder / "skxmc_model.json").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(UnsafeModelError, match="not valid JSON"):
        skxmc.load(folder)
    assert not marker.exists()


# ------------------------------------------------------------- versions
@pytest.mark.parametrize(
    "package, saved, current",
    [
        ("skxmc", "9.7.0", skxmc.__version__),
        ("sklearn", "1.2.2", sklearn.__version__),
    ],
)
def test_version_mismatch_names_both_versions(
    xr_linear, tmp_path, package, saved, current
):
    folder = tmp_path / "m"
    document = _saved(xr_linear[0], folder)
    document["versions"][package] = saved
    _write(folder, document)
    with pytest.raises(ValueError, match=rf"{saved}.*{current}") as info:
        skxmc.load(folder)
    assert not isinstance(info.value, UnsafeModelError)


def test_patch_version_and_other_libraries_may_differ(xr_linear, tmp_path):
    folder = tmp_path / "m"
    document = _saved(xr_linear[0], folder)
    major, minor = sklearn.__version__.split(".")[:2]
    document["versions"].update(
        sklearn=f"{major}.{minor}.99", torch="0.1", numpy="1.0", python="3.0"
    )
    _write(folder, document)
    skxmc.load(folder)


def test_versions_are_recorded(xr_linear, tmp_path):
    document = _saved(xr_linear[0], tmp_path / "m")
    assert set(document["versions"]) >= {"skxmc", "sklearn", "torch", "numpy", "python"}


# ------------------------------------------------------------------ gpu
@pytest.mark.gpu
@pytest.mark.parametrize("cls", [CentroidRanker, DecafClassifier, EliasClassifier])
def test_cuda_fitted_model_loads_on_cpu(cls, tmp_path, monkeypatch):
    import torch

    est, data = _fitted(cls, device="cuda")
    on_gpu = est.predict_topk(data.X_test, 5)
    skxmc.save(est, tmp_path / "m")
    # Load as on a machine without a GPU: every tensor lands on the CPU.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = skxmc.load(tmp_path / "m")
    for value in _tensors(loaded):
        assert value.device.type == "cpu"
    # Same weights, same CPU code path: identical to the original on the CPU.
    loaded.set_params(device="cpu")
    _assert_same_predictions(est.set_params(device="cpu"), loaded, data.X_test)
    monkeypatch.undo()
    # And back on the GPU, the loaded model still predicts (AMP may differ
    # from the CPU in the last bits, so labels are compared, not scores).
    loaded.set_params(device="cuda")
    scores, labels = loaded.predict_topk(data.X_test, 5)
    assert scores.shape == on_gpu[0].shape
    assert (labels[:, 0] == on_gpu[1][:, 0]).mean() >= 0.9


def _tensors(obj, seen=None):
    import torch

    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, torch.nn.Module):
        yield from obj.parameters()
        yield from obj.buffers()
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _tensors(value, seen)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _tensors(value, seen)
    elif hasattr(obj, "__dict__") and type(obj).__module__.startswith("skxmc"):
        yield from _tensors(vars(obj), seen)


def test_pickled_estimator_state_in_json_is_refused(xr_linear, tmp_path):
    # BaseXMCClassifier.__setstate__ unpickles '_skxmc_cpu_state', and
    # pickle.loads accepts a numpy uint8 array: the loader must not reach it.
    folder = tmp_path / "m"
    document = _saved(xr_linear[0], folder)
    marker = tmp_path / "marker"
    with np.load(folder / "arrays.npz", allow_pickle=False) as arrays:
        contents = {key: arrays[key] for key in arrays.files}
    contents["evil"] = np.frombuffer(pickle.dumps(_Payload(marker)), dtype=np.uint8)
    (folder / "arrays.npz").unlink()
    np.savez(folder / "arrays.npz", **contents)
    document["root"]["state"]["__dict__"] = {
        "_skxmc_cpu_state": {"__ndarray__": "evil", "id": 10**6}
    }
    _write(folder, document)
    with pytest.raises(UnsafeModelError, match="_skxmc_cpu_state"):
        skxmc.load(folder)
    assert not marker.exists()


def test_pipeline_round_trip(tmp_path):
    from sklearn.feature_extraction.text import TfidfVectorizer

    est = make_fast_estimator(XRLinearClassifier, random_state=0)
    data = _xmc_data(make_fast_estimator(DecafClassifier))  # text X
    pipe = skxmc.make_xmc_pipeline(TfidfVectorizer(dtype=np.float32), est)
    pipe.fit(data.X, data.Y)
    skxmc.save(pipe, tmp_path / "m")
    loaded = skxmc.load(tmp_path / "m")
    assert type(loaded) is type(pipe)
    np.testing.assert_array_equal(
        loaded.predict(data.X_test).toarray(), pipe.predict(data.X_test).toarray()
    )
    _assert_same_predictions(pipe[-1], loaded[-1], loaded[0].transform(data.X_test))


def test_a_model_saved_before_a_parameter_existed_gets_its_default():
    """A pickle of an older version lacks a parameter added since (here
    DecafClassifier's token_init): it loads with the default, and get_params /
    clone work (they raised AttributeError)."""
    from sklearn.base import clone

    from skxmc import DecafClassifier

    old = DecafClassifier(embedding_dim=8)
    del old.token_init  # what a model pickled before the parameter holds
    loaded = pickle.loads(pickle.dumps(old))
    assert loaded.get_params()["token_init"] is None
    assert clone(loaded).embedding_dim == 8
