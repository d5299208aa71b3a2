"""Losses: over shortlists (BCE) and over the in-batch pairs of a dual encoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "hardest_negatives",
    "in_batch_softmax_loss",
    "query_label_loss",
    "shortlist_bce_loss",
    "tcm_loss",
    "triplet_loss",
]


def shortlist_bce_loss(
    scores: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Binary cross-entropy with logits, averaged over the valid entries.

    Parameters
    ----------
    scores : tensor of shape (n_rows, n_shortlist)
        Logits of the shortlisted (row, label) pairs.
    targets : tensor of shape (n_rows, n_shortlist)
        1 for relevant pairs, 0 otherwise.
    mask : bool tensor of shape (n_rows, n_shortlist), default=None
        False for padding entries, which are ignored.

    Returns
    -------
    loss : scalar tensor
        The mean loss of the valid entries (0 when there is none).

    Examples
    --------
    >>> import torch
    >>> from skxmc.nn import shortlist_bce_loss
    >>> scores = torch.tensor([[0.0, 5.0]])
    >>> targets = torch.tensor([[1.0, 0.0]])
    >>> round(float(shortlist_bce_loss(scores, targets, scores < 1)), 4)  # log 2
    0.6931
    """
    losses = F.binary_cross_entropy_with_logits(
        scores.float(), targets.float(), reduction="none"
    )
    if mask is None:
        return losses.mean()
    mask = mask.to(losses.dtype)
    return (losses * mask).sum() / mask.sum().clamp_min(1.0)


# ------------------------------------------------------- dual-encoder losses
# Shared shapes: a batch of B queries against the L labels of the batch.
# ``sim`` (B, L) holds cosine similarities, ``gold`` (B, L) is True where the
# label is one of the query's labels (every gold label of the batch, not only
# the sampled positive), ``positive`` (B,) the column of each query's sampled
# positive (``gold[i, positive[i]]`` is True).


def _mean_or_zero(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values[mask]``; 0 (with a gradient path) when the mask is empty."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def hardest_negatives(sim: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    """The hardest in-batch negative of each query: its most similar non-gold label.

    Every gold label of the query is excluded, not only its sampled positive
    (multi-label batches hold several). The search reads ``sim`` detached:
    no gradient flows through the choice. Ties go to the lower column.

    Parameters
    ----------
    sim : tensor of shape (n_queries, n_labels)
        Query-label similarities.
    gold : bool tensor of shape (n_queries, n_labels)
        True where the label is one of the query's labels.

    Returns
    -------
    negatives : int64 tensor of shape (n_queries,)
        Column of each query's hardest negative; ``-1`` when every label of
        the batch is gold for it.

    Examples
    --------
    >>> import torch
    >>> from skxmc.nn import hardest_negatives
    >>> sim = torch.tensor([[0.9, 0.8, 0.1], [0.2, 0.3, 0.4]])
    >>> gold = torch.tensor([[True, True, False], [True, True, True]])
    >>> hardest_negatives(sim, gold).tolist()
    [2, -1]
    """
    masked = sim.detach().float().masked_fill(gold, -torch.inf)
    best = masked.argmax(dim=1)
    return torch.where(gold.all(dim=1), torch.full_like(best, -1), best)


def triplet_loss(
    sim: torch.Tensor,
    positive: torch.Tensor,
    gold: torch.Tensor,
    margin: float = 0.3,
) -> torch.Tensor:
    """Triplet margin loss of a dual encoder over in-batch negatives (NGAME's).

    ``mean over (i, j) with j not gold for i of max(0, margin - sim[i, p_i]
    + sim[i, j])``, ``p_i = positive[i]``; 0 when no query has a negative.

    Parameters
    ----------
    sim : tensor of shape (n_queries, n_labels)
        Cosine similarities.
    positive : int64 tensor of shape (n_queries,)
        Column of each query's sampled positive.
    gold : bool tensor of shape (n_queries, n_labels)
        Every gold (query, label) pair of the batch: never a negative.
    margin : float, default=0.3
        Margin between the positive and each negative.

    Returns
    -------
    loss : scalar tensor
        The mean loss of the batch.

    Examples
    --------
    >>> import torch
    >>> from skxmc.nn import triplet_loss
    >>> sim = torch.tensor([[0.5, 0.4, -1.0]])
    >>> gold = torch.tensor([[True, False, False]])
    >>> round(float(triplet_loss(sim, torch.tensor([0]), gold)), 4)  # (0.2 + 0) / 2
    0.1
    """
    sim = sim.float()
    pos = sim.gather(1, positive.view(-1, 1))
    return _mean_or_zero(F.relu(margin - pos + sim), ~gold)


def in_batch_softmax_loss(
    logits: torch.Tensor, positive: torch.Tensor, gold: torch.Tensor
) -> torch.Tensor:
    """Softmax cross-entropy of each query's positive against its in-batch negatives.

    ``mean_i -log(exp(z[i, p_i]) / (exp(z[i, p_i]) + sum_{j not gold for i}
    exp(z[i, j])))``: the other gold labels of a query leave its denominator.
    With ``z = sim / temperature`` this is the InfoNCE contrastive loss; with
    the pair classifier's logits it is ALC's query-batch loss
    (:class:`~skxmc.nn.CoverageLoss`).

    Parameters
    ----------
    logits : tensor of shape (n_queries, n_labels)
        Scores of every (query, label) pair of the batch.
    positive : int64 tensor of shape (n_queries,)
        Column of each query's sampled positive.
    gold : bool tensor of shape (n_queries, n_labels)
        Every gold pair of the batch.

    Returns
    -------
    loss : scalar tensor
        The mean loss of the batch.

    Examples
    --------
    >>> import torch
    >>> from skxmc.nn import in_batch_softmax_loss
    >>> logits = torch.tensor([[2.0, 2.0, 0.0]])
    >>> gold = torch.tensor([[True, True, False]])  # column 1 is gold too
    >>> expected = -torch.log_softmax(torch.tensor([2.0, 0.0]), 0)[0]
    >>> bool(torch.isclose(in_batch_softmax_loss(logits, torch.tensor([0]), gold),
    ...                    expected))
    True
    """
    logits = logits.float()
    keep = ~gold
    keep = keep.scatter(1, positive.view(-1, 1), True)
    masked = logits.masked_fill(~keep, -torch.inf)
    return F.cross_entropy(masked, positive)


def tcm_loss(
    sim: torch.Tensor,
    gold: torch.Tensor,
    *,
    pos_margin: float = 0.9,
    neg_margin: float = 0.5,
    pos_weight: float = 1.0,
    neg_weight: float = 1.0,
) -> torch.Tensor:
    """Threshold-consistent margin loss (TCM, Zhang et al. 2023).

    ``pos_weight * mean{m+ - s : s in S+, s <= m+} + neg_weight * mean{s - m-
    : s in S-, s >= m-}`` where ``S+`` are the similarities of the gold pairs
    of the batch and ``S-`` those of the other pairs; each mean runs over the
    violating pairs only and is 0 when there is none (the form of
    pytorch-metric-learning's ``ThresholdConsistentMarginLoss``). Always added
    to a base loss.

    Parameters
    ----------
    sim : tensor of shape (n_queries, n_labels)
        Cosine similarities.
    gold : bool tensor of shape (n_queries, n_labels)
        The positive pairs.
    pos_margin, neg_margin : float, default=0.9, 0.5
        ``m+`` and ``m-``.
    pos_weight, neg_weight : float, default=1.0
        ``lambda+`` and ``lambda-``.

    Returns
    -------
    loss : scalar tensor
        The mean loss of the batch.

    Examples
    --------
    >>> import torch
    >>> from skxmc.nn import tcm_loss
    >>> sim = torch.tensor([[0.7, 0.6, 0.2]])
    >>> gold = torch.tensor([[True, False, False]])
    >>> round(float(tcm_loss(sim, gold)), 4)  # (0.9 - 0.7) + (0.6 - 0.5)
    0.3
    """
    sim = sim.float()
    pos_violating = gold & (sim <= pos_margin)
    neg_violating = ~gold & (sim >= neg_margin)
    return pos_weight * _mean_or_zero(pos_margin - sim, pos_violating) + (
        neg_weight * _mean_or_zero(sim - neg_margin, neg_violating)
    )


def query_label_loss(
    logits: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor
) -> torch.Tensor:
    """ALC's query-label loss: pair classifier on positive vs. hardest negative.

    ``mean_i [-log sigmoid(z[i, p_i]) - [n_i >= 0] log(1 - sigmoid(z[i, n_i]))]``
    with ``n_i`` from :func:`hardest_negatives` (a query without a negative
    adds its positive term only).

    Parameters
    ----------
    logits : tensor of shape (n_queries, n_labels)
        Pair classifier logits of every (query, label) pair of the batch.
    positive : int64 tensor of shape (n_queries,)
        Column of each query's sampled positive.
    negative : int64 tensor of shape (n_queries,)
        Column of each query's hardest negative, ``-1`` for none.

    Returns
    -------
    loss : scalar tensor
        The mean loss of the batch.

    Examples
    --------
    >>> import torch
    >>> from skxmc.nn import query_label_loss
    >>> logits = torch.tensor([[0.0, 0.0]])
    >>> round(float(query_label_loss(logits, torch.tensor([0]), torch.tensor([1]))), 4)
    1.3863
    """
    logits = logits.float()
    pos = logits.gather(1, positive.view(-1, 1)).squeeze(1)
    has_neg = negative >= 0
    neg = logits.gather(1, negative.clamp_min(0).view(-1, 1)).squeeze(1)
    per_query = F.softplus(-pos) + torch.where(
        has_neg, F.softplus(neg), torch.zeros_like(neg)
    )
    return per_query.mean()
