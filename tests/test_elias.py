"""EliasClassifier and its network, on a tiny BERT."""

import copy
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import transformers

from skxmc import EliasClassifier
from skxmc.metrics import precision_at_k
from skxmc.nn._elias import EliasNetwork, dedup_max
from skxmc.utils._testing import (
    KEYWORD_LABELS,
    KEYWORD_VOCABULARY,
    make_keyword_docs,
    save_tiny_bert,
)

N_LABELS = KEYWORD_LABELS


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A random-init 1-layer BERT (hidden 32) with a WordPiece vocab of the words."""
    folder = tmp_path_factory.mktemp("tiny_bert_elias")
    return save_tiny_bert(folder, KEYWORD_VOCABULARY)


@pytest.fixture(scope="module")
def data():
    return make_keyword_docs(64, seed=0), make_keyword_docs(32, seed=1)


def _clf(encoder, **params):
    # 8 labels, leaves of 2 -> 4 clusters; kappa 3 < 8 labels
    defaults = {
        "max_length": 16,
        "pooling": "mean",
        "reranker": None,
        "dropout": 0.1,
        "max_leaf_size": 2,
        "kappa": 3,
        "beam_size": 2,
        "shortlist_size": 5,
        "alpha": 3.0,
        "beta": 3.0,
        "n_epochs": (20, 10),
        "batch_size": 16,
        "learning_rate": 1e-3,
        "head_learning_rate": 5e-2,
        "top_k": 5,
        "device": "cpu",
        "n_jobs": 1,
        "random_state": 0,
    }
    defaults.update(params)
    return EliasClassifier(encoder=encoder, **defaults)


@pytest.fixture(scope="module")
def fitted(tiny_bert, data):
    (docs, Y), _ = data
    return _clf(tiny_bert).fit(docs, Y)


# --------------------------------------------------------------- the index
def test_adjacency_is_sparse_with_exactly_kappa_entries_per_row(fitted):
    net = fitted.network_
    C, L, kappa = fitted.n_clusters_, N_LABELS, fitted.kappa_
    assert (C, kappa) == (4, 3)
    assert net.adjacency_index.shape == net.adjacency_logits.shape == (C, kappa)
    index = net.adjacency_index.numpy()
    # stage 2 rows: exactly kappa distinct labels, some labels in several rows
    assert np.all(index >= 0) and np.all(index < L)
    assert np.bincount(index.ravel(), minlength=L).max() > 1
    assert all(len(set(row)) == kappa for row in index.tolist())
    values = net.adjacency_values().detach()
    assert values.shape == (C, kappa)
    assert torch.all((values >= 0) & (values <= 1))
    # no C x L tensor anywhere
    for name, tensor in [*net.named_parameters(), *net.named_buffers()]:
        shape = tuple(tensor.shape)
        assert shape not in {(C, L), (L, C)}, name
    # stage 1 index: each cluster's own labels, -1 padded
    cluster_of_label = fitted.cluster_of_label_
    assert np.bincount(cluster_of_label).tolist() == [2, 2, 2, 2]


def test_dedup_keeps_each_labels_best_path():
    path = torch.tensor([[0.2, 0.9, 0.5, 0.1, 0.3], [0.1, 0.1, 0.4, 0.4, 0.0]])
    labels = torch.tensor([[3, 3, -1, 1, 1], [2, 2, 0, 0, -1]])
    drop = dedup_max(path, labels)
    assert drop.tolist() == [
        [True, False, True, True, False],
        [False, True, False, True, True],
    ]


def _dense_scores(clf, docs):
    """Brute force: every label scored as max_c s_c * A_hat[c, l] * sigmoid."""
    net = clf.network_
    emb = torch.from_numpy(clf.transform(docs))
    with torch.no_grad():
        s = net.cluster_scores(emb)  # (n, C)
        values = net.adjacency_values()
        index = net.adjacency_index
        A = torch.zeros(net.n_clusters, net.n_labels)  # tiny problem only
        for c in range(net.n_clusters):
            for slot in range(net.kappa):
                if index[c, slot] >= 0:
                    A[c, index[c, slot]] = values[c, slot]
        path = (s.unsqueeze(-1) * A.unsqueeze(0)).amax(1)  # (n, L)
        logits = emb @ net.label_weight.T + net.label_bias
        scores = torch.sigmoid(logits) * path
        reachable = (A > 0).any(0)
    return scores.numpy(), reachable.numpy()


def test_full_beam_equals_brute_force_scoring_of_every_label(fitted, data):
    _, (docs, _) = data
    clf = copy.deepcopy(fitted).set_params(beam_size=4, shortlist_size=N_LABELS)
    scores, indices = clf.predict_topk(docs, k=N_LABELS)
    dense, reachable = _dense_scores(clf, docs)
    got = np.zeros_like(dense)
    rows = np.nonzero(indices >= 0)
    got[rows[0], indices[rows]] = scores[rows]
    expected = np.where(reachable, dense, 0.0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # every reachable label was returned, the others padded
    assert np.all((indices >= 0).sum(1) == reachable.sum())


def test_small_beam_returns_sorted_padded_subsets(fitted, data):
    _, (docs, _) = data
    scores, indices = fitted.predict_topk(docs[:6], k=N_LABELS + 2)
    assert scores.shape == indices.shape == (6, N_LABELS + 2)
    assert scores.dtype == np.float32 and indices.dtype == np.int64
    finite = np.where(np.isfinite(scores), scores, -1.0)  # scores lie in [0, 1]
    assert np.all(np.diff(finite, axis=1) <= 0)
    # shortlist_size=5 caps the returned labels
    assert np.all((indices >= 0).sum(1) <= 5)
    assert np.all(indices[:, 5:] == -1) and np.all(np.isneginf(scores[:, 5:]))
    for row in indices:
        kept = row[row >= 0]
        assert len(set(kept.tolist())) == len(kept)
    decision = fitted.decision_function(docs[:6])
    assert sp.issparse(decision) and decision.shape == (6, N_LABELS)


# --------------------------------------------------------------- training
def test_both_stages_run_and_loss_falls(fitted):
    # one mean loss per epoch: 20 of stage 1, then 10 of stage 2
    assert len(fitted.loss_curve_) == 20 + 10
    first, second = fitted.loss_curve_[:20], fitted.loss_curve_[20:]
    assert np.all(np.isfinite(first + second))
    assert np.mean(first[-5:]) < 0.5 * np.mean(first[:5])
    assert np.mean(second[-5:]) < 0.8 * np.mean(second[:5])
    assert set(fitted.fit_times_) == {
        "tfidf",
        "clustering",
        "stage1",
        "reestimate",
        "stage2",
    }
    assert fitted.network_.learn_adjacency
    assert next(fitted.network_.parameters()).device.type == "cpu"


def test_stage2_starts_from_stage1_weights(tiny_bert, data, monkeypatch):
    import skxmc.models._elias as engine

    (docs, Y), _ = data
    snapshots = []
    real = engine._train_stage

    def spy(net, stage, *args, **kwargs):
        before = {k: v.detach().clone() for k, v in net.state_dict().items()}
        result = real(net, stage, *args, **kwargs)
        after = {k: v.detach().clone() for k, v in net.state_dict().items()}
        snapshots.append((stage, before, after, net.adjacency_logits.requires_grad))
        return result

    monkeypatch.setattr(engine, "_train_stage", spy)
    _clf(tiny_bert, n_epochs=(2, 1)).fit(docs, Y)
    (s1, before1, after1, learn1), (s2, before2, after2, learn2) = snapshots
    assert (s1, s2, learn1, learn2) == (0, 1, False, True)
    changed = False
    for key, value in after1.items():
        if key.startswith("adjacency"):
            continue
        torch.testing.assert_close(before2[key], value, rtol=0, atol=0)
        changed |= not torch.equal(before1[key], value)
    assert changed  # stage 1 trained something
    # stage 2 learns the adjacency parameters
    assert not torch.equal(before2["adjacency_logits"], after2["adjacency_logits"])
    torch.testing.assert_close(before2["adjacency_index"], after2["adjacency_index"])


def test_learns_a_separable_problem_above_popularity(fitted, data):
    (_, Y_train), (docs, Y) = data
    p1 = precision_at_k(Y, fitted.predict_topk(docs), k=1)
    popular = np.argsort(-np.asarray(Y_train.sum(0)).ravel())[:1]
    indices = np.tile(popular, (len(docs), 1))
    baseline = precision_at_k(Y, (np.ones(indices.shape), indices), k=1)
    assert p1 > 0.75 and p1 > baseline + 0.4


def test_swa_and_cls_pooling(tiny_bert, data):
    (docs, Y), (test_docs, _) = data
    clf = _clf(tiny_bert, n_epochs=(1, 2), swa=True, pooling="cls").fit(docs, Y)
    assert len(clf.loss_curve_) == 1 + 2
    scores, _ = clf.predict_topk(test_docs, k=3)
    assert np.all(np.isfinite(scores[:, 0]))


# ---------------------------------------------------------- checkpoints
@pytest.mark.parametrize("crash_at", [7, 25])  # saves: 20 in stage 1, 10 in stage 2
def test_resume_after_interruption_equals_uninterrupted_fit(
    tiny_bert, data, fitted, tmp_path, crash_at, monkeypatch
):
    import skxmc.training._checkpoint as checkpoint

    (docs, Y), (test_docs, _) = data
    save = checkpoint.save_checkpoint
    stages = []

    def save_then_crash(path, payload):
        save(path, payload)
        stages.append(payload["stage"])
        if len(stages) == crash_at:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        _clf(tiny_bert, checkpoint_dir=tmp_path).fit(docs, Y)
    assert stages[-1] == (0 if crash_at <= 20 else 1)
    monkeypatch.setattr(checkpoint, "save_checkpoint", save)
    resumed = _clf(tiny_bert, checkpoint_dir=tmp_path).fit(docs, Y)
    assert resumed.loss_curve_ == fitted.loss_curve_
    for a, b in zip(resumed.network_.parameters(), fitted.network_.parameters()):
        assert torch.equal(a, b)
    expected = fitted.predict_topk(test_docs, k=4)
    got = resumed.predict_topk(test_docs, k=4)
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_array_equal(got[0], expected[0])


def test_resume_inside_the_swa_window_keeps_the_average(
    tiny_bert, data, tmp_path, monkeypatch
):
    import skxmc.training._checkpoint as checkpoint

    (docs, Y), _ = data
    params = {"n_epochs": (1, 3), "swa": True}  # stage 2: 12 steps, SWA from 6
    expected = _clf(tiny_bert, **params).fit(docs, Y)
    save = checkpoint.save_checkpoint
    calls = []

    def save_then_crash(path, payload):
        save(path, payload)
        calls.append(payload["trainer"]["progress"]["step"])
        if len(calls) == 3:  # stage 2, step 8
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        _clf(tiny_bert, **params, checkpoint_dir=tmp_path).fit(docs, Y)
    assert calls == [4, 4, 8]
    monkeypatch.setattr(checkpoint, "save_checkpoint", save)
    resumed = _clf(tiny_bert, **params, checkpoint_dir=tmp_path).fit(docs, Y)
    for a, b in zip(resumed.network_.parameters(), expected.network_.parameters()):
        assert torch.equal(a, b)


def test_finished_checkpoint_skips_training_and_other_fits_do_not_resume(
    tiny_bert, data, tmp_path
):
    (docs, Y), (test_docs, _) = data
    params = {"n_epochs": (1, 1), "checkpoint_dir": tmp_path}
    first = _clf(tiny_bert, **params).fit(docs, Y)
    again = _clf(tiny_bert, **params, verbose=0).fit(docs, Y)
    assert "stage1" not in again.fit_times_  # resumed after stage 1
    assert again.loss_curve_ == first.loss_curve_
    np.testing.assert_array_equal(
        again.predict_topk(test_docs, k=3)[1], first.predict_topk(test_docs, k=3)[1]
    )
    # other parameters or data: a fit of their own, in a file of their own
    other = _clf(tiny_bert, **{**params, "n_epochs": (1, 2)}).fit(docs, Y)
    assert "stage1" in other.fit_times_
    fewer = _clf(tiny_bert, **params).fit(docs[:-1], Y[:-1])
    assert "stage1" in fewer.fit_times_
    assert len(list(tmp_path.glob("elias-*.ckpt"))) == 3
    # a file that cannot be read safely: a warning and a fresh fit
    for p in tmp_path.glob("elias-*.ckpt"):
        p.write_bytes(p.read_bytes()[:100])
    with pytest.warns(UserWarning, match="Ignoring the checkpoint"):
        fresh = _clf(tiny_bert, **params).fit(docs, Y)
    assert "stage1" in fresh.fit_times_
    assert fresh.loss_curve_ == first.loss_curve_


def test_random_state_none_resumes_with_the_stored_seed(
    tiny_bert, data, tmp_path, monkeypatch
):
    import skxmc.training._checkpoint as checkpoint
    from skxmc.models import EliasModel
    from skxmc.nn._transformer import load_encoder

    (docs, Y), (test_docs, _) = data
    params = {"n_epochs": (2, 1), "random_state": None, "checkpoint_dir": tmp_path}
    save = checkpoint.save_checkpoint

    def save_then_crash(path, payload):
        save(path, payload)
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        _clf(tiny_bert, **params).fit(docs, Y)
    monkeypatch.setattr(checkpoint, "save_checkpoint", save)
    (path,) = tmp_path.glob("elias-*.ckpt")
    seed = checkpoint.load_checkpoint(path)["seed"]
    resumed = _clf(tiny_bert, **params).fit(docs, Y)
    assert len(list(tmp_path.glob("elias-*.ckpt"))) == 1
    # the uninterrupted fit of the stored seed
    clf = _clf(tiny_bert, **params)
    encoder, tokenizer = load_encoder(tiny_bert)
    expected = EliasModel.train(
        docs, Y, encoder=encoder, tokenizer=tokenizer, config=clf._config(), seed=seed
    )
    assert resumed.loss_curve_ == expected.loss_curve
    got = resumed.predict_topk(test_docs, k=4)
    want = expected.predict_topk(test_docs, 4)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])


def test_changed_encoder_weights_do_not_resume(tiny_bert, data, tmp_path):
    import shutil

    (docs, Y), _ = data
    encoder = tmp_path / "encoder"
    shutil.copytree(tiny_bert, encoder)
    params = {"n_epochs": (1, 1), "checkpoint_dir": tmp_path / "checkpoints"}
    _clf(encoder, **params).fit(docs, Y)
    assert "stage1" not in _clf(encoder, **params).fit(docs, Y).fit_times_
    save_tiny_bert(encoder, KEYWORD_VOCABULARY, seed=1)  # same path, new weights
    other = _clf(encoder, **params).fit(docs, Y)
    assert "stage1" in other.fit_times_
    assert len(list((tmp_path / "checkpoints").glob("elias-*.ckpt"))) == 2


# ------------------------------------------------------------ re-ranker
@pytest.fixture(scope="module")
def reranked(tiny_bert, data):
    (docs, Y), _ = data
    return _clf(tiny_bert, reranker="shortlist", rerank_size=6).fit(docs, Y)


def test_reranker_is_trained_after_an_unchanged_elias_fit(reranked, fitted):
    for a, b in zip(reranked.network_.parameters(), fitted.network_.parameters()):
        assert torch.equal(a, b)
    n_features = 32 + len(reranked.vectorizer_.vocabulary_)
    assert reranked.reranker_.weights.shape == (N_LABELS, n_features)
    assert fitted.reranker_ is None and "reranker" in reranked.fit_times_


def test_reranked_scores_are_the_weighted_sum_of_both_models(reranked, data):
    from sklearn.preprocessing import normalize

    from skxmc.nn._transformer import tokenize

    _, (docs, _) = data
    clf = copy.deepcopy(reranked).set_params(rerank_weight=0.3)
    token_ids = tokenize(clf.tokenizer_, docs, clf.max_length)
    elias, candidates, emb = clf.model_.elias_topk(token_ids, 6, with_embeddings=True)
    features = sp.hstack([normalize(emb), clf.vectorizer_.transform(docs)]).tocsr()
    rerank = clf.reranker_.score(features, candidates)
    fused = np.where(candidates >= 0, 0.7 * elias + 0.3 * rerank, -np.inf)
    scores, labels = clf.predict_topk(docs, k=3)
    np.testing.assert_allclose(scores, -np.sort(-fused, axis=1)[:, :3], rtol=1e-5)
    picked = np.take_along_axis(
        fused, np.argmax(candidates[:, :, None] == labels[:, None, :], 1), 1
    )
    np.testing.assert_allclose(picked, scores, rtol=1e-5)
    clone = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clone.predict_topk(docs, k=3)[1], labels)


def test_rerank_weight_zero_keeps_the_elias_ranking(reranked, fitted, data):
    _, (docs, _) = data
    clf = copy.deepcopy(reranked).set_params(rerank_weight=0.0)
    scores, labels = clf.predict_topk(docs, k=4)
    expected_scores, expected_labels = fitted.predict_topk(docs, k=4)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-6)
    np.testing.assert_array_equal(labels, expected_labels)


def test_reranker_alone_reads_the_keywords(reranked, data):
    _, (docs, Y) = data
    clf = copy.deepcopy(reranked).set_params(rerank_weight=1.0)
    assert precision_at_k(Y, clf.predict_topk(docs, k=1), k=1) >= 0.9


def test_learned_fusion_with_the_xr_linear_reranker(tiny_bert, data):
    from skxmc.indexing import ScoreFusion, XRLinearModel

    (docs, Y), (test_docs, Y_test) = data
    clf = _clf(
        tiny_bert, reranker="xr-linear", rerank_size=4, fusion="learned",
        fusion_fraction=0.25, reranker_params={"C": 10.0},
    ).fit(docs, Y)  # fmt: skip
    assert isinstance(clf.fusion_, ScoreFusion)
    assert isinstance(clf.reranker_, XRLinearModel)
    assert "fusion" in clf.fit_times_
    scores, labels = clf.predict_topk(test_docs, k=3)
    assert ((scores >= 0) & (scores <= 1)).all()  # probabilities of relevance
    assert precision_at_k(Y_test, (scores, labels), k=1) >= 0.9


def test_training_halves_its_forward_batch_on_oom(tiny_bert, data, monkeypatch):
    import skxmc.models._elias as module

    (docs, Y), _ = data
    real = module._embed
    sizes = []

    def fake(net, input_ids, mask):
        sizes.append(input_ids.shape[0])
        if net.training and input_ids.shape[0] > 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")
        return real(net, input_ids, mask)

    monkeypatch.setattr(module, "_embed", fake)
    with pytest.warns(RuntimeWarning, match="rows per forward pass") as record:
        clf = _clf(tiny_bert, n_epochs=(1, 1)).fit(docs, Y)
    messages = [str(w.message) for w in record]
    assert "with 8 rows" in messages[0] and "with 4 rows" in messages[1]
    assert sizes[:3] == [16, 8, 4]
    assert len(messages) == 2  # stage 2 starts with the halved size
    assert len(clf.loss_curve_) == 2


# ----------------------------------------------------------------- errors
def test_bad_encoder_path_gives_a_clear_error(tmp_path, data):
    (docs, Y), _ = data
    missing = tmp_path / "no_model_here"
    with pytest.raises(ValueError, match="Could not load a transformer encoder"):
        _clf(missing).fit(docs, Y)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"pooling": "max"}, "pooling"),
        ({"kappa": 0}, "kappa"),
        ({"kappa": 1}, "kappa=1 is smaller than the largest cluster"),
        ({"n_epochs": (1, 2, 3)}, "n_epochs must be"),
        ({"n_epochs": (1, -1)}, "n_epochs must be"),
        ({"learning_rate": (1e-3, 0.0)}, "learning_rate must be"),
        ({"alpha": 0.0}, "alpha"),
        ({"dropout": 1.0}, "dropout"),
        ({"device": "tpu"}, "device must be"),
        ({"fusion": "mean"}, "fusion"),
        ({"fusion_fraction": 1.0}, "fusion_fraction"),
        ({"reranker": "dense"}, "reranker"),
    ],
)
def test_invalid_params(tiny_bert, data, params, match):
    (docs, Y), _ = data
    with pytest.raises(ValueError, match=match):
        _clf(tiny_bert, **params).fit(docs, Y)


# -------------------------------------------------------------------- GPU
def test_network_docstring_shapes():
    config = transformers.BertConfig(
        vocab_size=10,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
    )
    index = torch.tensor([[0, 1, -1], [2, 3, 4]])
    net = EliasNetwork(transformers.BertModel(config), 5, index)
    assert net.n_clusters == 2 and net.kappa == 3
    with pytest.raises(ValueError, match="must"):
        net.set_adjacency(index[:1], torch.zeros(1, 3))
