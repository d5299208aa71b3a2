"""Balanced hierarchical spherical k-means label trees.

The tree is built like Parabel and pecos' ``HierarchicalKMeans``: labels are
split recursively into two balanced halves by spherical 2-means on their
embeddings, down to ``2**depth`` leaves of at most ``max_leaf_size`` labels;
``branching_factor`` consecutive leaves (siblings in the binary tree when it is
a power of two) are then grouped level by level, bottom up, until the top level
has at most ``branching_factor`` nodes. The result is stored as a *cluster
chain*: one 0/1 CSR matrix per level mapping child nodes to parent nodes.

The split kernel is numba code, parallel across the nodes of a level; memory is
linear in the number of stored entries of the label embeddings (centroids are
dense only over the features of the node being split, in per-thread buffers).
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numba
import numpy as np
import scipy.sparse as sp
from numba import njit, prange
from sklearn.preprocessing import normalize
from sklearn.utils import check_random_state

from skxmc.utils._threads import effective_n_jobs

__all__ = ["LabelTree", "hierarchical_kmeans"]


# ----------------------------------------------------------------- threads
def dask_workers() -> int:
    """Worker threads of the Dask cluster of an active joblib ``"dask"`` backend.

    Under ``with joblib.parallel_config(backend="dask"):`` (or the older
    ``joblib.parallel_backend("dask")``), with a
    :class:`dask.distributed.Client` created, XR-Linear sends its per-node
    training tasks and its prediction blocks to the cluster; otherwise
    (0 here) they run on local threads.

    Returns
    -------
    n_workers : int
        Total worker threads of the cluster, 0 without the dask backend.

    Examples
    --------
    >>> from skxmc.indexing._tree import dask_workers
    >>> dask_workers()
    0
    """
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend()
    if type(backend).__name__ != "DaskDistributedBackend":
        return 0
    return max(1, int(backend.effective_n_jobs(-1)))


@contextmanager
def numba_threads(n_threads: int):
    """Run the numba parallel kernels of the block on ``n_threads`` threads."""
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n_threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


# ------------------------------------------------------------- the tree
class LabelTree:
    """A label tree stored as a chain of cluster-membership matrices.

    Level 0 is the root (one node); level ``t + 1`` holds the children of the
    nodes of level ``t``; the last level holds the labels. ``cluster_chain[t]``
    is a 0/1 CSR matrix of shape ``(n_nodes[t + 1], n_nodes[t])`` with exactly
    one stored 1 per row (the parent of each child), so ``cluster_chain[0]`` has
    one column and ``cluster_chain[-1]`` maps labels to leaves.

    Parameters
    ----------
    cluster_chain : list of sparse matrices
        The chain described above. Every node must have a parent; empty
        internal nodes are allowed.

    Attributes
    ----------
    n_levels : int
        Number of levels below the root, ``len(cluster_chain)``.
    n_nodes : list of int
        Nodes per level, root first; ``n_nodes[-1] == n_labels``.
    n_labels : int
        Number of labels.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skxmc.indexing import LabelTree
    >>> tree = LabelTree([
    ...     sp.csr_matrix(np.ones((2, 1))),
    ...     sp.csr_matrix(np.array([[1, 0], [0, 1], [0, 1]])),
    ... ])
    >>> tree.n_nodes, tree.leaf_of_label()
    ([1, 2, 3], array([0, 1, 1]))
    """

    def __init__(self, cluster_chain):
        chain = [sp.csr_matrix(c, dtype=np.float32) for c in cluster_chain]
        if not chain:
            raise ValueError("cluster_chain must hold at least one matrix.")
        if chain[0].shape[1] != 1:
            raise ValueError(
                f"cluster_chain[0] must have one column (the root), got "
                f"{chain[0].shape}."
            )
        for t, c in enumerate(chain):
            c.sum_duplicates()
            c.eliminate_zeros()
            if t and c.shape[1] != chain[t - 1].shape[0]:
                raise ValueError(
                    f"cluster_chain[{t}] has {c.shape[1]} columns but level {t} has "
                    f"{chain[t - 1].shape[0]} nodes."
                )
            if not np.array_equal(np.diff(c.indptr), np.ones(c.shape[0], np.int64)):
                raise ValueError(
                    f"cluster_chain[{t}]: every node must have exactly one parent."
                )
            c.data[:] = 1.0
        self.cluster_chain = chain

    # -------------------------------------------------------------- shape
    @property
    def n_levels(self) -> int:
        return len(self.cluster_chain)

    @property
    def n_nodes(self) -> list[int]:
        return [1] + [c.shape[0] for c in self.cluster_chain]

    @property
    def n_labels(self) -> int:
        return self.cluster_chain[-1].shape[0]

    def __repr__(self) -> str:
        return f"LabelTree(n_nodes={self.n_nodes})"

    # -------------------------------------------------------------- views
    def parents(self, level: int) -> np.ndarray:
        """Parent (in level ``level - 1``) of every node of level ``level >= 1``."""
        return self.cluster_chain[level - 1].indices.astype(np.int64)

    def children(self, level: int) -> tuple[np.ndarray, np.ndarray]:
        """Children of the nodes of ``level`` as CSR-style ``(indptr, indices)``.

        The children of node ``p`` are ``indices[indptr[p]:indptr[p + 1]]``
        (node ids of level ``level + 1``, increasing).
        """
        csc = self.cluster_chain[level].tocsc()
        csc.sort_indices()
        return csc.indptr.astype(np.int64), csc.indices.astype(np.int64)

    def leaf_of_label(self) -> np.ndarray:
        """Leaf (node of level ``n_levels - 1``) of every label."""
        return self.cluster_chain[-1].indices.astype(np.int64)

    def ancestors(self) -> np.ndarray:
        """Node of every level on each label's path, shape (n_labels, n_levels).

        Column ``t`` holds the level ``t + 1`` ancestor; the last column is the
        label itself.
        """
        out = np.empty((self.n_labels, self.n_levels), dtype=np.int64)
        out[:, -1] = np.arange(self.n_labels)
        for t in range(self.n_levels - 1, 0, -1):
            out[:, t - 1] = self.parents(t + 1)[out[:, t]]
        return out

    def project(self, Y, level: int) -> sp.csr_matrix:
        """Binary relevance of the nodes of ``level`` given a label matrix.

        A row is positive for a node when it is positive for any label below it.
        """
        M = sp.csr_matrix(Y, dtype=np.float32)
        for t in range(self.n_levels - 1, level - 1, -1):
            M = (M @ self.cluster_chain[t]).tocsr()
        M.data[:] = 1.0
        M.eliminate_zeros()
        return M

    # -------------------------------------------------------------- builders
    @classmethod
    def from_leaf_codes(
        cls, codes, n_leaves: int, branching_factor: int = 16
    ) -> LabelTree:
        """Tree over ``n_leaves`` leaves grouped ``branching_factor`` at a time.

        Leaf ``c`` goes under node ``c // branching_factor`` of the level above,
        repeatedly, until a level has at most ``branching_factor`` nodes
        (pecos' ``ClusterChain.from_partial_chain``).

        Parameters
        ----------
        codes : array-like of shape (n_labels,)
            Leaf of each label, in ``[0, n_leaves)``.
        n_leaves : int
            Number of leaves.
        branching_factor : int, default=16
            Maximum number of children of an internal node.
        """
        codes = np.asarray(codes, dtype=np.int64)
        if branching_factor < 2:
            raise ValueError(f"branching_factor must be >= 2, got {branching_factor}.")
        if codes.size and (codes.min() < 0 or codes.max() >= n_leaves):
            raise ValueError("leaf codes must lie in [0, n_leaves).")
        chain = [_membership(codes, n_leaves)]
        if n_leaves == 1:
            return cls(chain)
        n_codes = n_leaves
        while n_codes > branching_factor:
            parent = np.arange(n_codes) // branching_factor
            n_codes = int(parent[-1]) + 1
            chain.insert(0, _membership(parent, n_codes))
        chain.insert(0, _membership(np.zeros(n_codes, np.int64), 1))
        return cls(chain)


def _membership(parent: np.ndarray, n_parents: int) -> sp.csr_matrix:
    n = parent.shape[0]
    return sp.csr_matrix(
        (np.ones(n, np.float32), parent.astype(np.int64), np.arange(n + 1)),
        shape=(n, n_parents),
    )


# ------------------------------------------------------------- k-means kernel
@njit(nogil=True, cache=True)
def _split_segment(
    indptr, indices, data, labels, n_first, init0, init1, max_iter, c0, c1, mark, feats
):
    """Balanced spherical 2-means of ``labels`` (rows of Z), in place.

    On return the ``n_first`` labels most similar to centroid 0 (relative to
    centroid 1) come first. ``c0``, ``c1`` (dense, n_features) must be zero and
    ``mark`` False on entry; they are left that way.
    """
    n = labels.shape[0]
    # features touched by this segment
    n_feats = 0
    for a in range(n):
        r = labels[a]
        for e in range(indptr[r], indptr[r + 1]):
            j = indices[e]
            if not mark[j]:
                mark[j] = True
                feats[n_feats] = j
                n_feats += 1
    # initial centroids: two distinct rows
    for side in range(2):
        r = labels[init0] if side == 0 else labels[init1]
        c = c0 if side == 0 else c1
        for e in range(indptr[r], indptr[r + 1]):
            c[indices[e]] += data[e]
    scores = np.empty(n, dtype=np.float64)
    assign = np.full(n, -1, dtype=np.int8)
    order = np.arange(n)
    for it in range(max_iter):
        # direction d = c0/|c0| - c1/|c1|, stored in c0
        s0 = 0.0
        s1 = 0.0
        for q in range(n_feats):
            j = feats[q]
            s0 += c0[j] * c0[j]
            s1 += c1[j] * c1[j]
        s0 = 1.0 / math.sqrt(s0) if s0 > 0 else 0.0
        s1 = 1.0 / math.sqrt(s1) if s1 > 0 else 0.0
        for q in range(n_feats):
            j = feats[q]
            c0[j] = c0[j] * s0 - c1[j] * s1
            c1[j] = 0.0
        for a in range(n):
            r = labels[a]
            acc = 0.0
            for e in range(indptr[r], indptr[r + 1]):
                acc += data[e] * c0[indices[e]]
            scores[a] = -acc
        order = np.argsort(scores, kind="mergesort")
        changed = 0
        for b in range(n):
            side = 0 if b < n_first else 1
            a = order[b]
            if assign[a] != side:
                assign[a] = side
                changed += 1
        for q in range(n_feats):
            c0[feats[q]] = 0.0
        if changed == 0:
            break
        if it + 1 < max_iter:
            for a in range(n):
                r = labels[a]
                c = c0 if assign[a] == 0 else c1
                for e in range(indptr[r], indptr[r + 1]):
                    c[indices[e]] += data[e]
    first = labels[order[:n_first]].copy()
    second = labels[order[n_first:]].copy()
    labels[:n_first] = first
    labels[n_first:] = second
    for q in range(n_feats):
        j = feats[q]
        mark[j] = False
        c0[j] = 0.0
        c1[j] = 0.0


@njit(parallel=True, cache=True)
def _split_level(
    indptr, indices, data, n_features, perm, starts, n_first, init, max_iter, n_chunks
):
    n_seg = starts.shape[0] - 1
    for chunk in prange(n_chunks):
        c0 = np.zeros(n_features, dtype=np.float64)
        c1 = np.zeros(n_features, dtype=np.float64)
        mark = np.zeros(n_features, dtype=np.bool_)
        feats = np.empty(n_features, dtype=np.int64)
        for s in range(chunk, n_seg, n_chunks):
            a, b = starts[s], starts[s + 1]
            if b - a < 2:
                continue
            _split_segment(
                indptr,
                indices,
                data,
                perm[a:b],
                n_first[s],
                init[s, 0],
                init[s, 1],
                max_iter,
                c0,
                c1,
                mark,
                feats,
            )


def hierarchical_kmeans(
    Z,
    *,
    branching_factor: int = 16,
    max_leaf_size: int = 100,
    max_iter: int = 20,
    random_state=None,
    n_jobs: int | None = None,
) -> LabelTree:
    """Build a balanced label tree by recursive spherical 2-means.

    The binary tree has depth ``max(1, ceil(log2(n_labels / max_leaf_size)))``,
    so every leaf holds at most ``max_leaf_size`` labels and leaf sizes differ
    by at most one (empty leaves, when ``n_labels < 2**depth``, are dropped);
    levels of
    ``branching_factor`` nodes are then formed as in
    :meth:`LabelTree.from_leaf_codes`. With ``n_labels <= max_leaf_size`` the
    tree is flat: every label is a child of the root.

    Parameters
    ----------
    Z : {array-like, sparse matrix} of shape (n_labels, n_embedding_features)
        Label embeddings (rows are L2-normalised here).
    branching_factor : int, default=16
        Maximum number of children of an internal node (>= 2).
    max_leaf_size : int, default=100
        Maximum number of labels per leaf (>= 1).
    max_iter : int, default=20
        Maximum 2-means iterations per split (it stops earlier when the
        partition no longer changes).
    random_state : int, RandomState instance or None, default=None
        Seeds the initial centroids; the same seed gives the same tree
        whatever the number of threads.
    n_jobs : int, default=None
        Threads; None means all cores.

    Returns
    -------
    tree : LabelTree
        The balanced tree; every label sits in exactly one leaf.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.indexing import hierarchical_kmeans
    >>> Z = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]])
    >>> tree = hierarchical_kmeans(Z, branching_factor=2, max_leaf_size=2,
    ...                            random_state=0)
    >>> tree.n_nodes
    [1, 2, 4]
    >>> leaf = tree.leaf_of_label()
    >>> bool(leaf[0] == leaf[1] and leaf[2] == leaf[3] and leaf[0] != leaf[2])
    True
    """
    if branching_factor < 2:
        raise ValueError(f"branching_factor must be >= 2, got {branching_factor}.")
    if max_leaf_size < 1:
        raise ValueError(f"max_leaf_size must be >= 1, got {max_leaf_size}.")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}.")
    Z = sp.csr_matrix(Z, dtype=np.float32)
    n_labels, n_features = Z.shape
    if n_labels == 0:
        raise ValueError("Cannot build a label tree over zero labels.")
    if n_labels <= max_leaf_size:
        return LabelTree.from_leaf_codes(np.zeros(n_labels, np.int64), 1)
    Z = normalize(Z, norm="l2")
    Z.sum_duplicates()
    depth = max(1, math.ceil(math.log2(n_labels / max_leaf_size)))
    rng = check_random_state(random_state)
    n_threads = effective_n_jobs(n_jobs)
    perm = np.arange(n_labels, dtype=np.int64)
    starts = np.array([0, n_labels], dtype=np.int64)
    indptr, indices, data = Z.indptr, Z.indices, Z.data
    for _ in range(depth):
        sizes = np.diff(starts)
        n_first = (sizes + 1) // 2
        u = rng.random_sample((sizes.shape[0], 2))
        i0 = np.minimum((u[:, 0] * sizes).astype(np.int64), np.maximum(sizes - 1, 0))
        i1 = np.minimum(
            (u[:, 1] * (sizes - 1)).astype(np.int64), np.maximum(sizes - 2, 0)
        )
        i1 = np.where(i1 >= i0, i1 + 1, i1)
        init = np.stack([i0, i1], axis=1)
        n_chunks = max(1, min(n_threads, sizes.shape[0]))
        with numba_threads(n_threads):
            _split_level(
                indptr, indices, data, n_features, perm, starts, n_first, init,
                max_iter, n_chunks,
            )  # fmt: skip
        mids = starts[:-1] + n_first
        new = np.empty(2 * sizes.shape[0] + 1, dtype=np.int64)
        new[0:-1:2] = starts[:-1]
        new[1::2] = mids
        new[-1] = n_labels
        starts = new
    codes = np.empty(n_labels, dtype=np.int64)
    codes[perm] = np.repeat(np.arange(starts.shape[0] - 1), np.diff(starts))
    # with n_labels < 2**depth some leaves are empty: drop them
    used, codes = np.unique(codes, return_inverse=True)
    return LabelTree.from_leaf_codes(codes, used.shape[0], branching_factor)
