"""Training machinery: batches, shortlists, seeding, checkpoints, the loop."""

import copy

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
from skxmc.training._loop import (
    LoopState,
    autocast,
    fit_loop,
    make_optimizers,
    run_epoch,
    train_step,
)
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


# ---------------------------------------------------------------- loop
class _Toy(nn.Module):
    """Linear regression with a sparse embedding table as a bias per row id."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)
        self.row_bias = nn.Embedding(8, 1, sparse=True)
        self.dropout = nn.Dropout(0.1)

    def forward(self, x, ids):
        return self.linear(self.dropout(x)).squeeze(-1) + self.row_bias(ids)[:, 0]


def _toy_problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(64, 3, generator=g)
    y = X @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    ids = torch.arange(64) % 8
    return X, y, ids


def _toy_loss(model, X, y, ids):
    def loss_fn(batch):
        return ((model(X[batch], ids[batch]) - y[batch]) ** 2).mean()

    return loss_fn


def test_make_optimizers_splits_dense_and_sparse():
    model = _Toy()
    model.shared = model.row_bias  # the same table twice: one optimizer entry
    optimizers = make_optimizers(model, 0.1)
    kinds = [type(o).__name__ for o in optimizers]
    assert kinds == ["Adam", "SparseAdam"]
    dense = {id(p) for g in optimizers[0].param_groups for p in g["params"]}
    sparse = [p for g in optimizers[1].param_groups for p in g["params"]]
    assert len(sparse) == 1 and sparse[0] is model.row_bias.weight
    assert dense == {id(model.linear.weight), id(model.linear.bias)}
    assert optimizers[0].param_groups[0]["initial_lr"] == 0.1
    frozen = make_optimizers(model, 0.1, exclude=[model.row_bias.weight])
    assert [type(o).__name__ for o in frozen] == ["Adam"]


def test_autocast_is_a_no_op_on_cpu():
    with autocast(torch.device("cpu")):
        out = torch.ones(2, 2) @ torch.ones(2, 2)
    assert out.dtype == torch.float32


def test_train_step_and_run_epoch_reduce_the_loss():
    with seeded_torch(0):
        X, y, ids = _toy_problem()
        model = _Toy()
        loss_fn = _toy_loss(model, X, y, ids)
        optimizers = make_optimizers(model, 0.05)
        first = train_step(model, loss_fn, torch.arange(64), optimizers)
        assert model.training
        batches = [torch.arange(i, i + 16) for i in range(0, 64, 16)]
        for _ in range(30):
            last = run_epoch(model, loss_fn, batches, optimizers)
    assert last < 0.2 * first


def _fit(n_epochs, state=None, checkpoints=None, score_fn=None, **kwargs):
    with seeded_torch(0):
        X, y, ids = _toy_problem()
        model = _Toy()
        optimizers = make_optimizers(model, 0.05)
        if state is not None:
            model.load_state_dict(state["model"])
            for o, s in zip(optimizers, state["optimizers"]):
                o.load_state_dict(s)
            set_rng_state(state["rng"])
            loop = LoopState.from_state_dict(state["loop"])
        else:
            loop = None

        def make_batches(epoch):
            g = torch.Generator().manual_seed(epoch)
            return [torch.from_numpy(b) for b in minibatches(64, 16, g)]

        def on_epoch_end(loop_state):
            if checkpoints is not None:
                checkpoints.append(
                    {
                        "model": {k: v.clone() for k, v in model.state_dict().items()},
                        "optimizers": copy.deepcopy(
                            [o.state_dict() for o in optimizers]
                        ),
                        "rng": get_rng_state(),
                        "loop": loop_state.state_dict(),
                    }
                )

        loop = fit_loop(
            model,
            _toy_loss(model, X, y, ids),
            make_batches,
            optimizers,
            n_epochs=n_epochs,
            state=loop,
            on_epoch_end=on_epoch_end,
            score_fn=None if score_fn is None else (lambda: score_fn(model)),
            **kwargs,
        )
    return model, loop


def test_fit_loop_history_and_lr_decay():
    _, loop = _fit(4, lr_decay_epochs=(2,), lr_decay=0.5)
    assert [r["epoch"] for r in loop.history] == [0, 1, 2, 3]
    assert [r["lr_factor"] for r in loop.history] == [1, 1, 0.5, 0.5]
    assert loop.history[-1]["loss"] < loop.history[0]["loss"]
    assert loop.epoch == 4 and not loop.stopped


def test_fit_loop_resume_equals_uninterrupted():
    checkpoints = []
    full, _ = _fit(5, checkpoints=checkpoints)
    resumed, loop = _fit(5, state=checkpoints[1])
    assert loop.epoch == 5
    for name, value in full.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, rtol=0, atol=0)


def test_fit_loop_early_stopping_restores_best_state():
    scores = iter([0.1, 0.5, 0.4, 0.3, 0.9])
    snapshots = []

    def score_fn(model):
        assert not model.training
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return next(scores)

    model, loop = _fit(10, score_fn=score_fn, n_iter_no_change=2)
    assert loop.stopped and loop.epoch == 4
    assert loop.best_epoch == 1 and loop.best_score == 0.5
    for name, value in snapshots[1].items():
        torch.testing.assert_close(model.state_dict()[name], value)
    assert [r["score"] for r in loop.history] == [0.1, 0.5, 0.4, 0.3]
