"""Label classifiers built from label text, scored on shortlists (DECAF)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from skxmc.nn._encoders import BagOfWordsEncoder, ResidualBlock

__all__ = [
    "DecafNetwork",
    "LabelEmbeddingClassifier",
    "LabelTextClassifier",
    "gather_rows",
    "score_pairs",
]


def gather_rows(
    indptr: torch.Tensor, indices: torch.Tensor, data: torch.Tensor, rows: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The rows ``rows`` of a CSR matrix as EmbeddingBag input, on the device.

    Parameters
    ----------
    indptr, indices, data : tensor
        The CSR arrays of a matrix ``M`` (int64, int64, float32).
    rows : int64 tensor of shape (n,)
        Rows to gather (repeats allowed).

    Returns
    -------
    indices, offsets, weights : tensor
        The sub-matrix ``M[rows]`` as :func:`~skxmc.training._data.csr_to_bag`
        gives it.
    """
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    offsets = torch.cumsum(lengths, 0) - lengths
    total = int(lengths.sum())
    positions = (
        torch.arange(total, device=rows.device)
        - torch.repeat_interleave(offsets, lengths, output_size=total)
        + torch.repeat_interleave(starts, lengths, output_size=total)
    )
    return indices[positions], offsets, data[positions]


class LabelTextClassifier(nn.Module):
    """One-vs-all label weights built from label text: DECAF's label classifier.

    Label ``l`` has the weight vector
    ``w_l = sigmoid(alpha) * R(E z_l) + sigmoid(beta) * eta_l`` and a bias
    ``b_l``, where ``z_l`` are the label's features (a TF-IDF of its text in
    the same space as the documents), ``E`` the token embeddings *shared* with
    the document encoder, ``R`` a :class:`ResidualBlock`, ``eta_l`` a free
    per-label vector and ``alpha``, ``beta`` D-dim gates initialised to 0. The
    score of a document vector ``x`` is ``w_l . x + b_l``.

    Weights are computed for any subset of labels, so :meth:`forward` scores
    only ``(row, shortlisted label)`` pairs and never builds an
    ``n_rows x n_labels`` matrix. ``eta`` and the biases are sparse-gradient
    embeddings: a step touches only the labels of its shortlists.

    Parameters
    ----------
    embedding : torch.nn.EmbeddingBag
        The token embeddings ``E`` (shared with the document encoder).
    label_features : sparse matrix of shape (n_labels, n_features)
        Label features in the vocabulary of ``embedding``.
    dropout : float, default=0.2
        Dropout inside ``R``.
    sparse : bool, default=True
        Sparse gradients for ``eta`` and the biases.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> import torch
    >>> from skxmc.nn import LabelTextClassifier
    >>> E = torch.nn.EmbeddingBag(4, 3, mode="sum")
    >>> Z = sp.csr_matrix([[1.0, 0, 0, 0], [0, 0.5, 0.5, 0], [0, 0, 0, 1.0]])
    >>> head = LabelTextClassifier(E, Z)
    >>> x = torch.randn(2, 3)
    >>> shortlist = torch.tensor([[0, 2], [1, -1]])
    >>> head(x, shortlist).shape
    torch.Size([2, 2])
    """

    def __init__(
        self,
        embedding: nn.EmbeddingBag,
        label_features,
        *,
        dropout: float = 0.2,
        sparse: bool = True,
    ):
        super().__init__()
        dim = embedding.embedding_dim
        self.embedding = embedding
        self.transform = ResidualBlock(dim, dropout)
        self.gate_text = nn.Parameter(torch.zeros(dim))
        self.gate_free = nn.Parameter(torch.zeros(dim))
        features = sp.csr_matrix(label_features, dtype=np.float32)
        n_labels = features.shape[0]
        self.free = nn.Embedding(n_labels, dim, sparse=sparse)
        nn.init.zeros_(self.free.weight)
        self.bias = nn.Embedding(n_labels, 1, sparse=sparse)
        nn.init.zeros_(self.bias.weight)
        self._set_features(features)

    def _set_features(self, features: sp.csr_matrix) -> None:
        self._register_csr("feature", features)
        self.__dict__.pop("_product_cache", None)

    def _register_csr(self, prefix: str, matrix) -> None:
        """Store a CSR matrix as the buffers ``{prefix}_indptr/indices/data``
        (replacing earlier ones), on the device of the module."""
        matrix = sp.csr_matrix(matrix, dtype=np.float32)
        matrix.sort_indices()
        device = self.free.weight.device
        for name, array in (
            (f"{prefix}_indptr", matrix.indptr.astype(np.int64)),
            (f"{prefix}_indices", matrix.indices.astype(np.int64)),
            (f"{prefix}_data", matrix.data.astype(np.float32)),
        ):
            tensor = torch.from_numpy(array.copy()).to(device)
            if hasattr(self, name):
                delattr(self, name)
            self.register_buffer(name, tensor)

    @property
    def n_labels(self) -> int:
        # the rows of the label features: during extend() they already hold
        # the new labels while ``free`` does not yet
        return self.feature_indptr.shape[0] - 1

    def label_features(self) -> sp.csr_matrix:
        """The label features as a CPU CSR matrix."""
        return sp.csr_matrix(
            (
                self.feature_data.cpu().numpy(),
                self.feature_indices.cpu().numpy(),
                self.feature_indptr.cpu().numpy(),
            ),
            shape=(self.n_labels, self.embedding.num_embeddings),
        )

    def text_embedding(self, ids: torch.Tensor | None = None) -> torch.Tensor:
        """``E z_l`` for the labels ``ids`` (default: every label).

        Computed as a sparse product with the rows of ``E`` of the distinct
        tokens involved, so the (sparse) gradient of ``E`` has one row per
        distinct token rather than one per stored entry of the label features
        (far cheaper when many labels share tokens). The product structure of
        the whole label set is built once and reused; a subset smaller than
        half the labels is gathered on the fly.
        """
        if ids is None or 2 * ids.shape[0] > self.n_labels:
            product, tokens = self._all_labels_product()
            out = torch.sparse.mm(product, self._token_vectors(tokens))
            return out if ids is None else out[ids]
        indices, offsets, data = gather_rows(
            self.feature_indptr, self.feature_indices, self.feature_data, ids
        )
        tokens, columns = torch.unique(indices, return_inverse=True)
        lengths = torch.diff(
            offsets, append=torch.tensor([indices.shape[0]], device=offsets.device)
        )
        rows = torch.repeat_interleave(
            torch.arange(ids.shape[0], device=ids.device),
            lengths,
            output_size=indices.shape[0],
        )
        product = torch.sparse_coo_tensor(
            torch.stack([rows, columns]),
            data,
            (ids.shape[0], tokens.shape[0]),
            check_invariants=False,
        )
        return torch.sparse.mm(product, self._token_vectors(tokens))

    def _token_vectors(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.embedding(tokens, self.embedding.weight, sparse=self.embedding.sparse)

    def _all_labels_product(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The label features restricted to their used tokens, and those tokens."""
        device = self.feature_indptr.device
        cache = self.__dict__.get("_product_cache")
        if cache is None or cache[0].device != device:
            tokens, columns = torch.unique(self.feature_indices, return_inverse=True)
            rows = torch.repeat_interleave(
                torch.arange(self.n_labels, device=device),
                torch.diff(self.feature_indptr),
            )
            product = torch.sparse_coo_tensor(
                torch.stack([rows, columns]),
                self.feature_data,
                (self.n_labels, tokens.shape[0]),
                check_invariants=False,
            ).coalesce()
            cache = (product, tokens)
            self.__dict__["_product_cache"] = cache
        return cache

    def weights(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(w, b)`` of the labels ``ids``: shapes (len(ids), dim) and (len(ids),)."""
        text = self.transform(self.text_embedding(ids))
        w = torch.sigmoid(self.gate_text) * text + torch.sigmoid(
            self.gate_free
        ) * self.free(ids)
        return w, self.bias(ids).squeeze(-1)

    def forward(self, x: torch.Tensor, shortlist: torch.Tensor) -> torch.Tensor:
        """Scores of each row's shortlisted labels.

        Parameters
        ----------
        x : tensor of shape (n_rows, dim)
            Document vectors.
        shortlist : int64 tensor of shape (n_rows, n_shortlist)
            Label ids per row; ``-1`` pads (those scores are meaningless: mask
            them with ``shortlist >= 0``).

        Returns
        -------
        scores : tensor of shape (n_rows, n_shortlist)
        """
        ids, inverse = torch.unique(shortlist.clamp_min(0), return_inverse=True)
        w, b = self.weights(ids)
        n_short = shortlist.shape[1]
        # Two exact ways to score the pairs; use the smaller intermediate:
        # all rows x the batch's unique labels, or the gathered (n, s, dim) block.
        if ids.shape[0] <= n_short * w.shape[1]:
            scores = torch.gather(x @ w.T, 1, inverse)
        else:
            scores = torch.einsum("nd,nsd->ns", x, w[inverse])
        return scores + b[inverse]

    def score_all(self, x: torch.Tensor) -> torch.Tensor:
        """Scores of every label, shape (n_rows, n_labels): for small label sets
        such as the clusters of the meta-classifier."""
        ids = torch.arange(self.n_labels, device=x.device)
        w, b = self.weights(ids)
        return x @ w.T + b

    def all_weights(self, block_size: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W, b)`` of every label, computed in blocks of labels."""
        device = self.free.weight.device
        parts = [
            self.weights(
                torch.arange(
                    start, min(start + block_size, self.n_labels), device=device
                )
            )
            for start in range(0, self.n_labels, block_size)
        ]
        return torch.cat([w for w, _ in parts]), torch.cat([b for _, b in parts])

    @torch.no_grad()
    def init_free_vectors(self) -> None:
        """Set every ``eta_l`` to ``E z_l`` (DECAF's initialisation)."""
        ids = torch.arange(self.n_labels, device=self.free.weight.device)
        self.free.weight.copy_(self.text_embedding(ids))

    @torch.no_grad()
    def extend(self, label_features, bias: float | None = None) -> np.ndarray:
        """Append labels known only by their features (zero-shot labels).

        Their ``eta`` is set to ``E z`` (the initialisation of trained labels)
        and their bias to ``bias`` (default: the median trained bias), so their
        weights come from their text alone.

        Returns
        -------
        ids : ndarray of int64
            The ids of the new labels.
        """
        new = sp.csr_matrix(label_features, dtype=np.float32)
        if new.shape[1] != self.embedding.num_embeddings:
            raise ValueError(
                f"label_features has {new.shape[1]} columns, expected "
                f"{self.embedding.num_embeddings}."
            )
        n_old = self.n_labels
        self._set_features(sp.vstack([self.label_features(), new], format="csr"))
        ids = torch.arange(n_old, n_old + new.shape[0], device=self.free.weight.device)
        free = torch.cat([self.free.weight, self.text_embedding(ids)])
        if bias is None:
            bias = float(self.bias.weight.median()) if n_old else 0.0
        biases = torch.cat(
            [
                self.bias.weight,
                torch.full_like(self.bias.weight[:1], bias).expand(new.shape[0], 1),
            ]
        )
        sparse = self.free.sparse
        self.free = nn.Embedding.from_pretrained(free, freeze=False, sparse=sparse)
        self.bias = nn.Embedding.from_pretrained(biases, freeze=False, sparse=sparse)
        return np.arange(n_old, n_old + new.shape[0])


class LabelEmbeddingClassifier(nn.Module):
    """Per-label classifiers on fixed label embeddings: NGAME's refinement.

    Label ``l`` has the weight vector ``w_l = z_l + eta_l``, where ``z_l`` is
    its (fixed, unit) label-text embedding and ``eta_l`` a free vector
    initialised to 0, and a bias ``b_l`` (initialised to 0). The logit of a
    query embedding ``x`` is ``exp(s) * (x . w_l) + b_l + c`` with a scale
    ``s`` and an offset ``c`` shared by every label. Untrained, the logit is an
    increasing function of the cosine, so a label never seen in training
    keeps the ranking of the label embedding it starts from. ``eta`` and the
    biases are sparse-gradient embeddings: a step touches only the labels of
    its candidates.

    Parameters
    ----------
    label_embeddings : array-like of shape (n_labels, dim)
        The label embeddings ``z`` (a buffer, not trained).
    init_scale : float, default=10.0
        Initial ``exp(s)``.
    sparse : bool, default=True
        Sparse gradients for ``eta`` and the biases.

    Examples
    --------
    >>> import torch
    >>> from skxmc.nn import LabelEmbeddingClassifier
    >>> head = LabelEmbeddingClassifier(torch.eye(3))
    >>> x = torch.tensor([[1.0, 0.0, 0.0]])
    >>> head(x, torch.tensor([[0, 2]])).tolist()  # 10 * cosine, untrained
    [[10.0, 0.0]]
    """

    def __init__(self, label_embeddings, *, init_scale: float = 10.0, sparse=True):
        super().__init__()
        z = torch.as_tensor(np.asarray(label_embeddings, dtype=np.float32))
        n_labels, dim = z.shape
        self.register_buffer("label_embeddings", z.clone())
        self.free = nn.Embedding(n_labels, dim, sparse=sparse)
        nn.init.zeros_(self.free.weight)
        self.bias = nn.Embedding(n_labels, 1, sparse=sparse)
        nn.init.zeros_(self.bias.weight)
        self.log_scale = nn.Parameter(torch.tensor(float(np.log(init_scale))))
        self.offset = nn.Parameter(torch.zeros(()))

    @property
    def n_labels(self) -> int:
        return self.label_embeddings.shape[0]

    def forward(self, x: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """Logits of each row's candidate labels.

        Parameters
        ----------
        x : tensor of shape (n_rows, dim)
            Query embeddings.
        candidates : int64 tensor of shape (n_rows, m)
            Label ids per row; ``-1`` pads (their logits are meaningless:
            mask them with ``candidates >= 0``).

        Returns
        -------
        logits : tensor of shape (n_rows, m)
        """
        # each distinct label once: the sparse gradients then hold one row
        # per label, not one per (row, candidate) pair (Adam's update of a
        # gradient with repeated rows is dominated by merging them)
        ids, inverse = torch.unique(candidates.clamp_min(0), return_inverse=True)
        w = self.label_embeddings[ids] + self.free(ids)
        dot = torch.einsum("nd,nmd->nm", x, w[inverse])
        bias = self.bias(ids).squeeze(-1)[inverse]
        return self.log_scale.exp() * dot + bias + self.offset

    @torch.no_grad()
    def extend(self, label_embeddings) -> None:
        """Append labels known only by their embedding (zero-shot labels):
        no free vector, and the median trained bias."""
        new = torch.as_tensor(np.asarray(label_embeddings, dtype=np.float32))
        n_old = self.n_labels
        bias = float(self.bias.weight.median()) if n_old else 0.0
        self.label_embeddings = torch.cat([self.label_embeddings, new])
        sparse = self.free.sparse
        self.free = nn.Embedding.from_pretrained(
            torch.cat([self.free.weight, torch.zeros_like(new)]),
            freeze=False,
            sparse=sparse,
        )
        self.bias = nn.Embedding.from_pretrained(
            torch.cat([self.bias.weight, torch.full((new.shape[0], 1), bias)]),
            freeze=False,
            sparse=sparse,
        )


class DecafNetwork(nn.Module):
    """DECAF: a document encoder and two label-text classifiers sharing ``E``.

    ``clusters`` scores label clusters (the meta-classifier: its label features
    are the mean features of each cluster's labels) and ``labels`` scores the
    labels of a shortlist built from the best clusters.

    Parameters
    ----------
    n_features : int
        Vocabulary size.
    label_features : sparse matrix of shape (n_labels, n_features)
        Label features (label-text TF-IDF).
    cluster_features : sparse matrix of shape (n_clusters, n_features)
        Cluster features.
    embedding_dim : int, default=300
        Embedding size.
    dropout : float, default=0.2
        Dropout of the encoder and of the label-side residual blocks.
    sparse : bool, default=True
        Sparse gradients for the embedding tables.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from skxmc.nn import DecafNetwork
    >>> Z = sp.random(6, 10, density=0.3, format="csr", random_state=0)
    >>> C = sp.csr_matrix(Z[:3] + Z[3:])
    >>> net = DecafNetwork(10, Z, C, embedding_dim=4)
    >>> net.labels.n_labels, net.clusters.n_labels
    (6, 3)
    """

    def __init__(
        self,
        n_features: int,
        label_features,
        cluster_features,
        *,
        embedding_dim: int = 300,
        dropout: float = 0.2,
        sparse: bool = True,
    ):
        super().__init__()
        self.encoder = BagOfWordsEncoder(n_features, embedding_dim, dropout, sparse)
        embedding = self.encoder.embedding
        self.clusters = LabelTextClassifier(
            embedding, cluster_features, dropout=dropout, sparse=sparse
        )
        self.labels = LabelTextClassifier(
            embedding, label_features, dropout=dropout, sparse=sparse
        )

    def forward(self, indices, offsets, weights) -> torch.Tensor:
        """Document vectors of a CSR batch (see :class:`BagOfWordsEncoder`)."""
        return self.encoder(indices, offsets, weights)


def score_pairs(
    x: torch.Tensor, shortlist: torch.Tensor, W: torch.Tensor, b: torch.Tensor
) -> torch.Tensor:
    """Scores ``x @ W[l] + b[l]`` of the shortlisted labels of each row.

    Parameters
    ----------
    x : tensor of shape (n_rows, dim)
        Document vectors.
    shortlist : int64 tensor of shape (n_rows, n_shortlist)
        Label ids; ``-1`` pads (their scores are meaningless).
    W : tensor of shape (n_labels, dim)
        Label weight vectors, e.g. from :meth:`LabelTextClassifier.all_weights`.
    b : tensor of shape (n_labels,)
        Label biases.

    Returns
    -------
    scores : tensor of shape (n_rows, n_shortlist)
        The score of every (row, shortlisted label) pair.
    """
    ids = shortlist.clamp_min(0)
    n_rows, n_shortlist = ids.shape
    flat = ids.reshape(-1)
    # index_select, not W[ids]: the same rows, and a single query's 250
    # gathered rows cost ~40 us instead of ~95 (advanced indexing's copy)
    rows = W.index_select(0, flat).view(n_rows, n_shortlist, -1)
    return torch.einsum("nd,nsd->ns", x, rows) + b.index_select(0, flat).view(
        n_rows, n_shortlist
    )
