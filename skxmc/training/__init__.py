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
from skxmc.training._seed import get_rng_state, seeded_torch, set_rng_state
from skxmc.training._trainer import Trainer, TrainState, epoch_batches

__all__ = [
    "CheckpointStore",
    "TrainState",
    "Trainer",
    "amp_dtype",
    "autocast",
    "cluster_table",
    "csr_to_bag",
    "dedup_rows",
    "deterministic_algorithms",
    "dense_targets",
    "epoch_batches",
    "fit_fingerprint",
    "get_rng_state",
    "is_oom_error",
    "load_checkpoint",
    "minibatches",
    "resolve_device",
    "save_checkpoint",
    "seeded_torch",
    "set_rng_state",
    "shortlist_targets",
]
