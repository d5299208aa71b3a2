"""XR-Transformer's level scorer, matcher and loss against literal formulas."""

import math

import pytest
import torch

from skxmc.nn._transformer import pooled_forward
from skxmc.nn._xr_transformer import (
    LevelScorer,
    TransformerMatcher,
    masked_cluster_loss,
)


def test_level_scorer_is_affine_and_children_copy_their_parent():
    W = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([0.5, -1.0])
    parent = LevelScorer(W, b)
    h = torch.tensor([[3.0, 4.0]])
    assert parent(h).tolist() == [[3.5, 7.0]]  # h W^T + b
    child = LevelScorer.from_parent(parent, torch.tensor([1, 0, 1]))
    assert child.weight.tolist() == [[0.0, 2.0], [1.0, 0.0], [0.0, 2.0]]
    assert child.bias.tolist() == [-1.0, 0.5, -1.0]
    # the child owns its weights
    with torch.no_grad():
        child.weight.zero_()
    assert parent.weight.tolist() == W.tolist()
    with pytest.raises(ValueError, match="n_clusters"):
        LevelScorer(W, torch.zeros(3))


def test_random_scorer_is_seeded_with_zero_intercepts():
    a = LevelScorer.random(4, 3, generator=torch.Generator().manual_seed(0))
    b = LevelScorer.random(4, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a.weight, b.weight) and a.bias.tolist() == [0.0] * 4
    expected = torch.randn(4, 3, generator=torch.Generator().manual_seed(0)) * 0.02
    assert torch.equal(a.weight, expected)


def test_squared_hinge_equals_the_formula():
    scores = torch.tensor([[0.5, -2.0, 3.0], [2.0, 0.25, -0.5]])
    target = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    active = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    # row 1: (1 - 0.5)^2, max(0, 1 - 2)^2 = 0, inactive -> 0.25 / 2
    # row 2: (1 + 2)^2, (1 - 0.25)^2, (1 - 0.5)^2 -> (9 + 0.5625 + 0.25) / 3
    expected = (0.25 / 2 + (9 + 0.5625 + 0.25) / 3) / 2
    got = masked_cluster_loss(scores, target, active, "squared_hinge")
    assert math.isclose(float(got), expected, rel_tol=1e-6)


def test_bce_equals_the_formula_and_an_empty_row_counts_zero():
    scores = torch.tensor([[1.0, -1.0], [3.0, 0.0]])
    target = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    active = torch.tensor([[1.0, 1.0], [0.0, 0.0]])

    def softplus(x):
        return math.log1p(math.exp(x))

    # y=1: log(1 + e^-s); the second row has no active cluster: 0
    expected = ((softplus(-1.0) + softplus(1.0)) / 2 + 0.0) / 2
    got = masked_cluster_loss(scores, target, active, "bce")
    assert math.isclose(float(got), expected, rel_tol=1e-6)
    with pytest.raises(ValueError, match="kind"):
        masked_cluster_loss(scores, target, active, "hinge")


def test_matcher_scores_the_pooled_embedding(tmp_path):
    from skxmc.nn._transformer import load_encoder
    from skxmc.utils._testing import save_tiny_bert

    encoder, _ = load_encoder(save_tiny_bert(tmp_path, ["red", "blue"]))
    scorer = LevelScorer.random(3, 32, generator=torch.Generator().manual_seed(0))
    matcher = TransformerMatcher(encoder, scorer, "mean").eval()
    ids = torch.tensor([[2, 5, 6, 3]])
    mask = torch.ones_like(ids)
    scores, emb = matcher(ids, mask)
    expected = pooled_forward(encoder, ids, mask, "mean")
    torch.testing.assert_close(emb, expected)
    torch.testing.assert_close(scores, expected @ scorer.weight.T + scorer.bias)
    assert {n.split(".")[0] for n, _ in matcher.named_parameters()} == {
        "encoder",
        "scorer",
    }
