"""XRTransformerClassifier: multi-resolution transformer fine-tuning + XR-Linear."""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skxmc.base import BaseXMCClassifier, _PretrainedEncoderMixin
from skxmc.indexing import LOSSES, NEGATIVE_SAMPLING, POST_PROCESSORS
from skxmc.models._xr_transformer import (
    WEIGHT_THRESHOLDS,
    MatcherParams,
    RankerParams,
    TreeParams,
)
from skxmc.nn._xr_transformer import MATCHER_LOSSES
from skxmc.utils._validation import DEVICE_CONSTRAINT

__all__ = ["XRTransformerClassifier"]


class XRTransformerClassifier(_PretrainedEncoderMixin, BaseXMCClassifier):
    """Extreme multi-label classifier: a fine-tuned transformer + XR-Linear.

    XR-Transformer (PECOS) reads raw text. It (1) builds a preliminary label
    tree by hierarchical spherical k-means on PIFA label embeddings of a
    TF-IDF of the documents (fitted internally); (2) fine-tunes a pretrained
    transformer coarse to fine, one level of that tree at a time: a linear
    scorer over the level's clusters sits on the pooled embedding and is
    trained with the encoder on each row's positive clusters and its
    negatives (teacher-forced: the siblings of positive clusters;
    matcher-aware: the children of the clusters the previous level ranks
    best); the scorer of a level starts from the previous one (every child
    copies its parent's row); (3) re-clusters the labels on PIFA of
    ``[TF-IDF, normalised fine-tuned embedding]``; and (4) trains an
    XR-Linear ranker (:class:`~skxmc.indexing.XRLinearModel`) on those
    concatenated features. Prediction encodes the queries, concatenates the
    features and runs the ranker's beam search.

    Parameters
    ----------
    encoder : str or path-like
        A pretrained transformer: a folder written by ``save_pretrained``
        (model and tokenizer) or a model name in the local Hugging Face
        cache. Nothing is downloaded. Loaded at fit time; the fine-tuned copy
        is ``encoder_``.
    max_length : int, default=64
        Tokens per document (special tokens included); longer ones are cut.
        At most the positions of the encoder (``max_position_embeddings``):
        a larger value is a ValueError at fit time.
    pooling : {"auto", "cls", "mean"}, default="auto"
        Document embedding: the first token's state or the mean over tokens.
        ``"auto"`` reads the pooling of a sentence-transformers folder
        (``1_Pooling/config.json``: mean for all-MiniLM-L6-v2) and uses
        ``"cls"`` when the folder has none; the choice is ``pooling_``.
    trainable_layers : int, None or "auto", default="auto"
        Transformer layers fine-tuned, from the top. The embeddings and the
        layers below are frozen: their output on every training text is
        computed once per fit and kept (float16 token states, in memory or
        in a memory-mapped temporary file beyond 2 GiB), and each step runs
        only the top ``trainable_layers`` layers on it, so an epoch costs
        about ``trainable_layers / n_layers`` of full fine-tuning. 0 freezes
        the encoder (its embeddings are computed once; only the level scorers
        train, and the ranker reads the pretrained embedding). None, or at
        least the number of layers, fine-tunes everything, as the paper.
        ``"auto"`` depends on the training device: 2 on the CPU (a schedule
        affordable on a few cores: on all-MiniLM-L6-v2, a third of the
        layers), None on a GPU (the paper's full fine-tuning). The value
        used is ``trainable_layers_``.
    memory : str, path-like, joblib.Memory or None, default=None
        Caches the frozen layers' states across fits, as sklearn's
        ``Pipeline(memory=...)``: a folder or a :class:`joblib.Memory`
        (``mmap_mode="r"`` reads a large cache from disk). The key covers
        the frozen weights, the tokenised documents, the number of frozen
        layers and the pooling, so a second fit on the same documents with
        other parameters skips that forward pass. None: no caching.
    branching_factor : int, default=16
        Maximum number of children of an internal node, in both trees.
    max_leaf_size : int, default=100
        Maximum number of labels per leaf cluster, in both trees.
    kmeans_max_iter : int, default=20
        Iterations of each 2-means split of the tree construction.
    max_match_clusters : int, default=32768
        Tree levels with more nodes than this are not fine-tuned on (the
        finest resolution of the fine-tuning).
    n_epochs : int, default=1
        Passes over the data per fine-tuned level (used when ``n_steps`` is
        None).
    n_steps : int, array-like of int or None, default=None
        Optimizer steps per fine-tuned level, coarse to fine (the last value
        is repeated for deeper levels); overrides ``n_epochs``: a level runs
        as many epochs as these steps need, the last one cut short. 0 skips
        fine-tuning (the ranker then uses the pretrained embedding).
    batch_size : int, default=32
        Documents per forward pass during fine-tuning (halved on a CUDA
        out-of-memory error, with gradients accumulated).
    gradient_accumulation : int, default=1
        Forward passes per optimizer step: a step reads
        ``batch_size * gradient_accumulation`` documents.
    learning_rate : float, default=1e-4
        AdamW learning rate of the encoder.
    head_learning_rate : float, default=None
        Learning rate of the level scorers; None means ``learning_rate``.
    warmup : float, default=0.1
        Fraction of each level's steps with a linearly rising learning rate
        (from 0); it then decays linearly to 0 (transformers'
        ``get_linear_schedule_with_warmup``). On CUDA the forward passes run
        in bfloat16 autocast (float16 with loss scaling on GPUs without
        native bfloat16).
    weight_decay : float, default=0.0
        AdamW weight decay.
    matcher_loss : {"squared_hinge", "bce"}, default="squared_hinge"
        Loss of the level scorers over each row's positive and negative
        clusters (averaged per row).
    matcher_negative_sampling : {"tfn", "man", "tfn+man"}, default="tfn+man"
        Negative clusters of a row during fine-tuning: children of its
        positive parents (``"tfn"``), children of the ``beam_size`` parents
        the previous level's scorer ranks best (``"man"``), or both.
    label_text_init : bool, default=False
        Initialise every level's scorer rows with the normalised mean
        embedding of the text of the labels below each cluster (added to the
        copied parent row). Needs ``fit(..., label_info=LabelInfo(text=...))``.
        Not in the paper.
    embedding_weight : float or "auto", default="auto"
        The ranker reads ``[normalize(tfidf), embedding_weight * e]`` with
        ``e`` the unit-norm fine-tuned embedding (the TF-IDF block as
        XR-Linear sees it). ``"auto"`` tries the weights 0 (TF-IDF alone,
        i.e. XR-Linear on the same features), 0.25, 0.5 and 1 on a
        validation split of the training rows (``validation_fraction``; a
        tree and a ranker per weight, fitted on the other rows) and keeps
        the best mean of P@1, P@3 and P@5 (the smallest weight on ties);
        the choice is ``embedding_weight_``. It costs four more ranker fits
        on that share of the rows (five with ``weight_threshold="auto"``).
        At weight 0 the fitted tree and ranker are those of
        :class:`~skxmc.XRLinearClassifier` with the same ``random_state``
        and ranker parameters on ``vectorizer_``'s TF-IDF, so a fit never
        falls below that model unless its validation rows prefer a fused
        one.
    validation_fraction : float, default=0.2
        Share of the training rows held out by ``embedding_weight="auto"``
        and ``weight_threshold="auto"``.
    tfidf_params : dict, default=None
        Keyword arguments of the internal
        :class:`~sklearn.feature_extraction.text.TfidfVectorizer` (defaults:
        ``sublinear_tf=True``, ``dtype=np.float32``).
    negative_sampling : {"tfn", "man", "tfn+man"}, default="tfn+man"
        Negative sampling of the XR-Linear ranker (see
        :class:`~skxmc.XRLinearClassifier`).
    loss : {"squared_hinge", "logistic"}, default="squared_hinge"
        Loss of the ranker's node models.
    C : float, default=1.0
        Inverse regularisation strength of the ranker's node models.
    max_iter : int, default=100
        Maximum solver passes per ranker node model.
    tol : float, default=0.1
        Ranker solver stopping tolerance.
    bias : float, default=1.0
        Value of the ranker's constant feature (0 disables intercepts).
    weight_threshold : float or "auto", default="auto"
        Ranker weights with a smaller absolute value are dropped. ``"auto"``
        tries 0.1 (XR-Linear's default) and 0.001 (PECOS XR-Transformer's) on
        the validation rows of ``embedding_weight`` (with TF-IDF alone when
        that is ``"auto"``, so that XR-Linear with its defaults on the same
        TF-IDF is among the candidates), keeps the better (the larger on
        ties), then tries the embedding weights at it; the choice is
        ``weight_threshold_``. Neither value wins everywhere: on validation
        rows 0.1 leads by 0.5 P@1 on LF-FOLDOC, 0.001 by 0.2 on
        LF-DebianPackages
        (``benchmarks/results/xr_transformer_features_foldoc_cpu.txt``). It
        costs one ranker fit more than ``embedding_weight="auto"`` alone.
    beam_size : int, default=10
        Nodes kept per tree level during prediction and negative mining.
    post_processor : {"l3-hinge", "sigmoid"}, default="l3-hinge"
        Transform of the ranker's node scores along a path.
    inference_batch_size : int, default=128
        Documents per forward pass when encoding without gradients.
    top_k : int, default=10
        Labels kept per row by :meth:`decision_function` and :meth:`predict`.
    threshold : float, default=0.5
        :meth:`predict` returns the top-``top_k`` labels scoring above it.
    checkpoint_dir : str or path-like, default=None
        If set, the fine-tuning state is saved there after every epoch of
        every level and after each level, and a fit with the same documents,
        labels, label text, encoder weights and parameters resumes from it (a
        checkpoint of finished fine-tuning skips it at once; the refined tree
        and the ranker are rebuilt). With ``random_state=None`` the resumed
        fit reuses the seed of the interrupted one.
    device : str or torch.device, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``,
        ``"mps"`` (Apple silicon) or a :class:`torch.device`.
        After the first call on a device, the encoder stays
        there (a copy; ``encoder_`` is on the CPU); the copy is dropped on
        pickling.
    n_jobs : int, default=None
        Threads of the clustering and of the ranker; None means all cores.
    random_state : int, RandomState instance or None, default=None
        Seeds the trees, the scorer initialisation, the data order, dropout
        and the ranker solvers; the global RNGs are left untouched.
    verbose : int, default=0
        Log the stages on the ``skxmc`` logger and show progress bars.

    Attributes
    ----------
    classes_ : ndarray of shape (n_labels,)
        The labels.
    n_labels_ : int
        Number of labels.
    vectorizer_ : TfidfVectorizer
        The fitted TF-IDF vectorizer.
    pooling_ : {"cls", "mean"}
        The pooling used (``pooling`` with ``"auto"`` resolved).
    trainable_layers_ : int or None
        The layers fine-tuned (``trainable_layers`` with ``"auto"``
        resolved).
    embedding_weight_ : float
        Scale of the embedding block of the ranker's features
        (``embedding_weight`` with ``"auto"`` resolved).
    weight_threshold_ : float
        The ranker's weight threshold (``weight_threshold`` with ``"auto"``
        resolved).
    model_ : XRTransformerModel
        The engine (:class:`skxmc.models.XRTransformerModel`); its ``ranker``
        is the :class:`~skxmc.indexing.XRLinearModel` on
        ``[TF-IDF, embedding]`` features.
    encoder_ : transformers.PreTrainedModel
        The fine-tuned encoder (on the CPU).
    tokenizer_ : transformers.PreTrainedTokenizerBase
        Its tokenizer.
    matcher_tree_ : LabelTree
        The preliminary tree the encoder was fine-tuned on.
    matcher_weights_ : list of tuple of ndarray
        ``(W, b)`` of the scorer of each fine-tuned level, coarse to fine.
    label_tree_ : LabelTree
        The refined tree of the ranker.
    loss_curve_ : list of float
        Mean training loss of every epoch, the fine-tuned levels coarse to
        fine in turn (a flat list, as DecafClassifier's); ``n_epochs_`` splits
        it per level.
    n_epochs_ : list of int
        Epochs run per fine-tuned level (an epoch cut short by ``n_steps``
        counts; 0 for a level with no steps).
    n_iter_ : int
        Largest number of solver passes of any ranker node model (at most
        ``max_iter``), as in :class:`~skxmc.XRLinearClassifier`.
    fit_times_ : dict
        Seconds per stage: ``"tfidf"``, ``"preliminary_tree"``,
        ``"state_cache"`` (with frozen layers), ``"fine_tuning"``,
        ``"encoding"``, ``"embedding_weight"`` (with ``"auto"``),
        ``"refined_tree"``, ``"ranker"``.

    See Also
    --------
    XRLinearClassifier : The same ranker on TF-IDF features only.

    References
    ----------
    .. [1] J. Zhang, W.-C. Chang, H.-F. Yu and I. S. Dhillon. "Fast Multi-Resolution
       Transformer Fine-tuning for Extreme Multi-label Text Classification."
       NeurIPS 2021.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import transformers
    >>> from skxmc import XRTransformerClassifier
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
    >>> clf = XRTransformerClassifier(
    ...     encoder=folder, max_leaf_size=2, branching_factor=2, n_steps=5,
    ...     batch_size=8, device="cpu", random_state=0).fit(docs, y)
    >>> scores, labels = clf.predict_topk(docs[:2], k=3)
    >>> labels.shape
    (2, 3)
    """

    _accepts_text = True
    _accepts_numeric = False

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
        "branching_factor": [Interval(Integral, 2, None, closed="left")],
        "max_leaf_size": [Interval(Integral, 1, None, closed="left")],
        "kmeans_max_iter": [Interval(Integral, 1, None, closed="left")],
        "max_match_clusters": [Interval(Integral, 1, None, closed="left")],
        "n_epochs": [Interval(Integral, 0, None, closed="left")],
        "n_steps": [Interval(Integral, 0, None, closed="left"), "array-like", None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "gradient_accumulation": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "head_learning_rate": [Interval(Real, 0, None, closed="neither"), None],
        "warmup": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "matcher_loss": [StrOptions(set(MATCHER_LOSSES))],
        "matcher_negative_sampling": [StrOptions(set(NEGATIVE_SAMPLING))],
        "label_text_init": ["boolean"],
        "embedding_weight": [
            Interval(Real, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "tfidf_params": [dict, None],
        "negative_sampling": [StrOptions(set(NEGATIVE_SAMPLING))],
        "loss": [StrOptions(set(LOSSES))],
        "C": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "bias": [Interval(Real, 0, None, closed="left")],
        "weight_threshold": [
            Interval(Real, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "beam_size": [Interval(Integral, 1, None, closed="left")],
        "post_processor": [StrOptions(set(POST_PROCESSORS))],
        "inference_batch_size": [Interval(Integral, 1, None, closed="left")],
        "checkpoint_dir": [str, os.PathLike, None],
        "device": DEVICE_CONSTRAINT,
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        encoder,
        *,
        max_length=64,
        pooling="auto",
        trainable_layers="auto",
        memory=None,
        branching_factor=16,
        max_leaf_size=100,
        kmeans_max_iter=20,
        max_match_clusters=32768,
        n_epochs=1,
        n_steps=None,
        batch_size=32,
        gradient_accumulation=1,
        learning_rate=1e-4,
        head_learning_rate=None,
        warmup=0.1,
        weight_decay=0.0,
        matcher_loss="squared_hinge",
        matcher_negative_sampling="tfn+man",
        label_text_init=False,
        embedding_weight="auto",
        validation_fraction=0.2,
        tfidf_params=None,
        negative_sampling="tfn+man",
        loss="squared_hinge",
        C=1.0,
        max_iter=100,
        tol=0.1,
        bias=1.0,
        weight_threshold="auto",
        beam_size=10,
        post_processor="l3-hinge",
        inference_batch_size=128,
        top_k=10,
        threshold=0.5,
        checkpoint_dir=None,
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
        self.branching_factor = branching_factor
        self.max_leaf_size = max_leaf_size
        self.kmeans_max_iter = kmeans_max_iter
        self.max_match_clusters = max_match_clusters
        self.n_epochs = n_epochs
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.gradient_accumulation = gradient_accumulation
        self.learning_rate = learning_rate
        self.head_learning_rate = head_learning_rate
        self.warmup = warmup
        self.weight_decay = weight_decay
        self.matcher_loss = matcher_loss
        self.matcher_negative_sampling = matcher_negative_sampling
        self.label_text_init = label_text_init
        self.embedding_weight = embedding_weight
        self.validation_fraction = validation_fraction
        self.tfidf_params = tfidf_params
        self.negative_sampling = negative_sampling
        self.loss = loss
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.bias = bias
        self.weight_threshold = weight_threshold
        self.beam_size = beam_size
        self.post_processor = post_processor
        self.inference_batch_size = inference_batch_size
        self.top_k = top_k
        self.threshold = threshold
        self.checkpoint_dir = checkpoint_dir
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    _NEUTRAL_PARAMS = (*BaseXMCClassifier._NEUTRAL_PARAMS, "memory")

    # ------------------------------------------------------------------ fit
    def _fit(self, X, Y, *, label_info, seed):
        from skxmc.models import XRTransformerModel
        from skxmc.nn._transformer import check_max_length, load_encoder
        from skxmc.training import resolve_device

        label_text = None if label_info is None else label_info.text
        if self.label_text_init and label_text is None:
            raise ValueError(
                "label_text_init=True needs label text: pass "
                "fit(X, y, label_info=LabelInfo(text=[...])) with one text per label."
            )
        device = resolve_device(self.device)
        encoder, tokenizer = load_encoder(self.encoder)
        check_max_length(encoder, self.max_length)
        self.pooling_, self.trainable_layers_ = self._encoder_options()
        params = self._engine_params()
        store = self._open_checkpoint(
            {
                "X": list(X),
                "Y": Y,
                "label_text": label_text,
                "encoder": encoder,
                "resolved": (self.pooling_, self.trainable_layers_),
            }
        )
        if store is not None:
            seed = store.resume_seed(seed)
        self.model_ = XRTransformerModel.train(
            X,
            Y,
            encoder=encoder,
            tokenizer=tokenizer,
            label_text=label_text,
            **params,
            seed=seed,
            device=device,
            checkpoint=store,
            memory=self.memory,
            verbose=self.verbose,
        )
        model = self.model_
        self.vectorizer_ = model.vectorizer
        self.tokenizer_ = model.tokenizer
        self.encoder_ = model.encoder
        self.matcher_tree_ = model.matcher_tree
        self.matcher_weights_ = model.matcher_weights
        self.label_tree_ = model.label_tree
        self.loss_curve_ = model.loss_curve
        self.n_epochs_ = model.n_epochs
        self.n_iter_ = max([1, *model.ranker.n_iter_])
        self.embedding_weight_ = model.embedding_weight
        self.weight_threshold_ = model.weight_threshold
        self.fit_times_ = model.fit_times
        return self

    def _engine_params(self) -> dict:
        """The keyword arguments of :meth:`XRTransformerModel.train` that
        come from the parameters."""
        return {
            "tree": TreeParams(
                branching_factor=self.branching_factor,
                max_leaf_size=self.max_leaf_size,
                kmeans_max_iter=self.kmeans_max_iter,
            ),
            "matcher": self._matcher_params(),
            "ranker": RankerParams(
                negative_sampling=self.negative_sampling,
                loss=self.loss,
                C=self.C,
                max_iter=self.max_iter,
                tol=self.tol,
                bias=self.bias,
                **(
                    {}
                    if self.weight_threshold == "auto"
                    else {"weight_threshold": self.weight_threshold}
                ),
                beam_size=self.beam_size,
                post_processor=self.post_processor,
            ),
            "tfidf_params": self.tfidf_params,
            "embedding_weight": self.embedding_weight,
            "weight_thresholds": (
                WEIGHT_THRESHOLDS if self.weight_threshold == "auto" else None
            ),
            "validation_fraction": self.validation_fraction,
            "n_jobs": self.n_jobs,
        }

    def _matcher_params(self) -> MatcherParams:
        pooling, trainable_layers = self._encoder_options()
        n_steps = self.n_steps
        if n_steps is not None:
            steps = np.atleast_1d(np.asarray(n_steps))
            if (
                steps.ndim != 1
                or steps.size == 0
                or not np.issubdtype(steps.dtype, np.integer)
            ):
                raise ValueError(
                    "n_steps must be an int or a 1-D sequence of ints, got "
                    f"{self.n_steps!r}."
                )
            if (steps < 0).any():
                raise ValueError(f"n_steps must be >= 0, got {self.n_steps!r}.")
            n_steps = tuple(int(s) for s in steps)
        return MatcherParams(
            max_length=self.max_length,
            pooling=pooling,
            trainable_layers=trainable_layers,
            max_match_clusters=self.max_match_clusters,
            n_epochs=self.n_epochs,
            n_steps=n_steps,
            batch_size=self.batch_size,
            gradient_accumulation=self.gradient_accumulation,
            learning_rate=self.learning_rate,
            head_learning_rate=self.head_learning_rate,
            warmup=self.warmup,
            weight_decay=self.weight_decay,
            loss=self.matcher_loss,
            negative_sampling=self.matcher_negative_sampling,
            beam_size=self.beam_size,
            label_text_init=self.label_text_init,
            inference_batch_size=self.inference_batch_size,
        )

    # -------------------------------------------------------------- predict
    def _predict_topk(self, X, k):
        return self.model_.predict_topk(
            X,
            k,
            device=self._predict_device(),
            beam_size=self.beam_size,
            post_processor=self.post_processor,
            n_jobs=self.n_jobs,
        )

    def transform(self, X):
        """Fine-tuned document embeddings (pooled, L2-normalised).

        Parameters
        ----------
        X : sequence of str
            Documents.

        Returns
        -------
        embeddings : ndarray of shape (n_samples, hidden_size), dtype float32
            The pooled output of ``encoder_``, one unit-norm row per document
            (the dense half of the ranker's features).
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return self.model_.transform(X, device=self._predict_device())
