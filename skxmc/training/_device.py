"""Device selection shared by every torch-backed estimator."""

from __future__ import annotations

import re
import warnings

import torch

_DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def resolve_device(device: str, *, strict: bool = True) -> torch.device:
    """Turn a ``device`` parameter into a :class:`torch.device`.

    Parameters
    ----------
    device : str
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or
        ``"cuda:N"``.
    strict : bool, default=True
        When True (fit time), asking for CUDA on a machine without it raises.
        When False (predict time, e.g. a model fitted on a GPU and loaded on a
        laptop), it warns and falls back to the CPU.

    Returns
    -------
    device : torch.device
        The device to run on.

    Examples
    --------
    >>> from skxmc.training import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if not isinstance(device, str) or not _DEVICE_PATTERN.match(device):
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}."
        )
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    index = int(device.split(":")[1]) if ":" in device else 0
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
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
