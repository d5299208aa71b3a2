"""EliasModel: the ELIAS engine behind :class:`~skxmc.EliasClassifier`.

Clustering, the network, the two training stages (through the one
:class:`~skxmc.training.Trainer`), the re-estimation of the index between
them, the optional sparse re-ranker, prediction and document embeddings.
Plain arrays in, plain arrays out; no scikit-learn base class.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import numpy as np
import scipy.sparse as sp
import torch

from skxmc.models._text_features import fit_tfidf
from skxmc.nn._text_encoder import DEFAULT_CACHE_BYTES

__all__ = ["EliasConfig", "EliasModel"]

#: Re-rankers an :class:`EliasModel` can train (``EliasConfig.reranker``).
RERANKERS = ("shortlist", "xr-linear")
#: How an :class:`EliasModel` combines its pair scores (``EliasConfig.fusion``).
FUSIONS = ("weights", "learned")


@dataclass(frozen=True)
class EliasConfig:
    """The hyper-parameters of an ELIAS fit.

    Each one is documented in full with the parameter of the same name of
    :class:`~skxmc.EliasClassifier`; the per-stage ones are pairs (stage 1,
    stage 2) here.

    Parameters
    ----------
    max_length, pooling, dropout : int, str, float
        Tokens per document, ``"cls"`` or ``"mean"`` pooling, dropout on the
        pooled embedding.
    max_leaf_size, kappa, kmeans_max_iter, tfidf_params : int, int, int, dict
        The clustering (and its TF-IDF) and the label slots per cluster row.
    beam_size, shortlist_size, alpha, beta : int, int, float, float
        The search: clusters per document, labels scored per document, and
        the scales of the cluster and adjacency softmaxes.
    loss_lambda, n_epochs, learning_rate, head_learning_rate : tuple of 2
        Per stage: weight of the positives' loss, epochs, AdamW learning
        rates of the encoder and of the rest.
    batch_size, warmup, weight_decay, swa : int, float, float, bool
        Documents per step, warm-up share of the linear schedule, AdamW
        weight decay, weight averaging over the second half of stage 2.
    reranker, rerank_size, rerank_weight, reranker_params : str or None, \
int, float, dict
        The sparse re-ranker (``"shortlist"``, ``"xr-linear"`` or None).
    fusion, fusion_fraction : str, float
        ``"weights"`` (``rerank_weight``) or ``"learned"`` (a
        :class:`~skxmc.indexing.ScoreFusion` fitted on ``fusion_fraction``
        of the training rows, held out of everything else).
    inference_batch_size, n_jobs : int, int or None
        Documents per forward pass without gradients; clustering threads.
    trainable_layers, cache_bytes : int or None, int
        Top transformer layers trained (None: all); the frozen layers'
        states of the training documents are cached, in a memory-mapped
        file beyond ``cache_bytes``
        (:class:`~skxmc.nn._text_encoder.TextEncoder`).
    """

    max_length: int = 32
    pooling: str = "cls"
    dropout: float = 0.5
    max_leaf_size: int = 100
    kappa: int = 1000
    kmeans_max_iter: int = 20
    tfidf_params: dict | None = None
    beam_size: int = 20
    shortlist_size: int = 2000
    alpha: float = 10.0
    beta: float = 150.0
    loss_lambda: tuple[float, float] = (0.01, 0.05)
    n_epochs: tuple[int, int] = (10, 10)
    learning_rate: tuple[float, float] = (2e-4, 3e-5)
    head_learning_rate: tuple[float, float] = (5e-3, 5e-3)
    batch_size: int = 64
    warmup: float = 0.1
    weight_decay: float = 0.01
    swa: bool = False
    reranker: str | None = None
    rerank_size: int = 100
    rerank_weight: float = 0.5
    reranker_params: dict | None = None
    fusion: str = "weights"
    fusion_fraction: float = 0.1
    inference_batch_size: int = 256
    n_jobs: int | None = None
    trainable_layers: int | None = None
    cache_bytes: int = DEFAULT_CACHE_BYTES


class EliasModel:
    """A fitted ELIAS model (the engine behind ``EliasClassifier``).

    Build one with :meth:`train`. The network is kept on the CPU
    (:attr:`network`); prediction on another device runs on a copy cached
    per device (moved there once, kept between calls, dropped on pickling).

    Parameters
    ----------
    network : EliasNetwork
        The trained network.
    tokenizer : transformers.PreTrainedTokenizerBase
        The encoder's tokenizer.
    vectorizer : TfidfVectorizer
        The TF-IDF of the documents (clustering and re-ranker features).
    cluster_of_label : ndarray of shape (n_labels,)
        The k-means cluster of every label (the stage-1 index).
    config : EliasConfig
        The hyper-parameters (prediction defaults).
    reranker : ShortlistReranker, XRLinearModel or None, default=None
        The sparse re-ranker.
    fusion : ScoreFusion or None, default=None
        The learned fusion of the pair scores (``config.fusion="learned"``).
    log_frequency : ndarray of shape (n_labels,), default=None
        ``log(1 + training count)`` of every label (a fusion feature;
        required with ``fusion``).
    loss_curve : list of float, default=()
        Mean training loss of every epoch, stage 1 then stage 2.
    fit_times : dict, default=None
        Seconds per part of :meth:`train`.

    Attributes
    ----------
    network, tokenizer, vectorizer, cluster_of_label, config, reranker, \
fusion, log_frequency, loss_curve, fit_times
        The parameters.
    """

    def __init__(
        self,
        network,
        tokenizer,
        vectorizer,
        cluster_of_label: np.ndarray,
        config: EliasConfig,
        *,
        reranker=None,
        fusion=None,
        log_frequency: np.ndarray | None = None,
        loss_curve: Sequence[float] = (),
        fit_times: dict | None = None,
    ):
        if fusion is not None and log_frequency is None:
            raise ValueError("A fusion needs the labels' log_frequency.")
        self.network = network
        self.tokenizer = tokenizer
        self.vectorizer = vectorizer
        self.cluster_of_label = np.asarray(cluster_of_label)
        self.config = config
        self.reranker = reranker
        self.fusion = fusion
        self.log_frequency = log_frequency
        self.loss_curve = [float(v) for v in loss_curve]
        self.fit_times = dict(fit_times or {})
        self._device_cache: tuple[torch.device, torch.nn.Module] | None = None

    @property
    def n_labels(self) -> int:
        return self.network.n_labels

    @property
    def n_clusters(self) -> int:
        return self.network.n_clusters

    @property
    def kappa(self) -> int:
        return self.network.kappa

    # ------------------------------------------------------------ training
    @classmethod
    def train(
        cls,
        texts: Sequence[str],
        Y: sp.csr_matrix,
        *,
        encoder,
        tokenizer,
        config: EliasConfig,
        seed: int,
        device: str | torch.device = "cpu",
        store=None,
        memory=None,
        verbose: int = 0,
        log: Callable[[str], None] | None = None,
    ) -> EliasModel:
        """Cluster the labels, train both stages, re-estimate the index between them.

        Then, as ``config`` asks, the sparse re-ranker and the learned
        fusion; with ``config.fusion="learned"``, ``config.fusion_fraction``
        of the rows are held out of everything but the fusion (TF-IDF,
        clustering, both stages, the re-ranker), so that the fusion learns
        how the models score rows they did not train on.

        Parameters
        ----------
        texts : sequence of str
            The training documents.
        Y : csr_matrix of shape (n_samples, n_labels)
            Their 0/1 labels.
        encoder : transformers.PreTrainedModel
            The pretrained encoder (fine-tuned in place).
        tokenizer : transformers.PreTrainedTokenizerBase
            Its tokenizer.
        config : EliasConfig
            The hyper-parameters.
        seed : int
            Seeds the clustering, the initial weights, the batch order and
            dropout (the global RNGs are left untouched).
        device : str or torch.device, default="cpu"
            Where the network trains.
        store : CheckpointStore, default=None
            Saves the training state after every epoch of each stage, and
            resumes from a saved one.
        memory : str, path-like, joblib.Memory or None, default=None
            Caches the frozen layers' states across fits
            (:meth:`~skxmc.nn._text_encoder.TextEncoder.cache_states`).
        verbose : int, default=0
            Progress bars and one log line per epoch.
        log : callable, default=None
            ``log(message)`` for progress messages (default: the ``skxmc``
            logger when ``verbose``).

        Returns
        -------
        model : EliasModel
        """

        from skxmc.indexing import (
            cluster_adjacency,
            hierarchical_kmeans,
            pifa_embedding,
            reestimate_adjacency,
        )
        from skxmc.nn._elias import EliasNetwork
        from skxmc.nn._transformer import tokenize
        from skxmc.training import seeded_torch

        if log is None:
            from skxmc.utils._logging import log as _log

            log = partial(_log_with_prefix, _log, verbose=verbose)
        device = torch.device(device)
        seeds = np.random.default_rng(seed).integers(np.iinfo(np.int32).max, size=4)
        tree_seed, torch_seed, *order_seeds = (int(s) for s in seeds)
        n_labels = Y.shape[1]
        times = {}
        if config.reranker is not None and config.reranker not in RERANKERS:
            raise ValueError(
                f"reranker must be None or one of {RERANKERS}, got {config.reranker!r}."
            )
        if config.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {config.fusion!r}.")
        fusion_texts = Y_fusion = None
        if config.fusion == "learned":
            from skxmc.training._data import hold_out_rows

            held, kept = hold_out_rows(
                np.arange(len(texts)), config.fusion_fraction, seed + 1,
                "fusion_fraction",
            )  # fmt: skip
            fusion_texts, Y_fusion = [texts[i] for i in held], Y[held]
            texts, Y = [texts[i] for i in kept], Y[kept]

        start = time.perf_counter()
        vectorizer, X_tfidf = fit_tfidf(texts, config.tfidf_params)
        times["tfidf"] = time.perf_counter() - start

        start = time.perf_counter()
        tree = hierarchical_kmeans(
            pifa_embedding(X_tfidf, Y),
            max_leaf_size=config.max_leaf_size,
            max_iter=config.kmeans_max_iter,
            random_state=tree_seed,
            n_jobs=config.n_jobs,
        )
        cluster_of_label = tree.leaf_of_label()
        n_clusters = int(tree.n_nodes[-2])
        kappa = min(int(config.kappa), n_labels)
        largest = int(np.bincount(cluster_of_label, minlength=n_clusters).max())
        if largest > kappa:
            raise ValueError(
                f"kappa={config.kappa} is smaller than the largest cluster "
                f"({largest} labels): use kappa >= max_leaf_size."
            )
        index = cluster_adjacency(cluster_of_label, n_clusters, kappa)
        times["clustering"] = time.perf_counter() - start
        log(f"{n_clusters} clusters, kappa={kappa}")

        token_ids = tokenize(tokenizer, texts, config.max_length)
        pad_id = tokenizer.pad_token_id or 0
        payload = None if store is None else store.load()
        resumed_stage = -1 if payload is None else int(payload["stage"])
        if payload is not None:
            step = payload["trainer"]["progress"]["step"]
            log(f"resuming stage {resumed_stage + 1} after step {step}")
        loss_curve: list[float] = []
        stage_args = {
            "cache": None,
            "token_ids": token_ids,
            "Y": Y,
            "config": config,
            "pad_id": pad_id,
            "device": device,
            "store": store,
            "seed": seed,
            "verbose": verbose,
        }
        net = EliasNetwork(  # initial weights from a local generator
            encoder,
            n_labels,
            torch.from_numpy(index),
            pooling=config.pooling,
            trainable_layers=config.trainable_layers,
            dropout=config.dropout,
            alpha=config.alpha,
            beta=config.beta,
            generator=torch.Generator().manual_seed(torch_seed),
        )
        with seeded_torch(torch_seed, device), _back_to_cpu_on_error(net):
            net.to(device)
            if net.encoder.caches:
                start = time.perf_counter()
                stage_args["cache"] = net.encoder.cache_states(
                    token_ids,
                    pad_id=pad_id,
                    batch_size=config.inference_batch_size,
                    device=device,
                    memory=memory,
                    max_bytes=config.cache_bytes,
                )
                times["state_cache"] = time.perf_counter() - start
                log(
                    f"cached the output of {net.encoder.n_frozen} frozen layers "
                    f"({stage_args['cache'].nbytes / 2**20:.1f} MiB)"
                )
            micro_batch_size = None
            if resumed_stage <= 0:
                start = time.perf_counter()
                loss_curve, micro_batch_size = _train_stage(
                    net, 0, order_seeds[0], loss_curve, None, payload, **stage_args
                )
                times["stage1"] = time.perf_counter() - start

                start = time.perf_counter()
                M = _cluster_scores_matrix(
                    net, token_ids, config.beam_size, config.inference_batch_size,
                    pad_id, device, stage_args["cache"],
                )  # fmt: skip
                new_index, logits = reestimate_adjacency(Y, M, kappa, index)
                adjacency = {
                    "index": torch.from_numpy(new_index),
                    "logits": torch.from_numpy(logits),
                }
                times["reestimate"] = time.perf_counter() - start
                resume = None
            else:
                adjacency = payload["adjacency"]
                n_first = config.n_epochs[0]
                loss_curve = [float(v) for v in payload["loss_curve"][:n_first]]
                resume = payload
            net.set_adjacency(adjacency["index"], adjacency["logits"])

            start = time.perf_counter()
            loss_curve, _ = _train_stage(
                net, 1, order_seeds[1], loss_curve, adjacency, resume,
                micro_batch_size=micro_batch_size, **stage_args,
            )  # fmt: skip
            times["stage2"] = time.perf_counter() - start
        net.eval()
        model = cls(
            net if device.type == "cpu" else copy.deepcopy(net).cpu(),
            tokenizer,
            vectorizer,
            cluster_of_label,
            config,
            log_frequency=np.log1p(np.bincount(Y.indices, minlength=n_labels)).astype(
                np.float32
            ),
            loss_curve=loss_curve,
            fit_times=times,
        )
        if device.type != "cpu":
            model._device_cache = (device, net)  # stays on the training device
        if config.reranker is not None:
            start = time.perf_counter()
            model.reranker = model._train_reranker(
                token_ids, X_tfidf, Y, seed=torch_seed, device=device, log=log,
                cache=stage_args["cache"],
            )  # fmt: skip
            model.fit_times["reranker"] = time.perf_counter() - start
        if fusion_texts is not None:
            from skxmc.indexing import ScoreFusion

            start = time.perf_counter()
            log(f"fusion on {len(fusion_texts)} held-out rows")
            ids, parts = model._scored_candidates(
                fusion_texts, config.rerank_size, {"device": device}, for_fusion=True
            )
            model.fusion = ScoreFusion(random_state=torch_seed).fit(
                model._fusion_inputs(ids, parts), ids, Y_fusion
            )
            model.fit_times["fusion"] = time.perf_counter() - start
        return model

    def _train_reranker(self, token_ids, X_tfidf, Y, *, seed, device, log, cache):
        """The sparse re-ranker: an XR-Linear ranker on the TF-IDF, or one
        model per label trained on the fitted model's own shortlists."""
        from skxmc.indexing import (
            ShortlistReranker,
            XRLinearModel,
            hierarchical_kmeans,
            pifa_embedding,
        )

        if self.config.reranker == "xr-linear":
            log("XR-Linear re-ranker on the TF-IDF")
            # XR-Linear's own recipe (16-way PIFA tree, leaves of <= 100
            # labels): a model of other features than ELIAS's, which is what
            # a fusion gains from
            tree = hierarchical_kmeans(
                pifa_embedding(X_tfidf, Y), branching_factor=16, max_leaf_size=100,
                random_state=seed, n_jobs=self.config.n_jobs,
            )  # fmt: skip
            return XRLinearModel.train(
                X_tfidf, Y, tree, beam_size=20, seed=seed, n_jobs=self.config.n_jobs,
                **(self.config.reranker_params or {}),
            )  # fmt: skip
        size = self.config.rerank_size
        log(f"re-ranker on the top {size} labels of each row")
        _, candidates, emb = self.elias_topk(
            token_ids, size, device=device, with_embeddings=True, cache=cache
        )
        return ShortlistReranker.train(
            _rerank_features(emb, X_tfidf),
            Y,
            candidates,
            seed=seed,
            n_jobs=self.config.n_jobs,
            **(self.config.reranker_params or {}),
        )

    # ---------------------------------------------------------- prediction
    def network_on(self, device: str | torch.device) -> torch.nn.Module:
        """The network on ``device``: :attr:`network` on the CPU, else a
        copy cached for that device (replacing the copy of another device).

        Parameters
        ----------
        device : str or torch.device
            An indexed device (``cuda:0``, see
            :func:`~skxmc.training.resolve_device`).

        Returns
        -------
        network : EliasNetwork
            In evaluation mode.
        """
        device = torch.device(device)
        if device.type == "cpu":
            return self.network.eval()
        if self._device_cache is not None and self._device_cache[0] == device:
            return self._device_cache[1]
        self._device_cache = None  # free the other device's copy first
        net = copy.deepcopy(self.network).to(device).eval()
        self._device_cache = (device, net)
        return net

    def predict_topk(
        self,
        texts: Sequence[str],
        k: int,
        *,
        device: str | torch.device = "cpu",
        beam_size: int | None = None,
        shortlist_size: int | None = None,
        rerank_weight: float | None = None,
        batch_size: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best labels of each document.

        Without a re-ranker or fusion, ELIAS's own ranking. With a re-ranker,
        the candidates are ELIAS's ``max(k, rerank_size)`` best labels (and,
        for an XR-Linear re-ranker, as many of its own); with
        ``fusion="weights"`` they are scored ``(1 - rerank_weight) * ELIAS
        score + rerank_weight * re-ranker score`` (an ELIAS score of 0 for
        the labels ELIAS did not return), with a learned fusion by its
        probability of relevance. Omitted keywords default to :attr:`config`.

        Parameters
        ----------
        texts : sequence of str
            Documents.
        k : int
            Labels per document.
        device : str or torch.device, default="cpu"
            Where the network runs.
        beam_size, shortlist_size, rerank_weight : default=None
            Search and fusion knobs (``rerank_weight``: ``fusion="weights"``
            only).
        batch_size : int, default=None
            Documents per forward pass (``config.inference_batch_size``).

        Returns
        -------
        scores : ndarray of shape (n_documents, k), dtype float32
            Best first; ``-inf`` pads.
        labels : ndarray of shape (n_documents, k), dtype int64
            ``-1`` pads.
        """
        from skxmc.utils import dense_row_topk

        search = {
            "device": device,
            "beam_size": beam_size,
            "shortlist_size": shortlist_size,
            "batch_size": batch_size,
        }
        if self.reranker is None and self.fusion is None:
            from skxmc.nn._transformer import tokenize

            token_ids = tokenize(self.tokenizer, texts, self.config.max_length)
            return self.elias_topk(token_ids, k, **search)
        ids, parts = self._scored_candidates(
            texts, max(k, self.config.rerank_size), search
        )
        valid = ids >= 0
        if self.fusion is not None:
            fused = self.fusion.predict(self._fusion_inputs(ids, parts), ids, k=k)
        else:
            w = self.config.rerank_weight if rerank_weight is None else rerank_weight
            fused = np.full(ids.shape, -np.inf, dtype=np.float32)
            fused[valid] = (1 - w) * parts["elias"][valid] + w * parts["rerank"][valid]
        top_scores, pos = dense_row_topk(fused, k)
        labels = np.take_along_axis(ids, np.maximum(pos, 0), 1)
        return top_scores, np.where(pos >= 0, labels, -1)

    def _scored_candidates(
        self, texts, size: int, search: dict, *, for_fusion: bool = False
    ):
        """Candidate labels of every document and their pair scores.

        Returns ``(ids, parts)``: ``ids`` of shape ``(n, m)`` (``-1`` pads),
        ELIAS's ``size`` best labels joined by an XR-Linear re-ranker's
        ``size`` best; ``parts`` a dict of float32 arrays of that shape:
        ``"elias"`` (ELIAS's score, 0 where it did not return the label),
        ``"rerank"`` with a re-ranker (its score of every pair) and, with a
        learned fusion (or ``for_fusion``: its training), ``"label"`` (the
        sigmoid of the label classifier, which rates every candidate, reached
        by ELIAS's search or not).
        """
        from skxmc.indexing import XRLinearModel
        from skxmc.nn._transformer import tokenize
        from skxmc.training import dedup_rows

        token_ids = tokenize(self.tokenizer, texts, self.config.max_length)
        scores, candidates, emb = self.elias_topk(
            token_ids, size, with_embeddings=True, **search
        )
        ids, pair_scorer, X_tfidf = candidates, None, None
        if self.reranker is not None:
            X_tfidf = self.vectorizer.transform(texts)
        if isinstance(self.reranker, XRLinearModel):
            _, proposed, pair_scorer = self.reranker.predict_topk(
                X_tfidf, k=min(size, self.n_labels), return_pair_scorer=True
            )
            ids = dedup_rows(np.concatenate([candidates, proposed], axis=1))
        valid = ids >= 0
        parts = {"elias": _scores_of(ids, candidates, scores, self.n_labels)}
        if pair_scorer is not None:
            parts["rerank"] = pair_scorer(ids)
        elif self.reranker is not None:
            rerank = self.reranker.score(_rerank_features(emb, X_tfidf), ids)
            parts["rerank"] = np.where(valid, rerank, 0.0).astype(np.float32)
        if for_fusion or self.fusion is not None:
            parts["label"] = self._label_scores(emb, ids)
        return ids, parts

    def _label_scores(self, emb: np.ndarray, ids: np.ndarray, block: int = 256):
        """``sigmoid(w_l . emb + b_l)`` of every pair (0 on ``-1`` slots),
        on the CPU copy of the network, a block of rows at a time (the
        gathered label weights of a block are ``block x m x hidden``)."""
        out = np.zeros(ids.shape, dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, ids.shape[0], block):
                rows = slice(start, start + block)
                logits = self.network.label_logits(
                    torch.from_numpy(np.ascontiguousarray(emb[rows])),
                    torch.from_numpy(ids[rows]),
                )
                out[rows] = torch.sigmoid(logits).numpy()
        out[ids < 0] = 0.0
        return out

    def _fusion_inputs(self, ids, parts) -> np.ndarray:
        """The ``(n, m, f)`` features of the learned fusion: ELIAS's score,
        the label classifier's, ``log(1 + training count)`` of the label
        and, with a re-ranker, its score (0 on ``-1`` slots)."""
        columns = [
            parts["elias"],
            parts["label"],
            self.log_frequency[np.maximum(ids, 0)],
        ]
        if "rerank" in parts:
            columns.append(parts["rerank"])
        features = np.stack(columns, axis=-1).astype(np.float32)
        features[ids < 0] = 0.0
        return features

    def elias_topk(
        self,
        token_ids: Sequence[np.ndarray],
        k: int,
        *,
        device: str | torch.device = "cpu",
        beam_size: int | None = None,
        shortlist_size: int | None = None,
        batch_size: int | None = None,
        with_embeddings: bool = False,
        cache=None,
    ):
        """ELIAS's own top ``k`` labels of tokenised documents (no re-ranker).

        Parameters
        ----------
        token_ids : sequence of ndarray
            :func:`~skxmc.nn._transformer.tokenize` output.
        k : int
            Labels per document.
        device, beam_size, shortlist_size, batch_size : default=None
            As in :meth:`predict_topk`.
        with_embeddings : bool, default=False
            Also return the pooled embeddings (the re-ranker's input).
        cache : StateCache, default=None
            The frozen layers' states of these documents (training): only
            the trained layers run.

        Returns
        -------
        scores : ndarray of shape (n_documents, k), dtype float32
            Best first; ``-inf`` pads.
        labels : ndarray of shape (n_documents, k), dtype int64
            ``-1`` pads.
        embeddings : ndarray of shape (n_documents, hidden_size)
            Only ``with_embeddings``.
        """
        from skxmc.nn._transformer import map_batches_with_oom_backoff

        config = self.config
        beam_size = config.beam_size if beam_size is None else beam_size
        shortlist_size = (
            config.shortlist_size if shortlist_size is None else (shortlist_size)
        )
        batch_size = batch_size or config.inference_batch_size
        device = torch.device(device)
        net = self.network_on(device)
        pad_id = self.tokenizer.pad_token_id or 0

        # every batch is written into outputs allocated once: per-batch result
        # arrays kept until a final concatenation sat between the batches'
        # freed temporaries and kept that memory resident (issue 15)
        n = len(token_ids)
        dim = int(net.encoder.config.hidden_size)
        scores = np.empty((n, k), np.float32)
        labels = np.empty((n, k), np.int64)
        embeddings = np.empty((n if with_embeddings else 0, dim), np.float32)

        def run(start, stop):
            with torch.inference_mode():
                emb = _embed_rows(net, token_ids, cache, start, stop, pad_id, device)
                top_scores, top_labels = net.predict(emb, beam_size, shortlist_size, k)
            scores[start:stop] = top_scores.cpu().numpy()
            labels[start:stop] = top_labels.cpu().numpy()
            if with_embeddings:
                embeddings[start:stop] = emb.cpu().numpy()

        map_batches_with_oom_backoff(run, n, batch_size)
        return (scores, labels, embeddings) if with_embeddings else (scores, labels)

    def transform(
        self,
        texts: Sequence[str],
        *,
        device: str | torch.device = "cpu",
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Pooled embeddings of the fine-tuned encoder (no dropout).

        Parameters
        ----------
        texts : sequence of str
            Documents.
        device : str or torch.device, default="cpu"
            Where the encoder runs.
        batch_size : int, default=None
            Documents per forward pass (``config.inference_batch_size``).

        Returns
        -------
        embeddings : ndarray of shape (n_documents, hidden_size), dtype float32
            One row per document.
        """
        from skxmc.nn._transformer import encode, tokenize

        net = self.network_on(device)
        return encode(
            net.encoder.model,
            self.tokenizer,
            None,
            token_ids=tokenize(self.tokenizer, texts, self.config.max_length),
            batch_size=batch_size or self.config.inference_batch_size,
            device=device,
            pooling=self.config.pooling,
        )

    # ------------------------------------------------------------ pickling
    def __getstate__(self):
        state = dict(vars(self))
        state["_device_cache"] = None  # a device copy of `network`
        return state

    def __setstate__(self, state):
        # models saved before the learned fusion have neither attribute
        vars(self).update({"fusion": None, "log_frequency": None, **state})
        self._device_cache = None


# -------------------------------------------------------------- training
def _train_stage(
    net,
    stage: int,
    order_seed: int,
    loss_curve: list[float],
    adjacency: dict | None,
    resume: dict | None,
    *,
    token_ids,
    Y,
    config: EliasConfig,
    pad_id: int,
    device: torch.device,
    store,
    seed: int,
    verbose: int,
    cache=None,
    micro_batch_size: int | None = None,
) -> tuple[list[float], int | None]:
    """Train ``net`` for one stage (0 or 1) through the Trainer.

    ``loss_curve`` holds the epochs of the stages before; ``resume`` is a
    checkpoint of this stage. Returns the loss curve with this stage's epochs
    appended and the micro-batch size the stage ended with (after any
    out-of-memory halvings).
    """
    from skxmc.indexing import label_cluster_matrix
    from skxmc.training import Trainer, epoch_batches

    n_epochs = config.n_epochs[stage]
    if n_epochs == 0:
        return list(loss_curve), micro_batch_size
    head = [
        net.cluster_weight,
        net.cluster_bias,
        net.label_weight,
        net.label_bias,
        net.adjacency_logits,  # frozen in stage 1: left out by the Trainer
    ]
    encoder = list(net.encoder.parameters())
    trainer = Trainer(
        net,
        [
            {"params": encoder, "lr": config.learning_rate[stage]},
            {"params": head, "lr": config.head_learning_rate[stage]},
        ],
        optimizer="adamw",
        weight_decay=config.weight_decay,
        schedule="linear",
        warmup=config.warmup,
        micro_batch_size=micro_batch_size,
        swa_start=0.5 if config.swa and stage == 1 else None,
        device=device,
        verbose=verbose,
        desc=f"ELIAS stage {stage + 1}",
    )
    make_batches = epoch_batches(len(token_ids), config.batch_size, order_seed)
    if resume is not None:
        steps_per_epoch = len(make_batches(0))
        trainer.load_state_dict(
            resume["trainer"],
            n_steps=n_epochs * steps_per_epoch,
            steps_per_epoch=steps_per_epoch,
        )
    loss_fn = partial(
        _batch_loss,
        net,
        token_ids,
        Y,
        label_cluster_matrix(net.adjacency_index.cpu().numpy(), net.n_labels),
        beam_size=config.beam_size,
        shortlist_size=config.shortlist_size,
        loss_lambda=config.loss_lambda[stage],
        pad_id=pad_id,
        device=device,
        cache=cache,
    )
    before = list(loss_curve)

    def curve(trainer) -> list[float]:
        return before + [float(h["loss"]) for h in trainer.state.history]

    def save(trainer):
        store.save(
            {
                "stage": stage,
                "trainer": trainer.state_dict(),
                "adjacency": adjacency,
                "loss_curve": curve(trainer),
            },
            seed=seed,
        )

    trainer.fit(
        loss_fn,
        make_batches,
        n_epochs=n_epochs,
        on_epoch_end=None if store is None else save,
    )
    return curve(trainer), trainer.state.micro_batch_size


def _batch_loss(
    net,
    token_ids,
    Y,
    label_to_cluster,
    rows,
    *,
    beam_size,
    shortlist_size,
    loss_lambda,
    pad_id,
    device,
    cache=None,
):
    """The ELIAS loss of the documents ``rows`` (:func:`~skxmc.nn._elias.elias_loss`).

    The encoder runs under the Trainer's autocast; the rest (cluster and label
    scores, the search, the loss) in float32. Teacher forcing: the clusters
    of the positive labels enter the beam first, the reachable positives the
    shortlist.
    """
    from skxmc.nn._elias import elias_loss, positive_keys
    from skxmc.nn._transformer import collate

    if cache is not None:
        emb = net.embed_cached(cache, rows, device)
    else:
        input_ids, mask = collate([token_ids[r] for r in rows], pad_id, device)
        emb = _embed(net, input_ids, mask)
    with torch.autocast(device.type, enabled=False):
        emb = net.dropout(emb.float())
        Y_batch = Y[rows]
        forced = torch.from_numpy((Y_batch @ label_to_cluster).toarray() > 0)
        keys = positive_keys(Y_batch.indptr, Y_batch.indices, net.n_labels, device)
        labels, path, valid, positive = net.shortlist(
            net.cluster_scores(emb),
            beam_size,
            shortlist_size,
            forced_clusters=forced.to(device),
            positive_keys=keys,
        )
        scores = torch.sigmoid(net.label_logits(emb, labels)) * path
        return elias_loss(scores, positive, valid, loss_lambda)


def _cluster_scores_matrix(
    net, token_ids, beam_size: int, batch_size: int, pad_id: int, device, cache=None
) -> sp.csr_matrix:
    """M: the ``beam_size`` best cluster scores of every document (eval mode)."""
    from skxmc.nn._transformer import map_batches_with_oom_backoff

    n = len(token_ids)
    b = min(beam_size, net.n_clusters)
    was_training = net.training
    net.eval()

    values = np.empty((n, b), np.float32)  # filled batch by batch (elias_topk)
    cols = np.empty((n, b), np.int64)

    def run(start, stop):
        with torch.inference_mode():
            emb = _embed_rows(net, token_ids, cache, start, stop, pad_id, device)
            scores = net.cluster_scores(emb)
            top = scores.topk(b, dim=1)
        values[start:stop] = top.values.cpu().numpy()
        cols[start:stop] = top.indices.cpu().numpy()

    try:
        map_batches_with_oom_backoff(run, n, batch_size)
    finally:
        net.train(was_training)
    indptr = np.arange(0, n * b + 1, b)
    return sp.csr_matrix(
        (values.ravel(), cols.ravel(), indptr), shape=(n, net.n_clusters)
    )


# --------------------------------------------------------------- helpers
def _embed(net, input_ids, mask):
    """Pooled encoder output (a module-level hook, patched by the OOM test)."""
    return net.embed(input_ids, mask)


def _embed_rows(net, token_ids, cache, start, stop, pad_id, device):
    """Float32 pooled embeddings of documents ``start:stop`` (from ``cache``
    when given: the trained layers only)."""
    if cache is not None:
        return net.embed_cached(cache, np.arange(start, stop), device).float()
    from skxmc.nn._transformer import collate

    input_ids, mask = collate(token_ids[start:stop], pad_id, device)
    return _embed(net, input_ids, mask).float()


def _scores_of(ids, candidates, scores, n_labels: int) -> np.ndarray:
    """The score of each ``ids[i, j]`` among row ``i``'s ``candidates`` (0
    where the row's candidates do not hold it, and on ``-1`` slots)."""
    rows = np.arange(ids.shape[0], dtype=np.int64)[:, None]
    listed = candidates >= 0
    keys = (rows * (n_labels + 1) + candidates + 1)[listed]
    values = scores[listed]
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], values[order]
    wanted = rows * (n_labels + 1) + ids + 1
    pos = np.minimum(np.searchsorted(keys, wanted), max(keys.size - 1, 0))
    found = (ids >= 0) & (keys.size > 0)
    if keys.size:
        found &= keys[pos] == wanted
    out = np.zeros(ids.shape, dtype=np.float32)
    out[found] = values[pos[found]]
    return out


def _rerank_features(emb: np.ndarray, X_tfidf) -> sp.csr_matrix:
    """Re-ranker features: ``[L2-normalised embedding, TF-IDF]``."""
    from sklearn.preprocessing import normalize

    return sp.hstack(
        [sp.csr_matrix(normalize(emb)), X_tfidf], format="csr", dtype=np.float32
    )


@contextmanager
def _back_to_cpu_on_error(module):
    """Move ``module`` to the CPU when the block fails (frees the GPU)."""
    try:
        yield
    except BaseException:
        module.cpu()
        raise


def _log_with_prefix(log, message: str, *, verbose: int) -> None:
    log(f"EliasModel: {message}", verbose=verbose)
