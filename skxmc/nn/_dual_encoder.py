"""Dual-encoder training objective: base loss, TCM and ALC's auxiliary losses.

ALC (Almagro et al., 2025; decisions recorded in ``../shared/ALC.md``) adds to
the base loss of a bi-encoder a classifier over the pair representation
``Gamma(h_q, h_l) = [h_q; h_l; |h_q - h_l|; h_q * h_l]``, trained with a
query-label loss (positive vs. hardest in-batch negative) and a query-batch
loss (softmax over the labels of the batch). The classifier is a training-time
regulariser: scores at inference stay the cosine similarity.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from skxmc.nn._losses import (
    hardest_negatives,
    in_batch_softmax_loss,
    query_label_loss,
    tcm_loss,
    triplet_loss,
)

__all__ = [
    "DUAL_ENCODER_LOSSES",
    "DualEncoderLoss",
    "DualEncoderNetwork",
    "PairClassifier",
    "pair_features",
]

#: The ``loss`` options of :class:`DualEncoderLoss`: the base loss alone, plus
#: TCM, plus ALC's two objectives, or both.
DUAL_ENCODER_LOSSES = ("contrastive", "tcm", "alc", "alc+tcm")


def pair_features(h_q: torch.Tensor, h_l: torch.Tensor) -> torch.Tensor:
    """``Gamma(h_q, h_l) = [h_q; h_l; |h_q - h_l|; h_q * h_l]`` for every pair.

    Parameters
    ----------
    h_q : tensor of shape (n_queries, dim)
        Query embeddings.
    h_l : tensor of shape (n_labels, dim)
        Label embeddings.

    Returns
    -------
    gamma : tensor of shape (n_queries, n_labels, 4 * dim)
        The pair representation of every (query, label) pair.

    Examples
    --------
    >>> import torch
    >>> from skxmc.nn import pair_features
    >>> pair_features(torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, -1.0]])).tolist()
    [[[1.0, 2.0, 3.0, -1.0, 2.0, 3.0, 3.0, -2.0]]]
    """
    q = h_q.unsqueeze(1).expand(-1, h_l.shape[0], -1)
    lab = h_l.unsqueeze(0).expand(h_q.shape[0], -1, -1)
    return _gamma(q, lab)


def _gamma(q: torch.Tensor, lab: torch.Tensor) -> torch.Tensor:
    """``[q; lab; |q - lab|; q * lab]`` of tensors of the same shape."""
    return torch.cat([q, lab, (q - lab).abs(), q * lab], dim=-1)


class PairClassifier(nn.Module):
    """Logit of "label l is right for query q" from :func:`pair_features`.

    Parameters
    ----------
    dim : int
        Size of the embeddings.
    hidden_size : int or None, default=None
        None: a linear layer on ``Gamma``; an int: a 2-layer MLP with a ReLU
        hidden layer of that size.
    generator : torch.Generator, default=None
        Draws the initial weights (None: torch's global generator).

    Examples
    --------
    >>> import torch
    >>> from skxmc.nn import PairClassifier
    >>> head = PairClassifier(3, hidden_size=8)
    >>> head(torch.randn(2, 3), torch.randn(5, 3)).shape
    torch.Size([2, 5])
    """

    def __init__(self, dim: int, hidden_size: int | None = None, *, generator=None):
        super().__init__()
        sizes = [4 * dim] + ([] if hidden_size is None else [hidden_size]) + [1]
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            linear = nn.Linear(n_in, n_out)
            bound = 1.0 / n_in**0.5
            with torch.no_grad():
                linear.weight.uniform_(-bound, bound, generator=generator)
                linear.bias.zero_()
            layers.append(linear)
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        self.layers = nn.Sequential(*layers)

    def forward(self, h_q: torch.Tensor, h_l: torch.Tensor) -> torch.Tensor:
        return self.layers(pair_features(h_q, h_l)).squeeze(-1)

    def candidate_logits(self, h_q: torch.Tensor, h_c: torch.Tensor) -> torch.Tensor:
        """Logits of each query with its own candidates (not every pair).

        Parameters
        ----------
        h_q : tensor of shape (n_queries, dim)
            Query embeddings.
        h_c : tensor of shape (n_queries, n_candidates, dim)
            The embeddings of each query's candidate labels.

        Returns
        -------
        logits : tensor of shape (n_queries, n_candidates)
            ``logits[i, j]`` = ``self(h_q[i:i+1], h_c[i])[0, j]``.

        Examples
        --------
        >>> import torch
        >>> from skxmc.nn import PairClassifier
        >>> head = PairClassifier(3)
        >>> head.candidate_logits(torch.randn(2, 3), torch.randn(2, 4, 3)).shape
        torch.Size([2, 4])
        """
        return self.layers(_gamma(h_q.unsqueeze(1).expand_as(h_c), h_c)).squeeze(-1)


class DualEncoderLoss(nn.Module):
    """The training objective of a dual encoder, by name.

    ``L = L_base + tcm_weight * L_TCM [tcm] + beta_ql * L_ql + beta_qb * L_qb
    [alc]`` on the cosine similarities of L2-normalised query and label
    embeddings:

    - ``L_base``: :func:`~skxmc.nn.triplet_loss` (``base="triplet"``) or
      :func:`~skxmc.nn.in_batch_softmax_loss` of ``sim / temperature``
      (``base="softmax"``);
    - ``L_TCM``: :func:`~skxmc.nn.tcm_loss`;
    - ``L_ql``: :func:`~skxmc.nn.query_label_loss` of the pair classifier on
      the positive and the hardest in-batch negative
      (:func:`~skxmc.nn.hardest_negatives` on the detached cosine, every gold
      label excluded);
    - ``L_qb``: :func:`~skxmc.nn.in_batch_softmax_loss` of the pair
      classifier's logits over the labels of the batch.

    Parameters
    ----------
    dim : int
        Size of the embeddings (for the pair classifier).
    loss : {"contrastive", "tcm", "alc", "alc+tcm"}, default="contrastive"
        Which terms are on (the base loss always is).
    base : {"triplet", "softmax"}, default="triplet"
        The base loss.
    margin : float, default=0.3
        Margin of the triplet loss.
    temperature : float, default=0.05
        Temperature of the softmax base loss.
    tcm_weight : float, default=1.0
        Weight of TCM.
    tcm_margins : tuple of 2 floats, default=(0.9, 0.5)
        ``(m+, m-)`` of TCM.
    beta_ql, beta_qb : float, default=1.0
        Weights of ALC's query-label and query-batch losses.
    pair_hidden_size : int or None, default=None
        Hidden layer of the pair classifier (None: linear).
    generator : torch.Generator, default=None
        Initial weights of the pair classifier.

    Attributes
    ----------
    pair_classifier : PairClassifier or None
        Present with ``"alc"`` losses.
    last_parts : dict
        The value of every term of the last call (floats), for logging.

    Examples
    --------
    >>> import torch
    >>> from skxmc.nn import DualEncoderLoss
    >>> objective = DualEncoderLoss(4, loss="alc+tcm")
    >>> h_q, h_l = torch.randn(3, 4), torch.randn(5, 4)
    >>> gold = torch.zeros(3, 5, dtype=torch.bool)
    >>> gold[[0, 1, 2], [0, 1, 2]] = True
    >>> loss = objective(h_q, h_l, torch.tensor([0, 1, 2]), gold)
    >>> sorted(objective.last_parts)
    ['base', 'qb', 'ql', 'tcm']
    """

    def __init__(
        self,
        dim: int,
        *,
        loss: str = "contrastive",
        base: str = "triplet",
        margin: float = 0.3,
        temperature: float = 0.05,
        tcm_weight: float = 1.0,
        tcm_margins: tuple[float, float] = (0.9, 0.5),
        beta_ql: float = 1.0,
        beta_qb: float = 1.0,
        pair_hidden_size: int | None = None,
        generator=None,
    ):
        super().__init__()
        if loss not in DUAL_ENCODER_LOSSES:
            raise ValueError(
                f"loss must be one of {DUAL_ENCODER_LOSSES}, got {loss!r}."
            )
        if base not in ("triplet", "softmax"):
            raise ValueError(f"base must be 'triplet' or 'softmax', got {base!r}.")
        self.loss = loss
        self.base = base
        self.margin = float(margin)
        self.temperature = float(temperature)
        self.tcm_weight = float(tcm_weight)
        self.tcm_margins = tuple(float(m) for m in tcm_margins)
        self.beta_ql = float(beta_ql)
        self.beta_qb = float(beta_qb)
        self.use_tcm = "tcm" in loss
        self.use_alc = "alc" in loss
        self.pair_classifier = (
            PairClassifier(dim, pair_hidden_size, generator=generator)
            if self.use_alc
            else None
        )
        self.last_parts: dict[str, float] = {}

    def forward(
        self,
        h_q: torch.Tensor,
        h_l: torch.Tensor,
        positive: torch.Tensor,
        gold: torch.Tensor,
    ) -> torch.Tensor:
        """The loss of a batch.

        Parameters
        ----------
        h_q : tensor of shape (n_queries, dim)
            Query embeddings (normalised here).
        h_l : tensor of shape (n_labels, dim)
            Embeddings of the labels of the batch (normalised here).
        positive : int64 tensor of shape (n_queries,)
            Column of each query's sampled positive.
        gold : bool tensor of shape (n_queries, n_labels)
            Every gold pair of the batch.

        Returns
        -------
        loss : scalar tensor
            The mean loss of the batch.
        """
        q = F.normalize(h_q.float(), dim=-1)
        lab = F.normalize(h_l.float(), dim=-1)
        sim = q @ lab.T
        if self.base == "triplet":
            total = triplet_loss(sim, positive, gold, self.margin)
        else:
            total = in_batch_softmax_loss(sim / self.temperature, positive, gold)
        parts = {"base": total}
        if self.use_tcm:
            pos_margin, neg_margin = self.tcm_margins
            parts["tcm"] = tcm_loss(
                sim, gold, pos_margin=pos_margin, neg_margin=neg_margin
            )
            total = total + self.tcm_weight * parts["tcm"]
        if self.use_alc:
            logits = self.pair_classifier(q, lab)
            negative = hardest_negatives(sim, gold)
            parts["ql"] = query_label_loss(logits, positive, negative)
            parts["qb"] = in_batch_softmax_loss(logits, positive, gold)
            total = total + self.beta_ql * parts["ql"] + self.beta_qb * parts["qb"]
        self.last_parts = {k: float(v.detach()) for k, v in parts.items()}
        return total


class DualEncoderNetwork(nn.Module):
    """One transformer encoder for queries and label texts, and its objective.

    Parameters
    ----------
    encoder : transformers.PreTrainedModel
        The shared (siamese) encoder, fine-tuned in place.
    objective : DualEncoderLoss
        The training objective (holds ALC's pair classifier, if any).
    pooling : {"cls", "mean"}, default="mean"
        Pooling of the token states (:func:`skxmc.nn._transformer.pool`).

    Examples
    --------
    >>> import torch, transformers
    >>> from skxmc.nn import DualEncoderLoss, DualEncoderNetwork
    >>> config = transformers.BertConfig(vocab_size=10, hidden_size=8,
    ...     num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    >>> net = DualEncoderNetwork(transformers.BertModel(config), DualEncoderLoss(8))
    >>> ids = torch.tensor([[2, 5, 3]])
    >>> net.embed(ids, torch.ones_like(ids)).shape
    torch.Size([1, 8])
    """

    def __init__(self, encoder: nn.Module, objective: DualEncoderLoss, pooling="mean"):
        super().__init__()
        self.encoder = encoder
        self.objective = objective
        self.pooling = pooling

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """Pooled embeddings (not normalised) of a padded batch.

        Parameters
        ----------
        input_ids, attention_mask : int64 tensors of shape (batch, length)
            A batch from :func:`skxmc.nn._transformer.collate`.

        Returns
        -------
        embeddings : tensor of shape (batch, hidden_size)
            One vector per text.
        """
        from skxmc.nn._transformer import pooled_forward

        return pooled_forward(self.encoder, input_ids, attention_mask, self.pooling)
