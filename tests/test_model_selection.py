"""skxmc estimators inside sklearn Pipelines, scorers and model selection tools."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import GridSearchCV, KFold, cross_val_predict
from sklearn.pipeline import make_pipeline

from skxmc import make_xmc_pipeline
from skxmc.metrics import XMC_SCORERS, precision_at_k
from skxmc.utils._testing import CentroidRanker

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]


def _text_data(n_per_label=8, seed=0):
    """Documents made of their labels' words plus one noise word."""
    rng = np.random.default_rng(seed)
    docs, rows = [], []
    for i in range(n_per_label * len(WORDS)):
        labels = sorted({i % len(WORDS), int(rng.integers(len(WORDS)))})
        noise = WORDS[int(rng.integers(len(WORDS)))]
        docs.append(" ".join([WORDS[j] for j in labels] * 3 + [noise]))
        rows.append(labels)
    Y = sp.lil_matrix((len(docs), len(WORDS)), dtype=np.float32)
    for i, labels in enumerate(rows):
        Y[i, labels] = 1
    return docs, Y.tocsr()


def test_grid_search_over_pipeline_with_xmc_scorers():
    docs, Y = _text_data()
    pipe = make_xmc_pipeline(TfidfVectorizer(), CentroidRanker())
    search = GridSearchCV(
        pipe,
        {
            "tfidfvectorizer__sublinear_tf": [False, True],
            "centroidranker__top_k": [2, 5],
        },
        scoring=XMC_SCORERS,
        refit="P@1",
        cv=KFold(3, shuffle=True, random_state=0),
        error_score="raise",
    )
    search.fit(docs, Y)
    assert set(search.cv_results_) >= {"mean_test_P@1", "mean_test_P@5"}
    assert search.best_score_ > 0.8  # words give the labels away
    scores, indices = search.best_estimator_.predict_topk(docs[:3], k=2)
    assert indices.shape == scores.shape == (3, 2)
    # the refit model's P@1 matches the metric applied to its own decision_function
    decision = search.best_estimator_.decision_function(docs)
    assert XMC_SCORERS["P@1"](search.best_estimator_, docs, Y) == pytest.approx(
        precision_at_k(Y, decision, k=1)
    )


def test_cross_val_predict_with_sparse_targets():
    docs, Y = _text_data()
    pred = cross_val_predict(
        make_pipeline(TfidfVectorizer(), CentroidRanker(threshold=0.6, top_k=2)),
        docs,
        Y,
        cv=KFold(3, shuffle=True, random_state=0),
    )
    assert sp.issparse(pred) and pred.shape == Y.shape
    hits = pred.multiply(Y).sum()
    assert hits / pred.sum() > 0.9 and hits / Y.sum() > 0.6  # micro precision, recall


def test_plain_pipeline_has_no_predict_topk_but_xmc_pipeline_does():
    docs, Y = _text_data()
    plain = make_pipeline(TfidfVectorizer(), CentroidRanker()).fit(docs, Y)
    assert not hasattr(plain, "predict_topk")
    xmc = make_xmc_pipeline(TfidfVectorizer(), CentroidRanker()).fit(docs, Y)
    scores, indices = xmc.predict_topk(docs[:4], k=3)
    inner = xmc[-1].predict_topk(xmc[:-1].transform(docs[:4]), k=3)
    np.testing.assert_array_equal(indices, inner[1])
    np.testing.assert_array_equal(scores, inner[0])
    assert not hasattr(make_xmc_pipeline(TfidfVectorizer()), "predict_topk")
