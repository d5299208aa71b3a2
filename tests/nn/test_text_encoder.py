"""TextEncoder: top-k training from cached states against the frozen full forward."""

import json

import numpy as np
import pytest
import torch

from skxmc.nn._text_encoder import (
    TextEncoder,
    read_pooling,
    resolve_trainable_layers,
)
from skxmc.nn._transformer import collate, encode, load_encoder, pool, tokenize
from skxmc.utils._testing import save_tiny_bert

WORDS = ["red", "green", "blue", "cat", "dog", "fish", "tree", "sky"]
TEXTS = [
    "red cat",
    "green dog fish fish tree",
    "blue",
    "sky tree red green blue cat dog",
    "fish dog",
    "cat cat cat red",
    "tree sky",
    "blue green fish",
]


@pytest.fixture(scope="module")
def bert3(tmp_path_factory):
    """A random-init 3-layer BERT (dropout on) and its tokenizer folder."""
    folder = tmp_path_factory.mktemp("bert3")
    return save_tiny_bert(folder, WORDS, hidden_size=16, num_hidden_layers=3)


def _token_ids(folder):
    _, tokenizer = load_encoder(folder)
    return tokenize(tokenizer, TEXTS, 16), tokenizer.pad_token_id


def _loss(emb, weight):
    """A head and a loss on the pooled embeddings (what a scorer would do)."""
    return ((emb @ weight).tanh() ** 2).mean()


@pytest.mark.parametrize("k", [1, 2])
def test_cached_top_layers_equal_the_full_forward_with_frozen_lower_layers(bert3, k):
    ids, pad_id = _token_ids(bert3)
    rows = np.array([3, 0, 5, 1])
    weight = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))

    # oracle: the plain transformer, lower part frozen by hand, full forward
    model, _ = load_encoder(bert3)
    lower = [model.embeddings, *model.encoder.layer[: 3 - k]]
    for module in lower:
        module.requires_grad_(False)
    model.train()
    for module in lower:
        module.eval()  # frozen: no dropout
    input_ids, mask = collate([ids[r] for r in rows], pad_id)
    torch.manual_seed(1)  # the same dropout draws in the trained layers
    out = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
    expected_loss = _loss(pool(out, mask, "mean"), weight)
    expected_loss.backward()
    expected = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}

    # cached: the lower states computed once (float32 here), top k layers run
    cached_model, _ = load_encoder(bert3)
    encoder = TextEncoder(cached_model, pooling="mean", trainable_layers=k)
    cache = encoder.cache_states(ids, pad_id=pad_id, batch_size=3, dtype=np.float32)
    encoder.train()
    torch.manual_seed(1)
    loss = _loss(encoder.forward_cached(cache, rows), weight)
    loss.backward()
    got = {n: p.grad for n, p in cached_model.named_parameters() if p.grad is not None}

    torch.testing.assert_close(loss, expected_loss, rtol=1e-5, atol=1e-6)
    assert got.keys() == expected.keys()
    assert {int(n.split(".")[2]) for n in got} == set(range(3 - k, 3))
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-6)
    # the frozen part took no gradient and is what the model holds
    assert all(not p.requires_grad for p in cached_model.embeddings.parameters())
    # the uncached forward of the same TextEncoder is the oracle too
    cached_model.zero_grad()
    torch.manual_seed(1)
    torch.testing.assert_close(
        _loss(encoder(input_ids, mask), weight), expected_loss, rtol=1e-5, atol=1e-6
    )


def test_float16_cache_is_close_to_the_float32_one(bert3):
    ids, pad_id = _token_ids(bert3)
    model, _ = load_encoder(bert3)
    encoder = TextEncoder(model, pooling="cls", trainable_layers=1).eval()
    half = encoder.cache_states(ids, pad_id=pad_id)
    full = encoder.cache_states(ids, pad_id=pad_id, dtype=np.float32)
    assert half.states.dtype == np.float16 and full.states.dtype == np.float32
    assert half.states.shape == (sum(map(len, ids)), 16)
    np.testing.assert_allclose(half.states, full.states, rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(
        encoder.encode_cached(half), encoder.encode_cached(full), atol=1e-2
    )


def test_frozen_mode_equals_a_plain_encode(bert3):
    ids, pad_id = _token_ids(bert3)
    model, tokenizer = load_encoder(bert3)
    expected = encode(model, tokenizer, TEXTS, max_length=16, pooling="mean")
    encoder = TextEncoder(model, pooling="mean", trainable_layers=0)
    assert encoder.n_frozen == 3
    assert not any(p.requires_grad for p in model.parameters())
    cache = encoder.cache_states(ids, pad_id=pad_id, batch_size=3)
    assert cache.pooled and cache.states.shape == (len(TEXTS), 16)
    np.testing.assert_allclose(encoder.encode_cached(cache), expected, atol=1e-6)
    encoder.train()  # frozen layers never drop out
    rows = np.array([4, 2])
    np.testing.assert_allclose(
        encoder.forward_cached(cache, rows).detach().numpy(), expected[rows], atol=1e-6
    )


def test_memmap_and_in_memory_caches_are_equal(bert3):
    ids, pad_id = _token_ids(bert3)
    model, _ = load_encoder(bert3)
    encoder = TextEncoder(model, pooling="mean", trainable_layers=2).eval()
    in_memory = encoder.cache_states(ids, pad_id=pad_id)
    on_disk = encoder.cache_states(ids, pad_id=pad_id, max_bytes=0)
    assert not in_memory.on_disk and on_disk.on_disk
    assert isinstance(on_disk.states, np.memmap)
    np.testing.assert_array_equal(np.asarray(on_disk.states), in_memory.states)
    rows = np.array([6, 3, 0])
    for a, b in zip(in_memory.batch(rows), on_disk.batch(rows)):
        torch.testing.assert_close(a, b)
    np.testing.assert_array_equal(
        encoder.encode_cached(on_disk), encoder.encode_cached(in_memory)
    )


def test_batch_pads_each_text_to_the_longest_of_the_batch(bert3):
    ids, pad_id = _token_ids(bert3)
    model, _ = load_encoder(bert3)
    encoder = TextEncoder(model, trainable_layers=1)
    cache = encoder.cache_states(ids, pad_id=pad_id, dtype=np.float32)
    states, mask = cache.batch(np.array([2, 3]))
    assert mask.tolist()[0] == [1] * len(ids[2]) + [0] * (len(ids[3]) - len(ids[2]))
    assert states.shape == (2, len(ids[3]), 16)
    assert float(states[0, len(ids[2]) :].abs().sum()) == 0.0
    # text 3 alone: its lower states from a batch of one
    input_ids, one_mask = collate([ids[3]], pad_id)
    alone = encoder.eval().lower_states(input_ids, one_mask)
    torch.testing.assert_close(states[1:], alone, rtol=1e-5, atol=1e-6)


def test_memory_reuses_the_cache_across_fits(bert3, tmp_path, monkeypatch):
    ids, pad_id = _token_ids(bert3)
    calls = []
    real = TextEncoder.lower_states

    def counting(self, input_ids, attention_mask):
        calls.append(input_ids.shape[0])
        return real(self, input_ids, attention_mask)

    monkeypatch.setattr(TextEncoder, "lower_states", counting)
    memory = tmp_path / "memory"

    def cache_of(k, pooling="mean"):
        model, _ = load_encoder(bert3)  # a fresh copy: same weights
        encoder = TextEncoder(model, pooling=pooling, trainable_layers=k)
        return encoder.cache_states(ids, pad_id=pad_id, batch_size=4, memory=memory)

    first = cache_of(1)
    assert sum(calls) == len(TEXTS)
    second = cache_of(1)
    assert sum(calls) == len(TEXTS)  # loaded, not recomputed
    np.testing.assert_array_equal(np.asarray(second.states), first.states)
    np.testing.assert_array_equal(second.offsets, first.offsets)
    cache_of(2)  # other frozen layers: another key
    assert sum(calls) == 2 * len(TEXTS)
    # other weights in the frozen layers: another key
    model, _ = load_encoder(bert3)
    with torch.no_grad():
        model.embeddings.word_embeddings.weight[5] += 1.0
    encoder = TextEncoder(model, pooling="mean", trainable_layers=1)
    encoder.cache_states(ids, pad_id=pad_id, memory=memory)
    assert sum(calls) == 3 * len(TEXTS)
    # other texts: another key
    encoder = TextEncoder(load_encoder(bert3)[0], pooling="mean", trainable_layers=1)
    encoder.cache_states(ids[:3], pad_id=pad_id, memory=memory)
    assert sum(calls) == 3 * len(TEXTS) + 3


def test_nothing_frozen_means_every_layer_trains_without_a_cache(bert3):
    ids, pad_id = _token_ids(bert3)
    for k in (None, 3, 7):
        model, _ = load_encoder(bert3)
        encoder = TextEncoder(model, trainable_layers=k)
        assert encoder.n_frozen == 0 and not encoder.caches
        assert all(p.requires_grad for p in model.parameters())
        with pytest.raises(ValueError, match="Nothing is frozen"):
            encoder.cache_states(ids, pad_id=pad_id)
    with pytest.raises(ValueError, match=">= 0"):
        TextEncoder(load_encoder(bert3)[0], trainable_layers=-1)


def test_read_pooling_of_a_sentence_transformers_folder(tmp_path):
    assert read_pooling(tmp_path) is None
    assert read_pooling("some-model-name") is None
    (tmp_path / "1_Pooling").mkdir()

    def write(**modes):
        (tmp_path / "1_Pooling" / "config.json").write_text(
            json.dumps({"word_embedding_dimension": 8, **modes})
        )

    write(pooling_mode_cls_token=False, pooling_mode_mean_tokens=True)
    assert read_pooling(tmp_path) == "mean"
    write(pooling_mode_cls_token=True, pooling_mode_mean_tokens=False)
    assert read_pooling(tmp_path) == "cls"
    write(pooling_mode_mean_tokens=False, pooling_mode_max_tokens=True)
    with pytest.raises(ValueError, match="pooling_mode_max_tokens"):
        read_pooling(tmp_path)
    # modules.json names the pooling folder
    (tmp_path / "pool").mkdir()
    (tmp_path / "pool" / "config.json").write_text(
        json.dumps({"pooling_mode_mean_tokens": True})
    )
    (tmp_path / "modules.json").write_text(
        json.dumps([{"path": "pool", "type": "sentence_transformers.models.Pooling"}])
    )
    assert read_pooling(tmp_path) == "mean"


def test_read_pooling_of_the_shared_minilm(shared_dir):
    folder = shared_dir / "models" / "all-MiniLM-L6-v2-fp16"
    if not folder.is_dir():
        pytest.skip("no shared MiniLM")
    assert read_pooling(folder) == "mean"


def test_auto_trainable_layers_depend_on_the_device():
    cpu, cuda = torch.device("cpu"), torch.device("cuda:0")
    assert resolve_trainable_layers("auto", cpu, cpu_default=2) == 2
    assert resolve_trainable_layers("auto", cuda) is None
    assert resolve_trainable_layers(None, cpu) is None
    assert resolve_trainable_layers(0, cuda) == 0
    with pytest.raises(ValueError, match="auto"):
        resolve_trainable_layers("some", cpu)


def test_an_elias_network_pickled_before_the_text_encoder_still_embeds(bert3):
    import pickle

    from skxmc.nn._elias import EliasNetwork

    model, _ = load_encoder(bert3)
    net = EliasNetwork(model, 4, torch.tensor([[0, 1], [2, 3]]), pooling="mean")
    net.eval()
    ids, mask = collate([np.array([2, 5, 6, 3])], 0)
    expected = net.embed(ids, mask)
    # the layout of before: the bare transformer, pooling an attribute
    net._modules["encoder"] = model
    net.__dict__["pooling"] = "mean"
    old = pickle.loads(pickle.dumps(net))
    assert isinstance(old.encoder, TextEncoder) and old.pooling == "mean"
    torch.testing.assert_close(old.embed(ids, mask), expected)
