"""Training machinery: devices, seeding, data batches, loops and checkpoints.

The only place of skxmc that knows about devices.
"""

from skxmc.training._checkpoint import (
    fit_fingerprint,
    load_checkpoint,
    save_checkpoint,
)
from skxmc.training._data import (
    cluster_table,
    csr_to_bag,
    dedup_rows,
    dense_targets,
    minibatches,
    shortlist_targets,
)
from skxmc.training._device import resolve_device
from skxmc.training._loop import (
    LoopState,
    autocast,
    fit_loop,
    linear_warmup_decay,
    make_optimizers,
    run_epoch,
    train_step,
)
from skxmc.training._seed import get_rng_state, seeded_torch, set_rng_state

__all__ = [
    "LoopState",
    "autocast",
    "cluster_table",
    "csr_to_bag",
    "dedup_rows",
    "dense_targets",
    "fit_fingerprint",
    "fit_loop",
    "get_rng_state",
    "linear_warmup_decay",
    "load_checkpoint",
    "make_optimizers",
    "minibatches",
    "resolve_device",
    "run_epoch",
    "save_checkpoint",
    "seeded_torch",
    "set_rng_state",
    "shortlist_targets",
    "train_step",
]
