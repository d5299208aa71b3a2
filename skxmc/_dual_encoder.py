"""DualEncoderClassifier: one transformer for queries and label texts (NGAME-style)."""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skxmc.base import BaseXMCClassifier, _PretrainedEncoderMixin

__all__ = ["DualEncoderClassifier"]


class DualEncoderClassifier(_PretrainedEncoderMixin, BaseXMCClassifier):
    """Dual-encoder extreme classifier: one transformer for queries and label texts.

    A label scores a query by the cosine of their embeddings, both from the
    same transformer (mean or CLS pooling), as in NGAME [1]_. Every label
    needs a text (``label_info=LabelInfo(text=...)``); labels added later by
    their text alone (:meth:`add_labels`) are scored like trained ones.

    Training fine-tunes the encoder (AdamW, linear schedule with warm-up,
    through :class:`~skxmc.training.Trainer`). Each step takes a batch of
    queries, one gold label per query drawn at random every epoch (its
    positive) and ``n_hard_negatives`` hard negatives per query: the most
    similar non-gold labels in an index of the label embeddings
    (:class:`~skxmc.indexing.LabelShortlist`, exact or pynndescent),
    re-mined every ``refresh_every`` epochs. Every label of the batch is a
    negative of every query it is not gold for (in-batch negatives), and the
    batches are built from clusters of ``cluster_size`` queries with similar
    embeddings (balanced 2-means, refreshed with the negatives), so in-batch
    negatives are hard too. The loss (:class:`~skxmc.nn.DualEncoderLoss`):

    - ``"contrastive"``: the base loss alone, ``base_loss="triplet"`` (margin
      ``margin`` between the positive and each in-batch negative) or
      ``"softmax"`` (InfoNCE at ``temperature``);
    - ``"tcm"``: plus the threshold-consistent margin loss (weight
      ``tcm_weight``, margins ``tcm_margins``);
    - ``"alc"``: plus ALC's query-label and query-batch losses of a pair
      classifier (weights ``beta_ql`` and ``beta_qb``; a training-time
      regulariser, and with ``reranker="pair"`` a scorer too);
    - ``"alc+tcm"``: both.

    Prediction embeds the queries and searches the label embeddings
    (``retrieval``: exact cosine, or pynndescent's approximate search).
    Scores are cosines in [-1, 1]; with ``reranker="pair"`` (a model trained
    with an ALC loss) the ``rerank_size`` labels of highest cosine are
    re-ranked by the pair classifier's probability, and the scores are those
    probabilities: the classifier was trained to tell a query's label from
    its hardest non-gold label, so its probability may be a better
    confidence to put a threshold on than the cosine (measured in
    ``benchmarks/bench_alc.py``). With ``refine_epochs`` the labels also get
    NGAME's refined per-label classifiers, and ``reranker="refined"`` fuses
    their probability with the cosine (scores in [0, 1]). Wrap the classifier in
    :class:`~skxmc.TunedThresholdXMC` to pick ``threshold`` for a target
    precision.

    Parameters
    ----------
    encoder : str or path-like
        A pretrained transformer: a folder written by ``save_pretrained`` or
        a model name in the local Hugging Face cache (nothing is downloaded).
    max_length : int, default=32
        Tokens per query (special tokens included).
    label_max_length : int, default=32
        Tokens per label text.
    pooling : {"mean", "cls"}, default="mean"
        Mean over tokens or the first token's state.
    trainable_layers : int, None or "auto", default="auto"
        Transformer layers fine-tuned, from the top. The embeddings and the
        layers below are frozen: their output on every training query and
        label text is computed once per fit and kept (float16 token states,
        in memory or in a memory-mapped temporary file beyond 2 GiB); each
        step, each refresh of the negatives and the final label embeddings
        run only the top ``trainable_layers`` layers on it, so an epoch costs
        about ``trainable_layers / n_layers`` of full fine-tuning. 0 trains
        nothing: the pretrained encoder scores zero-shot. None, or at least
        the number of layers, fine-tunes everything (NGAME). ``"auto"``
        depends on the training device: 2 on the CPU (on all-MiniLM-L6-v2,
        a third of the layers), None on a GPU. The value used is
        ``trainable_layers_``.
    memory : str, path-like, joblib.Memory or None, default=None
        Caches the frozen layers' states across fits, as sklearn's
        ``Pipeline(memory=...)``: a second fit on the same texts with other
        parameters (loss, epochs, learning rate) skips that forward pass.
        None: no caching.
    loss : {"contrastive", "tcm", "alc", "alc+tcm"}, default="contrastive"
        The training objective (see above).
    base_loss : {"triplet", "softmax"}, default="triplet"
        The base loss.
    margin : float, default=0.3
        Margin of the triplet loss.
    temperature : float, default=0.05
        Temperature of the softmax base loss.
    tcm_weight : float, default=1.0
        Weight of TCM.
    tcm_margins : tuple of 2 floats, default=(0.9, 0.5)
        TCM's ``(m+, m-)``.
    beta_ql, beta_qb : float, default=1.0
        Weights of ALC's query-label and query-batch losses.
    pair_hidden_size : int or None, default=None
        Hidden layer of ALC's pair classifier (None: linear).
    n_epochs : int, default=3
        Passes over the training queries.
    batch_size : int, default=64
        Queries per optimizer step.
    cluster_size : int, default=8
        Queries per cluster of the cluster-based batches (1: plain shuffle).
    n_hard_negatives : int, default=1
        Mined negatives per query (0: in-batch negatives only).
    refresh_every : int, default=1
        Epochs between refreshes of the negatives and clusters.
    learning_rate : float, default=2e-5
        AdamW learning rate of the encoder.
    head_learning_rate : float, default=1e-3
        AdamW learning rate of ALC's pair classifier.
    warmup : float, default=0.1
        Share of the steps with a rising learning rate.
    weight_decay : float, default=0.01
        AdamW weight decay.
    retrieval : {"exact", "ann"}, default="exact"
        Label search in mining and prediction.
    n_neighbors : int, default=30
        Degree of the pynndescent graph (``"ann"``).
    refine_epochs : int, default=0
        Epochs of NGAME's per-label refinement after the encoder's training
        (0: none): every label gets a classifier ``w_l = z_l + eta_l`` on its
        fixed label embedding ``z_l`` plus a free vector and a bias
        (:class:`~skxmc.nn.LabelEmbeddingClassifier`), trained by binary
        cross-entropy on each training query's ``rerank_size`` labels of
        highest cosine and its gold labels. The encoder is not touched: on
        top of the query embeddings it costs seconds to minutes on a CPU.
        Free vectors learn what the label text does not say (a head label's
        many phrasings); a label with few or no training rows keeps its text
        embedding. Used by ``reranker="refined"``.
    refine_learning_rate : float, default=0.01
        Adam learning rate of the refinement (free vectors, biases, scale).
    reranker : {"pair", "refined"} or None, default=None
        Re-rank the ``rerank_size`` labels of highest cosine. ``"pair"``:
        by ALC's pair classifier, scored by its probability (needs
        ``loss="alc"`` or ``"alc+tcm"``). ``"refined"``: by the fusion
        ``(1 - refine_weight) * (1 + cos) / 2 + refine_weight * p`` of the
        cosine and the refined classifier's probability ``p`` (needs
        ``refine_epochs > 0``). A prediction-time option: it can be switched
        with ``set_params`` on a fitted model.
    rerank_size : int, default=100
        Cosine candidates per query re-ranked (at least the ``k`` asked
        for), and the candidates the refinement trains on.
    refine_weight : float, default=0.5
        Weight of the refined classifiers in the ``"refined"`` score (0: the
        cosine's order; 1: the classifiers' alone). A prediction-time option,
        to be chosen on held-out rows.
    inference_batch_size : int, default=256
        Texts per forward pass without gradients.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training rows (with a
        label), score their P@1 (exact cosine search over the labels) after
        every epoch, keep the weights of the best epoch and stop when it has
        not improved for ``n_iter_no_change`` epochs: the number of epochs
        is then chosen on validation rows, not on a test set. On data whose
        documents are also labels (LF data sets' reciprocal pairs), a
        held-out document's own label text is a confident false positive;
        the score is lower than a filtered one but compares epochs alike.
    validation_fraction : float, default=0.1
        Held-out share of the rows when ``early_stopping``.
    n_iter_no_change : int, default=3
        Patience of early stopping, in epochs.
    top_k : int, default=10
        Labels kept per row by :meth:`decision_function` and :meth:`predict`.
    threshold : float, default=0.5
        :meth:`predict` keeps the top-``top_k`` labels whose score (cosine,
        or probability with ``reranker="pair"``) is above it.
    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    n_jobs : int, default=None
        Threads of the clustering and of the pynndescent index.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights of the pair classifier, batches, positives, the
        index and dropout; the global RNGs are left untouched.
    verbose : int, default=0
        Log the epochs and show progress bars.

    Attributes
    ----------
    classes_ : ndarray of shape (n_labels,)
        The labels.
    n_labels_ : int
        Number of labels (grows with :meth:`add_labels`).
    model_ : DualEncoderModel
        The engine (:class:`skxmc.models.DualEncoderModel`).
    network_ : DualEncoderNetwork
        The fine-tuned encoder and the objective (on the CPU).
    label_embeddings_ : ndarray of shape (n_labels, hidden_size)
        L2-normalised label-text embeddings.
    trainable_layers_ : int or None
        The layers fine-tuned (``trainable_layers`` with ``"auto"``
        resolved).
    loss_curve_ : list of float
        Mean training loss of every epoch.
    validation_scores_ : list of float
        With ``early_stopping``, the held-out rows' P@1 after every epoch
        (the model keeps the weights of the best one); empty otherwise.
    fit_times_ : dict
        Seconds per part of the fit.

    See Also
    --------
    TunedThresholdXMC : Tune the decision threshold for a target precision.
    skxmc.nn.DualEncoderLoss : The objective.

    Notes
    -----
    Not implemented from NGAME: growing the cluster size during training,
    and its learned score fusion (the refinement's fusion weight
    ``refine_weight`` is a parameter to choose on held-out rows). No
    checkpoints.

    References
    ----------
    .. [1] K. Dahiya, N. Gupta, D. Saini, A. Soni, Y. Wang, K. Dave, J. Jiao,
       G. K, P. Dey, A. Singh, D. Hada, V. Jain, B. Paliwal, A. Mittal,
       S. Mehta, R. Ramjee, S. Agarwal, P. Kar and M. Varma. "NGAME:
       Negative Mining-aware Mini-batching for Extreme Classification."
       WSDM 2023.

    Examples
    --------
    >>> import tempfile
    >>> from skxmc import DualEncoderClassifier, LabelInfo
    >>> from skxmc.utils._testing import save_tiny_bert
    >>> words = ["red", "green", "blue", "cat", "dog", "fish"]
    >>> folder = save_tiny_bert(tempfile.mkdtemp(), words)
    >>> docs = [f"{words[i % 6]} {words[(i + 1) % 6]}" for i in range(24)]
    >>> y = [[i % 6] for i in range(24)]
    >>> clf = DualEncoderClassifier(encoder=folder, n_epochs=1, batch_size=8,
    ...                             device="cpu", random_state=0)
    >>> clf = clf.fit(docs, y, label_info=LabelInfo(text=words))
    >>> clf.predict_topk(docs[:2], k=3)[1].shape
    (2, 3)
    >>> clf.add_labels(["bird"], labels=[6]).n_labels_
    7
    """

    _accepts_text = True
    _accepts_numeric = False
    _NEUTRAL_PARAMS = (
        *BaseXMCClassifier._NEUTRAL_PARAMS,
        "inference_batch_size", "n_jobs", "memory", "reranker", "refine_weight",
    )  # fmt: skip

    _parameter_constraints: dict = {
        **BaseXMCClassifier._parameter_constraints,
        "encoder": [str, os.PathLike],
        "max_length": [Interval(Integral, 2, None, closed="left")],
        "label_max_length": [Interval(Integral, 2, None, closed="left")],
        "pooling": [StrOptions({"cls", "mean"})],
        "trainable_layers": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
            None,
        ],
        "memory": [str, os.PathLike, HasMethods(["cache"]), None],
        "loss": [StrOptions({"contrastive", "tcm", "alc", "alc+tcm"})],
        "base_loss": [StrOptions({"triplet", "softmax"})],
        "margin": [Interval(Real, 0, None, closed="left")],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "tcm_weight": [Interval(Real, 0, None, closed="left")],
        "tcm_margins": [tuple, list],
        "beta_ql": [Interval(Real, 0, None, closed="left")],
        "beta_qb": [Interval(Real, 0, None, closed="left")],
        "pair_hidden_size": [Interval(Integral, 1, None, closed="left"), None],
        "n_epochs": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "cluster_size": [Interval(Integral, 1, None, closed="left")],
        "n_hard_negatives": [Interval(Integral, 0, None, closed="left")],
        "refresh_every": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "head_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "warmup": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "retrieval": [StrOptions({"exact", "ann"})],
        "n_neighbors": [Interval(Integral, 2, None, closed="left")],
        "refine_epochs": [Interval(Integral, 0, None, closed="left")],
        "refine_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "reranker": [StrOptions({"pair", "refined"}), None],
        "rerank_size": [Interval(Integral, 1, None, closed="left")],
        "refine_weight": [Interval(Real, 0, 1, closed="both")],
        "inference_batch_size": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        encoder,
        *,
        max_length=32,
        label_max_length=32,
        pooling="mean",
        trainable_layers="auto",
        memory=None,
        loss="contrastive",
        base_loss="triplet",
        margin=0.3,
        temperature=0.05,
        tcm_weight=1.0,
        tcm_margins=(0.9, 0.5),
        beta_ql=1.0,
        beta_qb=1.0,
        pair_hidden_size=None,
        n_epochs=3,
        batch_size=64,
        cluster_size=8,
        n_hard_negatives=1,
        refresh_every=1,
        learning_rate=2e-5,
        head_learning_rate=1e-3,
        warmup=0.1,
        weight_decay=0.01,
        retrieval="exact",
        n_neighbors=30,
        refine_epochs=0,
        refine_learning_rate=0.01,
        reranker=None,
        rerank_size=100,
        refine_weight=0.5,
        inference_batch_size=256,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=3,
        top_k=10,
        threshold=0.5,
        device="auto",
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.encoder = encoder
        self.max_length = max_length
        self.label_max_length = label_max_length
        self.pooling = pooling
        self.trainable_layers = trainable_layers
        self.memory = memory
        self.loss = loss
        self.base_loss = base_loss
        self.margin = margin
        self.temperature = temperature
        self.tcm_weight = tcm_weight
        self.tcm_margins = tcm_margins
        self.beta_ql = beta_ql
        self.beta_qb = beta_qb
        self.pair_hidden_size = pair_hidden_size
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.cluster_size = cluster_size
        self.n_hard_negatives = n_hard_negatives
        self.refresh_every = refresh_every
        self.learning_rate = learning_rate
        self.head_learning_rate = head_learning_rate
        self.warmup = warmup
        self.weight_decay = weight_decay
        self.retrieval = retrieval
        self.n_neighbors = n_neighbors
        self.refine_epochs = refine_epochs
        self.refine_learning_rate = refine_learning_rate
        self.reranker = reranker
        self.rerank_size = rerank_size
        self.refine_weight = refine_weight
        self.inference_batch_size = inference_batch_size
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.top_k = top_k
        self.threshold = threshold
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _fit(self, X, Y, *, label_info, seed):
        from skxmc.models import DualEncoderModel
        from skxmc.nn._transformer import check_max_length, load_encoder
        from skxmc.training import resolve_device

        label_texts = self._label_texts(label_info, Y.shape[1])
        self._check_reranker()
        _, self.trainable_layers_ = self._encoder_options()
        config = self._config()
        device = resolve_device(self.device)
        encoder, tokenizer = load_encoder(self.encoder)
        check_max_length(encoder, max(self.max_length, self.label_max_length))
        model = DualEncoderModel.train(
            X,
            Y,
            label_texts,
            encoder=encoder,
            tokenizer=tokenizer,
            config=config,
            seed=seed,
            device=device,
            memory=self.memory,
            verbose=self.verbose,
            log=self._log,
        )
        self._set_model(model)
        return self

    def _label_texts(self, label_info, n_labels):
        from skxmc.utils._validation import check_label_text

        if label_info is None or label_info.text is None:
            raise ValueError(
                "DualEncoderClassifier reads the labels' text: pass "
                "label_info=LabelInfo(text=...) with one text per label."
            )
        return check_label_text(list(label_info.text))

    def _config(self):
        from skxmc.models import DualEncoderConfig

        margins = tuple(float(m) for m in self.tcm_margins)
        if len(margins) != 2:
            raise ValueError(
                f"tcm_margins must hold 2 numbers, got {self.tcm_margins}."
            )
        return DualEncoderConfig(
            max_length=self.max_length,
            label_max_length=self.label_max_length,
            pooling=self.pooling,
            trainable_layers=self.trainable_layers_,
            loss=self.loss,
            base_loss=self.base_loss,
            margin=self.margin,
            temperature=self.temperature,
            tcm_weight=self.tcm_weight,
            tcm_margins=margins,
            beta_ql=self.beta_ql,
            beta_qb=self.beta_qb,
            pair_hidden_size=self.pair_hidden_size,
            n_epochs=self.n_epochs,
            batch_size=self.batch_size,
            cluster_size=self.cluster_size,
            n_hard_negatives=self.n_hard_negatives,
            refresh_every=self.refresh_every,
            learning_rate=self.learning_rate,
            head_learning_rate=self.head_learning_rate,
            warmup=self.warmup,
            weight_decay=self.weight_decay,
            retrieval=self.retrieval,
            n_neighbors=self.n_neighbors,
            inference_batch_size=self.inference_batch_size,
            refine_epochs=self.refine_epochs,
            refine_learning_rate=self.refine_learning_rate,
            rerank_size=self.rerank_size,
            early_stopping=self.early_stopping,
            validation_fraction=self.validation_fraction,
            n_iter_no_change=self.n_iter_no_change,
            n_jobs=self.n_jobs,
        )

    def _set_model(self, model):
        self.model_ = model
        self.network_ = model.network
        self.tokenizer_ = model.tokenizer
        self.label_embeddings_ = model.label_embeddings
        self.loss_curve_ = model.loss_curve
        self.validation_scores_ = model.validation_scores
        self.fit_times_ = model.fit_times

    def _check_reranker(self):
        if self.reranker == "pair" and "alc" not in self.loss:
            raise ValueError(
                f"reranker='pair' scores with ALC's pair classifier, which "
                f"loss={self.loss!r} does not train: use loss='alc' or "
                "'alc+tcm', or reranker=None."
            )
        if self.reranker == "refined" and self.refine_epochs == 0:
            raise ValueError(
                "reranker='refined' scores with the per-label classifiers of "
                "the refinement, which refine_epochs=0 does not train: set "
                "refine_epochs > 0, or reranker=None."
            )

    # -------------------------------------------------------------- predict
    def _predict_topk(self, X, k):
        from skxmc.training import resolve_device

        device = resolve_device(self.device, strict=False)
        # a model without the pair classifier (or the refinement) refuses
        # in pair_scores (refined_scores)
        return self.model_.predict_topk(
            X,
            k,
            device=device,
            reranker=self.reranker,
            rerank_size=self.rerank_size,
            refine_weight=self.refine_weight,
        )

    def transform(self, X):
        """L2-normalised query embeddings of the fine-tuned encoder.

        Parameters
        ----------
        X : sequence of str
            Queries.

        Returns
        -------
        embeddings : ndarray of shape (n_samples, hidden_size)
            One unit row per query.
        """
        from skxmc.training import resolve_device

        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return self.model_.transform(
            X, device=resolve_device(self.device, strict=False)
        )

    def add_labels(self, label_text, *, labels=None):
        """Add labels known only by their text, without retraining (zero-shot).

        Parameters
        ----------
        label_text : sequence of str
            The text of each new label.
        labels : sequence, default=None
            Names of the new labels, appended to ``classes_``. Required when
            ``classes_`` holds names; by default the next integers.

        Returns
        -------
        self : object
            The estimator, with ``n_labels_`` and ``classes_`` grown.
        """
        from skxmc.training import resolve_device
        from skxmc.utils._validation import check_label_text

        check_is_fitted(self, "model_")
        if self._y_container == "1d":
            raise ValueError("add_labels is not available after a fit on a 1-D y.")
        if isinstance(label_text, str):
            raise ValueError(
                "label_text must be a sequence of texts, got a single string."
            )
        label_text = check_label_text(label_text)
        n_new = len(label_text)
        labels = self._new_label_names(labels, n_new)
        self.model_.add_labels(
            label_text, device=resolve_device(self.device, strict=False)
        )
        self.label_embeddings_ = self.model_.label_embeddings
        self.classes_ = np.concatenate([self.classes_, labels])
        self.n_labels_ = len(self.classes_)
        return self
