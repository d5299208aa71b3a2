"""XRTransformerModel: the engine behind :class:`skxmc.XRTransformerClassifier`."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from skxmc.indexing import XRLinearModel, hierarchical_kmeans, pifa_embedding
from skxmc.models._text_features import fit_tfidf
from skxmc.nn._text_encoder import DEFAULT_CACHE_BYTES
from skxmc.utils._logging import log as _skxmc_log

__all__ = [
    "EMBEDDING_WEIGHTS",
    "WEIGHT_THRESHOLDS",
    "MatcherParams",
    "RankerParams",
    "TreeParams",
    "XRTransformerModel",
]

#: Weights of the embedding block tried by ``embedding_weight="auto"``.
EMBEDDING_WEIGHTS = (0.0, 0.25, 0.5, 1.0)
#: Ranker weight thresholds tried by ``weight_thresholds``: XR-Linear's
#: default, then PECOS XR-Transformer's (LF-FOLDOC's validation rows prefer
#: the first, LF-DebianPackages' the second).
WEIGHT_THRESHOLDS = (0.1, 0.001)


@dataclass(frozen=True)
class TreeParams:
    """How both label trees are built (:func:`~skxmc.indexing.hierarchical_kmeans`).

    Parameters
    ----------
    branching_factor : int, default=16
        Maximum number of children of an internal node.
    max_leaf_size : int, default=100
        Maximum number of labels per leaf cluster.
    kmeans_max_iter : int, default=20
        Iterations of each 2-means split.
    """

    branching_factor: int = 16
    max_leaf_size: int = 100
    kmeans_max_iter: int = 20


@dataclass(frozen=True)
class MatcherParams:
    """How the encoder is fine-tuned on the preliminary tree, coarse to fine.

    Each knob is the :class:`~skxmc.XRTransformerClassifier` parameter of the
    same name (``loss`` and ``negative_sampling`` are its ``matcher_loss`` and
    ``matcher_negative_sampling``).

    Parameters
    ----------
    max_length : int, default=64
        Tokens per text.
    pooling : str, default="cls"
        ``"cls"`` or ``"mean"``.
    max_match_clusters : int, default=32768
        Tree levels with more clusters are not fine-tuned on.
    n_epochs : int, default=1
        Epochs per level (when ``n_steps`` is None).
    n_steps : tuple of int or None, default=None
        Optimizer steps per level (the last one repeats).
    batch_size : int, default=32
        Rows per forward pass.
    gradient_accumulation : int, default=1
        Forward passes per optimizer step.
    learning_rate : float, default=1e-4
        Learning rate of the encoder.
    head_learning_rate : float or None, default=None
        Learning rate of the level scorer (None: ``learning_rate``).
    warmup : float, default=0.1
        Share of the steps spent warming up.
    weight_decay : float, default=0.0
        AdamW's weight decay.
    loss : str, default="squared_hinge"
        Matcher loss.
    negative_sampling : str, default="tfn+man"
        Negative clusters of each row.
    beam_size : int, default=10
        Beam of the matcher-aware negatives.
    label_text_init : bool, default=False
        Initialise each level's scorer from the label-text embeddings.
    inference_batch_size : int, default=128
        Texts per forward pass when encoding.
    trainable_layers : int or None, default=None
        Transformer layers fine-tuned, from the top; the ones below are
        frozen and their output on the training texts is cached
        (:class:`~skxmc.nn._text_encoder.TextEncoder`). None: all layers.
    cache_bytes : int, default=2 GiB
        Cached token states beyond this size go to a memory-mapped file.
    """

    max_length: int = 64
    pooling: str = "cls"
    max_match_clusters: int = 32768
    n_epochs: int = 1
    n_steps: tuple[int, ...] | None = None
    batch_size: int = 32
    gradient_accumulation: int = 1
    learning_rate: float = 1e-4
    head_learning_rate: float | None = None
    warmup: float = 0.1
    weight_decay: float = 0.0
    loss: str = "squared_hinge"
    negative_sampling: str = "tfn+man"
    beam_size: int = 10
    label_text_init: bool = False
    inference_batch_size: int = 128
    trainable_layers: int | None = None
    cache_bytes: int = DEFAULT_CACHE_BYTES


@dataclass(frozen=True)
class RankerParams:
    """Knobs of the XR-Linear ranker (:meth:`~skxmc.indexing.XRLinearModel.train`).

    Parameters
    ----------
    negative_sampling : str, default="tfn+man"
        Negatives of each tree node's rankers.
    loss : str, default="squared_hinge"
        Loss of the linear rankers.
    C : float, default=1.0
        Inverse regularisation strength.
    max_iter : int, default=100
        Solver iterations.
    tol : float, default=0.1
        Solver tolerance.
    bias : float, default=1.0
        Bias feature value.
    weight_threshold : float, default=0.001
        Weights below it are pruned.
    beam_size : int, default=10
        Beam of the prediction.
    post_processor : str, default="l3-hinge"
        Score transform of the beam search.
    """

    negative_sampling: str = "tfn+man"
    loss: str = "squared_hinge"
    C: float = 1.0
    max_iter: int = 100
    tol: float = 0.1
    bias: float = 1.0
    weight_threshold: float = 0.001
    beam_size: int = 10
    post_processor: str = "l3-hinge"


class XRTransformerModel:
    """A fitted XR-Transformer: TF-IDF, fine-tuned encoder, XR-Linear ranker.

    Build one with :meth:`train`. A query is encoded (pooled, L2-normalised
    embedding ``e`` of the fine-tuned encoder), concatenated with its TF-IDF
    into ``[normalize(tfidf), embedding_weight * e]`` (PECOS's
    ``concat_features``; the ranker is row-scale robust, so only the weight
    of the embedding block relative to the TF-IDF matters) and ranked by the
    ranker's beam search.

    The encoder is kept on the CPU (``encoder``, what is pickled); a copy per
    device it has run on is cached, so that it stays on its device between
    calls. The cache is dropped on pickling.

    Parameters
    ----------
    vectorizer : TfidfVectorizer
        The fitted TF-IDF vectorizer.
    tokenizer : transformers.PreTrainedTokenizerBase
        The encoder's tokenizer.
    encoder : transformers.PreTrainedModel
        The fine-tuned encoder, on the CPU.
    ranker : XRLinearModel
        The ranker on ``[TF-IDF, embedding]`` features.
    max_length : int, default=64
        Tokens per document.
    pooling : {"cls", "mean"}, default="cls"
        Pooling of the encoder.
    inference_batch_size : int, default=128
        Documents per forward pass when encoding.
    embedding_weight : float or None, default=1.0
        Scale of the embedding block of the ranker's features. None: the
        recipe before issue 12, ``normalize([normalize(tfidf), e])`` (kept
        for models pickled then).

    Attributes
    ----------
    embedding_weight_scores : dict
        With ``embedding_weight="auto"`` in :meth:`train`: the validation
        score of every weight tried (mean of P@1, P@3 and P@5), at the
        ranker's weight threshold.
    weight_threshold : float or None
        The ranker's weight threshold (None: pickled before it was kept).
    weight_threshold_scores : dict
        With ``weight_thresholds`` in :meth:`train`: the validation score of
        every threshold tried.
    matcher_tree : LabelTree or None
        The preliminary tree the encoder was fine-tuned on.
    matcher_weights : list of tuple of ndarray
        ``(W, b)`` of the scorer of each fine-tuned level, coarse to fine.
    loss_curve : list of float
        Mean training loss of every epoch, the fine-tuned levels in turn.
    n_epochs : list of int
        Epochs run per fine-tuned level (an epoch cut short by ``n_steps``
        counts).
    n_steps : list of int
        Optimizer steps run per fine-tuned level.
    fit_times : dict
        Seconds per stage: ``"tfidf"``, ``"preliminary_tree"``,
        ``"state_cache"`` (with frozen layers), ``"fine_tuning"``,
        ``"encoding"``, ``"embedding_weight"`` (when the weight or the
        threshold is chosen on validation rows), ``"refined_tree"``,
        ``"ranker"``.
    """

    def __init__(
        self,
        vectorizer: TfidfVectorizer,
        tokenizer,
        encoder,
        ranker: XRLinearModel,
        *,
        max_length: int = 64,
        pooling: str = "cls",
        inference_batch_size: int = 128,
        embedding_weight: float | None = 1.0,
    ):
        self.vectorizer = vectorizer
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.ranker = ranker
        self.max_length = max_length
        self.pooling = pooling
        self.inference_batch_size = inference_batch_size
        self.embedding_weight = embedding_weight
        self.embedding_weight_scores: dict = {}
        self.weight_threshold: float | None = None
        self.weight_threshold_scores: dict = {}
        self.matcher_tree = None
        self.matcher_weights: list = []
        self.loss_curve: list = []
        self.n_epochs: list = []
        self.n_steps: list = []
        self.fit_times: dict = {}
        self._encoders: dict = {}

    @property
    def n_labels(self) -> int:
        return self.ranker.n_labels

    @property
    def label_tree(self):
        """The refined tree of the ranker."""
        return self.ranker.tree

    # ------------------------------------------------------------ training
    @classmethod
    def train(
        cls,
        X,
        Y,
        *,
        encoder,
        tokenizer,
        label_text=None,
        tree: TreeParams = TreeParams(),
        matcher: MatcherParams = MatcherParams(),
        ranker: RankerParams = RankerParams(),
        tfidf_params: dict | None = None,
        seed: int = 0,
        device="cpu",
        checkpoint=None,
        memory=None,
        embedding_weight: float | str = "auto",
        weight_thresholds: tuple[float, ...] | None = None,
        validation_fraction: float = 0.2,
        n_jobs: int | None = None,
        verbose: int = 0,
    ) -> XRTransformerModel:
        """Fine-tune ``encoder`` on a preliminary tree, then train the ranker.

        Parameters
        ----------
        X : sequence of str
            Training documents.
        Y : sparse matrix of shape (n_samples, n_labels)
            Binary relevance.
        encoder : transformers.PreTrainedModel
            The pretrained encoder, trained in place.
        tokenizer : transformers.PreTrainedTokenizerBase
            Its tokenizer.
        label_text : sequence of str, default=None
            One text per label (needed by ``matcher.label_text_init``).
        tree, matcher, ranker : TreeParams, MatcherParams, RankerParams
            The knobs of the trees, the fine-tuning and the ranker.
        tfidf_params : dict, default=None
            Keyword arguments of the TF-IDF vectorizer (defaults:
            ``sublinear_tf=True``, ``dtype=np.float32``).
        seed : int, default=0
            Seeds the trees, the scorer initialisation, the data order,
            dropout and the ranker; saved with the checkpoints. The final
            tree and ranker take it as it is, as ``XRLinearClassifier``
            takes the seed of its ``random_state``.
        device : torch.device or str, default="cpu"
            An indexed device (:func:`~skxmc.training.resolve_device`).
        checkpoint : CheckpointStore, default=None
            Saves the fine-tuning state after every epoch of every level and
            after each level, and resumes from it.
        memory : str, path-like, joblib.Memory or None, default=None
            Caches the frozen layers' states across fits
            (:meth:`~skxmc.nn._text_encoder.TextEncoder.cache_states`).
        embedding_weight : float or "auto", default="auto"
            Scale of the embedding block of the ranker's features. ``"auto"``
            tries :data:`EMBEDDING_WEIGHTS` (0 included: TF-IDF alone) on a
            validation split of the training rows (tree and ranker fitted on
            the others) and keeps the best mean of P@1, P@3 and P@5, the
            smallest weight on ties.
        weight_thresholds : tuple of float or None, default=None
            None: the ranker prunes at ``ranker.weight_threshold``. A tuple
            (e.g. :data:`WEIGHT_THRESHOLDS`): each is tried on the same
            validation rows, with TF-IDF alone when ``embedding_weight`` is
            ``"auto"`` (else at the given weight), and the best is kept, the
            largest on ties (the sparser ranker); ``"auto"`` weights are then
            tried at that threshold. One ranker fit more per threshold.
        validation_fraction : float, default=0.2
            Share of the training rows held out by ``embedding_weight="auto"``
            and ``weight_thresholds``.
        n_jobs : int, default=None
            Threads of the clustering and of the ranker.
        verbose : int, default=0
            Log the stages, show progress bars.

        Returns
        -------
        model : XRTransformerModel
        """
        import torch

        from skxmc.nn._text_encoder import TextEncoder
        from skxmc.nn._transformer import tokenize
        from skxmc.training import seeded_torch

        device = torch.device(device)
        seeds = np.random.default_rng(seed).integers(np.iinfo(np.int32).max, size=4)
        tree_seed, torch_seed, order_seed, ranker_seed = (int(s) for s in seeds)
        times = {}

        start = time.perf_counter()
        vectorizer, X_tfidf = fit_tfidf(X, tfidf_params)
        times["tfidf"] = time.perf_counter() - start

        start = time.perf_counter()
        matcher_tree = _build_tree(pifa_embedding(X_tfidf, Y), tree, tree_seed, n_jobs)
        times["preliminary_tree"] = time.perf_counter() - start
        _log(
            f"preliminary tree: {matcher_tree.n_nodes} nodes per level", verbose=verbose
        )

        token_ids = tokenize(tokenizer, X, matcher.max_length)
        text_encoder = TextEncoder(
            encoder, pooling=matcher.pooling, trainable_layers=matcher.trainable_layers
        )
        cache = None
        if text_encoder.caches:
            start = time.perf_counter()
            cache = text_encoder.cache_states(
                token_ids,
                pad_id=tokenizer.pad_token_id or 0,
                batch_size=matcher.inference_batch_size,
                device=device,
                memory=memory,
                max_bytes=matcher.cache_bytes,
            )
            times["state_cache"] = time.perf_counter() - start
            _log(
                f"cached the output of {text_encoder.n_frozen} frozen layers "
                f"({cache.nbytes / 2**20:.1f} MiB"
                f"{', on disk' if cache.on_disk else ''})",
                verbose=verbose,
            )

        start = time.perf_counter()
        label_ids = (
            tokenize(tokenizer, label_text, matcher.max_length)
            if matcher.label_text_init
            else None
        )
        fine_tuner = _FineTuner(
            text_encoder, tokenizer, matcher, matcher_tree, device, order_seed,
            seed, checkpoint, verbose,
        )  # fmt: skip
        with seeded_torch(torch_seed, device):
            fine_tuner.run(token_ids, label_ids, Y, cache)
        text_encoder.eval()
        model = cls(
            vectorizer,
            tokenizer,
            _cpu_clone(encoder) if device.type != "cpu" else encoder,
            None,
            max_length=matcher.max_length,
            pooling=matcher.pooling,
            inference_batch_size=matcher.inference_batch_size,
        )
        model._encoders[str(device)] = encoder  # the trained copy stays there
        model.matcher_tree = matcher_tree
        model.matcher_weights = fine_tuner.weights
        model.loss_curve = fine_tuner.loss_curve
        model.n_epochs = fine_tuner.n_epochs
        model.n_steps = fine_tuner.n_steps
        times["fine_tuning"] = time.perf_counter() - start

        start = time.perf_counter()
        if cache is not None:  # only the trained layers run
            emb = normalize(
                text_encoder.encode_cached(
                    cache, batch_size=matcher.inference_batch_size, device=device
                )
            )
        else:
            emb = model._encode(token_ids, device)
        del cache
        times["encoding"] = time.perf_counter() - start

        if weight_thresholds is not None or embedding_weight == "auto":
            start = time.perf_counter()
            ranker, embedding_weight = _choose_on_validation(
                model, X_tfidf, emb, Y, tree, ranker, embedding_weight,
                weight_thresholds, seed=ranker_seed, fraction=validation_fraction,
                n_jobs=n_jobs, verbose=verbose,
            )  # fmt: skip
            times["embedding_weight"] = time.perf_counter() - start
        model.weight_threshold = ranker.weight_threshold
        model.embedding_weight = float(embedding_weight)
        features = _concat_features(X_tfidf, emb, model.embedding_weight)

        start = time.perf_counter()
        # the final tree and ranker take the fit's own seed, as
        # XRLinearClassifier does: with embedding weight 0 they are the
        # XR-Linear model of the same TF-IDF and random_state, so the
        # validation choice is between that model and the fused ones
        label_tree = _build_tree(pifa_embedding(features, Y), tree, seed, n_jobs)
        times["refined_tree"] = time.perf_counter() - start
        _log(f"refined tree: {label_tree.n_nodes} nodes per level", verbose=verbose)

        start = time.perf_counter()
        model.ranker = XRLinearModel.train(
            features,
            Y,
            label_tree,
            **asdict(ranker),
            seed=seed,
            n_jobs=n_jobs,
            verbose=verbose,
        )
        times["ranker"] = time.perf_counter() - start
        model.fit_times = times
        return model

    # ----------------------------------------------------------- inference
    def _encoder_on(self, device):
        """The encoder on ``device``, cached (the CPU one is ``encoder``)."""
        import torch

        device = torch.device(device)
        key = str(device)
        if key not in self._encoders:
            self._encoders[key] = (
                self.encoder
                if device.type == "cpu"
                else copy.deepcopy(self.encoder).to(device)
            )
        return self._encoders[key].eval()

    def _encode(self, token_ids, device) -> np.ndarray:
        from skxmc.nn._transformer import encode

        return encode(
            self._encoder_on(device),
            self.tokenizer,
            None,
            token_ids=token_ids,
            batch_size=self.inference_batch_size,
            device=device,
            pooling=self.pooling,
            normalize=True,
        )

    def _features(self, X_tfidf, token_ids, device) -> sp.csr_matrix:
        """Rows of ``[TF-IDF, normalised embedding]``, L2-normalised."""
        return _concat_features(
            X_tfidf, self._encode(token_ids, device), self.embedding_weight
        )

    def transform(self, X, *, device="cpu") -> np.ndarray:
        """Pooled, L2-normalised embeddings of the documents ``X``.

        Parameters
        ----------
        X : sequence of str
            Documents.
        device : torch.device or str, default="cpu"
            Where the encoder runs (and stays).

        Returns
        -------
        embeddings : ndarray of shape (n_samples, dim), dtype float32
        """
        from skxmc.nn._transformer import tokenize

        return self._encode(tokenize(self.tokenizer, X, self.max_length), device)

    def predict_topk(
        self,
        X,
        k: int,
        *,
        device="cpu",
        beam_size: int | None = None,
        post_processor: str | None = None,
        n_jobs: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best labels of each document.

        Parameters
        ----------
        X : sequence of str
            Documents.
        k : int
            Labels per document.
        device : torch.device or str, default="cpu"
            Where the encoder runs (and stays).
        beam_size, post_processor : default=None
            Of the ranker's beam search; None: the ranker's own.
        n_jobs : int, default=None
            Threads of the beam search.

        Returns
        -------
        scores : ndarray of shape (n_samples, k), dtype float32
            Best first, ``-inf`` padded.
        indices : ndarray of shape (n_samples, k), dtype int64
            Label ids, ``-1`` padded.
        """
        from skxmc.nn._transformer import tokenize

        token_ids = tokenize(self.tokenizer, X, self.max_length)
        features = self._features(self.vectorizer.transform(X), token_ids, device)
        return self.ranker.predict_topk(
            features,
            k,
            beam_size=beam_size or self.ranker.beam_size,
            post_processor=post_processor or self.ranker.post_processor,
            n_jobs=n_jobs,
        )

    # ------------------------------------------------------------ pickling
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_encoders"] = {}  # device copies: rebuilt on the next call
        return state

    def __setstate__(self, state):
        state.setdefault("embedding_weight", None)  # pickled before issue 12
        state.setdefault("embedding_weight_scores", {})
        state.setdefault("weight_threshold", None)
        state.setdefault("weight_threshold_scores", {})
        self.__dict__.update(state)
        self._encoders = {}


def _log(message: str, *, verbose) -> None:
    _skxmc_log(f"XRTransformerModel: {message}", verbose=verbose)


def _concat_features(X_tfidf, emb, weight) -> sp.csr_matrix:
    """``[normalize(X_tfidf), weight * emb]`` (``emb``: L2-normalised rows).

    ``weight=None`` is the recipe of models pickled before issue 12:
    ``normalize([normalize(X_tfidf), emb])``.
    """
    if weight is None:
        features = sp.hstack([normalize(X_tfidf), sp.csr_matrix(emb)], format="csr")
        return normalize(features).astype(np.float32)
    block = sp.csr_matrix(np.float32(weight) * np.asarray(emb, dtype=np.float32))
    return sp.hstack([normalize(X_tfidf), block], format="csr", dtype=np.float32)


def _choose_on_validation(
    model, X_tfidf, emb, Y, tree: TreeParams, ranker: RankerParams,
    embedding_weight, weight_thresholds, *, seed, fraction, n_jobs, verbose,
) -> tuple[RankerParams, float]:  # fmt: skip
    """The ranker's weight threshold and the embedding weight, chosen on
    validation rows (see :meth:`XRTransformerModel.train`); the scores are
    kept on ``model``. Returns the ranker parameters and the weight."""
    split = _validation_split(Y.shape[0], fraction, seed)
    if split is None:  # too few rows to compare: PECOS's weight and threshold
        return ranker, 1.0 if embedding_weight == "auto" else float(embedding_weight)

    def score(weight, params):
        return _validation_score(
            X_tfidf, emb, Y, tree, params, weight, split, seed=seed, n_jobs=n_jobs
        )

    at_zero = {}  # the TF-IDF-alone score of the chosen threshold, reused
    if weight_thresholds is not None:
        at = 0.0 if embedding_weight == "auto" else float(embedding_weight)
        scores = {
            float(t): score(at, replace(ranker, weight_threshold=float(t)))
            for t in weight_thresholds
        }
        chosen = max(scores, key=lambda t: (scores[t], t))
        ranker = replace(ranker, weight_threshold=chosen)
        model.weight_threshold_scores = scores
        if at == 0.0:
            at_zero[0.0] = scores[chosen]
        _log(
            f"validation score per weight threshold (embedding weight {at:g}): "
            + ", ".join(f"{t:g}: {v:.4f}" for t, v in scores.items())
            + f"; kept {chosen:g}",
            verbose=verbose,
        )
    if embedding_weight != "auto":
        return ranker, float(embedding_weight)
    scores = {
        float(w): at_zero[w] if w in at_zero else score(w, ranker)
        for w in EMBEDDING_WEIGHTS
    }
    model.embedding_weight_scores = scores
    weight = max(scores, key=lambda w: (scores[w], -w))
    _log(
        "validation score per embedding weight: "
        + ", ".join(f"{w:g}: {v:.4f}" for w, v in scores.items())
        + f"; kept {weight:g}",
        verbose=verbose,
    )
    return ranker, weight


def _validation_split(n: int, fraction: float, seed: int):
    """(held-out, kept) training rows, or None when too few to compare."""
    n_val = round(fraction * n)
    if n_val < 1 or n - n_val < 2:
        return None
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:n_val]), np.sort(order[n_val:])


def _validation_score(
    X_tfidf, emb, Y, tree: TreeParams, ranker: RankerParams, weight, split, *,
    seed, n_jobs,
) -> float:  # fmt: skip
    """Mean of P@1, P@3, P@5 on the held-out rows of ``split`` of a tree and a
    ranker fitted on its other rows, on ``[tfidf, weight * e]``. The TF-IDF's
    vocabulary and IDF are those of all training rows."""
    from skxmc.metrics import precision_at_k

    held, kept = split
    Y = sp.csr_matrix(Y)
    F = _concat_features(X_tfidf, emb, weight)
    label_tree = _build_tree(pifa_embedding(F[kept], Y[kept]), tree, seed, n_jobs)
    model = XRLinearModel.train(
        F[kept], Y[kept], label_tree, **asdict(ranker), seed=seed, n_jobs=n_jobs
    )
    topk = model.predict_topk(
        F[held], 5, beam_size=ranker.beam_size,
        post_processor=ranker.post_processor, n_jobs=n_jobs,
    )  # fmt: skip
    return float(np.mean([precision_at_k(Y[held], topk, k=k) for k in (1, 3, 5)]))


def _build_tree(Z, params: TreeParams, seed: int, n_jobs):
    return hierarchical_kmeans(
        Z,
        branching_factor=params.branching_factor,
        max_leaf_size=params.max_leaf_size,
        max_iter=params.kmeans_max_iter,
        random_state=seed,
        n_jobs=n_jobs,
    )


def _cpu_clone(module):
    """A CPU copy of ``module`` (no second copy on its device)."""
    device = next(module.parameters()).device
    module.cpu()
    clone = copy.deepcopy(module)
    module.to(device)
    return clone


def _cpu_state(module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def _steps_per_level(params: MatcherParams, n_levels: int) -> list[int | None]:
    """Optimizer-step budget of each fine-tuned level (None: ``n_epochs`` epochs)."""
    if params.n_steps is None:
        return [None] * n_levels
    steps = params.n_steps
    return [int(steps[min(i, len(steps) - 1)]) for i in range(n_levels)]


class _FineTuner:
    """Coarse-to-fine fine-tuning of the encoder: one :class:`Trainer` per level.

    ``text_encoder`` is a :class:`~skxmc.nn._text_encoder.TextEncoder`; with
    a :class:`~skxmc.nn._text_encoder.StateCache` of the training texts, the
    steps run its trained layers on the cached states.

    Level ``t`` of the preliminary tree gets a :class:`LevelScorer` (random at
    the first level, each row a copy of its parent's row below it, plus the
    label-text centroids with ``label_text_init``), trained with the encoder
    on each row's positive clusters and sampled negatives
    (:func:`~skxmc.training._negatives.active_clusters`). A checkpoint is
    saved after every epoch (the level's Trainer state) and after each level
    (the encoder weights and RNG state).
    """

    def __init__(
        self, text_encoder, tokenizer, params, tree, device, order_seed, seed,
        checkpoint, verbose,
    ):  # fmt: skip
        self.text_encoder = text_encoder
        self.encoder = text_encoder.model
        self.tokenizer = tokenizer
        self.params = params
        self.tree = tree
        self.device = device
        self.order_seed = order_seed
        self.seed = seed
        self.checkpoint = checkpoint
        self.verbose = verbose
        self.weights: list = []
        self.loss_curve: list = []
        self.n_epochs: list = []
        self.n_steps: list = []
        self.micro_batch_size = params.batch_size

    def _payload(self, level: int, done: bool) -> dict:
        import torch

        return {
            "level": level,
            "done": done,
            "matcher_weights": [
                [torch.from_numpy(W), torch.from_numpy(b)] for W, b in self.weights
            ],
            "loss_curve": list(self.loss_curve),
            "n_epochs": list(self.n_epochs),
            "n_steps": list(self.n_steps),
            "micro_batch_size": self.micro_batch_size,
        }

    def _resume(self) -> tuple[int, dict | None]:
        """Restore finished levels; the first level to run and its Trainer state."""
        from skxmc.training import set_rng_state

        payload = None if self.checkpoint is None else self.checkpoint.load()
        if payload is None:
            return 0, None
        self.weights = [
            (W.numpy().astype(np.float32), b.numpy().astype(np.float32))
            for W, b in payload["matcher_weights"]
        ]
        self.loss_curve = [float(v) for v in payload["loss_curve"]]
        # "n_iter": the key of checkpoints written before it was renamed
        epochs = payload["n_epochs"] if "n_epochs" in payload else payload["n_iter"]
        self.n_epochs = [int(v) for v in epochs]
        self.n_steps = [int(v) for v in payload["n_steps"]]
        self.micro_batch_size = payload["micro_batch_size"]
        _log(f"resuming fine-tuning from {self.checkpoint.path}", verbose=self.verbose)
        if payload["done"]:
            self.encoder.load_state_dict(payload["encoder"])
            set_rng_state(payload["rng"], self.device)
            return payload["level"] + 1, None
        return payload["level"], payload["trainer"]

    def run(self, token_ids, label_ids, Y, cache=None) -> None:
        import torch

        from skxmc.nn._xr_transformer import LevelScorer

        params, tree = self.params, self.tree
        levels = [
            t for t in range(1, tree.n_levels + 1)
            if tree.n_nodes[t] <= params.max_match_clusters
        ]  # fmt: skip
        budgets = _steps_per_level(params, len(levels))
        start_level, saved = self._resume()
        self.encoder.to(self.device)
        dim = int(self.encoder.config.hidden_size)
        for i, t in enumerate(levels):
            if i < start_level:
                continue
            parents = (
                torch.from_numpy(tree.parents(t)).to(self.device) if t > 1 else None
            )
            if i == 0:
                generator = torch.Generator().manual_seed(self.order_seed)
                scorer = LevelScorer.random(tree.n_nodes[t], dim, generator=generator)
            else:
                W, b = (torch.from_numpy(w) for w in self.weights[-1])
                scorer = LevelScorer.from_parent(LevelScorer(W, b), parents.cpu())
            scorer.to(self.device)
            if params.label_text_init:
                with torch.no_grad():
                    scorer.weight += self._label_centroids(label_ids, t)
            prev = None
            if parents is not None:
                prev = tuple(
                    torch.from_numpy(w).to(self.device) for w in self.weights[-1]
                )
            self._train_level(
                i, t, scorer, prev, parents, budgets[i],
                token_ids, Y, saved if i == start_level else None, cache,
            )  # fmt: skip
            if self.checkpoint is not None:
                from skxmc.training import get_rng_state

                payload = self._payload(i, done=True)
                payload["encoder"] = _cpu_state(self.encoder)
                payload["rng"] = get_rng_state(self.device)
                self.checkpoint.save(payload, seed=self.seed)

    def _label_centroids(self, label_ids, t):
        """Normalised mean embedding of the label text below each cluster."""
        import torch

        from skxmc.nn._transformer import encode

        label_emb = encode(
            self.encoder, self.tokenizer, None, token_ids=label_ids,
            batch_size=self.params.inference_batch_size, device=self.device,
            pooling=self.params.pooling, normalize=True,
        )  # fmt: skip
        label_to_level = self.tree.project(sp.identity(self.tree.n_labels), t)
        centroids = normalize(label_to_level.T @ label_emb)
        return torch.from_numpy(np.asarray(centroids, dtype=np.float32)).to(self.device)

    def _train_level(
        self, i, t, scorer, prev, parents, budget, token_ids, Y, saved, cache
    ) -> None:
        import torch

        from skxmc.nn._transformer import collate
        from skxmc.nn._xr_transformer import TransformerMatcher, masked_cluster_loss
        from skxmc.training import Trainer, epoch_batches
        from skxmc.training._negatives import active_clusters

        params, device = self.params, self.device
        n_rows = len(token_ids)
        rows_per_step = params.batch_size * params.gradient_accumulation
        steps_per_epoch = max(1, math.ceil(n_rows / rows_per_step))
        if budget is None:
            n_epochs, budget = params.n_epochs, params.n_epochs * steps_per_epoch
        else:
            n_epochs = math.ceil(budget / steps_per_epoch)
        if budget == 0:
            self._finish_level(scorer, [], 0, 0, t)
            return
        matcher = TransformerMatcher(self.text_encoder, scorer)
        trainer = Trainer(
            matcher,
            [
                {"params": list(self.encoder.parameters()), "lr": params.learning_rate},
                {
                    "params": list(scorer.parameters()),
                    "lr": params.head_learning_rate or params.learning_rate,
                },
            ],
            optimizer="adamw",
            weight_decay=params.weight_decay,
            schedule="linear",
            warmup=params.warmup,
            micro_batch_size=self.micro_batch_size,
            mixed_precision=True,
            device=device,
            verbose=self.verbose,
            desc=f"level {t}",
        )
        if saved is not None:
            trainer.load_state_dict(
                saved, n_steps=budget, steps_per_epoch=steps_per_epoch
            )
        relevance = self.tree.project(Y, t).astype(np.float32).tocsr()
        pad_id = self.tokenizer.pad_token_id or 0
        teacher_forced = "tfn" in params.negative_sampling
        use_man = "man" in params.negative_sampling

        def loss_fn(rows):
            if cache is not None:
                scores, emb = matcher.forward_cached(cache, rows, device)
            else:
                input_ids, mask = collate([token_ids[r] for r in rows], pad_id, device)
                scores, emb = matcher(input_ids, mask)
            target = torch.from_numpy(relevance[rows].toarray()).to(device)
            parent_scores = None
            if use_man and prev is not None:
                with torch.no_grad():
                    parent_scores = emb.detach() @ prev[0].T + prev[1]
            active = active_clusters(
                target,
                parents,
                0 if prev is None else prev[0].shape[0],
                parent_scores=parent_scores,
                beam_size=params.beam_size,
                teacher_forced=teacher_forced,
            )
            return masked_cluster_loss(scores, target, active, params.loss)

        def on_epoch_end(trainer):
            if self.checkpoint is not None:
                payload = self._payload(i, done=False)
                payload["trainer"] = trainer.state_dict()
                self.checkpoint.save(payload, seed=self.seed)

        level_seed = int(
            np.random.default_rng([self.order_seed, i]).integers(2**31 - 1)
        )
        state = trainer.fit(
            loss_fn,
            epoch_batches(n_rows, rows_per_step, level_seed),
            n_epochs=n_epochs,
            max_steps=budget,
            on_epoch_end=on_epoch_end,
        )
        self.micro_batch_size = state.micro_batch_size
        losses = [record["loss"] for record in state.history]
        self._finish_level(scorer, losses, state.epoch, state.step, t)

    def _finish_level(self, scorer, losses, n_epochs, n_steps, t) -> None:
        self.weights.append(
            tuple(
                p.detach().cpu().numpy().astype(np.float32)
                for p in (scorer.weight, scorer.bias)
            )
        )
        self.loss_curve.extend(float(v) for v in losses)
        self.n_epochs.append(int(n_epochs))
        self.n_steps.append(int(n_steps))
        if losses:
            _log(
                f"level {t} ({scorer.n_clusters} clusters): {n_steps} steps, "
                f"loss {losses[0]:.4f} -> {losses[-1]:.4f}",
                verbose=self.verbose,
            )
