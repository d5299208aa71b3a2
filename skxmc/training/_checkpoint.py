"""Checkpoints of a fit: module and optimizer states, epoch, RNG states."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

__all__ = ["load_checkpoint", "save_checkpoint"]

_FORMAT = "skxmc-checkpoint-1"


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write ``payload`` (state dicts, epoch, RNG states, ...) atomically.

    The file is written next to ``path`` and renamed over it, so an
    interrupted save never leaves a truncated checkpoint behind.

    Parameters
    ----------
    path : str or path-like
        The checkpoint file (its folder is created).
    payload : dict
        Anything :func:`torch.save` can write.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from skxmc.training import load_checkpoint, save_checkpoint
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "fit.pt"
    >>> save_checkpoint(path, {"epoch": 3})
    >>> load_checkpoint(path)["epoch"]
    3
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": _FORMAT, **payload}, tmp)
    os.replace(tmp, path)


def load_checkpoint(
    path: str | os.PathLike, map_location: torch.device | str = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or path-like
        The checkpoint file.
    map_location : torch.device or str, default="cpu"
        Where the tensors are loaded.

    Returns
    -------
    payload : dict
        What :func:`save_checkpoint` wrote.
    """
    payload = torch.load(Path(path), map_location=map_location, weights_only=False)
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(f"{path} is not an skxmc checkpoint.")
    return payload
