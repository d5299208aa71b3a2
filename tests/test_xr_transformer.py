"""XRTransformerClassifier and the transformer encoder utilities, on a tiny BERT."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skxmc import LabelInfo
from skxmc._xr_transformer import XRTransformerClassifier
from skxmc.metrics import precision_at_k
from skxmc.nn._transformer import (
    encode,
    is_oom_error,
    load_encoder,
    map_batches_with_oom_backoff,
    pool,
    tokenize,
)
from skxmc.utils._testing import (
    KEYWORD_LABELS,
    KEYWORD_VOCABULARY,
    KEYWORDS,
    make_keyword_docs,
    save_tiny_bert,
)

N_LABELS = KEYWORD_LABELS


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A random-init 1-layer BERT (hidden 32) with a WordPiece vocab of the words."""
    words = [*KEYWORD_VOCABULARY, "label"]
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), words)


@pytest.fixture(scope="module")
def data():
    return make_keyword_docs(64, seed=0), make_keyword_docs(32, seed=1)


def _clf(encoder, **params):
    defaults = {
        "max_length": 16,
        "pooling": "mean",
        "branching_factor": 2,
        "max_leaf_size": 2,
        "n_steps": 25,
        "batch_size": 16,
        "learning_rate": 1e-3,
        "head_learning_rate": 5e-2,
        "warmup": 0.1,
        "beam_size": 4,
        "top_k": 5,
        "device": "cpu",
        "n_jobs": 1,
        "random_state": 0,
    }
    defaults.update(params)
    return XRTransformerClassifier(encoder=encoder, **defaults)


@pytest.fixture(scope="module")
def fitted(tiny_bert, data):
    (docs, Y), _ = data
    return _clf(tiny_bert).fit(docs, Y)


# ------------------------------------------------------------ the estimator
def test_every_level_is_fine_tuned_and_its_loss_falls(fitted):
    tree = fitted.matcher_tree_
    assert tree.n_nodes == [1, 2, 4, N_LABELS]  # 8 labels, leaves of 2, binary
    # 25 steps of 4 per epoch (64 rows, batches of 16): 7 epochs, the last cut
    assert fitted.n_epochs_ == [7, 7, 7] and fitted.model_.n_steps == [25, 25, 25]
    assert len(fitted.loss_curve_) == sum(fitted.n_epochs_)
    assert np.all(np.isfinite(fitted.loss_curve_))
    for level in range(3):
        curve = fitted.loss_curve_[7 * level : 7 * (level + 1)]
        assert np.mean(curve[-2:]) < 0.8 * curve[0], level
    dim = fitted.encoder_.config.hidden_size
    for (W, b), n in zip(fitted.matcher_weights_, tree.n_nodes[1:]):
        assert W.shape == (n, dim) and b.shape == (n,)
    assert set(fitted.fit_times_) == {
        "tfidf",
        "preliminary_tree",
        "fine_tuning",
        "encoding",
        "embedding_weight",
        "refined_tree",
        "ranker",
    }


def test_children_start_from_their_parent_row(tiny_bert, data):
    (docs, Y), _ = data
    # without fine-tuning steps, every level is its parent's copy
    clf = _clf(tiny_bert, n_steps=[3, 0, 0]).fit(docs, Y)
    tree = clf.matcher_tree_
    for t in (2, 3):
        W, b = clf.matcher_weights_[t - 1]
        W_parent, b_parent = clf.matcher_weights_[t - 2]
        np.testing.assert_array_equal(W, W_parent[tree.parents(t)])
        np.testing.assert_array_equal(b, b_parent[tree.parents(t)])
    assert clf.model_.n_steps == [3, 0, 0] and clf.n_epochs_ == [1, 0, 0]


def test_refined_tree_covers_every_label_exactly_once(fitted):
    tree = fitted.label_tree_
    assert tree.n_labels == N_LABELS
    leaves = tree.cluster_chain[-1]
    np.testing.assert_array_equal(np.diff(leaves.indptr), 1)  # one leaf per label
    assert sorted(np.nonzero(tree.project(sp.identity(N_LABELS), 1).sum(0))[1]) == [
        0,
        1,
    ]
    assert fitted.model_.n_labels == N_LABELS
    # the ranker reads [TF-IDF, embedding]
    n_tfidf = len(fitted.vectorizer_.vocabulary_)
    n_dense = fitted.encoder_.config.hidden_size
    assert fitted.model_.ranker.n_features == n_tfidf + n_dense


def test_learns_a_separable_problem_far_above_popularity(fitted, data):
    (_, Y_train), (docs, Y) = data
    p1 = precision_at_k(Y, fitted.predict_topk(docs), k=1)
    popular = np.argsort(-np.asarray(Y_train.sum(0)).ravel())[:1]
    indices = np.tile(popular, (len(docs), 1))
    baseline = precision_at_k(Y, (np.ones(indices.shape), indices), k=1)
    assert p1 > 0.9 and p1 > baseline + 0.5


def test_transform_returns_normalised_fine_tuned_embeddings(fitted, tiny_bert, data):
    (docs, _), _ = data
    emb = fitted.transform(docs[:6])
    assert emb.shape == (6, fitted.encoder_.config.hidden_size)
    assert emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    model, tokenizer = load_encoder(tiny_bert)
    pretrained = encode(model, tokenizer, docs[:6], normalize=True)
    assert not np.allclose(emb, pretrained, atol=1e-3)  # the encoder moved
    assert next(fitted.encoder_.parameters()).device.type == "cpu"


def test_label_text_init_mean_pooling_and_bce(tiny_bert, data):
    (docs, Y), (test_docs, Y_test) = data
    text = [" ".join(pair) + " label" for pair in KEYWORDS]
    clf = _clf(tiny_bert, label_text_init=True, pooling="mean", matcher_loss="bce").fit(
        docs, Y, label_info=LabelInfo(text=text)
    )
    assert clf.model_.n_steps == [25, 25, 25]
    assert precision_at_k(Y_test, clf.predict_topk(test_docs), k=1) > 0.8
    with pytest.raises(ValueError, match="label_text_init=True needs label text"):
        _clf(tiny_bert, label_text_init=True, n_steps=1).fit(docs, Y)


def test_bad_encoder_path_gives_a_clear_error(tmp_path, data):
    (docs, Y), _ = data
    missing = tmp_path / "no_model_here"
    with pytest.raises(ValueError, match="Could not load a transformer encoder"):
        _clf(missing).fit(docs, Y)
    with pytest.raises(ValueError, match=str(missing)):
        load_encoder(missing)


def test_invalid_params(tiny_bert, data):
    (docs, Y), _ = data
    with pytest.raises(ValueError, match="pooling"):
        _clf(tiny_bert, pooling="max").fit(docs, Y)
    with pytest.raises(ValueError, match="n_steps"):
        _clf(tiny_bert, n_steps=[1.5]).fit(docs, Y)


def test_training_halves_its_forward_batch_on_oom(tiny_bert, data, monkeypatch):
    import skxmc.nn._text_encoder as module  # the matcher's forward pass

    (docs, Y), _ = data
    real = module.pooled_forward
    sizes = []

    def fake(model, input_ids, mask, pooling):
        sizes.append(input_ids.shape[0])
        if input_ids.shape[0] > 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")
        return real(model, input_ids, mask, pooling)

    monkeypatch.setattr(module, "pooled_forward", fake)
    with pytest.warns(RuntimeWarning, match="rows per forward pass") as record:
        clf = _clf(tiny_bert, n_steps=[2, 1, 1]).fit(docs, Y)
    messages = [str(w.message) for w in record]
    assert "with 8 rows" in messages[0] and "with 4 rows" in messages[1]
    assert sizes[:3] == [16, 8, 4]
    assert max(sizes[3:]) == 4
    assert clf.model_.n_steps == [2, 1, 1]


# --------------------------------------------------------- encoder utilities
def test_oom_backoff_halves_and_covers_every_item():
    calls, halvings = [], []

    def fn(start, stop):
        calls.append((start, stop))
        if stop - start > 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return list(range(start, stop))

    results, size = map_batches_with_oom_backoff(fn, 10, 16, on_oom=halvings.append)
    assert [i for r in results for i in r] == list(range(10))
    # the first batch holds all 10 items: 10 -> 5 -> 2
    assert size == 2 and halvings == [5, 2]
    assert calls[:3] == [(0, 10), (0, 5), (0, 2)]


def test_oom_backoff_reraises_other_errors_and_oom_at_size_one():
    def other(start, stop):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        map_batches_with_oom_backoff(other, 4, 4)

    def always(start, stop):
        raise RuntimeError("CUDA error: out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        map_batches_with_oom_backoff(always, 4, 4)
    assert is_oom_error(torch.cuda.OutOfMemoryError("x"))
    assert not is_oom_error(ValueError("out of memory"))


def test_encode_is_order_preserving_and_matches_unbatched(tiny_bert):
    model, tokenizer = load_encoder(tiny_bert)
    texts = ["key0a", "key1a key2b noise3 noise4 noise5", "key3b noise1", "noise2"]
    batched = encode(model, tokenizer, texts, batch_size=2, pooling="mean")
    for i, text in enumerate(texts):
        single = encode(model, tokenizer, [text], batch_size=1, pooling="mean")
        np.testing.assert_allclose(batched[i], single[0], atol=1e-5)
    assert batched.dtype == np.float32 and batched.shape == (4, 32)
    ids = tokenize(tokenizer, texts, max_length=3)
    assert max(len(a) for a in ids) == 3 and ids[0][0] == tokenizer.cls_token_id


def test_encode_recovers_from_oom(tiny_bert):
    model, tokenizer = load_encoder(tiny_bert)
    texts = [f"key{i % 8}a noise{i % 12}" for i in range(10)]
    expected = encode(model, tokenizer, texts, batch_size=10)

    class Flaky(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.config = inner.config

        def forward(self, input_ids, attention_mask):
            if input_ids.shape[0] > 3:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory")
            return self.inner(input_ids=input_ids, attention_mask=attention_mask)

    halvings = []
    got = encode(Flaky(model), tokenizer, texts, batch_size=10, on_oom=halvings.append)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert halvings == [5, 2]


def test_pool_rejects_unknown_pooling():
    with pytest.raises(ValueError, match="Unknown pooling"):
        pool(torch.zeros(1, 2, 3), torch.ones(1, 2), "max")


# ----------------------------------------------------------------------- gpu


# ------------------------------------------------- the ranker's features
def test_concat_features_keep_the_tfidf_block_as_xr_linear_sees_it():
    from sklearn.preprocessing import normalize

    from skxmc.models._xr_transformer import _concat_features

    tfidf = sp.csr_matrix(np.array([[3.0, 0.0, 4.0], [0.0, 2.0, 0.0]]))
    emb = np.array([[0.6, 0.8], [1.0, 0.0]])
    got = _concat_features(tfidf, emb, 0.5).toarray()
    expected = np.hstack([normalize(tfidf).toarray(), 0.5 * emb])
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # weight 0: the TF-IDF alone (no stored embedding entry)
    zero = _concat_features(tfidf, emb, 0.0)
    assert zero.shape == (2, 5) and zero[:, 3:].nnz == 0
    # None: the recipe of models pickled before, every row re-normalised
    old = _concat_features(tfidf, emb, None).toarray()
    renormalised = np.hstack([normalize(tfidf).toarray(), emb]) / np.sqrt(2)
    np.testing.assert_allclose(old, renormalised, rtol=1e-6)


def test_ranker_and_tree_defaults_are_xr_linears_and_its_threshold_is_tried():
    """With embedding_weight=0 the ranker is XRLinearClassifier on the same
    TF-IDF with every shared default equal; the weight threshold is chosen on
    validation rows between XR-Linear's 0.1 and PECOS's 0.001 (the validation
    rows of two data sets disagree on which is better, see the parameter's
    docstring), so XR-Linear with its defaults is always a candidate."""
    from dataclasses import asdict

    from skxmc import XRLinearClassifier
    from skxmc.models._xr_transformer import (
        WEIGHT_THRESHOLDS,
        RankerParams,
        TreeParams,
    )

    xrl = XRLinearClassifier().get_params()
    xrt = XRTransformerClassifier("any-encoder").get_params()
    engine = {**asdict(RankerParams()), **asdict(TreeParams())}
    assert {"weight_threshold", "C", "max_leaf_size"} <= set(engine)
    for name in sorted(set(engine) - {"weight_threshold"}):
        assert xrt[name] == engine[name] == xrl[name], name
    assert xrt["weight_threshold"] == "auto"
    assert xrl["weight_threshold"] in WEIGHT_THRESHOLDS
    assert engine["weight_threshold"] in WEIGHT_THRESHOLDS


def test_auto_weight_threshold_is_the_best_on_validation_rows(fitted, data):
    """Each threshold's score is a literal refit on the validation split; the
    best is kept (the larger on ties), trained on all rows, and the TF-IDF-
    alone score of the weights' grid is the chosen threshold's (not refitted)."""
    from dataclasses import replace

    from skxmc.models._xr_transformer import (
        WEIGHT_THRESHOLDS,
        _validation_score,
        _validation_split,
    )

    (docs, Y), _ = data
    model = fitted.model_
    scores = model.weight_threshold_scores
    assert list(scores) == list(WEIGHT_THRESHOLDS)
    best = max(scores.values())
    assert fitted.weight_threshold_ == max(t for t, v in scores.items() if v == best)
    assert model.weight_threshold == fitted.weight_threshold_
    assert model.embedding_weight_scores[0.0] == scores[fitted.weight_threshold_]
    # the literal score of each threshold: tree and ranker on the kept rows
    from sklearn.utils import check_random_state

    seed = check_random_state(0).randint(np.iinfo(np.int32).max)  # the fit's seed
    ranker_seed = int(np.random.default_rng(seed).integers(2**31 - 1, size=4)[3])
    params = fitted._engine_params()
    split = _validation_split(len(docs), fitted.validation_fraction, ranker_seed)
    X = fitted.vectorizer_.transform(docs)
    emb = np.zeros((len(docs), 4), np.float32)  # weight 0 never reads it
    for threshold, score in scores.items():
        ranker = replace(params["ranker"], weight_threshold=threshold)
        literal = _validation_score(
            X, emb, Y, params["tree"], ranker, 0.0, split, seed=ranker_seed, n_jobs=1
        )
        assert literal == pytest.approx(score)
    # a model trained at a threshold keeps no smaller weight
    for level in range(len(model.ranker.tree.n_nodes) - 1):
        W, _ = model.ranker.weights(level)
        if W.nnz:
            assert np.abs(W.data).min() >= fitted.weight_threshold_ * 0.999


def test_weight_zero_is_xr_linear_on_the_same_tfidf(tiny_bert, data):
    """embedding_weight=0: the model is XRLinearClassifier's, same TF-IDF and
    random_state (its tree and ranker; the fine-tuned encoder is not read)."""
    from skxmc import XRLinearClassifier

    (docs, Y), (test_docs, _) = data
    for random_state in (0, 3):
        clf = _clf(
            tiny_bert, embedding_weight=0.0, n_steps=2, random_state=random_state
        ).fit(docs, Y)
        assert clf.embedding_weight_ == 0.0 and not clf.model_.embedding_weight_scores
        xrl = XRLinearClassifier(
            branching_factor=2,
            max_leaf_size=2,
            weight_threshold=clf.weight_threshold_,
            beam_size=4,
            n_jobs=1,
            random_state=random_state,
        ).fit(clf.vectorizer_.transform(docs), Y)
        want = xrl.predict_topk(clf.vectorizer_.transform(test_docs), k=5)
        got = clf.predict_topk(test_docs, k=5)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_allclose(got[0], want[0], rtol=1e-5)


def test_auto_embedding_weight_is_the_best_on_validation_rows(fitted):
    from skxmc.models._xr_transformer import EMBEDDING_WEIGHTS

    scores = fitted.model_.embedding_weight_scores
    assert list(scores) == list(EMBEDDING_WEIGHTS)
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    best = max(scores.values())
    assert fitted.embedding_weight_ == min(w for w, v in scores.items() if v == best)
    assert fitted.model_.embedding_weight == fitted.embedding_weight_


def test_n_iter_counts_the_ranker_solver_passes(fitted, tiny_bert, data):
    """max_iter bounds the ranker's solver passes and n_iter_ reports them (as
    XRLinearClassifier's); the fine-tuning epochs are n_epochs_."""
    assert fitted.n_iter_ == max(fitted.model_.ranker.n_iter_)
    assert 1 <= fitted.n_iter_ <= fitted.max_iter
    (docs, Y), _ = data
    capped = _clf(tiny_bert, max_iter=2, n_steps=0).fit(docs, Y)
    assert 1 <= capped.n_iter_ <= 2 and capped.n_epochs_ == [0, 0, 0]


def test_transform_is_declared_to_sklearn(fitted):
    """transform() is declared by transformer tags (sklearn refuses to run
    its checks on an estimator with an undeclared transform); it embeds text,
    so no input dtype is preserved."""
    from sklearn.utils import get_tags

    tags = get_tags(fitted)
    assert tags.transformer_tags is not None
    assert tags.transformer_tags.preserves_dtype == []
    assert tags.input_tags.string and not tags.input_tags.two_d_array
