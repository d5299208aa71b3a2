"""EclareClassifier: DECAF plus the label graph in labels, clusters and shortlists."""

import numpy as np
import pytest
import scipy.sparse as sp

from skxmc import DecafClassifier, EclareClassifier, LabelInfo
from skxmc.datasets import make_xmc_classification
from skxmc.indexing import propagate_topk
from skxmc.metrics import precision_at_k
from skxmc.nn._graph import GraphLabelClassifier

TINY = {
    "embedding_dim": 16,
    "n_epochs": 4,
    "batch_size": 32,
    "learning_rate": 0.02,
    "max_leaf_size": 4,
    "beam_size": 2,
    "random_state": 0,
    # plain DECAF (the defaults before issue 16); tests of the learned fusion
    # and the re-rankers set them
    "fusion": "weights",
    "reranker": None,
}


@pytest.fixture(scope="module")
def data():
    d = make_xmc_classification(
        n_samples=300, n_labels=30, n_features=120, return_text=True, random_state=0
    )
    return {"text": d.text, "Y": d.Y, "info": LabelInfo(text=d.label_text)}


@pytest.fixture(scope="module")
def fitted(data):
    return EclareClassifier(graph_shortlist_size=8, **TINY).fit(
        data["text"][:240], data["Y"][:240], label_info=data["info"]
    )


def test_fit_builds_the_graph_and_a_graph_classifier(data, fitted):
    graph = fitted.label_graph_
    assert graph.shape == (30, 30)
    assert np.all(graph.diagonal() > 0)
    assert isinstance(fitted.network_.labels, GraphLabelClassifier)
    assert (fitted.network_.labels.graph() != graph).nnz == 0
    scores, labels = fitted.predict_topk(data["text"][240:], k=5)
    assert scores.shape == labels.shape == (60, 5)
    assert np.all(np.diff(scores, axis=1) <= 0)
    assert precision_at_k(data["Y"][240:], (scores, labels), k=1) > 0.4


def test_graph_candidates_are_the_propagated_shortlist(fitted):
    rng = np.random.default_rng(0)
    shortlist = rng.integers(-1, 30, size=(4, 6))
    cluster_scores = rng.random((4, 6)).astype(np.float32)
    candidates = fitted.model_.label_graph.candidates(shortlist, cluster_scores, 8)
    _, expected = propagate_topk(cluster_scores, shortlist, fitted.label_graph_, 8)
    np.testing.assert_array_equal(candidates, expected)


def test_graph_shortlist_only_adds_candidates(data, fitted):
    """A superset of candidates can only raise each of the top-k scores."""
    X = data["text"][240:]
    with_graph = fitted.predict_topk(X, k=5)[0]
    without = fitted.set_params(graph_shortlist_size=0).predict_topk(X, k=5)[0]
    fitted.set_params(graph_shortlist_size=8)
    assert np.all(with_graph >= without - 1e-6)
    assert np.any(with_graph > without + 1e-6)


def test_identity_graph_clusters_like_decaf(data):
    """With G = I the graph-smoothed clustering embedding is DECAF's own."""
    X, Y = data["text"][:240], data["Y"][:240]
    identity = LabelInfo(text=data["info"].text, graph=sp.eye(30))
    eclare = EclareClassifier(**{**TINY, "n_epochs": 1}).fit(X, Y, label_info=identity)
    decaf = DecafClassifier(**{**TINY, "n_epochs": 1}).fit(
        X, Y, label_info=data["info"]
    )
    np.testing.assert_array_equal(eclare.cluster_of_label_, decaf.cluster_of_label_)
    assert (eclare.label_graph_ != sp.eye(30)).nnz == 0


def test_zero_shot_label_joins_the_graph(data):
    """A label held out of training, added by its text, gets a self-loop and is
    retrieved for a document that repeats its text."""
    held_out = 5
    keep = np.setdiff1d(np.arange(30), [held_out])
    texts = [data["info"].text[j] for j in keep]
    clf = EclareClassifier(graph_shortlist_size=4, **{**TINY, "beam_size": 4})
    clf.fit(data["text"], data["Y"][:, keep], label_info=LabelInfo(text=texts))
    clf.add_labels([data["info"].text[held_out]])
    assert clf.n_labels_ == 30
    graph = clf.network_.labels.graph()
    assert graph.shape == (30, 30) and graph[29].indices.tolist() == [29]
    assert (clf.label_graph_ != graph).nnz == 0
    _, labels = clf.predict_topk([" ".join([data["info"].text[held_out]] * 3)], k=5)
    assert 29 in labels[0]


def test_errors(data):
    with pytest.raises(ValueError, match="label text"):
        EclareClassifier(**TINY).fit(data["text"][:50], data["Y"][:50])
    with pytest.raises(ValueError, match="restart_prob"):
        EclareClassifier(restart_prob=2.0).fit(
            data["text"][:50], data["Y"][:50], label_info=data["info"]
        )


def test_learned_fusion_reads_the_graph_score(data):
    import torch

    clf = EclareClassifier(
        **{**TINY, "fusion": "learned"}, graph_shortlist_size=8, fusion_fraction=0.25
    ).fit(data["text"][:240], data["Y"][:240], label_info=data["info"])
    # label, cluster, text, frequency, graph
    assert clf.fusion_.n_features_ == 5
    X = clf.vectorizer_.transform(data["text"][240:])
    features, candidates = clf.model_._pair_features(X, torch.device("cpu"))
    graph = clf.label_graph_.toarray()
    for i in range(0, X.shape[0], 7):
        valid = candidates[i] >= 0
        ids, text_scores = candidates[i][valid], features[i][valid, 2]
        expected = graph[np.ix_(ids, ids)].T @ text_scores
        np.testing.assert_allclose(features[i][valid, 4], expected, rtol=1e-5)
    assert features[..., 4].std() > 0
    # with every cluster in the beam, the shortlist scores equal brute force
    clf.set_params(beam_size=clf.n_clusters_)
    scores, _ = clf.predict_topk(data["text"][240:], k=5)
    full = clf._full_scores(data["text"][240:])
    np.testing.assert_allclose(
        scores, -np.sort(-full, axis=1)[:, :5], rtol=1e-5, atol=1e-6
    )


def test_resume_after_interruption_equals_uninterrupted_fit(
    data, fitted, tmp_path, monkeypatch
):
    import skxmc.training._checkpoint as checkpoint

    X, Y = data["text"][:240], data["Y"][:240]
    params = dict(TINY, graph_shortlist_size=8, checkpoint_dir=str(tmp_path))
    save = checkpoint.save_checkpoint

    def save_then_crash(path, payload):
        save(path, payload)
        if payload["stage"] == 1:  # 1 epoch into the extreme stage
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(checkpoint, "save_checkpoint", save_then_crash)
        with pytest.raises(KeyboardInterrupt):
            EclareClassifier(**params).fit(X, Y, label_info=data["info"])
    resumed = EclareClassifier(**params).fit(X, Y, label_info=data["info"])
    expected = fitted.predict_topk(data["text"][240:], k=5)
    got = resumed.predict_topk(data["text"][240:], k=5)
    np.testing.assert_array_equal(expected[0], got[0])
    np.testing.assert_array_equal(expected[1], got[1])
    assert resumed.loss_curve_ == fitted.loss_curve_


def test_checkpoints_never_mix_with_decaf_nor_another_graph(data, tmp_path):
    X, Y = data["text"][:120], data["Y"][:120]
    params = dict(TINY, n_epochs=1, checkpoint_dir=str(tmp_path))
    DecafClassifier(**params).fit(X, Y, label_info=data["info"])
    EclareClassifier(**params).fit(X, Y, label_info=data["info"])
    identity = LabelInfo(text=data["info"].text, graph=sp.eye(30))
    EclareClassifier(**params).fit(X, Y, label_info=identity)
    assert len(list(tmp_path.glob("decaf-*.ckpt"))) == 1
    assert len(list(tmp_path.glob("eclare-*.ckpt"))) == 2


def test_eclare_is_the_decaf_engine_plus_a_graph_component(data):
    """ECLARE overrides nothing of DECAF: it declares its parameters and hands
    the shared engine a LabelGraphComponent."""
    from skxmc.models import DecafModel, LabelGraphComponent

    assert not issubclass(EclareClassifier, DecafClassifier)
    private = {
        name
        for name in vars(EclareClassifier)
        if name.startswith("_") and not name.startswith("__")
    }
    assert private - {"_abc_impl"} == {"_parameter_constraints", "_fit"}
    clf = EclareClassifier(**{**TINY, "n_epochs": 1}).fit(
        data["text"][:100], data["Y"][:100], label_info=data["info"]
    )
    assert type(clf.model_) is DecafModel
    assert isinstance(clf.model_.label_graph, LabelGraphComponent)
    with pytest.raises(TypeError, match="This EclareClassifier was fitted on raw"):
        clf.predict_topk(clf.vectorizer_.transform(data["text"][:2]))
