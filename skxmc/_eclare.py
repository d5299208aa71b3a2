"""EclareClassifier: ECLARE (Mittal et al., WWW 2021) as a scikit-learn estimator.

ECLARE is DECAF's engine (:class:`skxmc.models.DecafModel`) with a
:class:`skxmc.models.LabelGraphComponent`: this module declares the
parameters and hands the component to the engine; everything else is shared
with :class:`~skxmc.DecafClassifier`.
"""

from __future__ import annotations

from numbers import Integral, Real

from sklearn.utils._param_validation import Interval

from skxmc._decaf import DecafClassifier, _BaseDecaf

__all__ = ["EclareClassifier"]


class EclareClassifier(_BaseDecaf):
    """ECLARE: DECAF plus a label correlation graph.

    Everything of :class:`~skxmc.DecafClassifier`, and a label graph ``G``
    built from random walks with restart on the label-document training graph
    (:func:`skxmc.indexing.label_correlation_graph`) or given by the user as
    ``LabelInfo(graph=G)``. The graph enters in three places:

    - label representations: each label mixes its own text embedding, the
      graph-smoothed text embedding of its neighbours and a free vector with
      a learned attention (:class:`skxmc.nn._graph.GraphLabelClassifier`);
    - clustering: the label embeddings are smoothed by ``G`` before the
      balanced k-means, so correlated labels share clusters;
    - prediction: the cluster shortlist is widened with the graph neighbours
      of its labels (``graph_shortlist_size`` of them per document).

    Parameters
    ----------
    embedding_dim : int, default=300
        Size of the token embeddings, document and label vectors.
    n_epochs : int, default=5
        Epochs of each of the two training stages (sized for a CPU, see
        :class:`~skxmc.DecafClassifier`).
    batch_size : int, default=256
        Documents per mini-batch.
    learning_rate : float, default=0.01
        Learning rate of Adam and SparseAdam.
    dropout : float, default=0.2
        Dropout of the residual blocks and of the document vectors.
    max_leaf_size : int, default=8
        Maximum number of labels per cluster.
    beam_size : int, default=32
        Clusters whose labels are shortlisted for each document.
    text_shortlist_size : int, default=0
        Labels added to the shortlist by TF-IDF text similarity (see
        :class:`~skxmc.DecafClassifier`).
    ann_shortlist_size : int, default=0
        Labels added to the shortlist at prediction by nearest label vectors.
    graph_shortlist_size : int, default=32
        Labels added to the shortlist at prediction by propagating the
        cluster scores of the shortlist through the label graph.
    meta_weight : float, default=0.5
        Weight of the cluster score in the prediction score.
    text_weight : float, default=0.0
        Weight of the document-to-label-text TF-IDF cosine in the prediction
        score.
    fusion : {"weights", "learned"}, default="learned"
        Weighted sum of the scores, or a gradient-boosted fusion learned on
        held-out rows (see :class:`~skxmc.DecafClassifier`; ``"weights"``
        needs ``reranker=None``). ECLARE's learned
        fusion also reads each pair's graph score: the label-text cosines of
        the row's shortlist propagated one step through the label graph.
    fusion_fraction : float, default=0.1
        Share of the training rows held out for ``fusion="learned"``.
    reranker : {None, "shortlist", "xr-linear"}, default="xr-linear"
        Sparse linear re-ranker whose scores are one more fusion feature (see
        :class:`~skxmc.DecafClassifier`).
    rerank_size : int, default=100
        Labels per training row that train the ``"shortlist"`` re-ranker, or
        labels the ``"xr-linear"`` ranker adds to every shortlist.
    propensity_tilt : float, default=0.0
        Exponent of the inverse-propensity factor that moves rare labels up
        (see :class:`~skxmc.DecafClassifier`).
    walk_length : int, default=400
        Hops of each random walk building the graph.
    restart_prob : float, default=0.8
        Restart probability of the walks.
    n_neighbors : int, default=10
        Neighbours kept per label in the graph.
    max_label_frequency : int or None, default=500
        Labels with more positive documents do not walk (self-loop only).
    max_features : int, default=None
        Vocabulary size of the internal TF-IDF vectorizer (raw-text input).
    token_init : None, str, path-like or array-like, default=None
        Initial token embeddings of the bag-of-words encoder, which the
        label-text classifiers share. None: random. A local
        transformers / sentence-transformers folder (e.g. the packaged
        all-MiniLM-L6-v2): every term of the internal TF-IDF vocabulary is
        encoded alone by that frozen encoder, reduced to ``embedding_dim`` by
        PCA and scaled to unit norm (a model2vec-style distillation,
        :func:`~skxmc.nn.static_term_embeddings`), so the model
        starts from the encoder's semantics at bag-of-words cost; needs raw
        text input. An array of shape (n_features, embedding_dim): those
        vectors (numeric input: one row per feature column).
    vectorizer : object, default=None
        An unfitted scikit-learn text vectorizer (cloned at fit) that turns
        raw-text documents and label texts into the features of the network;
        None: ``TfidfVectorizer(sublinear_tf=True, max_features=max_features)``.
        For example the benchmarks' 1-2-gram TF-IDF. A ``max_features`` cut
        breaks ties between equal counts alphabetically
        (:func:`~skxmc.utils.fit_stable_vocabulary`), so the vocabulary does
        not depend on the machine.
    encoder : None, str or path-like, default=None
        A local transformers / sentence-transformers folder (e.g. the
        packaged all-MiniLM-L6-v2) whose frozen sentence embeddings work
        beside the bag-of-words network
        (:class:`~skxmc.models.EncoderComponent`): the
        ``encoder_shortlist_size`` labels of highest cosine between document
        and label text join every shortlist, and that cosine is one more
        feature of the learned fusion. The encoder is not trained: label
        texts are encoded once per fit (and the fusion's held-out rows),
        query documents at prediction (a forward pass per query: the
        single-query latency grows by the encoder's). Needs raw text input,
        label text and ``fusion="learned"``. Measured on LF-DebianPackages
        and LF-FOLDOC in ``benchmarks/results/decaf_encoder_cpu.txt``.
    pooling : {"auto", "cls", "mean"}, default="auto"
        Pooling of the encoder's last hidden states; ``"auto"`` reads a
        sentence-transformers folder's pooling (mean for all-MiniLM-L6-v2),
        else ``"cls"``.
    max_length : int, default=64
        Tokens per text for the encoder, special tokens included.
    encoder_shortlist_size : int, default=50
        Labels of highest encoder cosine added to every shortlist (with
        ``encoder``).
    encoder_training : dict or None, default=None
        None: the encoder stays frozen. A dict: before its label texts are
        encoded, the encoder is fine-tuned as a dual encoder
        (:class:`~skxmc.DualEncoderClassifier`'s engine) on the network's
        training rows, never on the fusion's held-out rows, so that the
        fusion learns how far to trust its cosine on rows it did not see.
        Keys: the training parameters of ``DualEncoderClassifier``
        (:class:`~skxmc.models.DualEncoderConfig` fields: ``loss``,
        ``n_epochs``, ``trainable_layers``, ``learning_rate``,
        ``batch_size``, ...; the length and pooling are ``max_length`` and
        ``pooling``), over the schedule measured on 2 CPU cores in
        ``benchmarks/results/alc_cpu.txt``: ``{"loss": "tcm",
        "trainable_layers": 1, "n_epochs": 2, "learning_rate": 2e-4,
        "batch_size": 64}``. Not checkpointed: a resumed fit fine-tunes the
        encoder again (after the network's training).
    max_label_tokens : int, default=None
        Keep only this many largest TF-IDF entries per label.
    early_stopping : bool, default=False
        Stop the extreme stage on a held-out P@1.
    validation_fraction : float, default=0.1
        Held-out share of the rows when ``early_stopping``.
    n_iter_no_change : int, default=3
        Patience of early stopping, in epochs.
    checkpoint_dir : str or path-like, default=None
        Save the training state there after every epoch and resume from it.
    device : str or torch.device, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``,
        ``"mps"`` (Apple silicon) or a :class:`torch.device`.
    top_k : int, default=10
        Labels kept per row by :meth:`decision_function` and :meth:`predict`.
    threshold : float, default=0.5
        :meth:`predict` returns the top-``top_k`` labels scoring above it.
    random_state : int, RandomState instance or None, default=None
        Seeds the graph walks, the clustering, the weights and the batches.
    verbose : int, default=0
        Progress bars and per-epoch losses.

    Attributes
    ----------
    classes_ : ndarray of shape (n_labels,)
        The labels (grown by :meth:`add_labels`).
    n_labels_ : int
        Number of labels.
    label_graph_ : csr_matrix of shape (n_labels, n_labels)
        The label graph (normalised); labels added by :meth:`add_labels`
        have a self-loop only.
    model_ : DecafModel
        The engine (:class:`skxmc.models.DecafModel` with a
        :class:`skxmc.models.LabelGraphComponent`); the attributes below are
        views of it.
    network_ : DecafNetwork
        The torch module; ``network_.labels`` is a ``GraphLabelClassifier``.
    cluster_of_label_ : ndarray of shape (n_labels,)
        Cluster of every label.
    n_clusters_ : int
        Number of label clusters.
    loss_curve_ : list of float
        Mean training loss of every epoch.
    n_iter_ : int
        Epochs run (both stages).
    fit_times_ : dict
        Seconds of every fit stage (clustering, text shortlist, training,
        label weights, re-ranker, fusion), as the other deep estimators report
        theirs; the fit's progress log shows them with ``verbose=1``.
    fusion_ : ScoreFusion or None
        The learned fusion (``fusion="learned"``).
    reranker_ : ShortlistReranker, XRLinearModel or None
        The re-ranker.

    See Also
    --------
    skxmc.DecafClassifier : The same model without the label graph.

    Notes
    -----
    Differences from the authors' code: one clustering instead of an ensemble
    of three, token embeddings are trained (not frozen) in the extreme stage,
    and the attention is a single linear layer over the concatenated
    components. Training runs in float32 on every device (no mixed
    precision).

    References
    ----------
    .. [1] A. Mittal, N. Sachdeva, S. Agrawal, S. Agarwal, P. Kar and M.
       Varma. "ECLARE: Extreme Classification with Label Graph Correlations."
       WWW 2021.

    Examples
    --------
    >>> from skxmc import EclareClassifier, LabelInfo
    >>> from skxmc.datasets import make_xmc_classification
    >>> data = make_xmc_classification(n_samples=100, n_labels=20,
    ...                                return_text=True, random_state=0)
    >>> clf = EclareClassifier(embedding_dim=16, n_epochs=2, max_leaf_size=4,
    ...                        beam_size=3, graph_shortlist_size=5,
    ...                        random_state=0)
    >>> clf = clf.fit(data.text, data.Y, label_info=LabelInfo(text=data.label_text))
    >>> clf.label_graph_.shape
    (20, 20)
    >>> scores, labels = clf.predict_topk(data.text[:2], k=3)
    >>> labels.shape
    (2, 3)
    """

    _parameter_constraints: dict = {
        **DecafClassifier._parameter_constraints,
        "graph_shortlist_size": [Interval(Integral, 0, None, closed="left")],
        "walk_length": [Interval(Integral, 1, None, closed="left")],
        "restart_prob": [Interval(Real, 0, 1, closed="both")],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "max_label_frequency": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        *,
        embedding_dim=300,
        n_epochs=5,
        batch_size=256,
        learning_rate=0.01,
        dropout=0.2,
        max_leaf_size=8,
        beam_size=32,
        text_shortlist_size=0,
        ann_shortlist_size=0,
        graph_shortlist_size=32,
        meta_weight=0.5,
        text_weight=0.0,
        fusion="learned",
        fusion_fraction=0.1,
        reranker="xr-linear",
        rerank_size=100,
        propensity_tilt=0.0,
        walk_length=400,
        restart_prob=0.8,
        n_neighbors=10,
        max_label_frequency=500,
        max_features=None,
        token_init=None,
        vectorizer=None,
        encoder=None,
        pooling="auto",
        max_length=64,
        encoder_shortlist_size=50,
        encoder_training=None,
        max_label_tokens=None,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=3,
        checkpoint_dir=None,
        device="auto",
        top_k=10,
        threshold=0.5,
        random_state=None,
        verbose=0,
    ):
        self.embedding_dim = embedding_dim
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.dropout = dropout
        self.max_leaf_size = max_leaf_size
        self.beam_size = beam_size
        self.text_shortlist_size = text_shortlist_size
        self.ann_shortlist_size = ann_shortlist_size
        self.meta_weight = meta_weight
        self.text_weight = text_weight
        self.fusion = fusion
        self.fusion_fraction = fusion_fraction
        self.reranker = reranker
        self.rerank_size = rerank_size
        self.propensity_tilt = propensity_tilt
        self.max_features = max_features
        self.token_init = token_init
        self.vectorizer = vectorizer
        self.encoder = encoder
        self.pooling = pooling
        self.max_length = max_length
        self.encoder_shortlist_size = encoder_shortlist_size
        self.encoder_training = encoder_training
        self.max_label_tokens = max_label_tokens
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.checkpoint_dir = checkpoint_dir
        self.device = device
        self.top_k = top_k
        self.threshold = threshold
        self.random_state = random_state
        self.verbose = verbose
        self.graph_shortlist_size = graph_shortlist_size
        self.walk_length = walk_length
        self.restart_prob = restart_prob
        self.n_neighbors = n_neighbors
        self.max_label_frequency = max_label_frequency

    def _fit(self, X, Y, *, label_info, seed):
        from skxmc.models import LabelGraphComponent

        label_graph = LabelGraphComponent(
            None if label_info is None else label_info.graph,
            walk_length=self.walk_length,
            restart_prob=self.restart_prob,
            n_neighbors=self.n_neighbors,
            max_label_frequency=self.max_label_frequency,
        )
        return self._fit_engine(X, Y, label_info, seed, label_graph=label_graph)

    @property
    def label_graph_(self):
        return self.model_.label_graph.graph
