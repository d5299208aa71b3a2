"""The checkpoint store: never unpickles code, survives bad files, one file per fit."""

import io
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.linear_model import Ridge

from skxmc.training import (
    CheckpointStore,
    fit_fingerprint,
    get_rng_state,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
)
from skxmc.training._checkpoint import _MAGIC, CheckpointError


class _Payload:
    """Unpickling this writes a marker file: what a crafted checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _malicious_bodies(marker):
    """A torch archive and a bare pickle that run code when unpickled."""
    buffer = io.BytesIO()
    torch.save({"model": _Payload(marker)}, buffer)
    return [buffer.getvalue(), pickle.dumps(_Payload(marker))]


def _with_valid_checksum(body):
    import hashlib

    return _MAGIC + hashlib.sha256(body).digest() + body


@pytest.mark.parametrize("checksum", [False, True])
@pytest.mark.parametrize("kind", [0, 1])
def test_a_crafted_checkpoint_never_runs_code(tmp_path, kind, checksum):
    marker = tmp_path / "pwned"
    body = _malicious_bodies(marker)[kind]
    store = CheckpointStore(tmp_path / "ckpt", "demo", "f" * 64)
    store.path.parent.mkdir()
    store.path.write_bytes(_with_valid_checksum(body) if checksum else body)
    with pytest.warns(UserWarning, match=str(store.path.name)):
        assert store.load() is None
    assert not marker.exists()


def test_load_checkpoint_uses_weights_only_on_the_cpu(tmp_path, monkeypatch):
    seen = {}
    original = torch.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    save_checkpoint(tmp_path / "a.ckpt", {"w": torch.ones(2)})
    load_checkpoint(tmp_path / "a.ckpt")
    assert seen == {"map_location": "cpu", "weights_only": True}


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: b"",
        lambda data: data[: len(data) // 2],
        lambda data: data[:-1] + bytes([data[-1] ^ 1]),
        lambda data: b"garbage" * 10,
    ],
    ids=["empty", "truncated", "bit-flip", "garbage"],
)
def test_damaged_files_warn_naming_the_file(tmp_path, damage):
    store = CheckpointStore(tmp_path, "demo", "a" * 64)
    store.save({"w": torch.arange(100.0)}, seed=1)
    store.path.write_bytes(damage(store.path.read_bytes()))
    fresh = CheckpointStore(tmp_path, "demo", "a" * 64)
    with pytest.warns(
        UserWarning, match=f"Ignoring the checkpoint .*{store.path.name}"
    ):
        assert fresh.load() is None
    assert fresh.resume_seed(42) == 42


def test_one_file_per_fingerprint(tmp_path):
    a = CheckpointStore(tmp_path, "demo", "a" * 64)
    b = CheckpointStore(tmp_path, "demo", "b" * 64)
    a.save({"x": 1}, seed=0)
    b.save({"x": 2}, seed=0)
    assert a.path != b.path
    assert CheckpointStore(tmp_path, "demo", "a" * 64).load()["x"] == 1


def test_checkpoint_dir_that_is_a_file_is_an_error(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        CheckpointStore(path, "demo", "a" * 64)


def test_the_stored_seed_is_resumed(tmp_path):
    CheckpointStore(tmp_path, "demo", "c" * 64).save({}, seed=1234)
    assert CheckpointStore(tmp_path, "demo", "c" * 64).resume_seed(7) == 1234


def test_fingerprint_covers_data_label_side_and_encoder_weights():
    X = sp.random(5, 4, density=0.5, format="csr", random_state=0)
    Z = sp.random(3, 4, density=0.5, format="csr", random_state=1)
    encoder = torch.nn.Linear(2, 2)
    base = fit_fingerprint(Ridge(), [X, Z, ["a", "b"], encoder])
    assert base == fit_fingerprint(Ridge(), [X.copy(), Z, ["a", "b"], encoder])
    Z2 = Z.copy()
    Z2.data[0] += 1
    assert base != fit_fingerprint(Ridge(), [X, Z2, ["a", "b"], encoder])
    assert base != fit_fingerprint(Ridge(), [X, Z, ["a", "c"], encoder])
    with torch.no_grad():
        encoder.weight[0, 0] += 1
    assert base != fit_fingerprint(Ridge(), [X, Z, ["a", "b"], encoder])
    # containers and shapes are part of the content
    assert fit_fingerprint(Ridge(), [np.arange(4)]) != fit_fingerprint(
        Ridge(), [np.arange(4).reshape(2, 2)]
    )


def test_fingerprint_ignores_neutral_params_and_an_unset_random_state():
    data = [np.arange(3)]
    assert fit_fingerprint(Ridge(random_state=None), data) == fit_fingerprint(
        Ridge(random_state=np.random.RandomState(0)), data
    )
    assert fit_fingerprint(Ridge(random_state=1), data) != fit_fingerprint(
        Ridge(random_state=2), data
    )
    assert fit_fingerprint(Ridge(tol=1), data, neutral=["tol"]) == fit_fingerprint(
        Ridge(tol=2), data, neutral=["tol"]
    )


def test_rng_state_restores_from_a_device_mapped_load(tmp_path):
    """A state loaded through another ``map_location`` (emulated: tensors of
    another dtype, as a mapping copy could give) still restores on the CPU."""
    save_checkpoint(tmp_path / "r.ckpt", {"rng": get_rng_state("cpu")})
    expected = torch.rand(3)
    state = load_checkpoint(tmp_path / "r.ckpt")["rng"]
    mapped = {k: v.to(torch.int64) for k, v in state.items()}
    set_rng_state(mapped, "cpu")
    assert torch.equal(torch.rand(3), expected)


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)
