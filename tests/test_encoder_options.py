"""trainable_layers, memory and pooling="auto" of the transformer estimators."""

import json

import numpy as np
import pytest
import torch

from skxmc import EliasClassifier, XRTransformerClassifier
from skxmc.nn._text_encoder import CPU_TRAINABLE_LAYERS, TextEncoder
from skxmc.nn._transformer import encode, load_encoder, tokenize
from skxmc.utils._testing import KEYWORD_VOCABULARY, make_keyword_docs, save_tiny_bert


@pytest.fixture(scope="module")
def bert2(tmp_path_factory):
    """A random-init 2-layer BERT (hidden 32) over the keyword vocabulary."""
    folder = tmp_path_factory.mktemp("bert2")
    return save_tiny_bert(folder, KEYWORD_VOCABULARY, num_hidden_layers=2)


@pytest.fixture(scope="module")
def data():
    return make_keyword_docs(48, seed=0)


def _xrt(encoder, **params):
    defaults = {
        "max_length": 16, "pooling": "mean", "branching_factor": 2,
        "max_leaf_size": 2, "n_steps": 6, "batch_size": 16,
        "learning_rate": 1e-3, "head_learning_rate": 5e-2, "beam_size": 4,
        "device": "cpu", "n_jobs": 1, "random_state": 0,
    }  # fmt: skip
    return XRTransformerClassifier(encoder=encoder, **{**defaults, **params})


def _elias(encoder, **params):
    defaults = {
        "max_length": 16, "pooling": "mean", "max_leaf_size": 2, "kappa": 4,
        "beam_size": 2, "shortlist_size": 8, "n_epochs": 1, "batch_size": 16,
        "device": "cpu", "n_jobs": 1, "random_state": 0,
    }  # fmt: skip
    return EliasClassifier(encoder=encoder, **{**defaults, **params})


def _weights(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _changed(before, model):
    return {
        n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())
    }


@pytest.mark.parametrize("make", [_xrt, _elias], ids=["xr-transformer", "elias"])
def test_only_the_top_layers_change(bert2, data, make):
    docs, Y = data
    pretrained = _weights(load_encoder(bert2)[0])
    clf = make(bert2, trainable_layers=1).fit(docs, Y)
    assert clf.trainable_layers_ == 1
    encoder = clf.encoder_ if hasattr(clf, "encoder_") else clf.network_.encoder.model
    changed = _changed(pretrained, encoder)
    assert changed and all(n.startswith("encoder.layer.1.") for n in changed)
    assert "state_cache" in clf.fit_times_


@pytest.mark.parametrize("make", [_xrt, _elias], ids=["xr-transformer", "elias"])
def test_frozen_encoder_embeds_as_the_pretrained_one(bert2, data, make):
    docs, Y = data
    model, tokenizer = load_encoder(bert2)
    pretrained = _weights(model)
    clf = make(bert2, trainable_layers=0).fit(docs, Y)
    encoder = clf.encoder_ if hasattr(clf, "encoder_") else clf.network_.encoder.model
    assert not _changed(pretrained, encoder)
    expected = encode(model, tokenizer, docs[:5], max_length=16, pooling="mean")
    got = clf.transform(docs[:5])
    if make is _xrt:  # unit-norm rows
        expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_xr_transformer_ranker_reads_the_cached_embedding(bert2, data):
    """The training features come from the cache: they equal a plain encode."""
    docs, Y = data
    clf = _xrt(bert2, trainable_layers=1).fit(docs, Y)
    fitted = TextEncoder(clf.encoder_, pooling="mean", trainable_layers=1)
    _, tokenizer = load_encoder(bert2)
    ids = tokenize(tokenizer, docs, 16)
    cache = fitted.cache_states(ids, pad_id=0)  # float16 states
    np.testing.assert_allclose(
        fitted.encode_cached(cache),
        encode(clf.encoder_, tokenizer, docs, max_length=16, pooling="mean"),
        atol=2e-2,
    )


@pytest.mark.slow
@pytest.mark.parametrize("make", [_xrt, _elias], ids=["xr-transformer", "elias"])
def test_memory_skips_the_frozen_forward_on_a_second_fit(
    bert2, data, make, tmp_path, monkeypatch
):
    docs, Y = data
    calls = []
    real = TextEncoder.lower_states

    def counting(self, input_ids, attention_mask):
        calls.append(input_ids.shape[0])
        return real(self, input_ids, attention_mask)

    monkeypatch.setattr(TextEncoder, "lower_states", counting)
    first = make(bert2, trainable_layers=1, memory=tmp_path).fit(docs, Y)
    assert sum(calls) == len(docs)
    # another fit on the same documents, other training parameters
    second = make(bert2, trainable_layers=1, memory=tmp_path, batch_size=8)
    second.fit(docs, Y)
    assert sum(calls) == len(docs)
    # the same parameters give the same model with or without the memory
    again = make(bert2, trainable_layers=1, memory=tmp_path).fit(docs, Y)
    plain = make(bert2, trainable_layers=1).fit(docs, Y)
    assert again.loss_curve_ == plain.loss_curve_ == first.loss_curve_


@pytest.mark.slow
@pytest.mark.parametrize("make", [_xrt, _elias], ids=["xr-transformer", "elias"])
def test_auto_options_follow_the_device_and_the_model_folder(tmp_path, data, make):
    docs, Y = data
    folder = save_tiny_bert(tmp_path / "st", KEYWORD_VOCABULARY)
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True})
    )
    clf = make(folder, pooling="auto", trainable_layers="auto").fit(docs, Y)
    assert clf.pooling_ == "mean"
    assert clf.trainable_layers_ == CPU_TRAINABLE_LAYERS  # device="cpu"
    (folder / "1_Pooling" / "config.json").unlink()
    plain = make(folder, pooling="auto").fit(docs, Y)
    assert plain.pooling_ == "cls"


@pytest.mark.parametrize("make", [_xrt, _elias], ids=["xr-transformer", "elias"])
def test_max_length_beyond_the_positions_is_a_clear_error(bert2, data, make):
    docs, Y = data
    with pytest.raises(ValueError, match="exceeds the 64 positions"):
        make(bert2, max_length=65).fit(docs, Y)
