"""XRTransformerClassifier: multi-resolution transformer fine-tuning + XR-Linear."""

from __future__ import annotations

import math
import os
import time
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skxmc.base import BaseXMCClassifier
from skxmc.indexing import (
    LOSSES,
    NEGATIVE_SAMPLING,
    POST_PROCESSORS,
    XRLinearModel,
    hierarchical_kmeans,
    pifa_embedding,
)

__all__ = ["XRTransformerClassifier"]

#: Losses of the fine-tuning scorers.
MATCHER_LOSSES = ("squared_hinge", "bce")


class XRTransformerClassifier(BaseXMCClassifier):
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
    pooling : {"cls", "mean"}, default="cls"
        Document embedding: the first token's state or the mean over tokens.
    branching_factor : int, default=16
        Maximum number of children of an internal node, in both trees.
    max_leaf_size : int, default=100
        Maximum number of labels per leaf cluster, in both trees.
    kmeans_max_iter : int, default=20
        Iterations of each 2-means split of the tree construction.
    max_match_clusters : int, default=32768
        Tree levels with more nodes than this are not fine-tuned on (the
        finest resolution of the fine-tuning).
    epochs : int, default=1
        Passes over the data per fine-tuned level (used when ``n_steps`` is
        None).
    n_steps : int, array-like of int or None, default=None
        Optimizer steps per fine-tuned level, coarse to fine (the last value
        is repeated for deeper levels); overrides ``epochs``. 0 skips
        fine-tuning (the ranker then uses the pretrained embedding).
    batch_size : int, default=32
        Documents per forward pass during fine-tuning.
    gradient_accumulation : int, default=1
        Forward passes per optimizer step.
    learning_rate : float, default=1e-4
        AdamW learning rate of the encoder.
    head_learning_rate : float, default=None
        Learning rate of the level scorers; None means ``learning_rate``.
    warmup : float, default=0.1
        Fraction of each level's steps with a linearly rising learning rate;
        it then decays linearly to 0.
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
    weight_threshold : float, default=0.001
        Ranker weights with a smaller absolute value are dropped (small, as
        the dense embedding part has small weights).
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
    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or
        ``"cuda:N"``. The encoder is kept on the CPU between calls.
    n_jobs : int, default=None
        Threads of the clustering and of the ranker; None means all cores.
    random_state : int, RandomState instance or None, default=None
        Seeds the trees, the scorer initialisation, the data order, dropout
        and the ranker solvers; the global RNGs are left untouched.
    verbose : int, default=0
        Print the stages and show progress bars.

    Attributes
    ----------
    classes_ : ndarray of shape (n_labels,)
        The labels.
    n_labels_ : int
        Number of labels.
    vectorizer_ : TfidfVectorizer
        The fitted TF-IDF vectorizer.
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
    model_ : XRLinearModel
        The ranker on ``[TF-IDF, embedding]`` features.
    loss_history_ : list of list of float
        Training loss of every optimizer step, per fine-tuned level.
    fit_times_ : dict
        Seconds per stage: ``"tfidf"``, ``"preliminary_tree"``,
        ``"fine_tuning"``, ``"encoding"``, ``"refined_tree"``, ``"ranker"``.

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
        "pooling": [StrOptions({"cls", "mean"})],
        "branching_factor": [Interval(Integral, 2, None, closed="left")],
        "max_leaf_size": [Interval(Integral, 1, None, closed="left")],
        "kmeans_max_iter": [Interval(Integral, 1, None, closed="left")],
        "max_match_clusters": [Interval(Integral, 1, None, closed="left")],
        "epochs": [Interval(Integral, 0, None, closed="left")],
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
        "tfidf_params": [dict, None],
        "negative_sampling": [StrOptions(set(NEGATIVE_SAMPLING))],
        "loss": [StrOptions(set(LOSSES))],
        "C": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "bias": [Interval(Real, 0, None, closed="left")],
        "weight_threshold": [Interval(Real, 0, None, closed="left")],
        "beam_size": [Interval(Integral, 1, None, closed="left")],
        "post_processor": [StrOptions(set(POST_PROCESSORS))],
        "inference_batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        encoder,
        *,
        max_length=64,
        pooling="cls",
        branching_factor=16,
        max_leaf_size=100,
        kmeans_max_iter=20,
        max_match_clusters=32768,
        epochs=1,
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
        tfidf_params=None,
        negative_sampling="tfn+man",
        loss="squared_hinge",
        C=1.0,
        max_iter=100,
        tol=0.1,
        bias=1.0,
        weight_threshold=0.001,
        beam_size=10,
        post_processor="l3-hinge",
        inference_batch_size=128,
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
        self.branching_factor = branching_factor
        self.max_leaf_size = max_leaf_size
        self.kmeans_max_iter = kmeans_max_iter
        self.max_match_clusters = max_match_clusters
        self.epochs = epochs
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
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _fit(self, X, Y, *, label_info, seed):
        from skxmc.nn._transformer import load_encoder, tokenize
        from skxmc.training import resolve_device, seeded_torch

        label_text = None if label_info is None else label_info.text
        if self.label_text_init and label_text is None:
            raise ValueError(
                "label_text_init=True needs label text: pass "
                "fit(X, y, label_info=LabelInfo(text=[...])) with one text per label."
            )
        device = resolve_device(self.device)
        seeds = np.random.default_rng(seed).integers(np.iinfo(np.int32).max, size=4)
        tree_seed, torch_seed, order_seed, ranker_seed = (int(s) for s in seeds)
        times = {}

        start = time.perf_counter()
        params = {"sublinear_tf": True, "dtype": np.float32}
        params.update(self.tfidf_params or {})
        self.vectorizer_ = TfidfVectorizer(**params)
        X_tfidf = self.vectorizer_.fit_transform(X).astype(np.float32)
        times["tfidf"] = time.perf_counter() - start

        start = time.perf_counter()
        self.matcher_tree_ = hierarchical_kmeans(
            pifa_embedding(X_tfidf, Y),
            branching_factor=self.branching_factor,
            max_leaf_size=self.max_leaf_size,
            max_iter=self.kmeans_max_iter,
            random_state=tree_seed,
            n_jobs=self.n_jobs,
        )
        times["preliminary_tree"] = time.perf_counter() - start
        self._log(f"preliminary tree: {self.matcher_tree_.n_nodes} nodes per level")

        start = time.perf_counter()
        model, tokenizer = load_encoder(self.encoder)
        token_ids = tokenize(tokenizer, X, self.max_length)
        label_ids = (
            tokenize(tokenizer, label_text, self.max_length)
            if self.label_text_init
            else None
        )
        self.tokenizer_ = tokenizer
        self.loss_history_ = []
        self.matcher_weights_ = []
        try:
            with seeded_torch(torch_seed, device):
                self._fine_tune(
                    model, tokenizer, token_ids, label_ids, Y, device, order_seed
                )
        finally:
            model.cpu().eval()
        self.encoder_ = model
        times["fine_tuning"] = time.perf_counter() - start

        start = time.perf_counter()
        features = self._features(X_tfidf, token_ids, device)
        times["encoding"] = time.perf_counter() - start

        start = time.perf_counter()
        self.label_tree_ = hierarchical_kmeans(
            pifa_embedding(features, Y),
            branching_factor=self.branching_factor,
            max_leaf_size=self.max_leaf_size,
            max_iter=self.kmeans_max_iter,
            random_state=tree_seed,
            n_jobs=self.n_jobs,
        )
        times["refined_tree"] = time.perf_counter() - start
        self._log(f"refined tree: {self.label_tree_.n_nodes} nodes per level")

        start = time.perf_counter()
        self.model_ = XRLinearModel.train(
            features,
            Y,
            self.label_tree_,
            negative_sampling=self.negative_sampling,
            loss=self.loss,
            C=self.C,
            max_iter=self.max_iter,
            tol=self.tol,
            bias=self.bias,
            weight_threshold=self.weight_threshold,
            beam_size=self.beam_size,
            post_processor=self.post_processor,
            seed=ranker_seed,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
        )
        times["ranker"] = time.perf_counter() - start
        self.fit_times_ = times
        return self

    def _steps_per_level(self, n_levels: int, n_samples: int) -> list[int]:
        if self.n_steps is None:
            per_step = self.batch_size * self.gradient_accumulation
            return [math.ceil(self.epochs * n_samples / per_step)] * n_levels
        steps = np.atleast_1d(np.asarray(self.n_steps))
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
        return [int(steps[min(i, steps.size - 1)]) for i in range(n_levels)]

    def _fine_tune(self, model, tokenizer, token_ids, label_ids, Y, device, seed):
        """Coarse-to-fine fine-tuning of ``model`` on the preliminary tree."""
        import torch

        from skxmc.nn._transformer import autocast_context, encode, is_oom_error
        from skxmc.training import linear_warmup_decay

        tree = self.matcher_tree_
        levels = [
            t for t in range(1, tree.n_levels + 1)
            if tree.n_nodes[t] <= self.max_match_clusters
        ]  # fmt: skip
        steps = self._steps_per_level(len(levels), len(token_ids))
        n_samples = len(token_ids)
        dim = int(model.config.hidden_size)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        rng = np.random.default_rng(seed)
        generator = torch.Generator().manual_seed(int(rng.integers(2**31 - 1)))
        label_to_level = None
        use_tfn = "tfn" in self.matcher_negative_sampling
        use_man = "man" in self.matcher_negative_sampling
        model.to(device)
        prev = None  # (W, b) of the previous level, on device
        chunk = self.batch_size  # rows per forward/backward; halved on OOM
        # bf16 autocast for training where supported (fp16 would need scaling)
        amp = (
            "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
        )
        for i, t in enumerate(levels):
            n_nodes = tree.n_nodes[t]
            relevance = tree.project(Y, t)  # rows x nodes of level t
            parents = torch.from_numpy(tree.parents(t)).to(device) if t > 1 else None
            # ---- scorer initialisation
            if prev is None:
                W = torch.randn(n_nodes, dim, generator=generator) * 0.02
                b = torch.zeros(n_nodes)
            else:
                W = prev[0][parents].detach().cpu().clone()
                b = prev[1][parents].detach().cpu().clone()
            if self.label_text_init:
                label_emb = encode(
                    model, tokenizer, None, token_ids=label_ids,
                    batch_size=self.inference_batch_size, device=device,
                    pooling=self.pooling, normalize=True,
                )  # fmt: skip
                label_to_level = tree.project(sp.identity(tree.n_labels), t)
                centroids = normalize(label_to_level.T @ label_emb)
                W = W + torch.from_numpy(np.asarray(centroids, dtype=np.float32))
            head_W = torch.nn.Parameter(W.to(device))
            head_b = torch.nn.Parameter(b.to(device))
            n_level_steps = steps[i]
            history = []
            self.loss_history_.append(history)
            if n_level_steps == 0:
                prev = (head_W.detach(), head_b.detach())
                self.matcher_weights_.append(_to_numpy(prev))
                continue
            optimizer = torch.optim.AdamW(
                [
                    {"params": list(model.parameters()), "lr": self.learning_rate},
                    {
                        "params": [head_W, head_b],
                        "lr": self.head_learning_rate or self.learning_rate,
                    },
                ],
                weight_decay=self.weight_decay,
            )
            n_warmup = int(self.warmup * n_level_steps)
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, linear_warmup_decay(n_warmup, n_level_steps)
            )
            model.train()
            rows_per_step = self.batch_size * self.gradient_accumulation
            order = np.empty(0, dtype=np.int64)
            bar = self._progress(total=n_level_steps, desc=f"level {t}")
            for _ in range(n_level_steps):
                while order.size < rows_per_step:
                    order = np.concatenate([order, rng.permutation(n_samples)])
                step_rows, order = order[:rows_per_step], order[rows_per_step:]
                while True:
                    try:
                        optimizer.zero_grad(set_to_none=True)
                        step_loss = 0.0
                        for c in range(0, rows_per_step, chunk):
                            rows = step_rows[c : c + chunk]
                            input_ids, mask = _collate(token_ids, rows, pad_id, device)
                            with autocast_context(device, amp):
                                emb = _pooled(model, input_ids, mask, self.pooling)
                            emb = emb.float()
                            scores = emb @ head_W.T + head_b
                            target = torch.from_numpy(relevance[rows].toarray()).to(
                                device
                            )
                            active = self._active(
                                target, emb, prev, parents, use_tfn, use_man
                            )
                            loss = _masked_loss(
                                scores, target, active, self.matcher_loss
                            )
                            (loss * (len(rows) / rows_per_step)).backward()
                            step_loss += (
                                float(loss.detach()) * len(rows) / rows_per_step
                            )
                        break
                    except RuntimeError as exc:
                        if not is_oom_error(exc) or chunk == 1:
                            raise
                        del exc
                        torch.cuda.empty_cache()
                        chunk = max(1, chunk // 2)
                        warnings.warn(
                            f"CUDA out of memory: fine-tuning with {chunk} rows per "
                            "forward pass (gradients are accumulated).",
                            RuntimeWarning,
                            stacklevel=2,
                        )
                optimizer.step()
                scheduler.step()
                history.append(step_loss)
                bar.update(1)
            bar.close()
            model.eval()
            prev = (head_W.detach(), head_b.detach())
            self.matcher_weights_.append(_to_numpy(prev))
            self._log(
                f"level {t} ({n_nodes} clusters): {n_level_steps} steps, loss "
                f"{history[0]:.4f} -> {history[-1]:.4f}"
            )
        del label_to_level

    def _active(self, target, emb, prev, parents, use_tfn, use_man):
        """Positive and negative clusters of each row (a 0/1 float mask)."""
        import torch

        if parents is None:  # first level: every cluster
            return torch.ones_like(target)
        n_parents = prev[0].shape[0]
        allowed = torch.zeros(
            target.shape[0], n_parents, dtype=torch.bool, device=target.device
        )
        if use_tfn:
            pos_parent = torch.zeros_like(allowed, dtype=target.dtype)
            pos_parent.index_add_(1, parents, target)
            allowed |= pos_parent > 0
        if use_man:
            with torch.no_grad():
                parent_scores = emb.detach() @ prev[0].T + prev[1]
                top = parent_scores.topk(min(self.beam_size, n_parents), dim=1).indices
            allowed.scatter_(1, top, True)
        return (allowed[:, parents] | (target > 0)).to(target.dtype)

    # -------------------------------------------------------------- predict
    def _features(self, X_tfidf, token_ids, device) -> sp.csr_matrix:
        """Rows of ``[TF-IDF, normalised embedding]``, L2-normalised."""
        emb = self._encode(token_ids, device)
        features = sp.hstack([normalize(X_tfidf), sp.csr_matrix(emb)], format="csr")
        return normalize(features).astype(np.float32)

    def _encode(self, token_ids, device):
        from skxmc.nn._transformer import encode

        try:
            return encode(
                self.encoder_,
                self.tokenizer_,
                None,
                token_ids=token_ids,
                batch_size=self.inference_batch_size,
                device=device,
                pooling=self.pooling,
                normalize=True,
            )
        finally:
            self.encoder_.cpu()

    def _predict_device(self):
        from skxmc.training import resolve_device

        return resolve_device(self.device, strict=False)

    def _predict_topk(self, X, k):
        from skxmc.nn._transformer import tokenize

        token_ids = tokenize(self.tokenizer_, X, self.max_length)
        features = self._features(
            self.vectorizer_.transform(X), token_ids, self._predict_device()
        )
        return self.model_.predict_topk(
            features,
            k,
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
        from skxmc.nn._transformer import tokenize

        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return self._encode(
            tokenize(self.tokenizer_, X, self.max_length), self._predict_device()
        )

    def _log(self, message: str) -> None:
        if self.verbose:
            print(f"[XRTransformer] {message}", flush=True)


# ------------------------------------------------------------------ helpers
def _collate(token_ids, rows, pad_id, device):
    from skxmc.nn._transformer import collate

    return collate([token_ids[r] for r in rows], pad_id, device)


def _pooled(model, input_ids, mask, pooling):
    from skxmc.nn._transformer import pooled_forward

    return pooled_forward(model, input_ids, mask, pooling)


def _masked_loss(scores, target, active, kind: str):
    """Per-row mean loss over the active clusters, averaged over rows."""
    import torch

    if kind == "squared_hinge":
        sign = 2.0 * target - 1.0
        per_entry = torch.relu(1.0 - sign * scores) ** 2
    else:
        per_entry = torch.nn.functional.binary_cross_entropy_with_logits(
            scores, target, reduction="none"
        )
    per_row = (per_entry * active).sum(1) / active.sum(1).clamp_min(1.0)
    return per_row.mean()


def _to_numpy(weights):
    return tuple(
        np.asarray(w.detach().cpu().numpy(), dtype=np.float32) for w in weights
    )
