"""The device rule: strings, torch.device objects and "mps"."""

import inspect

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

import skxmc.training._device as device_module
from skxmc import (
    DecafClassifier,
    EclareClassifier,
    EliasClassifier,
    LabelInfo,
    XRTransformerClassifier,
)
from skxmc.datasets import make_xmc_classification
from skxmc.training import resolve_device

DEEP = [DecafClassifier, EclareClassifier, EliasClassifier, XRTransformerClassifier]


CPU_SPELLINGS = ["cpu", torch.device("cpu"), torch.device("cpu", 0)]


@pytest.mark.parametrize("spelling", CPU_SPELLINGS)
def test_cpu_in_any_spelling(spelling):
    assert resolve_device(spelling) == torch.device("cpu")


def test_torch_device_and_string_resolve_alike(monkeypatch):
    # pretend two CUDA devices exist: both spellings of cuda:1 give the same device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert resolve_device(torch.device("cuda", 1)) == resolve_device("cuda:1")
    assert resolve_device(torch.device("cuda")) == torch.device("cuda", 0)


def test_mps_when_available(monkeypatch):
    monkeypatch.setattr(device_module, "_mps_available", lambda: True)
    assert resolve_device("mps") == torch.device("mps")
    assert resolve_device(torch.device("mps")) == torch.device("mps")
    # "auto" never picks MPS on its own
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


def test_mps_missing(monkeypatch):
    monkeypatch.setattr(device_module, "_mps_available", lambda: False)
    with pytest.raises(RuntimeError, match="MPS is not available"):
        resolve_device("mps")
    with pytest.warns(RuntimeWarning, match="Falling back to the CPU"):
        assert resolve_device("mps", strict=False) == torch.device("cpu")


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "MPS", torch.device("meta"), 0])
def test_other_devices_refused(bad):
    with pytest.raises(ValueError, match=r"'mps' or a torch\.device"):
        resolve_device(bad)


@pytest.mark.parametrize("cls", DEEP)
def test_estimators_accept_torch_device_and_name_it(cls):
    # parameter validation only: the encoder path is never read here
    extra = (
        {"encoder": "unused"} if "encoder" in inspect.signature(cls).parameters else {}
    )
    cls(device=torch.device("cpu"), **extra)._validate_params()
    cls(device="mps", **extra)._validate_params()  # the string is checked at fit
    with pytest.raises(InvalidParameterError, match=r"'torch\.device'"):
        cls(device=0, **extra)._validate_params()


@pytest.mark.slow
def test_fit_with_a_torch_device_equals_the_string():
    d = make_xmc_classification(
        n_samples=80, n_labels=10, n_features=40, return_text=True, random_state=0
    )
    params = {"embedding_dim": 8, "n_epochs": 1, "batch_size": 32, "random_state": 0}
    info = LabelInfo(text=d.label_text)
    a = DecafClassifier(device="cpu", **params).fit(d.text, d.Y, label_info=info)
    b = DecafClassifier(device=torch.device("cpu"), **params).fit(
        d.text, d.Y, label_info=info
    )
    sa, ia = a.predict_topk(d.text, k=3)
    sb, ib = b.predict_topk(d.text, k=3)
    assert np.array_equal(ia, ib) and np.allclose(sa, sb)
