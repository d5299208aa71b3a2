"""Losses over shortlists."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["shortlist_bce_loss"]


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
