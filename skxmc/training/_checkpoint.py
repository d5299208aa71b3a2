"""One checkpoint store for every torch estimator.

A checkpoint is ``MAGIC + sha256(body) + body`` where ``body`` is a
:func:`torch.save` archive read back with ``weights_only=True``: only tensors,
numbers, strings, lists and dicts, so a file planted in ``checkpoint_dir``
cannot run code. One file per fit fingerprint, so a checkpoint of another fit
is kept, never overwritten.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections.abc import Mapping
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

__all__ = [
    "CheckpointStore",
    "fit_fingerprint",
    "load_checkpoint",
    "save_checkpoint",
]

_MAGIC = b"skxmc-checkpoint-2\n"
_DIGEST_SIZE = 32


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read (corrupted, truncated, unsafe)."""


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically, with a checksum.

    The file is written next to ``path`` and renamed over it, so an
    interrupted save never leaves a truncated checkpoint behind.

    Parameters
    ----------
    path : str or path-like
        The checkpoint file (its folder is created).
    payload : dict
        Tensors, numbers, strings, None, and lists/tuples/dicts of them
        (what ``torch.load(..., weights_only=True)`` reads back).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from skxmc.training import load_checkpoint, save_checkpoint
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "fit.ckpt"
    >>> save_checkpoint(path, {"epoch": 3})
    >>> load_checkpoint(path)["epoch"]
    3
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(dict(payload), buffer)
    body = buffer.getvalue()
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as file:
        file.write(_MAGIC + hashlib.sha256(body).digest() + body)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, on the CPU.

    Tensors are loaded with ``map_location="cpu"``; move them to a device
    afterwards (``load_state_dict`` does). Nothing in the file is unpickled
    beyond tensors and plain containers (``weights_only=True``).

    Parameters
    ----------
    path : str or path-like
        The checkpoint file.

    Returns
    -------
    payload : dict
        What :func:`save_checkpoint` wrote.

    Raises
    ------
    CheckpointError
        The file is empty, truncated, corrupted (checksum), of another
        format, or holds anything but weights.
    """
    path = Path(path)
    data = path.read_bytes()
    if not data.startswith(_MAGIC):
        raise CheckpointError(
            "it is not an skxmc checkpoint (empty, truncated or another format)"
        )
    digest = data[len(_MAGIC) : len(_MAGIC) + _DIGEST_SIZE]
    body = data[len(_MAGIC) + _DIGEST_SIZE :]
    if hashlib.sha256(body).digest() != digest:
        raise CheckpointError("its checksum does not match (truncated or corrupted)")
    try:
        payload = torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
    except Exception as exc:  # an UnpicklingError for anything but weights
        raise CheckpointError(f"it cannot be read safely ({exc})") from None
    if not isinstance(payload, dict):
        raise CheckpointError("it does not hold a dict")
    return payload


class CheckpointStore:
    """Where one fit keeps its checkpoint: ``<directory>/<name>-<fingerprint>.ckpt``.

    A fit asks :meth:`load` for a checkpoint of the same fingerprint (same
    data, label side, encoder weights and parameters) and resumes from it; a
    file that cannot be read safely gives a warning naming it and a fresh
    fit. With ``random_state=None`` the fit's drawn seed is stored, and
    :meth:`resume_seed` hands it back so that a refit resumes instead of
    starting over.

    Parameters
    ----------
    directory : str or path-like
        The folder of the checkpoints (created on the first save).
    name : str
        The estimator's name in file names (e.g. ``"decaf"``).
    fingerprint : str
        From :func:`fit_fingerprint`.

    Attributes
    ----------
    path : pathlib.Path
        The checkpoint file of this fit.

    Examples
    --------
    >>> import tempfile
    >>> from skxmc.training import CheckpointStore
    >>> store = CheckpointStore(tempfile.mkdtemp(), "demo", "0123abcd")
    >>> store.load() is None
    True
    >>> store.save({"epoch": 1}, seed=7)
    >>> store.load()["epoch"], store.resume_seed(0)
    (1, 7)
    """

    def __init__(self, directory: str | os.PathLike, name: str, fingerprint: str):
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise NotADirectoryError(
                f"checkpoint_dir={str(directory)!r} is a file, not a folder."
            )
        self.path = directory / f"{name}-{fingerprint[:24]}.ckpt"
        self._payload: dict | None = None
        self._loaded = False

    def load(self) -> dict[str, Any] | None:
        """The saved payload of this fit, or None (no file, or an unusable one).

        Returns
        -------
        payload : dict or None
            On the CPU.
        """
        if not self._loaded:
            self._loaded = True
            self._payload = None
            if self.path.exists():
                try:
                    self._payload = load_checkpoint(self.path)
                except CheckpointError as exc:
                    warnings.warn(
                        f"Ignoring the checkpoint {self.path}: {exc}. Fitting "
                        "from the start.",
                        UserWarning,
                        stacklevel=2,
                    )
        return self._payload

    def resume_seed(self, seed: int) -> int:
        """The seed of the saved fit if there is one, else ``seed``.

        Parameters
        ----------
        seed : int
            The seed drawn for this fit.

        Returns
        -------
        seed : int
        """
        payload = self.load()
        if payload is None or "seed" not in payload:
            return int(seed)
        return int(payload["seed"])

    def save(self, payload: Mapping[str, Any], *, seed: int) -> None:
        """Write ``payload`` (with the fit's ``seed``) over this fit's file.

        Parameters
        ----------
        payload : mapping
            See :func:`save_checkpoint`.
        seed : int
            The seed of the fit, stored for :meth:`resume_seed`.

        In a ``torchrun`` launch only rank 0 writes (every rank reads the
        file to resume: keep ``checkpoint_dir`` on a shared file system).
        """
        payload = {**payload, "seed": int(seed)}
        from skxmc.training._distributed import is_main_process

        if is_main_process():  # one writer in a torchrun launch
            save_checkpoint(self.path, payload)
        self._payload, self._loaded = payload, True


def _update(digest, obj) -> None:
    """Feed ``obj`` into ``digest`` with its type and shape (no collisions
    between e.g. ``[1, 2]`` and ``[12]``)."""
    if obj is None:
        digest.update(b"N")
    elif isinstance(obj, bytes):
        digest.update(b"B%d:" % len(obj) + obj)
    elif isinstance(obj, str):
        _update(digest, obj.encode("utf-8", "surrogatepass"))
    elif isinstance(obj, (bool, Integral, float)):
        digest.update(b"S" + repr(obj).encode())
    elif sp.issparse(obj):
        obj = sp.csr_matrix(obj)
        digest.update(b"C" + repr(obj.shape).encode())
        for part in (obj.indptr, obj.indices, obj.data):
            _update(digest, np.asarray(part))
    elif isinstance(obj, np.ndarray):
        if obj.dtype == object:
            _update(digest, obj.tolist())
            return
        array = np.ascontiguousarray(obj)
        digest.update(b"A" + f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    elif isinstance(obj, torch.nn.Module):
        _update(digest, obj.state_dict())
    elif isinstance(obj, torch.Tensor):
        tensor = obj.detach().cpu().contiguous()
        digest.update(b"T" + f"{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, Mapping):
        digest.update(b"D%d:" % len(obj))
        for key in sorted(obj, key=repr):
            _update(digest, repr(key))
            _update(digest, obj[key])
    elif isinstance(obj, (list, tuple)):
        digest.update(b"L%d:" % len(obj))
        for item in obj:
            _update(digest, item)
    else:
        _update(digest, repr(obj))


def fit_fingerprint(estimator, data, *, neutral=()) -> str:
    """A content hash of everything that changes a fitted model.

    The estimator's class and parameters (but ``neutral`` ones, which do not
    change the model: verbosity, device, checkpoint folder, prediction
    knobs) and every piece of ``data``: arrays, sparse matrices, texts,
    torch modules (their weights) and nested lists/dicts of them. The seed is
    not part of it: an integer ``random_state`` is a parameter, and a fit
    with ``random_state=None`` resumes with the seed stored in its checkpoint.

    Parameters
    ----------
    estimator : BaseEstimator
        The estimator being fitted.
    data : object
        The training data and label side (X, Y, label text, features, graph,
        the encoder's weights, ...).
    neutral : iterable of str, default=()
        Parameters left out.

    Returns
    -------
    fingerprint : str
        A sha256 hex digest.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from skxmc.training import fit_fingerprint
    >>> a = fit_fingerprint(Ridge(alpha=1.0), [np.arange(3)])
    >>> a == fit_fingerprint(Ridge(alpha=1.0), [np.arange(3)])
    True
    >>> a == fit_fingerprint(Ridge(alpha=2.0), [np.arange(3)])
    False
    """
    neutral = set(neutral)
    params = estimator.get_params(deep=False)
    if not isinstance(params.get("random_state"), Integral):
        neutral.add("random_state")  # the stored seed decides (resume_seed)
    digest = hashlib.sha256()
    _update(digest, type(estimator).__qualname__)
    _update(digest, {k: repr(v) for k, v in params.items() if k not in neutral})
    _update(digest, data)
    return digest.hexdigest()
