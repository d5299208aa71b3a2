"""Multi-process training: the process group, row shards and sparse gradients.

Launch any fit script with ``torchrun --nproc_per_node=N script.py`` (or
``python -m torch.distributed.run``); every rank runs the whole script. The
:class:`~skxmc.training.Trainer` then

- joins the process group from the ``env://`` variables that ``torchrun``
  sets (``WORLD_SIZE`` > 1), with backend ``nccl`` on CUDA and ``gloo`` on
  the CPU, unless the script initialised it already;
- gives each rank its contiguous shard of every global batch (the global
  batch and the seed keep their single-process meaning) and has
  :class:`torch.nn.parallel.DistributedDataParallel` average the dense
  gradients;
- all-reduces the gradients of sparse embeddings (SparseAdam) itself, by
  gathering every rank's (index, value) pairs: no dense table is ever built,
  and the same code runs on ``gloo`` and ``nccl``.

The label side (hold-outs, label embeddings, k-means trees, label graphs,
shortlists, rankers) is computed by every rank from the same data and seed:
it is deterministic, so each rank holds the same structures without shipping
them, and ranks stay busy instead of waiting on rank 0.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import torch
import torch.distributed as dist

__all__ = [
    "all_reduce_sparse_grads",
    "get_rank",
    "get_world_size",
    "init_distributed",
    "is_main_process",
    "shard_rows",
]


def _env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(device: str | torch.device = "cpu") -> int:
    """Join the process group of a ``torchrun`` launch; return its size.

    Does nothing in a single process (``WORLD_SIZE`` unset or 1) or when the
    group exists already (a script may call
    :func:`torch.distributed.init_process_group` itself, e.g. for another
    backend).

    Parameters
    ----------
    device : str or torch.device, default="cpu"
        The device of this rank: ``nccl`` on CUDA, ``gloo`` otherwise.

    Returns
    -------
    world_size : int
        Number of processes (1 without a launch).

    Examples
    --------
    >>> from skxmc.training import init_distributed
    >>> init_distributed("cpu")  # not launched by torchrun
    1
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    if _env_world_size() <= 1 or not dist.is_available():
        return 1
    backend = "nccl" if torch.device(device).type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, init_method="env://")
    return dist.get_world_size()


def get_world_size() -> int:
    """Processes of the running group (1 without one).

    Returns
    -------
    world_size : int
        ``torch.distributed.get_world_size()`` or 1.

    Examples
    --------
    >>> from skxmc.training import get_world_size
    >>> get_world_size()
    1
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def get_rank() -> int:
    """Rank of this process in its group; before the group exists, the
    ``RANK`` variable of ``torchrun`` (0 without a launch).

    Returns
    -------
    rank : int
        0 to ``world_size - 1``.

    Examples
    --------
    >>> from skxmc.training import get_rank
    >>> get_rank()
    0
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    """Whether this process is rank 0 (the one that logs and checkpoints).

    Returns
    -------
    is_main : bool
        True on rank 0 and without a launch.

    Examples
    --------
    >>> from skxmc.training import is_main_process
    >>> is_main_process()
    True
    """
    return get_rank() == 0


def shard_rows(rows, rank: int, world_size: int):
    """The contiguous share of ``rows`` of one rank (sizes differ by <= 1).

    Parameters
    ----------
    rows : array-like
        A global batch.
    rank, world_size : int
        This process and the number of processes.

    Returns
    -------
    shard : array-like
        ``rows[start:stop]``; empty when the batch has fewer rows than ranks.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.training import shard_rows
    >>> [shard_rows(np.arange(5), r, 2).tolist() for r in range(2)]
    [[0, 1, 2], [3, 4]]
    """
    n = len(rows)
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    stop = start + base + (rank < extra)
    return rows[start:stop]


def all_reduce_sparse_grads(params, world_size: int) -> None:
    """Average the sparse gradients of ``params`` over the ranks, in place.

    Each rank's gradient is coalesced; the (index, value) pairs of every
    rank are all-gathered (padded to the longest) and summed by
    ``coalesce``, then divided by ``world_size``. Memory is the union of
    the rows touched, never the dense table. A rank whose parameter got no
    gradient contributes nothing (every rank still joins the collectives);
    a parameter untouched on every rank keeps ``grad=None``.

    Parameters
    ----------
    params : list of torch.nn.Parameter
        The sparse parameters, in the same order on every rank.
    world_size : int
        Number of ranks.
    """
    for p in params:
        grad = p.grad
        dim = p.shape[1:]
        if grad is None:
            indices = torch.empty(0, dtype=torch.long, device=p.device)
            values = torch.empty((0, *dim), dtype=p.dtype, device=p.device)
        else:
            grad = grad.coalesce()
            indices, values = grad.indices()[0], grad.values()
        count = torch.tensor([len(indices)], device=p.device)
        counts = [torch.zeros_like(count) for _ in range(world_size)]
        dist.all_gather(counts, count)
        counts = [int(c) for c in counts]
        longest = max(counts)
        if longest == 0:
            p.grad = None
            continue
        pad = longest - len(indices)
        indices = torch.cat([indices, indices.new_zeros(pad)])
        values = torch.cat([values, values.new_zeros((pad, *dim))])
        all_indices = [torch.empty_like(indices) for _ in range(world_size)]
        all_values = [torch.empty_like(values) for _ in range(world_size)]
        dist.all_gather(all_indices, indices)
        dist.all_gather(all_values, values)
        merged = torch.sparse_coo_tensor(
            torch.cat([i[:c] for i, c in zip(all_indices, counts)]).unsqueeze(0),
            torch.cat([v[:c] for v, c in zip(all_values, counts)]) / world_size,
            p.shape,
            check_invariants=False,
        )
        p.grad = merged.coalesce()


def same_on_all_ranks(data: bytes, what: str, device: torch.device) -> None:
    """Raise unless ``data`` hashes alike on every rank.

    A cheap guard of the "computed identically on every rank" rule.
    """
    digest = hashlib.sha1(data).digest()[:8]
    mine = torch.tensor(np.frombuffer(digest, dtype=np.int64).copy(), device=device)
    gathered = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, mine)
    if any(int(g) != int(mine) for g in gathered):
        raise RuntimeError(
            f"The ranks disagree on {what}: every rank must call fit with the "
            "same data and random_state."
        )


class LossModule(torch.nn.Module):
    """``module`` with ``forward(rows, loss_fn) = loss_fn(rows)``.

    :class:`~torch.nn.parallel.DistributedDataParallel` synchronises the
    gradients of a backward only after a forward through its wrapper; the
    estimators' loss functions call their networks (and submodules)
    directly, so the Trainer wraps this module, whose forward is the loss.
    """

    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self.module = module

    def forward(self, rows, loss_fn):
        return loss_fn(rows)
