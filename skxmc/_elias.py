"""EliasClassifier: end-to-end learning to index and search (ELIAS)."""

from __future__ import annotations

import os
from numbers import Integral, Real

from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skxmc.base import BaseXMCClassifier, _PretrainedEncoderMixin
from skxmc.utils._validation import DEVICE_CONSTRAINT

__all__ = ["EliasClassifier"]


class EliasClassifier(_PretrainedEncoderMixin, BaseXMCClassifier):
    """Extreme multi-label classifier that learns its own label index (ELIAS).

    ELIAS [1]_ reads raw text. A transformer encoder ``phi`` (CLS or mean
    pooling, then dropout) embeds each document. The labels are grouped into
    ``C = 2**ceil(log2(n_labels / max_leaf_size))`` clusters by balanced
    k-means on their centroids ``Y^T normalize(TF-IDF)`` (a TF-IDF of the
    documents is fitted internally). A query is routed to clusters with scores
    ``s_c = clamp(alpha * softmax(W_C phi(x)), 0, 1)``; the ``beam_size`` best
    clusters are kept. A sparse cluster-to-label adjacency ``A`` holds exactly
    ``kappa`` label slots per cluster, stored as a ``(C, kappa)`` tensor of
    label ids and a ``(C, kappa)`` tensor of parameters, with values
    ``A_hat = clamp(beta * softmax(row params), 0, 1)``. A label's path score
    is ``s_c * A_hat[c, l]`` (its best path when several clusters hold it);
    the ``shortlist_size`` labels of best path score are scored
    ``sigmoid(w_l . phi(x) + b_l) * path score``.

    Training has two stages, both in one call to :meth:`fit`. Stage 1 trains
    the encoder, ``W_C`` and the label classifiers with ``A`` fixed to the
    k-means index (each cluster holds its own labels with value 1; free slots
    are masked). ``A`` is then re-estimated: ``A_approx`` keeps the ``kappa``
    best labels of each row of ``(Y^T M)^T``, where ``M`` holds the
    ``beam_size`` best cluster scores of the stage-1 model on every training
    document (rows short of ``kappa`` labels are filled with the cluster's own
    labels, then with the most frequent labels). Stage 2 starts from the
    stage-1 weights and also learns the adjacency parameters, initialised to
    ``log(A_approx / row sum)``.

    The loss of a batch (:func:`skxmc.nn._elias.elias_loss`) is the binary
    cross-entropy of the final scores over each row's shortlist plus
    ``loss_lambda`` times the same loss over the positive entries of the
    shortlist only (averaged per row). Both stages train through
    :class:`~skxmc.training.Trainer`: AdamW with one parameter group for the
    encoder (``learning_rate``) and one for the rest (``head_learning_rate``),
    a linear schedule with warm-up, restarted for each stage. During training
    the clusters of the positive labels are forced into the beam and the
    reachable positive labels into the shortlist (teacher forcing); the beam
    is filled with the best-scoring other clusters.

    Parameters
    ----------
    encoder : str or path-like
        A pretrained transformer: a folder written by ``save_pretrained``
        (model and tokenizer) or a model name in the local Hugging Face
        cache. Nothing is downloaded. The fine-tuned copy is in ``network_``.
    max_length : int, default=32
        Tokens per document (special tokens included). At most the positions
        of the encoder (``max_position_embeddings``): a larger value is a
        ValueError at fit time.
    pooling : {"auto", "cls", "mean"}, default="auto"
        Document embedding: the first token's state or the mean over tokens.
        ``"auto"`` reads the pooling of a sentence-transformers folder
        (``1_Pooling/config.json``: mean for all-MiniLM-L6-v2) and uses
        ``"cls"`` when the folder has none; the choice is ``pooling_``.
    trainable_layers : int, None or "auto", default="auto"
        Transformer layers fine-tuned, from the top (with ``W_C``, the label
        classifiers and the adjacency). The embeddings and the layers below
        are frozen: their output on every training document is computed once
        per fit and kept (float16 token states, in memory or in a
        memory-mapped temporary file beyond 2 GiB), and each step runs only
        the top ``trainable_layers`` layers on it, so an epoch costs about
        ``trainable_layers / n_layers`` of full fine-tuning. 0 freezes the
        encoder (its embeddings are computed once; the rest trains on them).
        None, or at least the number of layers, fine-tunes everything, as
        the paper. ``"auto"`` depends on the training device: 2 on the CPU
        (a schedule affordable on a few cores: on all-MiniLM-L6-v2, a third
        of the layers), None on a GPU (the paper's full fine-tuning). The
        value used is ``trainable_layers_``.
    memory : str, path-like, joblib.Memory or None, default=None
        Caches the frozen layers' states across fits, as sklearn's
        ``Pipeline(memory=...)``: a folder or a :class:`joblib.Memory`
        (``mmap_mode="r"`` reads a large cache from disk). The key covers
        the frozen weights, the tokenised documents, the number of frozen
        layers and the pooling, so a second fit on the same documents with
        other parameters skips that forward pass. None: no caching.
    dropout : float, default=0.5
        Dropout on the pooled embedding during training.
    max_leaf_size : int, default=100
        Maximum number of labels per k-means cluster.
    kappa : int, default=1000
        Label slots per cluster row of the adjacency (capped at ``n_labels``);
        at least the size of the largest cluster.
    beam_size : int, default=20
        Clusters searched per document (and ``b``, the clusters per training
        document in the re-estimation of ``A``).
    shortlist_size : int, default=2000
        Labels scored by the classifiers per document (K).
    alpha : float, default=10.0
        Scale of the cluster softmax.
    beta : float, default=150.0
        Scale of the adjacency softmax.
    loss_lambda : float or tuple of 2 floats, default=(0.01, 0.05)
        Weight of the loss on positive shortlist entries, per stage.
    n_epochs : int or tuple of 2 ints, default=(10, 10)
        Passes over the data of stage 1 and stage 2 (an int is used for both).
        A stage with 0 epochs is skipped.
    batch_size : int, default=64
        Documents per optimizer step. Every epoch shuffles the documents
        anew and cuts them into batches; the last batch of an epoch may be
        smaller. Out of GPU memory, a step is split into smaller forward
        passes whose gradients are accumulated (the same step).
    learning_rate : float or tuple of 2 floats, default=(2e-4, 3e-5)
        AdamW learning rate of the encoder, per stage.
    head_learning_rate : float or tuple of 2 floats, default=5e-3
        AdamW learning rate of the cluster scorer, the label classifiers and
        the adjacency parameters, per stage.
    warmup : float, default=0.1
        Fraction of each stage's steps with a linearly rising learning rate
        (from 0); it then decays linearly to 0 (transformers'
        ``get_linear_schedule_with_warmup``).
    weight_decay : float, default=0.01
        AdamW weight decay.
    swa : bool, default=False
        Stochastic weight averaging
        (:class:`torch.optim.swa_utils.AveragedModel`) over the second half
        of stage 2; the averaged weights are kept.
    reranker : {"shortlist", "xr-linear"} or None, default="shortlist"
        A sparse re-ranker trained after stage 2. ``"shortlist"``: the
        paper's optional re-ranker, one sparse linear model per label
        (:class:`~skxmc.indexing.ShortlistReranker`, squared hinge,
        ``l3-hinge`` scores) on ``[normalised embedding, TF-IDF]`` features,
        trained on the ``rerank_size`` best labels that the fitted model
        returns for every training document; it re-scores those labels. On
        by default: with the other new defaults it raised validation P@1
        from 50.83 to 52.50 on a slice of the LF-DebianPackages sample
        (``benchmarks/results/defaults_cpu.txt``; without it 57.0, with it
        66.5 on a smoke run's test split, ``elias_cpu_smoke.txt``).
        ``"xr-linear"``: an addition to ELIAS, an XR-Linear ranker
        (:class:`~skxmc.indexing.XRLinearModel`; 16-way PIFA tree with
        leaves of at most 100 labels, beam 20) on the TF-IDF alone, a model
        of other features than the encoder's; its ``rerank_size`` best
        labels join ELIAS's and it scores every candidate (as
        ``DecafClassifier``'s re-ranker of the same name). ``None`` skips
        it. How the scores are combined: ``fusion``.
    rerank_size : int, default=100
        Labels per document passed to the re-ranker (training and prediction).
    rerank_weight : float, default=0.5
        ``fusion="weights"``: the final score is ``(1 - rerank_weight) *
        ELIAS score + rerank_weight * re-ranker score`` (an ELIAS score of 0
        for a label only the XR-Linear re-ranker proposed).
    reranker_params : dict, default=None
        Keyword arguments of :meth:`ShortlistReranker.train
        <skxmc.indexing.ShortlistReranker.train>` or :meth:`XRLinearModel.train
        <skxmc.indexing.XRLinearModel.train>` (``C``, ``loss``,
        ``weight_threshold``, ...).
    fusion : {"weights", "learned"}, default="weights"
        How the scores of a (document, candidate label) pair are combined.
        ``"weights"``: ``rerank_weight`` (above). ``"learned"``: an addition
        to ELIAS, as ``DecafClassifier``'s: ``fusion_fraction`` of the
        training rows are held out of everything else (TF-IDF, clustering,
        both stages, re-ranker) and a gradient-boosted
        :class:`~skxmc.indexing.ScoreFusion` learns from them the
        probability that a candidate is relevant from ELIAS's score, the
        label classifier's ``sigmoid(w_l . emb)`` (which rates every
        candidate), the label's training frequency and the re-ranker's
        score (and their ranks among the row's candidates); that probability
        is the prediction score. How much to trust each model is then
        learned on rows none of them trained on instead of set by hand.
    fusion_fraction : float, default=0.1
        Share of the training rows held out for ``fusion="learned"``.
    kmeans_max_iter : int, default=20
        Iterations of each 2-means split of the clustering.
    tfidf_params : dict, default=None
        Keyword arguments of the internal
        :class:`~sklearn.feature_extraction.text.TfidfVectorizer` (defaults:
        ``sublinear_tf=True``, ``dtype=np.float32``).
    inference_batch_size : int, default=256
        Documents per forward pass without gradients.
    checkpoint_dir : str or path-like, default=None
        If set, the training state (stage, network, optimizers, schedule,
        SWA average, RNG states, re-estimated index, loss curve) is saved
        there after every epoch of each stage, in one file per fit
        (``elias-<fingerprint>.ckpt``; the fingerprint covers the documents,
        the labels, the parameters and the encoder's weights). A fit with the
        same fingerprint resumes from it and ends with the same model as an
        uninterrupted fit (a finished checkpoint skips training); with
        ``random_state=None`` it resumes with the seed stored there. A file
        that cannot be read safely is ignored with a warning. Checkpoints are
        loaded with ``weights_only=True``.
    top_k : int, default=10
        Labels kept per row by :meth:`decision_function` and :meth:`predict`.
    threshold : float, default=0.5
        :meth:`predict` returns the top-``top_k`` labels scoring above it
        (scores lie in [0, 1]).
    device : str or torch.device, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``,
        ``"mps"`` (Apple silicon) or a :class:`torch.device`.
        On a GPU the encoder runs under autocast (bfloat16
        where supported natively, else float16 with a gradient scaler); the
        scores and the loss are computed in float32. ``network_`` stays on
        the CPU; prediction on a GPU runs on a copy moved there once and kept
        between calls (not pickled).
    n_jobs : int, default=None
        Threads of the clustering; None means all cores.
    random_state : int, RandomState instance or None, default=None
        Seeds the clustering, the initial weights, the data order and
        dropout; the global RNGs are left untouched.
    verbose : int, default=0
        Log the stages and epochs on the ``skxmc`` logger and show progress
        bars.

    Attributes
    ----------
    classes_ : ndarray of shape (n_labels,)
        The labels.
    n_labels_ : int
        Number of labels.
    n_clusters_ : int
        Number of clusters ``C``.
    kappa_ : int
        Label slots per cluster row (``min(kappa, n_labels)``).
    vectorizer_ : TfidfVectorizer
        The TF-IDF of the label centroids.
    cluster_of_label_ : ndarray of shape (n_labels,)
        The k-means cluster of every label (the stage-1 index).
    model_ : EliasModel
        The fitted engine (:class:`skxmc.models.EliasModel`); the attributes
        below are its parts.
    network_ : EliasNetwork
        The trained network (on the CPU): encoder, ``W_C``, the label
        classifiers and the stage-2 adjacency (``adjacency_index`` and
        ``adjacency_logits``, both of shape ``(n_clusters_, kappa_)``).
    tokenizer_ : transformers.PreTrainedTokenizerBase
        The encoder's tokenizer.
    loss_curve_ : list of float
        Mean training loss of every epoch: the ``n_epochs[0]`` epochs of
        stage 1, then those of stage 2.
    reranker_ : ShortlistReranker, XRLinearModel or None
        The sparse re-ranker (``reranker``).
    fusion_ : ScoreFusion or None
        The learned fusion (``fusion="learned"``).
    pooling_ : {"cls", "mean"}
        The pooling used (``pooling`` with ``"auto"`` resolved).
    trainable_layers_ : int or None
        The layers fine-tuned (``trainable_layers`` with ``"auto"``
        resolved).
    fit_times_ : dict
        Seconds per part: ``"tfidf"``, ``"clustering"``, ``"stage1"``,
        ``"reestimate"``, ``"stage2"``, ``"reranker"`` and ``"fusion"``.

    See Also
    --------
    skxmc.models.EliasModel : The engine, usable without scikit-learn.
    XRTransformerClassifier : Fine-tuned transformer with a fixed label tree.

    Notes
    -----
    Not implemented from the paper: the multinomial sampling of extra
    training clusters, the second clustering pass on ``[BoW, dense]``
    centroids and updating ``W_L`` only every few steps.

    References
    ----------
    .. [1] N. Gupta, P. H. Chen, H.-F. Yu, C.-J. Hsieh and I. S. Dhillon.
       "ELIAS: End-to-End Learning to Index and Search in Large Output Spaces."
       NeurIPS 2022.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import transformers
    >>> from skxmc import EliasClassifier
    >>> folder = Path(tempfile.mkdtemp())
    >>> words = ["red", "green", "blue", "cat", "dog", "fish"]
    >>> _ = (folder / "vocab.txt").write_text(
    ...     "\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]))
    >>> transformers.BertTokenizerFast(str(folder / "vocab.txt")).save_pretrained(
    ...     folder)  # doctest: +ELLIPSIS
    (...)
    >>> config = transformers.BertConfig(
    ...     vocab_size=11, hidden_size=16, num_hidden_layers=1,
    ...     num_attention_heads=2, intermediate_size=32)
    >>> transformers.BertModel(config).save_pretrained(folder)
    >>> docs = [f"{words[i % 6]} {words[(i + 1) % 6]}" for i in range(30)]
    >>> y = [[i % 6] for i in range(30)]
    >>> clf = EliasClassifier(
    ...     encoder=folder, max_leaf_size=2, kappa=3, beam_size=2,
    ...     shortlist_size=6, n_epochs=1, batch_size=8, device="cpu",
    ...     random_state=0).fit(docs, y)
    >>> clf.n_clusters_, tuple(clf.network_.adjacency_index.shape)
    (4, (4, 3))
    >>> scores, labels = clf.predict_topk(docs[:2], k=3)
    >>> labels.shape
    (2, 3)
    """

    _accepts_text = True
    _accepts_numeric = False
    _NEUTRAL_PARAMS = (
        *BaseXMCClassifier._NEUTRAL_PARAMS,
        "inference_batch_size", "n_jobs", "reranker", "rerank_size",
        "rerank_weight", "reranker_params", "memory",
    )  # fmt: skip

    _parameter_constraints: dict = {
        **BaseXMCClassifier._parameter_constraints,
        "encoder": [str, os.PathLike],
        "max_length": [Interval(Integral, 2, None, closed="left")],
        "pooling": [StrOptions({"auto", "cls", "mean"})],
        "trainable_layers": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
            None,
        ],
        "memory": [str, os.PathLike, HasMethods(["cache"]), None],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "max_leaf_size": [Interval(Integral, 1, None, closed="left")],
        "kappa": [Interval(Integral, 1, None, closed="left")],
        "beam_size": [Interval(Integral, 1, None, closed="left")],
        "shortlist_size": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "beta": [Interval(Real, 0, None, closed="neither")],
        "loss_lambda": [Interval(Real, 0, None, closed="left"), tuple, list],
        "n_epochs": [Interval(Integral, 0, None, closed="left"), tuple, list],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), tuple, list],
        "head_learning_rate": [
            Interval(Real, 0, None, closed="neither"),
            tuple,
            list,
        ],
        "warmup": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "swa": ["boolean"],
        "reranker": [None, StrOptions({"shortlist", "xr-linear"})],
        "rerank_size": [Interval(Integral, 1, None, closed="left")],
        "rerank_weight": [Interval(Real, 0, 1, closed="both")],
        "reranker_params": [dict, None],
        "fusion": [StrOptions({"weights", "learned"})],
        "fusion_fraction": [Interval(Real, 0, 1, closed="neither")],
        "kmeans_max_iter": [Interval(Integral, 1, None, closed="left")],
        "tfidf_params": [dict, None],
        "inference_batch_size": [Interval(Integral, 1, None, closed="left")],
        "checkpoint_dir": [str, os.PathLike, None],
        "device": DEVICE_CONSTRAINT,
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        encoder,
        *,
        max_length=32,
        pooling="auto",
        trainable_layers="auto",
        memory=None,
        dropout=0.5,
        max_leaf_size=100,
        kappa=1000,
        beam_size=20,
        shortlist_size=2000,
        alpha=10.0,
        beta=150.0,
        loss_lambda=(0.01, 0.05),
        n_epochs=(10, 10),
        batch_size=64,
        learning_rate=(2e-4, 3e-5),
        head_learning_rate=5e-3,
        warmup=0.1,
        weight_decay=0.01,
        swa=False,
        reranker="shortlist",
        rerank_size=100,
        rerank_weight=0.5,
        reranker_params=None,
        fusion="weights",
        fusion_fraction=0.1,
        kmeans_max_iter=20,
        tfidf_params=None,
        inference_batch_size=256,
        checkpoint_dir=None,
        top_k=10,
        threshold=0.5,
        device="auto",
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.encoder = encoder
        self.max_length = max_length
        self.pooling = pooling
        self.trainable_layers = trainable_layers
        self.memory = memory
        self.dropout = dropout
        self.max_leaf_size = max_leaf_size
        self.kappa = kappa
        self.beam_size = beam_size
        self.shortlist_size = shortlist_size
        self.alpha = alpha
        self.beta = beta
        self.loss_lambda = loss_lambda
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.head_learning_rate = head_learning_rate
        self.warmup = warmup
        self.weight_decay = weight_decay
        self.swa = swa
        self.reranker = reranker
        self.rerank_size = rerank_size
        self.rerank_weight = rerank_weight
        self.reranker_params = reranker_params
        self.fusion = fusion
        self.fusion_fraction = fusion_fraction
        self.kmeans_max_iter = kmeans_max_iter
        self.tfidf_params = tfidf_params
        self.inference_batch_size = inference_batch_size
        self.checkpoint_dir = checkpoint_dir
        self.top_k = top_k
        self.threshold = threshold
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _fit(self, X, Y, *, label_info, seed):
        from skxmc.models import EliasModel
        from skxmc.nn._transformer import check_max_length, load_encoder
        from skxmc.training import resolve_device

        device = resolve_device(self.device)
        encoder, tokenizer = load_encoder(self.encoder)
        check_max_length(encoder, self.max_length)
        self.pooling_, self.trainable_layers_ = self._encoder_options()
        config = self._config()
        store = self._open_checkpoint(
            {
                "X": X,
                "Y": Y,
                "encoder": encoder,
                "resolved": (self.pooling_, self.trainable_layers_),
            }
        )
        if store is not None:
            seed = store.resume_seed(seed)
        model = EliasModel.train(
            X,
            Y,
            encoder=encoder,
            tokenizer=tokenizer,
            config=config,
            seed=seed,
            device=device,
            store=store,
            memory=self.memory,
            verbose=self.verbose,
            log=self._log,
        )
        self.model_ = model
        self.network_ = model.network
        self.tokenizer_ = model.tokenizer
        self.vectorizer_ = model.vectorizer
        self.cluster_of_label_ = model.cluster_of_label
        self.n_clusters_ = model.n_clusters
        self.kappa_ = model.kappa
        self.loss_curve_ = model.loss_curve
        self.reranker_ = model.reranker
        self.fusion_ = model.fusion
        self.fit_times_ = model.fit_times
        return self

    def _config(self):
        """The engine's :class:`~skxmc.models.EliasConfig` (validates the
        per-stage parameters)."""
        from skxmc.models import EliasConfig

        pooling, trainable_layers = self._encoder_options()

        return EliasConfig(
            max_length=self.max_length,
            pooling=pooling,
            dropout=self.dropout,
            max_leaf_size=self.max_leaf_size,
            kappa=self.kappa,
            beam_size=self.beam_size,
            shortlist_size=self.shortlist_size,
            alpha=self.alpha,
            beta=self.beta,
            loss_lambda=self._per_stage("loss_lambda", self.loss_lambda, Real, 0),
            n_epochs=self._per_stage("n_epochs", self.n_epochs, Integral, 0),
            batch_size=self.batch_size,
            learning_rate=self._per_stage("learning_rate", self.learning_rate, Real),
            head_learning_rate=self._per_stage(
                "head_learning_rate", self.head_learning_rate, Real
            ),
            warmup=self.warmup,
            weight_decay=self.weight_decay,
            swa=self.swa,
            reranker=self.reranker,
            rerank_size=self.rerank_size,
            rerank_weight=self.rerank_weight,
            reranker_params=self.reranker_params,
            fusion=self.fusion,
            fusion_fraction=self.fusion_fraction,
            kmeans_max_iter=self.kmeans_max_iter,
            tfidf_params=self.tfidf_params,
            inference_batch_size=self.inference_batch_size,
            n_jobs=self.n_jobs,
            trainable_layers=trainable_layers,
        )

    def _per_stage(self, name, value, kind, low=None):
        values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
        ok = len(values) == 2 and all(
            isinstance(v, kind) and not isinstance(v, bool) for v in values
        )
        if ok:
            ok = all((v >= low) if low is not None else (v > 0) for v in values)
        if not ok:
            bound = f">= {low}" if low is not None else "> 0"
            raise ValueError(
                f"{name} must be a number {bound} or a tuple of two (stage 1, "
                f"stage 2), got {value!r}."
            )
        return values

    # -------------------------------------------------------------- predict
    def _predict_topk(self, X, k):
        return self.model_.predict_topk(
            X,
            k,
            device=self._predict_device(),
            beam_size=self.beam_size,
            shortlist_size=self.shortlist_size,
            rerank_weight=self.rerank_weight,
            batch_size=self.inference_batch_size,
        )

    def transform(self, X):
        """Document embeddings of the fine-tuned encoder (pooled, no dropout).

        Parameters
        ----------
        X : sequence of str
            Documents.

        Returns
        -------
        embeddings : ndarray of shape (n_samples, hidden_size), dtype float32
            The pooled output of the encoder in ``network_``, one row per
            document.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return self.model_.transform(
            X, device=self._predict_device(), batch_size=self.inference_batch_size
        )
