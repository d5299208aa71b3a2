"""Label correlation graph from random walks with restart (ECLARE).

Labels and training documents form a bipartite graph. A walker starting at
label ``s`` repeatedly hops label -> random document of that label -> random
label of that document, jumping back to ``s`` before a hop with probability
``restart_prob``. The labels it lands on, counted over ``walk_length`` hops,
are the correlated labels of ``s``. All walkers of a chunk of labels move
together as NumPy arrays (one vectorised step per hop), so the cost is
``walk_length`` array operations per chunk, never a Python loop over labels.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from skxmc.utils import csr_row_topk, topk_to_csr
from skxmc.utils._sparse import (
    _readonly_float32_csr,
    csr_product_topk,
    topk_csr_arrays,
)

__all__ = [
    "label_correlation_graph",
    "propagate_topk",
    "random_walk_visits",
    "smooth_over_graph",
]


def _indicator(Y) -> sp.csr_matrix:
    Y = sp.csr_matrix(Y, dtype=np.float32)
    Y.sum_duplicates()
    Y.eliminate_zeros()
    if Y.nnz and not np.all(Y.data == 1):
        raise ValueError("Y must be a 0/1 label indicator matrix.")
    return Y


def random_walk_visits(
    Y,
    start_labels,
    *,
    walk_length: int = 400,
    restart_prob: float = 0.8,
    random_state=None,
) -> sp.csr_matrix:
    """Count the labels each random walk with restart lands on.

    Parameters
    ----------
    Y : {array-like, sparse matrix} of shape (n_samples, n_labels)
        0/1 label indicator matrix of the training documents.
    start_labels : array-like of int of shape (n_walks,)
        The label each walk starts from (and restarts to). Every one needs a
        positive document.
    walk_length : int, default=400
        Hops per walk.
    restart_prob : float, default=0.8
        Probability of jumping back to the start label before a hop.
    random_state : int, RandomState instance or None, default=None
        Seeds the walks.

    Returns
    -------
    visits : csr_matrix of shape (n_walks, n_labels), dtype float32
        ``visits[w, l]`` is how many hops of walk ``w`` landed on label ``l``;
        every row sums to ``walk_length``.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.indexing import random_walk_visits
    >>> Y = np.array([[1, 1, 0], [0, 0, 1]])
    >>> visits = random_walk_visits(Y, [0, 2], walk_length=10, random_state=0)
    >>> visits.sum(axis=1).ravel().tolist()  # one landing per hop
    [[10.0, 10.0]]
    >>> visits[1].toarray()  # label 2 shares no document with the others
    array([[ 0.,  0., 10.]], dtype=float32)
    """
    Y = _indicator(Y)
    start = np.asarray(start_labels, dtype=np.int64)
    n_labels = Y.shape[1]
    if start.ndim != 1 or (start.size and (start.min() < 0 or start.max() >= n_labels)):
        raise ValueError(f"start_labels must be label ids in [0, {n_labels}).")
    label_docs = Y.tocsc()
    label_degree = np.diff(label_docs.indptr)
    if np.any(label_degree[start] == 0):
        bad = start[label_degree[start] == 0][:5].tolist()
        raise ValueError(f"Labels without a positive document cannot walk: {bad}.")
    rng = check_random_state(random_state)
    doc_degree = np.diff(Y.indptr)
    current = start.copy()
    landed = np.empty((walk_length, start.size), dtype=np.int64)
    for hop in range(walk_length):
        restart = rng.random_sample(start.size) < restart_prob
        current[restart] = start[restart]
        # label -> one of its documents -> one of that document's labels
        draw = rng.random_sample(start.size) * label_degree[current]
        doc = label_docs.indices[label_docs.indptr[current] + draw.astype(np.int64)]
        draw = rng.random_sample(start.size) * doc_degree[doc]
        current = Y.indices[Y.indptr[doc] + draw.astype(np.int64)].astype(np.int64)
        landed[hop] = current
    rows = np.broadcast_to(np.arange(start.size), landed.shape).ravel()
    visits = sp.csr_matrix(
        (np.ones(landed.size, dtype=np.float32), (rows, landed.ravel())),
        shape=(start.size, n_labels),
    )
    visits.sum_duplicates()
    return visits


@validate_params(
    {
        "Y": ["array-like", "sparse matrix"],
        "walk_length": [Interval(Integral, 1, None, closed="left")],
        "restart_prob": [Interval(Real, 0, 1, closed="both")],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "max_label_frequency": [Interval(Integral, 1, None, closed="left"), None],
        "label_features": ["array-like", "sparse matrix", None],
        "max_distance": [Interval(Real, 0, 2, closed="both")],
        "chunk_size": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def label_correlation_graph(
    Y,
    *,
    walk_length=400,
    restart_prob=0.8,
    n_neighbors=10,
    max_label_frequency=500,
    label_features=None,
    max_distance=1.0,
    chunk_size=10_000,
    random_state=None,
):
    """Build ECLARE's label correlation graph from random walks with restart.

    Every label with at most ``max_label_frequency`` positive documents runs
    :func:`random_walk_visits`; its ``n_neighbors`` most visited labels become
    its neighbours, weighted by visit counts. Very frequent labels (those
    above ``max_label_frequency``) and labels without a positive document do
    not walk: they only get a self-loop, since walking from them would
    connect everything to everything. Every label keeps a self-loop (its own
    row is never empty). With ``label_features``, edges between labels whose
    feature cosine distance ``1 - cos`` exceeds ``max_distance`` are dropped.
    The result is normalised as ``D_r^{-1/2} G D_c^{-1/2}`` with the row and
    column sums of ``G``.

    Parameters
    ----------
    Y : {array-like, sparse matrix} of shape (n_samples, n_labels)
        0/1 label indicator matrix of the training documents.
    walk_length : int, default=400
        Hops per walk.
    restart_prob : float, default=0.8
        Probability of jumping back to the start label before a hop.
    n_neighbors : int, default=10
        Neighbours kept per label (the self-loop included).
    max_label_frequency : int or None, default=500
        Labels with more positive documents do not walk; None lets every
        label walk.
    label_features : {array-like, sparse matrix} of shape (n_labels, n_feat), \
            default=None
        Label features (e.g. a TF-IDF of the label text) for pruning edges.
    max_distance : float, default=1.0
        Largest cosine distance (in [0, 2]) of a kept edge.
    chunk_size : int, default=10000
        Labels walked at once; memory is ``chunk_size * walk_length`` ids.
    random_state : int, RandomState instance or None, default=None
        Seeds the walks.

    Returns
    -------
    graph : csr_matrix of shape (n_labels, n_labels), dtype float32
        The normalised label graph; row ``l`` holds the neighbours of ``l``.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.indexing import label_correlation_graph
    >>> Y = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]])
    >>> G = label_correlation_graph(Y, n_neighbors=2, random_state=0)
    >>> [sorted(G[l].indices.tolist()) for l in range(4)]
    [[0, 1], [0, 1], [1, 2], [3]]
    """
    Y = _indicator(Y)
    n_labels = Y.shape[1]
    frequency = np.diff(Y.tocsc().indptr)
    walks = frequency > 0
    if max_label_frequency is not None:
        walks &= frequency <= max_label_frequency
    walkers = np.flatnonzero(walks)
    rng = check_random_state(random_state)
    rows, cols, weights = [], [], []
    for begin in range(0, walkers.size, chunk_size):
        start = walkers[begin : begin + chunk_size]
        visits = random_walk_visits(
            Y,
            start,
            walk_length=walk_length,
            restart_prob=restart_prob,
            random_state=rng,
        )
        walk = np.arange(start.size)
        own = np.asarray(visits[walk, start]).ravel()
        # the self-loop outranks every visit count, so it always survives the top-k
        boost = sp.csr_matrix(
            (np.full(start.size, walk_length + 1.0, dtype=np.float32), (walk, start)),
            shape=visits.shape,
        )
        scores, neighbors = csr_row_topk(visits + boost, n_neighbors)
        is_self = neighbors == start[:, None]
        scores[is_self] = np.maximum(own, 1.0)  # its own visits, at least one
        kept = neighbors >= 0
        rows.append(np.broadcast_to(start[:, None], neighbors.shape)[kept])
        cols.append(neighbors[kept])
        weights.append(scores[kept])
    idle = np.flatnonzero(~walks)  # self-loop only
    rows.append(idle)
    cols.append(idle)
    weights.append(np.ones(idle.size, dtype=np.float32))
    graph = sp.csr_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_labels, n_labels),
        dtype=np.float32,
    )
    if label_features is not None:
        graph = _prune_by_distance(graph, label_features, max_distance)
    return _normalize_graph(graph)


def _prune_by_distance(graph: sp.csr_matrix, label_features, max_distance: float):
    """Drop the edges whose labels' feature cosine distance exceeds the limit."""
    Z = normalize(sp.csr_matrix(label_features, dtype=np.float32))
    if Z.shape[0] != graph.shape[0]:
        raise ValueError(
            f"label_features has {Z.shape[0]} rows for {graph.shape[0]} labels."
        )
    coo = graph.tocoo()
    cosine = np.asarray(Z[coo.row].multiply(Z[coo.col]).sum(axis=1)).ravel()
    keep = (1.0 - cosine <= max_distance) | (coo.row == coo.col)
    return sp.csr_matrix(
        (coo.data[keep], (coo.row[keep], coo.col[keep])), shape=graph.shape
    )


def _normalize_graph(graph: sp.csr_matrix) -> sp.csr_matrix:
    """``D_r^{-1/2} G D_c^{-1/2}`` with the row and column sums of ``G``."""
    row_sum = np.asarray(graph.sum(axis=1)).ravel()
    col_sum = np.asarray(graph.sum(axis=0)).ravel()
    row_scale = sp.diags(1.0 / np.sqrt(np.maximum(row_sum, 1e-12)))
    col_scale = sp.diags(1.0 / np.sqrt(np.maximum(col_sum, 1e-12)))
    normalized = sp.csr_matrix(row_scale @ graph @ col_scale, dtype=np.float32)
    normalized.sort_indices()
    return normalized


def propagate_topk(scores, indices, graph, k):
    """Spread top-k label scores to graph neighbours and keep the ``k`` best.

    ECLARE widens a shortlist through the label graph at prediction: label
    ``m`` receives ``sum_l score(l) * graph[l, m]`` over the retrieved labels
    ``l``, so labels correlated with several retrieved ones rise.

    Parameters
    ----------
    scores : array-like of shape (n_samples, k_in)
        Scores of the retrieved labels (non-negative, e.g. probabilities).
    indices : array-like of int of shape (n_samples, k_in)
        Retrieved label ids, ``-1`` padded.
    graph : sparse matrix of shape (n_labels, n_labels)
        Label graph, e.g. from :func:`label_correlation_graph`; row ``l``
        holds the neighbours of ``l``.
    k : int
        Labels returned per row.

    Returns
    -------
    scores : ndarray of shape (n_samples, k), dtype float32
        Propagated scores, best first, ``-inf`` padded.
    indices : ndarray of shape (n_samples, k), dtype int64
        Label ids, ``-1`` padded.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skxmc.indexing import propagate_topk
    >>> graph = sp.csr_matrix(np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0],
    ...                                 [0.0, 0.0, 1.0]]))
    >>> propagate_topk(np.array([[0.8]]), np.array([[0]]), graph, k=3)
    (array([[ 0.8,  0.4, -inf]], dtype=float32), array([[ 0,  1, -1]]))
    """
    graph = _readonly_float32_csr(graph)
    n_labels = graph.shape[0]
    if graph.shape != (n_labels, n_labels):
        raise ValueError(f"graph must be square, got shape {graph.shape}.")
    # topk_to_csr's arrays, without building the scipy matrix
    retrieved = topk_csr_arrays(scores, indices, n_labels)
    # csr_row_topk(retrieved @ graph, k) to the bit, without the product matrix
    return csr_product_topk(retrieved, graph, k)


def smooth_over_graph(Z, graph, *, max_features=1000, chunk_size=1024):
    """Graph-smoothed label embeddings ``G Z``, sparsified row by row.

    ECLARE clusters labels on their embeddings averaged over graph
    neighbours. A frequent label's embedding can be dense, and every label
    that neighbours it would inherit all of it, so the product is computed in
    chunks of rows and only the ``max_features`` largest entries of each row
    are kept (then rows are L2-normalised): memory stays linear in the number
    of labels.

    Parameters
    ----------
    Z : {array-like, sparse matrix} of shape (n_labels, n_features)
        Label embeddings (e.g. from :func:`label_embedding`).
    graph : sparse matrix of shape (n_labels, n_labels)
        Label graph, row ``l`` holding the neighbours of ``l``.
    max_features : int, default=1000
        Entries kept per row.
    chunk_size : int, default=1024
        Rows multiplied at once.

    Returns
    -------
    smoothed : csr_matrix of shape (n_labels, n_features), dtype float32
        Rows of ``G Z`` restricted to their ``max_features`` largest entries,
        L2-normalised.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skxmc.indexing import smooth_over_graph
    >>> Z = np.array([[1.0, 0.0, 0.0], [0.0, 3.0, 4.0]])
    >>> G = sp.csr_matrix(np.array([[1.0, 1.0], [0.0, 1.0]]))
    >>> smooth_over_graph(Z, G, max_features=2).toarray()
    array([[0. , 0.6, 0.8],
           [0. , 0.6, 0.8]], dtype=float32)
    """
    Z = sp.csr_matrix(Z, dtype=np.float32)
    graph = sp.csr_matrix(graph, dtype=np.float32)
    if graph.shape != (Z.shape[0], Z.shape[0]):
        raise ValueError(
            f"graph must have shape ({Z.shape[0]}, {Z.shape[0]}), got {graph.shape}."
        )
    blocks = []
    for start in range(0, Z.shape[0], chunk_size):
        # csr_row_topk(graph[chunk] @ Z) without forming the product (scipy's
        # sums to the bit, the same ties)
        scores, indices = csr_product_topk(
            graph[start : start + chunk_size], Z, max_features
        )
        blocks.append(topk_to_csr(scores, indices, Z.shape[1]))
    smoothed = sp.vstack(blocks, format="csr") if blocks else Z[:0]
    return normalize(smoothed).astype(np.float32)
