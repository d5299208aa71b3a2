"""The XR-Linear engine: a label tree, one linear ranker per node, beam search.

Training goes down the tree one level at a time (pecos ``HierarchicalMLModel``).
The children of a node are trained on the rows their parent is responsible
for, chosen by the negative sampling scheme:

- ``"tfn"`` (teacher-forced negatives): rows positive for the parent, i.e. the
  positives of the node and of its siblings;
- ``"man"`` (matcher-aware negatives): rows whose beam, computed with the
  levels trained so far, holds the parent;
- ``"tfn+man"``: both.

At the first level (children of the root) every row is used.

On a Dask cluster: inside ``with joblib.parallel_config(backend="dask"):``
(with a :class:`dask.distributed.Client`), :meth:`XRLinearModel.train` sends
the per-node training tasks of every level, and :meth:`~XRLinearModel.
predict_topk` blocks of rows, to the cluster's workers. Every task is the
local one (same rows, same seed stream), so the model and the rankings equal
the local ones exactly.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import scipy.sparse as sp
from numba import njit
from tqdm.auto import tqdm

from skxmc.indexing._beam import (
    _FEW_ROWS,
    POST_PROCESSORS,
    TreeScorer,
    _add_children_products,
    _add_products_by_feature,
    post_process,
)
from skxmc.indexing._linear import LOSSES, fit_level, normalize_rows
from skxmc.indexing._tree import LabelTree, dask_workers, effective_n_jobs
from skxmc.utils._sparse import as_float32_csr, sparse_pair_scores

__all__ = ["NEGATIVE_SAMPLING", "XRLinearModel"]

#: Negative sampling schemes understood by :meth:`XRLinearModel.train`.
NEGATIVE_SAMPLING = ("tfn", "man", "tfn+man")


@njit(cache=True, nogil=True)
def _level_pair_raw(
    x_indptr, x_indices, x_data, wt_indptr, wt_indices, wt_data, bias, nodes, acc, out
):  # fmt: skip
    """``out[i, j] = (X @ W_T)[i, nodes[i, j]] + bias[nodes[i, j]]`` in float32.

    Row ``i``'s products are summed into the dense ``acc`` (one slot per node,
    left zeroed) in the order of scipy's ``csr_matmat`` (the row's stored
    entries in turn, each against its row of ``W_T``), so the sums are those
    of ``(X @ W_T).toarray()`` to the bit.
    """
    for i in range(x_indptr.shape[0] - 1):
        for e in range(x_indptr[i], x_indptr[i + 1]):
            v = x_data[e]
            f = x_indices[e]
            for q in range(wt_indptr[f], wt_indptr[f + 1]):
                acc[wt_indices[q]] += v * wt_data[q]
        for j in range(nodes.shape[1]):
            out[i, j] = acc[nodes[i, j]] + bias[nodes[i, j]]
        for e in range(x_indptr[i], x_indptr[i + 1]):
            f = x_indices[e]
            for q in range(wt_indptr[f], wt_indptr[f + 1]):
                acc[wt_indices[q]] = 0.0


@njit(cache=True, nogil=True)
def _label_level_raw(
    x_indptr, x_indices, x_data, dense, labels, first_label, parent_of, ch_indptr,
    ch_indices, w_bias, chunk_indptr, cfeat, centry_ptr, cslot, cval, sums, done,
    children, out,
):  # fmt: skip
    """``out[i, j] = float32(X[i] . W[l]) + b[l]`` for ``l = labels[i, j]``.

    ``W`` is the label level of a :class:`TreeScorer`, read from its chunked
    layout: the labels of a row's shortlist sit under few parents, so all the
    children of a needed parent are scored at once, by one pass over the
    parent's features (or a search of the query's features among them) --
    far fewer steps than a search of each label's row. Each label's sum is
    that of :func:`~skxmc.utils.sparse_pair_scores`: float32 products of the
    shared features added in increasing feature order to a float64 zero
    (rows of ``X`` must have sorted, distinct indices), so the result is the
    same to the bit. ``dense`` (one slot per feature) is left zeroed; ``done``
    (one slot per node) is left false.
    """
    n_done = 0
    parents = np.empty(labels.shape[1], dtype=np.int64)
    for i in range(x_indptr.shape[0] - 1):
        x0 = x_indptr[i]
        x1 = x_indptr[i + 1]
        for e in range(x0, x1):
            dense[x_indices[e]] += x_data[e]
        for j in range(labels.shape[1]):
            node = first_label + labels[i, j]
            p = parent_of[node]
            if not done[p]:
                done[p] = True
                parents[n_done] = p
                n_done += 1
                c0 = ch_indptr[p]
                m = ch_indptr[p + 1] - c0
                for slot in range(m):
                    children[slot] = 0.0
                _add_children_products(
                    p, i, x_indptr, x_indices, x_data, dense, chunk_indptr,
                    cfeat, centry_ptr, cslot, cval, children,
                )  # fmt: skip
                for slot in range(m):
                    sums[ch_indices[c0 + slot] - first_label] = children[slot]
            out[i, j] = np.float32(sums[labels[i, j]]) + w_bias[node]
        for t in range(n_done):
            done[parents[t]] = False
        n_done = 0
        for e in range(x0, x1):
            dense[x_indices[e]] = 0.0


@njit(cache=True, nogil=True)
def _path_raw_by_feature(
    x_indptr, x_indices, x_data, labels, ancestors, offsets, parent_of, slot_of,
    w_bias, fe_indptr, fe_node, fe_slot, fe_val, max_children, mark, raw,
):  # fmt: skip
    """Raw scores of every level's ancestor of each label of a few rows:
    ``raw[d, i, j]`` is the score of the level ``d + 1`` ancestor of
    ``labels[i, j]`` (the label itself at the last level).

    At each level the children of all the ancestors' parents are scored in
    one feature-major pass
    (:func:`~skxmc.indexing._beam._add_products_by_feature`): each node's
    products in increasing feature order (rows with sorted, distinct
    indices), summed as the batch kernels sum them -- in float32 plus the
    float32 bias at the upper levels (:func:`_level_pair_raw`), in float64
    then rounded to float32 plus the bias at the label level
    (:func:`_label_level_raw`) -- so the same scores to the bit. ``mark``
    (one slot per node, -1) is left as it was.
    """
    depth = ancestors.shape[1]
    m = labels.shape[1]
    stride = max(max_children, 1)
    parents = np.empty(m, dtype=np.int64)
    acc32 = np.empty(m * stride, dtype=np.float32)
    acc64 = np.empty(m * stride, dtype=np.float64)
    for i in range(x_indptr.shape[0] - 1):
        for d in range(depth):
            n_parents = 0
            for j in range(m):
                p = parent_of[offsets[d + 1] + ancestors[labels[i, j], d]]
                if mark[p] < 0:
                    mark[p] = n_parents
                    parents[n_parents] = p
                    n_parents += 1
            last = d == depth - 1
            if last:
                acc64[: n_parents * stride] = 0.0
                _add_products_by_feature(
                    i, x_indptr, x_indices, x_data, d, fe_indptr, fe_node, fe_slot,
                    fe_val, mark, stride, acc64,
                )  # fmt: skip
            else:
                acc32[: n_parents * stride] = 0.0
                _add_products_by_feature(
                    i, x_indptr, x_indices, x_data, d, fe_indptr, fe_node, fe_slot,
                    fe_val, mark, stride, acc32,
                )  # fmt: skip
            for j in range(m):
                node = offsets[d + 1] + ancestors[labels[i, j], d]
                pos = mark[parent_of[node]] * stride + slot_of[node]
                if last:
                    raw[d, i, j] = np.float32(acc64[pos]) + w_bias[node]
                else:
                    raw[d, i, j] = acc32[pos] + w_bias[node]
            for b in range(n_parents):
                mark[parents[b]] = -1


@njit(cache=True, nogil=True)
def _path_raw_lookup(
    labels, ancestors, offsets, parent_of, slot_of, w_bias, upper, last,
    last_parents, stride, raw,
):  # fmt: skip
    """:func:`_path_raw_by_feature`'s ``raw`` from the node sums of a search
    of the same rows (:class:`~skxmc.indexing._beam.NodeSums`): the same
    float32 sums plus the same intercepts, so the same scores to the bit."""
    depth = ancestors.shape[1]
    for i in range(labels.shape[0]):
        for j in range(labels.shape[1]):
            label = labels[i, j]
            for d in range(depth):
                node = offsets[d + 1] + ancestors[label, d]
                p = parent_of[node]
                if d < depth - 1:
                    raw[d, i, j] = upper[i, p * stride + slot_of[node]] + w_bias[node]
                else:
                    total = last[i, (p - last_parents) * stride + slot_of[node]]
                    raw[d, i, j] = np.float32(total) + w_bias[node]


def _path_product(raw: np.ndarray, valid: np.ndarray, post_processor: str):
    """The path scores of :meth:`XRLinearModel.score_pairs` from the raw
    scores of every level (``(n_levels, n_rows, m)``), 0 on empty slots.

    Every level transformed in one call and multiplied level after level (a
    reduction over the first axis multiplies in that order): a few NumPy calls
    instead of a few per level."""
    out = np.multiply.reduce(post_process(raw, post_processor), axis=0)
    out[~valid] = 0.0
    return out.astype(np.float32)


class _PairScorer:
    """``score_pairs`` of the rows of one :meth:`XRLinearModel.predict_topk`
    call (see its ``return_pair_scorer``)."""

    def __init__(self, model, X, rows, sums, post_processor):
        self._model = model
        self._X = X
        self._n_rows = rows.shape[0]
        self._sums = sums
        self._post_processor = post_processor

    def __call__(self, labels) -> np.ndarray:
        model = self._model
        if self._sums is None:
            return model.score_pairs(
                self._X, labels, post_processor=self._post_processor
            )
        labels = model._check_pair_labels(labels, self._n_rows)
        valid = labels >= 0
        raw = model._path_raw_from_sums(self._sums, np.where(valid, labels, 0))
        return _path_product(raw, valid, self._post_processor)


def _topk_csr(indices: np.ndarray, n_cols: int) -> sp.csr_matrix:
    valid = indices >= 0
    rows = np.nonzero(valid)[0]
    cols = indices[valid]
    M = sp.csr_matrix(
        (np.ones(rows.shape[0], np.float32), (rows, cols)),
        shape=(indices.shape[0], n_cols),
    )
    M.sum_duplicates()
    return M


def _binarize(M: sp.spmatrix) -> sp.csr_matrix:
    M = sp.csr_matrix(M, dtype=np.float32, copy=True)
    M.sum_duplicates()
    M.data[:] = 1.0
    return M


def search_rows(scorer: TreeScorer, X, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """``scorer.search(X, **kwargs)``, in row blocks on a Dask cluster under
    joblib's ``"dask"`` backend (rows are searched independently: the same
    result). Each block runs single-threaded on its worker thread."""
    n_workers = dask_workers()
    n = X.shape[0]
    if not n_workers or n < 2:
        return scorer.search(X, **kwargs)
    from joblib import Parallel, delayed

    X = as_float32_csr(X)
    n_blocks = min(n, 4 * n_workers)
    bounds = np.linspace(0, n, n_blocks + 1).round().astype(int)
    kwargs = {**kwargs, "n_jobs": 1}
    parts = Parallel(n_jobs=-1)(
        delayed(_search_block)(scorer, X[a:b], kwargs)
        for a, b in itertools.pairwise(bounds)
    )
    return (
        np.concatenate([s for s, _ in parts]),
        np.concatenate([i for _, i in parts]),
    )


def _search_block(scorer, X, kwargs):
    return scorer.search(X, **kwargs)


class XRLinearModel:
    """A fitted XR-Linear model (the engine behind ``XRLinearClassifier``).

    Build one with :meth:`train`.

    Parameters
    ----------
    tree : LabelTree
        The label tree.
    scorer : TreeScorer
        The node models of every level of ``tree``.
    post_processor : {"l3-hinge", "sigmoid"}, default="l3-hinge"
        Default score transform for :meth:`predict_topk`.
    beam_size : int, default=10
        Default beam for :meth:`predict_topk`.
    row_norm : {"l2"} or None, default="l2"
        How query rows are normalised before scoring
        (:func:`~skxmc.indexing.normalize_rows`); must be the normalisation
        the models were trained with.

    Attributes
    ----------
    fit_times_ : dict
        Seconds spent per training level (``"level_0"``, ...) and on the
        matcher-aware beams (``"man"``).
    n_iter_ : list of int
        Largest number of solver passes of a node model, per level.
    """

    def __init__(
        self,
        tree: LabelTree,
        scorer: TreeScorer,
        *,
        post_processor: str = "l3-hinge",
        beam_size: int = 10,
        row_norm: str | None = "l2",
    ):
        if scorer.n_levels != tree.n_levels:
            raise ValueError("The scorer must cover every level of the tree.")
        self.tree = tree
        self.scorer = scorer
        self.post_processor = post_processor
        self.beam_size = beam_size
        self.row_norm = row_norm
        self.fit_times_: dict = {}
        self.n_iter_: list = []

    @property
    def n_features(self) -> int:
        return self.scorer.n_features

    @property
    def n_labels(self) -> int:
        return self.tree.n_labels

    def _query_rows(self, X) -> sp.csr_matrix:
        # models saved before row_norm existed were trained on raw rows
        return normalize_rows(X, self.__dict__.get("row_norm"))

    def weights(self, level: int) -> tuple[sp.csr_matrix, np.ndarray]:
        """Weights (CSR, one row per node) and intercepts of tree level ``level``
        (1 = children of the root, ``tree.n_levels`` = labels)."""
        return self.scorer.level_weights(level - 1)

    @classmethod
    def train(
        cls,
        X,
        Y,
        tree: LabelTree,
        *,
        negative_sampling: str = "tfn+man",
        loss: str = "squared_hinge",
        C: float = 1.0,
        max_iter: int = 100,
        tol: float = 0.1,
        bias: float = 1.0,
        weight_threshold: float = 0.1,
        beam_size: int = 10,
        post_processor: str = "l3-hinge",
        row_norm: str | None = "l2",
        seed: int = 0,
        n_jobs: int | None = None,
        verbose: int = 0,
    ) -> XRLinearModel:
        """Train the rankers of every level of ``tree``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training features.
        Y : {array-like, sparse matrix} of shape (n_samples, n_labels)
            0/1 label matrix; its columns are the labels of ``tree``.
        tree : LabelTree
            The label tree.
        negative_sampling : {"tfn", "man", "tfn+man"}, default="tfn+man"
            Which rows train the children of a node (see the module docstring).
        loss, C, max_iter, tol, bias : see :func:`~skxmc.indexing.fit_binary`.
        weight_threshold : float, default=0.1
            Weights with a smaller absolute value are dropped.
        beam_size : int, default=10
            Beam of the matcher-aware negatives, and default beam for
            prediction.
        post_processor : {"l3-hinge", "sigmoid"}, default="l3-hinge"
            Score transform of the beams (training and prediction).
        row_norm : {"l2"} or None, default="l2"
            Rows of ``X`` (and of every query) are scaled to unit L2 norm
            (:func:`~skxmc.indexing.normalize_rows`), so the rankings do not
            depend on how each row is scaled (TF-IDF with ``norm=None``,
            counts). Rows already of unit norm are kept to the bit. ``None``
            trains on ``X`` as given, still robust to one global scale.
        seed : int, default=0
            Seeds the solvers.
        n_jobs : int, default=None
            Threads; None means all cores.
        verbose : int, default=0
            Show a progress bar over the tree levels (nodes and weights of
            each trained level).

        Returns
        -------
        model : XRLinearModel

        Examples
        --------
        >>> import numpy as np
        >>> from skxmc.indexing import XRLinearModel, LabelTree
        >>> X = np.eye(4)
        >>> Y = np.eye(4)
        >>> tree = LabelTree.from_leaf_codes([0, 0, 1, 1], 2, branching_factor=2)
        >>> model = XRLinearModel.train(X, Y, tree, C=10.0, weight_threshold=0.0)
        >>> model.predict_topk(X, k=1)[1].ravel()
        array([0, 1, 2, 3])
        """
        if negative_sampling not in NEGATIVE_SAMPLING:
            raise ValueError(
                f"Unknown negative_sampling {negative_sampling!r}; expected one of "
                f"{NEGATIVE_SAMPLING}."
            )
        if loss not in LOSSES:
            raise ValueError(f"Unknown loss {loss!r}; expected one of {LOSSES}.")
        if post_processor not in POST_PROCESSORS:
            raise ValueError(
                f"Unknown post_processor {post_processor!r}; expected one of "
                f"{POST_PROCESSORS}."
            )
        X = sp.csr_matrix(X, dtype=np.float32)
        if not X.has_canonical_format:
            X = X.copy()
            X.sum_duplicates()
        X = normalize_rows(X, row_norm)
        Y = _binarize(Y)
        if X.shape[0] != Y.shape[0]:
            raise ValueError(
                f"X and Y have different numbers of rows: {X.shape[0]} != {Y.shape[0]}."
            )
        if Y.shape[1] != tree.n_labels:
            raise ValueError(
                f"Y has {Y.shape[1]} labels but the tree has {tree.n_labels}."
            )
        n_threads = effective_n_jobs(n_jobs)
        depth = tree.n_levels
        # relevance[d]: rows positive for the nodes of level d (1..depth)
        relevance = [None] * (depth + 1)
        relevance[depth] = Y
        for d in range(depth - 1, 0, -1):
            relevance[d] = _binarize(relevance[d + 1] @ tree.cluster_chain[d])
        use_tfn = "tfn" in negative_sampling
        use_man = "man" in negative_sampling
        weights: list = []
        intercepts: list = []
        iterations: list = []
        times: dict = {"man": 0.0}
        beam = None  # (n_samples, beam_size) node ids of the previous level
        levels = tqdm(
            range(depth), desc="XR-Linear levels", disable=not verbose, leave=False
        )
        for t in levels:
            start = time.perf_counter()
            if t == 0:
                parent_rows = None
            else:
                parts = []
                if use_tfn:
                    parts.append(relevance[t])
                if use_man:
                    parts.append(_topk_csr(beam, tree.n_nodes[t]))
                parent_rows = _binarize(sum(parts[1:], parts[0])).tocsc()
            ch_ptr, ch_idx = tree.children(t)
            W, b, n_iter = fit_level(
                X, relevance[t + 1].tocsc(), parent_rows, ch_ptr, ch_idx,
                loss=loss, C=C, max_iter=max_iter, tol=tol, bias=bias,
                weight_threshold=weight_threshold, seed=seed, level=t,
                n_threads=n_threads,
            )  # fmt: skip
            weights.append(W)
            intercepts.append(b)
            iterations.append(int(n_iter.max()) if n_iter.size else 0)
            times[f"level_{t}"] = time.perf_counter() - start
            levels.set_postfix(nodes=W.shape[0], weights=W.nnz)
            if use_man and t + 1 < depth:
                start = time.perf_counter()
                partial = TreeScorer(tree, weights, intercepts)
                _, beam = search_rows(
                    partial, X, beam_size=beam_size, k=beam_size, n_levels=t + 1,
                    post_processor=post_processor, n_jobs=n_threads,
                )  # fmt: skip
                times["man"] += time.perf_counter() - start
        model = cls(
            tree,
            TreeScorer(tree, weights, intercepts),
            post_processor=post_processor,
            beam_size=beam_size,
            row_norm=row_norm,
        )
        model.fit_times_ = times
        model.n_iter_ = iterations
        return model

    def predict_topk(
        self,
        X,
        k: int = 10,
        *,
        beam_size: int | None = None,
        post_processor: str | None = None,
        n_jobs: int | None = None,
        return_pair_scorer: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best labels of every row by beam search.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Queries.
        k : int, default=10
            Labels returned per row.
        beam_size : int, default=None
            Beam width (default: the model's).
        post_processor : {"l3-hinge", "sigmoid"}, default=None
            Score transform (default: the model's).
        n_jobs : int, default=None
            Threads; None means all cores. Under joblib's ``"dask"``
            backend, blocks of rows are searched on the cluster instead.
        return_pair_scorer : bool, default=False
            Also return ``pair_scorer``, a function of ``labels`` equal to
            ``score_pairs(X, labels, post_processor=post_processor)`` (the
            same values to the bit), for a caller that rates other labels of
            the same rows next. For a few rows (a single query) the search
            keeps every node's linear score from its own passes over the
            weights, and ``pair_scorer`` only looks them up.

        Returns
        -------
        scores : ndarray of shape (n_samples, k), dtype float32
            Best first, ``-inf`` padded.
        indices : ndarray of shape (n_samples, k), dtype int64
            Label ids, ``-1`` padded.
        pair_scorer : callable
            Only with ``return_pair_scorer``.

        Examples
        --------
        >>> import numpy as np
        >>> from skxmc.indexing import XRLinearModel, LabelTree
        >>> X = np.eye(4)
        >>> tree = LabelTree.from_leaf_codes([0, 0, 1, 1], 2, branching_factor=2)
        >>> model = XRLinearModel.train(X, np.eye(4), tree, C=10.0)
        >>> scores, ids, pair_scorer = model.predict_topk(
        ...     X[:1], k=2, return_pair_scorer=True
        ... )
        >>> bool((pair_scorer(np.array([[3, 0]])) ==
        ...       model.score_pairs(X[:1], np.array([[3, 0]]))).all())
        True
        """
        post_processor = (
            self.post_processor if post_processor is None else post_processor
        )
        rows = self._query_rows(X)
        options = {
            "beam_size": self.beam_size if beam_size is None else beam_size,
            "k": k,
            "post_processor": post_processor,
            "n_jobs": n_jobs,
        }
        if not return_pair_scorer:
            return search_rows(self.scorer, rows, **options)
        sums = None
        if (
            rows.shape[0] <= _FEW_ROWS
            and rows.has_canonical_format
            and self.scorer.n_levels == self.tree.n_levels
        ):
            # the search's passes over the weights also sum every node's
            # score: the pair scores need no pass of their own
            scores, indices, sums = self.scorer.search(rows, **options, node_sums=True)
        else:
            scores, indices = search_rows(self.scorer, rows, **options)
        return scores, indices, _PairScorer(self, X, rows, sums, post_processor)

    def score_pairs(
        self,
        X,
        labels,
        *,
        post_processor: str | None = None,
        block_size: int = 1024,
    ) -> np.ndarray:
        """Path scores of chosen labels, reached by the beam or not.

        The path score of a label is the product, over the levels, of the
        post-processed score of its ancestor: the score :meth:`predict_topk`
        gives a label when the beam reaches it. Use it to rate labels another
        model proposed.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Queries.
        labels : array-like of int of shape (n_samples, m)
            The labels to score for each row; ``-1`` marks an empty slot.
        post_processor : {"l3-hinge", "sigmoid"}, default=None
            Score transform (default: the model's).
        block_size : int, default=1024
            Rows scored at a time (bounds the memory of the upper levels,
            which are scored for every node).

        Returns
        -------
        scores : ndarray of shape (n_samples, m), dtype float32
            The path scores, 0 on empty slots.

        Examples
        --------
        >>> import numpy as np
        >>> from skxmc.indexing import XRLinearModel, LabelTree
        >>> X = np.eye(4)
        >>> tree = LabelTree.from_leaf_codes([0, 0, 1, 1], 2, branching_factor=2)
        >>> model = XRLinearModel.train(X, np.eye(4), tree, C=10.0)
        >>> scores, ids = model.predict_topk(X, k=2)
        >>> bool(np.allclose(model.score_pairs(X, ids), scores))
        True
        """
        post_processor = (
            self.post_processor if post_processor is None else post_processor
        )
        if post_processor not in POST_PROCESSORS:
            raise ValueError(
                f"Unknown post_processor {post_processor!r}; expected one of "
                f"{POST_PROCESSORS}."
            )
        X = self._query_rows(X)
        if X.shape[1] != self.n_features:
            raise ValueError(
                f"X has {X.shape[1]} features, the model expects {self.n_features}."
            )
        labels = self._check_pair_labels(labels, X.shape[0])
        levels = self.__dict__.get("_level_weights")
        if levels is None:
            levels = [self.weights(t) for t in range(1, self.tree.n_levels + 1)]
            # upper levels stored transposed: X @ W.T would convert W per call
            levels[:-1] = [
                (W.T.tocsr().astype(np.float32), b.astype(np.float32))
                for W, b in levels[:-1]
            ]
            self._level_weights = levels
        ancestors = self._tree_nodes_tables()[0]
        valid = labels >= 0
        safe = np.where(valid, labels, 0)
        if X.shape[0] <= _FEW_ROWS and X.has_canonical_format:
            # a few rows: every level's nodes in one feature-major pass each
            return _path_product(self._path_raw(X, safe), valid, post_processor)
        out = np.ones(labels.shape, dtype=np.float64)
        for start in range(0, X.shape[0], block_size):
            rows = slice(start, start + block_size)
            X_block, ids = X[rows], safe[rows]
            for t, (W_transposed, b) in enumerate(levels[:-1]):
                # few nodes per upper level: score them all (into a dense
                # buffer, as scipy's product would), then look up
                nodes = np.ascontiguousarray(ancestors[ids, t])
                raw = np.empty(nodes.shape, dtype=np.float32)
                _level_pair_raw(
                    X_block.indptr, X_block.indices, X_block.data,
                    W_transposed.indptr, W_transposed.indices, W_transposed.data,
                    b, nodes, np.zeros(W_transposed.shape[1], np.float32), raw,
                )  # fmt: skip
                out[rows] *= post_process(raw, post_processor)
            if X_block.has_canonical_format:
                raw = self._label_level_raw(X_block, ids)
            else:
                W, b = levels[-1]
                raw = sparse_pair_scores(X_block, W, ids) + b[ids]
            out[rows] *= post_process(raw, post_processor)
        out[~valid] = 0.0
        return out.astype(np.float32)

    def _label_level_raw(self, X: sp.csr_matrix, labels: np.ndarray) -> np.ndarray:
        """``sparse_pair_scores(X, W, labels) + b[labels]`` of the label level
        (float32, to the bit), from the scorer's chunked layout; ``X`` must
        have sorted, distinct indices per row."""
        scorer = self.scorer
        depth = self.tree.n_levels
        parent_of = self._tree_nodes_tables()[1]  # labels' parents are read
        out = np.empty(labels.shape, dtype=np.float32)
        with scorer._dense_buffer() as dense:
            _label_level_raw(
                X.indptr, X.indices, X.data, dense,
                np.ascontiguousarray(labels, dtype=np.int64),
                int(scorer.offsets[depth]), parent_of, scorer.ch_indptr,
                scorer.ch_indices, scorer.w_bias, scorer.chunk_indptr, scorer.cfeat,
                scorer.centry_ptr, scorer.cslot, scorer.cval,
                np.empty(self.n_labels, dtype=np.float64),
                np.zeros(parent_of.shape[0], dtype=np.bool_),
                np.empty(max(scorer.max_children, 1), dtype=np.float64), out,
            )  # fmt: skip
        return out

    def _path_raw(self, X: sp.csr_matrix, labels: np.ndarray) -> np.ndarray:
        """The raw scores of the path of every label, shape ``(n_levels,
        n_rows, m)``: the float32 scores the batch path gives each level's
        ancestor (to the bit); ``X`` few rows with sorted, distinct indices
        per row (see :func:`_path_raw_by_feature`)."""
        scorer = self.scorer
        ancestors, parent_of, slot_of = self._tree_nodes_tables()
        raw = np.empty((self.tree.n_levels, *labels.shape), dtype=np.float32)
        with scorer._node_marks() as marks:
            _path_raw_by_feature(
                X.indptr, X.indices, X.data,
                np.ascontiguousarray(labels, dtype=np.int64), ancestors,
                scorer.offsets, parent_of, slot_of, scorer.w_bias,
                *scorer._by_feature(), scorer.max_children, marks, raw,
            )  # fmt: skip
        return raw

    def _path_raw_from_sums(self, sums, labels: np.ndarray) -> np.ndarray:
        """:meth:`_path_raw` read off the node sums of a search
        (``TreeScorer.search(..., node_sums=True)``) of the same rows."""
        ancestors, parent_of, slot_of = self._tree_nodes_tables()
        raw = np.empty((self.tree.n_levels, *labels.shape), dtype=np.float32)
        _path_raw_lookup(
            np.ascontiguousarray(labels, dtype=np.int64), ancestors,
            self.scorer.offsets, parent_of, slot_of, self.scorer.w_bias, sums.upper,
            sums.last, sums.last_parents, sums.stride, raw,
        )  # fmt: skip
        return raw

    def _check_pair_labels(self, labels, n_rows: int) -> np.ndarray:
        """``labels`` of :meth:`score_pairs` as int64, checked."""
        labels = np.asarray(labels, dtype=np.int64)
        if labels.ndim != 2 or labels.shape[0] != n_rows:
            raise ValueError(
                f"labels must have shape (n_samples={n_rows}, m), got {labels.shape}."
            )
        if labels.size and (labels.min() < -1 or labels.max() >= self.n_labels):
            raise ValueError(
                f"labels must lie in [0, {self.n_labels}) or be -1 (padding)."
            )
        return labels

    def _tree_nodes_tables(self):
        """``(ancestors, parent_of, slot_of)``: every label's ancestor per
        level, every node's parent and its slot among the parent's children
        (global node ids), built once and not pickled."""
        scorer = self.scorer
        tree_nodes = self.__dict__.get("_tree_nodes")
        if tree_nodes is None:
            # every node's parent and its slot among the parent's children
            # (global node ids)
            parent_of = np.zeros(int(scorer.offsets[-1]), dtype=np.int64)
            for d in range(1, self.tree.n_levels + 1):
                parent_of[scorer.offsets[d] : scorer.offsets[d + 1]] = scorer.offsets[
                    d - 1
                ] + self.tree.parents(d)
            counts = np.diff(scorer.ch_indptr)
            slot_of = np.zeros(int(scorer.offsets[-1]), dtype=np.int64)
            slot_of[scorer.ch_indices] = np.arange(scorer.ch_indices.shape[0]) - (
                np.repeat(scorer.ch_indptr[:-1], counts)
            )
            tree_nodes = self._tree_nodes = (self.tree.ancestors(), parent_of, slot_of)
        return tree_nodes

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_level_weights", None)
        state.pop("_tree_nodes", None)
        return state
