"""From the label indices of ``predict_topk`` to label names."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["labels_to_classes"]


def labels_to_classes(classes, labels, fill: Any = None) -> np.ndarray:
    """Map the label indices of ``predict_topk`` to labels, keeping the padding.

    ``predict_topk`` pads rows that retrieved fewer than ``k`` labels with the
    index ``-1``; ``classes_[labels]`` would read that index as the *last*
    label and print a wrong label name. This helper puts ``fill`` there
    instead.

    Parameters
    ----------
    classes : array-like of shape (n_labels,)
        What to map each label index to: an estimator's ``classes_``, or any
        per-label sequence (label titles, label texts).
    labels : array-like of int
        Label indices into ``classes``, any shape (``(n_samples, k)`` from
        ``predict_topk``); ``-1`` marks an empty slot.
    fill : object, default=None
        Value of the empty slots. With None the result is an object array;
        otherwise its dtype is the one numpy gives ``classes`` and ``fill``
        together (``fill=""`` keeps a str array str, ``fill=-1`` an int array
        int), or object when one is text and the other is not.

    Returns
    -------
    mapped : ndarray of the shape of ``labels``
        ``classes[labels]`` where ``labels >= 0``, ``fill`` elsewhere.

    Raises
    ------
    ValueError
        If ``labels`` holds an index below -1 or beyond the last label.
    TypeError
        If ``labels`` does not hold integers.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.utils import labels_to_classes
    >>> classes = np.array(["apple", "pear", "plum"])
    >>> labels = np.array([[2, 0, -1], [1, -1, -1]])  # from predict_topk
    >>> labels_to_classes(classes, labels)
    array([['plum', 'apple', None],
           ['pear', None, None]], dtype=object)
    >>> labels_to_classes(classes, labels, fill="").tolist()
    [['plum', 'apple', ''], ['pear', '', '']]
    >>> names = labels_to_classes(classes, labels)
    >>> [[c for c in row if c is not None] for row in names]  # ragged lists
    [['plum', 'apple'], ['pear']]
    """
    if isinstance(classes, (str, bytes)):
        raise TypeError("classes must be a sequence with one entry per label.")
    if isinstance(classes, np.ndarray):
        values = classes.ravel() if classes.ndim != 1 else classes
    else:
        values = np.empty(len(classes), dtype=object)
        values[:] = list(classes)
        if values.size and all(isinstance(v, str) for v in values):
            values = values.astype(str)
    ids = np.asarray(labels)
    if ids.dtype.kind not in "iu":
        if ids.size == 0 and ids.dtype.kind == "f":
            ids = ids.astype(np.int64)
        else:
            raise TypeError(
                f"labels must hold integer label indices, got dtype {ids.dtype}."
            )
    n_labels = values.shape[0]
    if ids.size and (ids.min() < -1 or ids.max() >= n_labels):
        bad = ids[(ids < -1) | (ids >= n_labels)].ravel()[0]
        raise ValueError(
            f"labels must lie in [0, {n_labels}) or be -1 (padding); found {bad}."
        )
    if fill is None:
        table = np.empty(n_labels + 1, dtype=object)
        table[:n_labels] = values
    else:
        fill_array = np.asarray([fill])
        textual = values.dtype.kind in "US", fill_array.dtype.kind in "US"
        if textual[0] == textual[1] and "O" not in (
            values.dtype.kind,
            fill_array.dtype.kind,
        ):
            table = np.concatenate([values, fill_array])
        else:  # str with a number: no silent conversion of either
            table = np.empty(n_labels + 1, dtype=object)
            table[:n_labels] = values
            table[n_labels] = fill
    return table[np.where(ids >= 0, ids, n_labels)]
