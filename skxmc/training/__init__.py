"""Training machinery: devices, seeding, data batches, the Trainer, checkpoints.

The only place of skxmc that knows about devices, and the only one that calls
``backward()`` and ``optimizer.step()``.
"""

from skxmc.utils._deps import require_deep

require_deep("skxmc.training")

from skxmc.training._checkpoint import (
    CheckpointStore,
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
from skxmc.training._device import (
    amp_dtype,
    autocast,
    deterministic_algorithms,
    is_oom_error,
    resolve_device,
)
from skxmc.training._distributed import (
    all_reduce_sparse_grads,
    get_rank,
    get_world_size,
    init_distributed,
    is_main_process,
    shard_rows,
)
from skxmc.training._seed import get_rng_state, seeded_torch, set_rng_state
from skxmc.training._trainer import Trainer, TrainState, epoch_batches

__all__ = [
    "CheckpointStore",
    "TrainState",
    "Trainer",
    "all_reduce_sparse_grads",
    "amp_dtype",
    "autocast",
    "cluster_table",
    "csr_to_bag",
    "dedup_rows",
    "deterministic_algorithms",
    "dense_targets",
    "epoch_batches",
    "fit_fingerprint",
    "get_rank",
    "get_rng_state",
    "get_world_size",
    "init_distributed",
    "is_main_process",
    "is_oom_error",
    "load_checkpoint",
    "minibatches",
    "resolve_device",
    "save_checkpoint",
    "seeded_torch",
    "set_rng_state",
    "shard_rows",
    "shortlist_targets",
]
