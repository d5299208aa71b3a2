"""Input validation shared by the estimators: raw text vs numeric X, targets."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import LabelBinarizer, MultiLabelBinarizer
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from skxmc.exceptions import XMCDataWarning

_BARE_STRING_MESSAGE = (
    "Iterable over raw text documents expected, string object received."
)


class _TorchDeviceType(type):
    def __instancecheck__(cls, obj) -> bool:
        torch = sys.modules.get("torch")  # no device exists without torch
        return torch is not None and isinstance(obj, torch.device)


class TorchDevice(metaclass=_TorchDeviceType):
    """``torch.device`` in ``_parameter_constraints`` without importing torch.

    ``isinstance(obj, TorchDevice)`` is ``isinstance(obj, torch.device)`` when
    torch is imported, else False; scikit-learn's messages name it
    ``torch.device``.

    Examples
    --------
    >>> import torch
    >>> from skxmc.utils._validation import TorchDevice
    >>> isinstance(torch.device("cpu"), TorchDevice), isinstance("cpu", TorchDevice)
    (True, False)
    """


TorchDevice.__module__, TorchDevice.__qualname__ = "torch", "device"

#: The ``device`` parameter's constraint: a string (checked by
#: :func:`skxmc.training.resolve_device` at fit time) or a ``torch.device``.
DEVICE_CONSTRAINT = [str, TorchDevice]


def reject_bare_string(X: Any) -> None:
    """Raise sklearn's error for a single string passed where documents are expected."""
    if isinstance(X, (str, bytes)):
        raise ValueError(_BARE_STRING_MESSAGE)


def check_query_row(x: Any, n_features: int, *, estimator: str = "The model"):
    """Validate one query row for a single-query fast path, cheaply.

    Parameters
    ----------
    x : sparse matrix of shape (1, n_features) or array-like of shape \
            (n_features,) or (1, n_features)
        One row of numeric features.
    n_features : int
        Number of features the model was fitted on.
    estimator : str, default="The model"
        Name used in the messages.

    Returns
    -------
    x : csr_matrix or ndarray of shape (1, n_features), dtype float32
        The row, sparse when given sparse.

    Raises
    ------
    ValueError
        For a bare string (sklearn's message), a shape that is not one row of
        ``n_features`` values, and NaN or infinite values (float32 overflow
        included), with the messages of ``predict_topk``.
    TypeError
        For raw text or values that are not numbers.
    """
    reject_bare_string(x)
    if sp.issparse(x):
        if x.ndim != 2 or x.shape[0] != 1:
            raise ValueError(f"Expected one row, got shape {x.shape}.")
        if x.dtype.kind not in "biuf":
            raise TypeError(
                f"{estimator} expects numeric features, got a sparse matrix of "
                f"dtype {x.dtype}."
            )
        if x.format != "csr" or x.dtype != np.float32:
            with np.errstate(over="ignore"):
                x = sp.csr_matrix(x, dtype=np.float32)
        values = x.data
    else:
        if is_raw_text(x):
            raise TypeError(
                f"{estimator} expects numeric features, got raw text. Vectorize "
                "the query first."
            )
        try:
            values = np.asarray(x)
            if values.dtype.kind == "c":
                raise ValueError(
                    "Complex data not supported: the query holds complex numbers."
                )
            with np.errstate(over="ignore"):
                values = values.astype(np.float32)
        except (TypeError, ValueError) as exc:
            if str(exc).startswith("Complex data"):
                raise ValueError(str(exc)) from None
            raise TypeError(
                f"{estimator} expects numeric features; the query could not be "
                f"read as numbers ({exc})."
            ) from None
        if (values.ndim == 2 and values.shape[0] != 1) or values.ndim > 2:
            raise ValueError(f"Expected one row, got shape {values.shape}.")
        x = values.reshape(1, -1)
    if x.shape[1] != n_features:
        raise ValueError(
            f"X has {x.shape[1]} features, but {estimator} is expecting "
            f"{n_features} features as input."
        )
    if not np.isfinite(values).all():
        if np.isnan(values).any():
            raise ValueError("Input X contains NaN.")
        raise ValueError(
            "Input X contains infinity or a value too large for dtype('float32')."
        )
    return x


def check_numeric_rows(X: Any, *, name: str = "X") -> np.ndarray:
    """Read a list of rows (or an object array) as a float64 array, or say why not.

    sklearn's ``check_array`` lets numpy's own conversion errors through for
    such input ("setting an array element with a sequence", "float() argument
    must be ..."). This reads the rows with numpy first (fast) and, only when
    that fails, finds the culprit: a ragged row, or an element that is not a
    real number, named with its position and type. Everything else (NaN,
    infinity, dimensions) is left to ``validate_data``.

    Parameters
    ----------
    X : list, tuple or object ndarray
        Rows of numbers.
    name : str, default="X"
        Name used in the messages.

    Returns
    -------
    X : ndarray of dtype float64

    Examples
    --------
    >>> from skxmc.utils._validation import check_numeric_rows
    >>> check_numeric_rows([[1, 2], [3]])
    Traceback (most recent call last):
    ...
    ValueError: X is ragged: row 1 has 1 values but row 0 has 2.
    """
    try:
        with np.errstate(over="ignore"):
            return np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        cause = str(exc)
    rows = X.tolist() if isinstance(X, np.ndarray) else list(X)

    def is_row(value):
        return isinstance(value, (Sequence, np.ndarray)) and not isinstance(
            value, (str, bytes)
        )

    def is_number(value):
        return isinstance(value, (Real, np.number, np.bool_)) and not isinstance(
            value, (complex, np.complexfloating)
        )

    first = rows[0] if rows else None
    for i, row in enumerate(rows):
        if is_row(row) != is_row(first):
            raise ValueError(
                f"{name} mixes rows and single values: element 0 is "
                f"{type(first).__name__}, element {i} is {type(row).__name__}."
            )
        if is_row(row):
            if len(row) != len(first):
                raise ValueError(
                    f"{name} is ragged: row {i} has {len(row)} values but row 0 "
                    f"has {len(first)}."
                )
            for j, value in enumerate(row):
                if not is_number(value):
                    raise TypeError(
                        f"{name}[{i}][{j}] is {type(value).__name__} "
                        f"({_describe(value)}), not a real number ({cause})."
                    )
        elif not is_number(row):
            raise TypeError(
                f"{name}[{i}] is {type(row).__name__} ({_describe(row)}), not a "
                f"real number ({cause})."
            )
    raise ValueError(f"{name} could not be read as an array of numbers: {cause}")


def is_raw_text(X: Any) -> bool:
    """True for a 1-D sequence (list, tuple, ndarray, Series) of str."""
    reject_bare_string(X)
    if sp.issparse(X):
        return False
    if hasattr(X, "iloc") and getattr(X, "ndim", 1) == 1:  # pandas Series
        X = X.to_numpy()
    if isinstance(X, np.ndarray):
        return (
            X.ndim == 1
            and X.dtype.kind in "OUS"
            and X.size > 0
            and isinstance(X.flat[0], (str, np.str_))
        )
    if isinstance(X, (list, tuple)):
        return len(X) > 0 and isinstance(X[0], str)
    return False


def looks_like_text(X: Any) -> bool:
    """True when ``X`` is (an attempt at) raw text rather than numeric features.

    Any str or bytes element makes a list, tuple, 1-D object array or pandas
    Series text (so ``[nan, "text"]`` and ``[1, "text"]`` are read as text
    with a bad element, not as numbers); so do str/bytes arrays of any shape,
    DataFrames with a text column, and one-shot iterators (generators), which
    numeric validation cannot read either. :func:`check_text` then names
    what is wrong.
    """
    if isinstance(X, (str, bytes)):
        return True
    if sp.issparse(X):
        return False
    if hasattr(X, "iloc"):  # pandas
        if getattr(X, "ndim", 1) != 1:  # a DataFrame: text if a column holds str
            return any(
                isinstance(v, (str, bytes))
                for j, dtype in enumerate(X.dtypes)
                if getattr(dtype, "kind", "O") in "OUS"
                for v in X.iloc[:, j]
            )
        X = X.to_numpy()
    if isinstance(X, np.ndarray):
        if X.dtype.kind in "US":
            return True
        return X.dtype.kind == "O" and any(isinstance(v, (str, bytes)) for v in X.flat)
    if isinstance(X, (list, tuple)):
        return any(isinstance(v, (str, bytes)) for v in X)
    return isinstance(X, Iterator)


def is_empty_sequence(X: Any) -> bool:
    """True for an empty list, tuple, 1-D array or Series (no sample at all)."""
    if sp.issparse(X) or isinstance(X, (str, bytes)):
        return False
    if isinstance(X, (list, tuple)):
        return len(X) == 0
    if isinstance(X, np.ndarray) or hasattr(X, "iloc"):
        return getattr(X, "ndim", 1) == 1 and len(X) == 0
    return False


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_text(X: Any, *, name: str = "X", what: str = "document") -> list[str]:
    """Validate raw text and return it as a list of str.

    Every element is checked (not only the first), and an error names the
    first bad element, its index and its type.

    Parameters
    ----------
    X : sequence of str
        A list, tuple, 1-D array or pandas Series of str.
    name : str, default="X"
        Name of the argument, used in the messages.
    what : str, default="document"
        What one element is, used in the messages.

    Returns
    -------
    texts : list of str
        The texts, in order. Lone surrogates (``"\\ud800"``, left by a broken
        decoding) are accepted and passed through unchanged, as the TF-IDF
        vectorizers read them; :func:`skxmc.nn._transformer.tokenize` replaces
        them with U+FFFD before a tokenizer sees them.

    Raises
    ------
    ValueError
        For a bare string (sklearn's message), an empty sequence, or an
        array or DataFrame that is not 1-D (an ``(n, 1)`` array of str).
    TypeError
        For an element that is not a str (``None``, a number, NaN, bytes,
        a list), a one-shot iterator such as a generator, or an object that is
        not a sequence.

    Examples
    --------
    >>> from skxmc.utils._validation import check_text
    >>> check_text(("red apple", "green pear"))
    ['red apple', 'green pear']
    >>> check_text(["red apple", float("nan")])
    Traceback (most recent call last):
    ...
    TypeError: X must be a sequence of str (...); element 1 is float (nan).
    """
    if isinstance(X, (str, bytes)):
        if name == "X":
            raise ValueError(_BARE_STRING_MESSAGE)
        raise ValueError(
            f"{name} must be a sequence of str (one {what} each), got a single "
            f"{type(X).__name__}."
        )
    if sp.issparse(X):
        raise TypeError(
            f"{name} must be a sequence of str (one {what} each), got a sparse matrix."
        )
    if isinstance(X, Iterator):
        raise TypeError(
            f"{name} is a {type(X).__name__}: pass a list, tuple, array or "
            "pandas Series (raw text and features are read more than once); "
            f"e.g. list({name})."
        )
    if hasattr(X, "iloc"):  # pandas
        if getattr(X, "ndim", 1) != 1:
            raise ValueError(
                f"{name} must be one-dimensional (one {what} per row), got a "
                f"{type(X).__name__} of shape {X.shape}; select the text column, "
                f"e.g. {name}['text']."
            )
        X = X.to_numpy()
    if isinstance(X, np.ndarray) and X.ndim != 1:
        hint = f"; pass {name}.ravel()" if X.ndim == 2 and 1 in X.shape[:2] else ""
        raise ValueError(
            f"{name} must be one-dimensional (one {what} per row), got an array "
            f"of shape {X.shape}{hint}."
        )
    if not isinstance(X, (Sequence, np.ndarray)):
        raise TypeError(
            f"{name} must be a sequence of str (one {what} each), got "
            f"{type(X).__name__}."
        )
    texts = X.tolist() if isinstance(X, np.ndarray) else list(X)
    if not texts:
        raise ValueError(
            f"{name} holds no {what} (an empty sequence); at least 1 is required."
        )
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            hint = (
                f"; decode bytes first, e.g. [t.decode('utf-8') for t in {name}]"
                if isinstance(text, bytes)
                else ""
            )
            raise TypeError(
                f"{name} must be a sequence of str (one {what} each); element {i} "
                f"is {type(text).__name__} ({_describe(text)}){hint}."
            )
    return texts


def check_label_text(label_text: Any) -> list[str]:
    """Validate the label texts given to ``add_labels`` (as :func:`check_text`).

    Parameters
    ----------
    label_text : sequence of str
        One text per new label.

    Returns
    -------
    label_text : list of str

    Examples
    --------
    >>> from skxmc.utils._validation import check_label_text
    >>> check_label_text([None])
    Traceback (most recent call last):
    ...
    TypeError: label_text must be ...; element 0 is NoneType (None).
    """
    return check_text(label_text, name="label_text", what="label text")


@contextmanager
def named_vocabulary_error(what: str = "X"):
    """Turn the TF-IDF's "empty vocabulary" error into one that names the data.

    A vectorizer fitted inside an estimator on documents that hold no word it
    keeps (every document empty, or only stop words and one-character tokens)
    raises from deep inside scikit-learn's text module, about a vectorizer the
    user never created.

    Parameters
    ----------
    what : str, default="X"
        The documents the vectorizer is fitted on, as the message names them.

    Examples
    --------
    >>> from sklearn.feature_extraction.text import TfidfVectorizer
    >>> from skxmc.utils._validation import named_vocabulary_error
    >>> with named_vocabulary_error("X"):
    ...     TfidfVectorizer().fit(["", "a"])
    Traceback (most recent call last):
    ...
    ValueError: No document of X holds a word: ...
    """
    try:
        yield
    except ValueError as exc:
        if "empty vocabulary" not in str(exc):
            raise
        raise ValueError(
            f"No document of {what} holds a word: every one is empty or holds only "
            "stop words or one-character tokens, so the internal TF-IDF has no "
            "vocabulary to learn (tfidf_params can change its token_pattern)."
        ) from exc


def check_raw_text(X: Any) -> list[str]:
    """Return the documents as a list of str (:func:`check_text` of ``X``)."""
    return check_text(X)


def _is_label_lists(y: Any) -> bool:
    """True for a sequence of label collections (``[["a", "b"], ["c"]]``).

    A rectangular sequence of 0/1 number rows (``y.tolist()`` of an indicator
    matrix) is an indicator matrix, as in sklearn; rows given as sets are always
    label collections.
    """
    if sp.issparse(y) or (isinstance(y, np.ndarray) and y.dtype != object):
        return False
    if isinstance(y, np.ndarray):
        y = list(y)
    if not isinstance(y, Sequence) or not len(y):
        return False
    first = y[0]
    if not isinstance(first, Iterable) or isinstance(first, (str, bytes)):
        return False
    rows = [row if isinstance(row, (set, frozenset)) else list(row) for row in y]
    if any(isinstance(row, (set, frozenset)) for row in rows):
        return True
    width = len(rows[0])
    return not all(
        len(row) == width
        and all(
            isinstance(v, (bool, Integral, Real, np.number)) and v in (0, 1)
            for v in row
        )
        for row in rows
    )


@dataclass
class Targets:
    """Validated targets: the binary label matrix and how to give predictions back."""

    Y: sp.csr_matrix  # (n_samples, n_labels) float32, 0/1, sorted indices
    classes: np.ndarray
    container: str  # "sparse", "dense", "label_lists" or "1d"
    dtype: np.dtype


def _binary_csr(Y: sp.spmatrix) -> sp.csr_matrix:
    Y = sp.csr_matrix(Y, copy=True)
    Y.eliminate_zeros()
    if Y.nnz and not np.all(Y.data == 1):
        Y.sort_indices()
        first = int(np.flatnonzero(Y.data != 1)[0])
        row = int(np.searchsorted(Y.indptr, first, side="right")) - 1
        raise ValueError(
            "y must be a 0/1 label indicator matrix; found the value "
            f"{_describe(Y.data[first].item())} at row {row}, column "
            f"{int(Y.indices[first])}."
        )
    Y.sort_indices()
    return Y.astype(np.float32)


def _check_indicator_values(y: np.ndarray) -> None:
    """Name the first entry of a 2-D ``y`` that is not 0/1, with its position."""
    if y.dtype.kind in "biuf":
        bad = np.argwhere(~((y == 0) | (y == 1)))
        if not bad.size:
            return
        i, j = (int(v) for v in bad[0])
        value = y[i, j].item()
        # sklearn's wording for a regression target, which its checks expect
        prefix = (
            "Unknown label type: continuous-multioutput. "
            if isinstance(value, float) and np.isfinite(value) and value % 1
            else ""
        )
        raise ValueError(
            f"{prefix}y must be a 0/1 label indicator matrix; found the value "
            f"{_describe(value)} at row {i}, column {j}."
        )
    for (i, j), value in np.ndenumerate(y):
        if isinstance(value, np.generic):
            value = value.item()
        number = isinstance(value, (bool, Integral, Real, np.bool_, np.number))
        if not (number and value in (0, 1)):
            kind = "" if number else f" ({type(value).__name__})"
            raise ValueError(
                "y must be a 0/1 label indicator matrix; found the value "
                f"{_describe(value)}{kind} at row {i}, column {j}."
                + (
                    " Convert strings of digits with y.astype(int)."
                    if isinstance(value, str)
                    else ""
                )
            )


def _unwrap_pandas(y: Any) -> tuple[Any, list | None]:
    """A pandas Series of label lists -> list; a DataFrame -> (array, columns)."""
    if not hasattr(y, "iloc"):
        return y, None
    if getattr(y, "ndim", 1) == 1:
        values = y.to_numpy()
        if values.dtype == object and any(
            isinstance(v, (list, tuple, set, frozenset, np.ndarray)) for v in values
        ):
            return values.tolist(), None
        return values, None
    return y.to_numpy(), list(y.columns)


def _as_classes(values: Sequence) -> np.ndarray:
    """Label names as an array, without numpy turning mixed types into str."""
    values = list(values)
    if all(isinstance(v, str) for v in values):
        return np.asarray(values, dtype=str)
    if all(isinstance(v, (Integral, np.integer)) for v in values):
        return np.asarray(values, dtype=np.int64)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _indicator_classes(
    n_columns: int, labels: Sequence | None, columns: list | None
) -> np.ndarray:
    """``classes_`` of an indicator ``y`` (see :func:`check_targets`)."""
    if columns is not None:
        if len(set(columns)) != len(columns):
            raise ValueError("The columns of y (its label names) contain duplicates.")
        return _as_classes(columns)
    if labels is None:
        return np.arange(n_columns)
    integers = all(
        isinstance(v, (Integral, np.integer)) and not isinstance(v, (bool, np.bool_))
        for v in labels
    )
    if len(labels) == n_columns and not (
        integers and set(labels) == set(range(n_columns))
    ):
        return _as_classes(labels)  # the names of the columns, in order
    if not integers:
        raise ValueError(
            f"LabelInfo.labels lists {len(labels)} labels but y has {n_columns} "
            "columns: with an indicator matrix y, LabelInfo.labels names its "
            "columns, one name per column in order (or pass y as a DataFrame "
            "whose columns are the label names)."
        )
    # column indices: LabelInfo.aligned_to maps rows onto them (or explains)
    return np.arange(n_columns)


def check_targets(y: Any, *, labels: Sequence | None = None) -> Targets:
    """Validate ``y`` and binarize it into a CSR label matrix.

    Accepts a sparse or dense 0/1 indicator matrix, a pandas DataFrame of 0/1
    columns (``pd.get_dummies``; its column names become ``classes_``), a list
    (or pandas Series) of label lists (any hashable labels) or a 1-D
    binary/multiclass vector (as the sklearn common checks feed every
    classifier).

    ``labels`` (from ``LabelInfo.labels``) fixes the label space of label
    lists. With an indicator matrix it names the columns, in order, when it
    has one entry per column and is not simply the column indices
    ``0..n_labels-1`` in some order (which keep ``classes_ = arange(n_labels)``
    and say which label each LabelInfo row describes): so
    ``fit(X, mlb.transform(y), label_info=LabelInfo(labels=mlb.classes_))``
    keeps the names of a MultiLabelBinarizer. A ``labels`` of another length
    is an error (raised when the LabelInfo is aligned).
    """
    if y is None:
        raise ValueError("requires y to be passed, but the target y is None.")
    y, columns = _unwrap_pandas(y)
    if sp.issparse(y):
        if y.ndim != 2:
            raise ValueError(f"Sparse y must be 2-D, got shape {y.shape}.")
        Y = _binary_csr(y)  # names a NaN, inf or other non 0/1 entry
        return Targets(
            Y, _indicator_classes(Y.shape[1], labels, None), "sparse", y.dtype
        )
    if _is_label_lists(y):
        rows = [list(row) for row in y]
        seen = {label for row in rows for label in row}
        if labels is not None:
            unknown = seen.difference(labels)
            if unknown:
                raise ValueError(
                    f"y contains {len(unknown)} label(s) that LabelInfo.labels does "
                    f"not list, e.g. {sorted(map(str, unknown))[:5]}."
                )
            binarizer = MultiLabelBinarizer(classes=list(labels), sparse_output=True)
        else:
            binarizer = MultiLabelBinarizer(sparse_output=True)
        try:
            Y = binarizer.fit_transform(rows)
        except TypeError:  # labels of types that cannot be sorted together
            kinds = sorted({type(label).__name__ for label in seen})
            raise ValueError(
                "y was read as label lists (rows of label names), but its labels "
                f"mix types that cannot be sorted together ({', '.join(kinds)}). "
                "Use one type for the label names, or a 0/1 indicator matrix of "
                "numbers."
            ) from None
        return Targets(_binary_csr(Y), binarizer.classes_, "label_lists", np.dtype(int))
    y_array = np.asarray(y)
    if y_array.ndim == 2 and y_array.shape[1] == 1 and columns is None:
        y_array = column_or_1d(y_array, warn=True)
    if y_array.ndim == 1:
        check_classification_targets(y_array)
        binarizer = LabelBinarizer().fit(y_array)
        if len(binarizer.classes_) < 2:
            raise ValueError(
                "Classifier can't train when only one class is present: "
                f"{binarizer.classes_!r}."
            )
        codes = np.searchsorted(binarizer.classes_, y_array)
        # one column per class, binary included (LabelBinarizer keeps only one)
        Y = sp.csr_matrix(
            (np.ones(len(codes), np.float32), (np.arange(len(codes)), codes)),
            shape=(len(codes), len(binarizer.classes_)),
        )
        return Targets(_binary_csr(Y), binarizer.classes_, "1d", y_array.dtype)
    if y_array.ndim != 2:
        raise ValueError(f"y must be 1-D or 2-D, got {y_array.ndim} dimensions.")
    _check_indicator_values(y_array)
    if y_array.dtype.kind not in "biuf":
        y_array = y_array.astype(np.float32)
    Y = _binary_csr(sp.csr_matrix(y_array))
    return Targets(
        Y, _indicator_classes(Y.shape[1], labels, columns), "dense", y_array.dtype
    )


def warn_on_empty_rows_and_labels(Y: sp.csr_matrix) -> None:
    """Refuse an empty label space; warn (never drop) on empty rows or labels."""
    if Y.shape[1] == 0 or Y.nnz == 0:
        raise ValueError(
            "The label space is empty: y has no positive entry, so there is "
            "nothing to learn."
        )
    empty_rows = int(np.count_nonzero(np.diff(Y.indptr) == 0))
    empty_labels = int(
        Y.shape[1] - np.count_nonzero(np.bincount(Y.indices, minlength=Y.shape[1]))
    )
    problems = []
    if empty_rows:
        problems.append(
            f"{empty_rows} training row(s) have no positive label (kept, used as "
            "negatives only)"
        )
    if empty_labels:
        problems.append(
            f"{empty_labels} label(s) have no positive training row (kept in "
            "classes_; only label data can make them retrievable)"
        )
    if problems:
        warnings.warn("; ".join(problems) + ".", XMCDataWarning, stacklevel=4)


def encode_targets(y: Any, classes: np.ndarray, container: str) -> sp.csr_matrix:
    """Encode evaluation targets in a fitted label space.

    Labels never seen in ``fit`` (in label lists, or DataFrame columns that
    are not in ``classes``) cannot be predicted: they are dropped, so a score
    counts them as misses. A plain indicator matrix must have one column per
    fitted label.
    """
    y, columns = _unwrap_pandas(y)
    if columns is not None:  # a DataFrame: columns are label names
        values = np.asarray(y)
        _check_indicator_values(values)
        index = {label: i for i, label in enumerate(classes.tolist())}
        keep = [j for j, c in enumerate(columns) if c in index]
        if not keep and len(columns):
            raise ValueError(
                "None of the columns of y names a label seen during fit, e.g. "
                f"{[str(c) for c in columns[:5]]}; classes_ holds "
                f"{[str(c) for c in classes[:5].tolist()]}..."
            )
        part = sp.csr_matrix(values[:, keep].astype(np.float32))
        remap = np.array([index[columns[j]] for j in keep], dtype=np.int64)
        Y = sp.csr_matrix(
            (part.data, remap[part.indices], part.indptr),
            shape=(values.shape[0], len(classes)),
        )
        return _binary_csr(Y)
    if _is_label_lists(y) or (
        container == "label_lists"
        and not sp.issparse(y)
        and not (isinstance(y, np.ndarray) and y.ndim == 2)
    ):
        index = {label: i for i, label in enumerate(classes.tolist())}
        rows, cols = [], []
        n_rows = 0
        for r, row in enumerate(y):
            n_rows += 1
            if isinstance(row, (str, bytes)) or not isinstance(row, Iterable):
                raise ValueError(
                    f"y must be a list of label lists; row {r} is "
                    f"{type(row).__name__} ({_describe(row)})."
                )
            for label in row:
                col = index.get(label)
                if col is not None:  # unseen labels are misses
                    rows.append(r)
                    cols.append(col)
        Y = sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)),
            shape=(n_rows, len(classes)),
        )
        return _binary_csr(Y)
    if container == "1d":
        y_array = column_or_1d(np.asarray(y))
        # unseen classes are never predicted: accuracy counts them as errors
        known = np.isin(y_array, classes)
        cols = np.searchsorted(classes, y_array[known])
        return sp.csr_matrix(
            (np.ones(len(cols), np.float32), (np.flatnonzero(known), cols)),
            shape=(len(y_array), len(classes)),
        )
    if sp.issparse(y):
        Y = _binary_csr(y)
    else:
        y_array = np.asarray(y)
        if y_array.ndim != 2:
            raise ValueError(
                f"y must be a 2-D indicator matrix like the one fit received, got "
                f"{y_array.ndim} dimension(s)."
            )
        _check_indicator_values(y_array)
        Y = _binary_csr(sp.csr_matrix(y_array.astype(np.float32)))
    if Y.shape[1] != len(classes):
        raise ValueError(
            f"y has {Y.shape[1]} label columns but the model was fitted on "
            f"{len(classes)} labels."
        )
    return Y
