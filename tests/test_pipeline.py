"""XMCPipeline.add_labels: label text through the pipeline's own transformers."""

import copy

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import TfidfVectorizer

from skxmc import DecafClassifier, LabelInfo, XRLinearClassifier, make_xmc_pipeline
from skxmc.datasets import make_xmc_classification

DOCS = ["red apple pie", "green pear", "red cherry jam", "green apple"]
Y = sp.csr_matrix(np.array([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=np.float32))


class _Recorder(BaseEstimator):
    """Final step that records what add_labels receives."""

    def fit(self, X, y):
        self.classes_ = np.arange(y.shape[1])
        return self

    def predict_topk(self, X, k=None):
        return np.zeros((X.shape[0], 1)), np.zeros((X.shape[0], 1), dtype=int)

    def add_labels(self, label_text, *, labels=None):
        self.received_ = (label_text, labels)
        self.classes_ = np.append(self.classes_, labels)
        return self


def test_add_labels_transforms_the_text_with_the_fitted_steps():
    pipe = make_xmc_pipeline(TfidfVectorizer(), _Recorder()).fit(DOCS, Y)
    vocabulary = dict(pipe[0].vocabulary_)
    out = pipe.add_labels(["red jam", "green tea"], labels=[2, 3])
    assert out is pipe
    Z, labels = pipe[-1].received_
    expected = TfidfVectorizer().fit(DOCS).transform(["red jam", "green tea"])
    assert sp.issparse(Z) and np.allclose(Z.toarray(), expected.toarray())
    assert labels == [2, 3]
    assert pipe[0].vocabulary_ == vocabulary  # no step refitted
    assert pipe.classes_.tolist() == [0, 1, 2, 3]


def test_add_labels_only_when_the_final_step_has_it():
    pipe = make_xmc_pipeline(TfidfVectorizer(), XRLinearClassifier())
    assert not hasattr(pipe, "add_labels")
    assert hasattr(make_xmc_pipeline(TfidfVectorizer(), _Recorder()), "add_labels")


@pytest.mark.slow
def test_decaf_pipeline_add_labels_equals_adding_features_directly():
    d = make_xmc_classification(
        n_samples=120, n_labels=12, n_features=60, return_text=True, random_state=0
    )
    vec = TfidfVectorizer(dtype=np.float32).fit(d.text)
    info = LabelInfo(features=vec.transform(d.label_text))
    params = {"embedding_dim": 8, "n_epochs": 1, "batch_size": 32, "random_state": 0}
    pipe = make_xmc_pipeline(
        TfidfVectorizer(dtype=np.float32), DecafClassifier(**params)
    )
    pipe.fit(d.text, d.Y, decafclassifier__label_info=info)
    direct = copy.deepcopy(pipe[-1])
    new_text = [d.label_text[0] + " " + d.label_text[1], d.label_text[2]]
    pipe.add_labels(new_text)
    direct.add_labels(vec.transform(new_text))
    assert pipe.classes_.tolist() == list(range(14))
    s1, i1 = pipe.predict_topk(d.text, k=5)
    s2, i2 = direct.predict_topk(vec.transform(d.text), k=5)
    assert np.array_equal(i1, i2) and np.allclose(s1, s2)
