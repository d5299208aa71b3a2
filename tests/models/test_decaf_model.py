"""DecafModel, the engine of DecafClassifier and EclareClassifier."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skxmc import DecafClassifier, EclareClassifier, LabelInfo
from skxmc.datasets import make_xmc_classification
from skxmc.indexing import propagate_topk
from skxmc.models import DecafConfig, DecafModel, DecafScoring, LabelGraphComponent
from skxmc.training import CheckpointStore, Trainer

PARAMS = {
    "embedding_dim": 16,
    "n_epochs": 4,
    "batch_size": 32,
    "learning_rate": 0.02,
    "max_leaf_size": 4,
    "beam_size": 3,
    "text_shortlist_size": 4,
    "fusion": "learned",
    "fusion_fraction": 0.25,
    "reranker": None,  # the engine's default, not the facade's
    "random_state": 0,
}


@pytest.fixture(scope="module")
def data():
    d = make_xmc_classification(
        n_samples=200, n_labels=24, n_features=100, return_text=True, random_state=0
    )
    return {"text": d.text, "Y": d.Y, "info": LabelInfo(text=d.label_text)}


def _config(**changes):
    params = {**PARAMS, **changes}
    scoring = DecafScoring(
        beam_size=params.pop("beam_size"),
        text_shortlist_size=params.pop("text_shortlist_size"),
        graph_shortlist_size=params.pop("graph_shortlist_size", 0),
    )
    params.pop("random_state")
    return DecafConfig(**params, scoring=scoring)


def _seed(random_state=0):
    return int(np.random.RandomState(random_state).randint(np.iinfo(np.int32).max))


@pytest.mark.parametrize("eclare", [False, True], ids=["decaf", "eclare"])
def test_engine_equals_facade(data, eclare):
    """The engine trained on the facade's features with the facade's seed is
    the facade's model: same scores, same labels, same loss curve."""
    X, Y, info = data["text"][:160], data["Y"][:160], data["info"]
    cls = EclareClassifier if eclare else DecafClassifier
    extra = {"graph_shortlist_size": 6} if eclare else {}
    clf = cls(**PARAMS, **extra).fit(X, Y, label_info=info)
    features = clf.vectorizer_.transform(X)
    label_features = clf.vectorizer_.transform(info.text)
    graph = None
    if eclare:
        graph = LabelGraphComponent(walk_length=400, restart_prob=0.8, n_neighbors=10)
    model = DecafModel.train(
        features,
        Y,
        label_features,
        config=_config(**extra),
        seed=_seed(),
        label_graph=graph,
    )
    queries = clf.vectorizer_.transform(data["text"][160:])
    expected = clf.predict_topk(data["text"][160:], k=5)
    got = model.predict_topk(queries, 5)
    np.testing.assert_array_equal(expected[0], got[0])
    np.testing.assert_array_equal(expected[1], got[1])
    assert model.loss_curve_ == clf.loss_curve_
    if eclare:
        assert (model.label_graph.graph != clf.label_graph_).nnz == 0


@pytest.fixture(scope="module")
def model(data):
    X, Y, info = data["text"][:160], data["Y"][:160], data["info"]
    clf = DecafClassifier(**{**PARAMS, "n_epochs": 2}, device="cpu")
    return clf.fit(X, Y, label_info=info)


def test_label_weights_are_cached_per_device(data, model, monkeypatch):
    engine = model.model_
    assert set(engine._weights_cache) == {torch.device("cpu")}
    calls = []
    original = DecafModel._all_weights

    def counting(self):
        calls.append(1)
        return original(self)

    monkeypatch.setattr(DecafModel, "_all_weights", counting)
    first = model.predict_topk(data["text"][160:], k=5)
    second = model.predict_topk(data["text"][160:], k=5)
    assert calls == []  # never recomputed between predict calls
    np.testing.assert_array_equal(first[0], second[0])
    # pickling drops the device copies; the first predict rebuilds them once
    loaded = pickle.loads(pickle.dumps(model))
    assert loaded.model_._weights_cache == {}
    third = loaded.predict_topk(data["text"][160:], k=5)
    loaded.predict_topk(data["text"][160:], k=5)
    assert calls == [1]
    np.testing.assert_array_equal(first[0], third[0])
    np.testing.assert_array_equal(first[1], third[1])


def test_scoring_changes_after_training(data, model):
    """Prediction knobs come with each call, not from the training config."""
    engine = model.model_
    X = model.vectorizer_.transform(data["text"][160:])
    full = engine.full_scores(X, scoring=DecafScoring(propensity_tilt=0.5))
    plain = engine.full_scores(X)
    weights = engine._inv_propensity / engine._inv_propensity.max()
    np.testing.assert_allclose(full, plain * weights**0.5, rtol=1e-5)
    wide = DecafScoring(beam_size=engine.n_clusters_, text_shortlist_size=4)
    scores, _ = engine.predict_topk(X, 5, scoring=wide)
    np.testing.assert_allclose(
        scores, -np.sort(-plain, axis=1)[:, :5], rtol=1e-5, atol=1e-6
    )


def test_a_completed_checkpoint_trains_nothing(data, model, tmp_path, monkeypatch):
    X = model.vectorizer_.transform(data["text"][:160])
    Z = model.vectorizer_.transform(data["info"].text)
    Y = data["Y"][:160]
    config = _config(n_epochs=2)
    store = CheckpointStore(tmp_path, "decaf", "0" * 64)
    first = DecafModel.train(X, Y, Z, config=config, seed=3, checkpoint=store)
    payload = CheckpointStore(tmp_path, "decaf", "0" * 64).load()
    assert set(payload) == {"stage", "trainer", "loss_curve", "seed"}
    assert payload["stage"] == 1 and payload["seed"] == 3
    assert payload["loss_curve"] == first.loss_curve_
    steps = []
    original = Trainer.train_step

    def counting(self, loss_fn, rows):
        steps.append(len(rows))
        return original(self, loss_fn, rows)

    monkeypatch.setattr(Trainer, "train_step", counting)
    store = CheckpointStore(tmp_path, "decaf", "0" * 64)
    again = DecafModel.train(X, Y, Z, config=config, seed=3, checkpoint=store)
    assert steps == []
    queries = model.vectorizer_.transform(data["text"][160:])
    np.testing.assert_array_equal(
        first.predict_topk(queries, 5)[0], again.predict_topk(queries, 5)[0]
    )


def test_label_graph_component(data):
    Y = sp.csr_matrix(data["Y"][:160], dtype=np.float32)
    graph = sp.random(24, 24, density=0.2, format="csr", random_state=0)
    graph = sp.csr_matrix(graph + sp.eye(24), dtype=np.float32)
    given = LabelGraphComponent(graph).fit(Y, sp.eye(24, 5, format="csr"), seed=0)
    assert (given.graph != graph).nnz == 0 and given.given is not None
    rng = np.random.default_rng(0)
    ids = rng.permuted(np.tile(np.arange(24), (4, 1)), axis=1)[:, :6]
    shortlist = np.where(rng.random((4, 6)) < 0.2, -1, ids)
    scores = rng.random((4, 6)).astype(np.float32)
    np.testing.assert_array_equal(
        given.candidates(shortlist, scores, 5),
        propagate_topk(scores, shortlist, graph, 5)[1],
    )
    # the graph score: the text scores of the shortlist propagated through G
    text = rng.random((4, 6)).astype(np.float32)
    graph_score = given.fusion_parts(ids, {"text": text})["graph"]
    dense = graph.toarray()
    for i in range(4):
        expected = dense[np.ix_(ids[i], ids[i])].T @ text[i]
        np.testing.assert_allclose(graph_score[i], expected, rtol=1e-5)
    built = LabelGraphComponent(n_neighbors=3).fit(Y, sp.eye(24, 5, format="csr"), 0)
    assert built.given is None and built.graph.shape == (24, 24)


def test_add_labels_grows_the_engine_and_its_graph(data):
    X, Y, info = data["text"][:160], data["Y"][:160], data["info"]
    clf = EclareClassifier(**{**PARAMS, "n_epochs": 1}, graph_shortlist_size=4)
    clf.fit(X, Y, label_info=info)
    engine = clf.model_
    ids = engine.add_labels(clf.vectorizer_.transform(["a brand new label"]))
    assert ids.tolist() == [24]
    assert engine.n_labels_ == 25 and len(engine.cluster_of_label_) == 25
    assert engine.label_graph.graph[24].indices.tolist() == [24]
    assert set(engine._weights_cache) == {torch.device("cpu")}
    assert engine._weights_cache[torch.device("cpu")][0].shape[0] == 25


@pytest.mark.parametrize("eclare", [False, True], ids=["decaf", "eclare"])
def test_single_queries_with_and_without_the_helper_thread(data, eclare, monkeypatch):
    """A few rows run torch on one thread and the sparse stages (text
    shortlist, re-ranker proposals and pair scores) on a helper thread: the
    answers are those of the same stages run in turn, and of the batch path."""
    from skxmc.utils import _threads

    cls = EclareClassifier if eclare else DecafClassifier
    extra = {"graph_shortlist_size": 6} if eclare else {}
    params = {**PARAMS, **extra, "reranker": "xr-linear", "rerank_size": 6}
    clf = cls(**params).fit(
        data["text"][:160], data["Y"][:160], label_info=data["info"]
    )
    queries = data["text"][160:180]
    threads = torch.get_num_threads()
    aside = [clf.predict_topk([q], k=5) for q in queries]
    assert torch.get_num_threads() == threads  # restored after each query
    calls = []
    run_aside = _threads.run_aside

    def inline(fn, *args, enabled=True):
        calls.append(enabled)
        return run_aside(fn, *args, enabled=False)

    monkeypatch.setattr("skxmc.models._decaf.run_aside", inline)
    in_turn = [clf.predict_topk([q], k=5) for q in queries]
    assert calls and all(calls)  # one-row queries asked for the helper thread
    for (s1, i1), (s2, i2) in zip(aside, in_turn):
        np.testing.assert_array_equal(s1, s2)
        np.testing.assert_array_equal(i1, i2)
    # the batch (20 rows: no helper thread, torch's own threads) agrees up to
    # float rounding of the network's products
    scores, labels = clf.predict_topk(queries, k=5)
    assert not all(calls[-3:])
    np.testing.assert_allclose(np.concatenate([s for s, _ in aside]), scores, rtol=1e-5)
    assert (np.concatenate([i for _, i in aside]) == labels).mean() > 0.95
