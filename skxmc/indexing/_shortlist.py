"""Label shortlists: the labels whose embedding is most similar to a query.

:class:`LabelShortlist` indexes label embeddings and returns, for each query,
its ``k`` most cosine-similar labels, either exactly (sparse products in row
blocks) or approximately with pynndescent's NN-descent graph (the engine
pattern of ``pynndescent.NNDescent``: build once, query many times).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize
from sklearn.utils import check_random_state

from skxmc.utils._sparse import (
    csr_product_topk,
    csr_row_topk,
    dense_long_rows,
    l2_normalize_csr,
)

__all__ = ["LabelShortlist"]


def _rows_topk(S: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    n, m = S.shape
    kk = min(k, m)
    scores = np.full((n, k), -np.inf, dtype=np.float32)
    indices = np.full((n, k), -1, dtype=np.int64)
    if kk == 0:
        return scores, indices
    part = np.argpartition(-S, kk - 1, axis=1)[:, :kk] if kk < m else None
    cand = np.tile(np.arange(m), (n, 1)) if part is None else part
    cand_s = np.take_along_axis(S, cand, axis=1)
    # best first, ties by lower label index
    order = np.lexsort((cand, -cand_s), axis=1)
    indices[:, :kk] = np.take_along_axis(cand, order, axis=1)
    scores[:, :kk] = np.take_along_axis(cand_s, order, axis=1)
    return scores, indices


class LabelShortlist:
    """Top-k labels by cosine similarity between queries and label embeddings.

    Parameters
    ----------
    method : {"exact", "ann"}, default="ann"
        ``"exact"`` scores every label (sparse products in blocks of
        ``batch_size`` queries); ``"ann"`` queries a pynndescent index.
    n_neighbors : int, default=30
        Degree of the NN-descent graph (``"ann"``).
    epsilon : float, default=0.1
        Search slack of pynndescent queries; larger is slower and more exact.
    batch_size : int, default=1024
        Queries per block in exact search.
    random_state : int, RandomState instance or None, default=None
        Seeds the index construction.
    n_jobs : int, default=None
        Threads of the index construction (pynndescent's convention) and of
        the exact search of sparse queries (None: all cores).

    Attributes
    ----------
    n_labels_ : int
    index_ : pynndescent.NNDescent or None
        The ANN index (``"ann"`` only).

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.indexing import LabelShortlist
    >>> Z = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> sl = LabelShortlist(method="exact").fit(Z)
    >>> scores, labels = sl.query(np.array([[1.0, 0.1]]), k=2)
    >>> labels
    array([[0, 2]])
    """

    def __init__(
        self,
        *,
        method: str = "ann",
        n_neighbors: int = 30,
        epsilon: float = 0.1,
        batch_size: int = 1024,
        random_state=None,
        n_jobs: int | None = None,
    ):
        self.method = method
        self.n_neighbors = n_neighbors
        self.epsilon = epsilon
        self.batch_size = batch_size
        self.random_state = random_state
        self.n_jobs = n_jobs

    @staticmethod
    def _prepare(M):
        """L2-normalised float32 rows; sparse stays CSR, dense stays dense."""
        if sp.issparse(M):
            if M.format == "csr" and M.dtype == np.float32 and M.has_canonical_format:
                # sklearn's normalize to the bit, without its validation
                return l2_normalize_csr(M)
            M = sp.csr_matrix(M, dtype=np.float32, copy=True)
            M.sum_duplicates()
        else:
            M = np.asarray(M, dtype=np.float32)
            if M.ndim != 2:
                raise ValueError(f"Expected a 2-D array, got shape {M.shape}.")
        return normalize(M, norm="l2")

    def fit(self, Z) -> LabelShortlist:
        """Index the label embeddings.

        Parameters
        ----------
        Z : {array-like, sparse matrix} of shape (n_labels, n_features)
            One embedding per label; rows are L2-normalised for cosine search.

        Returns
        -------
        self : LabelShortlist
            The fitted index.
        """
        if self.method not in ("exact", "ann"):
            raise ValueError(f"method must be 'exact' or 'ann', got {self.method!r}.")
        Z = self._prepare(Z)
        if Z.shape[0] == 0:
            raise ValueError("Cannot index zero labels.")
        self.labels_ = Z
        self.n_labels_ = Z.shape[0]
        self.__dict__.pop("_transposed", None)  # of a previous fit
        self.__dict__.pop("_dense", None)
        self.index_ = None
        if self.method == "ann":
            from pynndescent import NNDescent

            seed = int(check_random_state(self.random_state).randint(2**31 - 1))
            self.index_ = NNDescent(
                Z,
                metric="cosine",
                n_neighbors=min(self.n_neighbors, max(2, self.n_labels_ - 1)),
                random_state=seed,
                n_jobs=self.n_jobs,
            )
            self.index_.prepare()
        return self

    def query(self, X, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Return the ``k`` labels most similar to every row of ``X``.

        Returns
        -------
        scores : ndarray of shape (n_samples, k), dtype float32
            Cosine similarities, best first, ``-inf`` padded.
        indices : ndarray of shape (n_samples, k), dtype int64
            Label ids, ``-1`` padded.
        """
        if not hasattr(self, "labels_"):
            raise ValueError("This LabelShortlist is not fitted; call fit first.")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}.")
        X = self._prepare(X)
        if X.shape[1] != self.labels_.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} features, the labels have {self.labels_.shape[1]}."
            )
        if self.method == "exact" or self.index_ is None:
            return self._exact(X, k)
        kk = min(k, self.n_labels_)
        idx, dist = self.index_.query(X, k=kk, epsilon=self.epsilon)
        scores = np.full((X.shape[0], k), -np.inf, dtype=np.float32)
        indices = np.full((X.shape[0], k), -1, dtype=np.int64)
        sim = (1.0 - dist).astype(np.float32)
        ok = idx >= 0
        sim = np.where(ok, sim, -np.inf)
        order = np.lexsort((np.where(ok, idx, np.iinfo(np.int64).max), -sim), axis=1)
        indices[:, :kk] = np.where(
            np.take_along_axis(ok, order, 1), np.take_along_axis(idx, order, 1), -1
        )
        scores[:, :kk] = np.take_along_axis(sim, order, 1)
        return scores, indices

    def similarity(self, X):
        """Cosine similarity of every row of ``X`` with every label.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Queries in the feature space of the labels.

        Returns
        -------
        similarity : sparse matrix or ndarray of shape (n_samples, n_labels)
            Sparse when both ``X`` and the labels are.

        Examples
        --------
        >>> import numpy as np
        >>> from skxmc.indexing import LabelShortlist
        >>> index = LabelShortlist().fit(np.array([[1.0, 0.0], [1.0, 1.0]]))
        >>> index.similarity(np.array([[2.0, 0.0]])).round(3)
        array([[1.   , 0.707]], dtype=float32)
        """
        if not hasattr(self, "labels_"):
            raise ValueError("This LabelShortlist is not fitted; call fit first.")
        X = self._prepare(X)
        if X.shape[1] != self.labels_.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} features, the labels have {self.labels_.shape[1]}."
            )
        return X @ self._labels_transposed()

    def similarity_topk(
        self, X, k: int, *, normalized: bool = False, return_similarity: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` labels of highest non-zero cosine with every row of ``X``.

        Equals ``csr_row_topk(sp.csr_matrix(self.similarity(X)), k)``: only
        labels with a non-zero cosine compete (unlike :meth:`query`, which
        fills up with zero-similarity labels). For sparse labels and queries
        the cosines are summed into a dense buffer and the top ``k`` read off
        it, without forming the ``(n_samples, n_labels)`` similarity matrix: a
        single query over tens of thousands of labels costs a fraction of a
        millisecond instead of several.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Queries in the feature space of the labels.
        k : int
            Labels returned per row.
        normalized : bool, default=False
            Whether ``X`` is already a float32 CSR matrix of L2-normalised
            rows with sorted, distinct indices (as :meth:`_prepare` makes
            them): a caller that needs those rows for other cosines too
            skips the second copy.
        return_similarity : bool, default=False
            Also return the cosine of every row with every label, summed in
            float64 in the same pass (dense: for a few rows; sparse labels
            and queries only): with ``normalized`` rows, its float32 rounding
            is ``sparse_pair_scores(X, labels_, ids)`` to the bit, so a
            caller that needs the cosines of other labels of the row next
            looks them up.

        Returns
        -------
        scores : ndarray of shape (n_samples, k), dtype float32
            Cosine similarities, best first, ``-inf`` padded.
        indices : ndarray of shape (n_samples, k), dtype int64
            Label ids (ties by the lower id), ``-1`` padded.
        similarity : ndarray of shape (n_samples, n_labels), dtype float64
            Only with ``return_similarity``.

        Examples
        --------
        >>> import numpy as np
        >>> from skxmc.indexing import LabelShortlist
        >>> index = LabelShortlist().fit(np.array([[1.0, 0.0], [0.0, 1.0]]))
        >>> index.similarity_topk(np.array([[2.0, 0.0]]), k=2)[1]
        array([[ 0, -1]])
        """
        if not hasattr(self, "labels_"):
            raise ValueError("This LabelShortlist is not fitted; call fit first.")
        if not (sp.issparse(X) and sp.issparse(self.labels_)):
            if return_similarity:
                raise ValueError(
                    "return_similarity needs sparse queries and sparse labels."
                )
            return csr_row_topk(sp.csr_matrix(self.similarity(X)), k)
        if not normalized:
            X = self._prepare(X)
        if X.shape[1] != self.labels_.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} features, the labels have {self.labels_.shape[1]}."
            )
        return csr_product_topk(
            X,
            self._labels_transposed(),
            k,
            dense_rows=self._dense_rows(),
            return_sums=return_similarity,
        )

    def _labels_transposed(self):
        """``labels_.T``, kept as CSR: a CSR @ CSR.T product would convert the
        whole label matrix on every call (most of a single query's time)."""
        transposed = self.__dict__.get("_transposed")
        if transposed is None:
            transposed = self.labels_.T
            if sp.issparse(transposed):
                transposed = transposed.tocsr()
            self._transposed = transposed
        return transposed

    def _dense_rows(self):
        """The features stored by many labels, as dense rows of the
        transposed labels (see :func:`~skxmc.utils._sparse.dense_long_rows`;
        built once, not pickled; None for dense labels)."""
        cached = self.__dict__.get("_dense")
        if cached is None or cached[0] is not self.labels_:
            ZT = self._labels_transposed()
            rows = dense_long_rows(ZT) if sp.issparse(ZT) else None
            cached = self._dense = (self.labels_, rows)
        return cached[1]

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_transposed", None)
        state.pop("_dense", None)
        return state

    def _exact(self, X: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
        ZT = self._labels_transposed()
        if sp.issparse(X) and sp.issparse(ZT) and k < self.n_labels_:
            return self._exact_sparse(X, ZT, k)
        return self._exact_dense(X, ZT, k)

    def _exact_dense(self, X, ZT, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The similarity of blocks of rows, densified, and its row top-k."""
        scores = np.empty((X.shape[0], k), dtype=np.float32)
        indices = np.empty((X.shape[0], k), dtype=np.int64)
        for a in range(0, X.shape[0], self.batch_size):
            S = X[a : a + self.batch_size] @ ZT
            S = S.toarray() if sp.issparse(S) else np.asarray(S)
            scores[a : a + S.shape[0]], indices[a : a + S.shape[0]] = _rows_topk(S, k)
        return scores, indices

    def _exact_sparse(self, X, ZT, k: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_exact_dense` of sparse queries and labels, without the
        dense similarity blocks where the answer does not need them.

        The ``k + 1`` best non-zero cosines of each row come from
        :func:`~skxmc.utils._sparse.csr_product_topk` (scipy's sums to the
        bit). Where the ``k``-th is positive and beats the next one, the
        ``k`` best of the whole row are those, ordered as
        :func:`_rows_topk` orders them (best first, ties by the lower
        label). Other rows (fewer than ``k`` positive cosines, or a tie at
        the ``k``-th place, where ``np.argpartition`` picks among the tied
        labels) take the dense path, so every row is the dense path's own.
        """
        scores, indices = csr_product_topk(
            X, ZT, k + 1, n_jobs=self.n_jobs, dense_rows=self._dense_rows()
        )
        kth, after = scores[:, k - 1], scores[:, k]
        redo = np.flatnonzero(~((kth > 0) & (after < kth)))
        scores, indices = scores[:, :k].copy(), indices[:, :k].copy()
        if redo.size:
            scores[redo], indices[redo] = self._exact_dense(X[redo], ZT, k)
        return scores, indices
