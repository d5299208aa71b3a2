"""DualEncoderClassifier and its engine: learning, mining, batches, retrieval,
zero-shot labels, the loss options."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import GridSearchCV, KFold

from skxmc import DualEncoderClassifier, LabelInfo, TunedThresholdXMC
from skxmc.metrics import XMC_SCORERS, precision_at_k
from skxmc.models._dual_encoder import _first_non_gold
from skxmc.utils._testing import (
    KEYWORD_VOCABULARY,
    KEYWORDS,
    make_keyword_docs,
    save_tiny_bert,
)

LABEL_TEXT = [f"{a} {b}" for a, b in KEYWORDS]


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return save_tiny_bert(
        tmp_path_factory.mktemp("bert"), KEYWORD_VOCABULARY, hidden_size=32
    )


@pytest.fixture(scope="module")
def docs():
    train, Y = make_keyword_docs(160, seed=0)
    test, Y_test = make_keyword_docs(60, seed=1)
    return train, Y, test, Y_test


def _clf(bert, **params):
    fast = {
        "max_length": 16, "label_max_length": 8, "n_epochs": 4, "batch_size": 16,
        "cluster_size": 4, "learning_rate": 2e-3, "device": "cpu", "n_jobs": 1,
        "random_state": 0, "top_k": 3,
    }  # fmt: skip
    return DualEncoderClassifier(encoder=bert, **{**fast, **params})


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["contrastive", "alc+tcm"])
def test_training_beats_the_untrained_encoder(bert, docs, loss):
    train, Y, test, Y_test = docs
    info = LabelInfo(text=LABEL_TEXT)
    untrained = _clf(bert, n_epochs=0).fit(train, Y, label_info=info)
    trained = _clf(bert, loss=loss).fit(train, Y, label_info=info)
    p0 = precision_at_k(Y_test, untrained.predict_topk(test, 1), k=1)
    p1 = precision_at_k(Y_test, trained.predict_topk(test, 1), k=1)
    assert p1 >= 0.8 and p1 > p0
    assert trained.loss_curve_[-1] < trained.loss_curve_[0]


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n_rows=st.integers(1, 5), n_labels=st.integers(2, 9))
def test_mined_negatives_are_the_first_non_gold_candidates(data, n_rows, n_labels):
    n_hard = data.draw(st.integers(1, 3))
    # each row: a prefix of a permutation of the labels, -1 padded
    cand = np.full((n_rows, n_labels), -1)
    for i in range(n_rows):
        ranked = data.draw(st.permutations(range(n_labels)))
        depth = data.draw(st.integers(1, n_labels))
        cand[i, :depth] = ranked[:depth]
    gold_rows = [
        data.draw(st.sets(st.integers(0, n_labels - 1), max_size=n_labels - 1))
        for _ in range(n_rows)
    ]
    Y = sp.lil_matrix((n_rows, n_labels))
    for i, g in enumerate(gold_rows):
        for j in g:
            Y[i, j] = 1
    got = _first_non_gold(cand, Y.tocsr(), n_hard, np.random.default_rng(0))
    for i in range(n_rows):
        brute = [j for j in cand[i] if j >= 0 and j not in gold_rows[i]][:n_hard]
        assert got[i, : len(brute)].tolist() == brute


def test_every_row_with_a_label_is_trained_once_per_epoch(bert, docs):
    from skxmc.models import DualEncoderConfig
    from skxmc.models._dual_encoder import _EpochSampler, _Texts
    from skxmc.nn import DualEncoderLoss, DualEncoderNetwork
    from skxmc.nn._text_encoder import TextEncoder
    from skxmc.nn._transformer import load_encoder, tokenize

    train, Y, _, _ = docs
    Y = Y.tolil()
    Y[5] = 0  # a row without labels is never a training query
    Y = Y.tocsr()
    encoder, tokenizer = load_encoder(bert)
    net = DualEncoderNetwork(encoder, DualEncoderLoss(32))
    config = DualEncoderConfig(batch_size=16, cluster_size=4, n_hard_negatives=2)
    rows = np.flatnonzero(np.diff(Y.indptr) > 0)
    texts_of = _Texts(
        net, TextEncoder(encoder), tokenizer, tokenize(tokenizer, train, 16),
        tokenize(tokenizer, LABEL_TEXT, 8), config, torch.device("cpu"),
    )  # fmt: skip
    sampler = _EpochSampler(
        net, texts_of, Y, rows, config, 0, 0, {}, lambda m: None
    )  # fmt: skip
    lengths = set()
    for epoch in range(3):
        batches = sampler.batches(epoch)
        lengths.add(len(batches))
        seen = np.sort(np.concatenate(batches))
        np.testing.assert_array_equal(seen, rows)
        # positives are gold, hard negatives are not
        for r in rows:
            gold = set(Y[r].indices)
            assert sampler.positive[r] in gold
            assert not gold & set(sampler.hard[r])
    assert len(lengths) == 1


@pytest.mark.slow  # pynndescent's first (numba-compiled) build takes minutes
def test_exact_and_ann_retrieval_agree_on_a_small_label_set(bert, docs):
    train, Y, test, _ = docs
    info = LabelInfo(text=LABEL_TEXT)
    exact = _clf(bert, n_epochs=1).fit(train, Y, label_info=info)
    ann = _clf(bert, n_epochs=1, retrieval="ann").fit(train, Y, label_info=info)
    s1, i1 = exact.predict_topk(test, 3)
    s2, i2 = ann.predict_topk(test, 3)
    np.testing.assert_array_equal(i1[:, 0], i2[:, 0])
    np.testing.assert_allclose(s1, s2, atol=1e-5)


def test_zero_shot_label_scores_like_the_label_with_the_same_text(bert, docs):
    train, Y, test, _ = docs
    clf = _clf(bert, n_epochs=1, top_k=9).fit(
        train, Y, label_info=LabelInfo(text=LABEL_TEXT)
    )
    clf.add_labels([LABEL_TEXT[3]])
    assert clf.n_labels_ == 9 and clf.label_embeddings_.shape[0] == 9
    scores, labels = clf.predict_topk(test, 9)
    for s_row, l_row in zip(scores, labels):
        by_label = dict(zip(l_row.tolist(), s_row.tolist()))
        assert by_label[8] == pytest.approx(by_label[3], abs=1e-5)


def test_label_text_is_required(bert, docs):
    train, Y, _, _ = docs
    with pytest.raises(ValueError, match="label_info=LabelInfo"):
        _clf(bert).fit(train, Y)


@pytest.mark.parametrize("loss", ["contrastive", "tcm", "alc", "alc+tcm"])
def test_each_loss_option_trains_its_own_terms(bert, docs, loss):
    train, Y, _, _ = docs
    clf = _clf(bert, n_epochs=1, loss=loss).fit(
        train[:48], Y[:48], label_info=LabelInfo(text=LABEL_TEXT)
    )
    objective = clf.network_.objective
    assert set(objective.last_parts) == (
        {"base"}
        | ({"tcm"} if "tcm" in loss else set())
        | ({"ql", "qb"} if "alc" in loss else set())
    )
    assert (objective.pair_classifier is not None) == ("alc" in loss)
    assert len(clf.loss_curve_) == 1


def test_pair_reranker_orders_the_cosine_candidates_by_the_pair_classifier(bert, docs):
    train, Y, test, _ = docs
    clf = _clf(bert, n_epochs=1, loss="alc+tcm", top_k=8).fit(
        train[:48], Y[:48], label_info=LabelInfo(text=LABEL_TEXT)
    )
    _, cos_labels = clf.predict_topk(test[:10], 5)
    clf.set_params(reranker="pair", rerank_size=5)
    scores, labels = clf.predict_topk(test[:10], 3)
    # brute force: the literal probability of every pair of the 5 of highest
    # cosine, sorted (ties keep the cosine order)
    head = clf.network_.objective.pair_classifier
    q = clf.transform(test[:10])
    for i in range(10):
        with torch.no_grad():
            logits = head(
                torch.from_numpy(q[i : i + 1]),
                torch.from_numpy(clf.label_embeddings_[cos_labels[i]]),
            )[0]
        p = torch.sigmoid(logits).numpy()
        order = np.argsort(-p, kind="stable")[:3]
        assert labels[i].tolist() == cos_labels[i][order].tolist()
        np.testing.assert_allclose(scores[i], p[order], rtol=1e-5)
    assert np.all((scores >= 0) & (scores <= 1))
    assert np.all(np.diff(scores, axis=1) <= 0)
    # predict's threshold reads the probabilities of the top_k
    scores8, labels8 = clf.predict_topk(test[:10], 8)
    clf.set_params(threshold=float(np.median(scores8[:, 0])))
    kept = clf.predict(test[:10]).toarray()
    expected = np.zeros_like(kept)
    for i in range(10):
        expected[i, labels8[i][scores8[i] > clf.threshold]] = 1
    np.testing.assert_array_equal(kept, expected)
    assert 0 < kept.sum() < 80


def test_pair_reranker_needs_an_alc_loss(bert, docs):
    train, Y, test, _ = docs
    info = LabelInfo(text=LABEL_TEXT)
    with pytest.raises(ValueError, match=r"reranker='pair'.*loss='tcm'"):
        _clf(bert, n_epochs=0, loss="tcm", reranker="pair").fit(
            train[:16], Y[:16], label_info=info
        )
    fitted = _clf(bert, n_epochs=0).fit(train[:16], Y[:16], label_info=info)
    fitted.set_params(reranker="pair")
    with pytest.raises(ValueError, match=r"no pair classifier|needs ALC's pair"):
        fitted.predict_topk(test[:2], 2)


@pytest.mark.slow
def test_grid_search_over_the_loss_and_a_tuned_threshold(bert, docs):
    train, Y, _, _ = docs
    info = LabelInfo(text=LABEL_TEXT)
    search = GridSearchCV(
        _clf(bert, n_epochs=1),
        {"loss": ["contrastive", "alc"]},
        scoring=XMC_SCORERS,
        refit="P@1",
        cv=KFold(2, shuffle=True, random_state=0),
    ).fit(train[:64], Y[:64], label_info=info)
    assert search.best_params_["loss"] in ("contrastive", "alc")
    tuned = TunedThresholdXMC(
        _clf(bert, n_epochs=1), target_precision=0.7, random_state=0, top_k=3
    ).fit(train, Y, label_info=info)
    assert tuned.predict(train[:4]).shape == (4, 8)


@pytest.fixture(scope="module")
def bert2(tmp_path_factory):
    """Two layers and no dropout: a cached and an uncached step see the same
    network."""
    return save_tiny_bert(
        tmp_path_factory.mktemp("bert2"), KEYWORD_VOCABULARY, hidden_size=32,
        num_hidden_layers=2, dropout=0.0,
    )  # fmt: skip


def test_cached_step_equals_the_full_forward_with_frozen_lower_layers(bert2, docs):
    """Oracle: the loss and gradients of a step from the cached states of the
    frozen layer equal those of the full forward pass (float16 cache)."""
    from skxmc.models import DualEncoderConfig
    from skxmc.models._dual_encoder import _batch_loss, _EpochSampler, _Texts
    from skxmc.nn import DualEncoderLoss, DualEncoderNetwork
    from skxmc.nn._text_encoder import TextEncoder
    from skxmc.nn._transformer import load_encoder, tokenize

    train, Y, _, _ = docs
    encoder, tokenizer = load_encoder(bert2)
    config = DualEncoderConfig(batch_size=16, cluster_size=4, loss="alc+tcm")
    net = DualEncoderNetwork(
        encoder, DualEncoderLoss(32, loss="alc+tcm",
                                 generator=torch.Generator().manual_seed(0)),
    )  # fmt: skip
    text_encoder = TextEncoder(encoder, pooling="mean", trainable_layers=1)
    ids = tokenize(tokenizer, train, 16), tokenize(tokenizer, LABEL_TEXT, 8)
    cpu = torch.device("cpu")
    cached = _Texts(net, text_encoder, tokenizer, *ids, config, cpu)
    cached.cache(None, need_queries=True)
    full = _Texts(net, text_encoder, tokenizer, *ids, config, cpu)
    rows = np.flatnonzero(np.diff(Y.indptr) > 0)
    sampler = _EpochSampler(net, cached, Y, rows, config, 0, 0, {}, print)
    batch = sampler.batches(0)[0]
    trained = [p for p in net.parameters() if p.requires_grad]
    frozen = list(encoder.embeddings.parameters())
    assert trained and all(not p.requires_grad for p in frozen)
    net.train()
    results = []
    for texts_of in (cached, full):
        net.zero_grad()
        loss = _batch_loss(net, batch, sampler, texts_of, Y, cpu)
        loss.backward()
        # (the unused BERT pooler gets no gradient, on either path)
        grads = [None if p.grad is None else p.grad.clone() for p in trained]
        results.append((loss.item(), grads))
    (loss_c, grad_c), (loss_f, grad_f) = results
    assert loss_c == pytest.approx(loss_f, rel=2e-3)
    assert sum(g is not None for g in grad_f) > 10
    for g_c, g_f in zip(grad_c, grad_f):
        assert (g_c is None) == (g_f is None)
        if g_f is not None:
            torch.testing.assert_close(g_c, g_f, rtol=2e-2, atol=2e-3)
    # the refresh and the final label embeddings read the cache too
    np.testing.assert_allclose(cached.labels(), full.labels(), atol=3e-3)


def test_partial_fine_tuning_trains_only_the_top_layers(bert2, docs):
    from skxmc.nn._transformer import load_encoder

    train, Y, _test, _ = docs
    pretrained, _ = load_encoder(bert2)
    clf = _clf(bert2, trainable_layers=1, n_epochs=2).fit(
        train, Y, label_info=LabelInfo(text=LABEL_TEXT)
    )
    assert clf.trainable_layers_ == 1
    assert set(clf.fit_times_) >= {"state_cache", "train"}
    before = dict(pretrained.named_parameters())
    after = dict(clf.network_.encoder.named_parameters())
    moved = {n for n in before if not torch.equal(before[n], after[n])}
    assert moved and all(n.startswith("encoder.layer.1.") for n in moved)
    # every parameter trains again in a later fine-tuning of this network
    assert all(p.requires_grad for p in clf.network_.parameters())
    # label embeddings (cached states) = the fitted network's full forward
    full = clf.model_.transform(LABEL_TEXT, max_length=8)
    np.testing.assert_allclose(clf.label_embeddings_, full, atol=3e-3)


def test_no_trainable_layer_is_the_zero_shot_encoder(bert2, docs):
    train, Y, test, _ = docs
    info = LabelInfo(text=LABEL_TEXT)
    frozen = _clf(bert2, trainable_layers=0).fit(train, Y, label_info=info)
    zero_shot = _clf(bert2, n_epochs=0).fit(train, Y, label_info=info)
    assert frozen.loss_curve_ == []
    np.testing.assert_allclose(
        frozen.label_embeddings_, zero_shot.label_embeddings_, atol=1e-5
    )
    _s1, i1 = frozen.predict_topk(test, 3)
    _s2, i2 = zero_shot.predict_topk(test, 3)
    np.testing.assert_array_equal(i1, i2)


def test_auto_trainable_layers_follow_the_device(bert2, docs):
    train, Y, _, _ = docs
    clf = _clf(bert2, n_epochs=1).fit(train, Y, label_info=LabelInfo(text=LABEL_TEXT))
    # "auto" on the CPU: 2, i.e. every layer of this 2-layer encoder
    assert clf.trainable_layers_ == 2


def _texts_of(bert, train, config):
    from skxmc.models._dual_encoder import _Texts
    from skxmc.nn import DualEncoderLoss, DualEncoderNetwork
    from skxmc.nn._text_encoder import TextEncoder
    from skxmc.nn._transformer import load_encoder, tokenize

    encoder, tokenizer = load_encoder(bert)
    net = DualEncoderNetwork(encoder, DualEncoderLoss(32)).eval()
    return _Texts(
        net, TextEncoder(encoder), tokenizer, tokenize(tokenizer, train, 16),
        tokenize(tokenizer, LABEL_TEXT, 8), config, torch.device("cpu"),
    )  # fmt: skip


def test_validation_score_is_the_held_out_precision_at_1(bert, docs):
    from skxmc.models import DualEncoderConfig
    from skxmc.models._dual_encoder import _validation_precision

    train, Y, _, _ = docs
    texts_of = _texts_of(bert, train, DualEncoderConfig())
    rows = np.arange(3, 150, 7)
    with torch.no_grad():
        cosines = texts_of.queries(rows) @ texts_of.labels().T
    best = cosines.argmax(axis=1)
    literal = np.mean([Y[r, j] for r, j in zip(rows, best)])
    assert _validation_precision(texts_of, Y, rows) == pytest.approx(literal)


@pytest.mark.parametrize(
    "scripted, patience, kept",
    [([0.5, 0.9, 0.1], 3, 1), ([0.5, 0.4, 0.3, 0.2], 2, 0)],
)
def test_early_stopping_keeps_the_best_epoch_without_training_on_its_rows(
    bert, docs, monkeypatch, scripted, patience, kept
):
    import skxmc.models._dual_encoder as engine

    seen = {"rows": [], "states": [], "trained": set()}

    def scripted_score(texts_of, Y, rows):
        seen["rows"].append(rows)
        state = texts_of.net.encoder.state_dict()
        seen["states"].append({k: v.detach().clone() for k, v in state.items()})
        return scripted[len(seen["states"]) - 1]

    batches = engine._EpochSampler.batches

    def recorded_batches(self, epoch):
        out = batches(self, epoch)
        for b in out:
            seen["trained"].update(np.asarray(b).tolist())
        return out

    monkeypatch.setattr(engine, "_validation_precision", scripted_score)
    monkeypatch.setattr(engine._EpochSampler, "batches", recorded_batches)
    train, Y, _, _ = docs
    clf = _clf(
        bert, n_epochs=len(scripted), early_stopping=True, validation_fraction=0.25,
        n_iter_no_change=patience,
    ).fit(train, Y, label_info=LabelInfo(text=LABEL_TEXT))  # fmt: skip
    n_scored = min(len(scripted), kept + patience + 1)
    assert clf.validation_scores_ == scripted[:n_scored]
    assert len(clf.loss_curve_) == n_scored
    held = seen["rows"][0]
    assert all(np.array_equal(r, held) for r in seen["rows"])
    assert len(held) == round(0.25 * np.sum(np.diff(Y.indptr) > 0))
    assert not seen["trained"] & set(held.tolist())
    # the fitted encoder holds the weights scored best, not the last ones
    final = clf.network_.encoder.state_dict()
    for name, value in seen["states"][kept].items():
        torch.testing.assert_close(final[name], value, rtol=0, atol=0)
    assert any(
        not torch.equal(final[name], value)
        for name, value in seen["states"][-1].items()
    )


# ------------------------------------------------ per-label refinement (M4)
def test_refined_reranker_is_the_literal_fusion(bert, docs):
    train, Y, test, _ = docs
    clf = _clf(bert, n_epochs=1, refine_epochs=3, top_k=8).fit(
        train[:64], Y[:64], label_info=LabelInfo(text=LABEL_TEXT)
    )
    head = clf.model_.refinement
    assert head is not None and float(head.free.weight.detach().abs().sum()) > 0
    cosines, cos_labels = clf.predict_topk(test[:10], 5)
    q = clf.transform(test[:10])
    z = clf.label_embeddings_
    eta = head.free.weight.detach().numpy()
    b = head.bias.weight.detach().numpy()[:, 0]
    scale, offset = float(head.log_scale.detach().exp()), float(head.offset.detach())
    for weight in (0.0, 0.3, 1.0):
        clf.set_params(reranker="refined", rerank_size=5, refine_weight=weight)
        scores, labels = clf.predict_topk(test[:10], 3)
        for i in range(10):
            ids = cos_labels[i]
            logits = scale * ((z[ids] + eta[ids]) @ q[i]) + b[ids] + offset
            fused = (1 - weight) * (1 + cosines[i]) / 2 + weight / (1 + np.exp(-logits))
            order = np.argsort(-fused, kind="stable")[:3]
            assert labels[i].tolist() == ids[order].tolist()
            np.testing.assert_allclose(scores[i], fused[order], rtol=1e-5, atol=1e-6)
        if weight == 0.0:  # the cosine's own order
            np.testing.assert_array_equal(labels, cos_labels[:, :3])
    clf.set_params(reranker=None)
    np.testing.assert_array_equal(clf.predict_topk(test[:10], 5)[1], cos_labels)
    # more candidates asked than labels: padding stays -inf / -1, no NaN
    clf.set_params(reranker="refined", rerank_size=20, refine_weight=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores, labels = clf.predict_topk(test[:3], 12)
    assert np.all(labels[:, 8:] == -1) and np.all(np.isneginf(scores[:, 8:]))
    assert np.all(np.isfinite(scores[:, :8]))


def test_refinement_learns_labels_their_text_does_not_describe(bert, docs):
    """With every label text moved to another label, the cosine ranks the
    wrong labels; the free vectors learn the right ones from the training
    rows (frozen encoder, so only the refinement can)."""
    train, Y, test, Y_test = docs
    shifted = LABEL_TEXT[1:] + LABEL_TEXT[:1]
    clf = _clf(
        bert, n_epochs=0, refine_epochs=30, refine_learning_rate=0.1, rerank_size=8
    ).fit(train, Y, label_info=LabelInfo(text=shifted))
    cosine = precision_at_k(Y_test, clf.predict_topk(test, 1), k=1)
    clf.set_params(reranker="refined", refine_weight=1.0)
    refined = precision_at_k(Y_test, clf.predict_topk(test, 1), k=1)
    assert refined >= cosine + 0.3, (cosine, refined)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n_rows=st.integers(1, 6), n_labels=st.integers(2, 12))
def test_refinement_candidates_keep_the_shortlist_and_add_the_gold(
    data, n_rows, n_labels
):
    from skxmc.models._dual_encoder import _refinement_candidates

    width = data.draw(st.integers(1, n_labels))
    dense = np.array(
        data.draw(
            st.lists(
                st.lists(st.booleans(), min_size=n_labels, max_size=n_labels),
                min_size=n_rows,
                max_size=n_rows,
            )
        ),
        dtype=np.float32,
    )
    Y = sp.csr_matrix(dense)
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    shortlist = np.stack([rng.permutation(n_labels)[:width] for _ in range(n_rows)])
    out = _refinement_candidates(shortlist, Y)
    np.testing.assert_array_equal(out[:, :width], shortlist)
    assert out.shape[1] - width <= width
    for i in range(n_rows):
        extra = [j for j in out[i, width:] if j >= 0]
        gold = set(np.flatnonzero(dense[i]).tolist())
        missing = sorted(gold - set(shortlist[i].tolist()))
        # the first missing gold labels by id, as many as the shortlist is wide
        assert extra == missing[:width]


def test_refined_reranker_needs_the_refinement(bert, docs):
    train, Y, test, _ = docs
    info = LabelInfo(text=LABEL_TEXT)
    with pytest.raises(ValueError, match=r"reranker='refined'.*refine_epochs"):
        _clf(bert, n_epochs=0, reranker="refined").fit(
            train[:16], Y[:16], label_info=info
        )
    fitted = _clf(bert, n_epochs=0).fit(train[:16], Y[:16], label_info=info)
    fitted.set_params(reranker="refined")
    with pytest.raises(ValueError, match="no per-label classifiers"):
        fitted.predict_topk(test[:2], 2)


def test_zero_shot_labels_join_the_refinement_without_a_free_vector(bert, docs):
    train, Y, test, _ = docs
    clf = _clf(bert, n_epochs=0, refine_epochs=2, reranker="refined").fit(
        train[:48], Y[:48], label_info=LabelInfo(text=LABEL_TEXT)
    )
    head = clf.model_.refinement
    median_bias = float(head.bias.weight.detach()[:, 0].median())
    clf.add_labels([LABEL_TEXT[0]], labels=[8])
    head = clf.model_.refinement
    assert head.n_labels == 9 and head.free.weight.shape[0] == 9
    assert float(head.free.weight.detach()[8].abs().sum()) == 0.0
    assert float(head.bias.weight.detach()[8, 0]) == pytest.approx(median_bias)
    np.testing.assert_allclose(
        head.label_embeddings[8].numpy(), clf.label_embeddings_[8], rtol=1e-6
    )
    _, labels = clf.predict_topk(test[:5], 9)
    assert 8 in labels
