"""Sparse cluster-to-label adjacencies of a fixed width (ELIAS's index).

An adjacency of ``n_clusters`` rows holds exactly ``kappa`` label slots per
row, stored as a ``(n_clusters, kappa)`` array of label ids with ``-1`` on an
empty slot; a label may sit in several rows. No dense
``n_clusters x n_labels`` array is ever built.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from skxmc.utils._sparse import csr_row_topk

__all__ = ["cluster_adjacency", "label_cluster_matrix", "reestimate_adjacency"]


def cluster_adjacency(cluster_of_label, n_clusters: int, kappa: int) -> np.ndarray:
    """The adjacency of a clustering: each row holds its cluster's labels.

    Parameters
    ----------
    cluster_of_label : array-like of shape (n_labels,)
        The cluster of every label.
    n_clusters : int
        Number of clusters (rows).
    kappa : int
        Slots per row; at least the size of the largest cluster.

    Returns
    -------
    index : ndarray of shape (n_clusters, kappa), dtype int64
        Each cluster's labels in increasing order, then ``-1``.

    Examples
    --------
    >>> from skxmc.indexing import cluster_adjacency
    >>> cluster_adjacency([1, 0, 1, 1], n_clusters=2, kappa=3).tolist()
    [[1, -1, -1], [0, 2, 3]]
    """
    cluster_of_label = np.asarray(cluster_of_label, dtype=np.int64)
    sizes = np.bincount(cluster_of_label, minlength=n_clusters)
    if sizes.size and sizes.max() > kappa:
        raise ValueError(
            f"kappa={kappa} is smaller than the largest cluster ({sizes.max()} labels)."
        )
    order = np.argsort(cluster_of_label, kind="stable")
    clusters = cluster_of_label[order]
    starts = np.searchsorted(clusters, np.arange(n_clusters))
    slot = np.arange(order.size) - starts[clusters]
    index = np.full((n_clusters, kappa), -1, dtype=np.int64)
    index[clusters, slot] = order
    return index


def label_cluster_matrix(index: np.ndarray, n_labels: int) -> sp.csr_matrix:
    """The 0/1 matrix of the rows of ``index`` that hold each label.

    Parameters
    ----------
    index : ndarray of shape (n_clusters, kappa)
        An adjacency (``-1`` on empty slots).
    n_labels : int
        Number of labels.

    Returns
    -------
    matrix : csr_matrix of shape (n_labels, n_clusters), dtype float32
        ``matrix[l, c] = 1`` when row ``c`` holds label ``l``; ``Y @ matrix``
        marks the clusters of each document's positive labels.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.indexing import label_cluster_matrix
    >>> label_cluster_matrix(np.array([[0, 1], [1, -1]]), 3).toarray().tolist()
    [[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
    """
    index = np.asarray(index)
    rows, slots = np.nonzero(index >= 0)
    labels = index[rows, slots]
    return sp.csr_matrix(
        (np.ones(labels.size, np.float32), (labels, rows)),
        shape=(n_labels, index.shape[0]),
    )


def reestimate_adjacency(
    Y, M, kappa: int, fallback_index: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """ELIAS's re-estimated adjacency ``A_approx`` and its initial parameters.

    ``A = (Y^T M)^T`` sums, for every cluster ``c`` and label ``l``, the
    cluster scores ``M[i, c]`` of the documents ``i`` positive for ``l``; row
    ``c`` keeps its ``kappa`` largest entries (ties: the lower label id). A row
    with fewer than ``kappa`` stored entries is filled with the labels of its
    row in ``fallback_index`` (the clustering's own labels), then with the
    most frequent labels of ``Y``, each at ``0.1`` times the row's smallest
    kept value (1 in an empty row). The parameters are
    ``log(max(A[c, l] / sum_l A[c, l], 1e-6))``, so that ``softmax`` of a row
    gives back its normalised values.

    Parameters
    ----------
    Y : sparse matrix of shape (n_samples, n_labels)
        The training labels.
    M : sparse matrix of shape (n_samples, n_clusters)
        The ``beam_size`` best cluster scores of every training document.
    kappa : int
        Slots per row (at most ``n_labels``).
    fallback_index : ndarray of shape (n_clusters, kappa_old)
        The labels that fill a short row first (``-1`` ignored).

    Returns
    -------
    index : ndarray of shape (n_clusters, kappa), dtype int64
        Label ids, best first; ``-1`` only when ``kappa`` exceeds the number
        of labels.
    logits : ndarray of shape (n_clusters, kappa), dtype float32
        Initial adjacency parameters (0 on empty slots).

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skxmc.indexing import reestimate_adjacency
    >>> Y = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 1]], dtype=np.float32))
    >>> M = sp.csr_matrix(np.array([[0.9, 0.0], [0.2, 0.8]], dtype=np.float32))
    >>> index, logits = reestimate_adjacency(Y, M, 2, np.array([[0], [2]]))
    >>> index.tolist()
    [[0, 1], [1, 2]]
    >>> np.exp(logits.astype(np.float64)).round(3).tolist()
    [[0.818, 0.182], [0.5, 0.5]]
    """
    Y = sp.csr_matrix(Y, dtype=np.float32)
    A = sp.csr_matrix((Y.T @ sp.csr_matrix(M, dtype=np.float32)).T, dtype=np.float32)
    A.eliminate_zeros()
    values, index = csr_row_topk(A, kappa)
    # A short row keeps n_kept labels and needs kappa - n_kept more: the
    # kappa most frequent labels hold at least that many outside the row, so
    # the fill never looks further (a fill over every label per short row made
    # this quadratic in the number of labels).
    popular = np.argsort(-np.asarray(Y.sum(0)).ravel(), kind="stable")[:kappa]
    fallback_index = np.asarray(fallback_index)
    for c in np.nonzero((index < 0).any(1))[0]:
        row = index[c]
        n_kept = int((row >= 0).sum())
        own = fallback_index[c][fallback_index[c] >= 0]
        fill = np.concatenate([own, popular])
        fill = fill[~np.isin(fill, row[:n_kept])]
        _, first = np.unique(fill, return_index=True)
        fill = fill[np.sort(first)][: kappa - n_kept]
        row[n_kept : n_kept + fill.size] = fill
        floor = values[c, :n_kept].min() if n_kept else 1.0
        values[c, n_kept : n_kept + fill.size] = 0.1 * floor
    stored = index >= 0
    values = np.where(stored, values, 0.0)
    total = values.sum(1, keepdims=True)
    logits = np.log(np.maximum(values / np.maximum(total, 1e-30), 1e-6))
    return index, np.where(stored, logits, 0.0).astype(np.float32)
