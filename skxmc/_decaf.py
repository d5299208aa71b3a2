"""DecafClassifier: DECAF (Mittal et al., WSDM 2021) as a scikit-learn estimator.

The engine is :class:`skxmc.models.DecafModel`; this module validates the
parameters and assembles it. :class:`~skxmc.EclareClassifier` shares all of it
but its ``_fit``, which hands the engine a label-graph component.
"""

from __future__ import annotations

import os
from dataclasses import fields
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from skxmc.base import BaseXMCClassifier
from skxmc.utils._sparse import as_float32_csr
from skxmc.utils._validation import DEVICE_CONSTRAINT, named_vocabulary_error

__all__ = ["DecafClassifier"]


#: The fine-tuning of ``encoder_training`` unless its dict says otherwise: the
#: dual encoder's CPU schedule of benchmarks/results/alc_cpu.txt.
ENCODER_TRAINING_DEFAULTS = {
    "loss": "tcm",
    "trainable_layers": 1,
    "n_epochs": 2,
    "learning_rate": 2e-4,
    "batch_size": 64,
}


class _BaseDecaf(BaseXMCClassifier):
    """The facade shared by DecafClassifier and EclareClassifier.

    Subclasses define the parameters (``__init__``, ``_parameter_constraints``)
    and ``_fit``, which calls :meth:`_fit_engine` (with a
    :class:`~skxmc.models.LabelGraphComponent` for ECLARE).
    """

    _accepts_text = True

    # ------------------------------------------------------------------ fit
    def _fit_engine(self, X, Y, label_info, seed, label_graph=None):
        """Validate, featurize, open the checkpoint and train the engine."""
        from skxmc.models import DecafModel
        from skxmc.training import resolve_device

        if self.reranker is not None and self.fusion != "learned":
            raise ValueError(
                f"reranker={self.reranker!r} needs fusion='learned': the "
                "re-ranker's score is a feature of the learned fusion; pass "
                "reranker=None with fusion='weights'."
            )
        if self.meta_weight + self.text_weight > 1:
            raise ValueError(
                f"meta_weight + text_weight must be <= 1, got {self.meta_weight} + "
                f"{self.text_weight}."
            )
        device = resolve_device(self.device)
        texts = X if isinstance(X, list) else None
        encoder = self._encoder_component(texts)
        X, Z = self._fit_features(X, label_info)
        tokens = self._token_embeddings(X.shape[1], seed)
        data = {"X": X, "Y": Y, "label_features": Z, "token_init": tokens}
        if label_graph is not None:
            data["label_graph"] = label_graph.given
        if encoder is not None:
            data["encoder"] = encoder.model
            data["encoder_pooling"] = encoder.pooling
        store = self._open_checkpoint(data)
        if store is not None:
            seed = store.resume_seed(seed)
        self.model_ = DecafModel.train(
            X,
            Y,
            Z,
            config=self._engine_config(),
            seed=seed,
            device=device,
            label_graph=label_graph,
            encoder=encoder,
            texts=texts,
            label_texts=None if encoder is None else list(label_info.text),
            checkpoint=store,
            token_embeddings=tokens,
            verbose=self.verbose,
        )
        self.loss_curve_ = list(self.model_.loss_curve_)
        self.n_iter_ = self.model_.n_iter_
        self.fit_times_ = dict(self.model_.fit_times)
        return self

    def _encoder_component(self, texts):
        """The ``encoder`` as an engine component (None without one)."""
        if self.encoder is None:
            if self.encoder_training is not None:
                raise ValueError(
                    "encoder_training fine-tunes the encoder: set encoder too."
                )
            return None
        if texts is None:
            raise ValueError(
                "encoder needs raw text input (it encodes the documents' and "
                "labels' texts): pass a list of texts as X and "
                "LabelInfo(text=...)."
            )
        if self.fusion != "learned":
            raise ValueError(
                "encoder needs fusion='learned': its cosines are features of "
                "the learned fusion."
            )
        if self.reranker == "shortlist":
            raise ValueError(
                "encoder works with reranker='xr-linear' or None, not "
                "'shortlist' (trained on every training row's shortlist, it "
                "would need every training row encoded)."
            )
        from skxmc.models import EncoderComponent
        from skxmc.nn._text_encoder import read_pooling
        from skxmc.nn._transformer import check_max_length, load_encoder

        model, tokenizer = load_encoder(self.encoder)
        check_max_length(model, self.max_length)
        pooling = self.pooling
        if pooling == "auto":
            pooling = read_pooling(self.encoder) or "cls"
        return EncoderComponent(
            model,
            tokenizer,
            pooling=pooling,
            max_length=self.max_length,
            training=self._encoder_training_config(),
        )

    def _encoder_training_config(self):
        """``encoder_training`` as a DualEncoderConfig (None: frozen)."""
        if self.encoder_training is None:
            return None
        from dataclasses import fields

        from skxmc.models import DualEncoderConfig

        own = {"max_length", "label_max_length", "pooling", "inference_batch_size"}
        allowed = {f.name for f in fields(DualEncoderConfig)} - own
        unknown = sorted(set(self.encoder_training) - allowed)
        if unknown:
            raise ValueError(
                f"encoder_training has unknown keys {unknown}; allowed: "
                f"{sorted(allowed)}."
            )
        from skxmc import DualEncoderClassifier

        # the dual encoder's own checks, before the network trains for nothing
        try:
            DualEncoderClassifier(
                encoder=self.encoder, **self.encoder_training
            )._validate_params()
        except ValueError as error:
            raise ValueError(f"encoder_training: {error}") from None
        return DualEncoderConfig(
            **{**ENCODER_TRAINING_DEFAULTS, **self.encoder_training}
        )

    def _token_embeddings(self, n_features: int, seed: int):
        """``token_init`` as an (n_features, embedding_dim) array, or None."""
        init = self.token_init
        if init is None:
            return None
        if isinstance(init, (str, os.PathLike)):
            if self.vectorizer_ is None:
                raise ValueError(
                    "token_init as an encoder folder needs raw text input (its "
                    "terms are the internal TF-IDF vocabulary); with numeric X "
                    "pass an array of shape (n_features, embedding_dim)."
                )
            from skxmc.nn._text_encoder import static_term_embeddings

            values = static_term_embeddings(
                init,
                self.vectorizer_.get_feature_names_out(),
                n_components=self.embedding_dim,
                random_state=seed,
            )
            if values.shape[1] != self.embedding_dim:
                raise ValueError(
                    f"token_init: the encoder gives {values.shape[1]} dimensions "
                    f"for {values.shape[0]} terms, fewer than embedding_dim="
                    f"{self.embedding_dim}; lower embedding_dim."
                )
            return values
        values = np.asarray(init, dtype=np.float32)
        if values.shape != (n_features, self.embedding_dim):
            raise ValueError(
                f"token_init must have shape (n_features, embedding_dim) = "
                f"({n_features}, {self.embedding_dim}), got {values.shape}."
            )
        return values

    def _engine_config(self):
        """The engine's :class:`~skxmc.models.DecafConfig` from the parameters."""
        from skxmc.models import DecafConfig

        return DecafConfig(
            **{
                f.name: getattr(self, f.name)
                for f in fields(DecafConfig)
                if f.name != "scoring"
            },
            scoring=self._scoring(),
        )

    def _scoring(self):
        """The engine's :class:`~skxmc.models.DecafScoring` from the current
        parameters (those read at prediction may change after fit)."""
        from skxmc.models import DecafScoring

        return DecafScoring(
            **{
                f.name: getattr(self, f.name)
                for f in fields(DecafScoring)
                if hasattr(self, f.name)
            }
        )

    def _fit_features(self, X, label_info):
        """TF-IDF of documents and label text, or the given numeric features."""
        name = type(self).__name__
        text = None if label_info is None else label_info.text
        features = None if label_info is None else label_info.features
        if isinstance(X, list):
            if text is None:
                raise ValueError(
                    f"{name} needs label text: pass fit(X, y, "
                    "label_info=LabelInfo(text=label_texts)) with one text per "
                    "label (or numeric X with LabelInfo(features=Z))."
                )
            from sklearn.feature_extraction.text import TfidfVectorizer

            from skxmc.utils import fit_stable_vocabulary

            vectorizer = self.vectorizer
            if vectorizer is None:
                vectorizer = TfidfVectorizer(
                    sublinear_tf=True, max_features=self.max_features, dtype=np.float32
                )
            with named_vocabulary_error("X or the label text"):
                # the same terms on every machine (see fit_stable_vocabulary)
                self.vectorizer_ = fit_stable_vocabulary(
                    vectorizer, list(X) + list(text)
                )
            X = as_float32_csr(self.vectorizer_.transform(X))
            Z = self.vectorizer_.transform(text)
        else:
            if features is None:
                raise ValueError(
                    f"{name} needs label features in the feature space of "
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

    # ------------------------------------------------------ fitted views
    @property
    def network_(self):
        return self.model_.network_

    @property
    def cluster_of_label_(self):
        return self.model_.cluster_of_label_

    @property
    def n_clusters_(self):
        return self.model_.n_clusters_

    @property
    def fusion_(self):
        return self.model_.fusion_

    @property
    def reranker_(self):
        return self.model_.reranker_

    # -------------------------------------------------------------- predict
    def _transform(self, X):
        name = type(self).__name__
        if isinstance(X, list):
            if self.vectorizer_ is None:
                raise TypeError(
                    f"This {name} was fitted on numeric features; pass "
                    "the same kind of features, not raw text."
                )
            return self.vectorizer_.transform(X)
        if self.vectorizer_ is not None:
            raise TypeError(f"This {name} was fitted on raw text; pass raw text.")
        return as_float32_csr(X)

    def _predict_topk(self, X, k):
        from skxmc.training import resolve_device

        device = resolve_device(self.device, strict=False)
        return self.model_.predict_topk(
            self._transform(X),
            k,
            scoring=self._scoring(),
            device=device,
            texts=self._texts_for_encoder(X),
        )

    def _texts_for_encoder(self, X):
        """The documents' texts when the model has an encoder (else None)."""
        if getattr(self.model_, "encoder", None) is None:
            return None
        return X  # _transform has checked that X is raw text

    def _full_scores(self, X) -> np.ndarray:
        """Prediction scores of every label (dense; for tests on tiny data)."""
        return self.model_.full_scores(
            self._transform(X),
            scoring=self._scoring(),
            texts=self._texts_for_encoder(X),
        )

    # ------------------------------------------------------------ zero-shot
    def add_labels(self, label_text, *, labels=None):
        """Add labels known only by their text, without retraining (zero-shot).

        A new label's weight vector is computed from its text alone (its
        free vector ``eta`` is set to the embedding of its text, as for trained
        labels before training; its bias is the median trained bias) and it
        joins the cluster that the meta-classifier ranks first for its text
        read as a document, so documents resembling that text reach it. In
        ECLARE's label graph a new label gets a self-loop only.

        With a re-ranker (the default ``reranker="xr-linear"``) a new label has
        no re-ranker model and the learned fusion ranks it low: an
        ``XMCDataWarning`` says so. Zero-shot labels need
        ``fusion="weights", reranker=None``.

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
            The estimator, with ``n_labels_`` and ``classes_`` grown (and
            ECLARE's ``label_graph_``).
        """
        check_is_fitted(self, "model_")
        if self._y_container == "1d":
            raise ValueError("add_labels is not available after a fit on a 1-D y.")
        if isinstance(label_text, str):
            raise ValueError(
                "label_text must be a sequence of texts, got a single string."
            )
        if sp.issparse(label_text):
            if self.vectorizer_ is not None:
                raise TypeError("This model was fitted on raw text: pass label text.")
            # finite, at least one row: a NaN feature would rank the new label
            # first with a NaN score, no row would turn classes_ into floats
            with np.errstate(over="ignore"):  # 1e39 -> inf, refused by name
                Z = check_array(
                    label_text,
                    accept_sparse="csr",
                    dtype=np.float32,
                    input_name="label features",
                )
            if Z.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"The label features have {Z.shape[1]} columns, but "
                    f"{type(self).__name__} was fitted on {self.n_features_in_} "
                    "features: they must share one feature space."
                )
        else:
            from skxmc.utils._validation import check_label_text

            # every element checked and named; [] and [None] are clear errors
            label_text = check_label_text(label_text)
            if self.vectorizer_ is None:
                raise TypeError(
                    "This model was fitted on numeric features: pass the label "
                    "features as a sparse matrix."
                )
            Z = self.vectorizer_.transform(label_text)
        n_new = Z.shape[0]
        if self.model_.reranker_ is not None:
            import warnings

            from skxmc.exceptions import XMCDataWarning

            # the learned fusion was trained with the re-ranker's score as a
            # feature; a new label gets its "no support" value and ranks low
            warnings.warn(
                f"The {n_new} added label(s) have no model in the "
                f"reranker={self.reranker!r}: the learned fusion ranks them "
                "below trained labels, so even a query made of a label's own "
                "text may not retrieve it. For zero-shot labels, fit with "
                "fusion='weights', reranker=None.",
                XMCDataWarning,
                stacklevel=2,
            )
        labels = self._new_label_names(labels, n_new)
        self.model_.add_labels(
            Z, label_texts=None if sp.issparse(label_text) else list(label_text)
        )
        self.classes_ = np.concatenate([self.classes_, labels])
        self.n_labels_ = len(self.classes_)
        return self


class DecafClassifier(_BaseDecaf):
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
    n_epochs : int, default=5
        Epochs of each of the two training stages (sized for a CPU: with the
        learned fusion and its XR-Linear ranker, 5+5 epochs beat the former
        default of plain DECAF at 10+10, ``benchmarks/bench_defaults.py``;
        give a GPU more).
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
    fusion : {"weights", "learned"}, default="learned"
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
        shortlisted labels of its row. An addition to DECAF, and the
        default: with ``reranker="xr-linear"`` it is the most accurate
        setting measured on a validation split of LF-DebianPackages
        (``benchmarks/bench_defaults.py``). ``"weights"`` with
        ``meta_weight=0.5, text_weight=0, reranker=None`` is plain DECAF.
    fusion_fraction : float, default=0.1
        Share of the training rows held out for ``fusion="learned"``.
    reranker : {None, "shortlist", "xr-linear"}, default="xr-linear"
        A sparse linear ranker on the input features whose score of every
        shortlisted pair is one more feature of the learned fusion (requires
        ``fusion="learned"``; set ``reranker=None`` with
        ``fusion="weights"``). An addition to DECAF: a linear model on the
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
    token_init : None, str, path-like or array-like, default=None
        Initial token embeddings of the bag-of-words encoder, which the
        label-text classifiers share. None: random. A local
        transformers / sentence-transformers folder (e.g. the packaged
        all-MiniLM-L6-v2): every term of the internal TF-IDF vocabulary is
        encoded alone by that frozen encoder, reduced to ``embedding_dim`` by
        PCA and scaled to unit norm (a model2vec-style distillation,
        :func:`~skxmc.nn.static_term_embeddings`), so the model
        starts from the encoder's semantics at bag-of-words cost; needs raw
        text input. An array of shape (n_features, embedding_dim): those
        vectors (numeric input: one row per feature column).
    vectorizer : object, default=None
        An unfitted scikit-learn text vectorizer (cloned at fit) that turns
        raw-text documents and label texts into the features of the network;
        None: ``TfidfVectorizer(sublinear_tf=True, max_features=max_features)``.
        For example the benchmarks' 1-2-gram TF-IDF. A ``max_features`` cut
        breaks ties between equal counts alphabetically
        (:func:`~skxmc.utils.fit_stable_vocabulary`), so the vocabulary does
        not depend on the machine.
    encoder : None, str or path-like, default=None
        A local transformers / sentence-transformers folder (e.g. the
        packaged all-MiniLM-L6-v2) whose frozen sentence embeddings work
        beside the bag-of-words network
        (:class:`~skxmc.models.EncoderComponent`): the
        ``encoder_shortlist_size`` labels of highest cosine between document
        and label text join every shortlist, and that cosine is one more
        feature of the learned fusion. The encoder is not trained: label
        texts are encoded once per fit (and the fusion's held-out rows),
        query documents at prediction (a forward pass per query: the
        single-query latency grows by the encoder's). Needs raw text input,
        label text and ``fusion="learned"``. Measured on LF-DebianPackages
        and LF-FOLDOC in ``benchmarks/results/decaf_encoder_cpu.txt``.
    pooling : {"auto", "cls", "mean"}, default="auto"
        Pooling of the encoder's last hidden states; ``"auto"`` reads a
        sentence-transformers folder's pooling (mean for all-MiniLM-L6-v2),
        else ``"cls"``.
    max_length : int, default=64
        Tokens per text for the encoder, special tokens included.
    encoder_shortlist_size : int, default=50
        Labels of highest encoder cosine added to every shortlist (with
        ``encoder``).
    encoder_training : dict or None, default=None
        None: the encoder stays frozen. A dict: before its label texts are
        encoded, the encoder is fine-tuned as a dual encoder
        (:class:`~skxmc.DualEncoderClassifier`'s engine) on the network's
        training rows, never on the fusion's held-out rows, so that the
        fusion learns how far to trust its cosine on rows it did not see.
        Keys: the training parameters of ``DualEncoderClassifier``
        (:class:`~skxmc.models.DualEncoderConfig` fields: ``loss``,
        ``n_epochs``, ``trainable_layers``, ``learning_rate``,
        ``batch_size``, ...; the length and pooling are ``max_length`` and
        ``pooling``), over the schedule measured on 2 CPU cores in
        ``benchmarks/results/alc_cpu.txt``: ``{"loss": "tcm",
        "trainable_layers": 1, "n_epochs": 2, "learning_rate": 2e-4,
        "batch_size": 64}``. Not checkpointed: a resumed fit fine-tunes the
        encoder again (after the network's training).
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
    device : str or torch.device, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``,
        ``"mps"`` (Apple silicon) or a :class:`torch.device`.
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
    model_ : DecafModel
        The engine (:class:`skxmc.models.DecafModel`); the attributes below
        are views of it.
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
    fit_times_ : dict
        Seconds of every fit stage (clustering, text shortlist, training,
        label weights, re-ranker, fusion), as the other deep estimators report
        theirs; the fit's progress log shows them with ``verbose=1``.
    fusion_ : ScoreFusion or None
        The learned fusion (``fusion="learned"``).
    reranker_ : ShortlistReranker, XRLinearModel or None
        The re-ranker.

    See Also
    --------
    skxmc.XRLinearClassifier : Label tree of sparse linear rankers.

    Notes
    -----
    Differences from the authors' code: one clustering instead of an ensemble
    of three, the cluster and label tasks of the extreme stage are trained
    jointly, and the training shortlist comes from the current
    meta-classifier. Training runs in float32 on every device (no mixed
    precision).

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
        "token_init": [None, str, os.PathLike, "array-like"],
        "vectorizer": [HasMethods(["fit", "transform"]), None],
        "encoder": [None, str, os.PathLike],
        "pooling": [StrOptions({"auto", "cls", "mean"})],
        "max_length": [Interval(Integral, 2, None, closed="left")],
        "encoder_shortlist_size": [Interval(Integral, 0, None, closed="left")],
        "encoder_training": [dict, None],
        "max_label_tokens": [Interval(Integral, 1, None, closed="left"), None],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "checkpoint_dir": [str, os.PathLike, None],
        "device": DEVICE_CONSTRAINT,
    }

    def __init__(
        self,
        *,
        embedding_dim=300,
        n_epochs=5,
        batch_size=256,
        learning_rate=0.01,
        dropout=0.2,
        max_leaf_size=8,
        beam_size=32,
        text_shortlist_size=0,
        ann_shortlist_size=0,
        meta_weight=0.5,
        text_weight=0.0,
        fusion="learned",
        fusion_fraction=0.1,
        reranker="xr-linear",
        rerank_size=100,
        propensity_tilt=0.0,
        max_features=None,
        token_init=None,
        vectorizer=None,
        encoder=None,
        pooling="auto",
        max_length=64,
        encoder_shortlist_size=50,
        encoder_training=None,
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
        self.token_init = token_init
        self.vectorizer = vectorizer
        self.encoder = encoder
        self.pooling = pooling
        self.max_length = max_length
        self.encoder_shortlist_size = encoder_shortlist_size
        self.encoder_training = encoder_training
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

    def _fit(self, X, Y, *, label_info, seed):
        return self._fit_engine(X, Y, label_info, seed)
