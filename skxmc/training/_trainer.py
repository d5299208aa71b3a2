"""The one training loop of every torch estimator."""

from __future__ import annotations

import copy
import gc
import math
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from skxmc.training._device import (
    amp_dtype,
    deterministic_algorithms,
    is_oom_error,
)
from skxmc.training._distributed import (
    LossModule,
    all_reduce_sparse_grads,
    get_rank,
    init_distributed,
    same_on_all_ranks,
    shard_rows,
)
from skxmc.training._seed import get_rng_state, set_rng_state
from skxmc.utils._logging import log

__all__ = ["TrainState", "Trainer"]


@dataclass
class TrainState:
    """Where a :class:`Trainer` stands; saved in checkpoints to resume a fit.

    Parameters
    ----------
    epoch : int, default=0
        Epochs done.
    step : int, default=0
        Optimizer steps done.
    history : list of dict, default=[]
        One record per epoch done (``epoch``, ``loss``, ``lr``, ``time``, and
        ``score`` with a validation score).
    step_losses : list of float, default=[]
        The loss of every optimizer step.
    best_score : float, default=-inf
        Best validation score so far.
    best_epoch : int, default=-1
        Epoch of ``best_score``.
    bad_epochs : int, default=0
        Epochs since the last improvement.
    stopped : bool, default=False
        Whether early stopping ended training.
    micro_batch_size : int or None, default=None
        Rows per forward/backward pass, after out-of-memory halvings.
    """

    epoch: int = 0
    step: int = 0
    history: list[dict] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    best_score: float = -math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    stopped: bool = False
    micro_batch_size: int | None = None

    def state_dict(self) -> dict:
        return copy.deepcopy(dict(vars(self)))

    @classmethod
    def from_state_dict(cls, state: dict) -> TrainState:
        return cls(**state)


def _is_sparse_embedding(module: nn.Module) -> bool:
    return isinstance(module, (nn.Embedding, nn.EmbeddingBag)) and module.sparse


class Trainer:
    """Train a module: optimizers, schedule, mixed precision, OOM, SWA, stopping.

    Every torch estimator of skxmc trains through this class; it is the only
    place that calls ``backward()`` and ``optimizer.step()``. One optimizer
    step consumes one batch of row indices from ``make_batches(epoch)``: the
    rows are split into micro-batches of ``micro_batch_size`` rows whose
    gradients are accumulated, weighted by their share of the batch.

    - **Optimizers.** Each parameter group (``{"params": [...], "lr": x}``)
      is split into dense parameters (``optimizer``: Adam or AdamW with
      ``weight_decay``) and the weights of sparse ``nn.Embedding`` /
      ``nn.EmbeddingBag`` tables (SparseAdam); a parameter shared by several
      groups or submodules is optimised once, frozen ones not at all.
    - **Schedule** per optimizer step: ``"constant"`` and ``"linear"``
      (warm-up for ``warmup`` of the steps, then linear decay to 0) are
      transformers' schedulers; ``"step"`` multiplies the learning rate by
      ``decay_factor`` at each epoch of ``decay_epochs``.
    - **Mixed precision**: autocast to :func:`~skxmc.training.amp_dtype`
      (bfloat16 on GPUs that support it natively, float16 with a gradient
      scaler otherwise, none on the CPU).
    - **Out of memory**: the failed step's frame is left, its graph freed
      (``gc.collect()``, ``torch.cuda.empty_cache()``), the micro-batch
      halved and the step retried from scratch; at one row it re-raises.
    - **SWA**: from step ``swa_start`` on, the weights are averaged
      (:class:`torch.optim.swa_utils.AveragedModel`); the average is loaded
      at the end.
    - **Early stopping**: with ``score_fn`` (higher is better, run with the
      module in evaluation mode after every epoch), the best epoch's weights
      are kept and training stops after ``n_iter_no_change`` epochs without
      an improvement above ``tol``.

    - **Several processes** (a ``torchrun`` launch, ``WORLD_SIZE`` > 1):
      the Trainer joins the process group (:func:`init_distributed`:
      ``nccl`` on CUDA, ``gloo`` on the CPU), each rank runs the loss on its
      contiguous shard of every global batch of ``make_batches`` (weighted by
      its share, so the average is the single-process batch mean) and
      :class:`~torch.nn.parallel.DistributedDataParallel` averages the dense
      gradients; the gradients of sparse embeddings skip DDP and are
      averaged by :func:`~skxmc.training.all_reduce_sparse_grads` (gathered
      index/value pairs, on ``gloo`` and ``nccl`` alike). Micro-batches
      accumulate locally (``no_sync``) and synchronise once per step; every
      rank runs the same number of forward passes per step. Progress bars
      and log lines come from rank 0; the step losses are all-reduced, so
      :attr:`state` is the same on every rank. Out-of-memory halving is a
      single-process feature (a rank cannot retry alone): set
      ``micro_batch_size``. Module buffers are synchronised once, when DDP
      wraps the module, not at every forward (the label-feature buffers are
      large and constant). With dropout, the ranks draw their masks from
      their own streams, so a fit equals the single-process one in
      distribution, not bit for bit; without dropout it equals it up to
      floating-point summation order.

    Parameters
    ----------
    module : torch.nn.Module
        The module to train, already on ``device``.
    param_groups : list of dict or None, default=None
        Parameter groups with their own ``"lr"``; None trains every parameter
        of ``module`` at ``learning_rate``.
    learning_rate : float, default=1e-3
        Learning rate of groups without their own.
    optimizer : {"adam", "adamw"}, default="adam"
        Optimizer of the dense parameters.
    weight_decay : float, default=0.0
        Weight decay of the dense optimizer.
    schedule : {"constant", "linear", "step"}, default="constant"
        Learning-rate schedule.
    warmup : float, default=0.0
        Share of the steps spent warming up (``"constant"``, ``"linear"``).
    decay_epochs : sequence of int, default=()
        Epochs from which the learning rate is multiplied by
        ``decay_factor`` (``"step"``).
    decay_factor : float, default=0.5
        See ``decay_epochs``.
    micro_batch_size : int or None, default=None
        Rows per forward/backward pass; None: the whole batch.
    mixed_precision : bool, default=True
        Autocast on CUDA (see above); no effect on the CPU.
    swa_start : float or None, default=None
        Share of the steps after which weights are averaged; None: no SWA.
    score_fn : callable or None, default=None
        Validation score after every epoch (enables early stopping).
    n_iter_no_change : int, default=3
        Patience of early stopping, in epochs.
    tol : float, default=0.0
        Smallest improvement of the score that counts.
    device : str or torch.device, default="cpu"
        Device of the computation.
    verbose : int, default=0
        Progress bars and one log line per epoch.
    desc : str, default="train"
        Label of the progress output.

    Attributes
    ----------
    optimizers : list of torch.optim.Optimizer
        Dense optimizer first, then SparseAdam, either absent when empty.
    state : TrainState
        Progress, for checkpoints.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skxmc.training import Trainer
    >>> torch.manual_seed(0) and None
    >>> X, y = torch.randn(32, 3), torch.randn(32)
    >>> model = torch.nn.Linear(3, 1)
    >>> def loss_fn(rows):
    ...     return ((model(X[rows]).squeeze(1) - y[rows]) ** 2).mean()
    >>> trainer = Trainer(model, learning_rate=0.1)
    >>> state = trainer.fit(loss_fn, lambda epoch: np.array_split(np.arange(32), 4),
    ...                     n_epochs=5)
    >>> state.epoch, state.step, state.history[-1]["loss"] < state.history[0]["loss"]
    (5, 20, True)
    """

    def __init__(
        self,
        module: nn.Module,
        param_groups: list[dict] | None = None,
        *,
        learning_rate: float = 1e-3,
        optimizer: str = "adam",
        weight_decay: float = 0.0,
        schedule: str = "constant",
        warmup: float = 0.0,
        decay_epochs: Sequence[int] = (),
        decay_factor: float = 0.5,
        micro_batch_size: int | None = None,
        mixed_precision: bool = True,
        swa_start: float | None = None,
        score_fn: Callable[[], float] | None = None,
        n_iter_no_change: int = 3,
        tol: float = 0.0,
        device: str | torch.device = "cpu",
        verbose: int = 0,
        desc: str = "train",
    ):
        if optimizer not in ("adam", "adamw"):
            raise ValueError(f"optimizer must be 'adam' or 'adamw', got {optimizer!r}.")
        if schedule not in ("constant", "linear", "step"):
            raise ValueError(
                f"schedule must be 'constant', 'linear' or 'step', got {schedule!r}."
            )
        self.module = module
        self.device = torch.device(device)
        self.schedule = schedule
        self.warmup = warmup
        self.decay_epochs = tuple(decay_epochs)
        self.decay_factor = decay_factor
        self.swa_start = swa_start
        self.score_fn = score_fn
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.verbose = verbose
        self.desc = desc
        self.optimizers = self._make_optimizers(
            param_groups, learning_rate, optimizer, weight_decay
        )
        self.amp_dtype = amp_dtype(self.device) if mixed_precision else None
        self.scaler = (
            torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        )
        self.schedulers: list = []
        self.averaged: torch.optim.swa_utils.AveragedModel | None = None
        self.best_state: dict | None = None
        self.state = TrainState(micro_batch_size=micro_batch_size)
        self.world_size = init_distributed(self.device)
        self.rank = get_rank() if self.world_size > 1 else 0
        self._ddp = None
        self._sparse_params: list[nn.Parameter] = []
        if self.world_size > 1:
            self._wrap_ddp()

    def _wrap_ddp(self) -> None:
        """Wrap ``module`` for DDP; sparse embedding weights are left out of
        it (their gradients are averaged by :meth:`_sync_sparse`)."""
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel

        optimized = {
            id(p) for o in self.optimizers for g in o.param_groups for p in g["params"]
        }
        sparse_ids = {
            id(sub.weight) for sub in self.module.modules() if _is_sparse_embedding(sub)
        }
        wrapper = LossModule(self.module)
        ignored = [
            name for name, p in wrapper.named_parameters() if id(p) in sparse_ids
        ]
        self._sparse_params = [
            p
            for _, p in wrapper.named_parameters()
            if id(p) in sparse_ids and id(p) in optimized
        ]
        # the ignored tables start equal on every rank: rank 0's
        with torch.no_grad():
            for p in self._sparse_params:
                dist.broadcast(p.data, src=0)
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
            wrapper, ignored
        )
        import inspect

        # buffers are synchronised at wrap time only (newer torch renamed
        # the switch; both keep the initial synchronisation)
        no_forward_sync = (
            {"forward_sync_buffers": False}
            if "forward_sync_buffers"
            in inspect.signature(DistributedDataParallel).parameters
            else {"broadcast_buffers": False}
        )
        self._ddp = DistributedDataParallel(
            wrapper, device_ids=None, find_unused_parameters=True, **no_forward_sync
        )

    # ------------------------------------------------------------ set-up
    def _make_optimizers(self, param_groups, learning_rate, kind, weight_decay):
        if param_groups is None:
            param_groups = [{"params": list(self.module.parameters())}]
        sparse_ids = {
            id(sub.weight) for sub in self.module.modules() if _is_sparse_embedding(sub)
        }
        seen: set[int] = set()
        dense_groups, sparse_groups = [], []
        for group in param_groups:
            lr = group.get("lr", learning_rate)
            dense, sparse = [], []
            for p in group["params"]:
                if id(p) in seen or not p.requires_grad:
                    seen.add(id(p))
                    continue
                seen.add(id(p))
                (sparse if id(p) in sparse_ids else dense).append(p)
            if dense:
                dense_groups.append({"params": dense, "lr": lr})
            if sparse:
                sparse_groups.append({"params": sparse, "lr": lr})
        optimizers: list[torch.optim.Optimizer] = []
        if dense_groups:
            cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
            optimizers.append(cls(dense_groups, weight_decay=weight_decay))
        if sparse_groups:
            optimizers.append(torch.optim.SparseAdam(sparse_groups))
        return optimizers

    def _make_schedulers(self, n_steps: int, steps_per_epoch: int) -> list:
        if self.schedule == "step":
            milestones = [e * steps_per_epoch for e in self.decay_epochs]
            return [
                torch.optim.lr_scheduler.MultiStepLR(
                    o, milestones=milestones, gamma=self.decay_factor
                )
                for o in self.optimizers
            ]
        import transformers

        n_warmup = int(self.warmup * n_steps)
        if self.schedule == "linear":
            return [
                transformers.get_linear_schedule_with_warmup(o, n_warmup, n_steps)
                for o in self.optimizers
            ]
        return [
            transformers.get_constant_schedule_with_warmup(o, n_warmup)
            for o in self.optimizers
        ]

    # -------------------------------------------------------------- steps
    def _distributed_step(self, loss_fn, rows) -> float:
        """Forward/backward of this rank's shard; gradients averaged."""
        import torch.distributed as dist

        n = len(rows)
        mine = shard_rows(rows, self.rank, self.world_size)
        longest = -(-n // self.world_size)
        size = self.state.micro_batch_size or max(longest, 1)
        # the same number of forward passes on every rank
        n_chunks = max(1, -(-longest // size))
        bounds = np.linspace(0, len(mine), n_chunks + 1).round().astype(int)
        total = 0.0
        for i in range(n_chunks):
            chunk = mine[bounds[i] : bounds[i + 1]]
            share = len(chunk) / n
            if len(chunk) == 0:
                # a weight-0 pass over one row of the batch: DDP needs every
                # rank in every synchronised backward
                chunk = rows[:1]
            sync = i == n_chunks - 1
            context = nullcontext() if sync else self._ddp.no_sync()
            with context:
                with self._autocast():
                    loss = self._ddp(chunk, loss_fn)
                scaled = loss * (share * self.world_size)
                if self.scaler is not None:
                    scaled = self.scaler.scale(scaled)
                scaled.backward()
            total += float(loss.detach()) * share
        all_reduce_sparse_grads(self._sparse_params, self.world_size)
        summed = torch.tensor([total], dtype=torch.float64, device=self.device)
        dist.all_reduce(summed)
        return float(summed)

    def _try_step(self, loss_fn, rows) -> float | None:
        """Forward/backward over micro-batches; None on an out-of-memory error.

        Returning from here on OOM leaves this frame (and the error's
        traceback, which references it) behind, so the failed step's
        tensors can be freed before the retry.
        """
        n = len(rows)
        size = self.state.micro_batch_size or n
        total = 0.0
        try:
            for start in range(0, n, size):
                chunk = rows[start : start + size]
                with self._autocast():
                    loss = loss_fn(chunk)
                weight = len(chunk) / n
                scaled = loss if weight == 1 else loss * weight
                if self.scaler is not None:
                    scaled = self.scaler.scale(scaled)
                scaled.backward()
                total += float(loss.detach()) * weight
            return total
        except RuntimeError as exc:
            if not is_oom_error(exc) or size <= 1:
                raise
            return None

    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _zero_grad(self):
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=True)

    def train_step(self, loss_fn: Callable[[Any], torch.Tensor], rows) -> float:
        """One optimizer step on the batch ``rows``.

        Parameters
        ----------
        loss_fn : callable
            ``loss_fn(rows)`` runs the forward pass on a micro-batch (a slice
            of ``rows``) and returns its mean loss.
        rows : array-like
            The batch (sliceable: an array of row indices, usually).

        Returns
        -------
        loss : float
            The mean loss of the batch, before the step.
        """
        # On the CPU the backward of advanced indexing (index_put_ with
        # accumulate) sums in thread order: two DECAF fits with the same seed
        # on LF-FOLDOC (2 threads) differed in the last bits of every weight,
        # and at full scale in their rankings. torch's deterministic kernels
        # cost no measurable time there; on CUDA they stay opt-in
        # (deterministic_algorithms), as some CUDA ops have none.
        with deterministic_algorithms(self.device.type == "cpu"):
            return self._train_step(loss_fn, rows)

    def _train_step(self, loss_fn, rows) -> float:
        self.module.train()
        if self._ddp is not None:
            self._zero_grad()
            loss = self._distributed_step(loss_fn, rows)
        while self._ddp is None:
            self._zero_grad()
            loss = self._try_step(loss_fn, rows)
            if loss is not None:
                break
            # out of memory: the failed step's frame is gone; free its graph
            self._zero_grad()
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            size = self.state.micro_batch_size or len(rows)
            self.state.micro_batch_size = max(1, size // 2)
            warnings.warn(
                f"Out of memory: {self.desc} goes on with "
                f"{self.state.micro_batch_size} rows per forward pass "
                "(gradients are accumulated).",
                RuntimeWarning,
                stacklevel=4,
            )
        if self.scaler is not None:
            for optimizer in self.optimizers:
                self.scaler.step(optimizer)
            self.scaler.update()
        else:
            for optimizer in self.optimizers:
                optimizer.step()
        for scheduler in self.schedulers:
            scheduler.step()
        return loss

    # --------------------------------------------------------------- loop
    def fit(
        self,
        loss_fn: Callable[[Any], torch.Tensor],
        make_batches: Callable[[int], Sequence[Any]],
        *,
        n_epochs: int,
        max_steps: int | None = None,
        on_epoch_end: Callable[[Trainer], None] | None = None,
    ) -> TrainState:
        """Train for ``n_epochs`` epochs (from where :attr:`state` stands).

        Parameters
        ----------
        loss_fn : callable
            ``loss_fn(rows)``: the mean loss of a micro-batch.
        make_batches : callable
            ``make_batches(epoch)``: the batches of an epoch, a sequence of
            the same length for every epoch (it sets the schedule's length).
        n_epochs : int
            Epochs to train in all.
        max_steps : int, default=None
            Stop after this many optimizer steps in all (mid-epoch).
        on_epoch_end : callable, default=None
            ``on_epoch_end(trainer)`` after every epoch (checkpointing).

        Returns
        -------
        state : TrainState
            The final :attr:`state`.
        """
        state = self.state
        steps_per_epoch = max(1, len(make_batches(0))) if n_epochs else 1
        if self._ddp is not None:
            first = np.concatenate(
                [np.zeros(0, np.int64)]
                + [np.asarray(b).ravel() for b in make_batches(0)]
            )
            same_on_all_ranks(
                np.ascontiguousarray(first).tobytes(), "the batches", self.device
            )
        n_steps = n_epochs * steps_per_epoch
        if max_steps is not None:
            n_steps = min(n_steps, max_steps)
        if not self.schedulers:
            self.schedulers = self._make_schedulers(n_steps, steps_per_epoch)
            # the schedulers' first step already set the epoch-0 rate
        if self.swa_start is not None and self.averaged is None:
            self.averaged = torch.optim.swa_utils.AveragedModel(self.module)
        swa_step = None if self.swa_start is None else int(self.swa_start * n_steps)
        while state.epoch < n_epochs and state.step < n_steps and not state.stopped:
            epoch = state.epoch
            tic = time.perf_counter()
            total, count = 0.0, 0
            batches = make_batches(epoch)
            bar = tqdm(
                batches,
                desc=f"{self.desc} {epoch + 1}/{n_epochs}",
                disable=not self.verbose or self.rank != 0,
                leave=False,
            )
            for rows in bar:
                if state.step >= n_steps:
                    break
                loss = self.train_step(loss_fn, rows)
                state.step_losses.append(loss)
                state.step += 1
                if self.averaged is not None and state.step > swa_step:
                    self.averaged.update_parameters(self.module)
                total += loss
                count += 1
            bar.close()
            record = {
                "epoch": epoch,
                "loss": total / max(count, 1),
                "lr": [g["lr"] for o in self.optimizers for g in o.param_groups],
            }
            if self.score_fn is not None:
                self.module.eval()
                score = float(self.score_fn())
                record["score"] = score
                if score > state.best_score + self.tol:
                    state.best_score, state.best_epoch = score, epoch
                    state.bad_epochs = 0
                    self.best_state = _cpu_copy(self.module.state_dict())
                else:
                    state.bad_epochs += 1
                    state.stopped = state.bad_epochs >= self.n_iter_no_change
            record["time"] = time.perf_counter() - tic
            state.history.append(record)
            state.epoch = epoch + 1
            message = (
                f"{self.desc} epoch {epoch + 1}/{n_epochs}: loss {record['loss']:.4f}"
            )
            if "score" in record:
                message += f", validation score {record['score']:.4f}"
            log(message, verbose=self.verbose)
            if on_epoch_end is not None:
                on_epoch_end(self)
        self.finish()
        return state

    def finish(self) -> None:
        """Load the SWA average or the best epoch's weights into the module."""
        if self.averaged is not None and self.state.step > 0:
            with torch.no_grad():
                for p, q in zip(
                    self.module.parameters(), self.averaged.module.parameters()
                ):
                    p.copy_(q)
        elif self.best_state is not None:
            self.module.load_state_dict(self.best_state)
        self.module.eval()

    # -------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """Everything needed to resume: module, optimizers, schedulers,
        gradient scaler, SWA average, best weights, progress and RNG state
        (CPU tensors and plain values only)."""
        return {
            "module": _cpu_copy(self.module.state_dict()),
            "optimizers": [_cpu_copy(o.state_dict()) for o in self.optimizers],
            "schedulers": [s.state_dict() for s in self.schedulers],
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "averaged": None
            if self.averaged is None
            else _cpu_copy(self.averaged.state_dict()),
            "best_state": self.best_state,
            "progress": self.state.state_dict(),
            "rng": get_rng_state(self.device),
        }

    def load_state_dict(self, saved: dict, *, n_steps: int, steps_per_epoch: int):
        """Resume from :meth:`state_dict` (saved tensors may be on the CPU).

        Parameters
        ----------
        saved : dict
            From :meth:`state_dict`.
        n_steps : int
            Total optimizer steps of the fit (rebuilds the schedule).
        steps_per_epoch : int
            Optimizer steps per epoch.
        """
        self.module.load_state_dict(saved["module"])
        # schedulers first: building one resets the learning rates, which the
        # optimizers' saved state then restores
        self.schedulers = self._make_schedulers(n_steps, steps_per_epoch)
        for optimizer, state in zip(self.optimizers, saved["optimizers"]):
            optimizer.load_state_dict(state)  # moves state to the params' device
        for scheduler, state in zip(self.schedulers, saved["schedulers"]):
            scheduler.load_state_dict(state)
        if self.scaler is not None and saved["scaler"] is not None:
            self.scaler.load_state_dict(saved["scaler"])
        if saved["averaged"] is not None:
            self.averaged = torch.optim.swa_utils.AveragedModel(self.module)
            self.averaged.load_state_dict(saved["averaged"])
        self.best_state = saved["best_state"]
        self.state = TrainState.from_state_dict(saved["progress"])
        set_rng_state(saved["rng"], self.device)


def _cpu_copy(obj):
    """A deep copy of a (nested) state dict with every tensor on the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu_copy(v) for v in obj)
    return copy.deepcopy(obj)


def epoch_batches(
    n_rows: int, batch_size: int, seed: int
) -> Callable[[int], list[np.ndarray]]:
    """``make_batches`` for :meth:`Trainer.fit`: a fresh shuffle every epoch.

    Epoch ``e`` permutes the rows with a generator seeded from ``(seed, e)``,
    so the order of any epoch is known without replaying the others (a
    resumed fit sees the same batches).

    Parameters
    ----------
    n_rows : int
        Rows to batch.
    batch_size : int
        Rows per batch (the last one may be smaller).
    seed : int
        Seed of the shuffles.

    Returns
    -------
    make_batches : callable
        ``make_batches(epoch) -> list of ndarray``.

    Examples
    --------
    >>> from skxmc.training import epoch_batches
    >>> make = epoch_batches(5, 2, seed=0)
    >>> [len(b) for b in make(0)], sorted(map(int, np.concatenate(make(1))))
    ([2, 2, 1], [0, 1, 2, 3, 4])
    """

    def make_batches(epoch: int) -> list[np.ndarray]:
        order = np.random.default_rng([seed, epoch]).permutation(n_rows)
        return [order[i : i + batch_size] for i in range(0, n_rows, batch_size)]

    return make_batches
