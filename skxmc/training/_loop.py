"""A small training loop: train_step / run_epoch / fit_loop (skorch's split)."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from skxmc.training._device import autocast

__all__ = [
    "LoopState",
    "fit_loop",
    "make_optimizers",
    "run_epoch",
    "train_step",
]


def make_optimizers(
    module: nn.Module, lr: float, *, exclude: Sequence[nn.Parameter] = ()
) -> list[torch.optim.Optimizer]:
    """Adam for dense parameters, SparseAdam for sparse-gradient embeddings.

    Parameters
    ----------
    module : torch.nn.Module
        The module to train; a parameter shared by several submodules is
        optimised once.
    lr : float
        Learning rate, also stored as ``initial_lr`` in every parameter group.
    exclude : sequence of torch.nn.Parameter, default=()
        Parameters that get no optimizer (e.g. frozen token embeddings).

    Returns
    -------
    optimizers : list of torch.optim.Optimizer
        ``[Adam, SparseAdam]``, either absent when it has no parameter.
    """
    excluded = {id(p) for p in exclude}
    sparse, dense = [], []
    seen = set()
    for sub in module.modules():
        if isinstance(sub, (nn.Embedding, nn.EmbeddingBag)) and sub.sparse:
            p = sub.weight
            if id(p) not in seen and id(p) not in excluded:
                sparse.append(p)
            seen.add(id(p))
    for p in module.parameters():
        if id(p) not in seen and id(p) not in excluded and p.requires_grad:
            dense.append(p)
        seen.add(id(p))
    optimizers: list[torch.optim.Optimizer] = []
    if dense:
        optimizers.append(torch.optim.Adam(dense, lr=lr))
    if sparse:
        optimizers.append(torch.optim.SparseAdam(sparse, lr=lr))
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["initial_lr"] = lr
    return optimizers


def train_step(
    module: nn.Module,
    loss_fn: Callable[[Any], torch.Tensor],
    batch: Any,
    optimizers: Sequence[torch.optim.Optimizer],
    *,
    device: torch.device | str = "cpu",
    mixed_precision: bool = False,
) -> float:
    """One optimisation step on ``batch``.

    Parameters
    ----------
    module : torch.nn.Module
        Put in training mode.
    loss_fn : callable
        ``loss_fn(batch)`` runs the forward pass (under autocast on CUDA when
        ``mixed_precision``) and returns a scalar loss.
    batch : object
        Whatever ``loss_fn`` takes.
    optimizers : sequence of torch.optim.Optimizer
        Stepped after the backward pass.
    device : torch.device or str, default="cpu"
        Device of the computation (for autocast).
    mixed_precision : bool, default=False
        Use bfloat16 autocast on CUDA.

    Returns
    -------
    loss : float
        The loss of the batch (before the step).
    """
    module.train()
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    with autocast(device, mixed_precision):
        loss = loss_fn(batch)
    loss.backward()
    for optimizer in optimizers:
        optimizer.step()
    return float(loss.detach())


def run_epoch(
    module: nn.Module,
    loss_fn: Callable[[Any], torch.Tensor],
    batches: Iterable[Any],
    optimizers: Sequence[torch.optim.Optimizer],
    *,
    device: torch.device | str = "cpu",
    mixed_precision: bool = False,
    verbose: int = 0,
    desc: str | None = None,
) -> float:
    """A pass over ``batches``, one :func:`train_step` each.

    Parameters
    ----------
    module : torch.nn.Module
        The module to train.
    loss_fn : callable
        ``loss_fn(batch)`` returns the scalar loss of a batch.
    batches : iterable
        The batches of the epoch.
    optimizers : sequence of torch.optim.Optimizer
        Stepped after every batch.
    device : torch.device or str, default="cpu"
        Device of the computation.
    mixed_precision : bool, default=False
        Use bfloat16 autocast on CUDA.
    verbose : int, default=0
        Show a progress bar.
    desc : str, default=None
        Label of the progress bar.

    Returns
    -------
    loss : float
        The mean loss of the batches.
    """
    total, count = 0.0, 0
    for batch in tqdm(batches, desc=desc, disable=not verbose, leave=False):
        total += train_step(
            module,
            loss_fn,
            batch,
            optimizers,
            device=device,
            mixed_precision=mixed_precision,
        )
        count += 1
    return total / max(count, 1)


@dataclass
class LoopState:
    """Where :func:`fit_loop` stands; saved in checkpoints to resume a fit.

    Parameters
    ----------
    epoch : int, default=0
        Epochs done.
    history : list of dict, default=[]
        One record per epoch done.
    best_score : float, default=-inf
        Best validation score so far.
    best_epoch : int, default=-1
        Epoch of ``best_score``.
    best_state : dict, default=None
        CPU copy of the module's ``state_dict`` at ``best_epoch``.
    bad_epochs : int, default=0
        Epochs since the last improvement.
    stopped : bool, default=False
        Whether early stopping ended the loop.
    """

    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    best_score: float = -math.inf
    best_epoch: int = -1
    best_state: dict | None = None
    bad_epochs: int = 0
    stopped: bool = False

    def state_dict(self) -> dict:
        return dict(vars(self))

    @classmethod
    def from_state_dict(cls, state: dict) -> LoopState:
        return cls(**state)


def _set_lr(optimizers, epoch: int, decay_epochs: Sequence[int], decay: float):
    factor = decay ** sum(epoch >= e for e in decay_epochs)
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor
    return factor


def fit_loop(
    module: nn.Module,
    loss_fn: Callable[[Any], torch.Tensor],
    make_batches: Callable[[int], Iterable[Any]],
    optimizers: Sequence[torch.optim.Optimizer],
    *,
    n_epochs: int,
    state: LoopState | None = None,
    device: torch.device | str = "cpu",
    mixed_precision: bool = False,
    score_fn: Callable[[], float] | None = None,
    n_iter_no_change: int = 3,
    tol: float = 0.0,
    lr_decay_epochs: Sequence[int] = (),
    lr_decay: float = 0.5,
    on_epoch_end: Callable[[LoopState], None] | None = None,
    verbose: int = 0,
    desc: str = "epoch",
) -> LoopState:
    """Train for ``n_epochs`` epochs (from ``state.epoch`` when resuming).

    Each epoch sets the learning rate (``initial_lr`` times ``lr_decay`` for
    every milestone in ``lr_decay_epochs`` already reached), runs
    :func:`run_epoch` on ``make_batches(epoch)``, then, with ``score_fn``
    (higher is better, e.g. P@1 on a validation set), keeps a copy of the best
    ``state_dict`` and stops after ``n_iter_no_change`` epochs without an
    improvement larger than ``tol``; the best state is loaded back at the end.
    ``on_epoch_end(state)`` runs last in every epoch (checkpointing).

    Parameters
    ----------
    module : torch.nn.Module
        The module to train.
    loss_fn : callable
        ``loss_fn(batch)`` returns the scalar loss of a batch.
    make_batches : callable
        ``make_batches(epoch)`` returns the batches of an epoch.
    optimizers : sequence of torch.optim.Optimizer
        From :func:`make_optimizers` (needs ``initial_lr``).
    n_epochs : int
        Total number of epochs.
    state : LoopState, default=None
        Where to resume from; None starts afresh.
    device : torch.device or str, default="cpu"
        Device of the computation.
    mixed_precision : bool, default=False
        Use bfloat16 autocast on CUDA.
    score_fn : callable, default=None
        Validation score (higher is better), called with the module in
        evaluation mode after every epoch; enables early stopping.
    n_iter_no_change : int, default=3
        Patience of early stopping.
    tol : float, default=0.0
        Smallest improvement that counts.
    lr_decay_epochs : sequence of int, default=()
        Epochs from which the learning rate is multiplied by ``lr_decay``.
    lr_decay : float, default=0.5
        Decay factor.
    on_epoch_end : callable, default=None
        Called with the state at the end of every epoch.
    verbose : int, default=0
        Progress bars and one line per epoch.
    desc : str, default="epoch"
        Label of the progress output.

    Returns
    -------
    state : LoopState
        ``history`` holds one dict per epoch (``epoch``, ``loss``, ``lr``,
        ``time``, and ``score`` with ``score_fn``).
    """
    state = LoopState() if state is None else state
    while state.epoch < n_epochs and not state.stopped:
        epoch = state.epoch
        factor = _set_lr(optimizers, epoch, lr_decay_epochs, lr_decay)
        tic = time.perf_counter()
        loss = run_epoch(
            module,
            loss_fn,
            make_batches(epoch),
            optimizers,
            device=device,
            mixed_precision=mixed_precision,
            verbose=verbose,
            desc=f"{desc} {epoch + 1}/{n_epochs}",
        )
        record = {"epoch": epoch, "loss": loss, "lr_factor": factor}
        if score_fn is not None:
            module.eval()
            score = float(score_fn())
            record["score"] = score
            if score > state.best_score + tol:
                state.best_score = score
                state.best_epoch = epoch
                state.best_state = copy.deepcopy(
                    {k: v.detach().cpu() for k, v in module.state_dict().items()}
                )
                state.bad_epochs = 0
            else:
                state.bad_epochs += 1
                if state.bad_epochs >= n_iter_no_change:
                    state.stopped = True
        record["time"] = time.perf_counter() - tic
        state.history.append(record)
        state.epoch = epoch + 1
        if verbose:
            message = f"{desc} {epoch + 1}/{n_epochs}: loss {loss:.4f}"
            if "score" in record:
                message += f", validation score {record['score']:.4f}"
            tqdm.write(message)
        if on_epoch_end is not None:
            on_epoch_end(state)
    if state.best_state is not None:
        module.load_state_dict(state.best_state)
    return state


def linear_warmup_decay(n_warmup: int, n_steps: int):
    """Learning-rate factor of step ``t``: linear warm-up, then linear decay to 0.

    For :class:`torch.optim.lr_scheduler.LambdaLR`, as in the transformer
    fine-tuning recipes (``get_linear_schedule_with_warmup``).

    Parameters
    ----------
    n_warmup : int
        Warm-up steps.
    n_steps : int
        Total steps.

    Returns
    -------
    factor : callable
        ``factor(step) -> float``.

    Examples
    --------
    >>> from skxmc.training import linear_warmup_decay
    >>> factor = linear_warmup_decay(1, 4)
    >>> [factor(t) for t in range(4)]
    [0.5, 1.0, 0.6666666666666666, 0.3333333333333333]
    """

    def factor(step: int) -> float:
        if step < n_warmup:
            return (step + 1) / (n_warmup + 1)
        return max(0.0, (n_steps - step) / max(1, n_steps - n_warmup))

    return factor
