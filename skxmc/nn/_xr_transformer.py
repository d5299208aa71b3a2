"""XR-Transformer's matcher: a text encoder and one tree level's scorer.

Used by :class:`skxmc.models.XRTransformerModel`. A :class:`LevelScorer`
scores the clusters of one level of the preliminary label tree from the pooled
document embedding; :class:`TransformerMatcher` runs the encoder and that
scorer (from token ids, or from the cached states of its frozen layers:
:class:`~skxmc.nn._text_encoder.TextEncoder`); :func:`masked_cluster_loss`
is the loss over each row's positive and sampled negative clusters
(:func:`skxmc.training._negatives.active_clusters`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from skxmc.nn._text_encoder import TextEncoder

__all__ = ["MATCHER_LOSSES", "LevelScorer", "TransformerMatcher", "masked_cluster_loss"]

#: Losses of the level scorers (:func:`masked_cluster_loss`).
MATCHER_LOSSES = ("squared_hinge", "bce")


class LevelScorer(nn.Module):
    """Linear scores of the clusters of one tree level: ``s = h W^T + b``.

    Parameters
    ----------
    weight : Tensor of shape (n_clusters, dim)
        Initial weights (copied).
    bias : Tensor of shape (n_clusters,)
        Initial intercepts (copied).

    Attributes
    ----------
    weight : Parameter of shape (n_clusters, dim)
    bias : Parameter of shape (n_clusters,)

    Examples
    --------
    >>> import torch
    >>> from skxmc.nn._xr_transformer import LevelScorer
    >>> parent = LevelScorer(torch.eye(2), torch.tensor([0.0, 1.0]))
    >>> child = LevelScorer.from_parent(parent, torch.tensor([0, 0, 1]))
    >>> child(torch.tensor([[1.0, 2.0]])).tolist()
    [[1.0, 1.0, 3.0]]
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        if weight.ndim != 2 or bias.shape != weight.shape[:1]:
            raise ValueError(
                "weight must be (n_clusters, dim) and bias (n_clusters,), got "
                f"{tuple(weight.shape)} and {tuple(bias.shape)}."
            )
        self.weight = nn.Parameter(weight.detach().clone().float())
        self.bias = nn.Parameter(bias.detach().clone().float())

    @classmethod
    def random(cls, n_clusters: int, dim: int, *, generator=None, std=0.02):
        """Weights drawn from ``N(0, std^2)`` (with ``generator``), zero intercepts."""
        weight = torch.randn(n_clusters, dim, generator=generator) * std
        return cls(weight, torch.zeros(n_clusters))

    @classmethod
    def from_parent(cls, parent: LevelScorer, parents: torch.Tensor) -> LevelScorer:
        """Every cluster starts as a copy of its parent's row.

        Parameters
        ----------
        parent : LevelScorer
            The scorer of the level above.
        parents : int64 Tensor of shape (n_clusters,)
            The parent of each cluster of this level.

        Returns
        -------
        scorer : LevelScorer
            On the CPU.
        """
        parents = parents.to(parent.weight.device)
        return cls(parent.weight[parents].cpu(), parent.bias[parents].cpu())

    @property
    def n_clusters(self) -> int:
        return self.weight.shape[0]

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Scores of shape (n_rows, n_clusters) of embeddings (n_rows, dim)."""
        return embeddings @ self.weight.T + self.bias


class TransformerMatcher(nn.Module):
    """A text encoder (transformer and pooling) and a :class:`LevelScorer`.

    Parameters
    ----------
    encoder : TextEncoder or transformers.PreTrainedModel
        The document encoder (trained in place); a bare transformer is
        wrapped in a :class:`~skxmc.nn._text_encoder.TextEncoder` with
        ``pooling`` (every layer trained).
    scorer : LevelScorer
        The scorer of the current tree level.
    pooling : {"cls", "mean"}, default="cls"
        Pooling of a bare transformer's last hidden states (ignored for a
        :class:`~skxmc.nn._text_encoder.TextEncoder`, which has its own).
    """

    def __init__(self, encoder: nn.Module, scorer: LevelScorer, pooling: str = "cls"):
        super().__init__()
        if not isinstance(encoder, TextEncoder):
            encoder = TextEncoder(encoder, pooling=pooling)
        self.encoder = encoder
        self.scorer = scorer

    @property
    def pooling(self) -> str:
        return self.encoder.pooling

    def forward(self, input_ids, attention_mask):
        """Cluster scores and pooled embeddings of a padded batch.

        Returns
        -------
        scores : Tensor of shape (batch, n_clusters), float32
        embeddings : Tensor of shape (batch, dim), float32
        """
        embeddings = self.encoder(input_ids, attention_mask).float()
        return self.scorer(embeddings).float(), embeddings

    def forward_cached(self, cache, rows, device=None):
        """:meth:`forward` of the cached texts ``rows`` (trained layers only)."""
        embeddings = self.encoder.forward_cached(cache, rows, device).float()
        return self.scorer(embeddings).float(), embeddings


def masked_cluster_loss(
    scores: torch.Tensor,
    target: torch.Tensor,
    active: torch.Tensor,
    kind: str = "squared_hinge",
) -> torch.Tensor:
    """Per-row mean loss over the active clusters, averaged over rows.

    With ``y`` the 0/1 target, ``a`` the 0/1 active mask and ``s`` the scores,
    the loss of a row is ``sum_j a_j l(s_j, y_j) / max(1, sum_j a_j)`` where
    ``l`` is the squared hinge ``max(0, 1 - (2y - 1) s)^2`` or the binary
    cross-entropy with logits.

    Parameters
    ----------
    scores : Tensor of shape (n_rows, n_clusters)
        Cluster scores.
    target : Tensor of shape (n_rows, n_clusters)
        1 for a positive cluster, 0 otherwise.
    active : Tensor of shape (n_rows, n_clusters)
        1 for the positive and negative clusters that count, 0 otherwise.
    kind : {"squared_hinge", "bce"}, default="squared_hinge"
        The per-entry loss.

    Returns
    -------
    loss : scalar Tensor

    Examples
    --------
    >>> import torch
    >>> from skxmc.nn._xr_transformer import masked_cluster_loss
    >>> scores = torch.tensor([[0.5, -2.0, 3.0]])
    >>> target = torch.tensor([[1.0, 0.0, 0.0]])
    >>> active = torch.tensor([[1.0, 1.0, 0.0]])  # the third one does not count
    >>> float(masked_cluster_loss(scores, target, active))  # (0.25 + 0) / 2
    0.125
    """
    scores = scores.float()
    target = target.to(scores.dtype)
    active = active.to(scores.dtype)
    if kind == "squared_hinge":
        per_entry = torch.relu(1.0 - (2.0 * target - 1.0) * scores) ** 2
    elif kind == "bce":
        per_entry = F.binary_cross_entropy_with_logits(scores, target, reduction="none")
    else:
        raise ValueError(f"kind must be one of {MATCHER_LOSSES}, got {kind!r}.")
    per_row = (per_entry * active).sum(1) / active.sum(1).clamp_min(1.0)
    return per_row.mean()
