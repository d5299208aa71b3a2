"""Single files of the Extreme Classification Repository: read and write.

Two text formats, every file optionally gzip-compressed when read:

* the **sparse matrix** format of the split files (``trn_X_Xf.txt``,
  ``trn_X_Y.txt``, ``tst_X_Xf.txt``, ``tst_X_Y.txt``, ``lbl_X_Xf.txt``) and of
  prediction (score) files: a header ``n_rows n_columns``, then one line per
  row of ``column:value`` pairs with 0-based column ids (an empty line is an
  empty row);
* the **single-file** data set format (``train.txt`` / ``test.txt``): a header
  ``n_rows n_features n_labels``, then one line per row ``l1,l2,... f:v f:v``
  (a row without labels starts with a space).

Malformed files raise :class:`ValueError` naming the file and the line.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from skxmc.datasets._xmc_repo import (
    _FLOAT32_MAX,
    _MAX_INT,
    _err,
    _fits_float32,
    _parse_int,
    _read_bow,
    _read_bytes,
    _short,
    _split_lines,
    _svmlight_or_none,
)

__all__ = ["load_xc_matrix", "dump_xc_matrix", "load_xc_file", "dump_xc_file"]


def _header(raw: bytes, path: Path, n_fields: int, names: str) -> tuple:
    end = raw.find(b"\n")
    header, body = (raw, b"") if end < 0 else (raw[:end], raw[end + 1 :])
    parts = header.split()
    message = (
        f"expected the header '{names}' ({n_fields} non-negative integers), "
        f"got {_short(header.strip())}."
    )
    if len(parts) != n_fields:
        if n_fields == 2 and len(parts) == 3:
            message += (
                " Three numbers are the header of the single-file format "
                "(train.txt): read it with load_xc_file."
            )
        elif n_fields == 3 and len(parts) == 2:
            message += (
                " Two numbers are the header of the sparse matrix format "
                "(trn_X_Xf.txt, trn_X_Y.txt): read it with load_xc_matrix."
            )
        raise _err(path, 1, message)
    try:
        counts = tuple(int(p) for p in parts)
    except ValueError:
        raise _err(path, 1, message) from None
    if min(counts) < 0 or max(counts) > _MAX_INT:
        raise _err(path, 1, message)
    return counts, body


def header_fields(path) -> int:
    """Number of fields of a file's header line: 2 (matrix) or 3 (single file).

    Private helper of the command line, which accepts either format.
    """
    path = Path(path)
    raw = _read_bytes(path)
    end = raw.find(b"\n")
    return len((raw if end < 0 else raw[:end]).split())


def _matrix_fast(body: bytes, n_rows: int, n_cols: int) -> sp.csr_matrix | None:
    """sklearn's compiled svmlight reader, or None when it cannot be trusted.

    Each line is given an empty label field (a leading space). The reader skips
    blank lines and ``#`` comments and gives no line numbers: any doubt and the
    exact parser runs instead.
    """
    if n_cols == 0 or b"#" in body or b"qid" in body or b"," in body:
        return None
    text = b" " + body.replace(b"\n", b"\n ")
    read = _svmlight_or_none(text, n_rows, n_cols, np.float64)
    return None if read is None else read[0]


def _matrix_exact(body: bytes, path: Path, n_rows: int, n_cols: int) -> sp.csr_matrix:
    lines = _split_lines(body)
    indptr, indices, values = [0], [], []
    for offset, line in enumerate(lines):
        lineno = offset + 2
        if offset >= n_rows:
            if line.strip():
                raise _err(
                    path,
                    lineno,
                    f"more data lines than the {n_rows} rows announced by the "
                    "header on line 1.",
                )
            continue
        for token in line.split():
            idx_s, colon, val_s = token.partition(b":")
            if not colon:
                raise _err(
                    path, lineno, f"expected 'column:value', got {_short(token)}."
                )
            idx = _parse_int(idx_s, path, lineno, "column id")
            if idx >= n_cols:
                raise _err(
                    path,
                    lineno,
                    f"column id {idx} out of range: the header says {n_cols} columns.",
                )
            try:
                value = float(val_s)
            except ValueError:
                raise _err(
                    path, lineno, f"value {_short(val_s)} is not a number."
                ) from None
            if not np.isfinite(value):
                raise _err(path, lineno, f"value {_short(val_s)} is not finite.")
            indices.append(idx)
            values.append(value)
        indptr.append(len(indices))
    n_read = len(indptr) - 1
    if n_read < n_rows:
        raise _err(
            path,
            len(lines) + 1,
            f"the file ends after {n_read} data lines but the header on line 1 "
            f"announces {n_rows} rows.",
        )
    return sp.csr_matrix(
        (
            np.asarray(values, dtype=np.float64),
            np.asarray(indices, dtype=np.int64),
            np.asarray(indptr, dtype=np.int64),
        ),
        shape=(n_rows, n_cols),
    )


def load_xc_matrix(path, *, dtype=np.float32):
    """Load a sparse matrix file of the Extreme Classification Repository.

    The split files of the repository's bag-of-words data sets
    (``trn_X_Xf.txt``: features, ``trn_X_Y.txt``: labels, the same for
    ``tst_``, ``lbl_X_Xf.txt``: label features) and prediction files share one
    format: a header ``n_rows n_columns``, then one line per row of
    ``column:value`` pairs, 0-based.

    Parameters
    ----------
    path : str or path-like
        The file (gzip-compressed or not).
    dtype : numpy dtype, default=np.float32
        The dtype of the returned matrix. A value that overflows it is an
        error.

    Returns
    -------
    matrix : csr_matrix of shape (n_rows, n_columns)
        Sorted column indices; a column repeated on a line has its values
        added. Explicitly stored zeros are kept (in a score file, a label
        retrieved with score 0 is still retrieved).

    Raises
    ------
    ValueError
        For a malformed file: the message names the file and the line (bad
        header, a column id out of range, a value that is not a finite
        number, more or fewer lines than the header announces).

    See Also
    --------
    dump_xc_matrix : Write a matrix in this format.
    load_xc_file : Load the single-file format (``train.txt``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from skxmc.datasets import load_xc_matrix
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "trn_X_Y.txt"
    >>> _ = path.write_text("3 4\\n0:1 3:1\\n\\n2:1\\n")
    >>> load_xc_matrix(path).toarray()
    array([[1., 0., 0., 1.],
           [0., 0., 0., 0.],
           [0., 0., 1., 0.]], dtype=float32)
    """
    path = Path(path)
    raw = _read_bytes(path)
    (n_rows, n_cols), body = _header(raw, path, 2, "n_rows n_columns")
    matrix = _matrix_fast(body, n_rows, n_cols)
    if matrix is None:
        matrix = _matrix_exact(body, path, n_rows, n_cols)
    matrix.sum_duplicates()
    dtype = np.dtype(dtype)
    if dtype == np.float32 and matrix.nnz:
        big = np.abs(matrix.data) > _FLOAT32_MAX
        if big.any() and not _fits_float32(float(matrix.data[big][0])):
            raise ValueError(
                f"{path}: value {matrix.data[big][0]!r} overflows float32 "
                f"(largest magnitude {_FLOAT32_MAX:.7g})."
            )
    return matrix.astype(dtype)


def _row_strings(matrix: sp.csr_matrix, fmt: str, order: str) -> list[str]:
    matrix = sp.csr_matrix(matrix, copy=True)
    matrix.sort_indices()
    indptr = matrix.indptr
    if order == "score":
        # decreasing score, ties to the lower column (the metrics' rule)
        rows = np.repeat(np.arange(matrix.shape[0]), np.diff(indptr))
        perm = np.lexsort((matrix.indices, -matrix.data, rows))
        cols, vals = matrix.indices[perm], matrix.data[perm]
    else:
        cols, vals = matrix.indices, matrix.data
    # plain Python numbers format several times faster than numpy scalars
    pairs = [f"{c}:{fmt % v}" for c, v in zip(cols.tolist(), vals.tolist())]
    return [" ".join(pairs[a:b]) for a, b in itertools.pairwise(indptr.tolist())]


def _value_format(dtype) -> str:
    # shortest decimal widths that read back to the same float
    return "%.9g" if np.dtype(dtype).itemsize <= 4 else "%.17g"


def dump_xc_matrix(matrix, path, *, order="column"):
    """Write a sparse matrix in the Extreme Classification Repository format.

    A header ``n_rows n_columns``, then one line per row of ``column:value``
    pairs: the format of the repository's split files (``trn_X_Xf.txt``,
    ``trn_X_Y.txt``, ...) and of its prediction (score) files. Values are
    written with enough digits to read back exactly (9 significant digits for
    float32, 17 for float64); integer and boolean matrices are written as
    integers.

    Parameters
    ----------
    matrix : {array-like, sparse matrix} of shape (n_rows, n_columns)
        The matrix; only stored entries are written.
    path : str or path-like
        The file to write (overwritten).
    order : {"column", "score"}, default="column"
        Order of the pairs on a line: by column id, or by decreasing value
        (ties to the lower column id), as a prediction file lists its labels
        best first.

    See Also
    --------
    load_xc_matrix : Read this format.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from skxmc.datasets import dump_xc_matrix
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "scores.txt"
    >>> scores = np.array([[0.0, 0.9, 0.5], [0.2, 0.0, 0.0]], dtype=np.float32)
    >>> dump_xc_matrix(scores, path, order="score")
    >>> print(path.read_text(), end="")
    2 3
    1:0.899999976 2:0.5
    0:0.200000003
    """
    if order not in ("column", "score"):
        raise ValueError(f"order must be 'column' or 'score', got {order!r}.")
    matrix = sp.csr_matrix(matrix)
    kind = matrix.dtype.kind
    fmt = "%d" if kind in "biu" else _value_format(matrix.dtype)
    lines = _row_strings(matrix, fmt, order)
    with open(os.fspath(path), "w", encoding="ascii") as f:
        f.write(f"{matrix.shape[0]} {matrix.shape[1]}\n")
        for line in lines:
            f.write(line + "\n")


def load_xc_file(path):
    """Load a data set file in the single-file format (``train.txt``).

    The header is ``n_rows n_features n_labels``; each line is
    ``l1,l2,... f:v f:v ...`` with 0-based ids (a row without labels starts
    with a space). :func:`load_xc_repo` reads such files found under their
    usual names; this function reads one file of any name.

    Parameters
    ----------
    path : str or path-like
        The file (gzip-compressed or not).

    Returns
    -------
    X : csr_matrix of shape (n_rows, n_features), float32
        The features.
    Y : csr_matrix of shape (n_rows, n_labels), float32
        The 0/1 label matrix.

    Raises
    ------
    ValueError
        For a malformed file, naming the file and the line.

    See Also
    --------
    dump_xc_file : Write this format.
    load_xc_matrix : Load the split files (``trn_X_Xf.txt``, ``trn_X_Y.txt``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from skxmc.datasets import load_xc_file
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.txt"
    >>> _ = path.write_text("2 3 2\\n1 0:0.5 2:1\\n 1:2\\n")
    >>> X, Y = load_xc_file(path)
    >>> X.toarray(), Y.toarray()
    (array([[0.5, 0. , 1. ],
           [0. , 2. , 0. ]], dtype=float32), array([[0., 1.],
           [0., 0.]], dtype=float32))
    """
    path = Path(path)
    if header_fields(path) != 3:
        _header(_read_bytes(path), path, 3, "n_rows n_features n_labels")
    return _read_bow(path)


def dump_xc_file(X, Y, path):
    """Write features and labels in the single-file format (``train.txt``).

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_rows, n_features)
        The features; stored entries are written with enough digits to read
        back exactly as float32.
    Y : {array-like, sparse matrix} of shape (n_rows, n_labels)
        The labels; the stored (nonzero) entries of a row are its labels.
    path : str or path-like
        The file to write (overwritten).

    See Also
    --------
    load_xc_file : Read this format.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from skxmc.datasets import dump_xc_file
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "train.txt"
    >>> X = np.array([[0.5, 0, 1], [0, 2, 0]], dtype=np.float32)
    >>> Y = np.array([[0, 1], [0, 0]])
    >>> dump_xc_file(X, Y, path)
    >>> print(path.read_text(), end="")
    2 3 2
    1 0:0.5 2:1
     1:2
    """
    X = sp.csr_matrix(X, dtype=np.float32)
    Y = sp.csr_matrix(Y)
    Y.eliminate_zeros()
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"X and Y have different numbers of rows: {X.shape[0]} and {Y.shape[0]}."
        )
    features = _row_strings(X, "%.9g", "column")
    with open(os.fspath(path), "w", encoding="ascii") as f:
        f.write(f"{X.shape[0]} {X.shape[1]} {Y.shape[1]}\n")
        for i, feats in enumerate(features):
            row = np.sort(Y.indices[Y.indptr[i] : Y.indptr[i + 1]])
            labels = ",".join(map(str, row))
            if labels:
                line = labels + (" " + feats if feats else "")
            else:
                line = " " + feats  # a row without labels starts with a space
            f.write(line + "\n")
