"""torchrun --nproc_per_node=2 (gloo, CPU) fits equal single-process fits.

Each fit runs tests/training/distributed_fit.py in a subprocess: once as a
plain process, once under ``python -m torch.distributed.run`` with two ranks;
both with ``OMP_NUM_THREADS=1`` (torchrun's default), so the label side
(k-means, trees) sees the same thread count. Same global batch, same seed.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from skxmc.training import get_rank, get_world_size, init_distributed, shard_rows

SCRIPT = Path(__file__).with_name("distributed_fit.py")
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="torch without distributed"
)


def _run(kind, out, n_procs, *extra):
    out.mkdir()
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    launcher = (
        [sys.executable]
        if n_procs == 1
        else [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={n_procs}",
        ]
    )
    cmd = [*launcher, str(SCRIPT), kind, str(out), *map(str, extra)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = dict(np.load(out / "result.npz"))
    assert int(result["world_size"]) == n_procs
    return result


def test_shard_rows_partitions_every_batch():
    for n in range(0, 12):
        for world in (1, 2, 3, 5):
            parts = [shard_rows(np.arange(n), r, world) for r in range(world)]
            assert np.array_equal(np.concatenate(parts), np.arange(n))
            assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_single_process_has_no_group():
    assert init_distributed("cpu") == 1
    assert get_world_size() == 1 and get_rank() == 0


@pytest.mark.slow
def test_trainer_two_ranks_equal_one_process(tmp_path):
    # sparse EmbeddingBag (SparseAdam, gathered gradients) + dense layer (DDP),
    # uneven shards (a 13-row batch) and micro-batches of 3 rows: the same
    # weights and step losses up to float summation order
    one = _run("toy", tmp_path / "one", 1)
    two = _run("toy", tmp_path / "two", 2)
    for key in ("bag", "head", "loss"):
        np.testing.assert_allclose(two[key], one[key], rtol=1e-5, atol=1e-6)
    # a fit whose ranks did not average (e.g. each training on its shard
    # alone) moves the weights far more than that
    assert np.abs(one["bag"]).max() > 1e-2


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["decaf", "eclare"])
def test_decaf_two_ranks_equal_one_process(tmp_path, kind):
    # ECLARE is DECAF plus a label graph computed alike on every rank; it is
    # run with the fixed score fusion (see distributed_fit.py)
    one = _run(kind, tmp_path / "one", 1)
    two = _run(kind, tmp_path / "two", 2)
    n_epochs = 4
    # surrogate stage (a row mean over a fixed set of clusters): exact up to
    # float summation order
    np.testing.assert_allclose(
        two["loss"][:n_epochs], one["loss"][:n_epochs], rtol=1e-6
    )
    # extreme stage: the loss is a mean over the batch's *valid* shortlist
    # entries (padding masked), not over rows, so the average of the two
    # shards' means weights entries slightly differently from the one batch
    # mean (the same holds for micro-batches in one process). The curves
    # agree to 1e-3, the scores to 5e-3; rankings only swap near-ties.
    np.testing.assert_allclose(
        two["loss"][n_epochs:], one["loss"][n_epochs:], rtol=1e-3
    )
    np.testing.assert_allclose(two["scores"], one["scores"], atol=5e-3)
    np.testing.assert_array_equal(two["indices"][:, 0], one["indices"][:, 0])
    for a, b, s in zip(one["indices"], two["indices"], one["scores"]):
        differ = a != b
        if differ.any():  # a swap of labels whose scores are within 5e-3
            assert np.ptp(s[differ]) < 5e-3


@pytest.mark.slow
def test_elias_two_ranks_equal_one_process(tmp_path):
    from skxmc.utils._testing import KEYWORD_VOCABULARY, save_tiny_bert

    bert = save_tiny_bert(tmp_path / "bert", KEYWORD_VOCABULARY, dropout=0.0)
    one = _run("elias", tmp_path / "one", 1, bert)
    two = _run("elias", tmp_path / "two", 2, bert)
    # ELIAS's loss is a mean over rows: the same fit up to summation order
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-5)
    np.testing.assert_array_equal(two["indices"], one["indices"])
    np.testing.assert_allclose(two["scores"], one["scores"], atol=1e-4)


@pytest.mark.slow
def test_xr_transformer_two_ranks_equal_one_process(tmp_path):
    from skxmc.utils._testing import KEYWORD_VOCABULARY, save_tiny_bert

    bert = save_tiny_bert(
        tmp_path / "bert", [*KEYWORD_VOCABULARY, "label"], dropout=0.0
    )
    one = _run("xr-transformer", tmp_path / "one", 1, bert)
    two = _run("xr-transformer", tmp_path / "two", 2, bert)
    # the matcher's loss is a mean over rows: the same fine-tuning up to
    # summation order, then the same ranker on (nearly) the same features
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-5)
    np.testing.assert_array_equal(two["indices"], one["indices"])
    np.testing.assert_allclose(two["scores"], one["scores"], atol=1e-4)


def test_only_rank_zero_writes_checkpoints_and_logs(tmp_path, monkeypatch, caplog):
    import logging

    from skxmc.training import CheckpointStore
    from skxmc.utils._logging import log

    store = CheckpointStore(tmp_path, "fit", "0" * 24)
    monkeypatch.setenv("RANK", "1")
    store.save({"epoch": 1}, seed=3)
    assert not store.path.exists()
    with caplog.at_level(logging.INFO, logger="skxmc"):
        log("from rank 1", verbose=1)
    monkeypatch.setenv("RANK", "0")
    CheckpointStore(tmp_path, "fit", "0" * 24).save({"epoch": 1}, seed=3)
    assert store.path.exists()
    with caplog.at_level(logging.INFO, logger="skxmc"):
        log("from rank 0", verbose=1)
    assert "from rank 0" in caplog.text and "from rank 1" not in caplog.text
