"""dask_predict_topk: blockwise predict_topk of a Dask array."""

import numpy as np
import pytest

from skxmc import XRLinearClassifier
from skxmc.datasets import make_xmc_classification
from skxmc.utils import dask_predict_topk

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")


@pytest.fixture(scope="module")
def fitted():
    X, Y = make_xmc_classification(
        n_samples=120, n_labels=16, n_features=40, random_state=0
    )
    return X, XRLinearClassifier(max_leaf_size=4, random_state=0).fit(X, Y)


@pytest.mark.parametrize("chunks", [(7, -1), (50, 9), (120, -1)])
def test_equals_predict_topk_of_the_whole_array(fitted, chunks):
    X, clf = fitted
    for rows in (
        da.from_array(X.toarray(), chunks=chunks),
        da.from_array(X.tocsr(), chunks=chunks, asarray=False),
    ):
        scores, indices = dask.compute(*dask_predict_topk(clf, rows, k=4))
        expected = clf.predict_topk(X, 4)
        np.testing.assert_array_equal(indices, expected[1])
        np.testing.assert_array_equal(scores, expected[0])
        assert scores.dtype == np.float32 and indices.dtype == np.int64


def test_each_block_is_predicted_once_for_both_outputs(fitted):
    X, clf = fitted
    rows = da.from_array(X.toarray(), chunks=(40, -1))
    scores, indices = dask_predict_topk(clf, rows, k=3)
    # one prediction task per block, shared by the two outputs (the
    # estimator itself is one node of the graph, not one per block)
    graph = {**dict(scores.__dask_graph__()), **dict(indices.__dask_graph__())}
    names = [str(key[0] if isinstance(key, tuple) else key) for key in graph]
    assert sum(name.startswith("_predict_block") for name in names) == 3
    assert sum(name.startswith("XRLinearClassifier") for name in names) == 1


def test_rejects_what_it_cannot_predict(fitted):
    X, clf = fitted
    with pytest.raises(TypeError, match=r"dask\.array"):
        dask_predict_topk(clf, X)
    with pytest.raises(ValueError, match="2-D"):
        dask_predict_topk(clf, da.zeros(5))
    with pytest.raises(TypeError, match="no predict_topk"):
        dask_predict_topk(object(), da.zeros((3, 40)))
