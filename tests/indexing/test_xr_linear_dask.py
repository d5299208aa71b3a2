"""XR-Linear on a Dask cluster (joblib's "dask" backend) equals the local fit.

The cluster is a 2-worker ``LocalCluster(processes=False)``: the workers are
threads of this process, but the tasks go through the same path as on a real
cluster (joblib's dask backend scatters the arrays, the scheduler runs the
batches on the workers, the results come back as futures); only pickling
between processes is skipped.
"""

import numpy as np
import pytest

from skxmc._xr_linear import XRLinearClassifier
from skxmc.datasets import make_xmc_classification
from skxmc.indexing._tree import dask_workers

distributed = pytest.importorskip("distributed")
joblib = pytest.importorskip("joblib")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def test_cluster_fit_equals_local_fit(client):
    X, Y = make_xmc_classification(
        n_samples=400, n_labels=40, n_features=200, random_state=0
    )
    params = {
        "max_leaf_size": 8,
        "branching_factor": 4,
        "negative_sampling": "tfn+man",  # the beam of each level, too
        "random_state": 0,
    }
    local = XRLinearClassifier(**params).fit(X[:300], Y[:300])
    expected = local.predict_topk(X[300:], 5)
    with distributed.get_task_stream(client) as stream:
        with joblib.parallel_config(backend="dask"):
            assert dask_workers() == 2
            remote = XRLinearClassifier(**params).fit(X[:300], Y[:300])
            got = remote.predict_topk(X[300:], 5)
    # the work ran on the cluster: several batches per level and prediction
    assert len(stream.data) >= 8
    n_levels = local.label_tree_.n_levels
    assert n_levels >= 2
    for level in range(1, n_levels + 1):
        W_local, b_local = local.model_.weights(level)
        W_remote, b_remote = remote.model_.weights(level)
        assert W_local.nnz > 0
        for attr in ("indptr", "indices", "data"):
            np.testing.assert_array_equal(
                getattr(W_remote, attr), getattr(W_local, attr)
            )
        np.testing.assert_array_equal(b_remote, b_local)
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_array_equal(got[0], expected[0])


def test_dask_array_prediction_on_the_cluster_equals_predict_topk(client):
    import dask.array as da

    from skxmc.utils import dask_predict_topk

    X, Y = make_xmc_classification(
        n_samples=300, n_labels=30, n_features=120, random_state=1
    )
    clf = XRLinearClassifier(max_leaf_size=8, random_state=0).fit(X[:200], Y[:200])
    rows = da.from_array(X[200:].tocsr(), chunks=(30, -1), asarray=False)
    with distributed.get_task_stream(client) as stream:
        scores, indices = client.compute(dask_predict_topk(clf, rows, k=5), sync=True)
    assert len(stream.data) >= 4  # one task per block of rows, on the workers
    expected = clf.predict_topk(X[200:], 5)
    np.testing.assert_array_equal(indices, expected[1])
    np.testing.assert_array_equal(scores, expected[0])
