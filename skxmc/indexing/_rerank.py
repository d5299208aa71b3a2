"""Sparse linear re-ranking of a retriever's shortlists.

A first-stage model (a deep retriever such as ELIAS, a label tree) proposes a
shortlist of candidate labels per document. :class:`ShortlistReranker` trains
one sparse linear model per label on the documents whose shortlist holds that
label (plus its positives), the "matcher-aware negatives" of XR-Linear reduced
to a single level, and scores each (document, candidate) pair. The features
are typically ``[dense embedding, TF-IDF]``, as in ELIAS's re-ranker.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from skxmc.indexing._beam import post_process
from skxmc.indexing._linear import fit_level
from skxmc.indexing._tree import effective_n_jobs
from skxmc.utils._sparse import as_float32_csr, sparse_pair_scores

__all__ = ["ShortlistReranker"]


def _candidate_rows(candidates: np.ndarray, Y: sp.csr_matrix) -> sp.csc_matrix:
    """(n_samples, n_labels) 0/1 pattern: shortlisted or positive pairs."""
    n, m = candidates.shape
    keep = candidates >= 0
    rows = np.repeat(np.arange(n), m)[keep.ravel()]
    shortlisted = sp.csr_matrix(
        (np.ones(rows.size, np.float32), (rows, candidates[keep])),
        shape=Y.shape,
    )
    pattern = shortlisted + sp.csr_matrix(Y, dtype=np.float32)
    pattern.data[:] = 1.0
    return sp.csc_matrix(pattern)


class ShortlistReranker:
    """One sparse linear model per label, trained on shortlisted documents.

    Build it with :meth:`train`; :meth:`score` rates (document, label) pairs.

    Parameters
    ----------
    weights : sparse matrix of shape (n_labels, n_features)
        Row ``l`` holds the weights of label ``l``.
    intercepts : ndarray of shape (n_labels,)
        Intercept of each label model.
    post_processor : {"l3-hinge", "sigmoid"}, default="l3-hinge"
        Transform of the raw scores into [0, 1] (see
        :func:`~skxmc.indexing.post_process`).

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skxmc.indexing import ShortlistReranker
    >>> X = sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]]))
    >>> Y = sp.csr_matrix(np.array([[1, 0], [0, 1], [1, 0]]))
    >>> shortlist = np.array([[0, 1], [0, 1], [1, 0]])
    >>> reranker = ShortlistReranker.train(X, Y, shortlist, C=10.0)
    >>> reranker.score(X, shortlist).argmax(axis=1)
    array([0, 1, 1])
    """

    def __init__(self, weights, intercepts, post_processor: str = "l3-hinge"):
        self.weights = sp.csr_matrix(weights, dtype=np.float32)
        self.intercepts = np.asarray(intercepts, dtype=np.float32)
        self.post_processor = post_processor
        post_process(np.zeros(1), post_processor)  # validates the name

    @property
    def n_labels(self) -> int:
        return self.weights.shape[0]

    @property
    def n_features(self) -> int:
        return self.weights.shape[1]

    @classmethod
    def train(
        cls,
        X,
        Y,
        candidates,
        *,
        loss: str = "squared_hinge",
        C: float = 1.0,
        max_iter: int = 100,
        tol: float = 0.1,
        bias: float = 1.0,
        weight_threshold: float = 0.1,
        post_processor: str = "l3-hinge",
        seed: int = 0,
        n_jobs: int | None = None,
    ) -> ShortlistReranker:
        """Train the label models on the rows that shortlist them.

        Label ``l`` is trained on every row whose ``candidates`` hold ``l`` or
        whose ``Y`` marks ``l`` positive, with ``Y`` as the target; a label
        without such rows keeps zero weights.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training features.
        Y : sparse matrix of shape (n_samples, n_labels)
            0/1 label matrix.
        candidates : array-like of int of shape (n_samples, m)
            The first stage's shortlist of every training row (``-1`` pads).
        loss, C, max_iter, tol, bias, weight_threshold, seed :
            As in :func:`~skxmc.indexing.fit_level`.
        post_processor : {"l3-hinge", "sigmoid"}, default="l3-hinge"
            Transform applied by :meth:`score`.
        n_jobs : int, default=None
            Threads; None means all cores.

        Returns
        -------
        reranker : ShortlistReranker
            The trained label models.
        """
        X = as_float32_csr(X)
        Y = sp.csr_matrix(Y, dtype=np.float32)
        candidates = np.asarray(candidates, dtype=np.int64)
        if Y.shape[0] != X.shape[0] or candidates.shape[0] != X.shape[0]:
            raise ValueError(
                f"X, Y and candidates must have the same rows, got {X.shape[0]}, "
                f"{Y.shape[0]} and {candidates.shape[0]}."
            )
        n_labels = Y.shape[1]
        if candidates.size and candidates.max() >= n_labels:
            raise ValueError(
                f"candidates name label {candidates.max()} of {n_labels} labels."
            )
        # every label is its own "parent" with one child: itself
        ids = np.arange(n_labels, dtype=np.int64)
        W, intercepts, _ = fit_level(
            X,
            sp.csc_matrix(Y),
            _candidate_rows(candidates, Y),
            np.arange(n_labels + 1, dtype=np.int64),
            ids,
            loss=loss,
            C=C,
            max_iter=max_iter,
            tol=tol,
            bias=bias,
            weight_threshold=weight_threshold,
            seed=seed,
            n_threads=effective_n_jobs(n_jobs),
        )
        return cls(W, intercepts, post_processor)

    def score(self, X, candidates, *, raw: bool = False) -> np.ndarray:
        """Scores of the candidate labels of every row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_rows, n_features)
            Features, in the space of the training features.
        candidates : array-like of int of shape (n_rows, m)
            Labels to score per row; ``-1`` marks an empty slot.
        raw : bool, default=False
            Return the linear scores instead of the post-processed ones.

        Returns
        -------
        scores : ndarray of shape (n_rows, m), dtype float32
            Post-processed scores in [0, 1] (or raw ones); ``-inf`` on empty
            slots.
        """
        candidates = np.asarray(candidates, dtype=np.int64)
        raw_scores = sparse_pair_scores(X, self.weights, candidates)
        raw_scores += self.intercepts[np.maximum(candidates, 0)]
        scores = (
            raw_scores
            if raw
            else post_process(raw_scores, self.post_processor).astype(np.float32)
        )
        return np.where(candidates >= 0, scores, -np.inf).astype(np.float32)
