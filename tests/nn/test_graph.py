"""ECLARE's graph-aware label classifier."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skxmc.nn._graph import GraphLabelClassifier


def make_head(seed=0, n_labels=6, n_tokens=10, dim=4):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    E = torch.nn.EmbeddingBag(n_tokens, dim, mode="sum")
    Z = sp.random(n_labels, n_tokens, density=0.4, random_state=seed, format="csr")
    Z = Z + sp.eye(n_labels, n_tokens)  # no empty label
    G = sp.random(n_labels, n_labels, density=0.4, random_state=seed + 1)
    G = sp.csr_matrix(G + sp.eye(n_labels))
    head = GraphLabelClassifier(E, Z, G, dropout=0.0)
    head.free.weight.data = torch.from_numpy(
        rng.normal(size=(n_labels, dim)).astype(np.float32)
    )
    return head, E, Z.toarray(), G.toarray()


def test_graph_embedding_equals_the_dense_product():
    head, E, Z, G = make_head()
    EZ = Z.astype(np.float32) @ E.weight.detach().numpy()
    ids = torch.tensor([4, 0, 2])
    got = head.graph_embedding(ids).detach().numpy()
    np.testing.assert_allclose(got, (G @ EZ)[[4, 0, 2]], rtol=1e-5, atol=1e-6)


def test_initial_attention_averages_the_three_components():
    head, *_ = make_head(1)
    head.eval()
    ids = torch.arange(6)
    with torch.no_grad():
        text = head.transform(head.text_embedding(ids))
        graph = head.graph_transform(head.graph_embedding(ids))
        expected = (text + graph + head.free(ids)) / 3
        w, b = head.weights(ids)
    torch.testing.assert_close(w, expected)
    assert torch.all(b == 0)


def test_shortlist_scores_equal_full_scores_gathered():
    head, *_ = make_head(2)
    head.eval()
    x = torch.randn(3, 4)
    shortlist = torch.tensor([[5, 1, 0], [2, -1, -1], [3, 4, 1]])
    with torch.no_grad():
        full = head.score_all(x)
        short = head(x, shortlist)
    valid = shortlist >= 0
    expected = torch.gather(full, 1, shortlist.clamp_min(0))
    torch.testing.assert_close(short[valid], expected[valid])


def test_gradients_reach_every_component():
    head, E, *_ = make_head(3)
    x = torch.randn(5, 4)
    loss = head(x, torch.tensor([[0, 1], [2, 3], [4, 5], [1, 2], [0, 5]])).sum()
    loss.backward()
    assert head.attention.weight.grad.abs().sum() > 0
    assert any(p.grad is not None for p in head.graph_transform.parameters())
    assert E.weight.grad is not None
    assert head.free.weight.grad is not None


def test_extend_gives_new_labels_a_self_loop():
    head, *_ = make_head(4)
    new = sp.csr_matrix(np.eye(2, 10, k=3, dtype=np.float32))
    ids = head.extend(new)
    assert ids.tolist() == [6, 7]
    G = head.graph()
    assert G.shape == (8, 8)
    assert G[6].indices.tolist() == [6] and G[7].indices.tolist() == [7]
    with torch.no_grad():
        own = head.text_embedding(torch.tensor([6, 7]))
        mixed = head.graph_embedding(torch.tensor([6, 7]))
    torch.testing.assert_close(own, mixed)


def test_graph_shape_is_checked():
    E = torch.nn.EmbeddingBag(5, 3, mode="sum")
    with pytest.raises(ValueError, match="graph must have shape"):
        GraphLabelClassifier(E, sp.eye(4, 5), sp.eye(3))
