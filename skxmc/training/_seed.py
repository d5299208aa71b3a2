"""Seeding without touching the caller's global torch RNG."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["get_rng_state", "seeded_torch", "set_rng_state"]


def _devices(device: torch.device) -> list[int]:
    device = torch.device(device)
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


@contextmanager
def seeded_torch(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Run a block with torch's global RNG forked and seeded with ``seed``.

    Module initialisation and dropout draw from the global generators; forking
    them (:func:`torch.random.fork_rng`) makes the block reproducible and leaves
    the caller's RNG state exactly as it was. On CUDA the generator of
    ``device`` is forked and seeded too.

    Parameters
    ----------
    seed : int
        The seed.
    device : torch.device or str, default="cpu"
        The device whose generator is forked too (CUDA only).

    Yields
    ------
    None

    Examples
    --------
    >>> import torch
    >>> from skxmc.training import seeded_torch
    >>> before = torch.get_rng_state()
    >>> with seeded_torch(0):
    ...     a = torch.rand(2)
    >>> with seeded_torch(0):
    ...     b = torch.rand(2)
    >>> bool(torch.equal(a, b)), bool(torch.equal(before, torch.get_rng_state()))
    (True, True)
    """
    devices = _devices(torch.device(device))
    with torch.random.fork_rng(devices=devices):
        # not torch.manual_seed: it would also reseed the CUDA generators that
        # fork_rng does not restore (a CPU fit on a GPU machine)
        torch.default_generator.manual_seed(seed)
        for index in devices:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield


def get_rng_state(device: torch.device | str = "cpu") -> dict:
    """The global torch RNG state (CPU, plus CUDA ``device``) for a checkpoint.

    Parameters
    ----------
    device : torch.device or str, default="cpu"
        A CUDA device adds its generator's state.

    Returns
    -------
    state : dict
        ``{"cpu": ..., "cuda": ...}`` generator states.
    """
    state = {"cpu": torch.get_rng_state()}
    for index in _devices(torch.device(device)):
        state["cuda"] = torch.cuda.get_rng_state(index)
    return state


def set_rng_state(state: dict, device: torch.device | str = "cpu") -> None:
    """Restore a state from :func:`get_rng_state`.

    Parameters
    ----------
    state : dict
        From :func:`get_rng_state`.
    device : torch.device or str, default="cpu"
        The CUDA device whose generator is restored too.
    """
    # generator states are CPU byte tensors, whatever map_location a
    # checkpoint was loaded with (torch.set_rng_state rejects a CUDA tensor)
    torch.set_rng_state(_as_cpu_state(state["cpu"]))
    for index in _devices(torch.device(device)):
        if "cuda" in state:
            torch.cuda.set_rng_state(_as_cpu_state(state["cuda"]), index)


def _as_cpu_state(state) -> torch.Tensor:
    return torch.as_tensor(state).detach().to("cpu", torch.uint8)
