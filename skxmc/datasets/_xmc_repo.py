"""Reader for the file formats of the Extreme Classification Repository.

The repository (http://manikvarma.org/downloads/XC/XMLRepository.html) ships two
families of data sets:

* sparse bag-of-words sets (Bibtex, Delicious, EURLex-4K, ...) as ``train.txt`` /
  ``test.txt`` with a ``n_points n_features n_labels`` header, plus ``Xf.txt``
  (feature names) and ``Yf.txt`` (label names);
* "LF" sets with label text (LF-AmazonTitles-131K, ...) as JSON lines
  ``trn.json`` / ``tst.json`` / ``lbl.json``, plus the reciprocal-pair files
  ``filter_labels_train.txt`` / ``filter_labels_test.txt``.

Every file may be gzip-compressed (``name.gz``). Malformed files raise
:class:`ValueError` naming the file and the line.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import os
import warnings
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import load_svmlight_file
from sklearn.utils import Bunch

__all__ = ["load_xc_repo"]

#: Largest id or count a file may hold (ids and counts are stored as int64).
_MAX_INT = int(np.iinfo(np.int64).max) - 1
#: Largest magnitude a feature value may have (values are stored as float32).
_FLOAT32_MAX = float(np.finfo(np.float32).max)

# Canonical file names (without ".gz"), in the order they are read.
_FILE_NAMES = (
    "lbl.json",
    "Yf.txt",
    "Xf.txt",
    "train.txt",
    "test.txt",
    "trn.json",
    "tst.json",
    "filter_labels_train.txt",
    "filter_labels_test.txt",
)


# --------------------------------------------------------------------------- #
# File discovery and raw reading
# --------------------------------------------------------------------------- #
def _canonical_name(name: str) -> str | None:
    """``"train.txt.gz"`` -> ``"train.txt"``; None for unknown names."""
    if name.endswith(".gz"):
        name = name[:-3]
    return name if name in _FILE_NAMES else None


def _resolve_files(path_or_files: Any) -> dict[str, Path]:
    """Map canonical file names to existing paths."""
    expected = ", ".join(_FILE_NAMES)
    found: dict[str, Path] = {}
    if isinstance(path_or_files, Mapping):
        for key, value in path_or_files.items():
            name = _canonical_name(str(key))
            if name is None:
                raise ValueError(
                    f"Unknown key {key!r} in the file mapping; expected one of: "
                    f"{expected} (optionally ending in '.gz')."
                )
            if value is None:
                continue
            if name in found:
                raise ValueError(f"File {name!r} given twice in the file mapping.")
            found[name] = Path(value)
    elif isinstance(path_or_files, (str, os.PathLike)) and Path(path_or_files).is_dir():
        folder = Path(path_or_files)
        for name in _FILE_NAMES:
            candidates = [folder / name, folder / (name + ".gz")]
            present = [p for p in candidates if p.is_file()]
            if len(present) == 2:
                raise ValueError(
                    f"Both {present[0]} and {present[1]} exist; keep only one of "
                    "them or pass the files explicitly."
                )
            if present:
                found[name] = present[0]
        if not found:
            raise FileNotFoundError(
                f"No Extreme Classification Repository file found in {folder}; "
                f"expected any of: {expected} (optionally ending in '.gz')."
            )
        return found
    else:
        if isinstance(path_or_files, (str, os.PathLike)):
            if not Path(path_or_files).exists():
                raise FileNotFoundError(
                    f"No such file or folder: {path_or_files} does not exist "
                    "(expected a folder of Extreme Classification Repository files, "
                    f"or one such file: {expected}, optionally ending in '.gz')."
                )
            paths: Iterable[Any] = [path_or_files]
        elif isinstance(path_or_files, Iterable):
            paths = path_or_files
        else:
            raise TypeError(
                "path_or_files must be a directory, a file path, a list of file "
                "paths or a mapping from file name to path; got "
                f"{type(path_or_files).__name__}."
            )
        for value in paths:
            path = Path(value)
            name = _canonical_name(path.name)
            if name is None:
                raise ValueError(
                    f"Cannot tell what {path} holds from its name; expected one "
                    f"of: {expected} (optionally ending in '.gz'). Pass a mapping "
                    "{name: path} to load files with other names."
                )
            if name in found:
                raise ValueError(f"Two files given for {name!r}: {found[name]}, {path}")
            found[name] = path
    if not found:
        raise ValueError("No file given.")
    for path in found.values():
        if not path.is_file():
            raise FileNotFoundError(f"No such file: {path}")
    return found


def _read_bytes(path: Path) -> bytes:
    """Whole file content, gunzipped when it starts with the gzip magic bytes."""
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        if head == b"\x1f\x8b":
            try:
                with gzip.GzipFile(fileobj=f) as gz:
                    return gz.read()
            except (EOFError, OSError, zlib.error) as exc:
                # EOFError: truncated; BadGzipFile (an OSError): bad header or
                # CRC; zlib.error: corrupt compressed data
                raise ValueError(
                    f"{path}: truncated or corrupt gzip file "
                    f"({type(exc).__name__}: {exc})."
                ) from exc
        return f.read()


def _decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ValueError(
            f"{path}, line {line}: not valid UTF-8 text ({exc})."
        ) from None


def _split_lines(raw: bytes) -> list[bytes]:
    """Split on newlines; a final newline does not start an extra line."""
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def _err(path: Path, line: int, message: str) -> ValueError:
    return ValueError(f"{path}, line {line}: {message}")


def _short(token: bytes | str, limit: int = 60) -> str:
    if isinstance(token, bytes):
        token = token.decode("utf-8", errors="replace")
    return repr(token if len(token) <= limit else token[:limit] + "...")


def _parse_int(token: bytes, path: Path, line: int, what: str) -> int:
    """Non-negative integer, accepting integral floats such as ``5.0e+01``."""
    try:
        value = int(token)
    except ValueError:
        try:
            number = float(token)
        except ValueError:
            raise _err(path, line, f"{what} {_short(token)} is not a number.") from None
        if not np.isfinite(number) or number != int(number):
            raise _err(path, line, f"{what} {_short(token)} is not an integer.")
        value = int(number)
    if value < 0:
        raise _err(path, line, f"{what} {_short(token)} is negative.")
    if value > _MAX_INT:
        raise _err(
            path, line, f"{what} {_short(token)} is too large (at most {_MAX_INT})."
        )
    return value


def _indicator(
    indptr: np.ndarray, indices: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """0/1 float32 CSR from row pointers and column ids (duplicates merged)."""
    data = np.ones(len(indices), dtype=np.float32)
    matrix = sp.csr_matrix(
        (data, indices.astype(np.int64, copy=False), indptr.astype(np.int64)),
        shape=shape,
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


# --------------------------------------------------------------------------- #
# Sparse bag-of-words text format (train.txt / test.txt)
# --------------------------------------------------------------------------- #
def _parse_header(raw: bytes, path: Path) -> tuple[tuple[int, int, int], bytes]:
    end = raw.find(b"\n")
    header, body = (raw, b"") if end < 0 else (raw[:end], raw[end + 1 :])
    parts = header.split()
    message = (
        "expected the header 'n_points n_features n_labels' (three non-negative "
        f"integers), got {_short(header.strip())}."
    )
    if len(parts) != 3:
        raise _err(path, 1, message)
    try:
        counts = tuple(int(p) for p in parts)
    except ValueError:
        raise _err(path, 1, message) from None
    if min(counts) < 0 or max(counts) > _MAX_INT:
        raise _err(path, 1, message)
    return counts, body  # type: ignore[return-value]


def _svmlight_or_none(body: bytes, n_rows: int, n_features: int, dtype):
    """sklearn's compiled svmlight reader on ``body``: ``(X, labels)``, or None
    when it fails, finds another number of rows or a non-finite value (the
    caller then runs its exact parser, which names the offending line)."""
    try:
        X, labels = load_svmlight_file(
            io.BytesIO(body),
            n_features=n_features,
            dtype=dtype,
            multilabel=True,
            zero_based=True,
        )
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    if X.shape[0] != n_rows or not np.all(np.isfinite(X.data)):
        return None
    return X, labels


def _bow_fast(
    body: bytes, n_points: int, n_features: int, n_labels: int
) -> tuple[sp.csr_matrix, sp.csr_matrix] | None:
    """sklearn's Cython svmlight reader; None when anything looks unusual.

    The reader skips blank lines, strips ``#`` comments and treats ``qid:``
    specially, and it does not report line numbers; whenever the result cannot
    be trusted to match the format, the caller falls back to the exact Python
    parser, which either succeeds or names the offending line.
    """
    if n_features == 0 or b"#" in body or b"qid" in body:
        return None
    read = _svmlight_or_none(body, n_points, n_features, np.float32)
    if read is None:
        return None
    X, labels = read
    lengths = np.fromiter(map(len, labels), dtype=np.int64, count=len(labels))
    flat = np.fromiter(
        itertools.chain.from_iterable(labels), dtype=np.float64, count=lengths.sum()
    )
    if flat.size and (
        not np.all(np.isfinite(flat))
        or np.any(flat != np.floor(flat))
        or flat.min() < 0
        or flat.max() >= n_labels
    ):
        return None
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    Y = _indicator(indptr, flat.astype(np.int64), (n_points, n_labels))
    X = sp.csr_matrix(X, dtype=np.float32)
    X.sort_indices()
    return X, Y


def _bow_exact(
    body: bytes, path: Path, n_points: int, n_features: int, n_labels: int
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Line-by-line parser with precise error messages (line 1 is the header)."""
    lines = _split_lines(body)
    label_ptr, label_ids = [0], []
    feat_ptr, feat_ids, values = [0], [], []
    for offset, line in enumerate(lines):
        lineno = offset + 2
        if offset >= n_points:
            if line.strip():
                raise _err(
                    path,
                    lineno,
                    f"more data lines than the {n_points} announced by the header "
                    "on line 1.",
                )
            continue
        parts = line.split()
        if parts and b":" not in parts[0]:
            label_field, feature_tokens = parts[0], parts[1:]
            for token in label_field.split(b","):
                label = _parse_int(token, path, lineno, "label id")
                if label >= n_labels:
                    raise _err(
                        path,
                        lineno,
                        f"label id {label} out of range: the header says "
                        f"n_labels={n_labels}.",
                    )
                label_ids.append(label)
        else:
            feature_tokens = parts
        for token in feature_tokens:
            idx_s, colon, val_s = token.partition(b":")
            if not colon:
                raise _err(
                    path, lineno, f"expected 'feature:value', got {_short(token)}."
                )
            idx = _parse_int(idx_s, path, lineno, "feature id")
            if idx >= n_features:
                raise _err(
                    path,
                    lineno,
                    f"feature id {idx} out of range: the header says "
                    f"n_features={n_features}.",
                )
            try:
                value = float(val_s)
            except ValueError:
                raise _err(
                    path, lineno, f"feature value {_short(val_s)} is not a number."
                ) from None
            if not np.isfinite(value):
                raise _err(
                    path, lineno, f"feature value {_short(val_s)} is not finite."
                )
            if abs(value) > _FLOAT32_MAX and not _fits_float32(value):
                raise _err(
                    path,
                    lineno,
                    f"feature value {_short(val_s)} overflows float32 (largest "
                    f"magnitude {_FLOAT32_MAX:.7g}).",
                )
            feat_ids.append(idx)
            values.append(value)
        label_ptr.append(len(label_ids))
        feat_ptr.append(len(feat_ids))
    n_read = len(label_ptr) - 1
    if n_read < n_points:
        raise _err(
            path,
            len(lines) + 1,
            f"the file ends after {n_read} data lines but the header on line 1 "
            f"announces n_points={n_points}.",
        )
    X = sp.csr_matrix(
        (
            np.asarray(values, dtype=np.float32),
            np.asarray(feat_ids, dtype=np.int64),
            np.asarray(feat_ptr, dtype=np.int64),
        ),
        shape=(n_points, n_features),
    )
    X.sum_duplicates()  # a feature repeated on a line: values are added
    Y = _indicator(
        np.asarray(label_ptr),
        np.asarray(label_ids, dtype=np.int64),
        (n_points, n_labels),
    )
    return X, Y


def _fits_float32(value: float) -> bool:
    with np.errstate(over="ignore"):
        return bool(np.isfinite(np.float32(value)))


def _read_bow(path: Path) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    raw = _read_bytes(path)
    (n_points, n_features, n_labels), body = _parse_header(raw, path)
    result = _bow_fast(body, n_points, n_features, n_labels)
    if result is None:
        result = _bow_exact(body, path, n_points, n_features, n_labels)
    return result


# --------------------------------------------------------------------------- #
# JSON lines (trn.json / tst.json / lbl.json)
# --------------------------------------------------------------------------- #
def _read_json_lines(path: Path, *, with_targets: bool) -> dict[str, Any]:
    text = _decode(_read_bytes(path), path)
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    uids, titles, texts = [], [], []
    target_ptr, targets = [0], []
    for offset, line in enumerate(lines):
        lineno = offset + 1
        if not line.strip():
            raise _err(path, lineno, "empty line (one JSON object per line expected).")
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _err(path, lineno, f"invalid JSON ({exc.msg}).") from None
        if not isinstance(record, dict):
            raise _err(path, lineno, "expected a JSON object.")
        title = record.get("title")
        if not isinstance(title, str):
            raise _err(path, lineno, "missing or non-string 'title'.")
        content = record.get("content")
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise _err(path, lineno, "'content' is not a string.")
        uids.append(record.get("uid"))
        titles.append(title)
        texts.append(f"{title} {content}" if content else title)
        if with_targets:
            ids = record.get("target_ind")
            if not isinstance(ids, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids
            ):
                raise _err(
                    path,
                    lineno,
                    "'target_ind' must be a list of non-negative integer label ids.",
                )
            if ids and max(ids) > _MAX_INT:
                raise _err(
                    path,
                    lineno,
                    f"label id {max(ids)} in 'target_ind' is too large (at most "
                    f"{_MAX_INT}).",
                )
            targets.extend(ids)
            target_ptr.append(len(targets))
    out: dict[str, Any] = {"uid": uids, "title": titles, "text": texts}
    if with_targets:
        out["indptr"] = np.asarray(target_ptr, dtype=np.int64)
        out["indices"] = np.asarray(targets, dtype=np.int64)
    return out


def _check_targets(parsed: dict[str, Any], path: Path, n_labels: int) -> None:
    indices = parsed["indices"]
    bad = np.flatnonzero(indices >= n_labels)
    if bad.size:
        row = int(np.searchsorted(parsed["indptr"], bad[0], side="right")) - 1
        raise _err(
            path,
            row + 1,
            f"label id {int(indices[bad[0]])} in 'target_ind' out of range: "
            f"there are {n_labels} labels.",
        )


# --------------------------------------------------------------------------- #
# Names (Xf.txt / Yf.txt) and filter files
# --------------------------------------------------------------------------- #
def _read_names(path: Path) -> list[str]:
    names = []
    for offset, line in enumerate(_split_lines(_read_bytes(path))):
        try:
            names.append(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise _err(path, offset + 1, f"not valid UTF-8 text ({exc}).") from None
    return names


def _read_pairs(path: Path) -> np.ndarray:
    """``row label`` pairs as an int64 array of shape (n_pairs, 2)."""
    raw = _read_bytes(path)
    if not raw.strip():
        return np.zeros((0, 2), dtype=np.int64)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            pairs = np.loadtxt(
                io.BytesIO(raw), dtype=np.float64, ndmin=2, comments=None
            )
        if (
            pairs.shape[1] == 2
            and np.all(np.isfinite(pairs))
            and np.all(pairs >= 0)
            and np.all(pairs == np.floor(pairs))
            and pairs.max() < 2**53
        ):
            return pairs.astype(np.int64)
    except (ValueError, UserWarning):
        pass
    # Exact parser: same result, or an error naming the line.
    rows = []
    for offset, line in enumerate(_split_lines(raw)):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise _err(
                path,
                offset + 1,
                f"expected two numbers 'row label', got {_short(line.strip())}.",
            )
        rows.append(
            (
                _parse_int(parts[0], path, offset + 1, "row id"),
                _parse_int(parts[1], path, offset + 1, "label id"),
            )
        )
    return np.asarray(rows, dtype=np.int64).reshape(-1, 2)


def _pairs_to_csr(
    pairs: np.ndarray, path: Path, n_rows: int | None, n_labels: int | None
) -> sp.csr_matrix:
    for column, size, what in (
        (0, n_rows, "row (document) id"),
        (1, n_labels, "label id"),
    ):
        if size is None or not len(pairs):
            continue
        bad = np.flatnonzero(pairs[:, column] >= size)
        if bad.size:
            value = int(pairs[bad[0], column])
            line = _line_of_pair(_read_bytes(path), int(bad[0]))
            raise _err(
                path,
                line,
                f"{what} {value} out of range: there are {size} "
                f"{'documents' if column == 0 else 'labels'}.",
            )
    shape = (
        n_rows if n_rows is not None else int(pairs[:, 0].max(initial=-1)) + 1,
        n_labels if n_labels is not None else int(pairs[:, 1].max(initial=-1)) + 1,
    )
    order = np.argsort(pairs[:, 0], kind="stable")
    counts = np.bincount(pairs[:, 0], minlength=shape[0])
    indptr = np.concatenate([[0], np.cumsum(counts)])
    return _indicator(indptr, pairs[order, 1], shape)


def _line_of_pair(raw: bytes, index: int) -> int:
    """1-based line number of the ``index``-th non-blank line."""
    seen = -1
    for offset, line in enumerate(_split_lines(raw)):
        if line.strip():
            seen += 1
            if seen == index:
                return offset + 1
    return seen + 1  # pragma: no cover - index always exists


# --------------------------------------------------------------------------- #
# Public loader
# --------------------------------------------------------------------------- #
def _agree(sources: dict[str, int], what: str) -> int | None:
    values = set(sources.values())
    if len(values) > 1:
        detail = ", ".join(f"{name}: {value}" for name, value in sources.items())
        raise ValueError(f"The files disagree on the number of {what} ({detail}).")
    return values.pop() if values else None


def load_xc_repo(path_or_files, *, n_labels=None):
    """Load a data set stored in the Extreme Classification Repository formats.

    Reads the sparse bag-of-words files (``train.txt``, ``test.txt``, with
    ``Xf.txt`` feature names and ``Yf.txt`` label names) and the raw "LF" files
    with label text (``trn.json``, ``tst.json``, ``lbl.json``), plus the
    reciprocal-pair filter files (``filter_labels_train.txt``,
    ``filter_labels_test.txt``). Every file may be gzip-compressed with a
    ``.gz`` suffix.

    Parameters
    ----------
    path_or_files : str, path-like, list of paths or mapping
        Either a directory, from which every file among ``train.txt``,
        ``test.txt``, ``trn.json``, ``tst.json``, ``lbl.json``, ``Xf.txt``,
        ``Yf.txt``, ``filter_labels_train.txt`` and ``filter_labels_test.txt``
        (each optionally ending in ``.gz``) that exists is loaded; or a list of
        file paths named like those; or a mapping from one of those names to a
        path (any file name), e.g. ``{"train.txt": "bibtex_train.txt"}``. Files
        named otherwise in a directory are ignored.
    n_labels : int, default=None
        Number of labels. Needed only when no file tells it (no ``lbl.json``,
        ``Yf.txt`` or bag-of-words header); then it defaults to the largest
        label id seen (in ``target_ind`` fields, else in the filter files) plus
        one. When given, every file must agree with it.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following keys; a key whose file is
        absent is ``None``.

        X_train, X_test : csr_matrix of shape (n_samples, n_features), float32
            Bag-of-words features from ``train.txt`` / ``test.txt``.
        Y_train, Y_test : csr_matrix of shape (n_samples, n_labels), float32
            0/1 label indicator matrices, from ``train.txt`` / ``test.txt`` or
            from the ``target_ind`` field of ``trn.json`` / ``tst.json``.
            Rows may be empty (points without labels).
        text_train, text_test : list of str
            Document text from ``trn.json`` / ``tst.json``: ``title + " " +
            content``, or just the title when the content is missing or empty.
        title_train, title_test : list of str
            The ``title`` field alone.
        uid_train, uid_test : list
            The ``uid`` field of each document (``None`` where missing).
        label_text, label_title, label_uid : list
            From ``lbl.json`` (line i is label i): text built like the document
            text, the title, and the uid. Without ``lbl.json``, ``label_text``
            and ``label_title`` are the lines of ``Yf.txt`` and ``label_uid``
            is ``None``.
        feature_names : list of str
            Lines of ``Xf.txt`` (line i names feature i).
        filter_train, filter_test : csr_matrix of shape (n_samples, n_labels), float32
            The (document, label) pairs of the filter files as 0/1 matrices:
            pairs to remove from both predictions and ground truth before
            scoring. The number of rows is that of the matching split when a
            split file is loaded, else the largest document id plus one.
        n_labels : int or None
            The number of labels.

    Raises
    ------
    ValueError
        For a malformed file, with the file and line number (bad header, a
        line count that differs from the header, an out-of-range, too large
        or non-numeric id, a feature value that is not finite or overflows
        float32, invalid JSON, ...), a truncated or corrupt gzip file (named),
        or when two files disagree on a count (number of labels, features or
        documents).
    FileNotFoundError
        For a folder or file that does not exist, or a folder without any of
        the expected files.

    Notes
    -----
    Bag-of-words lines are ``l1,l2,... f:v f:v ...`` with 0-based ids; a point
    without labels starts with a space. Filter files hold one ``doc label``
    pair per line; integral floats such as ``5.4982e+04`` are accepted, as
    written by ``numpy.savetxt``. ``lbl.json`` takes precedence over
    ``Yf.txt`` for the label text (both must then have the same number of
    lines). A label id repeated for one document is counted once (``Y`` is
    0/1); a feature id repeated on one line has its values added. When both
    ``train.txt`` and ``trn.json`` are given, ``X_train`` comes from the
    former, the text from the latter, and their labels must be identical
    (likewise for the test files).

    Well-formed bag-of-words files are read by scikit-learn's compiled
    svmlight reader (:func:`~sklearn.datasets.load_svmlight_file`); anything
    it would read differently (blank lines, ``#``, ``qid:``, unsorted feature
    ids, ...) or reject goes through an exact line parser, which either
    accepts the file or reports the offending line.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from skxmc.datasets import load_xc_repo
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "train.txt").write_text("2 4 3\\n0,2 0:1 3:0.5\\n 1:2\\n")
    >>> data = load_xc_repo(folder)
    >>> data.X_train.toarray()
    array([[1. , 0. , 0. , 0.5],
           [0. , 2. , 0. , 0. ]], dtype=float32)
    >>> data.Y_train.toarray()
    array([[1., 0., 1.],
           [0., 0., 0.]], dtype=float32)
    >>> data.n_labels, data.X_test is None
    (3, True)
    """
    files = _resolve_files(path_or_files)
    label_sources: dict[str, int] = {}
    if n_labels is not None:
        if isinstance(n_labels, bool) or not isinstance(n_labels, (int, np.integer)):
            raise TypeError(f"n_labels must be an int, got {n_labels!r}.")
        if n_labels < 0:
            raise ValueError(f"n_labels must be non-negative, got {n_labels}.")
        label_sources["n_labels argument"] = int(n_labels)

    out = Bunch(
        X_train=None,
        Y_train=None,
        text_train=None,
        title_train=None,
        uid_train=None,
        X_test=None,
        Y_test=None,
        text_test=None,
        title_test=None,
        uid_test=None,
        label_text=None,
        label_title=None,
        label_uid=None,
        feature_names=None,
        filter_train=None,
        filter_test=None,
        n_labels=None,
    )

    if "lbl.json" in files:
        labels = _read_json_lines(files["lbl.json"], with_targets=False)
        out.label_text, out.label_title = labels["text"], labels["title"]
        out.label_uid = labels["uid"]
        label_sources[str(files["lbl.json"])] = len(labels["uid"])
    if "Yf.txt" in files:
        names = _read_names(files["Yf.txt"])
        label_sources[str(files["Yf.txt"])] = len(names)
        if out.label_text is None:
            out.label_text, out.label_title = names, list(names)
    feature_sources: dict[str, int] = {}
    if "Xf.txt" in files:
        out.feature_names = _read_names(files["Xf.txt"])
        feature_sources[str(files["Xf.txt"])] = len(out.feature_names)

    row_sources: dict[str, dict[str, int]] = {"train": {}, "test": {}}
    for split, name in (("train", "train.txt"), ("test", "test.txt")):
        if name in files:
            X, Y = _read_bow(files[name])
            out[f"X_{split}"], out[f"Y_{split}"] = X, Y
            label_sources[f"header of {files[name]}"] = Y.shape[1]
            feature_sources[f"header of {files[name]}"] = X.shape[1]
            row_sources[split][str(files[name])] = X.shape[0]
    _agree(feature_sources, "features")
    n_labels = _agree(label_sources, "labels")

    parsed = {}
    for split, name in (("train", "trn.json"), ("test", "tst.json")):
        if name in files:
            parsed[split] = _read_json_lines(files[name], with_targets=True)
            row_sources[split][str(files[name])] = len(parsed[split]["uid"])
    n_rows = {
        split: _agree(row_sources[split], f"{split} documents") for split in row_sources
    }
    if n_labels is None and parsed:
        n_labels = max(int(p["indices"].max(initial=-1)) + 1 for p in parsed.values())
    for split, name in (("train", "trn.json"), ("test", "tst.json")):
        if split not in parsed:
            continue
        p = parsed[split]
        _check_targets(p, files[name], n_labels)
        Y = _indicator(p["indptr"], p["indices"], (len(p["uid"]), n_labels))
        if out[f"Y_{split}"] is not None and (out[f"Y_{split}"] != Y).nnz:
            raise ValueError(
                f"The labels of {files[name]} differ from those of "
                f"{files[split + '.txt']}."
            )
        out[f"Y_{split}"] = Y
        out[f"text_{split}"], out[f"title_{split}"] = p["text"], p["title"]
        out[f"uid_{split}"] = p["uid"]

    pairs = {}
    for split in ("train", "test"):
        name = f"filter_labels_{split}.txt"
        if name in files:
            pairs[split] = (_read_pairs(files[name]), files[name])
    if n_labels is None and pairs:
        n_labels = max(int(p[:, 1].max(initial=-1)) + 1 for p, _ in pairs.values())
    for split, (p, path) in pairs.items():
        out[f"filter_{split}"] = _pairs_to_csr(p, path, n_rows[split], n_labels)
    out.n_labels = n_labels
    return out
