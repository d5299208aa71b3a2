"""Devices, mixed precision and out-of-memory errors: one rule for every estimator."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch

__all__ = [
    "amp_dtype",
    "autocast",
    "deterministic_algorithms",
    "is_oom_error",
    "resolve_device",
]

_DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return backend is not None and backend.is_available()


def resolve_device(device: str | torch.device, *, strict: bool = True) -> torch.device:
    """Turn a ``device`` parameter into an indexed :class:`torch.device`.

    A CUDA device always carries its index (``cuda:0``, never ``cuda``), so
    that two spellings of one device compare equal.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``,
        ``"cuda:N"``, ``"mps"`` (Apple-silicon GPUs), or a
        :class:`torch.device` of one of these types. ``"auto"`` never picks
        ``"mps"``: ask for it explicitly. In a ``torchrun`` launch
        (``WORLD_SIZE`` > 1), ``"auto"`` and ``"cuda"`` mean
        ``cuda:LOCAL_RANK``: one GPU per process.
    strict : bool, default=True
        When True (fit time), asking for a device the machine lacks raises.
        When False (predict time, e.g. a model fitted on a GPU and loaded on a
        laptop), it warns and falls back to the CPU.

    Returns
    -------
    device : torch.device
        The device to run on.

    Raises
    ------
    ValueError
        For any other string or device type.
    RuntimeError
        With ``strict``, for a CUDA or MPS device the machine lacks.

    Examples
    --------
    >>> import torch
    >>> from skxmc.training import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device(torch.device("cpu"))
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        # cpu:0 and mps:0 are the cpu and mps devices; a CUDA index is kept
        cuda_index = device.type == "cuda" and device.index is not None
        device = f"cuda:{device.index}" if cuda_index else device.type
    if not isinstance(device, str) or not _DEVICE_PATTERN.match(device):
        raise ValueError(
            "device must be 'auto', 'cpu', 'cuda', 'cuda:N', 'mps' or a "
            f"torch.device of those types, got {device!r}."
        )
    local_rank = os.environ.get("LOCAL_RANK")
    if (
        local_rank is not None
        and device in ("auto", "cuda")
        and int(os.environ.get("WORLD_SIZE", "1")) > 1
        and torch.cuda.is_available()
    ):
        # one GPU per process of a torchrun launch
        return torch.device("cuda", int(local_rank) % torch.cuda.device_count())
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "mps":
        if _mps_available():
            return torch.device("mps")
        message = "device='mps' was requested but MPS is not available."
    else:
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if ":" in device:
            index = int(device.split(":")[1])
        else:
            index = torch.cuda.current_device() if available else 0
        if index < available:
            return torch.device("cuda", index)
        message = (
            f"device={device!r} was requested but "
            + (
                "CUDA is not available"
                if available == 0
                else f"only {available} CUDA device(s) exist"
            )
            + "."
        )
    if strict:
        raise RuntimeError(message + " Use device='auto' or device='cpu'.")
    warnings.warn(message + " Falling back to the CPU.", RuntimeWarning, stacklevel=3)
    return torch.device("cpu")


def amp_dtype(device: str | torch.device) -> torch.dtype | None:
    """The mixed-precision dtype of ``device``: the one autocast rule.

    bfloat16 where the GPU supports it natively (no gradient scaler needed),
    float16 on older GPUs (the :class:`~skxmc.training.Trainer` then scales
    the loss), None on the CPU (full precision).

    Parameters
    ----------
    device : str or torch.device
        The device of the computation.

    Returns
    -------
    dtype : torch.dtype or None
        ``torch.bfloat16``, ``torch.float16`` or None (no autocast).

    Examples
    --------
    >>> from skxmc.training import amp_dtype
    >>> amp_dtype("cpu") is None
    True
    """
    device = torch.device(device)
    if device.type != "cuda":
        return None
    with torch.cuda.device(device):
        native_bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
    return torch.bfloat16 if native_bf16 else torch.float16


def autocast(device: str | torch.device, enabled: bool = True):
    """Autocast to :func:`amp_dtype` on CUDA when ``enabled``, else a no-op.

    Parameters
    ----------
    device : str or torch.device
        The device of the computation.
    enabled : bool, default=True
        Whether to use mixed precision at all.

    Returns
    -------
    context : context manager
        ``torch.autocast`` or ``contextlib.nullcontext``.
    """
    dtype = amp_dtype(device) if enabled else None
    if dtype is None:
        return nullcontext()
    return torch.autocast("cuda", dtype=dtype)


def is_oom_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an accelerator out-of-memory error.

    Parameters
    ----------
    exc : BaseException
        The error.

    Returns
    -------
    is_oom : bool
        True for ``torch.cuda.OutOfMemoryError`` and for a RuntimeError that
        says "out of memory".

    Examples
    --------
    >>> import torch
    >>> from skxmc.training import is_oom_error
    >>> is_oom_error(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    True
    """
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc)


@contextmanager
def deterministic_algorithms(enabled: bool = True) -> Iterator[None]:
    """Run a block with torch's deterministic algorithms (restored afterwards).

    :class:`~skxmc.training.Trainer` runs every CPU training step inside it:
    on the CPU the backward of advanced indexing sums in thread order
    otherwise, and the same seed would not give the same model. On CUDA,
    some kernels (atomic adds in
    ``index_add``/``embedding_bag`` backward, cuBLAS split-K reductions) sum
    in a nondeterministic order, so two fits with the same seed differ in the
    last bits and then drift apart. With ``enabled``, torch uses deterministic
    kernels (slower) and raises on an operation that has none, and cuBLAS gets
    a fixed workspace (``CUBLAS_WORKSPACE_CONFIG=:4096:8``, set only when the
    user has not set it). Same seed then means the same model on the same
    GPU model, driver and library versions; never across devices.

    Parameters
    ----------
    enabled : bool, default=True
        False makes the context a no-op.

    Yields
    ------
    None

    Examples
    --------
    >>> import torch
    >>> from skxmc.training import deterministic_algorithms
    >>> with deterministic_algorithms():
    ...     torch.are_deterministic_algorithms_enabled()
    True
    >>> torch.are_deterministic_algorithms_enabled()
    False
    """
    if not enabled:
        yield
        return
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    set_env = "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    if set_env:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)
        if set_env:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
