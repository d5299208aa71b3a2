"""Row-wise top-k of sparse and dense score matrices, and the way back to CSR.

The kernels are serial numba loops (``nogil=True``, so threads can run them
side by side): one pass over each row's stored entries, keeping the ``k`` best
in a small binary heap. "Best" means a higher score, and among equal scores a
lower column index, so every result is deterministic. Scores are compared in
the input's floating point precision (float32 or float64; other dtypes are
compared as float64) and returned as float32.
"""

from __future__ import annotations

import math
import threading
from numbers import Integral
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from numba import njit

from skxmc.utils._threads import map_row_chunks

__all__ = ["csr_row_topk", "dense_row_topk", "sparse_pair_scores", "topk_to_csr"]


# --------------------------------------------------------------------- kernels
@njit(cache=True, nogil=True, inline="always")
def _worse(s1, c1, s2, c2):
    """Whether entry (s1, c1) ranks below entry (s2, c2)."""
    return s1 < s2 or (s1 == s2 and c1 > c2)


@njit(cache=True, nogil=True)
def _sift_down(heap_s, heap_c, size, pos):
    # min-heap on rank: the root is the worst entry kept
    s = heap_s[pos]
    c = heap_c[pos]
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        right = child + 1
        if right < size and _worse(
            heap_s[right], heap_c[right], heap_s[child], heap_c[child]
        ):
            child = right
        if not _worse(heap_s[child], heap_c[child], s, c):
            break
        heap_s[pos] = heap_s[child]
        heap_c[pos] = heap_c[child]
        pos = child
    heap_s[pos] = s
    heap_c[pos] = c


@njit(cache=True, nogil=True)
def _insert(heap_s, heap_c, size, s, c):
    """Add entry (s, c) to a heap holding ``size`` entries (room assumed)."""
    pos = size
    while pos > 0:  # sift up
        parent = (pos - 1) // 2
        if not _worse(s, c, heap_s[parent], heap_c[parent]):
            break
        heap_s[pos] = heap_s[parent]
        heap_c[pos] = heap_c[parent]
        pos = parent
    heap_s[pos] = s
    heap_c[pos] = c


@njit(cache=True, nogil=True)
def _emit(heap_s, heap_c, size, out_s, out_c):
    """Empty the heap into out_s[:size], out_c[:size], best first."""
    while size > 0:
        size -= 1
        out_s[size] = heap_s[0]
        out_c[size] = heap_c[0]
        heap_s[0] = heap_s[size]
        heap_c[0] = heap_c[size]
        _sift_down(heap_s, heap_c, size, 0)


# The kernels inline the common case (a full heap whose worst entry beats the
# candidate: one comparison) and call out only to insert or replace; a call per
# entry costs several times the comparison itself.


@njit(cache=True, nogil=True)
def _csr_topk_kernel(
    data, indices, indptr, skip_indptr, skip_indices, heap_s, heap_c, out_s, out_c
):
    """Top-k of each CSR row's stored entries into out_s/out_c (pre-padded).

    Entries with a negative column index are ignored (``-1`` padding of top-k
    pairs), and so are the columns listed in row ``i`` of the CSR pattern
    ``(skip_indptr, skip_indices)`` (sorted indices).
    """
    k = out_s.shape[1]
    for i in range(indptr.shape[0] - 1):
        s0 = skip_indptr[i]
        s1 = skip_indptr[i + 1]
        size = 0
        for j in range(indptr[i], indptr[i + 1]):
            c = indices[j]
            if c < 0:
                continue
            if s1 > s0:
                lo = _lower_bound(skip_indices, s0, s1, c)
                if lo < s1 and skip_indices[lo] == c:
                    continue
            if size < k:
                _insert(heap_s, heap_c, size, data[j], c)
                size += 1
            elif _worse(heap_s[0], heap_c[0], data[j], c):
                heap_s[0] = data[j]
                heap_c[0] = c
                _sift_down(heap_s, heap_c, size, 0)
        _emit(heap_s, heap_c, size, out_s[i], out_c[i])


@njit(cache=True, nogil=True)
def _dense_topk_kernel(array, skip_indptr, skip_indices, heap_s, heap_c, out_s, out_c):
    """Top-k of each dense row into out_s/out_c, ignoring the listed columns."""
    k = out_s.shape[1]
    n_cols = array.shape[1]
    for i in range(array.shape[0]):
        pos = skip_indptr[i]
        end = skip_indptr[i + 1]
        size = 0
        for c in range(n_cols):
            while pos < end and skip_indices[pos] < c:
                pos += 1
            if pos < end and skip_indices[pos] == c:
                continue
            if size < k:
                _insert(heap_s, heap_c, size, array[i, c], c)
                size += 1
            elif _worse(heap_s[0], heap_c[0], array[i, c], c):
                heap_s[0] = array[i, c]
                heap_c[0] = c
                _sift_down(heap_s, heap_c, size, 0)
        _emit(heap_s, heap_c, size, out_s[i], out_c[i])


@njit(cache=True, nogil=True)
def _csr_entries_in(indptr, indices, other_indptr, other_indices, out):
    """out[j] = whether stored entry j (row i, column indices[j]) is stored in
    row i of the other CSR pattern (whose indices must be sorted per row)."""
    for i in range(indptr.shape[0] - 1):
        o0 = other_indptr[i]
        o1 = other_indptr[i + 1]
        for j in range(indptr[i], indptr[i + 1]):
            c = indices[j]
            found = False
            if o1 > o0 and c >= 0:
                lo = _lower_bound(other_indices, o0, o1, c)
                found = lo < o1 and other_indices[lo] == c
            out[j] = found


@njit(cache=True, nogil=True, inline="always")
def _lower_bound(keys, lo, hi, key):
    """The first position in ``[lo, hi)`` of the sorted ``keys`` whose value is
    not below ``key`` (``hi`` if none): the binary search of the kernels."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True, inline="always")
def _walk_dot(w_indices, w_data, w0, w1, dense):
    """``sum(w_data[e] * dense[w_indices[e]])`` over ``e`` in ``[w0, w1)``,
    added in storage order to a float64 zero: one pass over a W row."""
    acc = 0.0
    for e in range(w0, w1):
        acc += w_data[e] * dense[w_indices[e]]
    return acc


@njit(cache=True, nogil=True)
def _pair_dot_kernel(
    x_indptr, x_indices, x_data, w_indptr, w_indices, w_data, pairs, dense, out
):
    """out[i, j] = X[i] . W[pairs[i, j]] (0 where pairs[i, j] < 0).

    Row ``i`` of X is scattered into ``dense`` (zeroed again afterwards), so
    each pair costs one pass over the stored entries of its W row.
    """
    for i in range(pairs.shape[0]):
        for e in range(x_indptr[i], x_indptr[i + 1]):
            dense[x_indices[e]] = x_data[e]
        for j in range(pairs.shape[1]):
            c = pairs[i, j]
            if c < 0:
                out[i, j] = 0.0
                continue
            out[i, j] = _walk_dot(
                w_indices, w_data, w_indptr[c], w_indptr[c + 1], dense
            )
        for e in range(x_indptr[i], x_indptr[i + 1]):
            dense[x_indices[e]] = 0.0


@njit(cache=True, nogil=True)
def _sorted_pair_dot_kernel(
    x_indptr, x_indices, x_data, w_indptr, w_indices, w_data, pairs, dense, out
):  # fmt: skip
    """:func:`_pair_dot_kernel` for rows with sorted, distinct indices: a long
    W row is not walked but searched for the query's features.

    Either way the products of the shared features are added in increasing
    feature order (the only ones that change the sum: the walk's other
    products are zeros), in the same float64 accumulator: the same result to
    the bit, at a cost of ``min(len(W row), nnz(X row) * log2(len(W row)))``.
    """
    for i in range(pairs.shape[0]):
        x0 = x_indptr[i]
        x1 = x_indptr[i + 1]
        n_x = x1 - x0
        for e in range(x0, x1):
            dense[x_indices[e]] = x_data[e]
        for j in range(pairs.shape[1]):
            c = pairs[i, j]
            if c < 0:
                out[i, j] = 0.0
                continue
            w0 = w_indptr[c]
            w1 = w_indptr[c + 1]
            if w1 - w0 <= 4 * n_x * (1 + math.log2(1 + w1 - w0)):
                acc = _walk_dot(w_indices, w_data, w0, w1, dense)
            else:
                acc = 0.0
                lo = w0
                for e in range(x0, x1):
                    f = x_indices[e]
                    lo = _lower_bound(w_indices, lo, w1, f)
                    if lo == w1:
                        break
                    if w_indices[lo] == f:
                        acc += w_data[lo] * dense[f]
                        lo += 1
            out[i, j] = acc
        for e in range(x0, x1):
            dense[x_indices[e]] = 0.0


@njit(cache=True, nogil=True)
def _scattered_pair_dot_kernel(
    ids, values, w_indptr, w_indices, w_data, dense, out
):  # fmt: skip
    """:func:`_pair_dot_kernel` with row ``i`` of X given as the entries
    ``values[i, j]`` at columns ``ids[i, j]`` (distinct, ``-1`` skipped), the
    pairs being ``ids`` themselves; the same arithmetic."""
    for i in range(ids.shape[0]):
        for j in range(ids.shape[1]):
            if ids[i, j] >= 0:
                dense[ids[i, j]] = values[i, j]
        for j in range(ids.shape[1]):
            c = ids[i, j]
            if c < 0:
                out[i, j] = 0.0
                continue
            out[i, j] = _walk_dot(
                w_indices, w_data, w_indptr[c], w_indptr[c + 1], dense
            )
        for j in range(ids.shape[1]):
            if ids[i, j] >= 0:
                dense[ids[i, j]] = 0.0


@njit(cache=True, nogil=True)
def _l2_normalize_kernel(indptr, data):
    """sklearn's ``inplace_csr_row_normalize_l2``, operation for operation:
    the squares in the data's precision, summed in float64, rows of norm 0
    left alone, every entry divided by the float64 norm."""
    for i in range(indptr.shape[0] - 1):
        total = 0.0
        for j in range(indptr[i], indptr[i + 1]):
            total += data[j] * data[j]
        if total == 0.0:
            continue
        norm = np.sqrt(total)
        for j in range(indptr[i], indptr[i + 1]):
            data[j] = data[j] / norm


@njit(cache=True, nogil=True)
def _product_topk_kernel(
    x_indptr, x_indices, x_data, b_indptr, b_indices, b_data, acc, seen, touched,
    heap_s, heap_c, out_s, out_c, sums,
):  # fmt: skip
    """Row top-k of the sparse product ``X @ B`` without forming it.

    Each row's products are summed into the dense ``acc`` in the order of
    scipy's ``csr_matmat`` (the row's stored entries in turn, each against its
    row of ``B``), so the sums are scipy's to the bit; as scipy, columns
    whose sum is exactly zero are not stored, so they do not compete. ``acc``
    and ``seen`` (one slot per column of ``B``) are left zeroed.

    With ``sums`` of one zeroed row per row of ``X`` (else of none), the same
    products are also added into ``sums`` in float64: in increasing feature
    order for rows with sorted indices, as :func:`_sorted_pair_dot_kernel`
    adds them (its values to the bit, for every column at once).
    """
    k = out_s.shape[1]
    with_sums = sums.shape[0] > 0
    for i in range(x_indptr.shape[0] - 1):
        n_touched = 0
        for e in range(x_indptr[i], x_indptr[i + 1]):
            v = x_data[e]
            f = x_indices[e]
            for q in range(b_indptr[f], b_indptr[f + 1]):
                c = b_indices[q]
                if not seen[c]:
                    seen[c] = True
                    touched[n_touched] = c
                    n_touched += 1
                product = v * b_data[q]
                acc[c] += product
                if with_sums:
                    sums[i, c] += product
        size = 0
        for t in range(n_touched):
            c = touched[t]
            score = acc[c]
            acc[c] = 0.0
            seen[c] = False
            if score == 0.0:
                continue
            if size < k:
                _insert(heap_s, heap_c, size, score, c)
                size += 1
            elif _worse(heap_s[0], heap_c[0], score, c):
                heap_s[0] = score
                heap_c[0] = c
                _sift_down(heap_s, heap_c, size, 0)
        _emit(heap_s, heap_c, size, out_s[i], out_c[i])


@njit(cache=True, nogil=True)
def _product_topk_dense_kernel(
    x_indptr, x_indices, x_data, b_indptr, b_indices, b_data, dense_slot, dense,
    acc, seen, touched, heap_s, heap_c, out_s, out_c, sums,
):  # fmt: skip
    """:func:`_product_topk_kernel` with the long rows of ``B`` also given
    dense: row ``f`` of ``B`` is ``dense[dense_slot[f]]`` where
    ``dense_slot[f] >= 0``.

    A dense row is added to every column, in one sequential pass; its
    columns that ``B`` does not store add ``x * 0 = 0``, which leaves every
    sum as it was (rows of ``X`` with a non-finite entry go to
    :func:`_product_topk_kernel`), so each column's sum is the plain
    kernel's, summed in the same order. Columns whose sum is 0 do not
    compete in either kernel, so the top ``k`` is the same to the bit (and
    ``sums``, if given, are the plain kernel's too).
    """
    k = out_s.shape[1]
    n_cols = acc.shape[0]
    with_sums = sums.shape[0] > 0
    for i in range(x_indptr.shape[0] - 1):
        x0 = x_indptr[i]
        x1 = x_indptr[i + 1]
        finite = True
        any_dense = False
        for e in range(x0, x1):
            if not np.isfinite(x_data[e]):
                finite = False
            if dense_slot[x_indices[e]] >= 0:
                any_dense = True
        if not (finite and any_dense):
            _product_topk_kernel(
                x_indptr[i : i + 2], x_indices, x_data, b_indptr, b_indices, b_data,
                acc, seen, touched, heap_s, heap_c, out_s[i : i + 1], out_c[i : i + 1],
                sums[i : i + 1] if with_sums else sums,
            )  # fmt: skip
            continue
        for e in range(x0, x1):
            v = x_data[e]
            f = x_indices[e]
            slot = dense_slot[f]
            if slot >= 0:
                row = dense[slot]
                if with_sums:
                    row_sums = sums[i]
                    for c in range(n_cols):
                        product = v * row[c]
                        acc[c] += product
                        row_sums[c] += product
                else:
                    for c in range(n_cols):
                        acc[c] += v * row[c]
            else:
                for q in range(b_indptr[f], b_indptr[f + 1]):
                    c = b_indices[q]
                    product = v * b_data[q]
                    acc[c] += product
                    if with_sums:
                        sums[i, c] += product
        size = 0
        for c in range(n_cols):
            score = acc[c]
            if score == 0.0:
                continue
            acc[c] = 0.0
            if size < k:
                _insert(heap_s, heap_c, size, score, c)
                size += 1
            elif _worse(heap_s[0], heap_c[0], score, c):
                heap_s[0] = score
                heap_c[0] = c
                _sift_down(heap_s, heap_c, size, 0)
        _emit(heap_s, heap_c, size, out_s[i], out_c[i])


@njit(cache=True, nogil=True)
def _first_row_with_duplicates(indices, marks):
    """First row of a 2-D index array naming a column twice, or -1.

    ``marks`` (one slot per column, filled with -1) records the last row that
    named each column: one pass, no sorting. The slots set are -1 again on
    return, so one ``marks`` array serves every call.
    """
    found = -1
    stop = indices.shape[0]
    for i in range(indices.shape[0]):
        for j in range(indices.shape[1]):
            c = indices[i, j]
            if c < 0:
                continue
            if marks[c] == i:
                found = i
                stop = i + 1
                break
            marks[c] = i
        if found >= 0:
            break
    for i in range(stop):
        for j in range(indices.shape[1]):
            c = indices[i, j]
            if c >= 0:
                marks[c] = -1
    return found


# --------------------------------------------------------------------- helpers
def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (Integral, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    return int(k)


def _score_dtype(dtype: np.dtype) -> np.dtype:
    """float32 and float64 are compared as they are; anything else as float64."""
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _empty_pattern(n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(n_rows + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)


def _padded_output(n_rows: int, k: int, dtype=np.float32):
    return (
        np.full((n_rows, k), -np.inf, dtype=dtype),
        np.full((n_rows, k), -1, dtype=np.int64),
    )


def _csr_topk(
    data: np.ndarray,
    indices: np.ndarray,
    indptr: np.ndarray,
    k: int,
    skip: tuple[np.ndarray, np.ndarray] | None = None,
    out_dtype=np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """Unchecked row top-k of a CSR-like triple (negative indices ignored)."""
    n_rows = indptr.shape[0] - 1
    data = np.ascontiguousarray(data, dtype=_score_dtype(data.dtype))
    skip_indptr, skip_indices = _empty_pattern(n_rows) if skip is None else skip
    out_s, out_c = _padded_output(n_rows, k, out_dtype)
    heap_s = np.empty(k, dtype=data.dtype)
    heap_c = np.empty(k, dtype=np.int64)
    _csr_topk_kernel(
        data,
        np.ascontiguousarray(indices),
        np.ascontiguousarray(indptr),
        skip_indptr,
        skip_indices,
        heap_s,
        heap_c,
        out_s,
        out_c,
    )
    return out_s, out_c


def _dense_topk(
    array: np.ndarray, k: int, skip: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Unchecked row top-k of a 2-D array (columns listed in ``skip`` ignored)."""
    array = np.ascontiguousarray(array, dtype=_score_dtype(array.dtype))
    skip_indptr, skip_indices = _empty_pattern(array.shape[0]) if skip is None else skip
    out_s, out_c = _padded_output(array.shape[0], k)
    heap_s = np.empty(k, dtype=array.dtype)
    heap_c = np.empty(k, dtype=np.int64)
    _dense_topk_kernel(array, skip_indptr, skip_indices, heap_s, heap_c, out_s, out_c)
    return out_s, out_c


def _canonical_csr(matrix, *, copy: bool = False) -> sp.csr_matrix:
    """CSR with sorted indices and no duplicates (duplicates are summed)."""
    matrix = sp.csr_matrix(matrix, copy=copy)
    if not matrix.has_canonical_format:
        if not copy:
            matrix = matrix.copy()
        matrix.sum_duplicates()
    return matrix


def _entries_in(matrix: sp.csr_matrix, other: sp.csr_matrix) -> np.ndarray:
    """Boolean mask over ``matrix.data``: entries also stored in ``other``.

    ``other`` must have sorted indices; both must have the same number of rows.
    """
    out = np.empty(matrix.nnz, dtype=np.bool_)
    _csr_entries_in(matrix.indptr, matrix.indices, other.indptr, other.indices, out)
    return out


# ---------------------------------------------------------------------- public
def csr_row_topk(matrix, k):
    """Return the ``k`` best stored entries of each row of a sparse matrix.

    Parameters
    ----------
    matrix : sparse matrix of shape (n_rows, n_cols)
        Scores; only the stored entries (explicit zeros included) compete.
        Any scipy sparse format is accepted and read as CSR; duplicate
        entries are summed, as scipy does.
    k : int
        Number of entries to return per row.

    Returns
    -------
    scores : ndarray of shape (n_rows, k), dtype float32
        Scores of each row's best entries, best first; ``-inf`` pads rows that
        store fewer than ``k`` entries.
    indices : ndarray of shape (n_rows, k), dtype int64
        Column indices of those entries; ties are broken by the lower column
        index, and ``-1`` pads short rows.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skxmc.utils._sparse import csr_row_topk
    >>> m = sp.csr_matrix(np.array([[0.1, 0.0, 0.7, 0.7], [0.0, 0.3, 0.0, 0.0]]))
    >>> scores, indices = csr_row_topk(m, 2)
    >>> indices
    array([[ 2,  3],
           [ 1, -1]])
    >>> scores
    array([[ 0.7,  0.7],
           [ 0.3, -inf]], dtype=float32)
    """
    if not sp.issparse(matrix):
        raise TypeError(
            f"csr_row_topk expects a scipy sparse matrix, got {type(matrix).__name__}; "
            "use dense_row_topk for arrays."
        )
    k = _check_k(k)
    matrix = _canonical_csr(matrix)
    if matrix.nnz and np.isnan(matrix.data).any():
        raise ValueError("The matrix stores NaN scores.")
    return _csr_topk(matrix.data, matrix.indices, matrix.indptr, k)


def dense_row_topk(array, k):
    """Return the ``k`` best entries of each row of a dense 2-D array.

    Parameters
    ----------
    array : array-like of shape (n_rows, n_cols)
        Scores; every entry competes.
    k : int
        Number of entries to return per row.

    Returns
    -------
    scores : ndarray of shape (n_rows, k), dtype float32
        Scores of each row's best entries, best first; ``-inf`` pads the
        columns beyond ``n_cols`` when ``k > n_cols``.
    indices : ndarray of shape (n_rows, k), dtype int64
        Column indices of those entries; ties are broken by the lower column
        index, and ``-1`` pads.

    Examples
    --------
    >>> from skxmc.utils._sparse import dense_row_topk
    >>> scores, indices = dense_row_topk([[0.2, 0.9, 0.2]], 3)
    >>> indices
    array([[1, 0, 2]])
    """
    k = _check_k(k)
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"Expected a 2-D array, got shape {array.shape}.")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"Expected numeric scores, got dtype {array.dtype}.")
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise ValueError("The array contains NaN scores.")
    return _dense_topk(array, k)


def topk_to_csr(scores, indices, n_cols):
    """Turn a ``(scores, indices)`` top-k pair into a CSR score matrix.

    Parameters
    ----------
    scores : array-like of shape (n_rows, k)
        Scores of the retrieved entries.
    indices : array-like of int of shape (n_rows, k)
        Column indices, ``-1`` for padding. A column may appear at most once
        per row.
    n_cols : int
        Number of columns of the result.

    Returns
    -------
    matrix : csr_matrix of shape (n_rows, n_cols), dtype float32
        One stored entry per non-padding index (explicit zero scores are kept
        as stored entries), with sorted column indices.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.utils._sparse import topk_to_csr
    >>> m = topk_to_csr(np.array([[0.9, 0.0]]), np.array([[2, 0]]), 4)
    >>> m.toarray()
    array([[0. , 0. , 0.9, 0. ]], dtype=float32)
    >>> int(m.nnz)
    2
    """
    arrays = topk_csr_arrays(scores, indices, n_cols)
    matrix = sp.csr_matrix(
        (arrays.data, arrays.indices, arrays.indptr), shape=arrays.shape
    )
    matrix.has_sorted_indices = True
    return matrix


#: The ``sums`` argument of the product kernels that keep no sums.
_NO_ROW_SUMS = np.zeros((0, 0), dtype=np.float64)


class _CSRArrays(NamedTuple):
    """The arrays of a float32 CSR matrix with sorted indices, without a
    scipy object (whose constructor checks them: tens of microseconds, much
    of a single query's small product); read by :func:`csr_product_topk`."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    shape: tuple

    @property
    def dtype(self):
        return self.data.dtype


def topk_csr_arrays(scores, indices, n_cols) -> _CSRArrays:
    """:func:`topk_to_csr` as the arrays of the matrix (:class:`_CSRArrays`),
    for :func:`csr_product_topk`: the same checks, no scipy object."""
    scores = np.asarray(scores)
    indices = np.asarray(indices)
    if scores.ndim != 2 or scores.shape != indices.shape:
        raise ValueError(
            "scores and indices must be 2-D arrays of the same shape, got "
            f"{scores.shape} and {indices.shape}."
        )
    if indices.size and indices.dtype.kind not in "iu":
        raise ValueError(f"indices must be integers, got dtype {indices.dtype}.")
    if isinstance(n_cols, bool) or not isinstance(n_cols, (Integral, np.integer)):
        raise ValueError(f"n_cols must be a non-negative integer, got {n_cols!r}.")
    if n_cols < 0:
        raise ValueError(f"n_cols must be a non-negative integer, got {n_cols!r}.")
    indices = indices.astype(np.int64, copy=False)
    if indices.size and (indices.min() < -1 or indices.max() >= n_cols):
        raise ValueError(
            f"indices must lie in [0, {n_cols}) or be -1 (padding); found "
            f"{indices.min() if indices.min() < -1 else indices.max()}."
        )
    _check_no_duplicates(indices, n_cols)
    keep = indices >= 0
    # each row's entries by column (padding last): the order sort_indices gives
    order = np.argsort(np.where(keep, indices, n_cols), axis=1, kind="stable")
    columns = np.take_along_axis(indices, order, axis=1)
    kept = columns >= 0
    indptr = np.zeros(indices.shape[0] + 1, dtype=np.int64)
    np.cumsum(kept.sum(axis=1), out=indptr[1:])
    values = np.take_along_axis(scores, order, axis=1)[kept].astype(np.float32)
    return _CSRArrays(indptr, columns[kept], values, (indices.shape[0], int(n_cols)))


def _check_no_duplicates(indices: np.ndarray, n_cols: int | None = None) -> None:
    """Raise if a row of a top-k index array names a column twice (-1 aside)."""
    if indices.shape[1] < 2 or indices.size == 0:
        return
    if n_cols is None:
        n_cols = int(indices.max()) + 1
    with _filled_scratch(max(n_cols, 1), np.int64, -1) as marks:
        row = _first_row_with_duplicates(np.ascontiguousarray(indices), marks)
    if row >= 0:
        raise ValueError(
            f"Row {row} of the top-k indices names the same column twice: "
            f"{indices[row].tolist()}."
        )


def as_float32_csr(X) -> sp.csr_matrix:
    """Features (sparse or dense, already validated) as a float32 CSR matrix."""
    if sp.issparse(X):
        return sp.csr_matrix(X, dtype=np.float32)
    return sp.csr_matrix(np.asarray(X, dtype=np.float32))


def _readonly_float32_csr(X):
    """``X`` itself when it is already a float32 CSR matrix (or array), else
    :func:`as_float32_csr` of it: for kernels that only read the arrays (a new
    matrix object costs tens of microseconds, much of a small call)."""
    if sp.issparse(X) and X.format == "csr" and X.dtype == np.float32:
        return X
    return as_float32_csr(X)


def sparse_pair_scores(X, W, pairs):
    """Dot products of the rows of ``X`` with chosen rows of ``W``.

    ``out[i, j] = X[i] . W[pairs[i, j]]``, computed without forming
    ``X @ W.T`` (which is dense when both matrices share dense columns).

    Parameters
    ----------
    X : sparse matrix of shape (n_rows, n_features)
        Queries.
    W : sparse matrix of shape (n_items, n_features)
        Items (label weight vectors, label features, ...).
    pairs : array-like of int of shape (n_rows, m)
        The items to score for each row; ``-1`` marks an empty slot.

    Returns
    -------
    scores : ndarray of shape (n_rows, m), dtype float32
        The dot products, 0 on empty slots.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skxmc.utils import sparse_pair_scores
    >>> X = sp.csr_matrix(np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 3.0]]))
    >>> W = sp.csr_matrix(np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]))
    >>> sparse_pair_scores(X, W, np.array([[0, 1], [0, -1]]))
    array([[1., 2.],
           [3., 0.]], dtype=float32)
    """
    X = _readonly_float32_csr(X)
    W = _readonly_float32_csr(W)
    pairs = np.ascontiguousarray(pairs, dtype=np.int64)
    if pairs.ndim != 2 or pairs.shape[0] != X.shape[0]:
        raise ValueError(
            f"pairs must have shape (n_rows={X.shape[0]}, m), got {pairs.shape}."
        )
    if X.shape[1] != W.shape[1]:
        raise ValueError(f"X has {X.shape[1]} features but W has {W.shape[1]}.")
    if pairs.size and pairs.max() >= W.shape[0]:
        raise ValueError(
            f"pairs names row {pairs.max()} of W, which has {W.shape[0]} rows."
        )
    out = np.empty(pairs.shape, dtype=np.float32)
    kernel = _pair_dot_kernel
    if X.has_canonical_format and W.has_canonical_format:
        kernel = _sorted_pair_dot_kernel
    with _filled_scratch(X.shape[1]) as dense:
        kernel(
            X.indptr, X.indices, X.data, W.indptr, W.indices, W.data, pairs, dense, out
        )
    return out


def l2_normalize_csr(X) -> sp.csr_matrix:
    """``sklearn.preprocessing.normalize(X)`` of a finite float CSR matrix, fast.

    The same arithmetic as sklearn's (equal to the bit) without its
    validation, which dominates the cost for a few rows. Other inputs go to
    sklearn.

    Parameters
    ----------
    X : sparse matrix of shape (n_rows, n_features)
        Rows to scale to unit L2 norm (rows of norm 0 stay as they are).

    Returns
    -------
    normalized : csr_matrix of shape (n_rows, n_features)
        A copy; the input is left unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skxmc.utils._sparse import l2_normalize_csr
    >>> l2_normalize_csr(sp.csr_matrix(np.array([[3.0, 4.0], [0.0, 0.0]]))).toarray()
    array([[0.6, 0.8],
           [0. , 0. ]])
    """
    if not (
        sp.issparse(X)
        and X.format == "csr"
        and X.dtype in (np.float32, np.float64)
        and np.isfinite(X.data).all()
    ):
        from sklearn.preprocessing import normalize

        return normalize(X)
    out = sp.csr_matrix(
        (X.data.copy(), X.indices.copy(), X.indptr.copy()), shape=X.shape
    )
    _l2_normalize_kernel(out.indptr, out.data)
    return out


def csr_product_topk(
    X, B, k, *, buffers=None, n_jobs=None, dense_rows=None, return_sums=False
):
    """``csr_row_topk(X @ B, k)`` for CSR matrices, without forming ``X @ B``.

    Equal to it to the bit for float32 matrices (the same sums as scipy's
    product, in the same order; columns whose sum is exactly 0 are not stored
    by scipy and do not compete here either), and much cheaper for a few
    rows: no product matrix, no sorting of its entries.

    Parameters
    ----------
    X : csr_matrix of shape (n_rows, n_inner), dtype float32
        Left factor (e.g. queries).
    B : csr_matrix of shape (n_inner, n_cols), dtype float32
        Right factor (e.g. transposed label features), canonical CSR.
    k : int
        Entries kept per row.
    buffers : tuple, default=None
        ``(acc, seen, touched)`` work arrays of ``n_cols`` slots (float32,
        bool, int64), zeroed (the call leaves them zeroed); None: the running
        thread's own (:func:`_filled_scratch`). Given buffers run in one
        thread.
    n_jobs : int, default=None
        Threads over chunks of rows (see
        :func:`~skxmc.utils._threads.map_row_chunks`; None: all cores); a few
        hundred rows or fewer run in the calling thread. Every row is
        computed alone, so the result does not depend on it.
    dense_rows : tuple, default=None
        ``(slot, dense)``: rows of ``B`` also kept dense, row ``f`` being
        ``dense[slot[f]]`` where ``slot[f] >= 0`` (int64 ``slot`` of
        ``n_inner`` entries, float32 ``dense`` of ``n_cols`` columns; see
        :func:`dense_long_rows`). A dense row is added in one sequential pass
        instead of a scattered one (several times faster for rows that store
        a good share of the columns); the same result to the bit.
    return_sums : bool, default=False
        Also return the whole product, summed in float64 in the same passes
        (a dense ``(n_rows, n_cols)`` array: for a few rows): for ``X`` with
        sorted, distinct indices per row, ``sums[i, c]`` rounded to float32
        is ``sparse_pair_scores(X, B.T, [[c]])`` to the bit.

    Returns
    -------
    scores : ndarray of shape (n_rows, k), dtype float32
        Best first, ``-inf`` padded.
    indices : ndarray of shape (n_rows, k), dtype int64
        Columns of ``X @ B``, ties by the lower column, ``-1`` padded.
    sums : ndarray of shape (n_rows, n_cols), dtype float64
        Only with ``return_sums``.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skxmc.utils._sparse import csr_product_topk
    >>> X = sp.csr_matrix(np.array([[1.0, 2.0]], dtype=np.float32))
    >>> B = sp.csr_matrix(np.array([[1.0, 0.0, 3.0], [0.0, 0.0, 1.0]],
    ...                            dtype=np.float32))
    >>> csr_product_topk(X, B, 3)
    (array([[ 5.,  1., -inf]], dtype=float32), array([[ 2,  0, -1]]))
    """
    k = _check_k(k)
    if X.shape[1] != B.shape[0]:
        raise ValueError(f"X has {X.shape[1]} columns but B has {B.shape[0]} rows.")
    if X.dtype != np.float32 or B.dtype != np.float32:
        raise ValueError("csr_product_topk expects float32 matrices.")
    out_s, out_c = _padded_output(X.shape[0], k)
    sums = np.zeros((X.shape[0], B.shape[1]), np.float64) if return_sums else None

    if dense_rows is not None:
        slot, dense = dense_rows
        if (
            slot.shape != (B.shape[0],)
            or dense.ndim != 2
            or (dense.shape[1] != B.shape[1])
        ):
            raise ValueError(
                f"dense_rows must hold a slot per row of B ({B.shape[0]}) and rows "
                f"of {B.shape[1]} columns, got {slot.shape} and {dense.shape}."
            )

    def rows(start, stop, buffers=buffers):
        if buffers is None:
            # the running thread's own (zeroing them per call would cost more
            # than a single query's product)
            n = B.shape[1]
            with (
                _filled_scratch(n, np.float32) as acc,
                _filled_scratch(n, np.bool_) as seen,
                _filled_scratch(n, np.int64) as touched,
            ):
                return rows(start, stop, (acc, seen, touched))
        heaps = np.empty(k, dtype=np.float32), np.empty(k, dtype=np.int64)
        row_sums = sums[start:stop] if return_sums else _NO_ROW_SUMS
        if dense_rows is None:
            _product_topk_kernel(
                X.indptr[start : stop + 1], X.indices, X.data, B.indptr, B.indices,
                B.data, *buffers, *heaps, out_s[start:stop], out_c[start:stop],
                row_sums,
            )  # fmt: skip
        else:
            _product_topk_dense_kernel(
                X.indptr[start : stop + 1], X.indices, X.data, B.indptr, B.indices,
                B.data, *dense_rows, *buffers, *heaps, out_s[start:stop],
                out_c[start:stop], row_sums,
            )  # fmt: skip

    if buffers is not None:
        rows(0, X.shape[0])
    else:
        map_row_chunks(rows, X.shape[0], n_jobs)
    if return_sums:
        return out_s, out_c, sums
    return out_s, out_c


def dense_long_rows(B, *, min_share=0.125, max_bytes=2**25):
    """The rows of a CSR matrix worth keeping dense for :func:`csr_product_topk`.

    Parameters
    ----------
    B : csr_matrix of shape (n_rows, n_cols), dtype float32
        The right factor of the products.
    min_share : float, default=0.125
        Rows storing at least this share of the columns are kept dense.
    max_bytes : int, default=2**25
        Memory of the dense rows at most (the longest rows first).

    Returns
    -------
    dense_rows : tuple or None
        ``(slot, dense)`` as :func:`csr_product_topk` takes it (int64 ``slot``
        of shape ``(n_rows,)``, -1 for a sparse row; float32 ``dense`` of shape
        ``(n_dense, n_cols)``), or None when no row qualifies.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skxmc.utils._sparse import dense_long_rows
    >>> B = sp.csr_matrix(np.array([[1, 2, 3, 4], [0, 0, 5, 0]], dtype=np.float32))
    >>> slot, dense = dense_long_rows(B, min_share=0.5)
    >>> slot
    array([ 0, -1])
    >>> dense
    array([[1., 2., 3., 4.]], dtype=float32)
    """
    n_rows, n_cols = B.shape
    lengths = np.diff(B.indptr)
    long_rows = np.flatnonzero(lengths >= max(1, min_share * n_cols))
    long_rows = long_rows[np.argsort(-lengths[long_rows], kind="stable")]
    long_rows = np.sort(long_rows[: max_bytes // max(1, 4 * n_cols)])
    if long_rows.size == 0:
        return None
    slot = np.full(n_rows, -1, dtype=np.int64)
    slot[long_rows] = np.arange(long_rows.size)
    dense = np.asarray(B[long_rows].toarray(), dtype=np.float32)
    return slot, dense


_LOCAL = threading.local()


#: Largest scratch array kept per thread and size (bytes; bigger ones are
#: allocated per call).
_MAX_SCRATCH_BYTES = 64 * 2**20
#: Scratch arrays kept per thread (a query of ECLARE uses six sizes).
_MAX_SCRATCH_ARRAYS = 8


class _filled_scratch:
    """An array of ``n`` slots set to ``fill`` that the caller leaves so.

    For the dense accumulators and marks of the kernels, which reset the
    slots they wrote: a fresh ``np.zeros`` of every feature or label is most
    of a single query's call. The array is the calling thread's own and out
    of the pool while in use (a nested call gets another one); it goes back
    only when the block ends without an exception (a kernel stopped midway
    may leave entries set). A class, not a generator: a query enters a dozen
    of these, and a generator-based context costs three times as much.
    """

    __slots__ = ("_buffer", "_key", "_pool")

    def __init__(self, n: int, dtype=np.float32, fill=0):
        self._key = (int(n), np.dtype(dtype).str, fill)

    def __enter__(self) -> np.ndarray:
        pool = self._pool = _LOCAL.__dict__.setdefault("scratch", {})
        buffer = pool.pop(self._key, None)
        if buffer is None:
            n, dtype, fill = self._key
            buffer = np.full(n, fill, dtype=dtype)
        self._buffer = buffer
        return buffer

    def __exit__(self, exc_type, exc, traceback) -> bool:
        pool, buffer = self._pool, self._buffer
        if exc_type is None and buffer.nbytes <= _MAX_SCRATCH_BYTES:
            if len(pool) >= _MAX_SCRATCH_ARRAYS:
                # the least recently returned (a use takes an array out and
                # puts it back last), so the sizes of the model served now stay
                pool.pop(next(iter(pool)))
            pool[self._key] = buffer
        return False


def shortlist_pair_scores(ids, values, W) -> np.ndarray:
    """``sparse_pair_scores(S, W, ids)`` where row ``i`` of ``S`` holds
    ``values[i, j]`` at column ``ids[i, j]``, without building ``S``.

    Parameters
    ----------
    ids : array-like of int of shape (n_rows, m)
        Column ids, distinct within a row, ``-1`` for empty slots.
    values : array-like of shape (n_rows, m)
        The entries of ``S`` (read as float32).
    W : sparse matrix of shape (n_items, n_columns)
        Items; row ``ids[i, j]`` is scored against row ``i`` of ``S``.

    Returns
    -------
    scores : ndarray of shape (n_rows, m), dtype float32
        ``S[i] . W[ids[i, j]]``, 0 on empty slots; equal to the bit to
        :func:`sparse_pair_scores` of the built ``S``.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skxmc.utils._sparse import shortlist_pair_scores
    >>> W = sp.csr_matrix(np.array([[0.0, 1.0], [2.0, 0.0]]))
    >>> shortlist_pair_scores(np.array([[0, 1]]), np.array([[3.0, 4.0]]), W)
    array([[4., 6.]], dtype=float32)
    """
    W = _readonly_float32_csr(W)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    values = np.ascontiguousarray(values, dtype=np.float32)
    if ids.ndim != 2 or values.shape != ids.shape:
        raise ValueError(
            f"ids and values must be 2-D of one shape, got {ids.shape} and "
            f"{values.shape}."
        )
    if ids.size and ids.max() >= min(W.shape):
        raise ValueError(f"ids must lie below {min(W.shape)} (W has shape {W.shape}).")
    out = np.empty(ids.shape, dtype=np.float32)
    with _filled_scratch(W.shape[1]) as dense:
        _scattered_pair_dot_kernel(ids, values, W.indptr, W.indices, W.data, dense, out)
    return out
