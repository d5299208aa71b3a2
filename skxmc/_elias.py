"""EliasClassifier: end-to-end learning to index and search (ELIAS)."""

from __future__ import annotations

import math
import os
import time
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skxmc.base import BaseXMCClassifier
from skxmc.indexing import hierarchical_kmeans, pifa_embedding

__all__ = ["EliasClassifier"]

_CHECKPOINT_NAME = "elias.pt"
# Parameters that do not change the trained network (a checkpoint stays valid).
_NEUTRAL_PARAMS = (
    "verbose", "checkpoint_dir", "device", "top_k", "threshold",
    "inference_batch_size", "n_jobs", "reranker", "rerank_size",
    "rerank_weight", "reranker_params",
)  # fmt: skip


class EliasClassifier(BaseXMCClassifier):
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

    The loss of a batch is the binary cross-entropy of the final scores over
    each row's shortlist plus ``loss_lambda`` times the same loss over the
    positive entries of the shortlist only (averaged per row). During training
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
        Tokens per document (special tokens included).
    pooling : {"cls", "mean"}, default="cls"
        Document embedding: the first token's state or the mean over tokens.
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
        Documents per optimizer step.
    learning_rate : float or tuple of 2 floats, default=(2e-4, 3e-5)
        AdamW learning rate of the encoder, per stage.
    head_learning_rate : float or tuple of 2 floats, default=5e-3
        AdamW learning rate of the cluster scorer, the label classifiers and
        the adjacency parameters, per stage.
    warmup : float, default=0.1
        Fraction of each stage's steps with a linearly rising learning rate;
        it then decays linearly to 0.
    weight_decay : float, default=0.01
        AdamW weight decay.
    swa : bool, default=False
        Stochastic weight averaging
        (:class:`torch.optim.swa_utils.AveragedModel`) over the second half
        of stage 2; the averaged weights are kept.
    reranker : bool, default=False
        After stage 2, train the paper's optional sparse re-ranker: one sparse
        linear model per label (:class:`~skxmc.indexing.ShortlistReranker`,
        squared hinge, ``l3-hinge`` scores) on ``[normalised embedding,
        TF-IDF]`` features, trained on the ``rerank_size`` best labels that
        the fitted model returns for every training document. Prediction then
        re-scores those labels with ``(1 - rerank_weight) * ELIAS score +
        rerank_weight * re-ranker score``.
    rerank_size : int, default=100
        Labels per document passed to the re-ranker (training and prediction).
    rerank_weight : float, default=0.5
        Weight of the re-ranker score in the final score.
    reranker_params : dict, default=None
        Keyword arguments of :meth:`ShortlistReranker.train
        <skxmc.indexing.ShortlistReranker.train>` (``C``, ``loss``,
        ``weight_threshold``, ...).
    kmeans_max_iter : int, default=20
        Iterations of each 2-means split of the clustering.
    tfidf_params : dict, default=None
        Keyword arguments of the internal
        :class:`~sklearn.feature_extraction.text.TfidfVectorizer` (defaults:
        ``sublinear_tf=True``, ``dtype=np.float32``).
    inference_batch_size : int, default=256
        Documents per forward pass without gradients.
    checkpoint_dir : str or path-like, default=None
        If set, the training state (network, optimizer, scheduler, SWA
        average, data order and RNG states) is saved there after every epoch
        of each stage, and a fit with the same data and parameters resumes
        from it and ends with the same model as an uninterrupted fit (a
        finished checkpoint skips training). A checkpoint of other data or
        parameters is ignored with a warning.
    top_k : int, default=10
        Labels kept per row by :meth:`decision_function` and :meth:`predict`.
    threshold : float, default=0.5
        :meth:`predict` returns the top-``top_k`` labels scoring above it
        (scores lie in [0, 1]).
    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or
        ``"cuda:N"``. The network is kept on the CPU between calls.
    n_jobs : int, default=None
        Threads of the clustering; None means all cores.
    random_state : int, RandomState instance or None, default=None
        Seeds the clustering, the initial weights, the data order and
        dropout; the global RNGs are left untouched.
    verbose : int, default=0
        Print the stages and show progress bars.

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
    network_ : EliasNetwork
        The trained network (on the CPU): encoder, ``W_C``, the label
        classifiers and the stage-2 adjacency (``adjacency_index`` and
        ``adjacency_logits``, both of shape ``(n_clusters_, kappa_)``).
    tokenizer_ : transformers.PreTrainedTokenizerBase
        The encoder's tokenizer.
    loss_history_ : list of 2 lists of float
        Training loss of every optimizer step of stage 1 and stage 2.
    reranker_ : ShortlistReranker or None
        The sparse re-ranker (``reranker=True``).
    fit_times_ : dict
        Seconds per part: ``"tfidf"``, ``"clustering"``, ``"stage1"``,
        ``"reestimate"``, ``"stage2"`` and ``"reranker"``.

    See Also
    --------
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

    _parameter_constraints: dict = {
        **BaseXMCClassifier._parameter_constraints,
        "encoder": [str, os.PathLike],
        "max_length": [Interval(Integral, 2, None, closed="left")],
        "pooling": [StrOptions({"cls", "mean"})],
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
        "reranker": ["boolean"],
        "rerank_size": [Interval(Integral, 1, None, closed="left")],
        "rerank_weight": [Interval(Real, 0, 1, closed="both")],
        "reranker_params": [dict, None],
        "kmeans_max_iter": [Interval(Integral, 1, None, closed="left")],
        "tfidf_params": [dict, None],
        "inference_batch_size": [Interval(Integral, 1, None, closed="left")],
        "checkpoint_dir": [str, os.PathLike, None],
        "device": [str],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        encoder,
        *,
        max_length=32,
        pooling="cls",
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
        reranker=False,
        rerank_size=100,
        rerank_weight=0.5,
        reranker_params=None,
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
        import torch

        from skxmc.nn._elias import EliasNetwork
        from skxmc.nn._transformer import load_encoder, tokenize
        from skxmc.training import resolve_device, seeded_torch

        n_epochs = self._per_stage("n_epochs", self.n_epochs, Integral, 0)
        learning_rate = self._per_stage("learning_rate", self.learning_rate, Real)
        head_learning_rate = self._per_stage(
            "head_learning_rate", self.head_learning_rate, Real
        )
        loss_lambda = self._per_stage("loss_lambda", self.loss_lambda, Real, 0)
        device = resolve_device(self.device)
        seeds = np.random.default_rng(seed).integers(np.iinfo(np.int32).max, size=3)
        tree_seed, torch_seed, order_seed = (int(s) for s in seeds)
        n_labels = Y.shape[1]
        times = {}

        start = time.perf_counter()
        params = {"sublinear_tf": True, "dtype": np.float32}
        params.update(self.tfidf_params or {})
        self.vectorizer_ = TfidfVectorizer(**params)
        X_tfidf = self.vectorizer_.fit_transform(X).astype(np.float32)
        times["tfidf"] = time.perf_counter() - start

        start = time.perf_counter()
        tree = hierarchical_kmeans(
            pifa_embedding(X_tfidf, Y),
            max_leaf_size=self.max_leaf_size,
            max_iter=self.kmeans_max_iter,
            random_state=tree_seed,
            n_jobs=self.n_jobs,
        )
        self.cluster_of_label_ = tree.leaf_of_label()
        self.n_clusters_ = int(tree.n_nodes[-2])
        self.kappa_ = min(int(self.kappa), n_labels)
        sizes = np.bincount(self.cluster_of_label_, minlength=self.n_clusters_)
        if sizes.max() > self.kappa_:
            raise ValueError(
                f"kappa={self.kappa} is smaller than the largest cluster "
                f"({sizes.max()} labels): use kappa >= max_leaf_size."
            )
        index = _cluster_index(self.cluster_of_label_, self.n_clusters_, self.kappa_)
        times["clustering"] = time.perf_counter() - start
        self._log(f"{self.n_clusters_} clusters, kappa={self.kappa_}")

        model, tokenizer = load_encoder(self.encoder)
        token_ids = tokenize(tokenizer, X, self.max_length)
        self.tokenizer_ = tokenizer
        self.loss_history_ = [[], []]
        rng = np.random.default_rng(order_seed)
        fingerprint = None
        if self.checkpoint_dir is not None:
            fingerprint = self._fingerprint(X, Y, seed)
        path, payload = self._open_checkpoint(fingerprint, device)
        resumed_stage = -1 if payload is None else payload["stage"]
        try:
            with seeded_torch(torch_seed, device):
                generator = torch.Generator().manual_seed(torch_seed)
                net = EliasNetwork(
                    model,
                    n_labels,
                    torch.from_numpy(index),
                    pooling=self.pooling,
                    dropout=self.dropout,
                    alpha=self.alpha,
                    beta=self.beta,
                    generator=generator,
                )
                net.to(device)
                save = None
                if path is not None:
                    save = self._checkpoint_writer(path, net, rng, device, fingerprint)
                if payload is not None:
                    state = payload["model"]
                    if resumed_stage == 1:
                        net.set_adjacency(
                            state["adjacency_index"], state["adjacency_logits"]
                        )
                    net.load_state_dict(state)
                    rng.bit_generator.state = payload["rng"]
                    self.loss_history_ = [list(h) for h in payload["loss_history"]]
                    self._log(
                        f"resuming stage {resumed_stage + 1} at step {payload['step']}"
                    )
                if resumed_stage <= 0:
                    start = time.perf_counter()
                    label_to_cluster = _label_to_cluster(index, n_labels)
                    self._run_stage(
                        net, 0, token_ids, Y, label_to_cluster, n_epochs[0],
                        learning_rate[0], head_learning_rate[0], loss_lambda[0],
                        device, rng, resume=payload, save=save,
                    )  # fmt: skip
                    times["stage1"] = time.perf_counter() - start

                    start = time.perf_counter()
                    new_index, logits = self._reestimate(
                        net, token_ids, Y, index, device
                    )
                    net.set_adjacency(
                        torch.from_numpy(new_index), torch.from_numpy(logits)
                    )
                    times["reestimate"] = time.perf_counter() - start

                start = time.perf_counter()
                label_to_cluster = _label_to_cluster(
                    net.adjacency_index.cpu().numpy(), n_labels
                )
                self._run_stage(
                    net, 1, token_ids, Y, label_to_cluster, n_epochs[1],
                    learning_rate[1], head_learning_rate[1], loss_lambda[1],
                    device, rng, resume=payload if resumed_stage == 1 else None,
                    save=save,
                )  # fmt: skip
                times["stage2"] = time.perf_counter() - start
        finally:
            model.cpu()
        self.network_ = net.cpu().eval()
        self.reranker_ = None
        if self.reranker:
            start = time.perf_counter()
            self.reranker_ = self._train_reranker(token_ids, X_tfidf, Y, torch_seed)
            times["reranker"] = time.perf_counter() - start
        self.fit_times_ = times
        return self

    def _train_reranker(self, token_ids, X_tfidf, Y, seed):
        """The sparse re-ranker, trained on the fitted model's own shortlists."""
        from skxmc.indexing import ShortlistReranker

        self._log(f"re-ranker on the top {self.rerank_size} labels of each row")
        _, candidates, emb = self._elias_topk(
            token_ids, self.rerank_size, with_embeddings=True
        )
        return ShortlistReranker.train(
            _rerank_features(emb, X_tfidf),
            Y,
            candidates,
            seed=seed,
            n_jobs=self.n_jobs,
            **(self.reranker_params or {}),
        )

    def _open_checkpoint(self, fingerprint, device):
        """The checkpoint path and a saved state matching ``fingerprint``."""
        from pathlib import Path

        from skxmc.training import load_checkpoint

        if self.checkpoint_dir is None:
            return None, None
        path = Path(self.checkpoint_dir) / _CHECKPOINT_NAME
        if not path.exists():
            return path, None
        payload = load_checkpoint(path, map_location=device)
        if payload.get("fingerprint") != fingerprint:
            warnings.warn(
                f"Ignoring the checkpoint {path}: it was written by a fit with "
                "other data or parameters.",
                UserWarning,
                stacklevel=4,
            )
            return path, None
        return path, payload

    def _fingerprint(self, X, Y, seed) -> dict:
        from skxmc.training import fit_fingerprint

        text = "\x00".join(X).encode("utf-8", "surrogatepass")
        arrays = (text, Y.indptr, Y.indices)
        return fit_fingerprint(self, arrays, seed, neutral=_NEUTRAL_PARAMS)

    def _checkpoint_writer(self, path, net, rng, device, fingerprint):
        """A function saving the whole training state in the middle of a stage."""
        from skxmc.training import get_rng_state
        from skxmc.training._checkpoint import save_checkpoint

        def save(stage, step, optimizer, scheduler, averaged, order, chunk):
            save_checkpoint(
                path,
                {
                    "fingerprint": fingerprint,
                    "stage": stage,
                    "step": step,
                    "model": net.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "averaged": None if averaged is None else averaged.state_dict(),
                    "order": order.copy(),
                    "chunk": chunk,
                    "rng": rng.bit_generator.state,
                    "torch_rng": get_rng_state(device),
                    "loss_history": [list(h) for h in self.loss_history_],
                },
            )

        return save

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

    def _run_stage(
        self, net, stage, token_ids, Y, label_to_cluster, n_epochs, lr, head_lr,
        loss_lambda, device, rng, resume=None, save=None,
    ):  # fmt: skip
        """Train ``net`` for one stage; appends to ``loss_history_[stage]``.

        ``resume`` is a checkpoint of this stage to go on from; ``save`` is
        called after every epoch's worth of steps and at the end.
        """
        import torch

        from skxmc.nn._transformer import is_oom_error
        from skxmc.training import linear_warmup_decay, set_rng_state

        history = self.loss_history_[stage]
        n_samples = len(token_ids)
        n_steps = math.ceil(n_epochs * n_samples / self.batch_size)
        if n_steps == 0:
            return
        head = [net.cluster_weight, net.cluster_bias, net.label_weight, net.label_bias]
        if net.learn_adjacency:
            head.append(net.adjacency_logits)
        optimizer = torch.optim.AdamW(
            [
                {"params": list(net.encoder.parameters()), "lr": lr},
                {"params": head, "lr": head_lr},
            ],
            weight_decay=self.weight_decay,
        )
        n_warmup = int(self.warmup * n_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, linear_warmup_decay(n_warmup, n_steps)
        )
        averaged = None
        swa_start = n_steps // 2
        if self.swa and stage == 1:
            averaged = torch.optim.swa_utils.AveragedModel(net)
        amp = (
            "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
        )
        order = np.empty(0, dtype=np.int64)
        chunk = self.batch_size
        first_step = 0
        if resume is not None:
            optimizer.load_state_dict(resume["optimizer"])
            scheduler.load_state_dict(resume["scheduler"])
            if averaged is not None and resume["averaged"] is not None:
                averaged.load_state_dict(resume["averaged"])
            order, chunk, first_step = resume["order"], resume["chunk"], resume["step"]
            set_rng_state(resume["torch_rng"], device)
        steps_per_epoch = max(1, math.ceil(n_samples / self.batch_size))
        net.train()
        bar = self._progress(
            total=n_steps, initial=first_step, desc=f"stage {stage + 1}"
        )
        for step in range(first_step, n_steps):
            while order.size < self.batch_size:
                order = np.concatenate([order, rng.permutation(n_samples)])
            step_rows, order = order[: self.batch_size], order[self.batch_size :]
            while True:
                try:
                    optimizer.zero_grad(set_to_none=True)
                    step_loss = 0.0
                    for c in range(0, len(step_rows), chunk):
                        rows = step_rows[c : c + chunk]
                        loss = self._batch_loss(
                            net, token_ids, Y, rows, label_to_cluster, loss_lambda,
                            device, amp,
                        )  # fmt: skip
                        weight = len(rows) / len(step_rows)
                        (loss * weight).backward()
                        step_loss += float(loss.detach()) * weight
                    break
                except RuntimeError as exc:
                    if not is_oom_error(exc) or chunk == 1:
                        raise
                    del exc
                    torch.cuda.empty_cache()
                    chunk = max(1, chunk // 2)
                    warnings.warn(
                        f"CUDA out of memory: training with {chunk} rows per "
                        "forward pass (gradients are accumulated).",
                        RuntimeWarning,
                        stacklevel=2,
                    )
            optimizer.step()
            scheduler.step()
            if averaged is not None and step >= swa_start:
                averaged.update_parameters(net)
            history.append(step_loss)
            bar.update(1)
            done = step + 1
            if save is not None and (done % steps_per_epoch == 0 or done == n_steps):
                save(stage, done, optimizer, scheduler, averaged, order, chunk)
        bar.close()
        if averaged is not None:
            with torch.no_grad():
                for p, q in zip(net.parameters(), averaged.module.parameters()):
                    p.copy_(q)
        net.eval()
        self._log(
            f"stage {stage + 1}: {n_steps} steps, loss {history[0]:.4f} -> "
            f"{history[-1]:.4f}"
        )

    def _batch_loss(
        self, net, token_ids, Y, rows, label_to_cluster, loss_lambda, device, amp
    ):
        import torch

        from skxmc.nn._elias import positive_keys
        from skxmc.nn._transformer import autocast_context, collate

        pad_id = self.tokenizer_.pad_token_id or 0
        input_ids, mask = collate([token_ids[r] for r in rows], pad_id, device)
        with autocast_context(device, amp):
            emb = _embed(net, input_ids, mask)
        emb = net.dropout(emb.float())
        Y_batch = Y[rows]
        forced = torch.from_numpy((Y_batch @ label_to_cluster).toarray() > 0)
        keys = positive_keys(Y_batch.indptr, Y_batch.indices, net.n_labels, device)
        labels, path, valid, positive = net.shortlist(
            net.cluster_scores(emb),
            self.beam_size,
            self.shortlist_size,
            forced_clusters=forced.to(device),
            positive_keys=keys,
        )
        scores = torch.sigmoid(net.label_logits(emb, labels)) * path
        bce = torch.nn.functional.binary_cross_entropy(
            scores, positive.to(scores.dtype), reduction="none"
        )
        valid = valid.to(bce.dtype)
        positive = positive.to(bce.dtype) * valid
        main = (bce * valid).sum(1) / valid.sum(1).clamp_min(1.0)
        aux = (bce * positive).sum(1) / positive.sum(1).clamp_min(1.0)
        return (main + loss_lambda * aux).mean()

    def _reestimate(self, net, token_ids, Y, index, device):
        """A_approx: top-kappa of ``(Y^T M)^T`` (+ fill); returns index, logits."""
        from skxmc.utils._sparse import csr_row_topk

        M = self._cluster_matrix(net, token_ids, device)
        A = sp.csr_matrix((Y.T @ M).T, dtype=np.float32)
        A.eliminate_zeros()
        values, new_index = csr_row_topk(A, self.kappa_)
        popular = np.argsort(-np.asarray(Y.sum(0)).ravel(), kind="stable")
        for c in np.nonzero((new_index < 0).any(1))[0]:
            row = new_index[c]
            n_kept = int((row >= 0).sum())
            own = index[c][index[c] >= 0]
            fill = np.concatenate([own, popular])
            fill = fill[~np.isin(fill, row[:n_kept])]
            _, first = np.unique(fill, return_index=True)
            fill = fill[np.sort(first)][: self.kappa_ - n_kept]
            row[n_kept : n_kept + fill.size] = fill
            floor = values[c, :n_kept].min() if n_kept else 1.0
            values[c, n_kept : n_kept + fill.size] = 0.1 * floor
        stored = new_index >= 0
        values = np.where(stored, values, 0.0)
        total = values.sum(1, keepdims=True)
        logits = np.log(np.maximum(values / np.maximum(total, 1e-30), 1e-6))
        return new_index, np.where(stored, logits, 0.0).astype(np.float32)

    def _cluster_matrix(self, net, token_ids, device) -> sp.csr_matrix:
        """M: the ``beam_size`` best cluster scores of every document."""
        import torch

        from skxmc.nn._transformer import collate, map_batches_with_oom_backoff

        n = len(token_ids)
        b = min(self.beam_size, net.n_clusters)
        pad_id = self.tokenizer_.pad_token_id or 0
        was_training = net.training
        net.eval()

        def run(start, stop):
            input_ids, mask = collate(token_ids[start:stop], pad_id, device)
            with torch.inference_mode():
                scores = net.cluster_scores(_embed(net, input_ids, mask).float())
                top = scores.topk(b, dim=1)
            return top.values.cpu().numpy(), top.indices.cpu().numpy()

        parts, _ = map_batches_with_oom_backoff(run, n, self.inference_batch_size)
        net.train(was_training)
        values = np.concatenate([p[0] for p in parts]).astype(np.float32)
        cols = np.concatenate([p[1] for p in parts]).astype(np.int64)
        indptr = np.arange(0, n * b + 1, b)
        return sp.csr_matrix(
            (values.ravel(), cols.ravel(), indptr), shape=(n, net.n_clusters)
        )

    # -------------------------------------------------------------- predict
    def _predict_device(self):
        from skxmc.training import resolve_device

        return resolve_device(self.device, strict=False)

    def _predict_topk(self, X, k):
        from skxmc.nn._transformer import tokenize

        token_ids = tokenize(self.tokenizer_, X, self.max_length)
        if getattr(self, "reranker_", None) is None:
            return self._elias_topk(token_ids, k)
        from skxmc.utils import dense_row_topk

        scores, candidates, emb = self._elias_topk(
            token_ids, max(k, self.rerank_size), with_embeddings=True
        )
        rerank = self.reranker_.score(
            _rerank_features(emb, self.vectorizer_.transform(X)), candidates
        )
        w = self.rerank_weight
        valid = candidates >= 0
        fused = np.full(scores.shape, -np.inf, dtype=np.float32)
        fused[valid] = (1 - w) * scores[valid] + w * rerank[valid]
        top_scores, pos = dense_row_topk(fused, k)
        labels = np.take_along_axis(candidates, np.maximum(pos, 0), 1)
        return top_scores, np.where(pos >= 0, labels, -1)

    def _elias_topk(self, token_ids, k, *, with_embeddings=False):
        """ELIAS's top ``k`` labels of tokenised documents.

        Returns ``(scores, labels)`` (``-inf`` / ``-1`` pad), plus the
        documents' embeddings ``with_embeddings`` (the re-ranker's input).
        """
        import torch

        from skxmc.nn._transformer import collate, map_batches_with_oom_backoff

        device = self._predict_device()
        net = self.network_
        pad_id = self.tokenizer_.pad_token_id or 0
        net.to(device).eval()

        def run(start, stop):
            input_ids, mask = collate(token_ids[start:stop], pad_id, device)
            with torch.inference_mode():
                emb = _embed(net, input_ids, mask).float()
                scores, labels = net.predict(
                    emb, self.beam_size, self.shortlist_size, k
                )
            out = (scores.cpu().numpy(), labels.cpu().numpy())
            return (*out, emb.cpu().numpy()) if with_embeddings else out

        try:
            parts, _ = map_batches_with_oom_backoff(
                run, len(token_ids), self.inference_batch_size
            )
        finally:
            net.cpu()
        if not parts:
            dim = int(net.encoder.config.hidden_size)
            empty = (np.zeros((0, k), np.float32), np.zeros((0, k), np.int64))
            return (
                (*empty, np.zeros((0, dim), np.float32)) if with_embeddings else empty
            )
        scores, labels, *emb = (
            np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))
        )
        return (scores.astype(np.float32), labels.astype(np.int64), *emb)

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
        from skxmc.nn._transformer import encode, tokenize

        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        try:
            return encode(
                self.network_.encoder,
                self.tokenizer_,
                None,
                token_ids=tokenize(self.tokenizer_, X, self.max_length),
                batch_size=self.inference_batch_size,
                device=self._predict_device(),
                pooling=self.pooling,
            )
        finally:
            self.network_.cpu()

    def _log(self, message: str) -> None:
        if self.verbose:
            print(f"[ELIAS] {message}", flush=True)


# ------------------------------------------------------------------ helpers
def _embed(net, input_ids, mask):
    """Pooled encoder output (a module-level hook, patched by the OOM test)."""
    return net.embed(input_ids, mask)


def _rerank_features(emb: np.ndarray, X_tfidf) -> sp.csr_matrix:
    """Re-ranker features: ``[L2-normalised embedding, TF-IDF]``."""
    from sklearn.preprocessing import normalize

    return sp.hstack(
        [sp.csr_matrix(normalize(emb)), X_tfidf], format="csr", dtype=np.float32
    )


def _cluster_index(cluster_of_label, n_clusters: int, kappa: int) -> np.ndarray:
    """The (n_clusters, kappa) stage-1 index: each cluster's labels, -1 padded."""
    order = np.argsort(cluster_of_label, kind="stable")
    clusters = cluster_of_label[order]
    starts = np.searchsorted(clusters, np.arange(n_clusters))
    slot = np.arange(order.size) - starts[clusters]
    index = np.full((n_clusters, kappa), -1, dtype=np.int64)
    index[clusters, slot] = order
    return index


def _label_to_cluster(index: np.ndarray, n_labels: int) -> sp.csr_matrix:
    """(n_labels, n_clusters) 0/1 matrix of the clusters holding each label."""
    rows, slots = np.nonzero(index >= 0)
    labels = index[rows, slots]
    return sp.csr_matrix(
        (np.ones(labels.size, np.float32), (labels, rows)),
        shape=(n_labels, index.shape[0]),
    )
