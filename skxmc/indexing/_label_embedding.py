"""Label embeddings for building label trees (PIFA, label text and their mixes).

A label's embedding places it in the feature space so that labels with similar
positive documents (or similar text) end up close; the label tree clusters these
vectors. All functions take and return sparse matrices (dense inputs are
accepted and converted), and never densify the label x feature matrix.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

__all__ = [
    "LABEL_EMBEDDINGS",
    "label_embedding",
    "pifa_embedding",
]

#: The label embedding methods understood by :func:`label_embedding`.
LABEL_EMBEDDINGS = ("pifa", "text", "pifa_text_concat", "pifa_text_convex")


def _as_csr32(matrix, name: str) -> sp.csr_matrix:
    if sp.issparse(matrix):
        out = sp.csr_matrix(matrix, dtype=np.float32)
    else:
        array = np.asarray(matrix, dtype=np.float32)
        if array.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got shape {array.shape}.")
        out = sp.csr_matrix(array)
    if out.data.size and not np.all(np.isfinite(out.data)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return out


def pifa_embedding(X, Y, *, normalize_X: bool = True, normalize_Y: bool = True):
    """Positive Instance Feature Aggregation (PIFA) label embeddings.

    Label ``l`` is embedded as the L2-normalised sum of the feature rows of its
    positive training points, ``z_l = normalize(sum_i w_i * Y[i, l] * x_i)``.
    With ``normalize_X`` each ``x_i`` is first L2-normalised; with
    ``normalize_Y`` a point with ``|y_i|`` positive labels is weighted by
    ``w_i = 1 / sqrt(|y_i|)`` (the rows of ``Y`` L2-normalised, as in pecos),
    otherwise ``w_i = 1``. Labels without positives get an all-zero row.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Training features.
    Y : {array-like, sparse matrix} of shape (n_samples, n_labels)
        0/1 label indicator matrix.
    normalize_X : bool, default=True
        L2-normalise the rows of ``X`` before summing.
    normalize_Y : bool, default=True
        Weight each point by the inverse L2 norm of its label row.

    Returns
    -------
    Z : csr_matrix of shape (n_labels, n_features), dtype float32
        Rows of unit L2 norm (or zero).

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.indexing import pifa_embedding
    >>> X = np.array([[3.0, 4.0], [0.0, 2.0]])
    >>> Y = np.array([[1, 0], [1, 1]])
    >>> pifa_embedding(X, Y, normalize_Y=False).toarray().round(3)
    array([[0.316, 0.949],
           [0.   , 1.   ]], dtype=float32)
    """
    X = _as_csr32(X, "X")
    Y = _as_csr32(Y, "Y")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"X and Y have different numbers of rows: {X.shape[0]} != {Y.shape[0]}."
        )
    if normalize_X:
        X = normalize(X, norm="l2", copy=True)
    Y = Y.copy()
    Y.data = (Y.data != 0).astype(np.float32)
    if normalize_Y:
        Y = normalize(Y, norm="l2", copy=False)
    Z = (Y.T.tocsr() @ X).tocsr()
    Z.sum_duplicates()
    Z = normalize(Z, norm="l2", copy=False)
    Z.eliminate_zeros()
    Z.sort_indices()
    return Z.astype(np.float32, copy=False)


def label_embedding(
    X,
    Y,
    *,
    method: str = "pifa",
    label_features=None,
    alpha: float = 0.5,
):
    """Embed every label for clustering.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Training features.
    Y : {array-like, sparse matrix} of shape (n_samples, n_labels)
        0/1 label indicator matrix.
    method : {"pifa", "text", "pifa_text_concat", "pifa_text_convex"}, \
            default="pifa"
        - ``"pifa"``: :func:`pifa_embedding` of ``X`` and ``Y``.
        - ``"text"``: the L2-normalised rows of ``label_features``.
        - ``"pifa_text_concat"``: ``[pifa, text]`` side by side, each part
          L2-normalised (pecos ``pifa_lf_concat``).
        - ``"pifa_text_convex"``: ``alpha * pifa + (1 - alpha) * text``; needs
          ``label_features`` in the feature space of ``X`` (pecos
          ``pifa_lf_convex_combine``).
    label_features : {array-like, sparse matrix} of shape (n_labels, n_label_features)
        Label features (e.g. TF-IDF of the label text); required by every
        method but ``"pifa"``.
    alpha : float, default=0.5
        Weight of PIFA in ``"pifa_text_convex"``, in [0, 1].

    Returns
    -------
    Z : csr_matrix of shape (n_labels, n_embedding_features), dtype float32
        One row per label, built as ``method`` describes.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.indexing import label_embedding
    >>> X = np.eye(3)
    >>> Y = np.array([[1, 0], [0, 1], [0, 1]])
    >>> text = np.array([[0.0, 0.0, 2.0], [1.0, 0.0, 0.0]])
    >>> label_embedding(X, Y, method="pifa_text_concat", label_features=text).shape
    (2, 6)
    """
    if method not in LABEL_EMBEDDINGS:
        raise ValueError(
            f"Unknown label embedding {method!r}; expected one of {LABEL_EMBEDDINGS}."
        )
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}.")
    n_labels = Y.shape[1]
    text = None
    if method != "pifa":
        if label_features is None:
            raise ValueError(
                f"label_embedding method {method!r} needs label features "
                "(one row per label), got None."
            )
        text = _as_csr32(label_features, "label_features")
        if text.shape[0] != n_labels:
            raise ValueError(
                f"label_features has {text.shape[0]} rows but Y has {n_labels} labels."
            )
        text = normalize(text, norm="l2", copy=True)
        text.eliminate_zeros()
        if method == "text":
            return text.astype(np.float32, copy=False)
    pifa = pifa_embedding(X, Y)
    if method == "pifa":
        return pifa
    if method == "pifa_text_concat":
        Z = sp.hstack([pifa, text], format="csr", dtype=np.float32)
    else:
        if text.shape[1] != pifa.shape[1]:
            raise ValueError(
                "pifa_text_convex needs label features in the feature space of X: "
                f"{text.shape[1]} label feature columns != {pifa.shape[1]} features."
            )
        Z = (alpha * pifa + (1.0 - alpha) * text).tocsr()
        Z.eliminate_zeros()
    Z.sort_indices()
    return Z.astype(np.float32, copy=False)
