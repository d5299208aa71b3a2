"""EncoderComponent and DECAF / ECLARE with a frozen pretrained encoder.

Oracles: the fusion part is the literal cosine of separately encoded texts;
the candidates are a brute-force sort; the
estimators' ``encoder`` option widens shortlists and the fusion exactly as
documented, survives pickling, and refuses what it cannot use.
"""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from skxmc import DecafClassifier, EclareClassifier, LabelInfo
from skxmc.datasets import make_xmc_classification
from skxmc.models import EncoderComponent
from skxmc.nn._transformer import encode, load_encoder
from skxmc.utils._testing import tiny_bert_dir


@pytest.fixture(scope="module")
def data():
    # words w0..w59: all in the tiny BERT's vocabulary
    d = make_xmc_classification(
        n_samples=160, n_labels=12, n_features=60, return_text=True, random_state=0
    )
    return d.text, d.Y.tocsr(), d.label_text


@pytest.fixture(scope="module")
def component(data):
    _, _, label_text = data
    return EncoderComponent(*load_encoder(tiny_bert_dir()), max_length=16).fit(
        label_text
    )


def _plain(texts):
    model, tokenizer = load_encoder(tiny_bert_dir())
    return encode(model, tokenizer, texts, max_length=16, pooling="mean")


def test_fusion_parts_are_literal_cosines(component, data):
    texts, _, label_text = data
    docs, labels = _plain(texts[100:110]), _plain(label_text)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, len(label_text), size=(10, 5))
    ids[3, 2:] = -1
    parts = component.fusion_parts(ids, component.encode(texts[100:110]))
    assert set(parts) == {"encoder"}
    for i in range(10):
        d = docs[i] / np.linalg.norm(docs[i])
        for j in range(5):
            label = ids[i, j]
            if label < 0:
                assert parts["encoder"][i, j] == 0
                continue
            cos = d @ labels[label] / np.linalg.norm(labels[label])
            assert parts["encoder"][i, j] == pytest.approx(cos, abs=1e-5)


def test_candidates_are_a_brute_force_sort(component, data):
    texts, _, _ = data
    docs = component.encode(texts[100:130])
    sims = docs @ component.label_embeddings_.T
    # best first, equal cosines by the lower id
    expected = np.array([sorted(range(len(s)), key=lambda c: (-s[c], c)) for s in sims])
    np.testing.assert_array_equal(component.candidates(docs, 5), expected[:, :5])
    assert component.candidates(docs, 100).shape == (30, 12)  # capped


def test_new_labels_are_encoded(data):
    _, _, label_text = data
    fitted = EncoderComponent(*load_encoder(tiny_bert_dir()), max_length=16)
    fitted.fit(label_text)
    fitted.add_labels(["w1 w2 w3"])
    assert fitted.label_embeddings_.shape[0] == len(label_text) + 1
    parts = fitted.fusion_parts(
        np.array([[len(label_text)]]), fitted.encode(["w1 w2 w3"])
    )
    assert parts["encoder"][0, 0] == pytest.approx(1.0, abs=1e-5)


ENCODER_PARAMS = {
    "embedding_dim": 8,
    "n_epochs": 2,
    "batch_size": 32,
    "learning_rate": 0.05,
    "max_leaf_size": 2,
    "beam_size": 1,
    "fusion": "learned",
    "fusion_fraction": 0.25,
    "reranker": None,
    "max_length": 16,
    "device": "cpu",
    "random_state": 0,
}


@pytest.mark.parametrize("cls", [DecafClassifier, EclareClassifier])
def test_encoder_option_adds_candidates_and_fusion_features(cls, data):
    texts, Y, label_text = data
    info = LabelInfo(text=label_text)
    plain = cls(**ENCODER_PARAMS).fit(texts[:120], Y[:120], label_info=info)
    with_encoder = cls(
        **ENCODER_PARAMS, encoder=tiny_bert_dir(), encoder_shortlist_size=12
    ).fit(texts[:120], Y[:120], label_info=info)
    # one more pair feature: the cosine
    assert with_encoder.fusion_.n_features_ == plain.fusion_.n_features_ + 1
    # beam 1 shortlists a cluster of <= 2 labels (plus ECLARE's graph); the
    # encoder's 12 candidates are every label, so every slot is filled
    _, ids = with_encoder.predict_topk(texts[120:], k=12)
    assert (ids >= 0).all()
    assert all(len(set(row)) == 12 for row in ids)
    _, few = plain.predict_topk(texts[120:], k=12)
    assert (few < 0).any()
    # a pickled model predicts the same (the encoder travels with it)
    again = pickle.loads(pickle.dumps(with_encoder))
    np.testing.assert_array_equal(again.predict_topk(texts[120:], k=5)[1], ids[:, :5])
    # one query alone scores as in the batch
    s1, i1 = with_encoder.predict_topk(texts[125:126], k=5)
    s, i = with_encoder.predict_topk(texts[120:], k=5)
    np.testing.assert_array_equal(i1[0], i[5])
    np.testing.assert_allclose(s1[0], s[5], rtol=1e-6)
    # zero-shot labels are encoded (no warning needed beyond the re-ranker's)
    with_encoder.add_labels(["w3 w4 w5"])
    assert with_encoder.model_.encoder.label_embeddings_.shape[0] == 13


def test_encoder_refuses_what_it_cannot_use(data):
    texts, Y, label_text = data
    info = LabelInfo(text=label_text)
    params = {**ENCODER_PARAMS, "encoder": tiny_bert_dir()}
    with pytest.raises(ValueError, match="fusion='learned'"):
        DecafClassifier(**{**params, "fusion": "weights"}).fit(
            texts[:60], Y[:60], label_info=info
        )
    with pytest.raises(ValueError, match="'shortlist'"):
        DecafClassifier(**{**params, "reranker": "shortlist"}).fit(
            texts[:60], Y[:60], label_info=info
        )
    X = sp.random(60, 20, density=0.3, format="csr", random_state=0)
    Z = sp.random(12, 20, density=0.3, format="csr", random_state=1)
    with pytest.raises(ValueError, match="raw text"):
        DecafClassifier(**params).fit(X, Y[:60], label_info=LabelInfo(features=Z))
    with pytest.raises(ValueError, match="max_length"):
        DecafClassifier(**{**params, "max_length": 10_000}).fit(
            texts[:60], Y[:60], label_info=info
        )


def test_vectorizer_is_cloned_and_used(data):
    texts, Y, label_text = data
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    clf = DecafClassifier(
        **{**ENCODER_PARAMS, "fusion": "weights"}, vectorizer=vectorizer
    ).fit(texts[:80], Y[:80], label_info=LabelInfo(text=label_text))
    assert not hasattr(vectorizer, "vocabulary_")  # the parameter is not fitted
    assert clf.vectorizer_.ngram_range == (1, 2)
    assert any(" " in term for term in clf.vectorizer_.get_feature_names_out())


def test_changed_encoder_weights_do_not_resume(data, tmp_path):
    import shutil

    from skxmc.utils._testing import TINY_BERT_WORDS, save_tiny_bert

    texts, Y, label_text = data
    info = LabelInfo(text=label_text)
    encoder = tmp_path / "encoder"
    shutil.copytree(tiny_bert_dir(), encoder)
    params = {
        **ENCODER_PARAMS,
        "n_epochs": 1,
        "encoder": str(encoder),
        "checkpoint_dir": tmp_path / "checkpoints",
    }
    first = DecafClassifier(**params).fit(texts[:80], Y[:80], label_info=info)
    DecafClassifier(**params).fit(texts[:80], Y[:80], label_info=info)
    assert len(list((tmp_path / "checkpoints").glob("decaf-*.ckpt"))) == 1
    # same path, new weights: another fingerprint, the first file is kept
    save_tiny_bert(encoder, TINY_BERT_WORDS, hidden_size=16, seed=1)
    other = DecafClassifier(**params).fit(texts[:80], Y[:80], label_info=info)
    assert len(list((tmp_path / "checkpoints").glob("decaf-*.ckpt"))) == 2
    assert not np.allclose(
        first.model_.encoder.label_embeddings_, other.model_.encoder.label_embeddings_
    )


# ------------------------------------------------------ fine-tuned encoder
def test_fine_tuned_encoder_learns_on_the_network_rows_only(data, monkeypatch):
    import torch
    from sklearn.utils import check_random_state

    from skxmc.models._dual_encoder import DualEncoderModel
    from skxmc.training._data import hold_out_rows

    texts, Y, label_text = data
    seen = []
    real = DualEncoderModel.train.__func__

    def spy(cls, texts, Y, label_texts, **kwargs):
        seen.append((list(texts), Y.copy()))
        return real(cls, texts, Y, label_texts, **kwargs)

    monkeypatch.setattr(DualEncoderModel, "train", classmethod(spy))
    params = {**ENCODER_PARAMS, "encoder": tiny_bert_dir()}
    training = {"n_epochs": 2, "batch_size": 16, "learning_rate": 1e-3}
    tuned = DecafClassifier(**params, encoder_training=training).fit(
        texts[:120], Y[:120], label_info=LabelInfo(text=label_text)
    )
    # the fusion's held-out rows (seed + 1 of the drawn seed) are not seen
    seed = int(check_random_state(0).randint(np.iinfo(np.int32).max))
    _, kept = hold_out_rows(np.arange(120), 0.25, seed + 1, "fusion_fraction")
    assert len(seen) == 1
    assert seen[0][0] == [texts[i] for i in kept]
    assert (seen[0][1] != Y[kept]).nnz == 0
    component = tuned.model_.encoder
    assert len(component.loss_curve_) == 2
    frozen, _ = load_encoder(tiny_bert_dir())
    changed = [
        not torch.equal(p, q)
        for p, q in zip(component.model.parameters(), frozen.parameters())
    ]
    assert any(changed)
    # the label index holds the fine-tuned encoder's embeddings of the texts
    np.testing.assert_allclose(
        component.label_embeddings_, component.encode(label_text), atol=2e-3
    )
    frozen_fit = DecafClassifier(**params).fit(
        texts[:120], Y[:120], label_info=LabelInfo(text=label_text)
    )
    assert not np.allclose(
        frozen_fit.model_.encoder.label_embeddings_, component.label_embeddings_
    )


def test_encoder_training_rejects_unknown_keys(data):
    texts, Y, label_text = data
    params = {**ENCODER_PARAMS, "encoder": tiny_bert_dir()}
    info = LabelInfo(text=label_text)
    with pytest.raises(ValueError, match="unknown keys \\['max_length'\\]"):
        DecafClassifier(**params, encoder_training={"max_length": 8}).fit(
            texts[:60], Y[:60], label_info=info
        )
    with pytest.raises(ValueError, match=r"encoder_training: .*'loss'"):
        DecafClassifier(**params, encoder_training={"loss": "hinge"}).fit(
            texts[:60], Y[:60], label_info=info
        )
    with pytest.raises(ValueError, match="set encoder too"):
        DecafClassifier(
            **{**ENCODER_PARAMS, "fusion": "weights"}, encoder_training={}
        ).fit(texts[:60], Y[:60], label_info=info)
