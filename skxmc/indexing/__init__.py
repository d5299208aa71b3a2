"""Label-side structures: label embeddings, label trees, rankers, beam search.

The engine behind :class:`~skxmc.XRLinearClassifier`, usable on its own; no
scikit-learn base classes and no torch here.
"""

from skxmc.indexing._adjacency import (
    cluster_adjacency,
    label_cluster_matrix,
    reestimate_adjacency,
)
from skxmc.indexing._beam import POST_PROCESSORS, TreeScorer, beam_search, post_process
from skxmc.indexing._fusion import ScoreFusion, candidate_relevance
from skxmc.indexing._label_embedding import (
    LABEL_EMBEDDINGS,
    label_embedding,
    pifa_embedding,
)
from skxmc.indexing._label_graph import (
    label_correlation_graph,
    propagate_topk,
    random_walk_visits,
    smooth_over_graph,
)
from skxmc.indexing._linear import (
    LOSSES,
    ROW_NORMS,
    fit_binary,
    fit_level,
    normalize_rows,
)
from skxmc.indexing._rerank import ShortlistReranker
from skxmc.indexing._shortlist import LabelShortlist
from skxmc.indexing._tree import LabelTree, hierarchical_kmeans
from skxmc.indexing._xr_linear import NEGATIVE_SAMPLING, XRLinearModel

__all__ = [
    # label embeddings
    "LABEL_EMBEDDINGS",
    "label_embedding",
    "pifa_embedding",
    # label graphs
    "label_correlation_graph",
    "propagate_topk",
    "random_walk_visits",
    "smooth_over_graph",
    # trees
    "LabelTree",
    "hierarchical_kmeans",
    # fixed-width cluster-to-label adjacencies (ELIAS)
    "cluster_adjacency",
    "label_cluster_matrix",
    "reestimate_adjacency",
    # rankers
    "LOSSES",
    "ROW_NORMS",
    "fit_binary",
    "fit_level",
    "normalize_rows",
    # search
    "POST_PROCESSORS",
    "TreeScorer",
    "beam_search",
    "post_process",
    "LabelShortlist",
    "ShortlistReranker",
    "ScoreFusion",
    "candidate_relevance",
    # the engine
    "NEGATIVE_SAMPLING",
    "XRLinearModel",
]
