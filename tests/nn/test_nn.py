"""torch modules of skxmc.nn: shapes, gradients, exactness of shortlist scoring."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from skxmc.nn import (
    BagOfWordsEncoder,
    DecafNetwork,
    LabelEmbeddingClassifier,
    LabelTextClassifier,
    ResidualBlock,
    SpectralNormLinear,
    gather_rows,
    score_pairs,
    shortlist_bce_loss,
)
from skxmc.training._data import csr_to_bag


@pytest.fixture(autouse=True)
def _seeded():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        yield


def _tfidf(n_rows, n_features, density=0.2, seed=0):
    X = sp.random(n_rows, n_features, density=density, format="csr", random_state=seed)
    return X.astype(np.float32)


# ---------------------------------------------------------------- spectral norm
def test_spectral_norm_identity_init_is_identity():
    layer = SpectralNormLinear(5, 5).eval()
    x = torch.randn(3, 5)
    torch.testing.assert_close(layer(x), x)
    with pytest.raises(ValueError, match="in_features == out_features"):
        SpectralNormLinear(5, 4)


def test_spectral_norm_bounded_after_power_iterations():
    layer = SpectralNormLinear(6, 4, identity_init=False)
    with torch.no_grad():
        layer.weight.mul_(10.0)
    assert torch.linalg.matrix_norm(layer.weight, ord=2) > 5
    x = torch.randn(2, 6)
    for _ in range(30):
        layer(x)  # one power iteration per training forward
    sigma = torch.linalg.matrix_norm(layer.normalized_weight().detach(), ord=2)
    assert float(sigma) <= 1.0 + 1e-4
    assert float(sigma) >= 0.99


def test_spectral_norm_prediction_keeps_its_weight_until_a_change():
    """Without gradients in eval mode the normalised weight is computed once
    (not per call), recomputed after an in-place update, never pickled."""
    import pickle

    layer = SpectralNormLinear(4, 4, identity_init=False).eval()
    x = torch.randn(3, 4)
    calls = []
    compute = layer._normalized_weight

    def counted():
        calls.append(1)
        return compute()

    layer._normalized_weight = counted
    with torch.inference_mode():
        first = layer(x)
        assert torch.equal(layer(x), first) and len(calls) == 1
    with torch.no_grad():
        layer.weight.add_(torch.randn(4, 4))  # an optimizer step
        changed = layer(x)
    assert len(calls) == 2
    torch.testing.assert_close(
        changed, torch.nn.functional.linear(x, compute(), layer.bias)
    )
    # with gradients (or training) it is computed per call, in the graph
    layer(x).sum().backward()
    assert len(calls) == 3 and layer.weight.grad is not None
    del layer._normalized_weight
    assert "_eval_weight" in layer.__dict__
    assert "_eval_weight" not in pickle.loads(pickle.dumps(layer)).__dict__


def test_spectral_norm_gradients_and_double_forward():
    layer = SpectralNormLinear(4, 4, identity_init=False)
    x = torch.randn(3, 4)
    # two training forwards in one graph: the in-place buffer update of the
    # second must not break the backward pass of the first
    loss = layer(x).pow(2).sum() + layer(x).sum()
    loss.backward()
    assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()
    assert layer.bias.grad is not None
    assert layer(x).shape == (3, 4)


def test_spectral_norm_state_and_pickle():
    layer = SpectralNormLinear(3, 3, identity_init=False)
    layer(torch.randn(2, 3))
    assert {"u", "v"} <= set(layer.state_dict())
    clone = pickle.loads(pickle.dumps(layer))
    x = torch.randn(2, 3)
    torch.testing.assert_close(clone.eval()(x), layer.eval()(x))


# ---------------------------------------------------------------- residual block
def test_residual_block_init_and_gradients():
    block = ResidualBlock(4, dropout=0.5).eval()
    v = torch.randn(5, 4)
    torch.testing.assert_close(block(v), 0.5 * F.relu(v) + 0.5 * v)
    block.train()
    block(v).sum().backward()
    for p in (block.gate_transform, block.gate_skip, block.linear.weight):
        assert p.grad is not None and torch.isfinite(p.grad).all()


# ---------------------------------------------------------------- encoder
def test_bag_of_words_encoder_matches_dense_computation():
    X = _tfidf(6, 10)
    X[5] = 0  # an empty document
    X.eliminate_zeros()
    encoder = BagOfWordsEncoder(10, embedding_dim=8, dropout=0.3).eval()
    bag = csr_to_bag(X)
    out = encoder(*bag)
    assert out.shape == (6, 8)
    dense = torch.from_numpy(X.toarray()) @ encoder.embedding.weight
    torch.testing.assert_close(encoder.embed(*bag), dense)
    torch.testing.assert_close(out, F.relu(encoder.transform(dense)))
    torch.testing.assert_close(out[5], F.relu(encoder.transform(torch.zeros(1, 8)))[0])
    assert encoder.embedding_dim == 8


def test_bag_of_words_encoder_sparse_gradients():
    X = _tfidf(4, 20, density=0.1)
    encoder = BagOfWordsEncoder(20, embedding_dim=6)
    encoder(*csr_to_bag(X)).sum().backward()
    grad = encoder.embedding.weight.grad
    assert grad.is_sparse
    touched = set(grad.coalesce().indices()[0].tolist())
    assert touched <= set(X.indices.tolist())
    assert encoder.transform.gate_skip.grad is not None


# ---------------------------------------------------------------- label classifier
def test_gather_rows_matches_scipy():
    Z = _tfidf(7, 9, density=0.3)
    Z.sort_indices()
    t = [
        torch.from_numpy(a.astype(dt))
        for a, dt in ((Z.indptr, np.int64), (Z.indices, np.int64), (Z.data, np.float32))
    ]
    rows = torch.tensor([3, 0, 3, 6])
    indices, offsets, data = gather_rows(*t, rows)
    ref = csr_to_bag(Z[rows.numpy()])
    for got, want in zip((indices, offsets, data), ref):
        torch.testing.assert_close(got, want)


def _head(n_labels=12, n_features=15, dim=8, seed=0):
    E = torch.nn.EmbeddingBag(n_features, dim, mode="sum", sparse=True)
    Z = _tfidf(n_labels, n_features, density=0.3, seed=seed)
    head = LabelTextClassifier(E, Z, dropout=0.0)
    with torch.no_grad():  # move away from the zero initialisation
        head.free.weight.normal_()
        head.bias.weight.normal_()
        head.gate_text.normal_()
    return head.eval(), Z


@pytest.mark.parametrize("width", [1, 4, 12])
def test_shortlist_scores_equal_brute_force(width):
    """forward(x, shortlist) is the brute-force full score matrix gathered at
    the shortlist, for both internal scoring paths (few / many unique labels)."""
    head, _ = _head()
    x = torch.randn(5, 8)
    shortlist = torch.stack([torch.randperm(12)[:width] for _ in range(5)])
    shortlist[0, 0] = -1  # padding
    full = head.score_all(x)
    assert full.shape == (5, 12)
    got = head(x, shortlist)
    valid = shortlist >= 0
    want = torch.gather(full, 1, shortlist.clamp_min(0))
    torch.testing.assert_close(got[valid], want[valid])
    W, b = head.all_weights(block_size=5)
    torch.testing.assert_close(score_pairs(x, shortlist, W, b)[valid], want[valid])


def test_label_classifier_weights_formula_and_gradients():
    head, Z = _head()
    ids = torch.tensor([2, 7])
    w, b = head.weights(ids)
    text = head.embedding(*csr_to_bag(Z[[2, 7]]))
    torch.testing.assert_close(head.text_embedding(ids), text)
    expected = (
        torch.sigmoid(head.gate_text) * head.transform(text)
        + torch.sigmoid(head.gate_free) * head.free.weight[ids]
    )
    torch.testing.assert_close(w, expected)
    torch.testing.assert_close(b, head.bias.weight[ids, 0])

    head.train()
    x = torch.randn(3, 8, requires_grad=True)
    head(x, torch.tensor([[0, 1], [2, 3], [1, 4]])).sum().backward()
    assert x.grad is not None
    assert head.embedding.weight.grad.is_sparse  # shared token embeddings learn
    assert head.free.weight.grad.is_sparse
    assert set(head.free.weight.grad.coalesce().indices()[0].tolist()) <= {
        0,
        1,
        2,
        3,
        4,
    }
    for p in (head.gate_text, head.gate_free, head.transform.linear.weight):
        assert p.grad is not None


def test_init_free_vectors_and_label_features_roundtrip():
    head, Z = _head()
    head.init_free_vectors()
    ids = torch.arange(12)
    torch.testing.assert_close(head.free.weight, head.text_embedding(ids))
    assert (head.label_features() != Z).nnz == 0


def test_extend_adds_text_only_labels():
    head, _ = _head()
    x = torch.randn(4, 8)
    before = head.score_all(x)
    new = _tfidf(2, 15, density=0.3, seed=5)
    ids = head.extend(new)
    np.testing.assert_array_equal(ids, [12, 13])
    assert head.n_labels == 14
    after = head.score_all(x)
    torch.testing.assert_close(after[:, :12], before)
    # eta of the new labels is the embedding of their text; bias the median
    torch.testing.assert_close(
        head.free.weight[12:], head.text_embedding(torch.tensor([12, 13]))
    )
    torch.testing.assert_close(
        head.bias.weight[12:, 0], head.bias.weight[:12, 0].median().expand(2)
    )
    with pytest.raises(ValueError, match="columns"):
        head.extend(_tfidf(1, 3))


# ---------------------------------------------------------------- network, loss
def test_decaf_network_shares_token_embeddings():
    Z = _tfidf(6, 10, density=0.3)
    C = sp.csr_matrix(Z[:3] + Z[3:])
    net = DecafNetwork(10, Z, C, embedding_dim=4)
    assert net.labels.embedding is net.encoder.embedding is net.clusters.embedding
    assert (net.labels.n_labels, net.clusters.n_labels) == (6, 3)
    x = net(*csr_to_bag(_tfidf(2, 10)))
    assert x.shape == (2, 4)
    clone = DecafNetwork(10, Z, C, embedding_dim=4)
    clone.load_state_dict(net.state_dict())
    net.eval(), clone.eval()
    bag = csr_to_bag(_tfidf(3, 10, seed=2))
    torch.testing.assert_close(clone(*bag), net(*bag))


def test_shortlist_bce_loss_masks_padding():
    scores = torch.tensor([[2.0, -1.0, 30.0], [0.5, 0.0, -30.0]])
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    mask = torch.tensor([[True, True, False], [True, True, False]])
    ref = F.binary_cross_entropy_with_logits(
        scores[:, :2], targets[:, :2], reduction="mean"
    )
    torch.testing.assert_close(shortlist_bce_loss(scores, targets, mask), ref)
    torch.testing.assert_close(
        shortlist_bce_loss(scores, targets),
        F.binary_cross_entropy_with_logits(scores, targets),
    )
    assert float(shortlist_bce_loss(scores, targets, torch.zeros_like(mask))) == 0.0


def test_label_embedding_classifier_formula_gradients_and_extend():
    z = F.normalize(torch.randn(5, 4), dim=1)
    head = LabelEmbeddingClassifier(z)
    with torch.no_grad():
        head.free.weight.normal_()
        head.bias.weight.normal_()
        head.log_scale.fill_(0.5)
        head.offset.fill_(-0.3)
    x = torch.randn(2, 4)
    candidates = torch.tensor([[4, 0, -1], [2, 2, 1]])
    logits = head(x, candidates)
    free, bias = head.free.weight.detach(), head.bias.weight.detach()
    for i in range(2):
        for j in range(3):
            label = max(int(candidates[i, j]), 0)
            w = z[label] + free[label]
            expected = np.exp(0.5) * float(x[i] @ w) + float(bias[label, 0]) - 0.3
            assert float(logits.detach()[i, j]) == pytest.approx(expected, rel=1e-5)
    # sparse gradients touch only the candidates' rows; z is not trained
    logits[candidates >= 0].sum().backward()
    touched = set(head.free.weight.grad.coalesce().indices()[0].tolist())
    assert touched == {0, 1, 2, 4}
    assert not head.label_embeddings.requires_grad
    # zero-shot labels: their embedding, no free vector, the median bias
    median = float(head.bias.weight.detach().median())
    head.extend(z[:2].numpy())
    assert head.n_labels == 7
    np.testing.assert_allclose(head.label_embeddings[5:].numpy(), z[:2].numpy())
    assert float(head.free.weight.detach()[5:].abs().sum()) == 0.0
    np.testing.assert_allclose(head.bias.weight.detach()[5:, 0].numpy(), median)
