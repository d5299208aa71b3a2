"""DecafModel: the engine of DecafClassifier and EclareClassifier."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.preprocessing import normalize

from skxmc.indexing import LabelShortlist, hierarchical_kmeans, label_embedding
from skxmc.metrics._ranking import _jain_inverse_propensity
from skxmc.models._encoder_component import EncoderComponent
from skxmc.models._label_graph import LabelGraphComponent
from skxmc.nn import DecafNetwork, score_pairs, shortlist_bce_loss
from skxmc.training import (
    CheckpointStore,
    Trainer,
    cluster_table,
    csr_to_bag,
    dedup_rows,
    minibatches,
    seeded_torch,
    shortlist_targets,
)
from skxmc.training._data import hold_out_rows
from skxmc.utils import csr_row_topk, sparse_pair_scores
from skxmc.utils._logging import log
from skxmc.utils._sparse import _readonly_float32_csr, l2_normalize_csr
from skxmc.utils._threads import run_aside, torch_threads

__all__ = ["DecafConfig", "DecafModel", "DecafScoring"]


@dataclass(frozen=True)
class DecafScoring:
    """How a :class:`DecafModel` shortlists and scores labels.

    Training reads these too (the training shortlists, the validation score,
    the fusion's and re-ranker's training pairs), but they may change after
    training: :meth:`DecafModel.predict_topk` takes its own.

    Parameters
    ----------
    beam_size : int, default=32
        Clusters whose labels are shortlisted for each document.
    text_shortlist_size : int, default=0
        Labels added by the TF-IDF cosine of document and label text.
    ann_shortlist_size : int, default=0
        Labels added by nearest label vectors (prediction only).
    graph_shortlist_size : int, default=0
        Labels added through the label graph (only with a
        :class:`LabelGraphComponent`).
    encoder_shortlist_size : int, default=0
        Labels of highest pretrained-encoder cosine added (only with an
        :class:`EncoderComponent`).
    rerank_size : int, default=100
        ``"shortlist"`` re-ranker: labels per training row that train it;
        ``"xr-linear"``: labels it adds to every shortlist.
    meta_weight : float, default=0.5
        Weight of the cluster score (``fusion="weights"``).
    text_weight : float, default=0.0
        Weight of the label-text cosine (``fusion="weights"``).
    propensity_tilt : float, default=0.0
        Exponent of the inverse-propensity factor of every score.
    """

    beam_size: int = 32
    text_shortlist_size: int = 0
    ann_shortlist_size: int = 0
    graph_shortlist_size: int = 0
    encoder_shortlist_size: int = 0
    rerank_size: int = 100
    meta_weight: float = 0.5
    text_weight: float = 0.0
    propensity_tilt: float = 0.0


@dataclass(frozen=True)
class DecafConfig:
    """Training hyper-parameters of a :class:`DecafModel`.

    See :class:`~skxmc.DecafClassifier` for their meaning.

    Parameters
    ----------
    embedding_dim : int, default=300
        Size of the token embeddings, document and label vectors.
    n_epochs : int, default=10
        Epochs of each of the two training stages.
    batch_size : int, default=256
        Documents per mini-batch.
    learning_rate : float, default=0.01
        Learning rate of Adam and SparseAdam.
    dropout : float, default=0.2
        Dropout of the residual blocks and of the document vectors.
    max_leaf_size : int, default=8
        Maximum number of labels per cluster.
    fusion : {"weights", "learned"}, default="weights"
        How the scores of a pair are combined.
    fusion_fraction : float, default=0.1
        Share of the training rows held out for ``fusion="learned"``.
    reranker : {None, "shortlist", "xr-linear"}, default=None
        Sparse linear re-ranker whose score is a fusion feature.
    max_label_tokens : int or None, default=None
        Largest TF-IDF entries kept per label (and cluster).
    early_stopping : bool, default=False
        Stop the extreme stage on a held-out P@1.
    validation_fraction : float, default=0.1
        Held-out share of the rows when ``early_stopping``.
    n_iter_no_change : int, default=3
        Patience of early stopping, in epochs.
    scoring : DecafScoring, default=DecafScoring()
        Shortlists and scores during training.
    """

    embedding_dim: int = 300
    n_epochs: int = 10
    batch_size: int = 256
    learning_rate: float = 0.01
    dropout: float = 0.2
    max_leaf_size: int = 8
    fusion: str = "weights"
    fusion_fraction: float = 0.1
    reranker: str | None = None
    max_label_tokens: int | None = None
    early_stopping: bool = False
    validation_fraction: float = 0.1
    n_iter_no_change: int = 3
    scoring: DecafScoring = field(default_factory=DecafScoring)


class DecafModel:
    """DECAF's engine: label clusters, network, shortlists and score fusion.

    :meth:`train` clusters the labels (hierarchical spherical k-means of
    their PIFA and text features), builds a :class:`~skxmc.nn.DecafNetwork`
    and trains it in two stages through the one
    :class:`~skxmc.training.Trainer` (clusters only, then clusters and the
    shortlisted labels), then fits the optional nearest-neighbour shortlist,
    re-ranker and learned fusion. With a :class:`LabelGraphComponent` it is
    ECLARE. :meth:`predict_topk` scores the shortlist of every document (the
    labels of its best clusters, plus text, re-ranker, graph and
    nearest-neighbour candidates) and keeps the best.

    Training runs in float32 on every device (``mixed_precision=False``):
    the network is small and dominated by embedding-bag sums, and full
    precision keeps a CPU fit reproducible and a GPU fit comparable to it.

    Parameters
    ----------
    config : DecafConfig
        Training hyper-parameters.
    label_graph : LabelGraphComponent or None, default=None
        ECLARE's label graph.
    encoder : EncoderComponent or None, default=None
        A frozen pretrained text encoder beside the network (shortlist and
        learned-fusion inputs); the model then reads the documents' texts
        too (``texts`` of :meth:`train` and :meth:`predict_topk`).

    Attributes
    ----------
    network_ : DecafNetwork
        The trained network (on its device).
    cluster_of_label_ : ndarray of shape (n_labels,)
        Cluster of every label.
    n_clusters_ : int
        Number of clusters.
    n_labels_ : int
        Number of labels.
    fusion_ : ScoreFusion or None
        The learned fusion.
    reranker_ : ShortlistReranker, XRLinearModel or None
        The re-ranker.
    loss_curve_ : list of float
        Mean training loss of every epoch, both stages in turn.
    n_iter_ : int
        Epochs run (both stages).
    fit_times : dict
        Seconds of every fit stage, in order: ``clustering`` (with ECLARE's
        label graph), ``text_shortlist``, ``training``, ``label_weights``
        (and the nearest-neighbour index), ``reranker`` and ``fusion`` (when
        configured).

    Examples
    --------
    >>> from skxmc.datasets import make_xmc_classification
    >>> from skxmc.models import DecafConfig, DecafModel, DecafScoring
    >>> X, Y = make_xmc_classification(n_samples=60, n_labels=10, n_features=40,
    ...                                random_state=0)
    >>> Z = Y.T @ X  # label features: the sum of their documents'
    >>> config = DecafConfig(embedding_dim=8, n_epochs=1, max_leaf_size=4,
    ...                      scoring=DecafScoring(beam_size=2))
    >>> model = DecafModel.train(X, Y, Z, config=config, seed=0)
    >>> scores, labels = model.predict_topk(X[:2], 3)
    >>> labels.shape
    (2, 3)
    """

    #: (models pickled before the encoder component existed have none)
    encoder = None

    def __init__(
        self,
        config: DecafConfig,
        label_graph: LabelGraphComponent | None = None,
        encoder: EncoderComponent | None = None,
    ):
        self.config = config
        self.label_graph = label_graph
        self.encoder = encoder
        self._weights_cache: dict = {}

    # ------------------------------------------------------------ training
    @classmethod
    def train(
        cls,
        X,
        Y,
        label_features,
        *,
        config: DecafConfig,
        seed: int,
        device: str | torch.device = "cpu",
        label_graph: LabelGraphComponent | None = None,
        encoder: EncoderComponent | None = None,
        texts=None,
        label_texts=None,
        checkpoint: CheckpointStore | None = None,
        token_embeddings=None,
        verbose: int = 0,
    ) -> DecafModel:
        """Cluster the labels, train the network and fit the scoring.

        Parameters
        ----------
        X : sparse matrix of shape (n_samples, n_features)
            Training documents (e.g. TF-IDF).
        Y : sparse matrix of shape (n_samples, n_labels)
            Training labels (0/1).
        label_features : sparse matrix of shape (n_labels, n_features)
            Label features in the feature space of ``X``.
        config : DecafConfig
            Hyper-parameters.
        seed : int
            Seeds the hold-outs, clustering, weights, dropout and batches.
        device : str or torch.device, default="cpu"
            An indexed device (see :func:`~skxmc.training.resolve_device`).
        label_graph : LabelGraphComponent or None, default=None
            ECLARE's label graph.
        encoder : EncoderComponent or None, default=None
            A frozen pretrained text encoder (needs ``texts``, ``label_texts``
            and a learned fusion: ``config.fusion="learned"``).
        texts : sequence of str, default=None
            The documents' texts, one per row of ``X`` (with ``encoder``).
        label_texts : sequence of str, default=None
            The labels' texts (with ``encoder``).
        checkpoint : CheckpointStore or None, default=None
            Saved after every epoch; a saved fit resumes.
        token_embeddings : ndarray of shape (n_features, embedding_dim), default=None
            Initial token embeddings of the bag-of-words encoder (shared by
            the label-text classifiers), e.g.
            :func:`~skxmc.nn.static_term_embeddings` of the
            feature names; None draws them at random.
        verbose : int, default=0
            Progress bars and per-epoch losses.

        Returns
        -------
        model : DecafModel
            The trained engine, on ``device``.
        """
        model = cls(config, label_graph, encoder)
        if encoder is not None and (
            texts is None or label_texts is None or config.fusion != "learned"
        ):
            raise ValueError(
                "An encoder component needs the documents' and labels' texts "
                "and a learned fusion (its cosines are fusion features)."
            )
        if encoder is not None and config.reranker == "shortlist":
            raise ValueError(
                "An encoder component works with reranker='xr-linear' or None: "
                "the 'shortlist' re-ranker trains on every training row's "
                "shortlist, which would need every training row encoded."
            )
        model._fit(
            sp.csr_matrix(X, dtype=np.float32),
            sp.csr_matrix(Y, dtype=np.float32),
            sp.csr_matrix(label_features, dtype=np.float32),
            seed=seed,
            device=torch.device(device),
            checkpoint=checkpoint,
            token_embeddings=token_embeddings,
            verbose=verbose,
            texts=texts,
            label_texts=label_texts,
        )
        return model

    def _fit(
        self,
        X,
        Y,
        Z,
        *,
        seed,
        device,
        checkpoint,
        token_embeddings,
        verbose,
        texts=None,
        label_texts=None,
    ):
        config, scoring = self.config, self.config.scoring
        rows = np.arange(X.shape[0])
        val_rows = fusion_rows = None
        if config.fusion == "learned":
            fusion_rows, rows = hold_out_rows(
                rows, config.fusion_fraction, seed + 1, "fusion_fraction"
            )
        if config.early_stopping:
            val_rows, rows = hold_out_rows(
                rows, config.validation_fraction, seed, "validation_fraction"
            )
        counts = np.bincount(Y.indices, minlength=Y.shape[1])
        self.n_labels_ = Y.shape[1]
        self._n_train_rows = Y.shape[0]
        self._inv_propensity = _jain_inverse_propensity(counts, Y.shape[0])
        self._log_frequency = np.log1p(
            np.bincount(Y[rows].indices, minlength=Y.shape[1])
        ).astype(np.float32)
        self.fusion_ = self.reranker_ = None
        self.fit_times = {}
        start = time.perf_counter()

        # Label clusters: spherical k-means of [PIFA, label text] (smoothed
        # over the label graph in ECLARE).
        embedding = label_embedding(
            X[rows], Y[rows], method="pifa_text_concat", label_features=Z
        )
        if self.label_graph is not None:
            embedding = self.label_graph.fit(Y[rows], Z, seed).smooth(embedding)
        tree = hierarchical_kmeans(
            embedding, max_leaf_size=config.max_leaf_size, random_state=seed
        )
        cluster_of = tree.leaf_of_label()
        n_clusters = int(cluster_of.max()) + 1
        membership = _membership(cluster_of, n_clusters)
        cluster_features = normalize(membership.T @ normalize(Z)).astype(np.float32)
        start = self._stage_done("clustering", start, verbose)
        self._text_index = None
        text_candidates = None
        if (
            scoring.text_shortlist_size
            or scoring.text_weight
            or fusion_rows is not None
        ):
            self._text_index = LabelShortlist(method="exact").fit(Z)
        if scoring.text_shortlist_size:
            text_candidates = self._text_index.query(
                X, k=min(scoring.text_shortlist_size, Z.shape[0])
            )[1]
        start = self._stage_done("text_shortlist", start, verbose)
        Z = _keep_top_entries(Z, config.max_label_tokens)
        cluster_features = _keep_top_entries(cluster_features, config.max_label_tokens)
        Y_clusters = sp.csr_matrix(Y @ membership)
        Y_clusters.data[:] = 1.0

        self.cluster_of_label_ = cluster_of
        self.n_clusters_ = n_clusters
        self._table = torch.from_numpy(cluster_table(membership))
        self._ann = None
        with seeded_torch(seed, device):
            self.network_ = self._make_network(X.shape[1], Z, cluster_features)
            if token_embeddings is not None:
                self._set_token_embeddings(token_embeddings, X.shape[1])
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
                checkpoint=checkpoint,
                verbose=verbose,
            )
        start = self._stage_done("training", start, verbose)
        self._build_ann(seed)
        self._weights_cache = {device: self._all_weights()}
        weights = self._weights_cache[device]
        start = self._stage_done("label_weights", start, verbose)
        if config.reranker == "shortlist":
            from skxmc.indexing import ShortlistReranker

            _, candidates = self._predict_features(
                X[rows], scoring.rerank_size, device, weights
            )
            self.reranker_ = ShortlistReranker.train(
                X[rows], Y[rows], candidates, seed=seed
            )
        elif config.reranker == "xr-linear":
            from skxmc.indexing import XRLinearModel

            xr_tree = hierarchical_kmeans(
                embedding, branching_factor=16, max_leaf_size=100, random_state=seed
            )
            self.reranker_ = XRLinearModel.train(
                X[rows], Y[rows], xr_tree, beam_size=20, seed=seed
            )
        if self.reranker_ is not None:
            start = self._stage_done("reranker", start, verbose)
        docs = None
        if self.encoder is not None:
            # fine-tuned (if it is) on the network's rows: not the fusion's
            self.encoder.fit(
                label_texts, device=device, texts=[texts[i] for i in rows],
                Y=Y[rows], seed=seed, verbose=verbose,
            )  # fmt: skip
            docs = self.encoder.encode([texts[i] for i in fusion_rows], device=device)
            start = self._stage_done("encoder", start, verbose)
        if fusion_rows is not None:
            from skxmc.indexing import ScoreFusion

            features, candidates = self._pair_features(
                X[fusion_rows], device, weights, docs=docs
            )
            self.fusion_ = ScoreFusion(random_state=seed).fit(
                features, candidates, Y[fusion_rows]
            )
            self._stage_done("fusion", start, verbose)

    def _set_token_embeddings(self, token_embeddings, n_features: int) -> None:
        """Copy the initial token embeddings into the encoder's table (after
        the seeded random draws, so the other weights are the same)."""
        table = self.network_.encoder.embedding.weight
        values = np.asarray(token_embeddings, dtype=np.float32)
        if values.shape != tuple(table.shape):
            raise ValueError(
                f"token embeddings must have shape (n_features, embedding_dim) = "
                f"({n_features}, {table.shape[1]}), got {values.shape}."
            )
        if not np.isfinite(values).all():
            raise ValueError("token embeddings must be finite.")
        with torch.no_grad():
            table.copy_(torch.from_numpy(values))

    def _stage_done(self, stage: str, start: float, verbose: int) -> float:
        """Record (and with ``verbose`` log) a fit stage's seconds."""
        now = time.perf_counter()
        self.fit_times[stage] = now - start
        name = "ECLARE" if self.label_graph is not None else "DECAF"
        log(f"{name} fit stage {stage}: {now - start:.1f} s", verbose=verbose)
        return now

    def _make_network(self, n_features, label_features, cluster_features):
        """The network (built inside the seeded context of :meth:`train`).

        With a label graph, DECAF's label classifier is built and then
        replaced by the graph one, so the weights drawn before it are DECAF's.
        """
        network = DecafNetwork(
            n_features,
            label_features,
            cluster_features,
            embedding_dim=self.config.embedding_dim,
            dropout=self.config.dropout,
        )
        if self.label_graph is not None:
            network.labels = self.label_graph.label_classifier(
                network.encoder.embedding, label_features, dropout=self.config.dropout
            )
        return network

    def _train(
        self,
        X,
        Y,
        Y_clusters,
        rows,
        val_rows,
        text_candidates,
        *,
        seed,
        device,
        checkpoint,
        verbose,
    ):
        """The surrogate stage (clusters), then the extreme stage (clusters
        and shortlisted labels), each a :class:`~skxmc.training.Trainer` fit."""
        config = self.config
        net = self.network_
        table = self._table.to(device)
        beam = min(config.scoring.beam_size, self.n_clusters_)

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

        payload = None if checkpoint is None else checkpoint.load()
        start_stage = 0 if payload is None else int(payload["stage"])
        self.loss_curve_ = [] if payload is None else list(payload["loss_curve"])
        name = "ECLARE" if self.label_graph is not None else "DECAF"
        n_epochs = config.n_epochs
        stages = [("surrogate", surrogate_loss), ("extreme", extreme_loss)]
        for stage, (stage_name, loss_fn) in enumerate(stages):
            if stage < start_stage:
                continue
            resuming = payload is not None and stage == start_stage
            if stage == 1 and not resuming:
                net.labels.init_free_vectors()

            def make_batches(epoch, stage=stage):
                generator = torch.Generator().manual_seed(
                    seed + 7919 * stage + 104729 * epoch
                )
                return [
                    rows[b]
                    for b in minibatches(len(rows), config.batch_size, generator)
                ]

            use_validation = stage == 1 and val_rows is not None
            trainer = Trainer(
                net,
                learning_rate=config.learning_rate,
                schedule="step",
                decay_epochs=(n_epochs // 2,) if n_epochs >= 4 else (),
                decay_factor=0.5,
                mixed_precision=False,
                score_fn=score_fn if use_validation else None,
                n_iter_no_change=config.n_iter_no_change,
                device=device,
                verbose=verbose,
                desc=f"{name} {stage_name}",
            )
            if resuming:
                steps = max(1, len(make_batches(0)))
                trainer.load_state_dict(
                    payload["trainer"], n_steps=n_epochs * steps, steps_per_epoch=steps
                )

            def on_epoch_end(trainer, stage=stage):
                self.loss_curve_.append(trainer.state.history[-1]["loss"])
                if checkpoint is not None:
                    checkpoint.save(
                        {
                            "stage": stage,
                            "trainer": trainer.state_dict(),
                            "loss_curve": list(self.loss_curve_),
                        },
                        seed=seed,
                    )

            trainer.fit(
                loss_fn, make_batches, n_epochs=n_epochs, on_epoch_end=on_epoch_end
            )
        net.eval()
        self.n_iter_ = len(self.loss_curve_)

    def _build_ann(self, seed):
        self._ann = None
        if self.config.scoring.ann_shortlist_size == 0:
            return
        with torch.inference_mode():
            W, _ = self.network_.labels.all_weights()
        self._ann = LabelShortlist(method="ann", random_state=seed).fit(
            W.float().cpu().numpy()
        )

    # ------------------------------------------------------------- devices
    @property
    def device(self) -> torch.device:
        """The device the network is on."""
        return next(self.network_.parameters()).device

    def _weights(self, device: torch.device):
        """``(W, b, W_clusters, b_clusters)`` on ``device``, cached per device.

        Moves the network to ``device`` if it is elsewhere (it then stays
        there); the label weights of a device are computed once.
        """
        device = torch.device(device)
        if self.device != device:
            self.network_.to(device)
        cache = self._weights_cache.get(device)
        if cache is None:
            cache = self._weights_cache[device] = self._all_weights()
        return cache

    def _all_weights(self):
        """``(W, b, W_clusters, b_clusters)`` of the fitted model."""
        self.network_.eval()
        with torch.inference_mode():
            return (
                *self.network_.labels.all_weights(),
                *self.network_.clusters.all_weights(),
            )

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_weights_cache"] = {}  # device copies, rebuilt on demand
        state.pop("_tilt_cache", None)
        return state

    # ----------------------------------------------------------- predict
    def predict_topk(
        self,
        X,
        k: int,
        *,
        scoring: DecafScoring | None = None,
        device=None,
        texts=None,
    ):
        """The ``k`` best labels of every row, best first.

        Parameters
        ----------
        X : sparse matrix of shape (n_samples, n_features)
            Documents, in the feature space of training.
        k : int
            Labels per row.
        scoring : DecafScoring or None, default=None
            Shortlists and scores; None: those of training.
        device : str, torch.device or None, default=None
            Where to compute (the network moves there and stays); None: the
            network's device.
        texts : sequence of str, default=None
            The documents' texts (required with an encoder component).

        Returns
        -------
        scores : ndarray of shape (n_samples, k), dtype float32
            ``-inf`` padded.
        indices : ndarray of shape (n_samples, k), dtype int64
            ``-1`` padded.
        """
        device = self.device if device is None else torch.device(device)
        weights = self._weights(device)
        X = _readonly_float32_csr(X)  # only read (a new CSR object: ~20 us)
        with torch_threads(1 if _few_rows(X.shape[0]) else None):
            # (a single text's encoder pass too: on busy cores two intra-op
            # threads made it ~10x slower, 290 vs 31 ms for MiniLM)
            docs = self._encoded(texts, X.shape[0], device)
            return self._predict_features(X, k, device, weights, scoring, docs)

    def _encoded(self, texts, n_rows: int, device):
        """The encoder component's embeddings of ``texts`` (None without one)."""
        if self.encoder is None:
            return None
        if texts is None or len(texts) != n_rows:
            raise ValueError(
                "This model has a pretrained encoder: pass the text of every "
                f"document ({n_rows} rows, got "
                f"{'none' if texts is None else len(texts)})."
            )
        return self.encoder.encode(texts, device=device)

    def _predict_features(self, X, k, device, weights=None, scoring=None, docs=None):
        scoring = self.config.scoring if scoring is None else scoring
        n = X.shape[0]
        out_scores = np.full((n, k), -np.inf, dtype=np.float32)
        out_ids = np.full((n, k), -1, dtype=np.int64)
        # the fitted fusion (not the ``fusion`` parameter) decides what scores
        with_text = bool(scoring.text_weight) or self.fusion_ is not None
        for start, stop, shortlist, parts in self._scored_shortlists(
            X, device, weights, scoring=scoring, with_text=with_text, docs=docs
        ):
            scores = self._final_scores(shortlist, parts, scoring, k=k)
            m = min(k, shortlist.shape[1])
            # torch's top k (its order of ties), on the host arrays
            s, pos = torch.topk(torch.from_numpy(scores), m, dim=1)
            s = s.numpy()
            ids = np.take_along_axis(shortlist, pos.numpy(), axis=1)
            out_scores[start:stop, :m] = s
            out_ids[start:stop, :m] = np.where(np.isfinite(s), ids, -1)
        return out_scores, out_ids

    def _scored_shortlists(
        self,
        X,
        device,
        weights=None,
        block_size=256,
        *,
        scoring,
        with_text=False,
        docs=None,
    ):
        """Shortlist every block of rows and score its pairs.

        Yields ``(start, stop, shortlist, parts)``: ``shortlist`` the label
        ids of the rows ``start:stop`` (an int64 array, ``-1`` pads), ``parts``
        a dict of float32 arrays of the same shape, on the host (the network
        runs on ``device``; the sparse stages and the fusion on the host, so
        a small query does not pay torch's per-operation cost for gathers):
        ``"label"`` (sigmoid of the label score),
        ``"cluster"`` (sigmoid of its cluster's score) and ``"text"`` (TF-IDF
        cosine of document and label text; None unless ``with_text``), plus
        ``"rerank"`` with a fitted re-ranker and, with ``with_text``, the
        parts of :meth:`_extra_parts` (ECLARE's ``"graph"``); with ``docs``
        (the rows' embeddings by the encoder component), the encoder's
        candidates and the parts of its ``fusion_parts``. (Without ``docs``
        the encoder takes no part: the network's validation during training,
        before the encoder is fitted.)
        """
        net = self.network_
        was_training = net.training
        if was_training:  # eval()/train() walk every submodule: not per query
            net.eval()
        table = self._table.numpy()
        cluster_of = self.cluster_of_label_
        beam = min(scoring.beam_size, self.n_clusters_)
        try:
            with torch.inference_mode():
                if weights is None:
                    weights = (*net.labels.all_weights(), *net.clusters.all_weights())
                W, b, Wc, bc = weights
                for start in range(0, X.shape[0], block_size):
                    stop = min(start + block_size, X.shape[0])
                    X_block = _row_block(X, start, stop)
                    # a few rows: the sparse stages run beside the network
                    side = _few_rows(stop - start)
                    # the L2-normalised rows, once for the text shortlist and
                    # the text cosines (sorted indices: both read them as is)
                    unit = None
                    if (with_text or scoring.text_shortlist_size) and (
                        X_block.has_canonical_format
                    ):
                        unit = l2_normalize_csr(X_block)
                    # one task for the helper thread (one hand-over, not two)
                    sparse_ids = run_aside(
                        self._sparse_candidates, X_block, unit, scoring, enabled=side
                    )
                    x = net(*csr_to_bag(X_block, device))
                    meta = torch.sigmoid(x @ Wc.T + bc)
                    top = torch.topk(meta, beam, dim=1).indices.cpu().numpy()
                    meta = meta.float().cpu().numpy()
                    ids = table[top].reshape(stop - start, -1)
                    extra = []
                    if self.label_graph is not None and scoring.graph_shortlist_size:
                        # (ECLARE) not computed for nothing in DECAF's queries
                        extra = self._extra_candidates(
                            ids,
                            np.take_along_axis(
                                meta, cluster_of[np.maximum(ids, 0)], axis=1
                            ),
                            scoring,
                        )
                    if docs is not None and scoring.encoder_shortlist_size:
                        extra.append(
                            self.encoder.candidates(
                                docs[start:stop], scoring.encoder_shortlist_size
                            )
                        )
                    sparse = sparse_ids.result()
                    extra.extend(sparse.candidates)
                    if self._ann is not None:
                        _, near = self._ann.query(
                            x.float().cpu().numpy(),
                            k=min(scoring.ann_shortlist_size, self.n_labels_),
                        )
                        extra.append(near)
                    if extra:
                        ids = dedup_rows(np.concatenate([ids, *extra], 1))
                    text = None
                    if with_text and sparse.text_similarity is None:
                        # on the helper while the network's and the
                        # re-ranker's pair scores are computed here
                        if unit is None:
                            unit = l2_normalize_csr(X_block)
                        text = run_aside(self._text_parts, unit, ids, enabled=side)
                    label = score_pairs(x, torch.from_numpy(ids).to(device), W, b)
                    parts = {
                        "label": torch.sigmoid(label).float().cpu().numpy(),
                        "cluster": np.take_along_axis(
                            meta, cluster_of[np.maximum(ids, 0)], axis=1
                        ),
                        "text": None,
                    }
                    if self.reranker_ is not None:
                        parts["rerank"] = self._rerank_scores(
                            X_block, ids, sparse.rerank_pairs
                        )
                    if text is not None:
                        parts.update(text.result())
                    elif with_text:  # looked up in the text shortlist's sums
                        parts.update(
                            self._text_parts(unit, ids, sparse.text_similarity)
                        )
                    if docs is not None:
                        parts.update(self.encoder.fusion_parts(ids, docs[start:stop]))
                    yield start, stop, ids, parts
        finally:
            if was_training:
                net.train()

    def _pair_features(self, X, device, weights=None, scoring=None, docs=None):
        """Features of the shortlisted pairs for :class:`ScoreFusion`.

        Returns ``(features, candidates)`` of shapes ``(n, m, f)`` and
        ``(n, m)``: label score, cluster score, label-text cosine,
        ``log(1 + training count)`` of the label and, with the re-ranker, its
        score.
        """
        scoring = self.config.scoring if scoring is None else scoring
        blocks = [
            (ids, self._fusion_inputs(ids, parts))
            for _, _, ids, parts in self._scored_shortlists(
                X, device, weights, scoring=scoring, with_text=True, docs=docs
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

    def _extra_candidates(self, shortlist, cluster_scores, scoring) -> list:
        """Labels to add to the cluster shortlist at prediction.

        ``shortlist`` holds the label ids of the best clusters, shape
        ``(n_rows, n_shortlist)``, and ``cluster_scores`` the score of each
        one's cluster; returns a list of ``(n_rows, m)`` label-id arrays: the
        graph neighbours of the shortlist in ECLARE, none in DECAF.
        """
        if self.label_graph is None or not scoring.graph_shortlist_size:
            return []
        return [
            self.label_graph.candidates(
                shortlist, cluster_scores, scoring.graph_shortlist_size
            )
        ]

    def _extra_parts(self, ids, parts) -> dict:
        """More per-pair scores for the learned fusion (ECLARE's graph score).

        Gets a block's shortlisted label ids (a NumPy array, ``-1`` pads) and
        its ``parts`` (see _scored_shortlists); returns a dict of float32
        arrays of the shortlist's shape.
        """
        if self.label_graph is None:
            return {}
        return self.label_graph.fusion_parts(ids, parts)

    def _fusion_inputs(self, ids, parts) -> np.ndarray:
        """The ``(b, m, f)`` fusion features of a block (see _pair_features)."""
        frequency = self._log_frequency[np.maximum(ids, 0)]
        names = ["label", "cluster", "text"]
        columns = [np.asarray(parts[name], dtype=np.float32) for name in names]
        columns.append(frequency)
        if "rerank" in parts:
            columns.append(np.asarray(parts["rerank"], dtype=np.float32))
        for name in sorted(set(parts) - {"label", "cluster", "text", "rerank"}):
            columns.append(np.asarray(parts[name], dtype=np.float32))
        features = np.stack(columns, axis=-1)
        features[ids < 0] = 0.0
        return features.astype(np.float32)

    def _final_scores(self, shortlist, parts, scoring, k=None):
        """Prediction scores of shortlisted labels (``-inf`` on padding).

        ``k``: for a caller that keeps each row's ``k`` best only; a learned
        fusion then skips the pairs that cannot be among them, which get
        ``-inf`` (see :meth:`ScoreFusion.predict
        <skxmc.indexing.ScoreFusion.predict>`).
        """
        valid = shortlist >= 0
        tilt = None
        if scoring.propensity_tilt:
            factors = self._tilt_factors(scoring.propensity_tilt)
            tilt = factors[np.maximum(shortlist, 0)]
        if self.fusion_ is not None:
            scores = self.fusion_.predict(
                self._fusion_inputs(shortlist, parts), shortlist, k=k, factors=tilt
            )
        else:
            label_weight = 1 - scoring.meta_weight - scoring.text_weight
            scores = (
                label_weight * parts["label"] + scoring.meta_weight * parts["cluster"]
            )
            if scoring.text_weight:
                scores = scores + scoring.text_weight * parts["text"]
        if tilt is not None:
            scores = scores * tilt
        return np.where(valid, scores, np.float32(-np.inf)).astype(
            np.float32, copy=False
        )

    def _tilt_factors(self, tilt: float) -> np.ndarray:
        """``(w_l / max w)^tilt`` of every label, a float32 array, computed
        once per tilt and label set (a power of every label's weight per query
        costs ~0.3 ms)."""
        cached = self.__dict__.get("_tilt_cache")
        if cached is None or cached[0] != tilt or cached[1] is not self._inv_propensity:
            weights = self._inv_propensity / self._inv_propensity.max()
            factors = (weights**tilt).astype(np.float32)
            cached = self._tilt_cache = (tilt, self._inv_propensity, factors)
        return cached[2]

    @property
    def _reranker_proposes(self) -> bool:
        """Whether the fitted re-ranker adds its own best labels to shortlists
        (an XR-Linear ranker does; a shortlist re-ranker only rescores)."""
        from skxmc.indexing import XRLinearModel

        return isinstance(self.reranker_, XRLinearModel)

    def _text_parts(self, unit, ids, similarity=None) -> dict:
        """``{"text": ...}`` (the TF-IDF cosine of each row of ``unit``, the
        L2-normalised documents, with the text of each of its labels
        ``ids``) and the parts of :meth:`_extra_parts` that read it.

        ``similarity``: the float64 cosines of ``unit`` with every label that
        the text shortlist summed (:meth:`_text_shortlist`); the cosines of
        ``ids`` are then looked up, rounded as :func:`sparse_pair_scores`
        rounds its float64 sums (the same values)."""
        if similarity is None:
            text = sparse_pair_scores(unit, self._text_index.labels_, ids)
        else:
            safe = np.maximum(ids, 0)
            text = np.take_along_axis(similarity, safe, axis=1).astype(np.float32)
            text[ids < 0] = 0.0
        parts = {"text": text}
        parts.update(self._extra_parts(ids, parts))
        return parts

    def _sparse_candidates(self, X, unit, scoring) -> _SparseStages:
        """The helper thread's stages of a block (see :class:`_SparseStages`):
        the text shortlist and the re-ranker's proposals, those that apply."""
        candidates = []
        pair_scorer = similarity = None
        if scoring.text_shortlist_size:
            ids, similarity = self._text_shortlist(X, unit, scoring)
            candidates.append(ids)
        if self._reranker_proposes:
            ids, pair_scorer = self._rerank_proposals(X, scoring)
            candidates.append(ids)
        return _SparseStages(candidates, pair_scorer, similarity)

    def _text_shortlist(self, X, unit, scoring):
        """Ids of the labels of highest label-text cosine (the top of the
        text similarity, without forming it); ``unit``: the L2-normalised
        rows of ``X`` if the caller has them (else None). For a few rows of
        ``unit``, also the cosines of every label, summed in the same pass
        (for :meth:`_text_parts`; else None)."""
        k = min(scoring.text_shortlist_size, self.n_labels_)
        if unit is None:
            return self._text_index.similarity_topk(X, k)[1], None
        if not _few_rows(unit.shape[0]):
            return self._text_index.similarity_topk(unit, k, normalized=True)[1], None
        _, ids, similarity = self._text_index.similarity_topk(
            unit, k, normalized=True, return_similarity=True
        )
        return ids, similarity

    def _rerank_proposals(self, X, scoring):
        """Ids of the XR-Linear re-ranker's ``rerank_size`` best labels, and
        its pair scorer of ``X`` (a single query's search keeps every node's
        score, so the pair scores of the shortlist need no second pass over
        the re-ranker's weights)."""
        k = min(scoring.rerank_size, self.n_labels_)
        _, ids, pair_scorer = self.reranker_.predict_topk(
            X, k=k, return_pair_scorer=True
        )
        return ids, pair_scorer

    def _rerank_scores(self, X, ids, pair_scorer=None) -> np.ndarray:
        """The re-ranker's score of the pairs ``(i, ids[i, j])`` (fusion feature).

        Labels added after the fit (``add_labels``) have no model in the
        re-ranker: they get its lowest score of the row (0 for an XR-Linear
        ranker, whose scores are products of probabilities; the row's lowest
        raw score for a shortlist re-ranker), i.e. "no support from the
        sparse model", and the fusion relies on their other features (their
        text above all)."""
        ids = np.asarray(ids)
        unknown = ids >= self.reranker_.n_labels
        known = np.where(unknown, -1, ids) if unknown.any() else ids
        if self._reranker_proposes:  # 0 on -1 slots
            if pair_scorer is not None:  # from the proposals' search of X
                return pair_scorer(known)
            return self.reranker_.score_pairs(X, known)
        scores = self.reranker_.score(X, known, raw=True)
        if unknown.any():
            finite = np.where(np.isfinite(scores), scores, np.inf)
            row_min = finite.min(axis=1, keepdims=True)
            row_min = np.where(np.isfinite(row_min), row_min, 0.0)
            scores = np.where(unknown, row_min, scores).astype(np.float32)
        return scores

    def _text_similarity(self, X) -> sp.csr_matrix:
        """Cosine of the TF-IDF of documents and label texts (sparse)."""
        return sp.csr_matrix(self._text_index.similarity(X))

    def full_scores(
        self, X, *, scoring: DecafScoring | None = None, texts=None
    ) -> np.ndarray:
        """Prediction scores of every label (dense; for tests on tiny data).

        Parameters
        ----------
        X : sparse matrix of shape (n_samples, n_features)
            Documents.
        scoring : DecafScoring or None, default=None
            Score weights and tilt; None: those of training.
        texts : sequence of str, default=None
            The documents' texts (required with an encoder component).

        Returns
        -------
        scores : ndarray of shape (n_samples, n_labels)
            The prediction score of every label.
        """
        scoring = self.config.scoring if scoring is None else scoring
        X = sp.csr_matrix(X, dtype=np.float32)
        docs = self._encoded(texts, X.shape[0], self.device)
        net = self.network_
        device = self.device
        net.eval()
        with torch.inference_mode():
            x = net(*csr_to_bag(X, device))
            W, b = net.labels.all_weights()
            Wc, bc = net.clusters.all_weights()
            meta = torch.sigmoid(x @ Wc.T + bc).float().cpu().numpy()
            ids = np.broadcast_to(np.arange(W.shape[0]), (X.shape[0], W.shape[0]))
            ids = np.ascontiguousarray(ids)
            label = score_pairs(x, torch.from_numpy(ids).to(device), W, b)
            parts = {
                "label": torch.sigmoid(label).float().cpu().numpy(),
                "cluster": meta[:, self.cluster_of_label_],  # every label
                "text": None,
            }
            if self._text_index is not None:
                text = self._text_similarity(X).toarray()
                parts["text"] = np.asarray(text, dtype=np.float32)
            if self.reranker_ is not None:
                parts["rerank"] = self._rerank_scores(X, ids)
            if self._text_index is not None:
                parts.update(self._extra_parts(ids, parts))
            if docs is not None:
                parts.update(self.encoder.fusion_parts(ids, docs))
            return self._final_scores(ids, parts, scoring)

    # ----------------------------------------------------------- zero-shot
    def add_labels(self, label_features, label_texts=None) -> np.ndarray:
        """Add labels known only by their features, without retraining.

        A new label's weight vector is computed from its features alone (its
        free vector ``eta`` is set to the embedding of its text, as for
        trained labels before training; its bias is the median trained bias)
        and it joins the cluster that the meta-classifier ranks first for its
        features read as a document. In ECLARE's label graph it gets a
        self-loop only.

        Parameters
        ----------
        label_features : sparse matrix of shape (n_new_labels, n_features)
            Features of the new labels, in the feature space of training.
        label_texts : sequence of str, default=None
            Their texts (required with an encoder component, which encodes
            them; a new label has no centroid).

        Returns
        -------
        ids : ndarray of int64
            The ids of the new labels.
        """
        Z = sp.csr_matrix(label_features, dtype=np.float32)
        if self.encoder is not None:
            if label_texts is None or len(label_texts) != Z.shape[0]:
                raise ValueError(
                    "This model has a pretrained encoder: pass the text of "
                    "every new label."
                )
            self.encoder.add_labels(label_texts, device=self.device)
        if self._text_index is not None:
            self._text_index = LabelShortlist(method="exact").fit(
                sp.vstack([self._text_index.labels_, Z], format="csr")
            )
        Z_document = Z
        Z = _keep_top_entries(Z, self.config.max_label_tokens)
        n_new = Z.shape[0]
        head = self.network_.labels
        device = self.device
        self.network_.eval()
        with torch.inference_mode():
            # route each label text like a document: its best-scoring cluster
            x = self.network_(*csr_to_bag(Z_document, device))
            Wc, bc = self.network_.clusters.all_weights()
            nearest = torch.argmax(x @ Wc.T + bc, dim=1).cpu().numpy()
        self._weights_cache = {}
        with torch.no_grad():
            head.extend(Z)
        if self.label_graph is not None:
            self.label_graph.extend(head)
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
        ids = np.arange(self.n_labels_, self.n_labels_ + n_new)
        self.n_labels_ += n_new
        self._weights_cache = {device: self._all_weights()}
        if self._ann is not None:
            self._build_ann(0)
        return ids


class _SparseStages(NamedTuple):
    """What the helper thread computes for a block of rows beside the network.

    ``candidates``: label-id arrays to add to the shortlist (the text
    shortlist's, the re-ranker's proposals); ``rerank_pairs``: the
    re-ranker's pair scorer of the rows (None without proposals);
    ``text_similarity``: every label's float64 text cosine (a few rows with
    a text shortlist; else None).
    """

    candidates: list
    rerank_pairs: object
    text_similarity: np.ndarray | None


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
    from skxmc.utils import topk_to_csr

    scores, indices = csr_row_topk(Z, n)
    return normalize(topk_to_csr(scores, indices, Z.shape[1])).astype(np.float32)


#: Rows up to which prediction runs torch on one thread (see torch_threads)
#: and the sparse stages on a helper thread beside it (see run_aside).
_FEW_ROWS = 16


def _few_rows(n_rows: int) -> bool:
    """Whether a prediction is small (see ``_FEW_ROWS``)."""
    return n_rows <= _FEW_ROWS


def _row_block(X, start: int, stop: int):
    """Rows ``start:stop`` of the CSR ``X``: ``X`` itself when that is all of
    it (slicing copies, ~50 us of a single query)."""
    if start == 0 and stop == X.shape[0]:
        return X
    return X[start:stop]
