"""Sparse binary linear rankers for the nodes of a label tree.

Every node of a tree level gets one binary linear model ``s(x) = w . x + b``,
trained on the rows its parent is responsible for (the *negative sampling*
decides which rows those are, see :mod:`skxmc.indexing._xr_linear`). The solvers
are dual coordinate descent methods in numba (``nogil``), the formulation of
LIBLINEAR (Hsieh et al., ICML 2008; Yu, Huang and Lin, MLJ 2011):

- ``"squared_hinge"``: L2-regularised L2-loss SVM,
  ``min_w 1/2 |w|^2 + C sum_i max(0, 1 - y_i w . x_i)^2``, with shrinking;
- ``"logistic"``: L2-regularised logistic regression,
  ``min_w 1/2 |w|^2 + C sum_i log(1 + exp(-y_i w . x_i))``.

The bias is learned as the weight of an extra feature of value ``bias`` (so it
is regularised, as in LIBLINEAR).

:func:`fit_level` is scale-robust: it trains on ``X / s``, ``s`` the typical
row norm of ``X`` (:func:`feature_scale`, exactly 1 for L2-normalised rows),
drops the weights with ``|w| < weight_threshold`` in those units, and returns
the weights in the units of ``X``. So ``X`` and ``c * X`` (TF-IDF with or
without normalisation, counts, any ``c > 0``) give the same models up to the
factor ``c``, and a default threshold never prunes a whole model because the
features are large. :func:`normalize_rows` goes further for the rankers of
:class:`~skxmc.indexing.XRLinearModel` (``row_norm="l2"``): every row is
scaled to unit norm before training and prediction, so any nonnegative
scaling of a row (``TfidfVectorizer(norm=None)``, counts) gives the same
rankings. Nodes sharing a parent share their training
rows: one task gathers those rows once (features renumbered to the columns
they use) and trains all the children; tasks run on a thread pool, each task's
result depending only on its inputs and the seed, so models are identical
whatever the number of threads. Under joblib's ``"dask"`` backend
(:func:`~skxmc.indexing._tree.dask_workers`) the tasks run in batches on the
Dask cluster instead: the same tasks, the same results, the same models.
"""

from __future__ import annotations

import math
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
from numba import njit

from skxmc.indexing._tree import dask_workers
from skxmc.utils._sparse import _readonly_float32_csr

__all__ = [
    "LOSSES",
    "ROW_NORMS",
    "feature_scale",
    "fit_binary",
    "fit_level",
    "normalize_rows",
]

#: Losses understood by the solvers.
LOSSES = ("squared_hinge", "logistic")
_LOSS_CODE = {"squared_hinge": 0, "logistic": 1}

#: Row normalisations understood by :func:`normalize_rows` (None: none).
ROW_NORMS = ("l2",)

#: Rows whose L2 norm lies this close to 1 count as normalised already.
_UNIT_NORM_TOLERANCE = 1e-4

_U64_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_U64_M1 = np.uint64(0xBF58476D1CE4E5B9)
_U64_M2 = np.uint64(0x94D049BB133111EB)
_U64_30 = np.uint64(30)
_U64_27 = np.uint64(27)
_U64_31 = np.uint64(31)


@njit(nogil=True, cache=True)
def _splitmix(state):
    """One splitmix64 step: returns (new_state, random uint64)."""
    state = state + _U64_GOLDEN
    z = state
    z = (z ^ (z >> _U64_30)) * _U64_M1
    z = (z ^ (z >> _U64_27)) * _U64_M2
    return state, z ^ (z >> _U64_31)


@njit(nogil=True, cache=True)
def _seed_state(seed, stream):
    state = np.uint64(seed) * _U64_M1 + np.uint64(stream) * _U64_M2
    state, _ = _splitmix(state)
    return state


@njit(nogil=True, cache=True)
def _shuffle(index, n, state):
    for i in range(n - 1, 0, -1):
        state, r = _splitmix(state)
        j = np.int64(r % np.uint64(i + 1))
        tmp = index[i]
        index[i] = index[j]
        index[j] = tmp
    return state


# ----------------------------------------------------------------- solvers
@njit(nogil=True, cache=True)
def _dcd_squared_hinge(
    indptr, indices, data, sqnorm, y, w, c_pos, c_neg, bias, max_iter, eps, state
):
    """Dual CD for the L2-loss SVM. ``w`` (zeros on entry) receives the weights.

    Returns ``(bias_weight, n_iter)``; the bias term of the model is
    ``bias_weight * bias``.
    """
    n = y.shape[0]
    alpha = np.zeros(n, dtype=np.float64)
    diag = np.empty(n, dtype=np.float64)
    qd = np.empty(n, dtype=np.float64)
    index = np.arange(n)
    for i in range(n):
        diag[i] = 0.5 / (c_pos if y[i] > 0 else c_neg)
        qd[i] = sqnorm[i] + bias * bias + diag[i]
    wb = 0.0
    n_active = n
    pg_max_old = np.inf  # alpha is never at an upper bound (U = inf)
    it = 0
    while it < max_iter:
        pg_max = -np.inf
        pg_min = np.inf
        state = _shuffle(index, n_active, state)
        s = 0
        while s < n_active:
            i = index[s]
            yi = y[i]
            acc = wb * bias
            for e in range(indptr[i], indptr[i + 1]):
                acc += w[indices[e]] * data[e]
            g = yi * acc - 1.0 + diag[i] * alpha[i]
            pg = 0.0
            if alpha[i] == 0.0:
                if g > pg_max_old:
                    n_active -= 1
                    index[s] = index[n_active]
                    index[n_active] = i
                    continue
                if g < 0.0:
                    pg = g
            else:
                pg = g
            if pg > pg_max:
                pg_max = pg
            if pg < pg_min:
                pg_min = pg
            if abs(pg) > 1e-12:
                old = alpha[i]
                new = old - g / qd[i]
                if new < 0.0:
                    new = 0.0
                alpha[i] = new
                d = (new - old) * yi
                for e in range(indptr[i], indptr[i + 1]):
                    w[indices[e]] += d * data[e]
                wb += d * bias
            s += 1
        it += 1
        if pg_max - pg_min <= eps:
            if n_active == n:
                break
            n_active = n
            pg_max_old = np.inf
            continue
        pg_max_old = pg_max if pg_max > 0.0 else np.inf
    return wb, it


@njit(nogil=True, cache=True)
def _lr_coordinate(a, b, alpha, c):
    """argmin over z in (0, c) of a/2 (z-alpha)^2 + b z + z log z + (c-z) log(c-z)."""
    lo = 0.0
    hi = c
    z = alpha
    for _ in range(100):
        gp = a * (z - alpha) + b + math.log(z / (c - z))
        if gp == 0.0:
            break
        if gp > 0.0:
            hi = z
        else:
            lo = z
        znew = z - gp / (a + c / (z * (c - z)))
        if not (lo < znew < hi):
            znew = 0.5 * (lo + hi)
        if abs(znew - z) <= 1e-12 * c:
            z = znew
            break
        z = znew
    if z <= 0.0:
        z = 1e-300
    if z >= c:
        z = c * (1.0 - 1e-16)
    return z


@njit(nogil=True, cache=True)
def _dcd_logistic(
    indptr, indices, data, sqnorm, y, w, c_pos, c_neg, bias, max_iter, eps, state
):
    """Dual CD for L2-regularised logistic regression (Yu, Huang & Lin 2011).

    ``w`` (zeros on entry) receives the weights; returns ``(bias_weight, n_iter)``.
    Stops when the largest dual gradient of a sweep falls below ``eps`` times
    that of the first sweep.
    """
    n = y.shape[0]
    alpha = np.empty(n, dtype=np.float64)
    cc = np.empty(n, dtype=np.float64)
    qd = np.empty(n, dtype=np.float64)
    index = np.arange(n)
    wb = 0.0
    for i in range(n):
        cc[i] = c_pos if y[i] > 0 else c_neg
        alpha[i] = min(1e-3 * cc[i], 1e-8)
        qd[i] = sqnorm[i] + bias * bias
        d = alpha[i] * y[i]
        for e in range(indptr[i], indptr[i + 1]):
            w[indices[e]] += d * data[e]
        wb += d * bias
    g_init = 0.0
    it = 0
    while it < max_iter:
        state = _shuffle(index, n, state)
        g_max = 0.0
        for s in range(n):
            i = index[s]
            yi = y[i]
            acc = wb * bias
            for e in range(indptr[i], indptr[i + 1]):
                acc += w[indices[e]] * data[e]
            b = yi * acc
            c = cc[i]
            grad = b + math.log(alpha[i] / (c - alpha[i]))
            if abs(grad) > g_max:
                g_max = abs(grad)
            new = _lr_coordinate(qd[i], b, alpha[i], c)
            d = (new - alpha[i]) * yi
            alpha[i] = new
            if d != 0.0:
                for e in range(indptr[i], indptr[i + 1]):
                    w[indices[e]] += d * data[e]
                wb += d * bias
        it += 1
        if it == 1:
            g_init = g_max
        if g_max <= eps * g_init:
            break
    return wb, it


@njit(nogil=True, cache=True)
def _solve(
    loss, indptr, indices, data, sqnorm, y, w, c_pos, c_neg, bias, max_iter, eps, state
):
    if loss == 0:
        return _dcd_squared_hinge(
            indptr, indices, data, sqnorm, y, w, c_pos, c_neg, bias, max_iter, eps,
            state,
        )  # fmt: skip
    return _dcd_logistic(
        indptr, indices, data, sqnorm, y, w, c_pos, c_neg, bias, max_iter, eps, state
    )


# ------------------------------------------------------------ one binary model
def fit_binary(
    X,
    y,
    *,
    loss: str = "squared_hinge",
    C: float = 1.0,
    max_iter: int = 100,
    tol: float = 0.1,
    bias: float = 1.0,
    random_state: int = 0,
):
    """Train one binary linear model with the dual coordinate descent solver.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Training rows.
    y : array-like of shape (n_samples,)
        Binary targets; values > 0 are positive, the others negative.
    loss : {"squared_hinge", "logistic"}, default="squared_hinge"
        Loss (see the module docstring for the objectives).
    C : float, default=1.0
        Inverse regularisation strength.
    max_iter : int, default=100
        Maximum passes over the data.
    tol : float, default=0.1
        Stopping tolerance (LIBLINEAR's ``eps``).
    bias : float, default=1.0
        Value of the constant feature whose weight is the bias; 0 disables it.
    random_state : int, default=0
        Seeds the order of the coordinate updates.

    Returns
    -------
    coef : ndarray of shape (n_features,), dtype float64
        Feature weights.
    intercept : float
        ``bias`` times the weight of the constant feature.
    n_iter : int
        Solver passes over the data.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.indexing import fit_binary
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> coef, intercept, n_iter = fit_binary(X, [1, 0], C=10.0, tol=1e-6)
    >>> bool(X[0] @ coef + intercept > 0 > X[1] @ coef + intercept)
    True
    """
    if loss not in _LOSS_CODE:
        raise ValueError(f"Unknown loss {loss!r}; expected one of {LOSSES}.")
    X = sp.csr_matrix(X, dtype=np.float32, copy=True)
    X.sum_duplicates()
    y = np.where(np.asarray(y).ravel() > 0, 1.0, -1.0)
    if y.shape[0] != X.shape[0]:
        raise ValueError("X and y have different numbers of rows.")
    w = np.zeros(X.shape[1], dtype=np.float64)
    sqnorm = np.asarray(X.multiply(X).sum(axis=1), dtype=np.float64).ravel()
    wb, n_iter = _solve(
        _LOSS_CODE[loss], X.indptr, X.indices, X.data, sqnorm, y, w, float(C),
        float(C), float(bias), int(max_iter), float(tol),
        _seed_state(int(random_state), 0),
    )  # fmt: skip
    return w, float(wb * bias), int(n_iter)


# ----------------------------------------------------------- tasks of a level
@njit(nogil=True, cache=True)
def _grow(array, size):
    if size <= array.shape[0]:
        return array
    out = np.empty(max(size, 2 * array.shape[0]), dtype=array.dtype)
    out[: array.shape[0]] = array
    return out


@njit(nogil=True, cache=True)
def _train_task(
    x_indptr,
    x_indices,
    x_data,
    rows,
    pos_indptr,
    pos_indices,
    children,
    fmap,
    loss,
    c_pos,
    c_neg,
    max_iter,
    eps,
    bias,
    threshold,
    seed,
    level,
):
    """Train the models of ``children`` on the (sorted) training ``rows``.

    ``pos_indptr``/``pos_indices`` list the positive rows of every node of the
    level (CSC of the level's relevance matrix, sorted). ``fmap`` is an int64
    scratch of length n_features filled with -1 (restored on return).
    Returns ``(nnz per child, feature ids, weights, biases, solver passes)``.
    """
    n = rows.shape[0]
    # gather the rows with their features renumbered 0..n_local-1
    sub_indptr = np.zeros(n + 1, dtype=np.int64)
    for a in range(n):
        r = rows[a]
        sub_indptr[a + 1] = sub_indptr[a] + x_indptr[r + 1] - x_indptr[r]
    nnz = sub_indptr[n]
    sub_indices = np.empty(nnz, dtype=np.int32)
    sub_data = np.empty(nnz, dtype=np.float32)
    feats = np.empty(min(nnz, fmap.shape[0]), dtype=np.int64)
    sqnorm = np.zeros(n, dtype=np.float64)
    n_local = 0
    for a in range(n):
        r = rows[a]
        q = sub_indptr[a]
        for e in range(x_indptr[r], x_indptr[r + 1]):
            j = x_indices[e]
            if fmap[j] < 0:
                fmap[j] = n_local
                feats[n_local] = j
                n_local += 1
            sub_indices[q] = fmap[j]
            v = x_data[e]
            sub_data[q] = v
            sqnorm[a] += v * v
            q += 1
    # renumber local features by decreasing frequency: the weights touched
    # most often then share cache lines
    freq = np.zeros(n_local, dtype=np.int64)
    for q in range(nnz):
        freq[sub_indices[q]] += 1
    by_freq = np.argsort(-freq, kind="mergesort")
    rank = np.empty(n_local, dtype=np.int32)
    for f in range(n_local):
        rank[by_freq[f]] = f
    for q in range(nnz):
        sub_indices[q] = rank[sub_indices[q]]
    feats_sorted = np.empty(n_local, dtype=np.int64)
    for f in range(n_local):
        feats_sorted[f] = feats[by_freq[f]]
    for f in range(n_local):
        fmap[feats[f]] = -1
    feats = feats_sorted
    n_children = children.shape[0]
    counts = np.zeros(n_children, dtype=np.int64)
    nonzero = np.zeros(n_children, dtype=np.int64)
    mass = np.zeros((n_children, 2), dtype=np.float64)
    n_iter = np.zeros(n_children, dtype=np.int32)
    biases = np.zeros(n_children, dtype=np.float32)
    out_feat = np.empty(16, dtype=np.int64)
    out_val = np.empty(16, dtype=np.float32)
    n_out = 0
    w = np.zeros(n_local, dtype=np.float64)
    y = np.empty(n, dtype=np.float64)
    for c in range(n_children):
        node = children[c]
        y[:] = -1.0
        for e in range(pos_indptr[node], pos_indptr[node + 1]):
            a = np.searchsorted(rows, pos_indices[e])
            if a < n and rows[a] == pos_indices[e]:
                y[a] = 1.0
        if n == 0:
            continue
        state = _seed_state(seed, level * 1_000_003 + node + 1)
        wb, n_iter[c] = _solve(
            loss, sub_indptr, sub_indices, sub_data, sqnorm, y, w, c_pos, c_neg,
            bias, max_iter, eps, state,
        )  # fmt: skip
        biases[c] = wb * bias
        kept = 0
        for f in range(n_local):
            if w[f] != 0.0:
                nonzero[c] += 1
                mass[c, 0] += w[f] * w[f]
                if abs(w[f]) >= threshold:
                    kept += 1
                    mass[c, 1] += w[f] * w[f]
        out_feat = _grow(out_feat, n_out + kept)
        out_val = _grow(out_val, n_out + kept)
        for f in range(n_local):
            v = w[f]
            if v != 0.0 and abs(v) >= threshold:
                out_feat[n_out] = feats[f]
                out_val[n_out] = v
                n_out += 1
            w[f] = 0.0
        counts[c] = kept
    return counts, out_feat[:n_out], out_val[:n_out], biases, n_iter, nonzero, mass


def _make_tasks(
    rows_indptr: np.ndarray,
    children_indptr: np.ndarray,
    children_indices: np.ndarray,
    n_threads: int,
) -> list[tuple[int, np.ndarray]]:
    """One task per parent; parents with many children are cut in pieces when
    there are too few parents to keep the threads busy."""
    n_parents = children_indptr.shape[0] - 1
    n_children = children_indptr[-1]
    piece = max(1, -(-int(n_children) // (8 * n_threads)))
    tasks = []
    for p in range(n_parents):
        kids = children_indices[children_indptr[p] : children_indptr[p + 1]]
        for start in range(0, kids.shape[0], piece):
            tasks.append((p, kids[start : start + piece]))
    n_rows = np.diff(rows_indptr)
    cost = [-(int(n_rows[p]) + 1) * len(kids) for p, kids in tasks]
    order = np.argsort(cost, kind="stable")
    return [tasks[i] for i in order]


def fit_level(
    X: sp.csr_matrix,
    relevance: sp.csc_matrix,
    parent_rows: sp.csc_matrix | None,
    children_indptr: np.ndarray,
    children_indices: np.ndarray,
    *,
    loss: str = "squared_hinge",
    C: float = 1.0,
    max_iter: int = 100,
    tol: float = 0.1,
    bias: float = 1.0,
    weight_threshold: float = 0.1,
    feature_scale: float | str = "auto",
    seed: int = 0,
    level: int = 0,
    n_threads: int = 1,
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Train the binary models of every node of one tree level.

    Parameters
    ----------
    X : csr_matrix of shape (n_samples, n_features)
        Training features.
    relevance : csc_matrix of shape (n_samples, n_nodes)
        1 where a row is positive for a node of this level.
    parent_rows : csc_matrix of shape (n_samples, n_parents) or None
        Column ``p`` marks the training rows of the children of parent ``p``
        (None: every row, for the children of the root).
    children_indptr, children_indices : ndarray
        Children of every parent (see :meth:`LabelTree.children`).
    loss : {"squared_hinge", "logistic"}, default="squared_hinge"
        Loss of every node model, see :func:`fit_binary`.
    C : float, default=1.0
        Inverse regularisation strength.
    max_iter : int, default=100
        Maximum solver passes per node.
    tol : float, default=0.1
        Solver stopping tolerance.
    bias : float, default=1.0
        Value of the constant feature (0 disables the intercept).
    weight_threshold : float, default=0.1
        Pruning threshold, in units of the scaled features (see
        ``feature_scale``): a weight ``w`` of a feature is dropped when
        ``|w| * feature_scale < weight_threshold``. A :class:`UserWarning` is
        raised when pruning removes more than half of the squared L2 norm of
        the level's weights (a threshold too large for the data; the default
        keeps about 80% of it on TF-IDF features, while dropping most of the
        many tiny weights).
    feature_scale : float or "auto", default="auto"
        The models are trained on ``X / feature_scale`` and returned in the
        units of ``X`` (weights divided by ``feature_scale``, intercepts
        unchanged). ``"auto"`` is :func:`feature_scale` of ``X``: the median
        L2 norm of its non-empty rows, taken as exactly 1 for L2-normalised
        rows (TF-IDF's default), which are then used as they are. With
        ``"auto"`` the fitted models of ``X`` and ``c * X`` (any ``c > 0``)
        give the same scores on ``X`` and ``c * X`` respectively, up to float
        rounding: the same rankings up to ties. ``1.0`` trains on ``X`` as
        given (LIBLINEAR's problem, as :func:`fit_binary`).
    seed : int, default=0
        Seeds the coordinate orders (one stream per node).
    level : int, default=0
        Level number, mixed into the seed streams.
    n_threads : int, default=1
        Threads training tasks concurrently.

    Returns
    -------
    W : csr_matrix of shape (n_nodes, n_features), dtype float32
        Row ``j`` holds the pruned weights of node ``j``.
    intercept : ndarray of shape (n_nodes,), dtype float32
        Intercept of each node model.
    n_iter : ndarray of shape (n_nodes,), dtype int32
        Solver passes per node (0 for nodes without training rows).
    """
    if loss not in _LOSS_CODE:
        raise ValueError(f"Unknown loss {loss!r}; expected one of {LOSSES}.")
    scale = _check_feature_scale(X, feature_scale)
    if scale != 1.0:
        X = sp.csr_matrix(
            ((X.data / scale).astype(np.float32), X.indices, X.indptr), shape=X.shape
        )
    n_samples, n_features = X.shape
    n_nodes = relevance.shape[1]
    n_parents = children_indptr.shape[0] - 1
    relevance = sp.csc_matrix(relevance)
    relevance.sort_indices()
    pos_indptr = relevance.indptr.astype(np.int64)
    pos_indices = relevance.indices.astype(np.int64)
    if parent_rows is None:
        if n_parents != 1:
            raise ValueError("parent_rows=None is only valid below the root.")
        rows_indptr = np.array([0, n_samples], dtype=np.int64)
        rows_indices = np.arange(n_samples, dtype=np.int64)
    else:
        parent_rows = sp.csc_matrix(parent_rows)
        parent_rows.sort_indices()
        rows_indptr = parent_rows.indptr.astype(np.int64)
        rows_indices = parent_rows.indices.astype(np.int64)
    n_workers = dask_workers()
    tasks = _make_tasks(
        rows_indptr, children_indptr, children_indices, n_workers or n_threads
    )
    params = (
        _LOSS_CODE[loss], float(C), float(C), int(max_iter), float(tol),
        float(bias), float(weight_threshold), int(seed), int(level),
    )  # fmt: skip
    arrays = (
        X.indptr, X.indices, X.data, rows_indptr, rows_indices, pos_indptr,
        pos_indices,
    )  # fmt: skip
    if n_workers and len(tasks) > 1:
        results = _run_on_dask(arrays, n_features, tasks, params, n_workers)
    else:
        local = threading.local()

        def run(task):
            fmap = getattr(local, "fmap", None)
            if fmap is None:
                fmap = local.fmap = np.full(n_features, -1, dtype=np.int64)
            return _run_task(*arrays, task, fmap, params)

        if n_threads > 1 and len(tasks) > 1:
            with ThreadPoolExecutor(max_workers=n_threads) as pool:
                results = list(pool.map(run, tasks))
        else:
            results = [run(task) for task in tasks]
    intercept = np.zeros(n_nodes, dtype=np.float32)
    n_iter = np.zeros(n_nodes, dtype=np.int32)
    for kids, (_, _, _, b, it, _, _) in results:
        intercept[kids] = b
        n_iter[kids] = it
    if results:
        node = np.concatenate([np.repeat(kids, r[0]) for kids, r in results])
        feat = np.concatenate([r[1] for _, r in results])
        val = np.concatenate([r[2] for _, r in results])
    else:
        node = feat = np.zeros(0, dtype=np.int64)
        val = np.zeros(0, dtype=np.float32)
    if scale != 1.0:
        val = val / scale
    W = sp.csr_matrix(
        (val.astype(np.float32, copy=False), (node, feat)),
        shape=(n_nodes, n_features),
    )
    W.sum_duplicates()
    if results:
        _warn_on_pruning(
            np.concatenate([r[5] for _, r in results]),
            np.concatenate([r[0] for _, r in results]),
            np.concatenate([r[6] for _, r in results]),
            weight_threshold,
            level,
        )
    return W, intercept, n_iter


def _run_task(
    x_indptr, x_indices, x_data, rows_indptr, rows_indices, pos_indptr,
    pos_indices, task, fmap, params,
):  # fmt: skip
    """Train the children ``kids`` of parent ``p`` (``task = (p, kids)``)."""
    p, kids = task
    rows = rows_indices[rows_indptr[p] : rows_indptr[p + 1]]
    return kids, _train_task(
        x_indptr, x_indices, x_data, rows, pos_indptr, pos_indices, kids, fmap,
        *params,
    )  # fmt: skip


def _run_task_batch(
    x_indptr, x_indices, x_data, rows_indptr, rows_indices, pos_indptr,
    pos_indices, n_features, tasks, params,
):  # fmt: skip
    """A batch of tasks on one Dask worker (one feature map for all)."""
    fmap = np.full(n_features, -1, dtype=np.int64)
    arrays = (
        x_indptr, x_indices, x_data, rows_indptr, rows_indices, pos_indptr,
        pos_indices,
    )  # fmt: skip
    return [_run_task(*arrays, task, fmap, params) for task in tasks]


def _run_on_dask(arrays, n_features, tasks, params, n_workers):
    """The tasks in ``4 * n_workers`` batches through joblib's dask backend.

    The arrays are large arguments, which joblib scatters to the cluster once
    per level; batch ``i`` holds tasks ``i, i + n, ...`` (the tasks are sorted
    by cost, so the batches get similar work) and the results come back in
    the order of ``tasks``.
    """
    from joblib import Parallel, delayed

    n_batches = min(len(tasks), 4 * n_workers)
    batches = [tasks[i::n_batches] for i in range(n_batches)]
    done = Parallel(n_jobs=-1)(
        delayed(_run_task_batch)(*arrays, n_features, batch, params)
        for batch in batches
    )
    results = [None] * len(tasks)
    for i, batch_results in enumerate(done):
        results[i::n_batches] = batch_results
    return results


#: Share of a level's squared weight norm whose pruning triggers a warning.
PRUNING_WARNING_SHARE = 0.5


def _warn_on_pruning(
    nonzero: np.ndarray,
    kept: np.ndarray,
    mass: np.ndarray,
    weight_threshold: float,
    level: int,
) -> None:
    """Warn when pruning removed most of what the models of a level learned.

    "Most" is measured by the squared L2 norm of the weights, not their count:
    the dual solvers leave many tiny weights, and the default threshold drops
    about 98% of them on TF-IDF features while keeping about 80% of the norm.
    """
    total, remaining = float(mass[:, 0].sum()), float(mass[:, 1].sum())
    if total == 0.0 or remaining >= (1.0 - PRUNING_WARNING_SHARE) * total:
        return
    trained = nonzero > 0
    emptied = int(np.count_nonzero(trained & (kept == 0)))
    warnings.warn(
        f"weight_threshold={weight_threshold} removed "
        f"{100.0 * (1.0 - remaining / total):.0f}% of the squared norm of the "
        f"weights of tree level {level + 1} (kept {int(kept.sum())} of "
        f"{int(nonzero.sum())} nonzero weights; {emptied} of "
        f"{int(np.count_nonzero(trained))} models kept no weight): the models "
        "lose most of what they learned. Lower weight_threshold (0 keeps every "
        "weight).",
        UserWarning,
        stacklevel=3,
    )


def feature_scale(X) -> float:
    """The typical L2 norm of the rows of ``X``, as the linear rankers use it.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Features.

    Returns
    -------
    scale : float
        The median L2 norm of the non-empty rows of ``X`` (1.0 when every
        row is empty), rounded to exactly 1.0 when it lies within 1e-3 of 1
        (L2-normalised rows). ``feature_scale(c * X) == c * feature_scale(X)``
        for any ``c > 0``, up to float rounding.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.indexing._linear import feature_scale
    >>> X = np.array([[3.0, 4.0], [0.0, 0.0], [0.6, 0.8]])
    >>> feature_scale(X), feature_scale(30 * X)
    (3.0, 90.0)
    """
    norms = _row_norms(sp.csr_matrix(X))
    norms = norms[norms > 0]
    if norms.size == 0:
        return 1.0
    scale = float(np.median(norms))
    return 1.0 if abs(scale - 1.0) <= 1e-3 else scale


def normalize_rows(X, row_norm: str | None = "l2") -> sp.csr_matrix:
    """The rows of ``X`` scaled to unit L2 norm, as the linear rankers see them.

    Rows whose norm is already within 1e-4 of 1 (L2-normalised features
    such as TF-IDF's default) and empty rows are kept to the bit, so
    normalised features give exactly the models they gave before.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Finite features.
    row_norm : {"l2"} or None, default="l2"
        ``None`` returns ``X`` (as float32 CSR) unscaled.

    Returns
    -------
    X : csr_matrix of shape (n_samples, n_features), dtype float32
        ``X`` itself when no row needs scaling, else a scaled copy.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.indexing import normalize_rows
    >>> normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0], [0.6, 0.8]])).toarray()
    array([[0.6, 0.8],
           [0. , 0. ],
           [0.6, 0.8]], dtype=float32)
    """
    if row_norm is not None and row_norm not in ROW_NORMS:
        raise ValueError(
            f"row_norm must be one of {ROW_NORMS} or None, got {row_norm!r}."
        )
    X = _readonly_float32_csr(X)
    if row_norm is None:
        return X
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    norms = _row_norms(X)
    rescale = (norms > 0) & (np.abs(norms - 1.0) > _UNIT_NORM_TOLERANCE)
    if not rescale.any():
        return X
    factor = np.where(rescale, 1.0 / np.where(norms > 0, norms, 1.0), 1.0)
    scaled = X.data * np.repeat(factor, np.diff(X.indptr))
    return sp.csr_matrix(
        (scaled.astype(np.float32), X.indices, X.indptr), shape=X.shape
    )


def _row_norms(X: sp.csr_matrix) -> np.ndarray:
    """The L2 norm of every row of ``X`` (0 for empty rows), summed in float64."""
    counts = np.diff(X.indptr)
    data = np.asarray(X.data, dtype=np.float64)
    sq = np.zeros(X.shape[0])
    if X.nnz:
        sq[counts > 0] = np.add.reduceat(data * data, X.indptr[:-1][counts > 0])
    return np.sqrt(sq)


def _check_feature_scale(X, value) -> float:
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(
                f"feature_scale must be 'auto' or a positive number, got {value!r}."
            )
        return feature_scale(X)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.number))
        or not np.isfinite(value)
        or value <= 0
    ):
        raise ValueError(
            f"feature_scale must be 'auto' or a positive number, got {value!r}."
        )
    return float(value)
