"""Negative sampling over the clusters of a label tree level (XR-Transformer)."""

from __future__ import annotations

import torch

__all__ = ["active_clusters"]


def active_clusters(
    target: torch.Tensor,
    parents: torch.Tensor | None,
    n_parents: int,
    *,
    parent_scores: torch.Tensor | None = None,
    beam_size: int = 10,
    teacher_forced: bool = True,
) -> torch.Tensor:
    """The positive and negative clusters of each row, as a 0/1 mask.

    A cluster counts for a row when it is positive, or when its parent is
    allowed: a positive parent (teacher-forced negatives, "tfn") or one of
    the ``beam_size`` parents of the previous level that ``parent_scores``
    ranks best (matcher-aware negatives, "man"). At the first level
    (``parents`` None) every cluster counts.

    Parameters
    ----------
    target : Tensor of shape (n_rows, n_clusters)
        1 for a positive cluster, 0 otherwise.
    parents : int64 Tensor of shape (n_clusters,) or None
        The parent of each cluster in the previous level; None at the first
        level.
    n_parents : int
        Clusters of the previous level.
    parent_scores : Tensor of shape (n_rows, n_parents), default=None
        The previous level's scores of each row; enables matcher-aware
        negatives.
    beam_size : int, default=10
        Parents taken from ``parent_scores`` per row.
    teacher_forced : bool, default=True
        Allow the children of positive parents.

    Returns
    -------
    active : Tensor of shape (n_rows, n_clusters), dtype of ``target``

    Examples
    --------
    >>> import torch
    >>> from skxmc.training._negatives import active_clusters
    >>> target = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    >>> parents = torch.tensor([0, 0, 1, 1])
    >>> active_clusters(target, parents, 2).tolist()  # the sibling of 0
    [[1.0, 1.0, 0.0, 0.0]]
    >>> scores = torch.tensor([[0.0, 1.0]])  # parent 1 ranks first
    >>> active_clusters(target, parents, 2, parent_scores=scores, beam_size=1,
    ...                 teacher_forced=False).tolist()
    [[1.0, 0.0, 1.0, 1.0]]
    """
    if parents is None:
        return torch.ones_like(target)
    allowed = torch.zeros(
        target.shape[0], n_parents, dtype=torch.bool, device=target.device
    )
    if teacher_forced:
        positive_parent = torch.zeros(
            target.shape[0], n_parents, dtype=target.dtype, device=target.device
        )
        positive_parent.index_add_(1, parents, target)
        allowed |= positive_parent > 0
    if parent_scores is not None:
        top = parent_scores.topk(min(beam_size, n_parents), dim=1).indices
        allowed.scatter_(1, top, True)
    return (allowed[:, parents] | (target > 0)).to(target.dtype)
