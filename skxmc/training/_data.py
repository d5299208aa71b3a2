"""Batches from CSR matrices: EmbeddingBag input, shortlists with positives."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from skxmc.indexing._fusion import candidate_relevance

__all__ = [
    "cluster_table",
    "dedup_rows",
    "csr_to_bag",
    "dense_targets",
    "minibatches",
    "shortlist_targets",
]


def csr_to_bag(
    X, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A CSR matrix as ``(indices, offsets, per_sample_weights)`` tensors.

    The input format of :class:`torch.nn.EmbeddingBag`; the arrays are copied,
    so read-only (memory-mapped) inputs are fine.

    Parameters
    ----------
    X : sparse matrix of shape (n_rows, n_features)
        The rows to embed.
    device : torch.device or str, default=None
        Where the tensors go (None: the CPU).

    Returns
    -------
    indices : int64 tensor of shape (nnz,)
        Column of every stored entry.
    offsets : int64 tensor of shape (n_rows,)
        Start of every row in ``indices``.
    weights : float32 tensor of shape (nnz,)
        Value of every stored entry.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from skxmc.training import csr_to_bag
    >>> csr_to_bag(sp.csr_matrix([[0, 2.0], [0, 0], [1.0, 3.0]]))
    (tensor([1, 0, 1]), tensor([0, 1, 1]), tensor([2., 1., 3.]))
    """
    if not (sp.issparse(X) and X.format == "csr"):
        X = sp.csr_matrix(X)  # (a new CSR object costs ~25 us of a query)
    indices = torch.from_numpy(X.indices.astype(np.int64, copy=True))
    offsets = torch.from_numpy(X.indptr[:-1].astype(np.int64, copy=True))
    weights = torch.from_numpy(X.data.astype(np.float32, copy=True))
    return indices.to(device), offsets.to(device), weights.to(device)


def minibatches(
    n_rows: int, batch_size: int, generator: torch.Generator | None = None
) -> list[np.ndarray]:
    """Row indices of each mini-batch; shuffled when a generator is given.

    Parameters
    ----------
    n_rows : int
        Number of rows.
    batch_size : int
        Rows per batch (the last batch may be smaller).
    generator : torch.Generator, default=None
        Shuffles the rows; None keeps their order.

    Returns
    -------
    batches : list of ndarray
        Row indices of every batch.

    Examples
    --------
    >>> from skxmc.training import minibatches
    >>> [b.tolist() for b in minibatches(5, 2)]
    [[0, 1], [2, 3], [4]]
    """
    if generator is None:
        order = np.arange(n_rows)
    else:
        order = torch.randperm(n_rows, generator=generator).numpy()
    return [order[i : i + batch_size] for i in range(0, n_rows, batch_size)]


def dense_targets(Y_rows, device=None) -> torch.Tensor:
    """A (small) CSR target block as a dense float tensor.

    Parameters
    ----------
    Y_rows : sparse matrix of shape (n_rows, n_labels)
        0/1 targets.
    device : torch.device or str, default=None
        Where the tensor goes.

    Returns
    -------
    targets : float32 tensor of shape (n_rows, n_labels)
        The dense targets.
    """
    return torch.from_numpy(np.asarray(Y_rows.toarray(), dtype=np.float32)).to(device)


def cluster_table(membership) -> np.ndarray:
    """Labels of each cluster, padded with -1: shape (n_clusters, max_size).

    Parameters
    ----------
    membership : sparse matrix of shape (n_labels, n_clusters)
        0/1 matrix, one stored entry per label.

    Returns
    -------
    table : int64 ndarray of shape (n_clusters, max_cluster_size)
        The labels of every cluster, increasing, ``-1`` padded.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from skxmc.training import cluster_table
    >>> cluster_table(sp.csr_matrix([[0, 1], [1, 0], [0, 1]]))
    array([[ 1, -1],
           [ 0,  2]])
    """
    by_cluster = sp.csc_matrix(membership)
    by_cluster.sort_indices()
    sizes = np.diff(by_cluster.indptr)
    width = max(int(sizes.max()) if sizes.size else 1, 1)
    table = np.full((by_cluster.shape[1], width), -1, dtype=np.int64)
    rows = np.repeat(np.arange(by_cluster.shape[1]), sizes)
    cols = np.arange(by_cluster.nnz) - np.repeat(by_cluster.indptr[:-1], sizes)
    table[rows, cols] = by_cluster.indices
    return table


def dedup_rows(ids: np.ndarray) -> np.ndarray:
    """Distinct ids of each row, sorted, ``-1`` padded at the front.

    Columns that are padding in every row are dropped.

    Parameters
    ----------
    ids : int ndarray of shape (n_rows, n_ids)
        Ids per row, ``-1`` for padding, duplicates allowed.

    Returns
    -------
    unique : int64 ndarray of shape (n_rows, m)
        The distinct ids of each row, ``m <= n_ids``.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.training import dedup_rows
    >>> dedup_rows(np.array([[3, 1, 3, -1], [2, 2, 2, 2]]))
    array([[ 1,  3],
           [-1,  2]])
    """
    ids = np.sort(np.asarray(ids, dtype=np.int64), axis=1)
    duplicate = np.zeros_like(ids, dtype=bool)
    duplicate[:, 1:] = ids[:, 1:] == ids[:, :-1]
    ids[duplicate] = -1
    ids = np.sort(ids, axis=1)
    keep = (ids >= 0).any(axis=0)
    if keep.any():
        ids = ids[:, np.argmax(keep) :]
    return ids


def shortlist_targets(
    shortlist: np.ndarray, Y_rows, *, add_positives: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Merge each row's positives into its shortlist and label the entries.

    Parameters
    ----------
    shortlist : int64 ndarray of shape (n_rows, n_shortlist)
        Candidate labels per row, ``-1`` padded (duplicates allowed).
    Y_rows : sparse matrix of shape (n_rows, n_labels)
        0/1 targets of the rows.
    add_positives : bool, default=True
        Add the positive labels missing from a row's shortlist (training).

    Returns
    -------
    ids : int64 ndarray of shape (n_rows, m)
        Distinct labels per row, sorted, ``-1`` padded at the front.
    targets : float32 ndarray of shape (n_rows, m)
        1 where the label is positive for the row.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skxmc.training import shortlist_targets
    >>> ids, t = shortlist_targets(np.array([[3, 1, 1]]), sp.csr_matrix([[0, 0, 1, 1]]))
    >>> ids, t
    (array([[1, 2, 3]]), array([[0., 1., 1.]], dtype=float32))
    """
    Y_rows = sp.csr_matrix(Y_rows)
    n_rows = shortlist.shape[0]
    parts = [np.asarray(shortlist, dtype=np.int64)]
    if add_positives:
        counts = np.diff(Y_rows.indptr)
        width = int(counts.max()) if counts.size else 0
        positives = np.full((n_rows, width), -1, dtype=np.int64)
        rows = np.repeat(np.arange(n_rows), counts)
        cols = np.arange(Y_rows.nnz) - np.repeat(Y_rows.indptr[:-1], counts)
        positives[rows, cols] = Y_rows.indices
        parts.append(positives)
    ids = dedup_rows(np.concatenate(parts, axis=1))
    return ids, candidate_relevance(ids, Y_rows).astype(np.float32)


def hold_out_rows(rows: np.ndarray, fraction: float, seed: int, name: str):
    """Split ``rows`` into a random held-out share and the rest (both sorted).

    The validation split of the training rows (early stopping, the fusion's
    rows); ``name`` is the parameter named in the error when the share
    leaves no row on one side.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.training._data import hold_out_rows
    >>> held, kept = hold_out_rows(np.arange(10), 0.2, 0, "validation_fraction")
    >>> len(held), len(kept), sorted(np.concatenate([held, kept])) == list(range(10))
    (2, 8, True)
    """
    n_held = round(fraction * rows.size)
    if n_held < 1 or n_held >= rows.size:
        raise ValueError(
            f"{name}={fraction} leaves {n_held} of {rows.size} rows held out."
        )
    order = np.random.default_rng(seed).permutation(rows)
    return np.sort(order[:n_held]), np.sort(order[n_held:])
