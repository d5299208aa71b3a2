"""Training machinery: batches, shortlists, seeding, checkpoints (the Trainer's
tests are in test_trainer.py)."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch import nn

from skxmc.training._checkpoint import load_checkpoint, save_checkpoint
from skxmc.training._data import (
    cluster_table,
    csr_to_bag,
    dedup_rows,
    dense_targets,
    minibatches,
    shortlist_targets,
)
from skxmc.training._device import autocast
from skxmc.training._seed import get_rng_state, seeded_torch, set_rng_state


# ---------------------------------------------------------------- data
def test_csr_to_bag_feeds_embedding_bag():
    X = sp.random(5, 7, density=0.3, format="csr", random_state=0, dtype=np.float32)
    X[2] = 0
    X.eliminate_zeros()
    readonly = X.copy()
    readonly.data.setflags(write=False)
    bag = csr_to_bag(readonly)
    assert [t.dtype for t in bag] == [torch.int64, torch.int64, torch.float32]
    E = nn.EmbeddingBag(7, 3, mode="sum")
    out = E(bag[0], bag[1], per_sample_weights=bag[2])
    ref = torch.from_numpy(X.toarray()) @ E.weight
    torch.testing.assert_close(out, ref)


def test_minibatches_cover_rows_once_and_are_seeded():
    plain = minibatches(10, 4)
    assert [len(b) for b in plain] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(plain), np.arange(10))
    a = minibatches(10, 3, torch.Generator().manual_seed(1))
    b = minibatches(10, 3, torch.Generator().manual_seed(1))
    c = minibatches(10, 3, torch.Generator().manual_seed(2))
    np.testing.assert_array_equal(np.sort(np.concatenate(a)), np.arange(10))
    np.testing.assert_array_equal(np.concatenate(a), np.concatenate(b))
    assert not np.array_equal(np.concatenate(a), np.concatenate(c))


def test_dedup_rows_against_python_sets():
    rng = np.random.default_rng(0)
    for _ in range(20):
        ids = rng.integers(-1, 6, size=(4, 5))
        out = dedup_rows(ids)
        for row, got in zip(ids, out):
            want = sorted(set(row.tolist()) - {-1})
            assert got[got >= 0].tolist() == want
            assert (got[: len(got) - len(want)] == -1).all()


def test_shortlist_targets_adds_positives_and_labels_entries():
    rng = np.random.default_rng(0)
    for _ in range(20):
        Y = sp.random(4, 9, density=0.25, format="csr", random_state=rng)
        Y.data[:] = 1
        shortlist = rng.integers(-1, 9, size=(4, 3))
        ids, targets = shortlist_targets(shortlist, Y)
        assert ids.shape == targets.shape and targets.dtype == np.float32
        for i in range(4):
            positives = set(Y[i].indices.tolist())
            valid = ids[i] >= 0
            assert (
                set(ids[i][valid].tolist())
                == (set(shortlist[i].tolist()) - {-1}) | positives
            )
            np.testing.assert_array_equal(
                targets[i], [float(j in positives and j >= 0) for j in ids[i]]
            )
        ids, targets = shortlist_targets(shortlist, Y, add_positives=False)
        for i in range(4):
            assert set(ids[i][ids[i] >= 0].tolist()) == set(shortlist[i].tolist()) - {
                -1
            }


def test_cluster_table_and_dense_targets():
    membership = sp.csr_matrix(np.array([[0, 1], [1, 0], [0, 1], [0, 1]]))
    np.testing.assert_array_equal(cluster_table(membership), [[1, -1, -1], [0, 2, 3]])
    Y = sp.csr_matrix(np.array([[0, 1.0], [1.0, 0]]))
    torch.testing.assert_close(dense_targets(Y), torch.tensor([[0, 1.0], [1.0, 0]]))


# ---------------------------------------------------------------- seeding
def test_seeded_torch_reproducible_and_restores_global_state():
    before = torch.get_rng_state()
    with seeded_torch(3):
        a = torch.rand(4)
    with seeded_torch(3):
        b = torch.rand(4)
    with seeded_torch(4):
        c = torch.rand(4)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(before, torch.get_rng_state())


def test_get_set_rng_state_roundtrip():
    with seeded_torch(0):
        state = get_rng_state()
        a = torch.rand(3)
        set_rng_state(state)
        b = torch.rand(3)
    assert torch.equal(a, b)


# ---------------------------------------------------------------- checkpoints
def test_checkpoint_roundtrip(tmp_path):
    path = tmp_path / "sub" / "ck.pt"
    save_checkpoint(path, {"epoch": 2, "w": torch.arange(3)})
    payload = load_checkpoint(path)
    assert payload["epoch"] == 2 and torch.equal(payload["w"], torch.arange(3))
    assert [p.name for p in path.parent.iterdir()] == ["ck.pt"]  # no temp file
    torch.save({"epoch": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an skxmc checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


# ---------------------------------------------------------------- autocast
def test_autocast_is_a_no_op_on_cpu():
    from contextlib import nullcontext

    assert isinstance(autocast("cpu"), nullcontext)
