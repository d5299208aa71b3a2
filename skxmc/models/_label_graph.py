"""ECLARE's label graph as a component of the DECAF engine."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from skxmc.indexing import label_correlation_graph, propagate_topk, smooth_over_graph

__all__ = ["LabelGraphComponent"]


class LabelGraphComponent:
    """A label correlation graph and the four places it enters a DecafModel.

    ECLARE (Mittal et al., WWW 2021) is DECAF plus a label graph ``G``: built
    from random walks with restart on the label-document training graph
    (:func:`~skxmc.indexing.label_correlation_graph`), or given. Handed to
    :meth:`DecafModel.train <skxmc.models.DecafModel.train>`, it acts on:

    - clustering (:meth:`smooth`): the label embeddings are smoothed by
      ``G`` before the balanced k-means, so correlated labels share clusters;
    - label representations (:meth:`label_classifier`): the network's label
      classifier is a :class:`~skxmc.nn._graph.GraphLabelClassifier`, which
      mixes each label's text, its neighbours' graph-smoothed text and a free
      vector with a learned attention;
    - shortlists (:meth:`candidates`): the cluster scores of the shortlisted
      labels are propagated through ``G`` and the best neighbours join the
      shortlist;
    - the learned fusion (:meth:`fusion_parts`): each pair's graph score, the
      label-text cosines of the row's shortlist propagated one step through
      ``G``.

    Parameters
    ----------
    graph : sparse matrix of shape (n_labels, n_labels), default=None
        A given label graph (row ``l`` holds the weighted neighbours of
        ``l``); None builds one from the training labels in :meth:`fit`.
    walk_length : int, default=400
        Hops of each random walk building the graph.
    restart_prob : float, default=0.8
        Restart probability of the walks.
    n_neighbors : int, default=10
        Neighbours kept per label in the graph.
    max_label_frequency : int or None, default=500
        Labels with more positive documents do not walk (self-loop only).

    Attributes
    ----------
    graph : csr_matrix of shape (n_labels, n_labels) or None
        The label graph (after :meth:`fit`, or the given one).
    given : csr_matrix or None
        The graph given at construction (part of a fit's fingerprint).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from skxmc.models import LabelGraphComponent
    >>> component = LabelGraphComponent(sp.eye(3)).fit(sp.eye(3), sp.eye(3), seed=0)
    >>> component.graph.shape
    (3, 3)
    """

    def __init__(
        self,
        graph=None,
        *,
        walk_length: int = 400,
        restart_prob: float = 0.8,
        n_neighbors: int = 10,
        max_label_frequency: int | None = 500,
    ):
        self.given = None if graph is None else sp.csr_matrix(graph, dtype=np.float32)
        self.walk_length = walk_length
        self.restart_prob = restart_prob
        self.n_neighbors = n_neighbors
        self.max_label_frequency = max_label_frequency
        self.graph = self.given
        self._transposed = None

    def fit(self, Y, label_features, seed: int) -> LabelGraphComponent:
        """Build the graph from the training labels (unless one was given).

        Parameters
        ----------
        Y : sparse matrix of shape (n_samples, n_labels)
            Training labels.
        label_features : sparse matrix of shape (n_labels, n_features)
            Label features (the walks avoid distant labels).
        seed : int
            Seed of the walks.

        Returns
        -------
        self : LabelGraphComponent
            With :attr:`graph` set.
        """
        if self.given is not None:
            self.graph = self.given
        else:
            self.graph = label_correlation_graph(
                Y,
                walk_length=self.walk_length,
                restart_prob=self.restart_prob,
                n_neighbors=self.n_neighbors,
                max_label_frequency=self.max_label_frequency,
                label_features=label_features,
                random_state=seed,
            )
        self._transposed = None
        return self

    def smooth(self, embedding) -> sp.csr_matrix:
        """The clustering embedding of the labels, smoothed over the graph."""
        return smooth_over_graph(embedding, self.graph)

    def label_classifier(self, embedding, label_features, *, dropout: float):
        """The network's label classifier: text, graph-smoothed text, free vector.

        Parameters
        ----------
        embedding : torch.nn.EmbeddingBag
            The token embeddings shared with the document encoder.
        label_features : sparse matrix of shape (n_labels, n_features)
            Label features.
        dropout : float
            Dropout inside the residual blocks.

        Returns
        -------
        classifier : GraphLabelClassifier
            A new module over ``embedding`` and the graph.
        """
        from skxmc.nn._graph import GraphLabelClassifier

        return GraphLabelClassifier(
            embedding, label_features, self.graph, dropout=dropout
        )

    def candidates(self, shortlist, cluster_scores, size: int) -> np.ndarray:
        """The graph neighbours of the shortlisted labels, best first.

        Parameters
        ----------
        shortlist : ndarray of shape (n_rows, n_shortlist)
            Label ids of the best clusters, ``-1`` padded.
        cluster_scores : ndarray of shape (n_rows, n_shortlist)
            The score of each one's cluster.
        size : int
            Labels returned per row (at most the number of labels).

        Returns
        -------
        ids : ndarray of shape (n_rows, min(size, n_labels))
            Label ids, ``-1`` padded.
        """
        size = min(size, self.graph.shape[0])
        return propagate_topk(cluster_scores, shortlist, self.graph, size)[1]

    def fusion_parts(self, ids, parts) -> dict:
        """The graph score of every shortlisted label, a learned-fusion input.

        ``sum_j G[j, l] * text_score(j)`` over the row's shortlisted labels
        ``j``: how well the texts of the labels that point to ``l`` in the
        label graph match the document (ECLARE's graph-convolved label text,
        restricted to the shortlist). It lifts rare labels whose correlated
        labels match the text: on LF-DebianPackages PSP@1 +0.8 at the same
        P@1 (propagating the network's label score instead cost 0.4).

        Parameters
        ----------
        ids : ndarray of shape (n_rows, n_shortlist)
            A block's shortlisted label ids, ``-1`` padded.
        parts : dict of arrays
            The block's per-pair scores; reads ``parts["text"]``.

        Returns
        -------
        parts : dict
            ``{"graph": array}``: float32, of the shortlist's shape.
        """
        from skxmc.utils._sparse import shortlist_pair_scores

        scores = np.asarray(parts["text"], dtype=np.float32)
        if self._transposed is None:
            self._transposed = self.graph.T.tocsr()
        # sparse_pair_scores(S, G^T, ids) of the row-wise sparse S holding the
        # text scores at the (distinct) shortlisted ids, without building S
        return {"graph": shortlist_pair_scores(ids, scores, self._transposed)}

    def extend(self, label_classifier) -> None:
        """Take the graph grown by ``label_classifier.extend`` (zero-shot labels
        get a self-loop only)."""
        self.graph = label_classifier.graph()
        self._transposed = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_transposed"] = None  # a cache, rebuilt on demand
        return state
