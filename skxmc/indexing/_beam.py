"""Beam search over a label tree scored by per-node linear models.

A node's score is its parent's score times ``post(w_node . x + b_node)``, with
the root scoring 1 (pecos' multiplicative combiner). ``post`` is

- ``"l3-hinge"``: ``exp(-max(1 - s, 0) ** 3)``;
- ``"sigmoid"``: ``1 / (1 + exp(-s))``.

Both map to (0, 1], so a label's path score is the product over its
ancestors. The search keeps the ``beam_size`` best nodes of every level and
scores only their children; at the last level it returns the ``k`` best
labels. With a beam at least as wide as every level it is exact, i.e. equal to
scoring every label's full path. Ties are broken by lower node index.

The kernels are numba, parallel over rows, and scatter each query into a
dense per-thread buffer so that a node costs one pass over its stored weights.
A few rows (single queries) are searched on a feature-major copy of the
weights instead, built on first use: each level's beam is scored in one
sequential pass over the entries of the query's features, with the same sums.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from numba import njit, prange

from skxmc.indexing._tree import LabelTree, effective_n_jobs, numba_threads
from skxmc.utils._sparse import _filled_scratch, _lower_bound

__all__ = ["POST_PROCESSORS", "TreeScorer", "beam_search", "post_process"]

#: Score transforms understood by the beam search.
POST_PROCESSORS = ("l3-hinge", "sigmoid")
_POST_CODE = {"l3-hinge": 0, "sigmoid": 1}
#: Rows up to which a search scores each level's beam feature-major
#: (:func:`_beam_rows_by_feature`) rather than node by node.
_FEW_ROWS = 4


def post_process(scores, post_processor: str = "l3-hinge") -> np.ndarray:
    """Apply a post-processor transform to raw linear scores (NumPy reference).

    Parameters
    ----------
    scores : array-like
        Raw linear scores ``s`` of any shape.
    post_processor : {"l3-hinge", "sigmoid"}, default="l3-hinge"
        ``exp(-max(1 - s, 0) ** 3)`` or ``1 / (1 + exp(-s))``.

    Returns
    -------
    transformed : ndarray of the shape of ``scores``, dtype float64
        The transformed scores, in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.indexing import post_process
    >>> post_process(np.array([2.0, 1.0, 0.0]), "l3-hinge").round(4)
    array([1.    , 1.    , 0.3679])
    """
    s = np.asarray(scores, dtype=np.float64)
    if post_processor == "l3-hinge":
        return np.exp(-(np.maximum(1.0 - s, 0.0) ** 3))
    if post_processor == "sigmoid":
        return 1.0 / (1.0 + np.exp(-s))
    raise ValueError(
        f"Unknown post_processor {post_processor!r}; expected one of {POST_PROCESSORS}."
    )


@njit(nogil=True, cache=True, inline="always")
def _post(s, code):
    if code == 0:
        h = 1.0 - s
        if h <= 0.0:
            return 1.0
        return math.exp(-h * h * h)
    if s >= 0.0:
        return 1.0 / (1.0 + math.exp(-s))
    e = math.exp(s)
    return e / (1.0 + e)


@njit(nogil=True, cache=True, inline="always")
def _better(s1, n1, s2, n2):
    return s1 > s2 or (s1 == s2 and n1 < n2)


@njit(nogil=True, cache=True, inline="always")
def _push(top_s, top_n, size, keep, s, node):
    """Insert (s, node) into the sorted top list of length ``size`` (<= keep)."""
    if size == keep:
        if not _better(s, node, top_s[size - 1], top_n[size - 1]):
            return size
        pos = size - 1
    else:
        pos = size
        size += 1
    while pos > 0 and _better(s, node, top_s[pos - 1], top_n[pos - 1]):
        top_s[pos] = top_s[pos - 1]
        top_n[pos] = top_n[pos - 1]
        pos -= 1
    top_s[pos] = s
    top_n[pos] = node
    return size


@njit(nogil=True, cache=True, inline="always")
def _add_children_products(
    p, i, x_indptr, x_indices, x_data, dense, chunk_indptr, cfeat, centry_ptr,
    cslot, cval, acc,
):  # fmt: skip
    """Add ``X[i] . W[child]`` to ``acc[slot]`` for every child of ``p``.

    The weights of the children of ``p`` are stored feature-major (features
    ``cfeat[fa:fb]``, each with its (child slot, weight) entries): either walk
    those features against the dense copy of the query, or, when they are many
    more than the query's, binary-search each query feature among them. Either
    way the products are added in increasing feature order.
    """
    fa = chunk_indptr[p]
    fb = chunk_indptr[p + 1]
    span = fb - fa
    n_x = x_indptr[i + 1] - x_indptr[i]
    if span <= 32 or span <= 2 * n_x * math.log2(span):
        for q in range(fa, fb):
            v = dense[cfeat[q]]
            if v != 0.0:
                for e in range(centry_ptr[q], centry_ptr[q + 1]):
                    acc[cslot[e]] += cval[e] * v
        return
    lo = fa
    for e in range(x_indptr[i], x_indptr[i + 1]):
        f = x_indices[e]
        a = _lower_bound(cfeat, lo, fb, f)
        if a == fb:
            break
        if cfeat[a] == f:
            v = x_data[e]
            for q in range(centry_ptr[a], centry_ptr[a + 1]):
                acc[cslot[q]] += cval[q] * v
            lo = a + 1
        else:
            lo = a


@njit(nogil=True, cache=True, inline="always")
def _score_children(
    p, i, x_indptr, x_indices, x_data, dense, ch_indptr, ch_indices, w_bias,
    chunk_indptr, cfeat, centry_ptr, cslot, cval, acc,
):  # fmt: skip
    """Raw scores of the children of ``p`` for row ``i`` into ``acc[:m]``:
    each child's bias plus :func:`_add_children_products`."""
    c0 = ch_indptr[p]
    m = ch_indptr[p + 1] - c0
    for s in range(m):
        acc[s] = w_bias[ch_indices[c0 + s]]
    _add_children_products(
        p, i, x_indptr, x_indices, x_data, dense, chunk_indptr, cfeat,
        centry_ptr, cslot, cval, acc,
    )  # fmt: skip
    return m


@njit(nogil=True, cache=True)
def _beam_rows(
    start, stop, x_indptr, x_indices, x_data, ch_indptr, ch_indices, w_bias,
    chunk_indptr, cfeat, centry_ptr, cslot, cval, n_levels, beam, k, post,
    max_children, dense, out_scores, out_nodes,
):  # fmt: skip
    acc = np.empty(max(max_children, 1), dtype=np.float64)
    width_max = max(beam, k)
    cur_s = np.empty(width_max, dtype=np.float64)
    cur_n = np.empty(width_max, dtype=np.int64)
    nxt_s = np.empty(width_max, dtype=np.float64)
    nxt_n = np.empty(width_max, dtype=np.int64)
    for i in range(start, stop):
        for e in range(x_indptr[i], x_indptr[i + 1]):
            dense[x_indices[e]] += x_data[e]
        cur_s[0] = 1.0
        cur_n[0] = 0
        width = 1
        for lvl in range(n_levels):
            keep = k if lvl == n_levels - 1 else beam
            size = 0
            for b in range(width):
                p = cur_n[b]
                ps = cur_s[b]
                m = _score_children(
                    p, i, x_indptr, x_indices, x_data, dense, ch_indptr, ch_indices,
                    w_bias, chunk_indptr, cfeat, centry_ptr, cslot, cval, acc,
                )  # fmt: skip
                c0 = ch_indptr[p]
                for s in range(m):
                    size = _push(
                        nxt_s, nxt_n, size, keep, ps * _post(acc[s], post),
                        ch_indices[c0 + s],
                    )  # fmt: skip
            cur_s, nxt_s = nxt_s, cur_s
            cur_n, nxt_n = nxt_n, cur_n
            width = size
            if width == 0:
                break
        for a in range(width):
            out_scores[i, a] = cur_s[a]
            out_nodes[i, a] = cur_n[a]
        for e in range(x_indptr[i], x_indptr[i + 1]):
            dense[x_indices[e]] = 0.0


@njit(nogil=True, cache=True)
def _add_products_by_feature(
    i, x_indptr, x_indices, x_data, lvl, fe_indptr, fe_node, fe_slot, fe_val, mark,
    stride, acc,
):  # fmt: skip
    """Add ``X[i] . W[child]`` to ``acc[mark[p] * stride + slot]`` for every
    child of every marked node ``p`` of level ``lvl`` (``mark[p] >= 0``).

    The weights of the children of level ``lvl``'s nodes are read
    feature-major: ``fe_indptr[lvl, f]`` to ``fe_indptr[lvl, f + 1]`` are the
    entries of feature ``f`` (node, child slot, weight), so one sequential
    pass over the query's features visits every marked node's weights. Row
    ``i`` must have sorted, distinct indices: each child's products are then
    added in increasing feature order, as :func:`_add_children_products`
    adds them (the same sums to the bit).
    """
    for e in range(x_indptr[i], x_indptr[i + 1]):
        v = x_data[e]
        if v == 0.0:
            continue
        f = x_indices[e]
        for q in range(fe_indptr[lvl, f], fe_indptr[lvl, f + 1]):
            b = mark[fe_node[q]]
            if b >= 0:
                acc[b * stride + fe_slot[q]] += fe_val[q] * v


@njit(nogil=True, cache=True, inline="always")
def _add_products_and_node_sums(
    i, x_indptr, x_indices, x_data, lvl, fe_indptr, fe_node, fe_slot, fe_val, mark,
    stride, acc, sums, first_parent,
):  # fmt: skip
    """:func:`_add_products_by_feature`, and every child's product sum of
    the level (marked or not) in ``sums[(p - first_parent) * stride + slot]``,
    from zero in increasing feature order: a float32 ``sums`` adds as
    :func:`~skxmc.indexing._xr_linear._level_pair_raw` does, a float64 one as
    :func:`~skxmc.indexing._xr_linear._label_level_raw`."""
    for e in range(x_indptr[i], x_indptr[i + 1]):
        v = x_data[e]
        if v == 0.0:
            continue
        f = x_indices[e]
        for q in range(fe_indptr[lvl, f], fe_indptr[lvl, f + 1]):
            p = fe_node[q]
            product = fe_val[q] * v
            sums[(p - first_parent) * stride + fe_slot[q]] += product
            b = mark[p]
            if b >= 0:
                acc[b * stride + fe_slot[q]] += product


@njit(nogil=True, cache=True)
def _beam_rows_by_feature(
    start, stop, x_indptr, x_indices, x_data, ch_indptr, ch_indices, w_bias,
    fe_indptr, fe_node, fe_slot, fe_val, n_levels, beam, k, post, max_children,
    mark, out_scores, out_nodes, sums32, sums64, last_parents,
):  # fmt: skip
    """:func:`_beam_rows` with the children of a level's beam scored together
    by :func:`_add_products_by_feature` (rows with sorted, distinct indices):
    the same scores to the bit, the same pushes, so the same result.
    ``mark`` (one slot per node, -1) is left as it was.

    With ``sums32`` and ``sums64`` of ``stop - start`` rows (else of none),
    the same passes also sum the products of every node of every level (see
    :func:`_add_products_and_node_sums`; the upper levels' into ``sums32``,
    the last level's, whose parents start at node ``last_parents``, into
    ``sums64``), each level searched even when the beam ran empty: the
    pair scores of any label follow without another pass over the weights.
    """
    with_sums = sums32.shape[0] > 0
    width_max = max(beam, k)
    stride = max(max_children, 1)
    acc = np.empty(width_max * stride, dtype=np.float64)
    cur_s = np.empty(width_max, dtype=np.float64)
    cur_n = np.empty(width_max, dtype=np.int64)
    nxt_s = np.empty(width_max, dtype=np.float64)
    nxt_n = np.empty(width_max, dtype=np.int64)
    for i in range(start, stop):
        cur_s[0] = 1.0
        cur_n[0] = 0
        width = 1
        for lvl in range(n_levels):
            keep = k if lvl == n_levels - 1 else beam
            for b in range(width):
                p = cur_n[b]
                mark[p] = b
                c0 = ch_indptr[p]
                for s in range(ch_indptr[p + 1] - c0):
                    acc[b * stride + s] = w_bias[ch_indices[c0 + s]]
            if not with_sums:
                _add_products_by_feature(
                    i, x_indptr, x_indices, x_data, lvl, fe_indptr, fe_node,
                    fe_slot, fe_val, mark, stride, acc,
                )  # fmt: skip
            elif lvl < n_levels - 1:
                _add_products_and_node_sums(
                    i, x_indptr, x_indices, x_data, lvl, fe_indptr, fe_node,
                    fe_slot, fe_val, mark, stride, acc, sums32[i - start], 0,
                )  # fmt: skip
            else:
                _add_products_and_node_sums(
                    i, x_indptr, x_indices, x_data, lvl, fe_indptr, fe_node,
                    fe_slot, fe_val, mark, stride, acc, sums64[i - start],
                    last_parents,
                )  # fmt: skip
            size = 0
            for b in range(width):
                p = cur_n[b]
                mark[p] = -1
                ps = cur_s[b]
                c0 = ch_indptr[p]
                for s in range(ch_indptr[p + 1] - c0):
                    size = _push(
                        nxt_s, nxt_n, size, keep,
                        ps * _post(acc[b * stride + s], post), ch_indices[c0 + s],
                    )  # fmt: skip
            cur_s, nxt_s = nxt_s, cur_s
            cur_n, nxt_n = nxt_n, cur_n
            width = size
            if width == 0 and not with_sums:
                break
        for a in range(width):
            out_scores[i, a] = cur_s[a]
            out_nodes[i, a] = cur_n[a]


@njit(parallel=True, cache=True)
def _beam_parallel(
    x_indptr, x_indices, x_data, n_features, ch_indptr, ch_indices, w_bias,
    chunk_indptr, cfeat, centry_ptr, cslot, cval, n_levels, beam, k, post,
    max_children, n_chunks, out_scores, out_nodes,
):  # fmt: skip
    n = x_indptr.shape[0] - 1
    for c in prange(n_chunks):
        start = c * n // n_chunks
        stop = (c + 1) * n // n_chunks
        dense = np.zeros(n_features, dtype=np.float32)
        _beam_rows(
            start, stop, x_indptr, x_indices, x_data, ch_indptr, ch_indices, w_bias,
            chunk_indptr, cfeat, centry_ptr, cslot, cval, n_levels, beam, k, post,
            max_children, dense, out_scores, out_nodes,
        )  # fmt: skip


#: The empty sums arrays of a search that does not keep them.
_NO_SUMS = (np.zeros((0, 0), dtype=np.float32), np.zeros((0, 0), dtype=np.float64))


class NodeSums(NamedTuple):
    """The weight-times-query sums of every node of a few searched rows.

    ``upper[i, p * stride + s]`` is the sum of the products of row ``i`` with
    the weights of child ``s`` of node ``p`` above the last level's parents
    (float32, summed from zero in increasing feature order, as
    :func:`~skxmc.indexing._xr_linear._level_pair_raw` sums); ``last[i, (p -
    last_parents) * stride + s]`` the same for the children of the last
    level's parents ``p`` (float64, as
    :func:`~skxmc.indexing._xr_linear._label_level_raw` sums). Without the
    intercepts.
    """

    upper: np.ndarray
    last: np.ndarray
    last_parents: int
    stride: int


class TreeScorer:
    """Per-level node models of a tree, laid out for fast beam search.

    Nodes are numbered globally, level by level (root = 0). The weights of the
    children of each node are stored together, feature-major (pecos' "chunked"
    layout): scoring the children of a beam node costs one pass over the
    features they use, or one binary search per query feature, and never
    touches the children of nodes outside the beam.

    Parameters
    ----------
    tree : LabelTree
        The tree.
    weights : list of sparse matrices
        ``weights[t]`` of shape (n_nodes[t + 1], n_features): the linear models
        of the nodes of level ``t + 1`` (one per row). May be shorter than
        ``tree.n_levels`` (a partially trained tree), in which case searches
        can only go that deep.
    intercepts : list of ndarray
        ``intercepts[t]`` of shape (n_nodes[t + 1],).
    """

    def __init__(self, tree: LabelTree, weights, intercepts):
        if len(weights) != len(intercepts) or not 1 <= len(weights) <= tree.n_levels:
            raise ValueError(
                "weights and intercepts must hold one entry per trained level "
                f"(1 to {tree.n_levels})."
            )
        n_features = sp.csr_matrix(weights[0]).shape[1]
        n_nodes = tree.n_nodes
        self.n_levels = len(weights)
        self.n_features = n_features
        self.n_nodes = n_nodes[: self.n_levels + 1]
        self.offsets = np.concatenate([[0], np.cumsum(self.n_nodes)]).astype(np.int64)
        total = int(self.offsets[-1])
        biases = [np.zeros(1, dtype=np.float32)]
        ch_counts = np.zeros(total, dtype=np.int64)
        chunk_counts = np.zeros(total, dtype=np.int64)
        child_parts, feat_parts, run_parts, slot_parts, val_parts = [], [], [], [], []
        self.max_children = 0
        n_runs = 0
        for t, (W, b) in enumerate(zip(weights, intercepts)):
            W = sp.csr_matrix(W, dtype=np.float32)
            W.sum_duplicates()
            if W.shape != (n_nodes[t + 1], n_features):
                raise ValueError(
                    f"weights[{t}] has shape {W.shape}, expected "
                    f"{(n_nodes[t + 1], n_features)}."
                )
            biases.append(np.asarray(b, dtype=np.float32).reshape(n_nodes[t + 1]))
            ptr, idx = tree.children(t)
            ch_counts[self.offsets[t] : self.offsets[t + 1]] = np.diff(ptr)
            child_parts.append(idx + self.offsets[t + 1])
            self.max_children = max(self.max_children, int(np.diff(ptr).max()))
            parent = tree.parents(t + 1)
            slot = np.empty(n_nodes[t + 1], dtype=np.int64)
            slot[idx] = np.arange(idx.shape[0]) - np.repeat(ptr[:-1], np.diff(ptr))
            rows = np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))
            key = parent[rows] * np.int64(n_features) + W.indices
            order = np.argsort(key, kind="stable")
            key = key[order]
            starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]][: key.shape[0]])
            run_parent = key[starts] // n_features
            chunk_counts[self.offsets[t] : self.offsets[t + 1]] = np.bincount(
                run_parent, minlength=n_nodes[t]
            )
            feat_parts.append((key[starts] % n_features).astype(np.int32))
            run_parts.append(starts + sum(v.shape[0] for v in val_parts))
            slot_parts.append(slot[rows[order]].astype(np.int32))
            val_parts.append(W.data[order])
            n_runs += starts.shape[0]
        self.w_bias = np.concatenate(biases)
        self.ch_indptr = np.concatenate([[0], np.cumsum(ch_counts)]).astype(np.int64)
        self.ch_indices = np.concatenate(child_parts).astype(np.int64)
        self.chunk_indptr = np.concatenate([[0], np.cumsum(chunk_counts)]).astype(
            np.int64
        )
        self.cfeat = np.concatenate(feat_parts).astype(np.int32)
        self.cval = np.concatenate(val_parts).astype(np.float32)
        self.cslot = np.concatenate(slot_parts).astype(np.int32)
        self.centry_ptr = np.concatenate([*run_parts, [self.cval.shape[0]]]).astype(
            np.int64
        )

    def _dense_buffer(self):
        """A zeroed query buffer of the calling thread, as a context (the
        kernels leave it zeroed), so that a single-row search allocates
        nothing large."""
        return _filled_scratch(self.n_features, np.float32)

    def _node_marks(self):
        """A ``-1``-filled int64 array of one slot per node of the calling
        thread, as a context (the kernels that mark nodes leave it as they
        found it)."""
        return _filled_scratch(int(self.offsets[-1]), np.int64, -1)

    def _by_feature(self) -> tuple[np.ndarray, ...]:
        """The weights of every level, feature-major: ``(fe_indptr, fe_node,
        fe_slot, fe_val)``; the weights of feature ``f`` of the children of
        level ``t``'s nodes are the entries ``fe_indptr[t, f]`` to
        ``fe_indptr[t, f + 1]`` (by node, then child): the node, the child's
        slot among its siblings and the weight. A second copy of the weights
        (about 10 bytes an entry), built once and not pickled."""
        cached = self.__dict__.get("_feature_major")
        if cached is not None:
            return cached
        n_entries = self.cval.shape[0]
        run_node = np.repeat(
            np.arange(int(self.offsets[-1]), dtype=np.int32),
            np.diff(self.chunk_indptr),
        )
        run_length = np.diff(self.centry_ptr)
        entry_feature = np.repeat(self.cfeat, run_length)
        entry_node = np.repeat(run_node, run_length)
        fe_indptr = np.empty((self.n_levels, self.n_features + 1), dtype=np.int64)
        slot_dtype = np.int16 if self.max_children < 2**15 else np.int32
        fe_node = np.empty(n_entries, dtype=np.int32)
        fe_slot = np.empty(n_entries, dtype=slot_dtype)
        fe_val = np.empty(n_entries, dtype=np.float32)
        for t in range(self.n_levels):
            a = int(self.centry_ptr[self.chunk_indptr[self.offsets[t]]])
            b = int(self.centry_ptr[self.chunk_indptr[self.offsets[t + 1]]])
            features = entry_feature[a:b]
            # entries are stored by (node, feature, child): a stable sort by
            # feature lists each feature's entries by node and child
            order = np.argsort(features, kind="stable") + a
            counts = np.bincount(features, minlength=self.n_features)
            fe_indptr[t, 0] = a
            np.cumsum(counts, out=fe_indptr[t, 1:])
            fe_indptr[t, 1:] += a
            fe_node[a:b] = entry_node[order]
            fe_slot[a:b] = self.cslot[order]
            fe_val[a:b] = self.cval[order]
        cached = self._feature_major = (fe_indptr, fe_node, fe_slot, fe_val)
        return cached

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_feature_major", None)
        return state

    def level_weights(self, t: int) -> tuple[sp.csr_matrix, np.ndarray]:
        """Weights (CSR, one row per node) and intercepts of ``weights[t]``."""
        a, b = self.offsets[t], self.offsets[t + 1]
        n_runs = np.diff(self.chunk_indptr[a : b + 1])
        runs = np.arange(self.chunk_indptr[a], self.chunk_indptr[b])
        run_parent = np.repeat(np.arange(a, b), n_runs)
        lengths = np.diff(self.centry_ptr)[runs]
        if runs.size:
            entries = np.arange(self.centry_ptr[runs[0]], self.centry_ptr[runs[-1] + 1])
        else:
            entries = np.zeros(0, dtype=np.int64)
        parent_of_entry = np.repeat(run_parent, lengths)
        node = self.ch_indices[self.ch_indptr[parent_of_entry] + self.cslot[entries]]
        feature = np.repeat(self.cfeat[runs], lengths)
        c, d = self.offsets[t + 1], self.offsets[t + 2]
        W = sp.csr_matrix(
            (self.cval[entries], (node - c, feature)),
            shape=(d - c, self.n_features),
        )
        W.sort_indices()
        return W, self.w_bias[c:d].copy()

    def search(
        self,
        X,
        *,
        beam_size: int = 10,
        k: int = 10,
        post_processor: str = "l3-hinge",
        n_levels: int | None = None,
        n_jobs: int | None = None,
        node_sums: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Beam search; returns the ``k`` best nodes of the last searched level.

        Parameters
        ----------
        X : csr_matrix of shape (n_samples, n_features)
            Queries.
        beam_size : int, default=10
            Nodes kept at every level but the last.
        k : int, default=10
            Nodes returned from the last level.
        post_processor : {"l3-hinge", "sigmoid"}, default="l3-hinge"
            Transform of the linear scores.
        n_levels : int, default=None
            Search only the first ``n_levels`` levels (default: all trained).
        n_jobs : int, default=None
            Threads (None: all cores); at most a few rows run in the calling
            thread without the parallel runtime.
        node_sums : bool, default=False
            Also return the :class:`NodeSums` of a few rows (at most
            ``_FEW_ROWS``; None for more): the linear score of every node of
            the searched levels, summed in the same passes over the weights.

        Returns
        -------
        scores : ndarray of shape (n_samples, k), dtype float32
            Path scores, best first, ``-inf`` padded.
        indices : ndarray of shape (n_samples, k), dtype int64
            Node ids within their level (label ids for the label level),
            ``-1`` padded.
        sums : NodeSums or None
            Only with ``node_sums``.
        """
        if post_processor not in _POST_CODE:
            raise ValueError(
                f"Unknown post_processor {post_processor!r}; expected one of "
                f"{POST_PROCESSORS}."
            )
        if beam_size < 1 or k < 1:
            raise ValueError("beam_size and k must be >= 1.")
        n_levels = self.n_levels if n_levels is None else int(n_levels)
        if not 1 <= n_levels <= self.n_levels:
            raise ValueError(f"n_levels must be in [1, {self.n_levels}].")
        X = X if sp.isspmatrix_csr(X) else sp.csr_matrix(X)
        if X.dtype != np.float32:
            X = X.astype(np.float32)
        if not X.has_canonical_format:
            X = X.copy()
            X.sum_duplicates()
        if X.shape[1] != self.n_features:
            raise ValueError(
                f"X has {X.shape[1]} features, the model expects {self.n_features}."
            )
        n = X.shape[0]
        out_scores = np.full((n, k), -np.inf, dtype=np.float64)
        out_nodes = np.full((n, k), -1, dtype=np.int64)
        model = (
            self.ch_indptr, self.ch_indices, self.w_bias, self.chunk_indptr,
            self.cfeat, self.centry_ptr, self.cslot, self.cval, n_levels,
            int(beam_size), int(k), _POST_CODE[post_processor], self.max_children,
        )  # fmt: skip
        n_threads = effective_n_jobs(n_jobs)
        sums = None
        if n <= _FEW_ROWS:
            # a few rows: every beam node's children in one pass over the
            # query's features (X is canonical here)
            stride = max(self.max_children, 1)
            last_parents = int(self.offsets[n_levels - 1])
            upper, last = _NO_SUMS
            if node_sums:
                n_last = int(self.offsets[n_levels]) - last_parents
                upper = np.zeros((n, last_parents * stride), dtype=np.float32)
                last = np.zeros((n, n_last * stride), dtype=np.float64)
                sums = NodeSums(upper, last, last_parents, stride)
            with self._node_marks() as marks:
                _beam_rows_by_feature(
                    0, n, X.indptr, X.indices, X.data, self.ch_indptr,
                    self.ch_indices, self.w_bias, *self._by_feature(), n_levels,
                    int(beam_size), int(k), _POST_CODE[post_processor],
                    self.max_children, marks, out_scores, out_nodes, upper, last,
                    last_parents,
                )  # fmt: skip
        elif n_threads == 1:
            with self._dense_buffer() as dense:
                _beam_rows(
                    0, n, X.indptr, X.indices, X.data, *model, dense, out_scores,
                    out_nodes,
                )  # fmt: skip
        else:
            n_chunks = min(n, 4 * n_threads)
            with numba_threads(n_threads):
                _beam_parallel(
                    X.indptr, X.indices, X.data, self.n_features, *model, n_chunks,
                    out_scores, out_nodes,
                )  # fmt: skip
        valid = out_nodes >= 0
        out_nodes[valid] -= self.offsets[n_levels]
        if node_sums:
            return out_scores.astype(np.float32), out_nodes, sums
        return out_scores.astype(np.float32), out_nodes


def beam_search(
    X,
    tree: LabelTree,
    weights,
    intercepts,
    *,
    beam_size: int = 10,
    k: int = 10,
    post_processor: str = "l3-hinge",
    n_jobs: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` labels of every row by beam search over ``tree``.

    A convenience wrapper around :class:`TreeScorer` (build it once when
    searching repeatedly).

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Queries.
    tree : LabelTree
        The label tree.
    weights, intercepts : list
        Per-level node models, see :class:`TreeScorer`.
    beam_size : int, default=10
        Nodes kept at every level but the last.
    k : int, default=10
        Labels returned per query.
    post_processor : {"l3-hinge", "sigmoid"}, default="l3-hinge"
        Transform of the linear scores before they multiply down a path.
    n_jobs : int, default=None
        Threads (None: all cores).

    Returns
    -------
    scores : ndarray of shape (n_samples, k), dtype float32
        Path scores, best first, ``-inf`` padded.
    indices : ndarray of shape (n_samples, k), dtype int64
        Label ids, best first, ``-1`` padded.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skxmc.indexing import LabelTree, beam_search
    >>> tree = LabelTree.from_leaf_codes([0, 0, 1], 2, branching_factor=2)
    >>> W = [sp.csr_matrix(np.array([[2.0], [0.0]])),
    ...      sp.csr_matrix(np.array([[1.0], [3.0], [5.0]]))]
    >>> b = [np.zeros(2), np.zeros(3)]
    >>> scores, labels = beam_search(np.array([[1.0]]), tree, W, b, beam_size=1, k=3)
    >>> labels
    array([[ 0,  1, -1]])
    """
    scorer = TreeScorer(tree, weights, intercepts)
    return scorer.search(
        X, beam_size=beam_size, k=k, post_processor=post_processor, n_jobs=n_jobs
    )
