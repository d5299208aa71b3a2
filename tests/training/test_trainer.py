"""The one Trainer: oracles for its loop, schedules, OOM policy and resume."""

import gc
import weakref

import numpy as np
import pytest
import torch

from skxmc.training import Trainer, epoch_batches


def _problem(seed=0):
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(40, 5, generator=generator)
    y = X @ torch.randn(5, generator=generator)
    return X, y


def _linear(seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.nn.Linear(5, 1)


def test_trainer_equals_the_plain_loop():
    """Adam + step decay through the Trainer equals a hand-written loop."""
    X, y = _problem()
    batches = epoch_batches(40, 8, seed=3)

    model = _linear()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for epoch in range(4):
        for group in optimizer.param_groups:
            group["lr"] = 0.05 * (0.5 if epoch >= 2 else 1.0)
        for rows in batches(epoch):
            optimizer.zero_grad()
            loss = ((model(X[rows]).squeeze(1) - y[rows]) ** 2).mean()
            loss.backward()
            optimizer.step()

    other = _linear()
    trainer = Trainer(other, learning_rate=0.05, schedule="step", decay_epochs=(2,))
    trainer.fit(
        lambda rows: ((other(X[rows]).squeeze(1) - y[rows]) ** 2).mean(),
        batches,
        n_epochs=4,
    )
    for p, q in zip(model.parameters(), other.parameters()):
        assert torch.equal(p, q)
    assert trainer.state.step == 20 and len(trainer.state.history) == 4


def test_trainer_equals_fit_loop_with_sparse_embeddings():
    """Adam + SparseAdam split and step decay: the same as a hand-written loop."""

    def make():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return torch.nn.Sequential(
                torch.nn.EmbeddingBag(30, 4, mode="sum", sparse=True),
                torch.nn.Linear(4, 1),
            )

    generator = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, 30, (40, 3), generator=generator)
    y = torch.randn(40, generator=generator)
    batches = epoch_batches(40, 10, seed=0)

    def loss_of(net):
        return lambda rows: ((net(tokens[rows]).squeeze(1) - y[rows]) ** 2).mean()

    old = make()
    dense = torch.optim.Adam(old[1].parameters(), lr=0.1)
    sparse = torch.optim.SparseAdam(old[0].parameters(), lr=0.1)
    for epoch in range(4):
        for optimizer in (dense, sparse):
            for group in optimizer.param_groups:
                group["lr"] = 0.1 * (0.5 if epoch >= 2 else 1.0)
        for rows in batches(epoch):
            dense.zero_grad()
            sparse.zero_grad()
            loss_of(old)(rows).backward()
            dense.step()
            sparse.step()
    new = make()
    trainer = Trainer(new, learning_rate=0.1, schedule="step", decay_epochs=(2,))
    assert [type(o).__name__ for o in trainer.optimizers] == ["Adam", "SparseAdam"]
    trainer.fit(loss_of(new), batches, n_epochs=4)
    for p, q in zip(old.parameters(), new.parameters()):
        assert torch.equal(p, q)


def test_linear_schedule_is_transformers():
    import transformers

    model = _linear()
    trainer = Trainer(model, learning_rate=1.0, schedule="linear", warmup=0.25)
    reference = torch.optim.AdamW(_linear().parameters(), lr=1.0)
    scheduler = transformers.get_linear_schedule_with_warmup(reference, 2, 8)
    expected = []
    for _ in range(8):
        expected.append(reference.param_groups[0]["lr"])
        reference.step()
        scheduler.step()
    seen = []
    X, y = _problem()

    def loss_fn(rows):
        seen.append(trainer.optimizers[0].param_groups[0]["lr"])
        return ((model(X[rows]).squeeze(1) - y[rows]) ** 2).mean()

    trainer.fit(loss_fn, epoch_batches(40, 10, seed=0), n_epochs=2)
    assert seen == pytest.approx(expected)


def test_micro_batches_accumulate_to_the_full_batch_gradient():
    X, y = _problem()
    grads = []
    for micro in (None, 3):
        model = _linear()
        trainer = Trainer(model, micro_batch_size=micro, learning_rate=0.1)
        trainer._zero_grad()
        trainer._try_step(
            lambda rows, m=model: ((m(X[rows]).squeeze(1) - y[rows]) ** 2).mean(),
            np.arange(10),
        )
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


class _OomInBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")


def test_oom_in_backward_frees_the_failed_step_and_halves_the_micro_batch():
    X, y = _problem()
    model = _linear()
    trainer = Trainer(model, learning_rate=0.1)
    refs, sizes = [], []

    def loss_fn(rows):
        if refs:
            gc.collect()
            # at the retry no tensor of the failed step is alive
            assert all(ref() is None for ref in refs)
        out = model(X[rows]).squeeze(1)
        refs.append(weakref.ref(out))
        sizes.append(len(rows))
        if len(rows) > 4:
            out = _OomInBackward.apply(out)
        return ((out - y[rows]) ** 2).mean()

    with pytest.warns(RuntimeWarning, match="Out of memory"):
        trainer.train_step(loss_fn, np.arange(16))
    assert sizes[:4] == [16, 8, 4, 4]
    assert trainer.state.micro_batch_size == 4


def test_non_oom_errors_propagate():
    model = _linear()
    trainer = Trainer(model)

    def loss_fn(rows):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        trainer.train_step(loss_fn, np.arange(4))


def test_early_stopping_restores_the_best_epoch():
    X, y = _problem()
    model = _linear()
    scores = iter([0.1, 0.5, 0.4, 0.3, 0.2, 0.9])
    snapshots = []

    def score_fn():
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return next(scores)

    trainer = Trainer(model, learning_rate=0.1, score_fn=score_fn, n_iter_no_change=2)
    state = trainer.fit(
        lambda rows: ((model(X[rows]).squeeze(1) - y[rows]) ** 2).mean(),
        epoch_batches(40, 10, seed=0),
        n_epochs=6,
    )
    assert state.stopped and state.epoch == 4 and state.best_epoch == 1
    for key, value in model.state_dict().items():
        assert torch.equal(value, snapshots[1][key])


def test_swa_loads_the_average_of_the_late_steps():
    X, y = _problem()
    model = _linear()
    trainer = Trainer(model, learning_rate=0.1, swa_start=0.5)
    weights = []

    def on_step_loss(rows):
        return ((model(X[rows]).squeeze(1) - y[rows]) ** 2).mean()

    original = trainer.train_step

    def recording(loss_fn, rows):
        loss = original(loss_fn, rows)
        weights.append(model.weight.detach().clone())
        return loss

    trainer.train_step = recording
    trainer.fit(on_step_loss, epoch_batches(40, 10, seed=0), n_epochs=2)
    torch.testing.assert_close(model.weight, torch.stack(weights[4:]).mean(0))


def test_resume_from_state_dict_equals_an_uninterrupted_fit(tmp_path):
    from skxmc.training import load_checkpoint, save_checkpoint

    X, y = _problem()
    batches = epoch_batches(40, 8, seed=5)

    def run(model, trainer, n_epochs):
        return trainer.fit(
            lambda rows: (
                (torch.nn.functional.dropout(model(X[rows]), 0.3).squeeze(1) - y[rows])
                ** 2
            ).mean(),
            batches,
            n_epochs=n_epochs,
        )

    def make():
        model = _linear()
        return model, Trainer(
            model, learning_rate=0.05, optimizer="adamw", schedule="linear", warmup=0.2
        )

    torch.manual_seed(0)
    model, trainer = make()
    run(model, trainer, 4)
    expected = model.weight.detach().clone()

    torch.manual_seed(0)
    model, trainer = make()
    saved = []
    trainer.fit(
        lambda rows: (
            (torch.nn.functional.dropout(model(X[rows]), 0.3).squeeze(1) - y[rows]) ** 2
        ).mean(),
        batches,
        n_epochs=4,
        on_epoch_end=lambda t: (
            saved.append(t.state_dict()) if t.state.epoch == 2 else 0
        ),
    )
    save_checkpoint(tmp_path / "c.ckpt", {"trainer": saved[0]})
    torch.manual_seed(123)  # another RNG state: the checkpoint restores it
    model, trainer = make()
    trainer.load_state_dict(
        load_checkpoint(tmp_path / "c.ckpt")["trainer"], n_steps=20, steps_per_epoch=5
    )
    run(model, trainer, 4)
    assert torch.equal(model.weight, expected)


def test_cpu_steps_do_not_depend_on_the_thread_order():
    # the backward of advanced indexing (index_put_ with accumulate) sums in
    # thread order on the CPU; the same seed must still give the same weights
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        g = torch.Generator().manual_seed(0)
        idx = torch.randint(0, 500, (400_000,), generator=g)
        target = torch.randn(400_000, 16, generator=g)

        def fit_once():
            with torch.random.fork_rng(devices=[]):
                table = torch.nn.Embedding(500, 16)
            with torch.no_grad():
                table.weight.copy_(torch.randn(500, 16, generator=g.manual_seed(1)))

            def loss_fn(rows):
                return ((table.weight[idx[rows]] - target[rows]) ** 2).mean()

            Trainer(table, learning_rate=0.01).fit(
                loss_fn, lambda epoch: [np.arange(400_000)] * 3, n_epochs=1
            )
            return table.weight.detach().clone()

        first = fit_once()
        assert all(torch.equal(fit_once(), first) for _ in range(3))
        assert not torch.are_deterministic_algorithms_enabled()  # restored
    finally:
        torch.set_num_threads(previous)
