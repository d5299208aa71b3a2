"""XRTransformerModel: engine equals facade, exact checkpoint resume, device cache."""

import pickle
import shutil

import numpy as np
import pytest
import torch
from sklearn.utils import check_random_state

from skxmc import XRTransformerClassifier
from skxmc.models import XRTransformerModel
from skxmc.nn._transformer import load_encoder
from skxmc.training import CheckpointStore, Trainer, load_checkpoint
from skxmc.utils._testing import KEYWORD_VOCABULARY, make_keyword_docs, save_tiny_bert

WORDS = [*KEYWORD_VOCABULARY, "label"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), WORDS)


@pytest.fixture(scope="module")
def data():
    return make_keyword_docs(64, seed=0), make_keyword_docs(16, seed=1)


def _clf(encoder, **params):
    # 64 rows, 16 per step: 4 steps per epoch, so 6 steps = 2 epochs per level
    defaults = {
        "max_length": 16,
        "pooling": "mean",
        "branching_factor": 2,
        "max_leaf_size": 2,
        "n_steps": 6,
        "batch_size": 16,
        "learning_rate": 1e-3,
        "head_learning_rate": 5e-2,
        "warmup": 0.2,
        "beam_size": 2,
        "device": "cpu",
        "n_jobs": 1,
        "random_state": 0,
    }
    defaults.update(params)
    return XRTransformerClassifier(encoder=encoder, **defaults)


def _facade_seed(random_state):
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _assert_same_predictions(a, b, docs):
    sa, ia = a.predict_topk(docs, k=4)
    sb, ib = b.predict_topk(docs, k=4)
    np.testing.assert_array_equal(ia, ib)
    np.testing.assert_array_equal(sa, sb)


class _Interrupt(Exception):
    pass


def _fit_interrupted(clf, docs, Y, monkeypatch, after):
    """Fit until the ``after``-th checkpoint is written, then fail."""
    real = CheckpointStore.save
    saved = []

    def save(self, payload, *, seed):
        real(self, payload, seed=seed)
        saved.append({k: payload[k] for k in ("level", "done")})
        if len(saved) == after:
            raise _Interrupt

    with monkeypatch.context() as patch:
        patch.setattr(CheckpointStore, "save", save)
        with pytest.raises(_Interrupt):
            clf.fit(docs, Y)
    return saved


def _count_steps(monkeypatch):
    real = Trainer.train_step
    steps = []

    def train_step(self, loss_fn, rows):
        steps.append(len(rows))
        return real(self, loss_fn, rows)

    monkeypatch.setattr(Trainer, "train_step", train_step)
    return steps


def test_engine_equals_facade(tiny_bert, data):
    (docs, Y), (test_docs, _) = data
    clf = _clf(tiny_bert).fit(docs, Y)
    encoder, tokenizer = load_encoder(tiny_bert)
    model = XRTransformerModel.train(
        docs,
        Y,
        encoder=encoder,
        tokenizer=tokenizer,
        **clf._engine_params(),
        seed=_facade_seed(0),
        device="cpu",
    )
    assert model.loss_curve == clf.loss_curve_
    assert model.n_epochs == clf.n_epochs_ == [2, 2, 2] and model.n_steps == [6, 6, 6]
    expected = clf.predict_topk(test_docs, k=4)
    got = model.predict_topk(test_docs, 4, beam_size=2)
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(model.transform(test_docs), clf.transform(test_docs))


@pytest.mark.parametrize(
    "after, resumed_steps",
    [
        (1, 14),  # mid-level 1 (after its first epoch): 2 + 6 + 6 steps left
        (3, 12),  # after level 1 (epoch, epoch, level): levels 2 and 3 left
        (9, 0),  # after the last level: no fine-tuning left
    ],
)
def test_interrupted_fit_resumes_to_the_uninterrupted_model(
    tiny_bert, data, tmp_path, monkeypatch, after, resumed_steps
):
    (docs, Y), (test_docs, _) = data
    reference = _clf(tiny_bert).fit(docs, Y)
    saved = _fit_interrupted(
        _clf(tiny_bert, checkpoint_dir=tmp_path), docs, Y, monkeypatch, after
    )
    expected_saves = [
        {"level": level, "done": done}
        for level in range(3)
        for done in (False, False, True)
    ]
    assert saved == expected_saves[:after]
    steps = _count_steps(monkeypatch)
    resumed = _clf(tiny_bert, checkpoint_dir=tmp_path).fit(docs, Y)
    assert len(steps) == resumed_steps
    assert resumed.loss_curve_ == reference.loss_curve_
    assert resumed.n_epochs_ == reference.n_epochs_
    assert resumed.n_iter_ == reference.n_iter_
    for (W, b), (W_ref, b_ref) in zip(
        resumed.matcher_weights_, reference.matcher_weights_
    ):
        np.testing.assert_array_equal(W, W_ref)
        np.testing.assert_array_equal(b, b_ref)
    _assert_same_predictions(resumed, reference, test_docs)
    # the finished checkpoint gives the same model again, without any step
    steps.clear()
    again = _clf(tiny_bert, checkpoint_dir=tmp_path).fit(docs, Y)
    assert steps == []
    _assert_same_predictions(again, reference, test_docs)


def test_random_state_none_resumes_with_the_stored_seed(
    tiny_bert, data, tmp_path, monkeypatch
):
    (docs, Y), (test_docs, _) = data
    _fit_interrupted(
        _clf(tiny_bert, checkpoint_dir=tmp_path, random_state=None),
        docs,
        Y,
        monkeypatch,
        after=1,
    )
    (path,) = tmp_path.iterdir()
    seed = int(load_checkpoint(path)["seed"])
    steps = _count_steps(monkeypatch)
    resumed = _clf(tiny_bert, checkpoint_dir=tmp_path, random_state=None).fit(docs, Y)
    assert len(steps) == 14  # resumed, not restarted
    assert list(tmp_path.iterdir()) == [path]
    encoder, tokenizer = load_encoder(tiny_bert)
    clf = _clf(tiny_bert, random_state=None)
    oracle = XRTransformerModel.train(
        docs,
        Y,
        encoder=encoder,
        tokenizer=tokenizer,
        **clf._engine_params(),
        seed=seed,
        device="cpu",
    )
    assert resumed.loss_curve_ == oracle.loss_curve
    got = resumed.predict_topk(test_docs, k=4)
    expected = oracle.predict_topk(test_docs, 4, beam_size=2)
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_array_equal(got[0], expected[0])


def test_changed_encoder_weights_do_not_resume(tiny_bert, data, tmp_path, monkeypatch):
    (docs, Y), _ = data
    folder = tmp_path / "encoder"
    shutil.copytree(tiny_bert, folder)
    checkpoints = tmp_path / "checkpoints"
    _fit_interrupted(
        _clf(folder, checkpoint_dir=checkpoints), docs, Y, monkeypatch, after=1
    )
    save_tiny_bert(folder, WORDS, seed=1)  # same path, other weights
    steps = _count_steps(monkeypatch)
    _clf(folder, checkpoint_dir=checkpoints).fit(docs, Y)
    assert len(steps) == 18  # every step of the 3 levels: a fresh fit
    assert len(list(checkpoints.iterdir())) == 2  # the old one is kept
    # other parameters do not resume either
    steps.clear()
    _clf(folder, checkpoint_dir=checkpoints, learning_rate=2e-3).fit(docs, Y)
    assert len(steps) == 18


def test_encoder_stays_on_its_device_and_the_cache_is_not_pickled(tiny_bert, data):
    (docs, Y), (test_docs, _) = data
    clf = _clf(tiny_bert, n_steps=2).fit(docs, Y)
    model = clf.model_
    assert model._encoder_on("cpu") is model.encoder is clf.encoder_
    # another device gets one copy, reused by every later call ("meta" stands
    # in for a GPU here)
    meta = model._encoder_on(torch.device("meta"))
    assert model._encoder_on(torch.device("meta")) is meta
    assert next(meta.parameters()).device.type == "meta"
    assert next(model.encoder.parameters()).device.type == "cpu"
    clone = pickle.loads(pickle.dumps(clf))
    assert clone.model_._encoders == {}
    assert clone.encoder_ is clone.model_.encoder  # one copy of the weights
    _assert_same_predictions(clone, clf, test_docs)


@pytest.mark.gpu
def test_encoder_stays_on_the_gpu_between_calls(tiny_bert, data):
    (docs, Y), (test_docs, _) = data
    clf = _clf(tiny_bert, n_steps=2, device="cuda").fit(docs, Y)
    device = torch.device("cuda", torch.cuda.current_device())
    on_gpu = clf.model_._encoders[str(device)]
    assert next(on_gpu.parameters()).device == device
    assert next(clf.encoder_.parameters()).device.type == "cpu"
    clf.predict_topk(test_docs, k=3)
    clf.transform(test_docs)
    assert clf.model_._encoders[str(device)] is on_gpu
    assert next(on_gpu.parameters()).device == device
