"""Loading encoders: offline only, refused pickles, max_length limits (issue 14)."""

import os
import socket

import numpy as np
import pytest
import torch

from skxmc.nn._transformer import check_max_length, load_encoder, tokenize
from skxmc.utils._testing import (
    KEYWORD_VOCABULARY,
    make_keyword_docs,
    save_tiny_bert,
)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    # max_position_embeddings=64
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), KEYWORD_VOCABULARY)


@pytest.fixture
def network_calls(monkeypatch):
    """Every attempt to open a network connection, refused and recorded."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args[:2])
        raise OSError("network access blocked by the test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return calls


def test_a_hub_name_is_looked_up_offline(network_calls):
    from huggingface_hub import constants

    before = os.environ.get("HF_HUB_OFFLINE"), constants.HF_HUB_OFFLINE
    with pytest.raises(ValueError, match="Could not load a transformer encoder"):
        load_encoder("some-org/a-model-that-is-not-cached")
    assert network_calls == []
    assert (os.environ.get("HF_HUB_OFFLINE"), constants.HF_HUB_OFFLINE) == before


def test_a_local_folder_loads_offline_and_restores_the_setting(
    tiny_bert, network_calls, monkeypatch
):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    model, tokenizer = load_encoder(tiny_bert)
    assert network_calls == []
    assert os.environ["HF_HUB_OFFLINE"] == "0"
    assert constants.HF_HUB_OFFLINE is False
    assert model.config.max_position_embeddings == 64
    assert tokenize(tokenizer, ["key0a key1b"], 8)[0].shape == (4,)


class _Payload:
    """Unpickling this would create ``marker``: it must never happen."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_a_pickled_bin_with_code_is_refused_clearly(tiny_bert, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    for path in tiny_bert.iterdir():
        if path.name != "model.safetensors":
            (folder / path.name).write_bytes(path.read_bytes())
    marker = tmp_path / "payload_ran"
    torch.save(
        {"embeddings.word_embeddings.weight": _Payload(marker)},
        folder / "pytorch_model.bin",
    )
    with pytest.raises(ValueError, match=r"Refused to load the weights.*safetensors"):
        load_encoder(folder)
    assert not marker.exists()


def test_check_max_length():
    import transformers

    bert = transformers.BertConfig(max_position_embeddings=64)
    assert check_max_length(bert, 64) == 64
    with pytest.raises(ValueError, match="max_length=65 exceeds the 64 positions"):
        check_max_length(bert, 65)
    # RoBERTa's positions start after the padding index: 66 - 2 usable
    roberta = transformers.RobertaConfig(max_position_embeddings=66, pad_token_id=1)
    assert check_max_length(roberta, 64) == 64
    with pytest.raises(ValueError, match="64 positions"):
        check_max_length(roberta, 65)
    for bad in (0, -3, 2.5, True, "64"):
        with pytest.raises(ValueError, match="positive integer"):
            check_max_length(bert, bad)


def test_tokenize_refuses_a_max_length_beyond_the_model(tiny_bert):
    _, tokenizer = load_encoder(tiny_bert)
    with pytest.raises(ValueError, match="max_length=65 exceeds the 64 positions"):
        tokenize(tokenizer, ["key0a"], 65)
    assert len(tokenize(tokenizer, ["key0a"], 64)) == 1


def test_lone_surrogates_reach_the_tokenizer_as_replacement_characters(tiny_bert):
    _, tokenizer = load_encoder(tiny_bert)
    clean = tokenize(tokenizer, ["key0a key1b"], 16)[0]
    dirty = tokenize(tokenizer, ["key0a \ud800 key1b"], 16)[0]
    np.testing.assert_array_equal(clean, dirty)  # BERT drops U+FFFD


@pytest.mark.parametrize("name", ["xr_transformer", "elias"])
def test_text_estimators_refuse_a_too_large_max_length_at_fit(tiny_bert, name):
    from skxmc._elias import EliasClassifier
    from skxmc._xr_transformer import XRTransformerClassifier

    cls = {"xr_transformer": XRTransformerClassifier, "elias": EliasClassifier}[name]
    docs, Y = make_keyword_docs(16, seed=0)  # short texts: no crash without a check
    est = cls(encoder=str(tiny_bert), max_length=128, device="cpu", random_state=0)
    with pytest.raises(ValueError, match="max_length=128 exceeds the 64 positions"):
        est.fit(docs, Y)


def test_tokenize_calls_the_tokenizer_in_bounded_chunks_with_the_same_ids(
    tiny_bert, monkeypatch
):
    # issue 15: one tokenizer call over a whole corpus left ~4.7 KB of RSS per
    # text behind (the call's transient lists and encodings); tokenize now
    # sends TOKENIZE_CHUNK texts per call, which must not change any id
    import skxmc.nn._transformer as transformer

    _, tokenizer = load_encoder(tiny_bert)
    docs, _ = make_keyword_docs(23, seed=1)
    docs = list(docs)
    docs[5] = "key0a \ud800 key1b"  # the surrogate clean-up still applies per chunk
    whole = tokenize(tokenizer, docs, 12)
    sizes = []

    def counting(texts, **kwargs):
        sizes.append(len(texts))
        return tokenizer(texts, **kwargs)

    counting._skxmc_position_limit = tokenizer._skxmc_position_limit
    monkeypatch.setattr(transformer, "TOKENIZE_CHUNK", 5)
    chunked = tokenize(counting, docs, 12)
    assert sizes == [5, 5, 5, 5, 3]
    assert len(chunked) == len(whole) == 23
    for a, b in zip(chunked, whole, strict=True):
        assert a.dtype == np.int64
        np.testing.assert_array_equal(a, b)
    assert tokenize(counting, [], 12) == []
