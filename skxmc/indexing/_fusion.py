"""Learned fusion of per-pair scores into one relevance probability.

A deep classifier, a label-text similarity and the label's training frequency
each say something about a (document, candidate label) pair; which one to
trust depends on the pair (text similarity matters most for labels seen
rarely or never in training). :class:`ScoreFusion` learns that from held-out
rows: a gradient-boosted classifier over the pair's scores, their ranks
within the row, and whatever else the caller provides. The classifier rates
the *nominees* of a row, the candidates that are among the few best of at
least one feature; the others are ranked after them.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit
from threadpoolctl import threadpool_limits

from skxmc.utils._sparse import _csr_entries_in
from skxmc.utils._threads import map_row_chunks, run_aside

__all__ = ["ScoreFusion", "candidate_relevance"]

#: Pairs below which an unsupported classifier (see ``_FlatTrees``) predicts
#: on one thread.
_SMALL_INPUT = 20_000
#: Pairs per thread at least, for the flattened trees.
_MIN_CHUNK = 4096
#: Pairs of a few rows from which half go to the helper thread.
_MIN_ASIDE = 64
#: Rows up to which the within-row ranks come from the compiled kernel.
_FEW_ROWS = 16


def candidate_relevance(candidates, Y) -> np.ndarray:
    """Whether each candidate label is a positive of its row.

    Parameters
    ----------
    candidates : array-like of int of shape (n_rows, m)
        Candidate label ids, ``-1`` for empty slots.
    Y : sparse matrix of shape (n_rows, n_labels)
        0/1 label matrix.

    Returns
    -------
    relevant : ndarray of bool of shape (n_rows, m)
        ``Y[i, candidates[i, j]]`` (False on empty slots).

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skxmc.indexing import candidate_relevance
    >>> Y = sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 0]]))
    >>> candidate_relevance(np.array([[2, 1], [1, -1]]), Y)
    array([[ True, False],
           [ True, False]])
    """
    candidates = np.ascontiguousarray(candidates, dtype=np.int64)
    Y = sp.csr_matrix(Y, copy=True)  # the caller's matrix is left as it is
    Y.eliminate_zeros()
    Y.sort_indices()
    if candidates.shape[0] != Y.shape[0]:
        raise ValueError(
            f"candidates have {candidates.shape[0]} rows, Y has {Y.shape[0]}."
        )
    n, m = candidates.shape
    out = np.empty(n * m, dtype=np.bool_)
    # the candidates read as a CSR pattern with m entries per row
    _csr_entries_in(
        np.arange(0, n * m + 1, m, dtype=np.int64),
        candidates.ravel(),
        Y.indptr.astype(np.int64),
        Y.indices.astype(np.int64),
        out,
    )
    return out.reshape(n, m)


def _row_ranks(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Rank of each entry within its row: how many valid entries beat it.

    Equal values share a rank, so the ranks do not depend on the order of
    the candidates. Invalid entries rank after every valid one.
    """
    keyed = np.where(valid, -values, np.inf)
    order = np.argsort(keyed, axis=1, kind="stable")
    ordered = np.take_along_axis(keyed, order, axis=1)
    position = np.arange(values.shape[1])[None, :].repeat(values.shape[0], 0)
    starts = np.ones(ordered.shape, dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    first = np.maximum.accumulate(np.where(starts, position, 0), axis=1)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, first, axis=1)
    return ranks


@njit(cache=True, nogil=True)
def _tree_ensemble_sum(
    X, roots, feature, threshold, left, right, missing_left, is_leaf, value, baseline
):
    """``baseline`` plus the leaf value of every tree, for every row of ``X``.

    The trees are flattened into one node table (children indices are global)
    and evaluated as sklearn's ``_predict_from_raw_data`` does (NaN goes to the
    side its node learned; numerical splits only); the leaf values are added
    in tree order, in float64, as sklearn's ``_raw_predict`` adds them.
    """
    out = np.empty(X.shape[0], dtype=np.float64)
    for i in range(X.shape[0]):
        out[i] = 0.0 + baseline
    # tree by tree (its nodes stay in cache), each row's sum in tree order
    for t in range(roots.shape[0]):
        for i in range(X.shape[0]):
            node = roots[t]
            while not is_leaf[node]:
                v = X[i, feature[node]]
                if np.isnan(v):
                    node = left[node] if missing_left[node] else right[node]
                elif v <= threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            out[i] += value[node]
    return out


@njit(cache=True, nogil=True)
def _tree_ensemble_sum_finite(X, roots, feature, threshold, children, not_leaf,
                              value, baseline):  # fmt: skip
    """:func:`_tree_ensemble_sum` for NaN-free ``X``, without data-dependent
    branches on the split: the rows still inside tree ``t`` take one step
    together, each picking its child ``children[2 * node + (x > threshold)]``
    (left for ``x <= threshold``, as sklearn), and those that reach a leaf
    leave the list of active rows (a branch-free compaction). The rows of a
    step are independent, so the processor overlaps them; mispredicted
    branches were most of the branchy walk's time, and rows that reached
    their leaf no longer step. Same leaves, same sums."""
    n = X.shape[0]
    out = np.empty(n, dtype=np.float64)
    node = np.empty(n, dtype=np.int64)
    active = np.empty(n, dtype=np.int64)
    for i in range(n):
        out[i] = 0.0 + baseline
    for t in range(roots.shape[0]):
        root = roots[t]
        for i in range(n):
            node[i] = root
            active[i] = i
        n_active = n if not_leaf[root] else 0
        while n_active > 0:
            kept = 0
            for a in range(n_active):
                i = active[a]
                nd = node[i]
                child = children[2 * nd + (X[i, feature[nd]] > threshold[nd])]
                node[i] = child
                active[kept] = i
                kept += not_leaf[child]
            n_active = kept
        for i in range(n):
            out[i] += value[node[i]]
    return out


@njit(cache=True, nogil=True)
def _row_ranks_kernel(values, valid, out):
    """:func:`_row_ranks` of every feature: ``out[i, j, f]`` = how many valid
    entries of row ``i`` beat entry ``j`` on feature ``f`` (the valid count for
    invalid entries).

    One sort of a row's valid entries per feature, best first; an entry's
    rank is the position of the first entry equal to it (ties share it).
    """
    n, m, n_features = values.shape
    keys = np.empty(m, dtype=np.float64)
    slots = np.empty(m, dtype=np.int64)
    for i in range(n):
        size = 0
        for j in range(m):
            if valid[i, j]:
                slots[size] = j
                size += 1
        for j in range(m):
            if not valid[i, j]:
                for f in range(n_features):
                    out[i, j, f] = size
        for f in range(n_features):
            for a in range(size):
                keys[a] = -values[i, slots[a], f]
            order = np.argsort(keys[:size])
            rank = 0
            for a in range(size):
                if a > 0 and keys[order[a]] != keys[order[a - 1]]:
                    rank = a
                out[i, slots[order[a]], f] = rank


class _FlatTrees:
    """The fitted trees of a binary HistGradientBoostingClassifier as one table.

    ``predict_proba(X)`` equals the classifier's ``predict_proba(X)[:, 1]``
    exactly on numerical features (a float64 array): the same traversal, the
    same order of additions, and the classifier's own link function. Without
    sklearn's per-call validation and per-tree OpenMP start-up it answers a
    few hundred rows in a fraction of the time; for many rows sklearn's
    parallel prediction is the faster one.
    """

    def __init__(self, classifier):
        nodes = [
            predictor.nodes
            for predictors_of_iteration in classifier._predictors
            for predictor in predictors_of_iteration
        ]
        sizes = np.array([len(n) for n in nodes], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        table = np.concatenate(nodes) if nodes else None
        shift = np.repeat(offsets, sizes)
        self.roots = offsets
        self.feature = table["feature_idx"].astype(np.int64)
        self.threshold = table["num_threshold"].astype(np.float64)
        self.left = table["left"].astype(np.int64) + shift
        self.right = table["right"].astype(np.int64) + shift
        self.missing_left = table["missing_go_to_left"].astype(np.bool_)
        self.is_leaf = table["is_leaf"].astype(np.bool_)
        self.value = table["value"].astype(np.float64)
        # the branch-free walk: children[2 * node + went_right]; leaves (never
        # stepped from) point to themselves, on feature 0
        node_ids = np.arange(len(table), dtype=np.int64)
        self.children = np.empty(2 * len(table), dtype=np.int64)
        self.children[0::2] = np.where(self.is_leaf, node_ids, self.left)
        self.children[1::2] = np.where(self.is_leaf, node_ids, self.right)
        self.step_feature = np.where(self.is_leaf, 0, self.feature)
        self.not_leaf = (~self.is_leaf).astype(np.int64)
        self.baseline = float(np.asarray(classifier._baseline_prediction).ravel()[0])
        self.n_features = int(classifier.n_features_in_)
        self._loss = classifier._loss

    @staticmethod
    def supports(classifier) -> bool:
        """Whether the classifier is one this table reproduces exactly."""
        return (
            getattr(classifier, "n_trees_per_iteration_", None) == 1
            and getattr(classifier, "_preprocessor", 0) is None
            and hasattr(classifier, "_loss")
            and hasattr(classifier, "_baseline_prediction")
            and len(getattr(classifier, "_predictors", ())) > 0
            and not any(
                predictor.nodes["is_categorical"].any()
                for predictors_of_iteration in classifier._predictors
                for predictor in predictors_of_iteration
            )
        )

    def predict_proba(self, X: np.ndarray, n_jobs: int | None = None) -> np.ndarray:
        """Probability of the positive class of every row of ``X`` (float64),
        in row chunks on ``n_jobs`` threads for large ``X`` (None: all cores;
        see :func:`~skxmc.utils._threads.map_row_chunks`)."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(
                f"X must have shape (n, {self.n_features}), got {X.shape}."
            )
        raw = np.empty(X.shape[0], dtype=np.float64)

        def rows(start, stop):
            # rows are independent: chunks on threads give the serial sums
            block = X[start:stop]
            if np.isnan(block).any():
                raw[start:stop] = _tree_ensemble_sum(
                    block, self.roots, self.feature, self.threshold, self.left,
                    self.right, self.missing_left, self.is_leaf, self.value,
                    self.baseline,
                )  # fmt: skip
            else:
                raw[start:stop] = _tree_ensemble_sum_finite(
                    block, self.roots, self.step_feature, self.threshold,
                    self.children, self.not_leaf, self.value, self.baseline,
                )  # fmt: skip

        map_row_chunks(rows, X.shape[0], n_jobs, min_rows=_MIN_CHUNK)
        return self._loss.predict_proba(raw[:, None])[:, 1]


class ScoreFusion:
    """Gradient-boosted fusion of the scores of (row, candidate label) pairs.

    Each pair is described by ``n_features`` numbers (scores of several
    models, label statistics); :meth:`fit` learns the probability that the
    pair is relevant with a
    :class:`~sklearn.ensemble.HistGradientBoostingClassifier`, from rows
    that the models did not train on. The within-row rank of every feature
    is added as a feature (``add_ranks``), so the classifier sees both the
    absolute score and how it compares with the row's other candidates.

    Only the *nominees* of a row are learned from and ranked first: the
    candidates within the ``nominees`` best of at least one feature. A
    pointwise classifier trained on every candidate spends itself on the many
    easy negatives, and then ranks some of them above the few candidates
    every model agrees on; restricted to the nominees, it learns where the
    ranking is decided. (On LF-DebianPackages, fusing DECAF's scores with an
    XR-Linear score: test P@1 79.6 with 10 nominees per feature, 71.9 with
    all ~270 candidates of a row.)

    Parameters
    ----------
    add_ranks : bool, default=True
        Append each feature's within-row rank (0 = best) to the features.
    nominees : int or None, default=10
        A candidate is a nominee when it ranks among the ``nominees`` best
        of its row by at least one feature (ties share a rank). Only
        nominees train the classifier; at prediction the other candidates
        score their probability times the row's lowest nominee score, so
        they never rank above a nominee. None: every candidate is a nominee.
    max_iter : int, default=100
        Boosting iterations.
    learning_rate : float, default=0.1
        Shrinkage of the boosting.
    max_leaf_nodes : int, default=31
        Leaves per tree.
    max_pairs : int, default=2_000_000
        Training pairs kept (rows are subsampled beyond that).
    random_state : int or None, default=None
        Seeds the subsampling and the boosting.

    Attributes
    ----------
    classifier_ : HistGradientBoostingClassifier
        The fitted classifier.
    n_features_ : int
        Number of pair features given to :meth:`fit`.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skxmc.indexing import ScoreFusion
    >>> rng = np.random.default_rng(0)
    >>> candidates = np.tile(np.arange(4), (200, 1))
    >>> Y = sp.csr_matrix(np.eye(4)[rng.integers(0, 4, 200)])
    >>> # feature 0 is informative only when feature 1 says "trust me"
    >>> noise = rng.random((200, 4))
    >>> trust = rng.random((200, 1)).repeat(4, 1) > 0.5
    >>> signal = np.where(trust, Y.toarray(), noise)
    >>> features = np.stack([signal, trust.astype(float)], axis=-1)
    >>> fusion = ScoreFusion(random_state=0).fit(features, candidates, Y)
    >>> fusion.predict(features, candidates).shape
    (200, 4)
    """

    def __init__(
        self,
        *,
        add_ranks=True,
        nominees=10,
        max_iter=100,
        learning_rate=0.1,
        max_leaf_nodes=31,
        max_pairs=2_000_000,
        random_state=None,
    ):
        self.add_ranks = add_ranks
        self.nominees = nominees
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.max_pairs = max_pairs
        self.random_state = random_state

    def _pair_matrix(
        self, features, candidates
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pair features (with ranks), valid slots and nominated slots."""
        features = np.asarray(features, dtype=np.float64)
        candidates = np.asarray(candidates, dtype=np.int64)
        if features.ndim != 3 or features.shape[:2] != candidates.shape:
            raise ValueError(
                "features must have shape (n_rows, m, n_features) with (n_rows, m) "
                f"= candidates.shape {candidates.shape}, got {features.shape}."
            )
        if np.isnan(features).any():
            raise ValueError("features contain NaN.")
        if self.nominees is not None and (
            isinstance(self.nominees, bool) or int(self.nominees) < 1
        ):
            raise ValueError(
                f"nominees must be a positive integer or None, got {self.nominees!r}."
            )
        valid = candidates >= 0
        if features.shape[0] <= _FEW_ROWS:
            # one call instead of a dozen NumPy calls per feature (single queries)
            ranks = np.empty(features.shape, dtype=np.int64)
            _row_ranks_kernel(np.ascontiguousarray(features), valid, ranks)
        else:
            ranks = np.stack(
                [
                    _row_ranks(features[:, :, f], valid)
                    for f in range(features.shape[2])
                ],
                axis=-1,
            )
        nominated = valid.copy()
        if self.nominees is not None:
            nominated &= ranks.min(axis=-1) < self.nominees
        parts = [features]
        if self.add_ranks:
            parts.append(ranks.astype(np.float64))
        return np.concatenate(parts, axis=-1), valid, nominated

    def fit(self, features, candidates, Y) -> ScoreFusion:
        """Learn the relevance of candidate pairs from labelled rows.

        Parameters
        ----------
        features : array-like of shape (n_rows, m, n_features)
            Features of every (row, candidate) pair.
        candidates : array-like of int of shape (n_rows, m)
            Candidate labels of every row (``-1`` for empty slots).
        Y : sparse matrix of shape (n_rows, n_labels)
            True labels of the rows.

        Returns
        -------
        self : ScoreFusion
            The fitted fusion.
        """
        from sklearn.ensemble import HistGradientBoostingClassifier

        matrix, _, nominated = self._pair_matrix(features, candidates)
        relevant = candidate_relevance(candidates, Y)
        rng = np.random.default_rng(self.random_state)
        rows = np.arange(matrix.shape[0])
        per_row = max(1, matrix.shape[1])
        if matrix.shape[0] * per_row > self.max_pairs:
            n_keep = max(1, self.max_pairs // per_row)
            rows = np.sort(rng.choice(matrix.shape[0], n_keep, replace=False))
        X_pairs = matrix[rows][nominated[rows]]
        y_pairs = relevant[rows][nominated[rows]]
        if y_pairs.all() or not y_pairs.any():
            raise ValueError(
                "The nominated candidates of the fusion rows are all relevant or "
                "all irrelevant: there is nothing to learn from."
            )
        seed = None if self.random_state is None else int(rng.integers(2**31 - 1))
        self.classifier_ = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            early_stopping=False,
            random_state=seed,
        ).fit(X_pairs, y_pairs)
        self.n_features_ = int(np.shape(features)[2])
        return self

    def predict(self, features, candidates, *, k=None, factors=None) -> np.ndarray:
        """Relevance score of every pair (``-inf`` on empty slots).

        The estimated probability that the pair is relevant for nominees;
        for the other candidates, that probability times the row's lowest
        nominee probability (see ``nominees``).

        Parameters
        ----------
        features : array-like of shape (n_rows, m, n_features)
            As in :meth:`fit`.
        candidates : array-like of int of shape (n_rows, m)
            As in :meth:`fit`.
        k : int or None, default=None
            For a top-``k`` caller: the other candidates of a row are scored
            only where one of them could be among the row's ``k`` best, and
            get ``-inf`` elsewhere. A non-nominee's score is at most the
            row's lowest nominee score, so where the row's ``k``-th best
            nominee is strictly above that bound (times ``factors``) the
            row's top ``k`` is its nominees' and their scores are the same
            as with None; the trees run on the nominees only (a fifth of a
            single query's pairs on LF-DebianPackages). Rows with equal
            scores among their ``k + 1`` best nominees are scored whole (the
            caller's top ``k`` may order ties by the other entries). None:
            every pair.
        factors : array-like of shape (n_rows, m) or None, default=None
            Positive float32 factors the caller multiplies the scores by
            before its top ``k`` (a propensity tilt); read only with ``k``.
            None: the scores as they are.

        Returns
        -------
        scores : ndarray of shape (n_rows, m), dtype float32
            Relevance scores in [0, 1] (``-inf`` on empty slots and, with
            ``k``, on the pairs that cannot reach the top ``k``).
        """
        if np.shape(features)[-1] != self.n_features_:
            raise ValueError(
                f"features have {np.shape(features)[-1]} columns, the fusion was "
                f"fitted with {self.n_features_}."
            )
        if k is not None and (isinstance(k, bool) or int(k) < 1):
            raise ValueError(f"k must be a positive integer or None, got {k!r}.")
        matrix, valid, nominated = self._pair_matrix(features, candidates)
        out = np.full(valid.shape, -np.inf, dtype=np.float32)
        others = valid & ~nominated
        if k is None or not others.any():
            self._score_pairs(matrix, valid, out)
        else:
            self._score_pairs(matrix, nominated, out)
            others &= self._rows_beyond_nominees(out, nominated, others, int(k),
                                                 factors)[:, None]  # fmt: skip
            if others.any():
                self._score_pairs(matrix, others, out)
        if others.any():
            # every row with a candidate has a nominee (the best of feature 0)
            floor = np.where(nominated, out, np.inf).min(axis=1)
            # only the others' entries: arithmetic on the -inf padding would
            # warn (issue 14)
            rows, cols = np.nonzero(others)
            out[rows, cols] = out[rows, cols] * floor[rows]
        return out

    def _score_pairs(self, matrix, chosen, out) -> None:
        """``out[chosen]`` = the classifier's probability of those pairs (each
        pair alone: the same value whichever pairs are scored with it)."""
        if not chosen.any():
            return
        pairs = matrix[chosen]
        if self._flat_trees() is not None:
            # sklearn's predict costs a validation, an OpenMP start-up per
            # tree and threadpool_limits' library scan (~3 ms a query); for
            # many pairs its OpenMP threads wait on busy cores (a batch block
            # of 64k pairs: 1.8 s on two busy cores, 0.18 s for the flat
            # trees on two threads)
            out[chosen] = self._flat_proba(pairs, few_rows=matrix.shape[0] <= _FEW_ROWS)
        else:
            # OpenMP start-up per tree dominates small inputs (a single
            # query: ~3 ms on one thread, up to ~90 ms on busy cores)
            threads = 1 if pairs.shape[0] < _SMALL_INPUT else None
            with threadpool_limits(threads, user_api="openmp"):
                out[chosen] = self.classifier_.predict_proba(pairs)[:, 1]

    @staticmethod
    def _rows_beyond_nominees(out, nominated, others, k, factors) -> np.ndarray:
        """The rows whose top ``k`` could hold a non-nominee (see predict's
        ``k``): fewer than ``k`` nominees, or a ``k``-th best nominee score
        (times its factor) not strictly above the row's lowest nominee score
        times the largest factor of its other candidates (rounded as the
        caller's float32 product: a bound on their final scores). Rows with
        a tie among their ``k + 1`` best nominee scores are counted too: a
        top-``k`` routine may order equal scores by where the others lie,
        so those rows keep every score they had."""
        m = out.shape[1]
        if k >= m:
            return others.any(axis=1)
        if factors is None:
            factors = np.ones(out.shape, dtype=np.float32)
        factors = np.asarray(factors, dtype=np.float32)
        if factors.shape != out.shape:
            raise ValueError(
                f"factors must have shape {out.shape}, got {factors.shape}."
            )
        final = np.where(nominated, out * factors, -np.inf).astype(np.float32)
        best = -np.sort(-final, axis=1)[:, : k + 1]
        tied = ((best[:, 1:] == best[:, :-1]) & np.isfinite(best[:, 1:])).any(axis=1)
        floor = np.where(nominated, out, np.inf).min(axis=1).astype(np.float32)
        largest = np.where(others, factors, 0).max(axis=1).astype(np.float32)
        bound = floor * largest
        return others.any(axis=1) & (tied | ~(best[:, k - 1] > bound))

    def _flat_proba(self, pairs: np.ndarray, few_rows: bool) -> np.ndarray:
        """The flattened trees' probabilities of ``pairs``; for the pairs of a
        few rows (a single query), half of them on the helper thread of
        :func:`~skxmc.utils._threads.run_aside` (rows are independent: the
        same values)."""
        flat = self._flat_trees()
        if not few_rows or pairs.shape[0] < _MIN_ASIDE:
            return flat.predict_proba(pairs)
        half = pairs.shape[0] // 2
        second = run_aside(flat.predict_proba, pairs[half:], 1)
        first = flat.predict_proba(pairs[:half], 1)
        return np.concatenate([first, second.result()])

    def _flat_trees(self):
        """The classifier's trees as a :class:`_FlatTrees` (None if unsupported),
        built once per fitted classifier and not pickled."""
        cached = self.__dict__.get("_flat")
        if cached is None or cached[0] is not self.classifier_:
            flat = None
            if _FlatTrees.supports(self.classifier_):
                flat = _FlatTrees(self.classifier_)
            cached = self._flat = (self.classifier_, flat)
        return cached[1]

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_flat", None)
        return state
