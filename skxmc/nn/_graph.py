"""Label classifiers that also read the label correlation graph (ECLARE)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from skxmc.nn._encoders import ResidualBlock
from skxmc.nn._heads import LabelTextClassifier, gather_rows

__all__ = ["GraphLabelClassifier"]


class GraphLabelClassifier(LabelTextClassifier):
    """ECLARE's label classifier: label text, graph-smoothed text and a free vector.

    Label ``l`` has three ``D``-dim components: ``R1(E z_l)`` (its own text,
    as in :class:`LabelTextClassifier`), ``R2(sum_m G[l, m] E z_m)`` (the text
    of its graph neighbours) and a free vector ``eta_l``. A learned attention
    (a linear map of the concatenated components to one logit per component,
    softmax over components) mixes them into ``w_l``; the score of a document
    vector ``x`` is ``w_l . x + b_l``. The graph part reuses the text
    embeddings of the neighbours, so no second feature matrix is stored.

    Parameters
    ----------
    embedding : torch.nn.EmbeddingBag
        The token embeddings ``E`` (shared with the document encoder).
    label_features : sparse matrix of shape (n_labels, n_features)
        Label features in the vocabulary of ``embedding``.
    graph : sparse matrix of shape (n_labels, n_labels)
        Label graph; row ``l`` holds the weighted neighbours of ``l`` (e.g.
        :func:`skxmc.indexing.label_correlation_graph`).
    dropout : float, default=0.2
        Dropout inside the residual blocks.
    sparse : bool, default=True
        Sparse gradients for ``eta`` and the biases.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> import torch
    >>> from skxmc.nn._graph import GraphLabelClassifier
    >>> E = torch.nn.EmbeddingBag(4, 3, mode="sum")
    >>> Z = sp.csr_matrix([[1.0, 0, 0, 0], [0, 0.5, 0.5, 0], [0, 0, 0, 1.0]])
    >>> G = sp.csr_matrix([[0.5, 0.5, 0], [0.5, 0.5, 0], [0, 0, 1.0]])
    >>> head = GraphLabelClassifier(E, Z, G)
    >>> head(torch.randn(2, 3), torch.tensor([[0, 2], [1, -1]])).shape
    torch.Size([2, 2])
    """

    def __init__(
        self,
        embedding: nn.EmbeddingBag,
        label_features,
        graph,
        *,
        dropout: float = 0.2,
        sparse: bool = True,
    ):
        super().__init__(embedding, label_features, dropout=dropout, sparse=sparse)
        dim = embedding.embedding_dim
        self.graph_transform = ResidualBlock(dim, dropout)
        self.attention = nn.Linear(3 * dim, 3)
        # start from equal weights, as DECAF's gates start from sigmoid(0)
        nn.init.zeros_(self.attention.weight)
        nn.init.zeros_(self.attention.bias)
        self._set_graph(graph)

    def _set_graph(self, graph) -> None:
        graph = sp.csr_matrix(graph, dtype=np.float32)
        if graph.shape != (self.n_labels, self.n_labels):
            raise ValueError(
                f"graph must have shape ({self.n_labels}, {self.n_labels}), got "
                f"{graph.shape}."
            )
        self._register_csr("graph", graph)

    def graph(self) -> sp.csr_matrix:
        """The label graph as a CPU CSR matrix."""
        return sp.csr_matrix(
            (
                self.graph_data.cpu().numpy(),
                self.graph_indices.cpu().numpy(),
                self.graph_indptr.cpu().numpy(),
            ),
            shape=(self.n_labels, self.n_labels),
        )

    def graph_embedding(self, ids: torch.Tensor) -> torch.Tensor:
        """``sum_m G[l, m] E z_m`` for the labels ``ids``."""
        neighbors, offsets, weights = gather_rows(
            self.graph_indptr, self.graph_indices, self.graph_data, ids
        )
        unique, inverse = torch.unique(neighbors, return_inverse=True)
        text = self.text_embedding(unique)
        return F.embedding_bag(
            inverse, text, offsets, mode="sum", per_sample_weights=weights
        )

    def weights(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(w, b)`` of the labels ``ids``: shapes (len(ids), dim) and (len(ids),)."""
        components = torch.stack(
            [
                self.transform(self.text_embedding(ids)),
                self.graph_transform(self.graph_embedding(ids)),
                self.free(ids),
            ],
            dim=1,
        )
        attention = torch.softmax(self.attention(components.flatten(1)), dim=1)
        w = (attention.unsqueeze(-1) * components).sum(1)
        return w, self.bias(ids).squeeze(-1)

    @torch.no_grad()
    def extend(self, label_features, bias: float | None = None) -> np.ndarray:
        """Append zero-shot labels; in the graph they get a self-loop only.

        Parameters
        ----------
        label_features : sparse matrix of shape (n_new_labels, n_features)
            Features of the new labels.
        bias : float, default=None
            Their bias (default: the median trained bias).

        Returns
        -------
        ids : ndarray of int64
            The ids of the new labels.
        """
        graph = self.graph()
        ids = super().extend(label_features, bias=bias)
        self._set_graph(sp.block_diag([graph, sp.eye(len(ids))], format="csr"))
        return ids
