"""Batch ``predict_topk`` over the row blocks of a Dask array."""

from __future__ import annotations

import numpy as np

__all__ = ["dask_predict_topk"]


def dask_predict_topk(estimator, X, k=None):
    """``estimator.predict_topk(X, k)`` for a Dask array ``X``, block by block.

    Each block of rows becomes one task that calls the fitted estimator's
    ``predict_topk`` (the estimator travels with the graph once), so the
    predictions of data larger than memory, or spread over a
    :class:`dask.distributed.Client`'s workers, are computed where the rows
    are. Rows are independent, so the result equals ``predict_topk`` of the
    whole array. ``scores`` and ``indices`` share their tasks: compute them
    together (``dask.compute(scores, indices)``) to predict each block once.

    Parameters
    ----------
    estimator : fitted skxmc estimator
        Any estimator with ``predict_topk`` (or a Pipeline ending in one)
        whose input is a numeric matrix.
    X : dask.array.Array of shape (n_samples, n_features)
        The rows; blocks may hold NumPy arrays or SciPy sparse matrices.
        Chunked along the features as well, it is rechunked to whole rows.
    k : int, default=None
        Labels per row; None uses the estimator's ``top_k``.

    Returns
    -------
    scores : dask.array.Array of shape (n_samples, k), dtype float32
        Best first, ``-inf`` padded.
    indices : dask.array.Array of shape (n_samples, k), dtype int64
        Column indices into ``classes_``, ``-1`` padded.

    Examples
    --------
    >>> import dask
    >>> import dask.array as da
    >>> from skxmc import XRLinearClassifier
    >>> from skxmc.datasets import make_xmc_classification
    >>> from skxmc.utils import dask_predict_topk
    >>> X, Y = make_xmc_classification(n_samples=60, n_labels=12, random_state=0)
    >>> clf = XRLinearClassifier(max_leaf_size=4, random_state=0).fit(X, Y)
    >>> rows = da.from_array(X.toarray(), chunks=(25, -1))
    >>> scores, indices = dask.compute(*dask_predict_topk(clf, rows, k=3))
    >>> bool((indices == clf.predict_topk(X, k=3)[1]).all())
    True
    """
    import dask
    import dask.array as da

    if not isinstance(X, da.Array):
        raise TypeError(
            f"X must be a dask.array.Array, got {type(X).__name__}; call "
            "estimator.predict_topk for in-memory data."
        )
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (rows, features), got {X.ndim}-D.")
    if not hasattr(estimator, "predict_topk"):
        raise TypeError(f"{type(estimator).__name__} has no predict_topk.")
    if k is None:
        k = getattr(estimator, "top_k", None)
        if k is None:
            raise ValueError("k is None and the estimator has no top_k.")
    k = int(k)
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    predict = dask.delayed(_predict_block, pure=True)
    model = dask.delayed(estimator, pure=True)  # one copy in the graph
    blocks = [predict(model, block, k) for block in X.to_delayed().ravel()]
    scores, indices = [], []
    for block, n_rows in zip(blocks, X.chunks[0]):
        scores.append(da.from_delayed(block[0], (n_rows, k), dtype=np.float32))
        indices.append(da.from_delayed(block[1], (n_rows, k), dtype=np.int64))
    return da.concatenate(scores), da.concatenate(indices)


def _predict_block(estimator, block, k):
    scores, indices = estimator.predict_topk(block, k=k)
    return (
        np.asarray(scores, dtype=np.float32),
        np.asarray(indices, dtype=np.int64),
    )
