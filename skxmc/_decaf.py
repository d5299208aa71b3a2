"""DecafClassifier: DECAF (Mittal et al., WSDM 2021) as a scikit-learn estimator."""

from __future__ import annotations

import os
import warnings
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skxmc.base import BaseXMCClassifier
from skxmc.indexing import LabelShortlist, hierarchical_kmeans, label_embedding
from skxmc.metrics._ranking import _jain_inverse_propensity
from skxmc.utils._sparse import as_float32_csr, l2_normalize_csr

__all__ = ["DecafClassifier"]

_CHECKPOINT_NAME = "decaf.pt"
# Parameters that do not change the fitted model (a checkpoint stays valid).
_NEUTRAL_PARAMS = ("verbose", "checkpoint_dir", "top_k", "threshold", "device")


class DecafClassifier(BaseXMCClassifier):
    """DECAF: a deep extreme classifier whose label weights are read from label text.

    A document is embedded as the TF-IDF-weighted sum of token embeddings
    ``E``, passed through a gated residual block with a spectral-norm linear
    layer, a ReLU and dropout. Label ``l`` scores a document vector ``x`` with
    ``w_l . x + b_l`` where ``w_l = sigmoid(alpha) * R(E z_l) + sigmoid(beta) *
    eta_l``: ``z_l`` is the TF-IDF of the label text, ``E`` the *same* token
    embeddings as the documents', ``R`` a residual block and ``eta_l`` a free
    vector. Labels are clustered (hierarchical spherical k-means of their
    PIFA and text features); a meta-classifier of the same form scores the
    clusters, and only the labels of the ``beam_size`` best clusters (plus,
    optionally, an approximate-nearest-neighbour shortlist) are scored, in
    training as in prediction, so no ``n_samples x n_labels`` matrix is ever
    built. Training has two stages of ``n_epochs`` each: the surrogate task
    (clusters only), then the extreme task (clusters and shortlisted labels,
    label vectors ``eta`` initialised from the surrogate embeddings).

    Parameters
    ----------
    embedding_dim : int, default=300
        Size of the token embeddings, document and label vectors.
    n_epochs : int, default=10
        Epochs of each of the two training stages.
    batch_size : int, default=256
        Documents per mini-batch.
    learning_rate : float, default=0.01
        Learning rate of Adam (dense parameters) and SparseAdam (embedding
        tables); halved after half of each stage's epochs.
    dropout : float, default=0.2
        Dropout of the residual blocks and of the document vectors.
    max_leaf_size : int, default=8
        Maximum number of labels per cluster.
    beam_size : int, default=32
        Clusters whose labels are shortlisted for each document.
    text_shortlist_size : int, default=0
        If positive, the labels whose text is most similar to the document
        (cosine of their TF-IDF vectors, exact sparse search) are added to the
        shortlist, in training (as hard negatives or positives) and in
        prediction. Cheap and strong when label text overlaps document text.
    ann_shortlist_size : int, default=0
        If positive, the labels whose weight vectors are nearest (cosine,
        pynndescent index) to the document vector are added to the shortlist
        at prediction.
    meta_weight : float, default=0.5
        Prediction score ``(1 - meta_weight - text_weight) * sigmoid(label
        score) + meta_weight * sigmoid(cluster score) + text_weight *
        cosine(document TF-IDF, label TF-IDF)``.
    text_weight : float, default=0.0
        Weight of the TF-IDF cosine between document and label text in the
        prediction score (an addition to DECAF, in the spirit of the score
        fusions of the authors' code base; 0 gives plain DECAF).
    fusion : {"weights", "learned"}, default="weights"
        How the scores of a (document, label) pair are combined.
        ``"weights"``: the weighted sum of ``meta_weight`` and
        ``text_weight``. ``"learned"``: ``fusion_fraction`` of the training
        rows are held out of the network's training, and a gradient-boosted
        :class:`~skxmc.indexing.ScoreFusion` learns from them the probability
        that a shortlisted label is relevant, from its label score, cluster
        score, label-text cosine and training frequency (and their ranks in
        the shortlist); that probability is the prediction score. It learns,
        for instance, to trust the label text more for labels seen rarely or
        never in training. The ranks make a pair's score depend on the other
        shortlisted labels of its row. An addition to DECAF.
    fusion_fraction : float, default=0.1
        Share of the training rows held out for ``fusion="learned"``.
    reranker : {None, "shortlist", "xr-linear"}, default=None
        A sparse linear ranker on the input features whose score of every
        shortlisted pair is one more feature of the learned fusion (requires
        ``fusion="learned"``). An addition to DECAF: a linear model on the
        sparse features is strong on frequent labels, the label text on rare
        ones, and the fusion learns which to trust.
        ``"shortlist"``: one model per label
        (:class:`~skxmc.indexing.ShortlistReranker`, as ELIAS's re-ranker)
        trained on the ``rerank_size`` best labels that the trained network
        returns for each of its training rows; its raw score is the feature.
        ``"xr-linear"``: an XR-Linear ranker
        (:class:`~skxmc.indexing.XRLinearModel`; 16-way tree with leaves of
        at most 100 labels, built from the same label embedding as DECAF's
        clusters, beam 20) trained on the network's training rows; its
        ``rerank_size`` best labels join every shortlist and its path score
        is the feature.
    rerank_size : int, default=100
        ``"shortlist"``: labels per training row that train the re-ranker.
        ``"xr-linear"``: labels the ranker adds to every shortlist.
    propensity_tilt : float, default=0.0
        Multiply every score by ``(w_l / max w)^propensity_tilt``, where
        ``w_l`` is the inverse propensity of label ``l`` (Jain et al.,
        ``A=0.55``, ``B=1.5``, from the training label counts). 0 ranks by
        relevance (best P@k); larger values move rare labels up (PSP@k rises,
        P@k falls). Ranking by relevance times inverse propensity is the
        decision rule that maximises the expected PSP@k. Scores stay in
        [0, 1].
    max_features : int, default=None
        Vocabulary size of the internal TF-IDF vectorizer (raw-text input).
    max_label_tokens : int, default=None
        If set, keep only the ``max_label_tokens`` largest TF-IDF entries of
        every label's (and cluster's) features: label vectors get cheaper to
        compute, which matters on the CPU when label texts are long.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training rows and stop the
        extreme stage when their P@1 has not improved for
        ``n_iter_no_change`` epochs; the best epoch's weights are kept.
    validation_fraction : float, default=0.1
        Held-out share of the rows when ``early_stopping``.
    n_iter_no_change : int, default=3
        Patience of early stopping, in epochs.
    checkpoint_dir : str or path-like, default=None
        If set, the training state is saved there after every epoch, and a
        fit with the same data and parameters resumes from it (a completed
        checkpoint gives the finished model at once).
    device : str, default="auto"
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    top_k : int, default=10
        Labels kept per row by :meth:`decision_function` and :meth:`predict`.
    threshold : float, default=0.5
        :meth:`predict` returns the top-``top_k`` labels scoring above it
        (scores lie in [0, 1]).
    random_state : int, RandomState instance or None, default=None
        Seeds the clustering, the weights, dropout and the batch order; the
        same seed gives the same model on the CPU.
    verbose : int, default=0
        Progress bars and per-epoch losses.

    Attributes
    ----------
    classes_ : ndarray of shape (n_labels,)
        The labels (grown by :meth:`add_labels`).
    n_labels_ : int
        Number of labels.
    n_features_in_ : int
        Number of features seen during fit (numeric input only).
    vectorizer_ : TfidfVectorizer or None
        The TF-IDF of documents and label text (raw-text input only).
    network_ : DecafNetwork
        The torch module (encoder, cluster and label classifiers).
    cluster_of_label_ : ndarray of shape (n_labels,)
        Cluster of every label.
    n_clusters_ : int
        Number of label clusters.
    loss_curve_ : list of float
        Mean training loss of every epoch, both stages in turn.
    n_iter_ : int
        Epochs run (both stages).

    See Also
    --------
    skxmc.XRLinearClassifier : Label tree of sparse linear rankers.

    Notes
    -----
    Differences from the authors' code: one clustering instead of an ensemble
    of three, the cluster and label tasks of the extreme stage are trained
    jointly, and the training shortlist comes from the current
    meta-classifier.

    References
    ----------
    .. [1] A. Mittal, K. Dahiya, S. Agrawal, D. Saini, S. Agarwal, P. Kar and
       M. Varma. "DECAF: Deep Extreme Classification with Label Features."
       WSDM 2021.

    Examples
    --------
    >>> from skxmc import LabelInfo
    >>> from skxmc import DecafClassifier
    >>> from skxmc.datasets import make_xmc_classification
    >>> data = make_xmc_classification(n_samples=100, n_labels=20,
    ...                                return_text=True, random_state=0)
    >>> clf = DecafClassifier(embedding_dim=16, n_epochs=2, max_leaf_size=4,
    ...                       beam_size=3, random_state=0)
    >>> clf = clf.fit(data.text, data.Y, label_info=LabelInfo(text=data.label_text))
    >>> scores, labels = clf.predict_topk(data.text[:2], k=3)
    >>> labels.shape
    (2, 3)
    """

    _accepts_text = True

    _parameter_constraints: dict = {
        **BaseXMCClassifier._parameter_constraints,
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "n_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "max_leaf_size": [Interval(Integral, 1, None, closed="left")],
        "beam_size": [Interval(Integral, 1, None, closed="left")],
        "text_shortlist_size": [Interval(Integral, 0, None, closed="left")],
        "ann_shortlist_size": [Interval(Integral, 0, None, closed="left")],
        "meta_weight": [Interval(Real, 0, 1, closed="both")],
        "text_weight": [Interval(Real, 0, 1, closed="both")],
        "fusion": [StrOptions({"weights", "learned"})],
        "fusion_fraction": [Interval(Real, 0, 1, closed="neither")],
        "reranker": [None, StrOptions({"shortlist", "xr-linear"})],
        "rerank_size": [Interval(Integral, 1, None, closed="left")],
        "propensity_tilt": [Interval(Real, 0, None, closed="left")],
        "max_features": [Interval(Integral, 1, None, closed="left"), None],
        "max_label_tokens": [Interval(Integral, 1, None, closed="left"), None],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "checkpoint_dir": [str, os.PathLike, None],
        "device": [str],
    }

    def __init__(
        self,
        *,
        embedding_dim=300,
        n_epochs=10,
        batch_size=256,
        learning_rate=0.01,
        dropout=0.2,
        max_leaf_size=8,
        beam_size=32,
        text_shortlist_size=0,
        ann_shortlist_size=0,
        meta_weight=0.5,
        text_weight=0.0,
        fusion="weights",
        fusion_fraction=0.1,
        reranker=None,
        rerank_size=100,
        propensity_tilt=0.0,
        max_features=None,
        max_label_tokens=None,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=3,
        checkpoint_dir=None,
        device="auto",
        top_k=10,
        threshold=0.5,
        random_state=None,
        verbose=0,
    ):
        self.embedding_dim = embedding_dim
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.dropout = dropout
        self.max_leaf_size = max_leaf_size
        self.beam_size = beam_size
        self.text_shortlist_size = text_shortlist_size
        self.ann_shortlist_size = ann_shortlist_size
        self.meta_weight = meta_weight
        self.text_weight = text_weight
        self.fusion = fusion
        self.fusion_fraction = fusion_fraction
        self.reranker = reranker
        self.rerank_size = rerank_size
        self.propensity_tilt = propensity_tilt
        self.max_features = max_features
        self.max_label_tokens = max_label_tokens
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.checkpoint_dir = checkpoint_dir
        self.device = device
        self.top_k = top_k
        self.threshold = threshold
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _fit(self, X, Y, *, label_info, seed):
        import torch

        from skxmc.training import resolve_device
        from skxmc.training._data import cluster_table
        from skxmc.training._seed import seeded_torch

        if self.reranker is not None and self.fusion != "learned":
            raise ValueError(
                f"reranker={self.reranker!r} needs fusion='learned': the "
                "re-ranker's score is a feature of the learned fusion."
            )
        if self.meta_weight + self.text_weight > 1:
            raise ValueError(
                f"meta_weight + text_weight must be <= 1, got {self.meta_weight} + "
                f"{self.text_weight}."
            )
        device = resolve_device(self.device)
        self._weights_cache = None
        X, Z = self._fit_features(X, label_info)
        Y = sp.csr_matrix(Y, dtype=np.float32)
        rows = np.arange(X.shape[0])
        val_rows = fusion_rows = None
        if self.fusion == "learned":
            fusion_rows, rows = _hold_out(
                rows, self.fusion_fraction, seed + 1, "fusion_fraction"
            )
        if self.early_stopping:
            val_rows, rows = _hold_out(
                rows, self.validation_fraction, seed, "validation_fraction"
            )
        counts = np.bincount(Y.indices, minlength=Y.shape[1])
        self._n_train_rows = Y.shape[0]
        self._inv_propensity = _jain_inverse_propensity(counts, Y.shape[0])
        self._log_frequency = np.log1p(
            np.bincount(Y[rows].indices, minlength=Y.shape[1])
        ).astype(np.float32)
        # a refit must not score with the previous fit's fusion or re-ranker
        self.fusion_ = self.reranker_ = None

        # Label clusters: spherical k-means of [PIFA, label text].
        embedding = self._clustering_embedding(X[rows], Y[rows], Z, seed)
        tree = hierarchical_kmeans(
            embedding, max_leaf_size=self.max_leaf_size, random_state=seed
        )
        cluster_of = tree.leaf_of_label()
        n_clusters = int(cluster_of.max()) + 1
        membership = _membership(cluster_of, n_clusters)
        cluster_features = normalize(membership.T @ normalize(Z)).astype(np.float32)
        self._text_index = None
        text_candidates = None
        if self.text_shortlist_size or self.text_weight or fusion_rows is not None:
            self._text_index = LabelShortlist(method="exact").fit(Z)
        if self.text_shortlist_size:
            text_candidates = self._text_index.query(
                X, k=min(self.text_shortlist_size, Z.shape[0])
            )[1]
        Z = _keep_top_entries(Z, self.max_label_tokens)
        cluster_features = _keep_top_entries(cluster_features, self.max_label_tokens)
        Y_clusters = sp.csr_matrix(Y @ membership)
        Y_clusters.data[:] = 1.0

        self.cluster_of_label_ = cluster_of
        self.n_clusters_ = n_clusters
        self._table = torch.from_numpy(cluster_table(membership))
        self._ann = None
        with seeded_torch(seed, device):
            self.network_ = self._make_network(X.shape[1], Z, cluster_features)
            self.network_.to(device)
            self.network_.clusters.init_free_vectors()
            self._train(
                X,
                Y,
                Y_clusters,
                rows,
                val_rows,
                text_candidates,
                seed=seed,
                device=device,
            )
        self._build_ann(seed)
        self._weights_cache = self._all_weights()
        if self.reranker == "shortlist":
            from skxmc.indexing import ShortlistReranker

            _, candidates = self._predict_features(
                X[rows], self.rerank_size, device, self._weights_cache
            )
            self.reranker_ = ShortlistReranker.train(
                X[rows], Y[rows], candidates, seed=seed
            )
        elif self.reranker == "xr-linear":
            from skxmc.indexing import XRLinearModel

            xr_tree = hierarchical_kmeans(
                embedding, branching_factor=16, max_leaf_size=100, random_state=seed
            )
            self.reranker_ = XRLinearModel.train(
                X[rows], Y[rows], xr_tree, beam_size=20, seed=seed
            )
        if fusion_rows is not None:
            from skxmc.indexing import ScoreFusion

            features, candidates = self._pair_features(
                X[fusion_rows], device, self._weights_cache
            )
            self.fusion_ = ScoreFusion(random_state=seed).fit(
                features, candidates, Y[fusion_rows]
            )
        return self

    def _clustering_embedding(self, X, Y, Z, seed):
        """Label vectors the clusters are built from: [PIFA, label text]."""
        return label_embedding(X, Y, method="pifa_text_concat", label_features=Z)

    def _make_network(self, n_features, label_features, cluster_features):
        """The torch module (built inside the seeded context of ``fit``)."""
        from skxmc.nn import DecafNetwork

        return DecafNetwork(
            n_features,
            label_features,
            cluster_features,
            embedding_dim=self.embedding_dim,
            dropout=self.dropout,
        )

    def _extra_candidates(self, shortlist, cluster_scores):
        """Labels to add to the cluster shortlist at prediction (none in DECAF).

        ``shortlist`` holds the label ids of the best clusters, shape
        ``(n_rows, n_shortlist)``, and ``cluster_scores`` the score of each
        one's cluster; returns a list of ``(n_rows, m)`` label-id arrays.
        """
        return []

    def _fit_features(self, X, label_info):
        """TF-IDF of documents and label text, or the given numeric features."""
        text = None if label_info is None else label_info.text
        features = None if label_info is None else label_info.features
        if isinstance(X, list):
            if text is None:
                raise ValueError(
                    "DecafClassifier needs label text: pass fit(X, y, "
                    "label_info=LabelInfo(text=label_texts)) with one text per "
                    "label (or numeric X with LabelInfo(features=Z))."
                )
            from sklearn.feature_extraction.text import TfidfVectorizer

            self.vectorizer_ = TfidfVectorizer(
                sublinear_tf=True, max_features=self.max_features, dtype=np.float32
            )
            self.vectorizer_.fit(list(X) + list(text))
            X = self.vectorizer_.transform(X)
            Z = self.vectorizer_.transform(text)
        else:
            if features is None:
                raise ValueError(
                    "DecafClassifier needs label features in the feature space of "
                    "X: pass fit(X, y, label_info=LabelInfo(features=Z)) with one "
                    "row per label (e.g. the TF-IDF of the label text), or raw "
                    "text X with LabelInfo(text=...)."
                )
            Z = sp.csr_matrix(features, dtype=np.float32)
            if Z.shape[1] != X.shape[1]:
                raise ValueError(
                    f"Label features have {Z.shape[1]} columns but X has "
                    f"{X.shape[1]}: they must share one feature space."
                )
            self.vectorizer_ = None
            X = as_float32_csr(X)
        return X, sp.csr_matrix(Z, dtype=np.float32)

    def _train(
        self, X, Y, Y_clusters, rows, val_rows, text_candidates, *, seed, device
    ):
        import torch

        from skxmc.nn import shortlist_bce_loss
        from skxmc.training._checkpoint import load_checkpoint, save_checkpoint
        from skxmc.training._data import csr_to_bag, minibatches, shortlist_targets
        from skxmc.training._loop import LoopState, fit_loop, make_optimizers
        from skxmc.training._seed import get_rng_state, set_rng_state

        net = self.network_
        table = self._table.to(device)
        n_clusters = self.n_clusters_
        beam = min(self.beam_size, n_clusters)

        def cluster_loss(x, batch):
            scores = net.clusters.score_all(x)
            targets = torch.from_numpy(Y_clusters[batch].toarray()).to(device)
            return scores, shortlist_bce_loss(scores, targets)

        def surrogate_loss(batch):
            x = net(*csr_to_bag(X[batch], device))
            return cluster_loss(x, batch)[1]

        def extreme_loss(batch):
            x = net(*csr_to_bag(X[batch], device))
            scores, loss = cluster_loss(x, batch)
            top = torch.topk(scores.detach(), beam, dim=1).indices
            shortlist = table[top].reshape(len(batch), -1).cpu().numpy()
            if text_candidates is not None:
                shortlist = np.concatenate([shortlist, text_candidates[batch]], 1)
            ids, targets = shortlist_targets(shortlist, Y[batch])
            ids = torch.from_numpy(ids).to(device)
            label_scores = net.labels(x, ids)
            targets = torch.from_numpy(targets).to(device)
            return loss + shortlist_bce_loss(label_scores, targets, ids >= 0)

        def score_fn():
            from skxmc.metrics import precision_at_k

            topk = self._predict_features(X[val_rows], 1, device)
            return precision_at_k(Y[val_rows], topk, k=1)

        path = None
        payload = None
        fingerprint = None
        if self.checkpoint_dir is not None:
            path = Path(self.checkpoint_dir) / _CHECKPOINT_NAME
            fingerprint = self._fingerprint(X, Y, seed)
            if path.exists():
                payload = load_checkpoint(path, map_location=device)
                if payload.get("fingerprint") != fingerprint:
                    warnings.warn(
                        f"Ignoring the checkpoint {path}: it was written by a fit "
                        "with other data or parameters.",
                        UserWarning,
                        stacklevel=4,
                    )
                    payload = None
        start_stage = 0
        if payload is not None:
            net.load_state_dict(payload["model"])
            start_stage = payload["stage"]
        self.loss_curve_ = [] if payload is None else list(payload["loss_curve"])

        stages = [("surrogate", surrogate_loss), ("extreme", extreme_loss)]
        for stage, (name, loss_fn) in enumerate(stages):
            if stage < start_stage:
                continue
            resuming = payload is not None and stage == start_stage
            if stage == 1 and not resuming:
                net.labels.init_free_vectors()
            optimizers = make_optimizers(net, self.learning_rate)
            state = LoopState()
            if resuming:
                for optimizer, saved in zip(optimizers, payload["optimizers"]):
                    optimizer.load_state_dict(saved)
                state = LoopState.from_state_dict(payload["loop"])
                set_rng_state(payload["rng"], device)

            def make_batches(epoch, stage=stage):
                generator = torch.Generator().manual_seed(
                    seed + 7919 * stage + 104729 * epoch
                )
                return [
                    rows[b] for b in minibatches(len(rows), self.batch_size, generator)
                ]

            def on_epoch_end(loop_state, stage=stage, optimizers=optimizers):
                self.loss_curve_.append(loop_state.history[-1]["loss"])
                if path is not None:
                    save_checkpoint(
                        path,
                        {
                            "fingerprint": fingerprint,
                            "stage": stage,
                            "loop": loop_state.state_dict(),
                            "model": net.state_dict(),
                            "optimizers": [o.state_dict() for o in optimizers],
                            "rng": get_rng_state(device),
                            "loss_curve": list(self.loss_curve_),
                        },
                    )

            use_validation = stage == 1 and val_rows is not None
            fit_loop(
                net,
                loss_fn,
                make_batches,
                optimizers,
                n_epochs=self.n_epochs,
                state=state,
                device=device,
                score_fn=score_fn if use_validation else None,
                n_iter_no_change=self.n_iter_no_change,
                lr_decay_epochs=(self.n_epochs // 2,) if self.n_epochs >= 4 else (),
                on_epoch_end=on_epoch_end,
                verbose=self.verbose,
                desc=f"DECAF {name}",
            )
        net.eval()
        self.n_iter_ = len(self.loss_curve_)

    def _fingerprint(self, X, Y, seed) -> dict:
        from skxmc.training import fit_fingerprint

        arrays = (X.indptr, X.indices, X.data, Y.indptr, Y.indices)
        return fit_fingerprint(self, arrays, seed, neutral=_NEUTRAL_PARAMS)

    def _build_ann(self, seed):
        import torch

        self._ann = None
        if self.ann_shortlist_size == 0:
            return
        with torch.inference_mode():
            W, _ = self.network_.labels.all_weights()
        self._ann = LabelShortlist(method="ann", random_state=seed).fit(
            W.float().cpu().numpy()
        )

    # -------------------------------------------------------------- predict
    def _transform(self, X):
        if isinstance(X, list):
            if self.vectorizer_ is None:
                raise TypeError(
                    "This DecafClassifier was fitted on numeric features; pass "
                    "the same kind of features, not raw text."
                )
            return self.vectorizer_.transform(X)
        if self.vectorizer_ is not None:
            raise TypeError(
                "This DecafClassifier was fitted on raw text; pass raw text."
            )
        return as_float32_csr(X)

    def _predict_topk(self, X, k):
        from skxmc.training import resolve_device

        device = resolve_device(self.device, strict=False)
        if next(self.network_.parameters()).device != device:
            self.network_.to(device)
        cache = self._weights_cache
        if cache[0].device != device:
            cache = self._all_weights()
        return self._predict_features(self._transform(X), k, device, cache)

    def _all_weights(self):
        """``(W, b, W_clusters, b_clusters)`` of the fitted model."""
        import torch

        self.network_.eval()
        with torch.inference_mode():
            return (
                *self.network_.labels.all_weights(),
                *self.network_.clusters.all_weights(),
            )

    def _predict_features(self, X, k, device, weights=None):
        import torch

        n = X.shape[0]
        out_scores = np.full((n, k), -np.inf, dtype=np.float32)
        out_ids = np.full((n, k), -1, dtype=np.int64)
        # the fitted fusion (not the ``fusion`` parameter) decides what scores
        with_text = bool(self.text_weight) or self.fusion_ is not None
        for start, stop, shortlist, parts in self._scored_shortlists(
            X, device, weights, with_text=with_text
        ):
            scores = self._final_scores(shortlist, parts)
            m = min(k, shortlist.shape[1])
            s, pos = torch.topk(scores, m, dim=1)
            ids = torch.gather(shortlist, 1, pos)
            ids[~torch.isfinite(s)] = -1
            out_scores[start:stop, :m] = s.float().cpu().numpy()
            out_ids[start:stop, :m] = ids.cpu().numpy()
        return out_scores, out_ids

    def _scored_shortlists(
        self, X, device, weights=None, block_size=256, *, with_text=False
    ):
        """Shortlist every block of rows and score its pairs.

        Yields ``(start, stop, shortlist, parts)``: ``shortlist`` the label
        ids of the rows ``start:stop`` (``-1`` pads), ``parts`` a dict of
        tensors of the same shape: ``"label"`` (sigmoid of the label score),
        ``"cluster"`` (sigmoid of its cluster's score) and ``"text"`` (TF-IDF
        cosine of document and label text; None unless ``with_text``), plus
        ``"rerank"`` with a fitted re-ranker and, with ``with_text``, the
        parts of :meth:`_extra_parts` (ECLARE's ``"graph"``).
        """
        import torch

        from skxmc.nn import score_pairs
        from skxmc.training._data import csr_to_bag, dedup_rows
        from skxmc.utils import sparse_pair_scores

        net = self.network_
        was_training = net.training
        if was_training:  # eval()/train() walk every submodule: not per query
            net.eval()
        table = self._table.to(device)
        cluster_of = torch.from_numpy(self.cluster_of_label_).to(device)
        beam = min(self.beam_size, self.n_clusters_)
        try:
            with torch.inference_mode():
                if weights is None:
                    weights = (*net.labels.all_weights(), *net.clusters.all_weights())
                W, b, Wc, bc = weights
                for start in range(0, X.shape[0], block_size):
                    stop = min(start + block_size, X.shape[0])
                    X_block = _row_block(X, start, stop)
                    x = net(*csr_to_bag(X_block, device))
                    meta = torch.sigmoid(x @ Wc.T + bc)
                    top = torch.topk(meta, beam, dim=1).indices
                    shortlist = table[top].reshape(stop - start, -1)
                    extra = self._extra_candidates(
                        shortlist.cpu().numpy(),
                        torch.gather(meta, 1, cluster_of[shortlist.clamp_min(0)])
                        .cpu()
                        .numpy(),
                    )
                    if self.text_shortlist_size:
                        extra.append(self._text_shortlist(X_block))
                    if self._reranker_proposes:
                        extra.append(
                            self.reranker_.predict_topk(
                                X_block, k=min(self.rerank_size, self.n_labels_)
                            )[1]
                        )
                    if self._ann is not None:
                        _, near = self._ann.query(
                            x.float().cpu().numpy(),
                            k=min(self.ann_shortlist_size, self.n_labels_),
                        )
                        extra.append(near)
                    # the label ids on the host, copied once per block
                    ids = shortlist.cpu().numpy()
                    if extra:
                        ids = dedup_rows(np.concatenate([ids, *extra], 1))
                        shortlist = torch.from_numpy(ids).to(device)
                    safe = shortlist.clamp_min(0)
                    parts = {
                        "label": torch.sigmoid(score_pairs(x, shortlist, W, b)),
                        "cluster": torch.gather(meta, 1, cluster_of[safe]),
                        "text": None,
                    }
                    if self.reranker_ is not None:
                        rerank = self._rerank_scores(X_block, ids)
                        parts["rerank"] = torch.from_numpy(rerank).to(device)
                    if with_text:
                        text = sparse_pair_scores(
                            l2_normalize_csr(X_block), self._text_index.labels_, ids
                        )
                        parts["text"] = torch.from_numpy(text).to(device)
                        parts.update(self._extra_parts(ids, parts))
                    yield start, stop, shortlist, parts
        finally:
            if was_training:
                net.train()

    def _pair_features(self, X, device, weights=None):
        """Features of the shortlisted pairs for :class:`ScoreFusion`.

        Returns ``(features, candidates)`` of shapes ``(n, m, f)`` and
        ``(n, m)``: label score, cluster score, label-text cosine,
        ``log(1 + training count)`` of the label and, with the re-ranker, its
        score.
        """
        blocks = [
            (shortlist.cpu().numpy(), self._fusion_inputs(shortlist, parts))
            for _, _, shortlist, parts in self._scored_shortlists(
                X, device, weights, with_text=True
            )
        ]
        width = max((ids.shape[1] for ids, _ in blocks), default=0)
        candidates = np.full((X.shape[0], width), -1, dtype=np.int64)
        n_features = blocks[0][1].shape[2] if blocks else 4
        features = np.zeros((X.shape[0], width, n_features), dtype=np.float32)
        row = 0
        for ids, feats in blocks:
            candidates[row : row + len(ids), : ids.shape[1]] = ids
            features[row : row + len(ids), : ids.shape[1]] = feats
            row += len(ids)
        return features, candidates

    def _extra_parts(self, ids, parts) -> dict:
        """More per-pair scores for the learned fusion (none in DECAF).

        Gets a block's shortlisted label ids (a NumPy array, ``-1`` pads) and
        its ``parts`` (see _scored_shortlists); returns a dict of tensors of
        the shortlist's shape, on the device of ``parts``.
        """
        return {}

    def _fusion_inputs(self, shortlist, parts) -> np.ndarray:
        """The ``(b, m, f)`` fusion features of a block (see _pair_features)."""
        ids = shortlist.cpu().numpy()
        frequency = self._log_frequency[np.maximum(ids, 0)]
        columns = [parts["label"], parts["cluster"], parts["text"]]
        columns = [c.float().cpu().numpy() for c in columns]
        columns.append(frequency)
        if "rerank" in parts:
            columns.append(parts["rerank"].float().cpu().numpy())
        for name in sorted(set(parts) - {"label", "cluster", "text", "rerank"}):
            columns.append(parts[name].float().cpu().numpy())
        features = np.stack(columns, axis=-1)
        features[ids < 0] = 0.0
        return features.astype(np.float32)

    def _final_scores(self, shortlist, parts):
        """Prediction scores of shortlisted labels (``-inf`` on padding)."""
        import torch

        valid = shortlist >= 0
        if self.fusion_ is not None:
            probability = self.fusion_.predict(
                self._fusion_inputs(shortlist, parts), shortlist.cpu().numpy()
            )
            scores = torch.from_numpy(probability).to(shortlist.device)
        else:
            label_weight = 1 - self.meta_weight - self.text_weight
            scores = label_weight * parts["label"] + self.meta_weight * parts["cluster"]
            if self.text_weight:
                scores = scores + self.text_weight * parts["text"]
        if self.propensity_tilt:
            tilt = self._tilt_factors().to(shortlist.device)
            scores = scores * tilt[shortlist.clamp_min(0)]
        return torch.where(valid, scores, torch.full_like(scores, -torch.inf))

    def _tilt_factors(self):
        """``(w_l / max w)^propensity_tilt`` of every label, a float32 tensor,
        computed once per tilt and label set (a power of every label's weight
        per query costs ~0.3 ms)."""
        import torch

        cached = self.__dict__.get("_tilt_cache")
        if (
            cached is None
            or cached[0] != self.propensity_tilt
            or cached[1] is not self._inv_propensity
        ):
            weights = self._inv_propensity / self._inv_propensity.max()
            factors = torch.from_numpy(
                (weights**self.propensity_tilt).astype(np.float32)
            )
            cached = self._tilt_cache = (
                self.propensity_tilt,
                self._inv_propensity,
                factors,
            )
        return cached[2]

    @property
    def _reranker_proposes(self) -> bool:
        """Whether the fitted re-ranker adds its own best labels to shortlists
        (an XR-Linear ranker does; a shortlist re-ranker only rescores)."""
        from skxmc.indexing import XRLinearModel

        return isinstance(getattr(self, "reranker_", None), XRLinearModel)

    def _rerank_scores(self, X, ids) -> np.ndarray:
        """The re-ranker's score of the pairs ``(i, ids[i, j])`` (fusion feature)."""
        if self._reranker_proposes:
            return self.reranker_.score_pairs(X, ids)
        return self.reranker_.score(X, ids, raw=True)

    def _text_shortlist(self, X) -> np.ndarray:
        """Ids of the ``text_shortlist_size`` labels of highest non-zero
        TF-IDF cosine with each row (``-1`` padded): the top of
        :meth:`_text_similarity`, without forming it."""
        k = min(self.text_shortlist_size, self.n_labels_)
        return self._text_index.similarity_topk(X, k)[1]

    def _text_similarity(self, X) -> sp.csr_matrix:
        """Cosine of the TF-IDF of documents and label texts (sparse)."""
        return sp.csr_matrix(self._text_index.similarity(X))

    def _full_scores(self, X) -> np.ndarray:
        """Prediction scores of every label (dense; for tests on tiny data)."""
        import torch

        from skxmc.nn import score_pairs
        from skxmc.training._data import csr_to_bag

        X = self._transform(X) if isinstance(X, list) else as_float32_csr(X)
        net = self.network_
        device = next(net.parameters()).device
        net.eval()
        with torch.inference_mode():
            x = net(*csr_to_bag(X, device))
            W, b = net.labels.all_weights()
            Wc, bc = net.clusters.all_weights()
            meta = torch.sigmoid(x @ Wc.T + bc)
            ids = torch.arange(W.shape[0], device=device).expand(X.shape[0], -1)
            cluster_of = torch.from_numpy(self.cluster_of_label_).to(device)
            parts = {
                "label": torch.sigmoid(score_pairs(x, ids, W, b)),
                "cluster": torch.gather(meta, 1, cluster_of[ids]),
                "text": None,
            }
            if self._text_index is not None:
                text = self._text_similarity(X).toarray()
                parts["text"] = torch.from_numpy(text).to(device)
            if self.reranker_ is not None:
                rerank = self._rerank_scores(X, ids.cpu().numpy())
                parts["rerank"] = torch.from_numpy(rerank).to(device)
            if self._text_index is not None:
                parts.update(self._extra_parts(ids.cpu().numpy(), parts))
            return self._final_scores(ids, parts).cpu().numpy()

    # ------------------------------------------------------------ zero-shot
    def add_labels(self, label_text, *, labels=None):
        """Add labels known only by their text, without retraining (zero-shot).

        A new label's weight vector is computed from its text alone (its
        free vector ``eta`` is set to the embedding of its text, as for trained
        labels before training; its bias is the median trained bias) and it
        joins the cluster that the meta-classifier ranks first for its text
        read as a document, so documents resembling that text reach it.

        Parameters
        ----------
        label_text : sequence of str or sparse matrix of shape \
                (n_new_labels, n_features)
            The text of each new label, or its features when the model was
            fitted on numeric features.
        labels : sequence, default=None
            Names of the new labels, appended to ``classes_``. Required when
            ``classes_`` holds names (a fit on label lists); by default the
            next integers.

        Returns
        -------
        self : object
            The estimator, with ``n_labels_`` and ``classes_`` grown.
        """
        import torch

        from skxmc.training._data import cluster_table, csr_to_bag

        check_is_fitted(self, "network_")
        if self._y_container == "1d":
            raise ValueError("add_labels is not available after a fit on a 1-D y.")
        if isinstance(label_text, str):
            raise ValueError(
                "label_text must be a sequence of texts, got a single string."
            )
        if sp.issparse(label_text):
            if self.vectorizer_ is not None:
                raise TypeError("This model was fitted on raw text: pass label text.")
            Z = sp.csr_matrix(label_text, dtype=np.float32)
        else:
            label_text = list(label_text)
            if self.vectorizer_ is None:
                raise TypeError(
                    "This model was fitted on numeric features: pass the label "
                    "features as a sparse matrix."
                )
            Z = self.vectorizer_.transform(label_text)
        if self._text_index is not None:
            self._text_index = LabelShortlist(method="exact").fit(
                sp.vstack([self._text_index.labels_, Z], format="csr")
            )
        Z_document = Z
        Z = _keep_top_entries(Z, self.max_label_tokens)
        n_new = Z.shape[0]
        if labels is None:
            if self.classes_.dtype.kind not in "iu":
                raise ValueError(
                    "classes_ holds label names: give the names of the new labels "
                    "with `labels`."
                )
            labels = np.arange(self.n_labels_, self.n_labels_ + n_new)
        labels = np.asarray(list(labels))
        if len(labels) != n_new:
            raise ValueError(f"Got {len(labels)} names for {n_new} new labels.")
        if np.isin(labels, self.classes_).any():
            raise ValueError("Some of the new labels are already in classes_.")

        head = self.network_.labels
        device = head.free.weight.device
        self.network_.eval()
        with torch.inference_mode():
            # route each label text like a document: its best-scoring cluster
            x = self.network_(*csr_to_bag(Z_document, device))
            Wc, bc = self.network_.clusters.all_weights()
            nearest = torch.argmax(x @ Wc.T + bc, dim=1).cpu().numpy()
        self._weights_cache = None
        with torch.no_grad():
            head.extend(Z)
        self.cluster_of_label_ = np.concatenate([self.cluster_of_label_, nearest])
        # never seen in training: count 0
        self._log_frequency = np.concatenate(
            [self._log_frequency, np.zeros(n_new, np.float32)]
        )
        self._inv_propensity = np.concatenate(
            [
                self._inv_propensity,
                _jain_inverse_propensity(np.zeros(n_new), self._n_train_rows),
            ]
        )
        self._table = torch.from_numpy(
            cluster_table(_membership(self.cluster_of_label_, self.n_clusters_))
        )
        self.classes_ = np.concatenate([self.classes_, labels])
        self.n_labels_ = len(self.classes_)
        self._weights_cache = self._all_weights()
        if self.ann_shortlist_size:
            self._build_ann(0)
        return self


def _membership(cluster_of: np.ndarray, n_clusters: int) -> sp.csr_matrix:
    """0/1 matrix of shape (n_labels, n_clusters)."""
    n = len(cluster_of)
    return sp.csr_matrix(
        (np.ones(n, np.float32), (np.arange(n), cluster_of)), shape=(n, n_clusters)
    )


def _keep_top_entries(Z, n: int | None) -> sp.csr_matrix:
    """The ``n`` largest entries of every row, L2-normalised (all if None)."""
    Z = sp.csr_matrix(Z, dtype=np.float32)
    if n is None or np.diff(Z.indptr).max(initial=0) <= n:
        return Z
    from skxmc.utils import csr_row_topk, topk_to_csr

    scores, indices = csr_row_topk(Z, n)
    return normalize(topk_to_csr(scores, indices, Z.shape[1])).astype(np.float32)


def _row_block(X, start: int, stop: int):
    """Rows ``start:stop`` of the CSR ``X``: ``X`` itself when that is all of
    it (slicing copies, ~50 us of a single query)."""
    if start == 0 and stop == X.shape[0]:
        return X
    return X[start:stop]


def _hold_out(rows: np.ndarray, fraction: float, seed: int, name: str):
    """Split ``rows`` into a random held-out share and the rest (both sorted)."""
    n_held = round(fraction * rows.size)
    if n_held < 1 or n_held >= rows.size:
        raise ValueError(
            f"{name}={fraction} leaves {n_held} of {rows.size} rows held out."
        )
    order = np.random.default_rng(seed).permutation(rows)
    return np.sort(order[:n_held]), np.sort(order[n_held:])
