"""The ELIAS network: encoder, cluster scorer, sparse learnable index, classifier.

Used by :class:`skxmc.models.EliasModel`. The cluster-to-label adjacency
is stored sparsely, as a ``(n_clusters, kappa)`` tensor of label ids (``-1``
masks an empty slot) and a ``(n_clusters, kappa)`` tensor of learnable
parameters; no dense ``n_clusters x n_labels`` tensor is ever built.
"""

from __future__ import annotations

import numpy as np
import torch

from skxmc.nn._text_encoder import TextEncoder

__all__ = ["EliasLoss", "EliasNetwork", "dedup_max", "elias_loss"]


class EliasNetwork(torch.nn.Module):
    """ELIAS (Gupta et al., NeurIPS 2022) on top of a transformer encoder.

    Parameters
    ----------
    encoder : TextEncoder or transformers.PreTrainedModel
        The document encoder phi; a bare transformer is wrapped in a
        :class:`~skxmc.nn._text_encoder.TextEncoder` with ``pooling`` and
        ``trainable_layers``.
    n_labels : int
        Number of labels.
    adjacency_index : Tensor of shape (n_clusters, kappa), dtype int64
        Labels of each cluster row of the index; ``-1`` marks an empty slot.
    pooling : {"cls", "mean"}, default="cls"
        Pooling of a bare transformer's last hidden states.
    trainable_layers : int or None, default=None
        Top layers of a bare transformer that train (None: all).
    dropout : float, default=0.5
        Dropout on the pooled embedding.
    alpha : float, default=10.0
        Cluster scores are ``clamp(alpha * softmax(W_C phi(x)), 0, 1)``.
    beta : float, default=150.0
        Learned adjacency values are ``clamp(beta * softmax(row params), 0, 1)``.
    generator : torch.Generator, default=None
        Draws the initial classifier weights.

    Attributes
    ----------
    learn_adjacency : bool
        False (stage 1): the adjacency values are 1 on every stored label.
        True (stage 2): they are ``clamp(beta * softmax(adjacency_logits))``.

    Examples
    --------
    >>> import torch, transformers
    >>> from skxmc.nn._elias import EliasNetwork
    >>> config = transformers.BertConfig(
    ...     vocab_size=10, hidden_size=8, num_hidden_layers=1,
    ...     num_attention_heads=2, intermediate_size=16)
    >>> index = torch.tensor([[0, 1, -1], [2, 3, 4]])
    >>> net = EliasNetwork(transformers.BertModel(config), 5, index).eval()
    >>> emb = net.embed(torch.tensor([[2, 5, 3]]), torch.ones(1, 3, dtype=torch.long))
    >>> scores, labels = net.predict(emb, beam_size=2, shortlist_size=6, k=3)
    >>> labels.shape
    torch.Size([1, 3])
    """

    def __init__(
        self,
        encoder,
        n_labels: int,
        adjacency_index: torch.Tensor,
        *,
        pooling: str = "cls",
        trainable_layers: int | None = None,
        dropout: float = 0.5,
        alpha: float = 10.0,
        beta: float = 150.0,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if not isinstance(encoder, TextEncoder):
            encoder = TextEncoder(
                encoder, pooling=pooling, trainable_layers=trainable_layers
            )
        self.encoder = encoder
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.n_labels = int(n_labels)
        self.dropout = torch.nn.Dropout(dropout)
        dim = int(encoder.config.hidden_size)
        index = torch.as_tensor(adjacency_index, dtype=torch.int64)
        n_clusters = index.shape[0]
        self.cluster_weight = torch.nn.Parameter(
            torch.randn(n_clusters, dim, generator=generator) * 0.02
        )
        self.cluster_bias = torch.nn.Parameter(torch.zeros(n_clusters))
        self.label_weight = torch.nn.Parameter(
            torch.randn(self.n_labels, dim, generator=generator) * 0.02
        )
        self.label_bias = torch.nn.Parameter(torch.zeros(self.n_labels))
        self.register_buffer("adjacency_index", index.clone())
        self.adjacency_logits = torch.nn.Parameter(
            torch.zeros(index.shape, dtype=torch.float32), requires_grad=False
        )
        self.learn_adjacency = False

    @property
    def n_clusters(self) -> int:
        return int(self.adjacency_index.shape[0])

    @property
    def kappa(self) -> int:
        return int(self.adjacency_index.shape[1])

    # ------------------------------------------------------------ index
    def set_adjacency(self, index, logits) -> None:
        """Replace the index (stage 2) and make its values learnable."""
        index = torch.as_tensor(index, dtype=torch.int64)
        logits = torch.as_tensor(logits, dtype=torch.float32)
        if index.shape != logits.shape or index.shape[0] != self.n_clusters:
            raise ValueError(
                f"index {tuple(index.shape)} and logits {tuple(logits.shape)} must "
                f"both be ({self.n_clusters}, kappa)."
            )
        device = self.adjacency_index.device
        self.adjacency_index = index.to(device)
        self.adjacency_logits = torch.nn.Parameter(logits.to(device))
        self.learn_adjacency = True

    def adjacency_values(self) -> torch.Tensor:
        """A_hat restricted to the stored slots, shape (n_clusters, kappa)."""
        mask = self.adjacency_index >= 0
        if not self.learn_adjacency:
            return mask.to(self.adjacency_logits.dtype)
        logits = self.adjacency_logits.masked_fill(~mask, float("-inf"))
        values = torch.softmax(logits, dim=1).nan_to_num(0.0)
        return torch.clamp(self.beta * values, 0.0, 1.0)

    @property
    def pooling(self) -> str:
        return self.encoder.pooling

    def __setstate__(self, state):
        super().__setstate__(state)
        encoder = self._modules.get("encoder")
        if encoder is not None and not isinstance(encoder, TextEncoder):
            # pickled before issue 12: a bare transformer and its pooling
            pooling = self.__dict__.pop("pooling", "cls")
            self._modules["encoder"] = TextEncoder(encoder, pooling=pooling)

    # ---------------------------------------------------------- forward
    def embed(self, input_ids, attention_mask) -> torch.Tensor:
        """Pooled encoder output (before dropout)."""
        return self.encoder(input_ids, attention_mask)

    def embed_cached(self, cache, rows, device=None) -> torch.Tensor:
        """:meth:`embed` of the cached texts ``rows`` (the trained layers only:
        :meth:`~skxmc.nn._text_encoder.TextEncoder.forward_cached`)."""
        return self.encoder.forward_cached(cache, rows, device)

    def cluster_scores(self, emb: torch.Tensor) -> torch.Tensor:
        """``clamp(alpha * softmax(W_C emb), 0, 1)``, shape (batch, n_clusters)."""
        logits = emb @ self.cluster_weight.T + self.cluster_bias
        return torch.clamp(self.alpha * torch.softmax(logits, dim=1), 0.0, 1.0)

    def label_logits(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``w_l . emb + b_l`` for the (batch, K) label ids (``-1`` gives 0)."""
        safe = labels.clamp_min(0)
        weights = self.label_weight[safe]  # (batch, K, dim)
        logits = torch.bmm(weights, emb.unsqueeze(-1)).squeeze(-1)
        return logits + self.label_bias[safe]

    def shortlist(
        self,
        cluster_scores: torch.Tensor,
        beam_size: int,
        shortlist_size: int,
        *,
        forced_clusters: torch.Tensor | None = None,
        positive_keys: torch.Tensor | None = None,
    ):
        """Search the index: the ``shortlist_size`` labels of best path score.

        Parameters
        ----------
        cluster_scores : Tensor of shape (batch, n_clusters)
            Output of :meth:`cluster_scores`.
        beam_size : int
            Clusters kept per row.
        shortlist_size : int
            Labels kept per row (K).
        forced_clusters : Tensor of shape (batch, n_clusters), dtype bool
            Teacher forcing: these clusters enter the beam first.
        positive_keys : Tensor of shape (n_positives,), dtype int64
            Sorted ``row * (n_labels + 1) + label + 1`` keys of the positive
            labels of the batch; they enter the shortlist first.

        Returns
        -------
        labels : Tensor of shape (batch, K), dtype int64
        path : Tensor of shape (batch, K)
            ``max_c s_c * A_hat[c, l]`` (differentiable).
        valid : Tensor of shape (batch, K), dtype bool
            False on empty slots.
        positive : Tensor of shape (batch, K), dtype bool or None
            Whether each entry is a positive (None without ``positive_keys``).
        """
        batch, n_clusters = cluster_scores.shape
        beam = min(int(beam_size), n_clusters)
        select = cluster_scores.detach()
        if forced_clusters is not None:
            select = select + 2.0 * forced_clusters.to(select.dtype)
        top = select.topk(beam, dim=1).indices  # (batch, beam)
        s = cluster_scores.gather(1, top)
        labels = self.adjacency_index[top].reshape(batch, -1)
        values = self.adjacency_values()[top]  # (batch, beam, kappa)
        path = (s.unsqueeze(-1) * values).reshape(batch, -1)
        invalid = dedup_max(path.detach(), labels)
        positive = None
        key = path.detach().masked_fill(invalid, float("-inf"))
        if positive_keys is not None:
            positive = _lookup(labels, positive_keys, self.n_labels) & ~invalid
            key = key + 2.0 * positive.to(key.dtype)
        n_keep = min(int(shortlist_size), labels.shape[1])
        keep = key.topk(n_keep, dim=1).indices
        labels = labels.gather(1, keep)
        valid = ~invalid.gather(1, keep)
        if positive is not None:
            positive = positive.gather(1, keep)
        return labels.masked_fill(~valid, -1), path.gather(1, keep), valid, positive

    def predict(self, emb, beam_size, shortlist_size, k):
        """Top ``k`` labels of ``sigmoid(w_l . emb) * path score`` (``-inf``/-1 pads).

        Returns
        -------
        scores : Tensor of shape (batch, k)
        labels : Tensor of shape (batch, k), dtype int64
        """
        cs = self.cluster_scores(emb)
        labels, path, valid, _ = self.shortlist(cs, beam_size, shortlist_size)
        scores = torch.sigmoid(self.label_logits(emb, labels)) * path
        scores = scores.masked_fill(~valid, float("-inf"))
        n_keep = min(k, scores.shape[1])
        top_scores, pos = scores.topk(n_keep, dim=1)
        top_labels = labels.gather(1, pos).masked_fill(torch.isinf(top_scores), -1)
        if n_keep < k:
            pad = k - n_keep
            top_scores = torch.nn.functional.pad(top_scores, (0, pad), value=-np.inf)
            top_labels = torch.nn.functional.pad(top_labels, (0, pad), value=-1)
        return top_scores, top_labels


def dedup_max(path: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mask of the entries to drop: empty slots and all but each label's best path.

    Parameters
    ----------
    path : Tensor of shape (batch, n)
        Path scores.
    labels : Tensor of shape (batch, n), dtype int64
        Label ids, ``-1`` for empty slots.

    Returns
    -------
    drop : Tensor of shape (batch, n), dtype bool
        True on empty slots and on every repeat of a label but its best one.

    Examples
    --------
    >>> import torch
    >>> from skxmc.nn._elias import dedup_max
    >>> dedup_max(torch.tensor([[0.2, 0.9, 0.5, 0.1]]),
    ...           torch.tensor([[3, 3, -1, 1]])).tolist()
    [[True, False, True, False]]
    """
    order = path.argsort(dim=1, descending=True, stable=True)
    by_label = labels.gather(1, order).argsort(dim=1, stable=True)
    perm = order.gather(1, by_label)  # by label, then by path (best first)
    sorted_labels = labels.gather(1, perm)
    drop_sorted = sorted_labels < 0
    drop_sorted[:, 1:] |= sorted_labels[:, 1:] == sorted_labels[:, :-1]
    return torch.empty_like(drop_sorted).scatter_(1, perm, drop_sorted)


def positive_keys(indptr, indices, n_labels: int, device=None) -> torch.Tensor:
    """Sorted lookup keys of the positives of a CSR batch (see ``shortlist``)."""
    rows = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    keys = np.sort(rows * (n_labels + 1) + np.asarray(indices, np.int64) + 1)
    return torch.from_numpy(keys).to(device)


def _lookup(labels: torch.Tensor, keys: torch.Tensor, n_labels: int) -> torch.Tensor:
    rows = torch.arange(labels.shape[0], device=labels.device).unsqueeze(1)
    query = rows * (n_labels + 1) + labels + 1
    if keys.numel() == 0:
        return torch.zeros_like(labels, dtype=torch.bool)
    pos = torch.searchsorted(keys, query.reshape(-1)).clamp_max(keys.numel() - 1)
    return (keys[pos] == query.reshape(-1)).reshape(labels.shape) & (labels >= 0)


def elias_loss(
    scores: torch.Tensor,
    positive: torch.Tensor,
    valid: torch.Tensor,
    loss_lambda: float = 0.0,
) -> torch.Tensor:
    """ELIAS's batch loss over the shortlists (Gupta et al. 2022, eq. 6).

    With ``s`` the final scores ``sigmoid(w_l . phi(x)) * path score`` of a
    row's shortlist, ``y`` its 0/1 targets, ``v`` its valid (non-empty) slots
    and ``b = -(y log s + (1 - y) log(1 - s))`` (each log clamped at -100,
    as :func:`torch.nn.functional.binary_cross_entropy` does)::

        loss = mean_rows( sum(v b) / max(sum(v), 1)
                          + loss_lambda * sum(v y b) / max(sum(v y), 1) )

    the mean cross-entropy over the shortlist plus ``loss_lambda`` times the
    mean over its positive entries. It is computed in float32 with autocast
    off (cross-entropy on probabilities is unsafe in half precision).

    Parameters
    ----------
    scores : Tensor of shape (batch, K)
        Scores in [0, 1].
    positive : Tensor of shape (batch, K), dtype bool
        Whether each entry is a positive.
    valid : Tensor of shape (batch, K), dtype bool
        False on empty slots (ignored).
    loss_lambda : float, default=0.0
        Weight of the loss on the positive entries.

    Returns
    -------
    loss : scalar Tensor
        The mean loss of the rows, in float32.

    Examples
    --------
    >>> import torch
    >>> from skxmc.nn._elias import elias_loss
    >>> scores = torch.tensor([[0.5, 0.5, 0.9]])
    >>> positive = torch.tensor([[True, False, False]])
    >>> valid = torch.tensor([[True, True, False]])
    >>> round(float(elias_loss(scores, positive, valid, loss_lambda=1.0)), 4)
    1.3863
    """
    with torch.autocast(scores.device.type, enabled=False):
        bce = torch.nn.functional.binary_cross_entropy(
            scores.float(), positive.float(), reduction="none"
        )
        valid = valid.float()
        positive = positive.float() * valid
        main = (bce * valid).sum(1) / valid.sum(1).clamp_min(1.0)
        aux = (bce * positive).sum(1) / positive.sum(1).clamp_min(1.0)
        return (main + loss_lambda * aux).mean()


class EliasLoss(torch.nn.Module):
    """:func:`elias_loss` as a module.

    Parameters
    ----------
    loss_lambda : float, default=0.0
        Weight of the loss on the positive shortlist entries.

    Examples
    --------
    >>> import torch
    >>> from skxmc.nn._elias import EliasLoss
    >>> loss = EliasLoss(0.5)
    >>> float(loss(torch.tensor([[0.5]]), torch.tensor([[True]]),
    ...            torch.tensor([[True]]))) == 1.5 * float(torch.log(torch.tensor(2.)))
    True
    """

    def __init__(self, loss_lambda: float = 0.0):
        super().__init__()
        self.loss_lambda = float(loss_lambda)

    def forward(self, scores, positive, valid) -> torch.Tensor:
        return elias_loss(scores, positive, valid, self.loss_lambda)

    def extra_repr(self) -> str:
        return f"loss_lambda={self.loss_lambda}"
