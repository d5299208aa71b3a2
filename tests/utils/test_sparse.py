"""Row top-k helpers of skxmc.utils._sparse against sort-based oracles."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from skxmc.utils._sparse import csr_row_topk, dense_row_topk, topk_to_csr


# ---------------------------------------------------------------------- oracles
def _oracle_topk(rows, k):
    """rows: one list of (column, score) per row. Sort by (-score, column)."""
    scores = np.full((len(rows), k), -np.inf, dtype=np.float32)
    indices = np.full((len(rows), k), -1, dtype=np.int64)
    for i, entries in enumerate(rows):
        best = sorted(entries, key=lambda e: (-e[1], e[0]))[:k]
        for j, (col, score) in enumerate(best):
            scores[i, j] = score
            indices[i, j] = col
    return scores, indices


def _stored_entries(matrix):
    """Per-row stored entries of a sparse matrix, duplicates summed, via COO."""
    coo = sp.coo_matrix(matrix)
    rows = [{} for _ in range(matrix.shape[0])]
    for r, c, v in zip(coo.row, coo.col, coo.data):
        rows[r][int(c)] = rows[r].get(int(c), 0) + v
    return [list(row.items()) for row in rows]


# A few distinct values so that ties are frequent; -inf and 0 are legal scores.
_SCORE_VALUES = st.sampled_from([-np.inf, -1.0, 0.0, 0.25, 0.5, 0.5, 1.0, 3.0])


@st.composite
def _sparse_cases(draw):
    n_rows = draw(st.integers(0, 7))
    n_cols = draw(st.integers(1, 9))
    mask = draw(
        st.lists(
            st.lists(st.booleans(), min_size=n_cols, max_size=n_cols),
            min_size=n_rows,
            max_size=n_rows,
        )
    )
    values = draw(
        st.lists(
            st.lists(_SCORE_VALUES, min_size=n_cols, max_size=n_cols),
            min_size=n_rows,
            max_size=n_rows,
        )
    )
    mask = np.array(mask, dtype=bool).reshape(n_rows, n_cols)
    values = np.array(values, dtype=np.float32).reshape(n_rows, n_cols)
    rows, cols = np.nonzero(mask)
    matrix = sp.csr_matrix(
        (values[rows, cols], (rows, cols)), shape=(n_rows, n_cols), dtype=np.float32
    )
    k = draw(st.integers(1, n_cols + 3))
    return matrix, values, k


# ------------------------------------------------------------------ csr_row_topk
@settings(max_examples=200, deadline=None)
@given(_sparse_cases())
def test_csr_row_topk_matches_sort_oracle(case):
    matrix, _, k = case
    scores, indices = csr_row_topk(matrix, k)
    expected_scores, expected_indices = _oracle_topk(_stored_entries(matrix), k)
    assert scores.dtype == np.float32 and indices.dtype == np.int64
    assert scores.shape == indices.shape == (matrix.shape[0], k)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_array_equal(scores, expected_scores)


def test_csr_row_topk_hand_case_ties_short_and_empty_rows():
    # row 0: scores 0.5 at columns 4, 1 and 2 -> ties go to lower columns: 1, 2, 4
    # row 1: empty -> all padding
    # row 2: one stored explicit zero at column 3 -> (0.0, 3) then padding
    matrix = sp.csr_matrix(
        (
            np.array([0.5, 0.5, 0.5, 0.0], dtype=np.float32),
            np.array([4, 1, 2, 3]),  # unsorted on purpose
            np.array([0, 3, 3, 4]),
        ),
        shape=(3, 5),
    )
    scores, indices = csr_row_topk(matrix, 4)
    assert indices.tolist() == [[1, 2, 4, -1], [-1, -1, -1, -1], [3, -1, -1, -1]]
    assert scores[0, :3].tolist() == [0.5, 0.5, 0.5]
    assert scores[2, 0] == 0.0
    assert np.isneginf(scores[0, 3]) and np.isneginf(scores[1]).all()


def test_csr_row_topk_sums_duplicates_and_accepts_other_formats():
    # (0, 2) stored twice: 0.25 + 0.5 = 0.75 beats the 0.6 at column 0
    coo = sp.coo_matrix(
        (np.array([0.25, 0.6, 0.5]), (np.array([0, 0, 0]), np.array([2, 0, 2]))),
        shape=(1, 3),
    )
    for matrix in (coo, coo.tocsc(), coo.tocsr()):
        scores, indices = csr_row_topk(matrix, 2)
        assert indices.tolist() == [[2, 0]]
        np.testing.assert_allclose(scores, [[0.75, 0.6]], rtol=1e-6)
    # the caller's matrix is left as it was (duplicates still there)
    assert coo.nnz == 3


def test_csr_row_topk_compares_float64_at_full_precision():
    # 1 + 1e-12 and 1 are equal in float32 but not in float64: the float64
    # ranking puts column 1 first although column 0 is lower.
    matrix = sp.csr_matrix(np.array([[1.0, 1.0 + 1e-12]]))
    _, indices = csr_row_topk(matrix, 2)
    assert indices.tolist() == [[1, 0]]


def test_csr_row_topk_integer_and_bool_data():
    matrix = sp.csr_matrix(np.array([[0, 3, 1, 3]], dtype=np.int64))
    scores, indices = csr_row_topk(matrix, 3)
    assert indices.tolist() == [[1, 3, 2]]
    assert scores.tolist() == [[3.0, 3.0, 1.0]]
    _, indices = csr_row_topk(sp.csr_matrix(np.array([[False, True, True]])), 1)
    assert indices.tolist() == [[1]]


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "3"])
def test_csr_row_topk_rejects_bad_k(k):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        csr_row_topk(sp.csr_matrix((2, 3)), k)


def test_csr_row_topk_rejects_nan_and_dense():
    with pytest.raises(ValueError, match="NaN"):
        csr_row_topk(sp.csr_matrix(np.array([[np.nan, 1.0]])), 1)
    with pytest.raises(TypeError, match="dense_row_topk"):
        csr_row_topk(np.ones((2, 2)), 1)


def test_csr_row_topk_many_rows_against_argsort():
    # a bigger random case: continuous scores (no ties), 40 entries per row
    rng = np.random.default_rng(0)
    n_rows, n_cols, per_row = 2000, 500, 40
    cols = np.sort(
        rng.permuted(np.tile(np.arange(n_cols), (n_rows, 1)), axis=1)[:, :per_row],
        axis=1,
    )
    data = rng.standard_normal((n_rows, per_row))
    matrix = sp.csr_matrix(
        (data.ravel(), cols.ravel(), np.arange(n_rows + 1) * per_row),
        shape=(n_rows, n_cols),
    )
    scores, indices = csr_row_topk(matrix, 7)
    order = np.argsort(-data, axis=1)[:, :7]
    np.testing.assert_array_equal(indices, np.take_along_axis(cols, order, axis=1))
    np.testing.assert_array_equal(
        scores, np.take_along_axis(data, order, axis=1).astype(np.float32)
    )


# ---------------------------------------------------------------- dense_row_topk
@settings(max_examples=200, deadline=None)
@given(_sparse_cases())
def test_dense_row_topk_matches_sort_oracle(case):
    _, values, k = case
    scores, indices = dense_row_topk(values, k)
    rows = [list(enumerate(row)) for row in values.tolist()]
    expected_scores, expected_indices = _oracle_topk(rows, k)
    assert scores.shape == indices.shape == (values.shape[0], k)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_array_equal(scores, expected_scores)


def test_dense_row_topk_pads_beyond_n_cols_and_reads_lists():
    scores, indices = dense_row_topk([[2, 7], [5, 5]], 3)
    assert indices.tolist() == [[1, 0, -1], [0, 1, -1]]
    assert scores[:, :2].tolist() == [[7.0, 2.0], [5.0, 5.0]]
    assert np.isneginf(scores[:, 2]).all()


def test_dense_row_topk_non_contiguous_input():
    array = np.arange(24, dtype=np.float64).reshape(4, 6)[:, ::2]  # a strided view
    _, indices = dense_row_topk(array, 2)
    assert indices.tolist() == [[2, 1]] * 4


def test_dense_row_topk_rejects_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        dense_row_topk(np.array([[0.0, np.nan]]), 1)
    with pytest.raises(ValueError, match="2-D"):
        dense_row_topk(np.zeros(3), 1)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        dense_row_topk(np.zeros((1, 3)), 0)


# ------------------------------------------------------------------ topk_to_csr
@settings(max_examples=100, deadline=None)
@given(_sparse_cases())
def test_topk_to_csr_inverts_csr_row_topk(case):
    matrix, _, _ = case
    width = max(int(np.diff(matrix.indptr).max(initial=0)), 1)
    back = topk_to_csr(*csr_row_topk(matrix, width), matrix.shape[1])
    assert back.dtype == np.float32 and back.shape == matrix.shape
    assert back.has_sorted_indices
    # same pattern (explicit zeros included) and same values (-inf included)
    np.testing.assert_array_equal(back.indptr, matrix.indptr)
    np.testing.assert_array_equal(back.indices, matrix.indices)
    np.testing.assert_array_equal(back.data, matrix.data)


def test_topk_to_csr_hand_case():
    scores = np.array([[0.9, 0.0, -np.inf], [0.3, 0.2, 0.1]], dtype=np.float32)
    indices = np.array([[3, 1, -1], [-1, 0, 2]])
    matrix = topk_to_csr(scores, indices, 4)
    # row 0 keeps (3, 0.9) and the explicit zero (1, 0.0); row 1 drops the -1
    assert matrix.nnz == 4
    assert matrix.indices.tolist() == [1, 3, 0, 2]
    np.testing.assert_array_equal(matrix.data, np.float32([0.0, 0.9, 0.2, 0.1]))
    assert matrix.indptr.tolist() == [0, 2, 4]


def test_topk_to_csr_empty_and_all_padding():
    matrix = topk_to_csr(np.zeros((3, 0)), np.zeros((3, 0), dtype=np.int64), 5)
    assert matrix.shape == (3, 5) and matrix.nnz == 0
    matrix = topk_to_csr(np.zeros((2, 2)), np.full((2, 2), -1), 5)
    assert matrix.nnz == 0


@pytest.mark.parametrize(
    "scores, indices, n_cols, message",
    [
        (np.zeros((2, 2)), np.zeros((2, 3), dtype=int), 4, "same shape"),
        (np.zeros((1, 2)), np.array([[0, 4]]), 4, r"\[0, 4\)"),
        (np.zeros((1, 2)), np.array([[0, -2]]), 4, "-2"),
        (np.zeros((1, 2)), np.array([[0.0, 1.0]]), 4, "integers"),
        (np.zeros((1, 3)), np.array([[2, -1, 2]]), 4, "twice"),
        (np.zeros((1, 2)), np.array([[0, 1]]), -1, "n_cols"),
    ],
)
def test_topk_to_csr_rejects_bad_input(scores, indices, n_cols, message):
    with pytest.raises(ValueError, match=message):
        topk_to_csr(scores, indices, n_cols)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 6),
    n_items=st.integers(1, 7),
    m=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_sparse_pair_scores_matches_dense_product(n, n_items, m, seed):
    from skxmc.utils import sparse_pair_scores

    rng = np.random.default_rng(seed)
    X = sp.random(n, 9, density=0.4, random_state=rng, format="csr")
    W = sp.random(n_items, 9, density=0.4, random_state=rng, format="csr")
    pairs = rng.integers(-1, n_items, size=(n, m))
    full = (X @ W.T).toarray()
    expected = np.where(
        pairs >= 0, np.take_along_axis(full, np.maximum(pairs, 0), 1), 0.0
    )
    np.testing.assert_allclose(sparse_pair_scores(X, W, pairs), expected, atol=1e-5)


def test_sparse_pair_scores_rejects_bad_shapes():
    from skxmc.utils import sparse_pair_scores

    X = sp.csr_matrix(np.eye(2, 3))
    W = sp.csr_matrix(np.eye(4, 3))
    with pytest.raises(ValueError, match="pairs must have shape"):
        sparse_pair_scores(X, W, np.zeros((3, 1), int))
    with pytest.raises(ValueError, match="features"):
        sparse_pair_scores(X, sp.csr_matrix(np.eye(4, 2)), np.zeros((2, 1), int))
    with pytest.raises(ValueError, match="row 4 of W"):
        sparse_pair_scores(X, W, np.array([[4], [0]]))


# ------------------------------------------------ single-query fast paths
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_l2_normalize_csr_equals_sklearn_to_the_bit(dtype):
    from sklearn.preprocessing import normalize

    from skxmc.utils._sparse import l2_normalize_csr

    rng = np.random.default_rng(0)
    X = sp.random(40, 300, density=0.05, random_state=rng, format="lil", dtype=dtype)
    X[3] = 0  # an empty row stays empty
    X = X.tocsr()
    X.data = (X.data * rng.choice([1e-3, 1.0, 1e3], X.nnz)).astype(dtype)
    duplicated = sp.csr_matrix(
        (np.array([1.0, 2.0, 2.0], dtype), [4, 4, 0], [0, 3]), shape=(1, 5)
    )
    for M in (X, duplicated):
        before = M.copy()
        out = l2_normalize_csr(M)
        expected = normalize(M)
        assert out.dtype == expected.dtype
        np.testing.assert_array_equal(out.data, expected.data)
        np.testing.assert_array_equal(out.indices, expected.indices)
        np.testing.assert_array_equal(M.data, before.data)  # input untouched
    with pytest.raises(ValueError, match="NaN"):
        l2_normalize_csr(sp.csr_matrix(np.array([[np.nan]], dtype=np.float32)))


def test_csr_product_topk_equals_topk_of_the_scipy_product():
    from skxmc.utils._sparse import csr_product_topk

    rng = np.random.default_rng(1)
    X = sp.random(30, 50, density=0.2, random_state=rng, format="csr", dtype=np.float32)
    B = sp.random(
        50, 400, density=0.1, random_state=rng, format="csr", dtype=np.float32
    )
    X.data = rng.normal(size=X.nnz).astype(np.float32)  # sums that cancel too
    X[0] = 0
    # row 1: a column whose sum is exactly 0 (scipy does not store it)
    X[1] = 0
    X[1, 2] = X[1, 3] = 1.0
    B[2, 7], B[3, 7] = 0.5, -0.5
    B[2, 8] = B[3, 9] = 0.25  # and a tie (broken by the lower column)
    B.sum_duplicates()
    X.sum_duplicates()
    buffers = (np.zeros(400, np.float32), np.zeros(400, bool), np.empty(400, np.int64))
    for k in (1, 5, 60):
        expected = csr_row_topk(X @ B, k)
        got = csr_product_topk(X, B, k, buffers=buffers)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
        assert not buffers[0].any() and not buffers[1].any()  # left zeroed
    assert 7 not in csr_product_topk(X[1], B, 5)[1]
    with pytest.raises(ValueError, match="float32"):
        csr_product_topk(X.astype(np.float64), B, 3)


def test_shortlist_pair_scores_equal_sparse_pair_scores_of_the_built_rows():
    from skxmc.utils import sparse_pair_scores
    from skxmc.utils._sparse import shortlist_pair_scores

    rng = np.random.default_rng(3)
    W = sp.random(40, 40, density=0.2, random_state=rng, format="csr", dtype=np.float32)
    ids = np.stack([rng.permutation(40)[:9] for _ in range(6)])
    ids[::2, -3:] = -1
    values = rng.random(ids.shape).astype(np.float32)
    valid = ids >= 0
    rows = np.broadcast_to(np.arange(6)[:, None], ids.shape)
    S = sp.csr_matrix((values[valid], (rows[valid], ids[valid])), shape=(6, 40))
    np.testing.assert_array_equal(
        shortlist_pair_scores(ids, values, W), sparse_pair_scores(S, W, ids)
    )


def test_sorted_pair_dot_kernel_equals_the_walk_to_the_bit():
    """The search of long W rows (canonical rows) gives the walk's sums exactly."""
    from skxmc.utils import sparse_pair_scores
    from skxmc.utils._sparse import _pair_dot_kernel, _sorted_pair_dot_kernel

    rng = np.random.default_rng(4)
    # rows of W from ~2 to ~2000 entries: short ones are walked, long ones searched
    density = np.r_[np.full(20, 0.0005), np.full(20, 0.5)]
    W = sp.vstack(
        [sp.random(1, 4000, density=d, random_state=rng, format="csr") for d in density]
    ).tocsr().astype(np.float32)  # fmt: skip
    W.data = rng.normal(size=W.nnz).astype(np.float32)
    X = sp.random(8, 4000, density=0.01, random_state=rng, format="csr")
    X = X.astype(np.float32)
    X.data = rng.normal(size=X.nnz).astype(np.float32)
    X[0, W[25].indices[-1]] = 2.0  # a query sharing the last feature of a long row
    X.sort_indices()
    assert X.has_canonical_format and W.has_canonical_format
    pairs = rng.integers(-1, 40, size=(8, 30))
    outs = []
    for kernel in (_pair_dot_kernel, _sorted_pair_dot_kernel):
        out = np.empty(pairs.shape, dtype=np.float32)
        dense = np.zeros(4000, dtype=np.float32)
        kernel(
            X.indptr, X.indices, X.data, W.indptr, W.indices, W.data, pairs, dense, out
        )
        assert not dense.any()
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(sparse_pair_scores(X, W, pairs), outs[0])
    # the literal product, in float64
    expected = (X.toarray().astype(np.float64) @ W.toarray().T.astype(np.float64))[
        np.arange(8)[:, None], np.maximum(pairs, 0)
    ]
    expected[pairs < 0] = 0.0
    np.testing.assert_allclose(outs[1], expected, rtol=1e-5, atol=1e-5)


def test_csr_product_topk_is_the_same_on_threads():
    """Row chunks on threads give the serial answer (and scipy's product)."""
    from skxmc.utils._sparse import csr_product_topk

    rng = np.random.default_rng(5)
    X = sp.random(1500, 300, density=0.02, random_state=rng, format="csr")
    B = sp.random(300, 800, density=0.05, random_state=rng, format="csr")
    X, B = X.astype(np.float32), B.astype(np.float32)
    serial = csr_product_topk(X, B, 7, n_jobs=1)
    threaded = csr_product_topk(X, B, 7, n_jobs=3)
    np.testing.assert_array_equal(serial[0], threaded[0])
    np.testing.assert_array_equal(serial[1], threaded[1])
    expected = csr_row_topk(sp.csr_matrix(X @ B), 7)
    np.testing.assert_array_equal(threaded[0], expected[0])
    np.testing.assert_array_equal(threaded[1], expected[1])


def test_csr_product_topk_with_dense_rows_equals_the_plain_kernel_to_the_bit():
    """Long rows of B added densely: scipy's sums and top k, cancelling sums,
    ties, unsorted and duplicated query entries and non-finite rows included."""
    from skxmc.utils._sparse import csr_product_topk, dense_long_rows

    rng = np.random.default_rng(6)
    n_inner, n_cols = 60, 300
    # a few long rows of B (dense candidates) among short ones
    density = np.r_[np.full(6, 0.6), np.full(n_inner - 6, 0.02)]
    rows = [sp.random(1, n_cols, density=d, random_state=rng) for d in density]
    B = sp.vstack(rows).tocsr().astype(np.float32)
    B.data = rng.normal(size=B.nnz).astype(np.float32)
    B[0, 5], B[7, 5] = 0.5, -0.5  # a column that cancels to exactly 0
    B[0, 6] = B[7, 8] = 0.25  # and a tie
    B.sum_duplicates()
    X = sp.random(40, n_inner, density=0.15, random_state=rng, format="csr")
    X = X.astype(np.float32)
    X.data = rng.normal(size=X.nnz).astype(np.float32)
    X = X.tolil()
    X[0] = 0  # empty
    X[1] = 0
    X[1, 0] = X[1, 7] = 1.0  # the cancelling column, through a dense row
    X[2] = 0
    X[2, 10] = 2.0  # sparse rows only
    X[3, 1] = np.inf  # a non-finite entry: the plain kernel's answer
    X = X.tocsr()
    dense_rows = dense_long_rows(B, min_share=0.3)
    assert dense_rows is not None and dense_rows[1].shape[0] == 6
    # unsorted indices with a duplicate: scipy's order of the entries kept
    order = [np.r_[X.indices[a:b][::-1], X.indices[a:b][:1]] for a, b in
             zip(X.indptr[:-1], X.indptr[1:])]  # fmt: skip
    values = [np.r_[X.data[a:b][::-1], X.data[a:b][:1]] for a, b in
              zip(X.indptr[:-1], X.indptr[1:])]  # fmt: skip
    shuffled = sp.csr_matrix(
        (np.concatenate(values), np.concatenate(order),
         np.cumsum([0] + [len(o) for o in order])),
        shape=X.shape,
    )  # fmt: skip
    buffers = (
        np.zeros(n_cols, np.float32),
        np.zeros(n_cols, bool),
        np.empty(n_cols, np.int64),
    )
    for queries in (X, shuffled):
        for k in (1, 5, n_cols + 3):
            plain = csr_product_topk(queries, B, k)
            got = csr_product_topk(
                queries, B, k, dense_rows=dense_rows, buffers=buffers
            )
            np.testing.assert_array_equal(got[0], plain[0])
            np.testing.assert_array_equal(got[1], plain[1])
            assert not buffers[0].any() and not buffers[1].any()  # left zeroed
    finite = np.isfinite(X.toarray()).all(axis=1)
    expected = csr_row_topk(X[finite] @ B, 9)
    got = csr_product_topk(X[finite], B, 9, dense_rows=dense_rows)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert 5 not in csr_product_topk(X[1], B, 9, dense_rows=dense_rows)[1]
    assert dense_long_rows(B, min_share=0.9) is None
    assert dense_long_rows(B, min_share=0.3, max_bytes=4 * n_cols * 2)[1].shape[0] == 2
    with pytest.raises(ValueError, match="dense_rows"):
        csr_product_topk(X, B, 3, dense_rows=(dense_rows[0][:-1], dense_rows[1]))


def test_duplicate_check_leaves_its_reused_marks_clean():
    # the marks array is kept per thread: a column named in row 0 of one call
    # must not look like a repeat in row 0 of the next call
    for indices in ([[3, 1]], [[3, 2]], [[0, 3], [3, 4]]):
        m = topk_to_csr(np.ones((len(indices), 2)), np.array(indices), 5)
        assert m.nnz == 2 * len(indices)
    with pytest.raises(ValueError, match=r"Row 1 .* twice"):
        topk_to_csr(np.ones((2, 2)), np.array([[2, 4], [2, 2]]), 5)
    assert topk_to_csr(np.ones((1, 2)), np.array([[2, 4]]), 5).nnz == 2


def test_scratch_dirtied_by_an_exception_is_not_reused():
    from skxmc.utils._sparse import _filled_scratch

    with pytest.raises(RuntimeError):
        with _filled_scratch(7) as buffer:
            buffer[3] = 1.0  # a kernel stopped before resetting its slots
            raise RuntimeError
    with _filled_scratch(7) as buffer:
        assert not buffer.any()
        nested_is_another = True
        with _filled_scratch(7) as inner:
            nested_is_another = inner is not buffer
    assert nested_is_another


def test_scratch_pool_keeps_the_sizes_in_use_when_full():
    from skxmc.utils import _sparse

    for n in range(100, 100 + _sparse._MAX_SCRATCH_ARRAYS + 3):  # other sizes
        with _sparse._filled_scratch(n):
            pass
    with _sparse._filled_scratch(5) as first:
        pass
    for n in range(200, 200 + _sparse._MAX_SCRATCH_ARRAYS - 1):
        with _sparse._filled_scratch(n):
            pass
    with _sparse._filled_scratch(5) as again:
        assert again is first  # still pooled: the oldest went first
    pool = _sparse._LOCAL.__dict__["scratch"]
    assert len(pool) == _sparse._MAX_SCRATCH_ARRAYS


@pytest.mark.parametrize("with_dense_rows", [False, True])
def test_product_sums_are_sparse_pair_scores_of_every_column(with_dense_rows):
    """csr_product_topk(return_sums=True): the same top k, and the float64
    sums of every column, which round to sparse_pair_scores' values to the
    bit (the same products in the same order), with dense rows or not, for a
    row with a non-finite entry too (the plain kernel's path)."""
    from skxmc.utils import sparse_pair_scores
    from skxmc.utils._sparse import csr_product_topk, dense_long_rows

    rng = np.random.default_rng(7)
    X = sp.random(4, 60, density=0.3, random_state=rng, format="lil", dtype=np.float32)
    B = sp.random(60, 300, density=0.05, random_state=rng, format="lil")
    B = B.astype(np.float32)
    B[:3] = rng.random((3, 300)).astype(np.float32)  # long rows (kept dense)
    X[:, :3] = rng.random((4, 3)).astype(np.float32)
    X = sp.csr_matrix(X)
    X.data = X.data * rng.choice([-1, 1], X.nnz).astype(np.float32)
    X = X.tolil()
    X[3, 40] = np.inf  # no dense pass for this row
    B, X = sp.csr_matrix(B), sp.csr_matrix(X)
    B.sum_duplicates()
    X.sum_duplicates()
    dense_rows = dense_long_rows(B, min_share=0.5) if with_dense_rows else None
    if with_dense_rows:
        assert (dense_rows[0] >= 0).sum() == 3
    plain = csr_product_topk(X, B, 9, dense_rows=dense_rows)
    scores, ids, sums = csr_product_topk(
        X, B, 9, dense_rows=dense_rows, return_sums=True
    )
    np.testing.assert_array_equal(scores, plain[0])
    np.testing.assert_array_equal(ids, plain[1])
    assert sums.dtype == np.float64 and sums.shape == (4, 300)
    every = np.arange(300)[None].repeat(4, 0)
    with np.errstate(invalid="ignore"):
        expected = sparse_pair_scores(X, sp.csr_matrix(B.T), every)
    np.testing.assert_array_equal(sums.astype(np.float32), expected)
    np.testing.assert_allclose(sums[:3], (X[:3] @ B).toarray(), rtol=1e-5, atol=1e-6)


def test_similarity_topk_returns_every_cosine_of_the_same_pass():
    from skxmc.indexing import LabelShortlist
    from skxmc.utils import sparse_pair_scores
    from skxmc.utils._sparse import l2_normalize_csr

    rng = np.random.default_rng(8)
    Z = sp.random(50, 40, density=0.2, random_state=rng, format="csr")
    index = LabelShortlist(method="exact").fit(Z)
    unit = l2_normalize_csr(
        sp.random(2, 40, density=0.3, random_state=rng, format="csr", dtype=np.float32)
    )
    scores, ids, similarity = index.similarity_topk(
        unit, 5, normalized=True, return_similarity=True
    )
    plain = index.similarity_topk(unit, 5, normalized=True)
    np.testing.assert_array_equal(ids, plain[1])
    np.testing.assert_array_equal(scores, plain[0])
    every = np.arange(50)[None].repeat(2, 0)
    np.testing.assert_array_equal(
        similarity.astype(np.float32), sparse_pair_scores(unit, index.labels_, every)
    )
    with pytest.raises(ValueError, match="sparse"):
        index.similarity_topk(unit.toarray(), 5, return_similarity=True)
