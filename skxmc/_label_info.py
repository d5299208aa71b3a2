"""LabelInfo: data about the output space that cross-validation must never split."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array

__all__ = ["LabelInfo"]


class LabelInfo:
    """Data about the label space: label text, label features and a label graph.

    Label metadata describes the *output space*: it is the same for every
    training row and every cross-validation fold. Pass it to ``fit`` as
    ``fit(X, y, label_info=LabelInfo(...))``. A ``LabelInfo`` is deliberately not
    array-like (no ``len``, ``shape`` or ``__array__``), so
    :class:`~sklearn.model_selection.GridSearchCV` and the other model selection
    tools hand it to every fold whole instead of splitting it like a per-sample
    fit parameter -- even when the number of labels equals the number of
    samples.

    Parameters
    ----------
    text : sequence of str or mapping of label to str, default=None
        One text per label (a product title, a tag name). A mapping gives the
        text of each label by its name; it replaces ``labels``.
    features : {array-like, sparse matrix} of shape (n_rows, n_label_features), \
            default=None
        Numeric label features, e.g. a TF-IDF of the label text in the same
        feature space as ``X``.
    graph : sparse matrix of shape (n_rows, n_rows), default=None
        A label-label correlation graph (non-negative weights).
    labels : sequence of hashable, default=None
        The label each row of ``text``, ``features`` and ``graph`` describes.
        If None, rows follow the label space of ``y``: its columns for an
        indicator matrix, its sorted label names for a list of label lists.
        With label lists, labels listed here that never occur in ``y`` are
        added to the label space (they have no positive training row). With
        an indicator matrix (which has no label names of its own), ``labels``
        with one entry per column *names the columns*, in order, and becomes
        ``classes_`` (``LabelInfo(labels=mlb.classes_)`` after a
        :class:`~sklearn.preprocessing.MultiLabelBinarizer`), unless it is
        just the column indices ``0..n_labels-1`` in some order, which say
        which column each row describes. A DataFrame ``y`` names its columns
        itself; ``labels`` then says which column each row describes. Any
        other ``labels`` is an error when ``fit`` aligns the rows; it is
        never ignored, even without text, features or graph.

    Examples
    --------
    >>> from skxmc import LabelInfo
    >>> info = LabelInfo(text={"cat": "a small feline", "dog": "a loyal canine"})
    >>> info.labels
    ['cat', 'dog']
    """

    def __init__(self, text=None, features=None, graph=None, labels=None):
        if isinstance(text, Mapping):
            if labels is not None:
                raise ValueError(
                    "Give label names either as the keys of a text mapping or as "
                    "`labels`, not both."
                )
            labels = list(text.keys())
            text = list(text.values())
        if isinstance(text, (str, bytes)):
            raise ValueError(
                "LabelInfo.text must be a sequence with one text per label, "
                "got a single string."
            )
        if text is not None:
            text = list(text)
            bad = [i for i, t in enumerate(text) if not isinstance(t, str)]
            if bad:
                raise TypeError(
                    f"LabelInfo.text must hold strings; row {bad[0]} is "
                    f"{type(text[bad[0]]).__name__}."
                )
        if features is not None:
            features = _check_numeric("features", features)
            with np.errstate(over="ignore"):  # 1e39 -> inf, refused by name
                features = check_array(
                    features,
                    accept_sparse="csr",
                    dtype=np.float32,
                    input_name="features",
                )
        if graph is not None:
            graph = _check_numeric("graph", graph)
            if graph.ndim != 2:
                raise ValueError(
                    "LabelInfo.graph must be a 2-D matrix, got "
                    f"{graph.ndim} dimensions."
                )
            graph = sp.csr_matrix(graph, dtype=np.float32)
            if graph.shape[0] != graph.shape[1]:
                raise ValueError(f"LabelInfo.graph must be square, got {graph.shape}.")
            if not np.all(np.isfinite(graph.data)) or (graph.data < 0).any():
                raise ValueError(
                    "LabelInfo.graph must hold finite, non-negative weights."
                )
        if labels is not None:
            labels = list(labels)
            if len(set(labels)) != len(labels):
                raise ValueError("LabelInfo.labels contains duplicates.")
        self.text = text
        self.features = features
        self.graph = graph
        self.labels = labels
        sizes = {
            name: n
            for name, n in (
                ("text", None if text is None else len(text)),
                ("features", None if features is None else features.shape[0]),
                ("graph", None if graph is None else graph.shape[0]),
                ("labels", None if labels is None else len(labels)),
            )
            if n is not None
        }
        if len(set(sizes.values())) > 1:
            raise ValueError(
                f"LabelInfo parts disagree on the number of labels: {sizes}."
            )
        self._n_rows = next(iter(sizes.values()), None)

    def __repr__(self) -> str:
        parts = [
            f"{name}=<{n} rows>"
            for name in ("text", "features", "graph", "labels")
            if (n := self._n_rows) is not None and getattr(self, name) is not None
        ]
        return f"LabelInfo({', '.join(parts)})"

    @property
    def is_empty(self) -> bool:
        return self.text is None and self.features is None and self.graph is None

    def aligned_to(self, classes: np.ndarray) -> LabelInfo:
        """Return a LabelInfo whose rows follow ``classes`` (``labels`` dropped).

        Raises a ValueError naming what is wrong when the rows cannot be matched:
        a row count that differs from the label space, labels without a row, or
        rows for labels outside the label space.
        """
        n_labels = len(classes)
        if self._n_rows is None:
            return self
        if self.labels is None:
            if self._n_rows != n_labels:
                raise ValueError(
                    f"label_info describes {self._n_rows} labels but y has "
                    f"{n_labels}. (A plain list passed as a fit parameter is split "
                    "by cross-validation when its length equals n_samples: wrap "
                    "label data in skxmc.LabelInfo, which is never split.)"
                )
            return self
        row_of = {label: row for row, label in enumerate(self.labels)}
        missing = [c for c in classes.tolist() if c not in row_of]
        if missing:
            raise ValueError(
                f"label_info has no row for {len(missing)} label(s) of y, e.g. "
                f"{missing[:5]}."
            )
        known = set(classes.tolist())
        unknown = [label for label in self.labels if label not in known]
        if unknown:
            raise ValueError(
                f"label_info describes {len(unknown)} label(s) that are not in the "
                f"label space of y, e.g. {unknown[:5]}."
            )
        order = np.fromiter(
            (row_of[c] for c in classes.tolist()), dtype=np.int64, count=n_labels
        )
        return LabelInfo(
            text=None if self.text is None else [self.text[i] for i in order],
            features=None if self.features is None else self.features[order],
            graph=None if self.graph is None else self.graph[order][:, order],
        )


def as_label_info(value: Any) -> LabelInfo | None:
    """Accept a LabelInfo, a sequence of label texts or a mapping label -> text."""
    if value is None or isinstance(value, LabelInfo):
        return value
    if isinstance(value, (str, bytes)):
        raise ValueError(
            "label_info must be a LabelInfo, a sequence of label texts or a mapping "
            "label -> text; got a single string."
        )
    if isinstance(value, (Mapping, Sequence, np.ndarray)):
        return LabelInfo(text=value)
    raise TypeError(
        "label_info must be a skxmc.LabelInfo, a sequence of label texts or a "
        f"mapping label -> text; got {type(value).__name__}."
    )


def _check_numeric(name: str, values):
    """``values`` as a sparse matrix or a float array, or a clear TypeError
    when they are not numbers (instead of numpy's or scipy's "could not
    convert string to float"; scipy would also read None as 0)."""
    if sp.issparse(values):
        dtype = values.dtype
        converted = values
    else:
        try:
            dtype = np.asarray(values).dtype
        except (TypeError, ValueError):  # ragged nested sequences
            dtype = np.dtype(object)
        converted = None
        if dtype.kind in "biufO":
            try:  # numbers in an object array are fine, None becomes NaN
                converted = np.asarray(values, dtype=np.float64)
            except (TypeError, ValueError):
                converted = None
    if converted is None or dtype.kind not in "biufO":
        raise TypeError(
            f"LabelInfo.{name} must hold numbers, got an array of dtype {dtype}."
        )
    return converted
