"""XRLinearClassifier: the XR-Linear (PECOS) tree of linear rankers as an estimator."""

from __future__ import annotations

from numbers import Integral, Real

from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skxmc.base import BaseXMCClassifier
from skxmc.indexing import (
    LABEL_EMBEDDINGS,
    LOSSES,
    NEGATIVE_SAMPLING,
    POST_PROCESSORS,
    ROW_NORMS,
    XRLinearModel,
    hierarchical_kmeans,
    label_embedding,
    normalize_rows,
)
from skxmc.utils._logging import log
from skxmc.utils._sparse import as_float32_csr
from skxmc.utils._validation import check_query_row

__all__ = ["XRLinearClassifier"]


class XRLinearClassifier(BaseXMCClassifier):
    """Extreme multi-label classifier: a label tree of sparse linear rankers.

    XR-Linear (PECOS; the Parabel/Bonsai family): labels are embedded (PIFA:
    the normalised sum of their positive documents' features, optionally
    mixed with label features), clustered into a balanced tree by
    hierarchical spherical k-means, and every tree node gets a binary linear
    model trained on the rows its parent is responsible for. Prediction is a
    beam search down the tree; a label's score is the product of its path's
    transformed node scores. CPU only, parallel over cores.

    Parameters
    ----------
    branching_factor : int, default=16
        Maximum number of children of an internal tree node.
    max_leaf_size : int, default=100
        Maximum number of labels per leaf cluster.
    label_embedding : {"pifa", "text", "pifa_text_concat", "pifa_text_convex"}, \
            default="pifa"
        Label vectors the tree clusters. All but ``"pifa"`` need label
        features: ``fit(..., label_info=LabelInfo(features=Z))`` with one row
        per label (e.g. a TF-IDF of the label text). ``"pifa_text_concat"``
        puts both side by side; ``"pifa_text_convex"`` averages them
        (``embedding_alpha`` on PIFA), which needs ``Z`` in the feature space
        of ``X``.
    embedding_alpha : float, default=0.5
        Weight of PIFA in ``"pifa_text_convex"``.
    kmeans_max_iter : int, default=20
        Iterations of each 2-means split of the tree construction.
    negative_sampling : {"tfn", "man", "tfn+man"}, default="tfn+man"
        Training rows of a node: rows positive for its parent (``"tfn"``,
        teacher-forced negatives), rows whose beam search with the levels
        above reaches its parent (``"man"``, matcher-aware negatives), or both.
    loss : {"squared_hinge", "logistic"}, default="squared_hinge"
        Loss of the node models (L2-regularised, solved by dual coordinate
        descent as in LIBLINEAR).
    C : float, default=1.0
        Inverse regularisation strength of the node models.
    max_iter : int, default=100
        Maximum solver passes per node model.
    tol : float, default=0.1
        Solver stopping tolerance (LIBLINEAR's ``eps``).
    bias : float, default=1.0
        Value of the constant feature whose weight is each model's intercept
        (0 disables the intercept).
    row_norm : {"l2"} or None, default="l2"
        Every row of ``X`` (training rows, label-tree embedding and queries)
        is scaled to unit L2 norm first, so each row's rankings do not depend
        on its length or scale: ``TfidfVectorizer(norm=None)`` or raw counts
        rank as their L2-normalised version does. Rows already of unit norm
        (TF-IDF's default) are kept to the bit. ``None`` uses the rows as
        given (for features whose row norm carries meaning).
    weight_threshold : float, default=0.1
        Node-model weights with a smaller absolute value are dropped after
        training (smaller, faster models). The threshold applies to the
        features scaled to a unit typical row norm: the models are trained on
        ``X / s``, ``s`` the median L2 norm of the non-empty training rows
        (exactly 1 for L2-normalised rows such as TF-IDF's default, where this
        is PECOS' absolute threshold). So features multiplied by any ``c > 0``
        (TF-IDF times 30, ``TfidfVectorizer(norm=None)``, raw counts) keep
        the same share of weights, and ``X`` and ``c * X`` give the same
        rankings up to ties. A warning says when pruning removes more than
        half of the squared norm of a tree level's weights.
    beam_size : int, default=10
        Nodes kept per tree level during prediction, and when mining
        matcher-aware negatives.
    post_processor : {"l3-hinge", "sigmoid"}, default="l3-hinge"
        Transform of node scores before they are multiplied down the path:
        ``exp(-max(1 - s, 0) ** 3)`` or ``1 / (1 + exp(-s))``.
    top_k : int, default=10
        Labels kept per row by :meth:`decision_function` and :meth:`predict`.
    threshold : float, default=0.5
        :meth:`predict` returns the top-``top_k`` labels scoring above it.
    n_jobs : int, default=None
        Threads for clustering, training and batch prediction; None means
        all cores (like scikit-learn's OpenMP-based estimators), -2 all but
        one. Inside ``with joblib.parallel_config(backend="dask"):`` (with a
        ``dask.distributed.Client``), the rankers of every tree level and the
        blocks of rows of batch prediction run on the Dask cluster instead,
        giving the same model (see the user guide, "Scaling out").
    random_state : int, RandomState instance or None, default=None
        Seeds the tree construction and the solvers; the fitted model does
        not depend on ``n_jobs``.
    verbose : int, default=0
        Show progress bars (tree levels being trained) when set.

    Attributes
    ----------
    classes_ : ndarray of shape (n_labels,)
        The labels.
    n_labels_ : int
        Number of labels.
    n_features_in_ : int
        Number of features seen during fit.
    label_tree_ : LabelTree
        The label tree (a chain of cluster-membership matrices).
    model_ : XRLinearModel
        The fitted engine: tree, node models and beam search.
    n_iter_ : int
        Largest number of solver passes of any node model (at most
        ``max_iter``).

    See Also
    --------
    skxmc.indexing.XRLinearModel : The engine, usable without scikit-learn.

    References
    ----------
    .. [1] H.-F. Yu, K. Zhong, J. Zhang, W.-C. Chang and I. S. Dhillon. "PECOS:
       Prediction for Enormous and Correlated Output Spaces." JMLR 23, 2022.
    .. [2] Y. Prabhu, A. Kag, S. Harsola, R. Agrawal and M. Varma. "Parabel:
       Partitioned Label Trees for Extreme Classification with Application to
       Dynamic Search Advertising." WWW 2018.

    Examples
    --------
    >>> from skxmc import XRLinearClassifier
    >>> from skxmc.datasets import make_xmc_classification
    >>> X, Y = make_xmc_classification(n_samples=100, n_labels=20, random_state=0)
    >>> clf = XRLinearClassifier(max_leaf_size=8, random_state=0).fit(X, Y)
    >>> scores, labels = clf.predict_topk(X[:2], k=3)
    >>> labels.shape
    (2, 3)
    """

    _parameter_constraints: dict = {
        **BaseXMCClassifier._parameter_constraints,
        "branching_factor": [Interval(Integral, 2, None, closed="left")],
        "max_leaf_size": [Interval(Integral, 1, None, closed="left")],
        "label_embedding": [StrOptions(set(LABEL_EMBEDDINGS))],
        "embedding_alpha": [Interval(Real, 0, 1, closed="both")],
        "kmeans_max_iter": [Interval(Integral, 1, None, closed="left")],
        "negative_sampling": [StrOptions(set(NEGATIVE_SAMPLING))],
        "loss": [StrOptions(set(LOSSES))],
        "C": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "bias": [Interval(Real, 0, None, closed="left")],
        "row_norm": [StrOptions(set(ROW_NORMS)), None],
        "weight_threshold": [Interval(Real, 0, None, closed="left")],
        "beam_size": [Interval(Integral, 1, None, closed="left")],
        "post_processor": [StrOptions(set(POST_PROCESSORS))],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        *,
        branching_factor=16,
        max_leaf_size=100,
        label_embedding="pifa",
        embedding_alpha=0.5,
        kmeans_max_iter=20,
        negative_sampling="tfn+man",
        loss="squared_hinge",
        C=1.0,
        max_iter=100,
        tol=0.1,
        bias=1.0,
        row_norm="l2",
        weight_threshold=0.1,
        beam_size=10,
        post_processor="l3-hinge",
        top_k=10,
        threshold=0.5,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.branching_factor = branching_factor
        self.max_leaf_size = max_leaf_size
        self.label_embedding = label_embedding
        self.embedding_alpha = embedding_alpha
        self.kmeans_max_iter = kmeans_max_iter
        self.negative_sampling = negative_sampling
        self.loss = loss
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.bias = bias
        self.row_norm = row_norm
        self.weight_threshold = weight_threshold
        self.beam_size = beam_size
        self.post_processor = post_processor
        self.top_k = top_k
        self.threshold = threshold
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def _fit(self, X, Y, *, label_info, seed):
        # normalised once here so the tree's label embedding sees the rows
        # the rankers are trained on
        X = normalize_rows(X, self.row_norm)
        features = None if label_info is None else label_info.features
        if self.label_embedding != "pifa":
            if features is None:
                raise ValueError(
                    f"label_embedding={self.label_embedding!r} needs label features: "
                    "pass fit(X, y, label_info=LabelInfo(features=Z)) with one row "
                    "per label."
                )
            if (
                self.label_embedding == "pifa_text_convex"
                and features.shape[1] != X.shape[1]
            ):
                raise ValueError(
                    "label_embedding='pifa_text_convex' needs label features in the "
                    f"feature space of X: got {features.shape[1]} columns, X has "
                    f"{X.shape[1]}. Use 'pifa_text_concat' otherwise."
                )
        Z = label_embedding(
            X,
            Y,
            method=self.label_embedding,
            label_features=features,
            alpha=self.embedding_alpha,
        )
        self.label_tree_ = hierarchical_kmeans(
            Z,
            branching_factor=self.branching_factor,
            max_leaf_size=self.max_leaf_size,
            max_iter=self.kmeans_max_iter,
            random_state=seed,
            n_jobs=self.n_jobs,
        )
        log(
            f"XR-Linear label tree: {self.label_tree_.n_nodes} nodes per level",
            verbose=self.verbose,
        )
        self.model_ = XRLinearModel.train(
            X,
            Y,
            self.label_tree_,
            negative_sampling=self.negative_sampling,
            loss=self.loss,
            C=self.C,
            max_iter=self.max_iter,
            tol=self.tol,
            bias=self.bias,
            row_norm=self.row_norm,
            weight_threshold=self.weight_threshold,
            beam_size=self.beam_size,
            post_processor=self.post_processor,
            seed=seed,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
        )
        self.n_iter_ = max(1, *self.model_.n_iter_)
        return self

    def _predict_topk(self, X, k):
        return self.model_.predict_topk(
            as_float32_csr(X),
            k,
            beam_size=self.beam_size,
            post_processor=self.post_processor,
            n_jobs=self.n_jobs,
        )

    def predict_topk_one(self, x, k=None):
        """Fast path for one query (serving): the ``k`` best labels of ``x``.

        Skips scikit-learn's input validation for a cheaper check of the one
        row (its shape, the number of features, numbers only, no NaN or
        infinity: the errors of :meth:`predict_topk`) and runs in the calling
        thread.

        Parameters
        ----------
        x : sparse matrix of shape (1, n_features) or array-like of shape \
                (n_features,)
            One query.
        k : int, default=None
            Number of labels; defaults to ``top_k``.

        Returns
        -------
        scores : ndarray of shape (k,), dtype float32
            Best first, ``-inf`` padded.
        indices : ndarray of shape (k,), dtype int64
            Column indices into ``classes_``, ``-1`` padded.
        """
        check_is_fitted(self, "model_")
        k = self._check_k(self.top_k if k is None else k)
        x = check_query_row(x, self.n_features_in_, estimator=type(self).__name__)
        scores, indices = self.model_.predict_topk(
            x, k, beam_size=self.beam_size, post_processor=self.post_processor, n_jobs=1
        )
        return scores[0], indices[0]
