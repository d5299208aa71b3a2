"""DualEncoderModel: the NGAME-style engine of :class:`~skxmc.DualEncoderClassifier`.

One transformer embeds queries and label texts; a label's score is the cosine
of the two embeddings. Training (through the one
:class:`~skxmc.training.Trainer`) draws, every epoch, one gold label per
query as its positive and mines hard negatives from a
:class:`~skxmc.indexing.LabelShortlist` (exact or pynndescent) of the label
embeddings, refreshed every ``refresh_every`` epochs together with the
cluster-based mini-batches (queries grouped by balanced 2-means on their
embeddings, so in-batch negatives are hard too). With ``trainable_layers=k``
only the top ``k`` transformer layers train: the output of the frozen layers
on every query and label text is computed once per fit
(:meth:`~skxmc.nn._text_encoder.TextEncoder.cache_states`) and each step,
refresh and the final label embeddings run the top layers on it. Plain
arrays in, plain arrays out.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["DualEncoderConfig", "DualEncoderModel"]


@dataclass(frozen=True)
class DualEncoderConfig:
    """The hyper-parameters of a dual-encoder fit.

    Each one is documented with the parameter of the same name of
    :class:`~skxmc.DualEncoderClassifier`.

    Parameters
    ----------
    max_length, label_max_length, pooling : int, int, str
        Tokens per query and per label text; ``"cls"`` or ``"mean"`` pooling.
    trainable_layers : int or None
        Top transformer layers trained (None: all; 0: none, the pretrained
        embeddings are used as they are).
    loss, base_loss, margin, temperature : str, str, float, float
        The objective (:class:`~skxmc.nn.DualEncoderLoss`).
    tcm_weight, tcm_margins, beta_ql, beta_qb : float, tuple, float, float
        Weights and margins of TCM and of ALC's two losses.
    pair_hidden_size : int or None
        Hidden layer of ALC's pair classifier.
    n_epochs, batch_size, cluster_size, n_hard_negatives, refresh_every : int
        The schedule and the batches.
    learning_rate, head_learning_rate, warmup, weight_decay : float
        AdamW (encoder, pair classifier) with a linear schedule.
    retrieval, n_neighbors, inference_batch_size : str, int, int
        Label search (``"exact"`` or ``"ann"``) in mining and prediction.
    refine_epochs, refine_learning_rate : int, float
        Epochs and Adam learning rate of the per-label refinement
        (:meth:`DualEncoderModel.refine`; 0 epochs: none).
    rerank_size : int
        Cosine candidates per query the refinement trains on (and the
        re-rankers score at prediction).
    early_stopping, validation_fraction, n_iter_no_change : bool, float, int
        Hold out a share of the training rows, score their P@1 after every
        epoch, keep the best epoch's weights and stop after that many
        epochs without an improvement.
    n_jobs : int or None
        Threads of the clustering and of the pynndescent index.
    """

    max_length: int = 32
    label_max_length: int = 32
    pooling: str = "mean"
    trainable_layers: int | None = None
    loss: str = "contrastive"
    base_loss: str = "triplet"
    margin: float = 0.3
    temperature: float = 0.05
    tcm_weight: float = 1.0
    tcm_margins: tuple[float, float] = (0.9, 0.5)
    beta_ql: float = 1.0
    beta_qb: float = 1.0
    pair_hidden_size: int | None = None
    n_epochs: int = 3
    batch_size: int = 64
    cluster_size: int = 8
    n_hard_negatives: int = 1
    refresh_every: int = 1
    learning_rate: float = 2e-5
    head_learning_rate: float = 1e-3
    warmup: float = 0.1
    weight_decay: float = 0.01
    retrieval: str = "exact"
    n_neighbors: int = 30
    inference_batch_size: int = 256
    refine_epochs: int = 0
    refine_learning_rate: float = 0.01
    rerank_size: int = 100
    early_stopping: bool = False
    validation_fraction: float = 0.1
    n_iter_no_change: int = 3
    n_jobs: int | None = None


class DualEncoderModel:
    """A fitted dual encoder: the network, the label embeddings and their index.

    Build one with :meth:`train`.

    Parameters
    ----------
    network : DualEncoderNetwork
        The trained network (on the CPU).
    tokenizer : transformers.PreTrainedTokenizerBase
        The encoder's tokenizer.
    config : DualEncoderConfig
        The hyper-parameters.
    label_embeddings : ndarray of shape (n_labels, dim)
        L2-normalised embeddings of the label texts.
    loss_curve : list of float, default=()
        Mean training loss of every epoch.
    fit_times : dict, default=None
        Seconds per part of :meth:`train`.
    validation_scores : list of float, default=()
        With early stopping, the held-out P@1 after every epoch (the
        weights are those of the best one).
    seed : int, default=0
        Seeds the construction of the pynndescent index.

    Attributes
    ----------
    shortlist : LabelShortlist
        The index of :attr:`label_embeddings` searched by :meth:`predict_topk`.
    refinement : LabelEmbeddingClassifier or None
        The per-label classifiers of :meth:`refine` (None before it).
    """

    def __init__(
        self,
        network,
        tokenizer,
        config: DualEncoderConfig,
        label_embeddings: np.ndarray,
        *,
        loss_curve: Sequence[float] = (),
        fit_times: dict | None = None,
        validation_scores: Sequence[float] = (),
        seed: int = 0,
    ):
        self.network = network
        self.tokenizer = tokenizer
        self.config = config
        self.loss_curve = [float(v) for v in loss_curve]
        self.fit_times = dict(fit_times or {})
        self.validation_scores = [float(v) for v in validation_scores]
        self.seed = int(seed)
        self._device_cache = None
        self.refinement = None
        self.set_label_embeddings(label_embeddings)

    @property
    def n_labels(self) -> int:
        return self.label_embeddings.shape[0]

    def set_label_embeddings(self, label_embeddings: np.ndarray) -> None:
        """Replace the label embeddings and rebuild their index."""
        from skxmc.indexing import LabelShortlist

        self.label_embeddings = np.ascontiguousarray(label_embeddings, np.float32)
        self.shortlist = LabelShortlist(
            method=self.config.retrieval,
            n_neighbors=self.config.n_neighbors,
            random_state=self.seed,
            n_jobs=self.config.n_jobs,
        ).fit(self.label_embeddings)

    # ------------------------------------------------------------ training
    @classmethod
    def train(
        cls,
        texts: Sequence[str],
        Y: sp.csr_matrix,
        label_texts: Sequence[str],
        *,
        encoder,
        tokenizer,
        config: DualEncoderConfig,
        seed: int,
        device: str | torch.device = "cpu",
        memory=None,
        verbose: int = 0,
        log: Callable[[str], None] | None = None,
    ) -> DualEncoderModel:
        """Fine-tune the encoder on (query, label text) pairs.

        Parameters
        ----------
        texts : sequence of str
            Training queries.
        Y : csr_matrix of shape (n_samples, n_labels)
            Their 0/1 labels.
        label_texts : sequence of str
            One text per label.
        encoder, tokenizer : transformers model and tokenizer
            The pretrained encoder (fine-tuned in place).
        config : DualEncoderConfig
            The hyper-parameters.
        seed : int
            Seeds the objective's weights, the batches, the positives and
            dropout (global RNGs untouched).
        device : str or torch.device, default="cpu"
            Where the network trains.
        memory : str, path-like, joblib.Memory or None, default=None
            Keeps the frozen layers' states across fits
            (:meth:`~skxmc.nn._text_encoder.TextEncoder.cache_states`).
        verbose : int, default=0
            Progress bars and one log line per epoch.
        log : callable, default=None
            ``log(message)`` for progress messages.

        Returns
        -------
        model : DualEncoderModel
        """
        from skxmc.nn import DualEncoderLoss, DualEncoderNetwork
        from skxmc.nn._text_encoder import TextEncoder
        from skxmc.nn._transformer import tokenize
        from skxmc.training import Trainer, seeded_torch

        log = log or (lambda message: None)
        device = torch.device(device)
        Y = sp.csr_matrix(Y, dtype=np.float32)
        seeds = np.random.default_rng(seed).integers(np.iinfo(np.int32).max, size=3)
        torch_seed, batch_seed, index_seed = (int(s) for s in seeds)
        times: dict[str, float] = {}
        start = time.perf_counter()
        query_ids = tokenize(tokenizer, texts, config.max_length)
        label_ids = tokenize(tokenizer, label_texts, config.label_max_length)
        times["tokenize"] = time.perf_counter() - start
        dim = int(encoder.config.hidden_size)
        objective = DualEncoderLoss(
            dim,
            loss=config.loss,
            base=config.base_loss,
            margin=config.margin,
            temperature=config.temperature,
            tcm_weight=config.tcm_weight,
            tcm_margins=config.tcm_margins,
            beta_ql=config.beta_ql,
            beta_qb=config.beta_qb,
            pair_hidden_size=config.pair_hidden_size,
            generator=torch.Generator().manual_seed(torch_seed),
        )
        net = DualEncoderNetwork(encoder, objective, pooling=config.pooling)
        # freezes the embeddings and the layers below the trained ones
        text_encoder = TextEncoder(
            encoder, pooling=config.pooling, trainable_layers=config.trainable_layers
        )
        trained = [p for p in encoder.parameters() if p.requires_grad]
        trainable = np.flatnonzero(np.diff(Y.indptr) > 0)  # rows with a label
        train = config.n_epochs > 0 and trainable.size > 0 and len(trained) > 0
        val_rows = None
        if train and config.early_stopping:
            from skxmc.training._data import hold_out_rows

            val_rows, trainable = hold_out_rows(
                trainable, config.validation_fraction, batch_seed,
                "validation_fraction",
            )  # fmt: skip
        loss_curve: list[float] = []
        validation_scores: list[float] = []
        with seeded_torch(torch_seed, device):
            net.to(device)
            try:
                texts_of = _Texts(net, text_encoder, tokenizer, query_ids,
                                  label_ids, config, device)  # fmt: skip
                if text_encoder.caches:
                    start = time.perf_counter()
                    texts_of.cache(memory, need_queries=train)
                    times["state_cache"] = time.perf_counter() - start
                    log(
                        f"cached the output of {text_encoder.n_frozen} frozen "
                        f"layers in {times['state_cache']:.1f}s"
                    )
                if train:
                    sampler = _EpochSampler(
                        net, texts_of, Y, trainable, config, batch_seed,
                        index_seed, times, log,
                    )  # fmt: skip

                    def score_fn():
                        return _validation_precision(texts_of, Y, val_rows)

                    trainer = Trainer(
                        net,
                        [
                            {"params": trained, "lr": config.learning_rate},
                            {
                                "params": list(net.objective.parameters()),
                                "lr": config.head_learning_rate,
                            },
                        ],
                        optimizer="adamw",
                        weight_decay=config.weight_decay,
                        schedule="linear",
                        warmup=config.warmup,
                        score_fn=None if val_rows is None else score_fn,
                        n_iter_no_change=config.n_iter_no_change,
                        device=device,
                        verbose=verbose,
                        desc="dual encoder",
                    )

                    def loss_fn(rows):
                        return _batch_loss(net, rows, sampler, texts_of, Y, device)

                    start = time.perf_counter()
                    state = trainer.fit(
                        loss_fn, sampler.batches, n_epochs=config.n_epochs
                    )
                    times["train"] = (
                        time.perf_counter() - start - times.get("refresh", 0.0)
                    )
                    loss_curve = [float(h["loss"]) for h in state.history]
                    validation_scores = [
                        float(h["score"]) for h in state.history if "score" in h
                    ]
                net.eval()
                start = time.perf_counter()
                label_embeddings = texts_of.labels()
                times["label_embeddings"] = time.perf_counter() - start
            except BaseException:
                net.cpu()
                raise
            finally:
                # a later fine-tuning of this network (or a refit) trains it all
                for p in encoder.parameters():
                    p.requires_grad_(True)
        model = cls(
            net if device.type == "cpu" else copy.deepcopy(net).cpu(),
            tokenizer,
            config,
            label_embeddings,
            loss_curve=loss_curve,
            fit_times=times,
            validation_scores=validation_scores,
            seed=index_seed,
        )
        if device.type != "cpu":
            model._device_cache = (device, net)
        if config.refine_epochs > 0:
            start = time.perf_counter()
            labelled = np.flatnonzero(np.diff(Y.indptr) > 0)
            with seeded_torch(torch_seed, device):
                queries = texts_of.queries(labelled)
            model.fit_times["refine_embeddings"] = time.perf_counter() - start
            start = time.perf_counter()
            model.refine(
                queries, Y[labelled], seed=torch_seed, device=device, verbose=verbose
            )
            model.fit_times["refine"] = time.perf_counter() - start
            log(f"refined the label classifiers in {model.fit_times['refine']:.1f}s")
        return model

    def refine(
        self,
        query_embeddings: np.ndarray,
        Y,
        *,
        seed: int,
        device: str | torch.device = "cpu",
        batch_size: int = 256,
        verbose: int = 0,
    ) -> DualEncoderModel:
        """Train per-label classifiers on the fixed embeddings (NGAME's M4).

        Each label gets ``w_l = z_l + eta_l`` on its label embedding ``z_l``
        and a bias (:class:`~skxmc.nn.LabelEmbeddingClassifier`), trained by
        binary cross-entropy on every query's ``config.rerank_size`` labels of
        highest cosine plus its gold labels missing from them (the
        candidates the re-ranker scores at prediction), for
        ``config.refine_epochs`` epochs of Adam (sparse for the free vectors
        and biases) at ``config.refine_learning_rate``, through the one
        :class:`~skxmc.training.Trainer`. The encoder is not touched, so the
        refinement costs no transformer pass beyond the query embeddings.

        Parameters
        ----------
        query_embeddings : ndarray of shape (n_queries, dim)
            Unit embeddings of training queries (:meth:`transform`).
        Y : sparse matrix of shape (n_queries, n_labels)
            Their labels.
        seed : int
            Seeds the batches (global RNGs untouched).
        device : str or torch.device, default="cpu"
            Where the classifiers train (kept on the CPU afterwards).
        batch_size : int, default=256
            Queries per step.
        verbose : int, default=0
            Progress bar.

        Returns
        -------
        self : DualEncoderModel
            With :attr:`refinement` set.
        """
        from skxmc.indexing import candidate_relevance
        from skxmc.nn import LabelEmbeddingClassifier, shortlist_bce_loss
        from skxmc.training import Trainer, seeded_torch

        config = self.config
        Y = sp.csr_matrix(Y, dtype=np.float32)
        if Y.shape != (len(query_embeddings), self.n_labels):
            raise ValueError(
                f"Y has shape {Y.shape}, expected ({len(query_embeddings)}, "
                f"{self.n_labels})."
            )
        device = torch.device(device)
        x = torch.from_numpy(np.ascontiguousarray(query_embeddings, np.float32))
        candidates = _refinement_candidates(
            self.shortlist.query(query_embeddings, config.rerank_size)[1], Y
        )
        targets = candidate_relevance(candidates, Y).astype(np.float32)
        head = LabelEmbeddingClassifier(self.label_embeddings)
        rng = np.random.default_rng(seed)
        n = x.shape[0]

        def batches(epoch):
            order = rng.permutation(n)
            return [order[i : i + batch_size] for i in range(0, n, batch_size)]

        def loss_fn(rows):
            rows = torch.from_numpy(np.asarray(rows))
            ids = torch.from_numpy(candidates[rows]).to(device)
            logits = head(x[rows].to(device), ids)
            return shortlist_bce_loss(
                logits, torch.from_numpy(targets[rows]).to(device), ids >= 0
            )

        with seeded_torch(seed, device):
            head.to(device)
            trainer = Trainer(
                head,
                learning_rate=config.refine_learning_rate,
                optimizer="adam",
                device=device,
                verbose=verbose,
                desc="label refinement",
            )
            if n > 0 and config.refine_epochs > 0:
                trainer.fit(loss_fn, batches, n_epochs=config.refine_epochs)
        self.refinement = head.cpu().eval()
        return self

    # ---------------------------------------------------------- prediction
    def network_on(self, device) -> torch.nn.Module:
        """The network on ``device`` (a copy cached per device off the CPU)."""
        device = torch.device(device)
        if device.type == "cpu":
            return self.network.eval()
        if self._device_cache is not None and self._device_cache[0] == device:
            return self._device_cache[1]
        self._device_cache = None
        net = copy.deepcopy(self.network).to(device).eval()
        self._device_cache = (device, net)
        return net

    def transform(self, texts: Sequence[str], *, device="cpu", max_length=None):
        """L2-normalised embeddings of texts (queries or label texts).

        Parameters
        ----------
        texts : sequence of str
            The texts.
        device : str or torch.device, default="cpu"
            Where the encoder runs.
        max_length : int, default=None
            Tokens per text (``config.max_length``).

        Returns
        -------
        embeddings : ndarray of shape (n_texts, dim), dtype float32
            Unit rows.
        """
        from skxmc.nn._transformer import tokenize

        ids = tokenize(self.tokenizer, texts, max_length or self.config.max_length)
        return _encode(
            self.network_on(device), self.tokenizer, ids, self.config, device
        )

    def predict_topk(
        self,
        texts: Sequence[str],
        k: int,
        *,
        device="cpu",
        reranker=None,
        rerank_size=100,
        refine_weight=0.5,
    ):
        """The ``k`` labels of highest cosine with each query, or of highest
        re-ranker score among the ``rerank_size`` of highest cosine.

        Parameters
        ----------
        texts : sequence of str
            Queries.
        k : int
            Labels per query.
        device : str or torch.device, default="cpu"
            Where the encoder runs.
        reranker, rerank_size, refine_weight : str or None, int, float
            As in :meth:`rank`.

        Returns
        -------
        scores : ndarray of shape (n_queries, k), dtype float32
            Cosines or re-ranker scores, best first, ``-inf`` padded.
        labels : ndarray of shape (n_queries, k), dtype int64
            ``-1`` padded.
        """
        return self.rank(
            self.transform(texts, device=device),
            k,
            reranker=reranker,
            rerank_size=rerank_size,
            refine_weight=refine_weight,
        )

    def rank(
        self, embeddings, k: int, *, reranker=None, rerank_size=100, refine_weight=0.5
    ):
        """:meth:`predict_topk` of queries already embedded by :meth:`transform`.

        Parameters
        ----------
        embeddings : ndarray of shape (n_queries, dim)
            Unit query embeddings.
        k : int
            Labels per query.
        reranker : {"pair", "refined"} or None, default=None
            None: rank by cosine. ``"pair"``: re-rank the ``rerank_size``
            candidates of highest cosine by ALC's pair classifier
            (:meth:`pair_scores`). ``"refined"``: by ``(1 - refine_weight) *
            (1 + cos) / 2 + refine_weight * p``, ``p`` the probability of the
            per-label classifiers of :meth:`refine`
            (:meth:`refined_scores`).
        rerank_size : int, default=100
            Cosine candidates re-ranked (at least ``k`` are).
        refine_weight : float, default=0.5
            Weight of the per-label classifiers in the ``"refined"`` score.

        Returns
        -------
        scores, labels : ndarray of shape (n_queries, k)
            As in :meth:`predict_topk`.
        """
        if reranker is None:
            return self.shortlist.query(embeddings, k)
        cosines, labels = self.shortlist.query(embeddings, max(k, rerank_size))
        if reranker == "pair":
            scores = self.pair_scores(embeddings, labels)
        elif reranker == "refined":
            probabilities = self.refined_scores(embeddings, labels)
            found = labels >= 0  # padding (fewer labels than asked) is -inf
            fused = (1 - refine_weight) * (1 + np.where(found, cosines, 0.0)) / 2
            fused += refine_weight * np.where(found, probabilities, 0.0)
            scores = np.where(found, fused, -np.inf).astype(np.float32)
        else:
            raise ValueError(
                f"reranker must be 'pair', 'refined' or None, got {reranker!r}."
            )
        # stable: equal scores keep their cosine order
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return (
            np.take_along_axis(scores, order, axis=1),
            np.take_along_axis(labels, order, axis=1),
        )

    def refined_scores(self, embeddings, labels, block_size: int = 1024):
        """The per-label classifiers' probability of each query's candidates.

        Parameters
        ----------
        embeddings : ndarray of shape (n_queries, dim)
            Unit query embeddings (:meth:`transform`).
        labels : ndarray of int of shape (n_queries, m)
            Candidate label ids, ``-1`` padded.
        block_size : int, default=1024
            Queries per pass.

        Returns
        -------
        scores : ndarray of shape (n_queries, m), dtype float32
            ``sigmoid`` of the classifier's logit, ``-inf`` on padding.
        """
        if self.refinement is None:
            raise ValueError(
                "This dual encoder has no per-label classifiers: fit it with "
                "refine_epochs > 0 (or call refine) to use reranker='refined'."
            )
        head = self.refinement.eval()
        return _candidate_probabilities(
            lambda h_q, ids: head(h_q, torch.from_numpy(ids)),
            embeddings, labels, block_size,
        )  # fmt: skip

    def pair_scores(self, embeddings, labels, block_size: int = 64) -> np.ndarray:
        """ALC's pair-classifier probability of each query's candidate labels.

        Parameters
        ----------
        embeddings : ndarray of shape (n_queries, dim)
            Unit query embeddings (:meth:`transform`).
        labels : ndarray of int of shape (n_queries, m)
            Candidate label ids, ``-1`` padded.
        block_size : int, default=64
            Queries per pass (the pair features are ``4 * dim`` wide).

        Returns
        -------
        scores : ndarray of shape (n_queries, m), dtype float32
            ``sigmoid`` of the classifier's logit, ``-inf`` on padding.
        """
        head = self.network.objective.pair_classifier
        if head is None:
            raise ValueError(
                "This dual encoder has no pair classifier: it was trained with "
                f"loss={self.config.loss!r}; ALC's pair classifier comes with "
                "loss='alc' or 'alc+tcm'."
            )
        head = head.eval()
        label_embeddings = torch.from_numpy(self.label_embeddings)
        return _candidate_probabilities(
            lambda h_q, ids: head.candidate_logits(
                h_q, label_embeddings[torch.from_numpy(np.maximum(ids, 0))]
            ),
            embeddings, labels, block_size,
        )  # fmt: skip

    def add_labels(self, label_texts: Sequence[str], *, device="cpu") -> None:
        """Append labels known only by their text (zero-shot) and re-index.

        Parameters
        ----------
        label_texts : sequence of str
            The texts of the new labels.
        device : str or torch.device, default="cpu"
            Where the encoder runs.
        """
        new = self.transform(
            label_texts, device=device, max_length=self.config.label_max_length
        )
        self.set_label_embeddings(np.vstack([self.label_embeddings, new]))
        if self.refinement is not None:
            self.refinement.extend(new)

    # ------------------------------------------------------------ pickling
    def __getstate__(self):
        state = dict(vars(self))
        state["_device_cache"] = None
        return state

    def __setstate__(self, state):
        state.setdefault("refinement", None)  # models pickled before it
        vars(self).update(state)
        self._device_cache = None


def _candidate_probabilities(logits_of, embeddings, labels, block_size: int):
    """``sigmoid(logits_of(h_q, ids))`` of each query's candidates, computed
    ``block_size`` queries at a time (``h_q`` a float32 tensor of the block's
    embeddings, ``ids`` its int64 candidate array), ``-inf`` on padding."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.full(labels.shape, -np.inf, dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, labels.shape[0], block_size):
            rows = slice(start, start + block_size)
            ids = labels[rows]
            h_q = torch.from_numpy(np.asarray(embeddings[rows], dtype=np.float32))
            p = torch.sigmoid(logits_of(h_q, ids)).numpy()
            out[rows] = np.where(ids >= 0, p, -np.inf)
    return out


# -------------------------------------------------------------- training
def _refinement_candidates(shortlisted: np.ndarray, Y: sp.csr_matrix) -> np.ndarray:
    """Each row's shortlisted labels followed by its gold labels missing from
    them (at most as many as the shortlist is wide, the first by id), ``-1``
    padded: the refinement's candidates."""
    from skxmc.indexing import candidate_relevance

    shortlisted = np.asarray(shortlisted, dtype=np.int64)
    n, width = shortlisted.shape
    missing = np.diff(Y.indptr) - candidate_relevance(shortlisted, Y).sum(1)
    extra = np.full((n, min(int(missing.max(initial=0)), width)), -1, np.int64)
    for i in np.flatnonzero(missing > 0):
        gold = np.unique(Y.indices[Y.indptr[i] : Y.indptr[i + 1]])
        absent = gold[~np.isin(gold, shortlisted[i])][: extra.shape[1]]
        extra[i, : absent.size] = absent
    return np.hstack([shortlisted, extra])


def _encode(net, tokenizer, token_ids, config, device) -> np.ndarray:
    from skxmc.nn._transformer import encode

    return encode(
        net.encoder,
        tokenizer,
        None,
        token_ids=token_ids,
        batch_size=config.inference_batch_size,
        device=device,
        pooling=config.pooling,
        normalize=True,
    )


def _validation_precision(texts_of, Y, rows) -> float:
    """P@1 of the held-out ``rows`` by exact cosine search over the labels
    (the current network's embeddings; the early-stopping score)."""
    from skxmc.indexing import LabelShortlist
    from skxmc.metrics import precision_at_k

    index = LabelShortlist(method="exact").fit(texts_of.labels())
    return precision_at_k(Y[rows], index.query(texts_of.queries(rows), 1), k=1)


class _Texts:
    """The training queries and label texts, and their embeddings by the
    current network: through the cached states of the frozen layers when
    some are frozen, else through the full forward pass."""

    def __init__(
        self, net, text_encoder, tokenizer, query_ids, label_ids, config, device
    ):
        self.net, self.text_encoder, self.tokenizer = net, text_encoder, tokenizer
        self.query_ids, self.label_ids = query_ids, label_ids
        self.config, self.device = config, device
        self.pad_id = tokenizer.pad_token_id or 0
        self.query_cache = self.label_cache = None

    def cache(self, memory, *, need_queries: bool) -> None:
        options = {
            "pad_id": self.pad_id,
            "batch_size": self.config.inference_batch_size,
            "device": self.device,
            "memory": memory,
        }
        if need_queries:
            self.query_cache = self.text_encoder.cache_states(self.query_ids, **options)
        self.label_cache = self.text_encoder.cache_states(self.label_ids, **options)

    def _all(self, cache, token_ids, rows=None) -> np.ndarray:
        from sklearn.preprocessing import normalize

        if cache is None:
            ids = token_ids if rows is None else [token_ids[r] for r in rows]
            return _encode(self.net, self.tokenizer, ids, self.config, self.device)
        emb = self.text_encoder.encode_cached(
            cache, batch_size=self.config.inference_batch_size, device=self.device
        )
        return normalize(emb if rows is None else emb[rows])

    def queries(self, rows) -> np.ndarray:
        """Unit embeddings of the training queries ``rows`` (no gradient)."""
        return self._all(self.query_cache, self.query_ids, rows)

    def labels(self) -> np.ndarray:
        """Unit embeddings of every label text (no gradient)."""
        return self._all(self.label_cache, self.label_ids)

    def embed_queries(self, rows) -> torch.Tensor:
        """Pooled embeddings of queries ``rows``, with gradient."""
        return self._embed(self.query_cache, self.query_ids, rows)

    def embed_labels(self, labels) -> torch.Tensor:
        """Pooled embeddings of label texts ``labels``, with gradient."""
        return self._embed(self.label_cache, self.label_ids, labels)

    def _embed(self, cache, token_ids, rows) -> torch.Tensor:
        from skxmc.nn._transformer import collate

        if cache is not None:
            return self.text_encoder.forward_cached(cache, rows, self.device)
        ids, mask = collate([token_ids[r] for r in rows], self.pad_id, self.device)
        return self.net.embed(ids, mask)


class _EpochSampler:
    """Per-epoch batches, positives and hard negatives (``make_batches``).

    Every ``refresh_every`` epochs the queries and labels are embedded with
    the current encoder; the labels are indexed (:class:`LabelShortlist`),
    each query's ``n_hard_negatives`` most similar non-gold labels become its
    hard negatives (random labels fill in when the search finds too few) and
    the queries are grouped by balanced 2-means into clusters of at most
    ``cluster_size`` (shuffled, concatenated, cut into batches). Every epoch
    draws a fresh positive per query. All draws come from generators seeded
    by ``(seed, epoch)``.
    """

    def __init__(
        self, net, texts_of, Y, rows, config, seed, index_seed, times, log,
    ):  # fmt: skip
        self.net, self.texts_of = net, texts_of
        self.Y, self.rows, self.config = Y, rows, config
        self.seed, self.index_seed = seed, index_seed
        self.times, self.log = times, log
        self._epoch: int | None = None
        self._batches: list[np.ndarray] = []
        self._groups: list[np.ndarray] | None = None
        self.hard: np.ndarray | None = None
        self.positive: np.ndarray | None = None

    def batches(self, epoch: int) -> list[np.ndarray]:
        if epoch == self._epoch:
            return self._batches
        config = self.config
        rng = np.random.default_rng([self.seed, epoch])
        if self._groups is None or epoch % max(config.refresh_every, 1) == 0:
            self._refresh(epoch)
        # a fresh positive per query: one of its gold labels at random
        Y = self.Y
        counts = np.diff(Y.indptr)
        pick = Y.indptr[:-1] + (rng.random(Y.shape[0]) * np.maximum(counts, 1)).astype(
            np.int64
        )
        positive = np.full(Y.shape[0], -1, dtype=np.int64)
        has = counts > 0
        positive[has] = Y.indices[pick[has]]
        self.positive = positive
        order = np.concatenate(
            [self._groups[g] for g in rng.permutation(len(self._groups))]
        )
        size = config.batch_size
        self._batches = [order[i : i + size] for i in range(0, len(order), size)]
        self._epoch = epoch
        return self._batches

    def _refresh(self, epoch: int) -> None:
        from skxmc.indexing import LabelShortlist, hierarchical_kmeans

        start = time.perf_counter()
        config, Y, rows = self.config, self.Y, self.rows
        was_training = self.net.training
        self.net.eval()
        try:
            Q = self.texts_of.queries(rows)
            need_labels = config.n_hard_negatives > 0
            L = self.texts_of.labels() if need_labels else None
        finally:
            self.net.train(was_training)
        rng = np.random.default_rng([self.seed, epoch, 1])
        n_labels = Y.shape[1]
        hard = np.zeros((Y.shape[0], config.n_hard_negatives), dtype=np.int64)
        if need_labels:
            shortlist = LabelShortlist(
                method=config.retrieval,
                n_neighbors=config.n_neighbors,
                random_state=self.index_seed,
                n_jobs=config.n_jobs,
            ).fit(L)
            max_gold = int(np.diff(Y.indptr).max())
            depth = min(n_labels, config.n_hard_negatives + max_gold)
            _, candidates = shortlist.query(Q, depth)
            hard[rows] = _first_non_gold(
                candidates, Y[rows], config.n_hard_negatives, rng
            )
        self.hard = hard
        if config.cluster_size > 1 and len(rows) > config.cluster_size:
            tree = hierarchical_kmeans(
                Q, branching_factor=2, max_leaf_size=config.cluster_size,
                random_state=int(rng.integers(2**31 - 1)), n_jobs=config.n_jobs,
            )  # fmt: skip
            leaf = tree.leaf_of_label()
            order = np.argsort(leaf, kind="stable")
            cuts = np.flatnonzero(np.diff(leaf[order])) + 1
            self._groups = [rows[g] for g in np.split(order, cuts)]
        else:
            self._groups = [rows[i : i + 1] for i in range(len(rows))]
        elapsed = time.perf_counter() - start
        self.times["refresh"] = self.times.get("refresh", 0.0) + elapsed
        self.log(
            f"epoch {epoch + 1}: negatives and batches refreshed in {elapsed:.1f}s"
        )


def _first_non_gold(candidates, Y_rows, n_hard: int, rng) -> np.ndarray:
    """The first ``n_hard`` candidates of each row that are not gold; random
    labels (possibly gold, when a row holds almost every label) fill in."""
    Y_rows = sp.csr_matrix(Y_rows)
    n_labels = Y_rows.shape[1]
    out = rng.integers(n_labels, size=(candidates.shape[0], n_hard))
    for i in range(candidates.shape[0]):
        gold = Y_rows.indices[Y_rows.indptr[i] : Y_rows.indptr[i + 1]]
        row = candidates[i]
        keep = row[(row >= 0) & ~np.isin(row, gold)][:n_hard]
        out[i, : len(keep)] = keep
    return out


def _batch_loss(net, rows, sampler, texts_of, Y, device):
    """The objective on the queries ``rows``: their positives, their hard
    negatives and every other query's positive and negatives (in-batch)."""
    rows = np.asarray(rows)
    positive = sampler.positive[rows]
    labels = np.unique(np.concatenate([positive, sampler.hard[rows].ravel()]))
    gold = torch.from_numpy(Y[rows][:, labels].toarray() > 0).to(device)
    positive_col = torch.from_numpy(np.searchsorted(labels, positive)).to(device)
    h_q = texts_of.embed_queries(rows)
    h_l = texts_of.embed_labels(labels)
    with torch.autocast(device.type, enabled=False):
        return net.objective(h_q.float(), h_l.float(), positive_col, gold)
