"""EliasModel, the engine behind EliasClassifier, on a tiny BERT."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.utils import check_random_state

from skxmc import EliasClassifier
from skxmc.models import EliasConfig, EliasModel
from skxmc.nn._transformer import load_encoder
from skxmc.training import CheckpointStore
from skxmc.utils._testing import KEYWORD_VOCABULARY, make_keyword_docs, save_tiny_bert

PARAMS = {
    "max_length": 16,
    "pooling": "mean",
    "dropout": 0.1,
    "max_leaf_size": 2,
    "kappa": 3,
    "beam_size": 2,
    "shortlist_size": 5,
    "alpha": 3.0,
    "beta": 3.0,
    "n_epochs": (2, 2),
    "batch_size": 16,
    "learning_rate": 1e-3,
    "head_learning_rate": 5e-2,
    "n_jobs": 1,
}


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), KEYWORD_VOCABULARY)


@pytest.fixture(scope="module")
def data():
    return make_keyword_docs(48, seed=0), make_keyword_docs(16, seed=1)


def _config(**params):
    params = {**PARAMS, **params}
    for name in ("learning_rate", "head_learning_rate"):
        params[name] = (params[name], params[name])
    return EliasConfig(**{**params, "loss_lambda": (0.01, 0.05)})


def _train(tiny_bert, docs, Y, seed, store=None, **params):
    encoder, tokenizer = load_encoder(tiny_bert)
    return EliasModel.train(
        docs,
        Y,
        encoder=encoder,
        tokenizer=tokenizer,
        config=_config(**params),
        seed=seed,
        store=store,
    )


def _assert_same_model(a, b, test_docs):
    assert a.loss_curve == b.loss_curve
    for p, q in zip(a.network.state_dict().values(), b.network.state_dict().values()):
        assert torch.equal(p, q)
    sa, la = a.predict_topk(test_docs, 4)
    sb, lb = b.predict_topk(test_docs, 4)
    np.testing.assert_array_equal(la, lb)
    np.testing.assert_array_equal(sa, sb)


@pytest.fixture(scope="module")
def trained(tiny_bert, data):
    (docs, Y), _ = data
    return _train(tiny_bert, docs, Y, seed=11)


def test_engine_equals_the_facade(tiny_bert, data):
    (docs, Y), (test_docs, _) = data
    # reranker=None: the engine config's default (the facade's is "shortlist")
    clf = EliasClassifier(
        encoder=tiny_bert, **PARAMS, reranker=None, device="cpu", random_state=0
    )
    clf.fit(docs, Y)
    seed = int(check_random_state(0).randint(np.iinfo(np.int32).max))
    model = _train(tiny_bert, docs, Y, seed=seed)
    _assert_same_model(clf.model_, model, test_docs)
    np.testing.assert_array_equal(
        clf.predict_topk(test_docs, k=4)[1], model.predict_topk(test_docs, 4)[1]
    )
    np.testing.assert_allclose(clf.transform(test_docs), model.transform(test_docs))
    assert clf.network_ is clf.model_.network
    assert clf.loss_curve_ == model.loss_curve and len(model.loss_curve) == 2 + 2


def test_loss_curve_holds_the_epoch_means_of_both_stages(trained):
    assert len(trained.loss_curve) == 4
    assert all(np.isfinite(trained.loss_curve))
    assert set(trained.fit_times) == {
        "tfidf",
        "clustering",
        "stage1",
        "reestimate",
        "stage2",
    }


@pytest.mark.parametrize("crash_after", [1, 3])  # saves: 2 in stage 1, 2 in stage 2
def test_interrupted_then_resumed_equals_uninterrupted(
    tiny_bert, data, trained, tmp_path, monkeypatch, crash_after
):
    """An exception at the end of an epoch (just after its checkpoint), then a
    fit with the same store: the same model as an uninterrupted fit, also when
    the seed comes back from the store (random_state=None)."""
    (docs, Y), (test_docs, _) = data
    real_save = CheckpointStore.save
    saved = []

    def save_then_crash(self, payload, *, seed):
        real_save(self, payload, seed=seed)
        saved.append(payload["stage"])
        if len(saved) == crash_after:
            raise KeyboardInterrupt

    monkeypatch.setattr(CheckpointStore, "save", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        _train(tiny_bert, docs, Y, 11, CheckpointStore(tmp_path, "elias", "f" * 64))
    assert saved[-1] == (0 if crash_after <= 2 else 1)
    monkeypatch.setattr(CheckpointStore, "save", real_save)

    store = CheckpointStore(tmp_path, "elias", "f" * 64)
    seed = store.resume_seed(12345)  # a fresh random_state=None draw
    assert seed == 11
    resumed = _train(tiny_bert, docs, Y, seed, store)
    assert ("stage1" in resumed.fit_times) == (crash_after <= 2)
    _assert_same_model(resumed, trained, test_docs)


def test_a_finished_checkpoint_skips_training(tiny_bert, data, trained, tmp_path):
    (docs, Y), (test_docs, _) = data
    store = CheckpointStore(tmp_path, "elias", "e" * 64)
    first = _train(tiny_bert, docs, Y, 11, store)
    payload = store.load()
    assert payload["stage"] == 1 and payload["trainer"]["progress"]["epoch"] == 2
    assert payload["loss_curve"] == first.loss_curve
    assert payload["adjacency"]["index"].shape == (4, 3)
    again = _train(tiny_bert, docs, Y, 11, CheckpointStore(tmp_path, "elias", "e" * 64))
    assert set(again.fit_times) == {"tfidf", "clustering", "stage2"}
    _assert_same_model(again, first, test_docs)
    _assert_same_model(again, trained, test_docs)


def test_pickling_drops_the_device_copy(trained, data):
    _, (test_docs, _) = data
    expected = trained.predict_topk(test_docs, 3)
    trained._device_cache = (torch.device("cuda", 0), torch.nn.Linear(1, 1))
    try:
        clone = pickle.loads(pickle.dumps(trained))
    finally:
        trained._device_cache = None
    assert clone._device_cache is None
    got = clone.predict_topk(test_docs, 3)
    np.testing.assert_array_equal(got[1], expected[1])
    assert trained.network_on("cpu") is trained.network


def test_stage_with_no_epochs_is_skipped(tiny_bert, data):
    (docs, Y), (test_docs, _) = data
    model = _train(tiny_bert, docs, Y, 3, n_epochs=(0, 1))
    assert len(model.loss_curve) == 1
    assert model.network.learn_adjacency
    assert model.predict_topk(test_docs, 2)[1].shape == (16, 2)


@pytest.mark.gpu
def test_the_network_stays_on_its_device_between_calls(tiny_bert, data):
    (docs, Y), (test_docs, _) = data
    encoder, tokenizer = load_encoder(tiny_bert)
    model = EliasModel.train(
        docs,
        Y,
        encoder=encoder,
        tokenizer=tokenizer,
        config=_config(),
        seed=0,
        device="cuda:0",
    )
    assert next(model.network.parameters()).device.type == "cpu"
    device, net = model._device_cache  # the trained copy, left on the GPU
    assert device == torch.device("cuda", 0)
    assert next(net.parameters()).device == device
    first = model.predict_topk(test_docs, 3, device="cuda:0")
    model.transform(test_docs, device="cuda:0")
    second = model.predict_topk(test_docs, 3, device="cuda:0")
    assert model._device_cache[1] is net  # not moved back and forth
    assert next(net.parameters()).device == device
    np.testing.assert_array_equal(first[1], second[1])
    cpu = model.predict_topk(test_docs, 3, device="cpu")
    np.testing.assert_array_equal(cpu[1][:, 0], first[1][:, 0])
    assert pickle.loads(pickle.dumps(model))._device_cache is None


def _batch_oracle(net, token_ids, pad_id, batch_size, fn):
    """``fn(emb)`` of every batch of ``token_ids``, concatenated (the old code)."""
    from skxmc.nn._transformer import collate

    parts = []
    with torch.inference_mode():
        for start in range(0, len(token_ids), batch_size):
            ids, mask = collate(token_ids[start : start + batch_size], pad_id)
            parts.append([t.numpy() for t in fn(net.embed(ids, mask).float())])
    return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]


@pytest.mark.parametrize(
    ("batch_size", "out_of_memory", "batches_of"),
    [(5, False, 5), (5, True, 2), (64, False, 64)],
)
def test_batched_outputs_written_in_place_equal_the_concatenated_batches(
    trained, data, batch_size, out_of_memory, batches_of, monkeypatch
):
    # issue 15: elias_topk and the cluster-score matrix M fill arrays
    # allocated once instead of concatenating per-batch results (which kept
    # memory resident); the numbers must be those of each batch, exactly,
    # also when a batch is retried after an out-of-memory error
    import skxmc.models._elias as engine
    from skxmc.nn._transformer import tokenize

    _, (docs, _) = data
    net = trained.network.eval()
    pad_id = trained.tokenizer.pad_token_id or 0
    token_ids = tokenize(trained.tokenizer, docs, trained.config.max_length)
    config = trained.config

    def predict(emb):
        return (*net.predict(emb, config.beam_size, config.shortlist_size, 4), emb)

    def top_clusters(emb):
        top = net.cluster_scores(emb).topk(config.beam_size, dim=1)
        return top.values, top.indices

    embed, failed = engine._embed, []

    def embed_once_out_of_memory(net, input_ids, mask):
        if out_of_memory and len(input_ids) == 5 and not failed:
            failed.append(True)
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return embed(net, input_ids, mask)

    monkeypatch.setattr(engine, "_embed", embed_once_out_of_memory)
    scores, labels, emb = trained.elias_topk(
        token_ids, 4, batch_size=batch_size, with_embeddings=True
    )
    assert failed == ([True] if out_of_memory else [])  # then batches of 2
    expected = _batch_oracle(net, token_ids, pad_id, batches_of, predict)
    for got, want in zip((scores, labels, emb), expected, strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(
        trained.elias_topk(token_ids, 4, batch_size=batches_of)[1], labels
    )

    M = engine._cluster_scores_matrix(
        net, token_ids, config.beam_size, batches_of, pad_id, torch.device("cpu")
    )
    values, cols = _batch_oracle(net, token_ids, pad_id, batches_of, top_clusters)
    assert M.shape == (len(docs), net.n_clusters) and M.dtype == np.float32
    np.testing.assert_array_equal(M.indices.reshape(cols.shape), cols)
    np.testing.assert_array_equal(M.data.reshape(values.shape), values)


def test_batched_outputs_of_no_documents_are_empty(trained):
    scores, labels, emb = trained.elias_topk([], 3, with_embeddings=True)
    hidden = trained.network.encoder.config.hidden_size
    assert (scores.shape, labels.shape, emb.shape) == ((0, 3), (0, 3), (0, hidden))
    assert (scores.dtype, labels.dtype, emb.dtype) == (
        np.float32,
        np.int64,
        np.float32,
    )
    assert trained.elias_topk([], 3)[0].shape == (0, 3)


# ------------------------------------------------- re-rankers and fusion
def _elias_lists(model, docs, size):
    from skxmc.nn._transformer import tokenize

    token_ids = tokenize(model.tokenizer, docs, model.config.max_length)
    return model.elias_topk(token_ids, size, with_embeddings=True)


def _union(a, b):
    return [sorted(set(r) | set(s)) for r, s in zip(a.tolist(), b.tolist())]


def test_scores_of_equals_a_dictionary_lookup():
    from skxmc.models._elias import _scores_of

    rng = np.random.default_rng(0)
    for _ in range(20):
        n, m, n_labels = rng.integers(1, 6), rng.integers(1, 7), rng.integers(1, 9)
        candidates = np.full((n, m), -1, dtype=np.int64)
        scores = np.full((n, m), -np.inf, dtype=np.float32)
        for i in range(n):
            size = rng.integers(0, min(m, n_labels) + 1)
            candidates[i, :size] = rng.choice(n_labels, size, replace=False)
            scores[i, :size] = rng.random(size)
        ids = rng.integers(-1, n_labels, size=(n, rng.integers(1, 9)))
        out = _scores_of(ids, candidates, scores, int(n_labels))
        for i in range(n):
            table = {c: s for c, s in zip(candidates[i], scores[i]) if c >= 0}
            expected = [table.get(j, 0.0) if j >= 0 else 0.0 for j in ids[i]]
            np.testing.assert_array_equal(out[i], np.float32(expected))


@pytest.fixture(scope="module")
def xr_reranked(tiny_bert, data):
    (docs, Y), _ = data
    return _train(
        tiny_bert, docs, Y, seed=11, reranker="xr-linear", rerank_size=3,
        reranker_params={"C": 10.0},
    )  # fmt: skip


def test_xr_linear_reranker_leaves_the_elias_fit_unchanged(xr_reranked, trained):
    from skxmc.indexing import XRLinearModel

    assert isinstance(xr_reranked.reranker, XRLinearModel)
    assert xr_reranked.fusion is None and "reranker" in xr_reranked.fit_times
    for p, q in zip(
        xr_reranked.network.state_dict().values(),
        trained.network.state_dict().values(),
    ):
        assert torch.equal(p, q)


def test_xr_linear_weights_fusion_is_the_literal_sum_over_both_lists(xr_reranked, data):
    _, (docs, _) = data
    model, size, w = xr_reranked, 4, 0.3  # max(k, rerank_size)
    elias, candidates, _ = _elias_lists(model, docs, size)
    X = model.vectorizer.transform(docs)
    _, proposed = model.reranker.predict_topk(X, k=size)
    union = _union(candidates, proposed)
    scores, labels = model.predict_topk(docs, 4, rerank_weight=w)
    for i, ids in enumerate(union):
        ids = [j for j in ids if j >= 0]
        own = dict(zip(candidates[i].tolist(), elias[i].tolist()))
        xr = model.reranker.score_pairs(X[i], np.array([ids]))[0]
        fused = {j: (1 - w) * own.get(j, 0.0) + w * x for j, x in zip(ids, xr)}
        best = sorted(fused.values(), reverse=True)[:4]
        np.testing.assert_allclose(scores[i, : len(best)], best, rtol=1e-5)
        assert all(np.isclose(fused[j], s, rtol=1e-5) for j, s in
                   zip(labels[i], scores[i]) if j >= 0)  # fmt: skip
        assert set(labels[i][labels[i] >= 0]) <= set(ids)


@pytest.fixture(scope="module")
def fused(tiny_bert, data):
    (docs, Y), _ = data
    return _train(
        tiny_bert, docs, Y, seed=11, reranker="xr-linear", rerank_size=3,
        reranker_params={"C": 10.0}, fusion="learned", fusion_fraction=0.25,
    )  # fmt: skip


def test_learned_fusion_rows_are_held_out_of_everything_else(fused, tiny_bert, data):
    from skxmc.training._data import hold_out_rows

    (docs, Y), (test_docs, _) = data
    _, kept = hold_out_rows(np.arange(len(docs)), 0.25, 12, "fusion_fraction")
    alone = _train(
        tiny_bert, [docs[i] for i in kept], Y[kept], seed=11, reranker="xr-linear",
        rerank_size=3, reranker_params={"C": 10.0},
    )  # fmt: skip
    assert fused.loss_curve == alone.loss_curve
    for p, q in zip(
        fused.network.state_dict().values(), alone.network.state_dict().values()
    ):
        assert torch.equal(p, q)
    assert fused.vectorizer.vocabulary_ == alone.vectorizer.vocabulary_
    X = alone.vectorizer.transform(test_docs)
    np.testing.assert_array_equal(
        fused.reranker.predict_topk(X, k=3)[1], alone.reranker.predict_topk(X, k=3)[1]
    )
    np.testing.assert_allclose(
        np.expm1(fused.log_frequency), np.asarray(Y[kept].sum(0)).ravel(), rtol=1e-5
    )
    assert "fusion" in fused.fit_times


def test_learned_fusion_scores_its_literal_features(fused, data):
    _, (docs, _) = data
    model, size = fused, 4  # max(k, rerank_size)
    elias, candidates, emb = _elias_lists(model, docs, size)
    X = model.vectorizer.transform(docs)
    _, proposed = model.reranker.predict_topk(X, k=size)
    union = _union(candidates, proposed)
    width = max(len(u) for u in union)
    ids = np.full((len(docs), width), -1, dtype=np.int64)
    features = np.zeros((len(docs), width, 4), dtype=np.float32)
    W = model.network.label_weight.detach().numpy()
    b = model.network.label_bias.detach().numpy()
    for i, row in enumerate(union):
        own = dict(zip(candidates[i].tolist(), elias[i].tolist()))
        ids[i, width - len(row) :] = row  # dedup_rows pads at the front
        xr = model.reranker.score_pairs(X[i], np.array([row]))[0]
        for slot, (j, x) in enumerate(zip(row, xr), start=width - len(row)):
            label = 1 / (1 + np.exp(-(W[j] @ emb[i] + b[j])))
            features[i, slot] = [own.get(j, 0.0), label, model.log_frequency[j], x]
    expected = model.fusion.predict(features, ids)
    scores, labels = model.predict_topk(docs, 4)
    for i in range(len(docs)):
        order = np.argsort(-expected[i], kind="stable")[:4]
        np.testing.assert_allclose(scores[i], expected[i][order], rtol=1e-4, atol=1e-6)
        assert set(labels[i]) <= set(ids[i]) | {-1}
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_topk(docs, 4)[1], labels)


def test_a_model_pickled_before_the_fusion_loads(trained, data):
    _, (docs, _) = data
    state = trained.__getstate__()
    del state["fusion"], state["log_frequency"]
    old = EliasModel.__new__(EliasModel)
    old.__setstate__(state)
    assert old.fusion is None
    np.testing.assert_array_equal(
        old.predict_topk(docs, 4)[1], trained.predict_topk(docs, 4)[1]
    )


def test_unknown_reranker_or_fusion_is_an_error(tiny_bert, data):
    (docs, Y), _ = data
    with pytest.raises(ValueError, match="reranker must be None or one of"):
        _train(tiny_bert, docs, Y, seed=0, reranker="dense")
    with pytest.raises(ValueError, match="fusion must be one of"):
        _train(tiny_bert, docs, Y, seed=0, fusion="mean")
