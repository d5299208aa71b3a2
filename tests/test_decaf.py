"""DecafClassifier: shortlists, fusion, resume across stages, zero-shot.

The contract shared by every estimator (pickling, reproducibility, grid
search, full beam against _full_scores, resume) is in tests/test_common.py.
"""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skxmc import DecafClassifier, LabelInfo
from skxmc.datasets import make_xmc_classification
from skxmc.exceptions import XMCDataWarning
from skxmc.metrics import precision_at_k
from skxmc.training._data import hold_out_rows
from skxmc.utils import csr_row_topk

TINY = {
    "embedding_dim": 16,
    "n_epochs": 4,
    "batch_size": 32,
    "learning_rate": 0.02,
    "max_leaf_size": 4,
    "beam_size": 3,
    "random_state": 0,
    # plain DECAF (the defaults before issue 16); tests of the learned fusion
    # and the re-rankers set them
    "fusion": "weights",
    "reranker": None,
}


@pytest.fixture(scope="module")
def data():
    d = make_xmc_classification(
        n_samples=300,
        n_labels=30,
        n_features=120,
        return_text=True,
        random_state=0,
    )
    return {
        "text": d.text,
        "Y": d.Y,
        "label_text": d.label_text,
        "info": LabelInfo(text=d.label_text),
    }


@pytest.fixture(scope="module")
def fitted(data):
    return DecafClassifier(**TINY).fit(
        data["text"][:240], data["Y"][:240], label_info=data["info"]
    )


def _numeric(data):
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(dtype=np.float32).fit(data["text"] + data["label_text"])
    return vec.transform(data["text"]), vec.transform(data["label_text"])


# ---------------------------------------------------------------- basics
def test_fit_predict_text(data, fitted):
    scores, labels = fitted.predict_topk(data["text"][240:], k=5)
    assert scores.shape == labels.shape == (60, 5)
    assert scores.dtype == np.float32 and labels.dtype == np.int64
    assert np.all((scores >= 0) & (scores <= 1))
    assert np.all(np.diff(scores, axis=1) <= 0)
    # learned something: far better than chance (5 / 30 labels)
    assert precision_at_k(data["Y"][240:], (scores, labels), k=1) > 0.4
    assert fitted.n_labels_ == 30 and fitted.vectorizer_ is not None
    assert fitted.n_iter_ == 2 * TINY["n_epochs"] == len(fitted.loss_curve_)
    assert not fitted.network_.training
    pred = fitted.predict(data["text"][240:])
    assert sp.issparse(pred) and pred.shape == (60, 30)


def test_fit_numeric_features(data):
    X, Z = _numeric(data)
    clf = DecafClassifier(**TINY).fit(
        X[:240], data["Y"][:240], label_info=LabelInfo(features=Z)
    )
    assert clf.n_features_in_ == X.shape[1] and clf.vectorizer_ is None
    topk = clf.predict_topk(X[240:], k=5)
    assert precision_at_k(data["Y"][240:], topk, k=1) > 0.4
    with pytest.raises(TypeError, match="numeric features"):
        clf.predict_topk(data["text"][:3])


def test_loss_falls_in_both_stages(fitted):
    n = TINY["n_epochs"]
    surrogate, extreme = fitted.loss_curve_[:n], fitted.loss_curve_[n:]
    assert surrogate[-1] < 0.8 * surrogate[0]
    assert extreme[-1] < 0.9 * extreme[0]
    # no re-ranker, no fusion: only the stages that ran are timed
    assert list(fitted.fit_times_) == [
        "clustering",
        "text_shortlist",
        "training",
        "label_weights",
    ]


def test_max_label_tokens_prunes_label_features(data):
    clf = DecafClassifier(**TINY, max_label_tokens=2).fit(
        data["text"][:240], data["Y"][:240], label_info=data["info"]
    )
    assert np.diff(clf.network_.labels.label_features().indptr).max() <= 2
    assert np.diff(clf.network_.clusters.label_features().indptr).max() <= 2
    scores, labels = clf.predict_topk(data["text"][240:], k=5)
    assert precision_at_k(data["Y"][240:], (scores, labels), k=1) > 0.3


# ---------------------------------------------------------------- errors
def test_label_text_is_required(data):
    with pytest.raises(ValueError, match="needs label text"):
        DecafClassifier(**TINY).fit(data["text"], data["Y"])
    X, Z = _numeric(data)
    with pytest.raises(ValueError, match="needs label features"):
        DecafClassifier(**TINY).fit(X, data["Y"])
    with pytest.raises(ValueError, match="needs label features"):
        DecafClassifier(**TINY).fit(X, data["Y"], label_info=data["info"])
    with pytest.raises(ValueError, match="share one feature space"):
        DecafClassifier(**TINY).fit(
            X, data["Y"], label_info=LabelInfo(features=Z[:, :10])
        )


@pytest.mark.parametrize(
    "params, error",
    [
        ({"embedding_dim": 0}, "embedding_dim"),
        ({"n_epochs": 0}, "n_epochs"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"dropout": 1.0}, "dropout"),
        ({"beam_size": 0}, "beam_size"),
        ({"meta_weight": 1.5}, "meta_weight"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
    ],
)
def test_bad_params(data, params, error):
    clf = DecafClassifier(**{**TINY, **params})
    with pytest.raises(ValueError, match=error):
        clf.fit(data["text"][:50], data["Y"][:50], label_info=data["info"])


def test_bad_device(data):
    with pytest.raises(ValueError, match="device must be"):
        DecafClassifier(**TINY, device="gpu").fit(
            data["text"][:50], data["Y"][:50], label_info=data["info"]
        )
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            DecafClassifier(**TINY, device="cuda").fit(
                data["text"][:50], data["Y"][:50], label_info=data["info"]
            )


# ---------------------------------------------------------------- shortlist
def _assert_brute_force_scores(full, scores, labels):
    """Every returned score is its label's score in the dense matrix ``full``."""
    valid = labels >= 0
    np.testing.assert_allclose(
        np.take_along_axis(full, np.where(valid, labels, 0), 1)[valid],
        scores[valid],
        rtol=1e-5,
        atol=1e-6,
    )


def _topk_of(full, k):
    order = np.argsort(-full, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(full, order, 1), order


def test_shortlist_recall_vs_brute_force(data, fitted):
    scores, labels = fitted.predict_topk(data["text"][240:], k=5)
    full = fitted._full_scores(data["text"][240:])
    # every returned score is the label's true (brute-force) score
    _assert_brute_force_scores(full, scores, labels)
    _, ref = _topk_of(full, 5)
    recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(labels, ref)])
    assert recall > 0.7
    assert fitted.beam_size < fitted.n_clusters_  # a real shortlist


def test_text_shortlist_and_text_weight(data):
    """Text candidates join the shortlist, the text cosine joins the score,
    and the result is still the brute-force score of the returned labels."""
    params = {**TINY, "beam_size": 1, "meta_weight": 0.2, "text_weight": 0.4}
    clf = DecafClassifier(**params, text_shortlist_size=6)
    clf.fit(data["text"][:240], data["Y"][:240], label_info=data["info"])
    scores, labels = clf.predict_topk(data["text"][240:], k=8)
    full = clf._full_scores(data["text"][240:])
    _assert_brute_force_scores(full, scores, labels)
    # one cluster (<= 4 labels) + 6 text candidates: more than 4 labels per row
    assert ((labels >= 0).sum(axis=1) > 4).all()
    # the 6 labels whose text is closest to each document are in the shortlist
    # (k = n_labels returns the whole shortlist)
    _, everything = clf.predict_topk(data["text"][240:], k=30)
    S = clf.model_._text_similarity(clf.vectorizer_.transform(data["text"][240:]))
    _, best = csr_row_topk(S, 6)
    for row, candidates in zip(everything, best):
        assert set(candidates[candidates >= 0]) <= set(row[row >= 0])
    with pytest.raises(ValueError, match="meta_weight \\+ text_weight"):
        DecafClassifier(**{**params, "meta_weight": 0.7}).fit(
            data["text"][:50], data["Y"][:50], label_info=data["info"]
        )
    # zero-shot labels join the text index
    clf.add_labels([data["label_text"][0]])
    assert clf.model_._text_index.n_labels_ == 31
    query = [" ".join([data["label_text"][0]] * 3)]
    assert 30 in clf.predict_topk(query, k=5)[1][0]


@pytest.fixture(scope="module")
def fused(data):
    clf = DecafClassifier(**{**TINY, "fusion": "learned"}, fusion_fraction=0.25)
    return clf.fit(data["text"][:240], data["Y"][:240], label_info=data["info"])


def test_learned_fusion_is_fitted_on_held_out_rows(data, fused):

    # the network trains on 180 rows, the fusion sees the other 60
    seed = int(np.random.RandomState(0).randint(np.iinfo(np.int32).max))
    held, trained = hold_out_rows(np.arange(240), 0.25, seed + 1, "fusion_fraction")
    assert len(held) == 60 and not set(held) & set(trained)
    counts = np.bincount(data["Y"][:240][trained].indices, minlength=30)
    np.testing.assert_allclose(fused.model_._log_frequency, np.log1p(counts), rtol=1e-6)
    assert fused.fusion_.n_features_ == 4
    # the scores are the fusion's probabilities of the shortlisted pairs
    X = fused.vectorizer_.transform(data["text"][240:])
    features, candidates = fused.model_._pair_features(X, torch.device("cpu"))
    probability = fused.fusion_.predict(features, candidates)
    scores, labels = fused.predict_topk(data["text"][240:], k=5)
    expected, position = _topk_of(probability, 5)
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    np.testing.assert_array_equal(labels, np.take_along_axis(candidates, position, 1))
    assert np.all((scores >= 0) & (scores <= 1))


def test_learned_fusion_full_beam_equals_brute_force(data, fused):
    clf = pickle.loads(pickle.dumps(fused)).set_params(beam_size=fused.n_clusters_)
    scores, labels = clf.predict_topk(data["text"][240:], k=5)
    full = clf._full_scores(data["text"][240:])
    np.testing.assert_allclose(scores, _topk_of(full, 5)[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        np.take_along_axis(full, labels, 1), scores, rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("kind", ["shortlist", "xr-linear"])
def test_reranker_scores_are_a_fusion_feature(data, kind):
    from skxmc.indexing import ShortlistReranker, XRLinearModel

    params = {**TINY, "fusion": "learned", "fusion_fraction": 0.25}
    clf = DecafClassifier(**{**params, "reranker": kind}, rerank_size=6)
    clf.fit(data["text"][:240], data["Y"][:240], label_info=data["info"])
    expected_type = {"shortlist": ShortlistReranker, "xr-linear": XRLinearModel}
    assert isinstance(clf.reranker_, expected_type[kind])
    assert clf.fusion_.n_features_ == 5
    assert list(clf.fit_times_) == [
        "clustering",
        "text_shortlist",
        "training",
        "label_weights",
        "reranker",
        "fusion",
    ]
    assert all(seconds >= 0 for seconds in clf.fit_times_.values())
    X = clf.vectorizer_.transform(data["text"][240:])
    features, candidates = clf.model_._pair_features(X, torch.device("cpu"))
    valid = candidates >= 0
    if kind == "shortlist":
        reference = clf.reranker_.score(X, candidates, raw=True)
    else:
        reference = clf.reranker_.score_pairs(X, candidates)
        # the XR-Linear ranker's own best labels join every shortlist
        _, proposed = clf.reranker_.predict_topk(X, k=6)
        for row, ids in zip(candidates, proposed):
            assert set(ids[ids >= 0]) <= set(row)
    np.testing.assert_allclose(features[..., 4][valid], reference[valid], rtol=1e-6)
    # brute force over every label still equals the shortlist scores
    clf.set_params(beam_size=clf.n_clusters_)
    scores, _ = clf.predict_topk(data["text"][240:], k=5)
    full = clf._full_scores(data["text"][240:])
    np.testing.assert_allclose(scores, _topk_of(full, 5)[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=f"reranker='{kind}' needs fusion='learned'"):
        DecafClassifier(**{**TINY, "reranker": kind}).fit(
            data["text"][:240], data["Y"][:240], label_info=data["info"]
        )


def test_propensity_tilt_multiplies_by_normalised_inverse_propensity(data, fitted):
    from skxmc.metrics import inverse_propensity

    clf = pickle.loads(pickle.dumps(fitted)).set_params(
        beam_size=fitted.n_clusters_, propensity_tilt=0.5
    )
    weights = inverse_propensity(data["Y"][:240])
    factor = (weights / weights.max()) ** 0.5
    base = fitted._full_scores(data["text"][240:])
    np.testing.assert_allclose(
        clf._full_scores(data["text"][240:]), base * factor, rtol=1e-5
    )
    scores, labels = clf.predict_topk(data["text"][240:], k=5)
    expected, _ = _topk_of(base * factor, 5)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-7)
    # rare labels move up: the mean training count of the top-1 labels falls
    counts = np.bincount(data["Y"][:240].indices, minlength=30)
    plain = fitted.predict_topk(data["text"][240:], k=1)[1][:, 0]
    assert counts[labels[:, 0]].mean() < counts[plain].mean()
    # the factors are cached per tilt and label set, recomputed on a change
    clf.set_params(propensity_tilt=0.25)
    np.testing.assert_allclose(
        clf._full_scores(data["text"][240:]),
        base * (weights / weights.max()) ** 0.25,
        rtol=1e-5,
    )
    clf.add_labels(["brand new label text"])
    assert clf.model_._tilt_factors(0.25).shape == (31,)


def test_zero_shot_labels_get_the_weights_of_unseen_labels(data, fused):
    clf = pickle.loads(pickle.dumps(fused)).set_params(propensity_tilt=1.0)
    clf.add_labels([data["label_text"][3]])
    assert clf.model_._log_frequency[-1] == 0
    assert clf.model_._inv_propensity[-1] == clf.model_._inv_propensity.max()
    query = [" ".join([data["label_text"][3]] * 3)]
    assert 30 in clf.predict_topk(query, k=5)[1][0]


@pytest.mark.parametrize("tilt", [0.0, 0.5])
def test_top_k_fusion_skips_nothing_that_reaches_the_top_k(
    data, fused, monkeypatch, tilt
):
    """predict_topk lets the fusion skip the candidates that cannot reach the
    top k (ScoreFusion.predict's k, with the tilt factors): the same labels
    and scores as scoring every candidate, single rows and batches."""
    from skxmc.indexing import ScoreFusion

    clf = pickle.loads(pickle.dumps(fused)).set_params(propensity_tilt=tilt)
    # one nominee per feature: most candidates are others, which the tilt
    # can lift above nominees
    clf.model_.fusion_.nominees = 1
    texts = data["text"][240:]
    skipped = clf.predict_topk(texts, k=3)
    singles = [clf.predict_topk(texts[i : i + 1], k=3) for i in range(8)]
    predict = ScoreFusion.predict

    def every_pair(self, features, candidates, *, k=None, factors=None):
        return predict(self, features, candidates)

    monkeypatch.setattr(ScoreFusion, "predict", every_pair)
    full = clf.predict_topk(texts, k=3)
    for got, expected in zip(skipped, full, strict=True):
        np.testing.assert_array_equal(got, expected)
    for i, (scores, labels) in enumerate(singles):
        np.testing.assert_array_equal(
            labels, clf.predict_topk(texts[i : i + 1], k=3)[1]
        )
        np.testing.assert_array_equal(scores, full[0][i : i + 1])


def test_single_queries_read_the_text_cosines_off_the_text_shortlist(
    data, fused, monkeypatch
):
    """A few rows' text shortlist also sums every label's text cosine; the
    fusion's text feature is then looked up instead of recomputed: the same
    predictions as the pair kernel's cosines, to the bit."""
    from skxmc.models import DecafModel

    clf = pickle.loads(pickle.dumps(fused)).set_params(text_shortlist_size=5)
    texts = data["text"][240:250]
    looked_up = [clf.predict_topk(texts[i : i + 1], k=4) for i in range(len(texts))]
    seen = []
    text_parts = DecafModel._text_parts

    def recorded(self, unit, ids, similarity=None):
        seen.append(similarity is not None)
        return text_parts(self, unit, ids, similarity)

    monkeypatch.setattr(DecafModel, "_text_parts", recorded)
    clf.predict_topk(texts[:1], k=4)
    assert seen == [True]
    shortlist = DecafModel._text_shortlist

    def without_cosines(self, X, unit, scoring):
        return shortlist(self, X, unit, scoring)[0], None

    monkeypatch.setattr(DecafModel, "_text_shortlist", without_cosines)
    for i, (scores, labels) in enumerate(looked_up):
        expected = clf.predict_topk(texts[i : i + 1], k=4)
        np.testing.assert_array_equal(scores, expected[0])
        np.testing.assert_array_equal(labels, expected[1])
    assert seen[-1] is False


def test_fusion_fraction_must_leave_rows(data):
    with pytest.raises(ValueError, match=r"fusion_fraction=0\.001 leaves 0"):
        DecafClassifier(**{**TINY, "fusion": "learned"}, fusion_fraction=0.001).fit(
            data["text"][:240], data["Y"][:240], label_info=data["info"]
        )


@pytest.mark.slow  # compiles pynndescent (numba) on first use
def test_ann_shortlist_adds_candidates(data):
    clf = DecafClassifier(**{**TINY, "beam_size": 1}, ann_shortlist_size=10)
    clf.fit(data["text"][:240], data["Y"][:240], label_info=data["info"])
    assert clf.model_._ann is not None
    scores, labels = clf.predict_topk(data["text"][240:], k=8)
    full = clf._full_scores(data["text"][240:])
    _assert_brute_force_scores(full, scores, labels)
    for row in labels:  # no duplicates after merging the two shortlists
        row = row[row >= 0]
        assert len(set(row)) == len(row)
    clf_no_ann = clone_fit(clf.set_params(ann_shortlist_size=0), data)
    n_ann = (labels >= 0).sum()
    n_plain = (clf_no_ann.predict_topk(data["text"][240:], k=8)[1] >= 0).sum()
    assert n_ann > n_plain  # one cluster holds fewer than 8 labels


def clone_fit(clf, data):
    from sklearn.base import clone

    return clone(clf).fit(data["text"][:240], data["Y"][:240], label_info=data["info"])


# ---------------------------------------------------------------- randomness


# ---------------------------------------------------------------- checkpoints
def _crash_after(monkeypatch, n_saves):
    """Make the checkpoint store raise KeyboardInterrupt right after its
    ``n_saves``-th save (an interruption at the end of an epoch)."""
    import skxmc.training._checkpoint as checkpoint

    save = checkpoint.save_checkpoint
    stages = []

    def save_then_crash(path, payload):
        save(path, payload)
        stages.append(payload["stage"])
        if len(stages) == n_saves:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save_checkpoint", save_then_crash)
    return stages


def test_resume_after_interruption_equals_uninterrupted_fit(
    data, fitted, tmp_path, monkeypatch
):
    X, Y, info = data["text"][:240], data["Y"][:240], data["info"]
    params = dict(TINY, checkpoint_dir=str(tmp_path))
    with monkeypatch.context() as patch:
        # 1 epoch into the extreme stage
        stages = _crash_after(patch, TINY["n_epochs"] + 1)
        with pytest.raises(KeyboardInterrupt):
            DecafClassifier(**params).fit(X, Y, label_info=info)
    assert stages == [0] * TINY["n_epochs"] + [1]
    (path,) = tmp_path.glob("decaf-*.ckpt")
    resumed = DecafClassifier(**params).fit(X, Y, label_info=info)
    expected = fitted.predict_topk(data["text"][240:], k=5)
    got = resumed.predict_topk(data["text"][240:], k=5)
    np.testing.assert_array_equal(expected[1], got[1])
    np.testing.assert_array_equal(expected[0], got[0])
    assert resumed.loss_curve_ == fitted.loss_curve_

    # a completed checkpoint gives the finished model at once
    with monkeypatch.context() as patch:
        stages = _crash_after(patch, 1)
        again = DecafClassifier(**params).fit(X, Y, label_info=info)
    assert stages == []
    np.testing.assert_array_equal(
        again.predict_topk(data["text"][240:], k=5)[1], got[1]
    )

    # other parameters: a fresh fit in its own file; the other one is kept
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DecafClassifier(**{**params, "n_epochs": 1}).fit(X, Y, label_info=info)
    files = sorted(tmp_path.glob("decaf-*.ckpt"))
    assert len(files) == 2 and path in files


def test_resume_with_random_state_none(data, tmp_path, monkeypatch, request):
    """A fit with random_state=None resumes with the seed of its checkpoint."""
    X, Y, info = data["text"][:240], data["Y"][:240], data["info"]
    params = dict(TINY, n_epochs=2, random_state=None)
    global_state = np.random.get_state()
    request.addfinalizer(lambda: np.random.set_state(global_state))
    np.random.seed(7)  # random_state=None draws from the global RNG
    reference = DecafClassifier(**params).fit(X, Y, label_info=info)
    params["checkpoint_dir"] = str(tmp_path)
    np.random.seed(7)
    with monkeypatch.context() as patch:
        _crash_after(patch, 3)
        with pytest.raises(KeyboardInterrupt):
            DecafClassifier(**params).fit(X, Y, label_info=info)
    np.random.seed(12345)  # another seed would be drawn: the stored one wins
    resumed = DecafClassifier(**params).fit(X, Y, label_info=info)
    a = reference.predict_topk(data["text"][240:], k=5)
    b = resumed.predict_topk(data["text"][240:], k=5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert resumed.loss_curve_ == reference.loss_curve_


def test_early_stopping(data):
    clf = DecafClassifier(
        **{**TINY, "n_epochs": 6}, early_stopping=True, n_iter_no_change=1
    )
    clf.fit(data["text"][:240], data["Y"][:240], label_info=data["info"])
    assert 7 <= clf.n_iter_ <= 12
    assert (
        precision_at_k(data["Y"][240:], clf.predict_topk(data["text"][240:], k=1), k=1)
        > 0.3
    )


# ---------------------------------------------------------------- zero-shot
def test_add_labels_zero_shot(data):
    """A label held out of training, added by its text, is retrieved for a
    document that repeats that text."""
    held_out = 5
    keep = np.setdiff1d(np.arange(30), [held_out])
    Y = data["Y"][:, keep]
    texts = [data["label_text"][j] for j in keep]
    clf = DecafClassifier(**{**TINY, "beam_size": 4}).fit(
        data["text"], Y, label_info=LabelInfo(text=texts)
    )
    before = clf.predict_topk(data["text"][:5], k=5)
    clf.add_labels([data["label_text"][held_out]])
    assert clf.n_labels_ == 30 and clf.classes_[-1] == 29
    assert len(clf.cluster_of_label_) == 30
    query = [" ".join([data["label_text"][held_out]] * 3)]
    _, labels = clf.predict_topk(query, k=5)
    assert 29 in labels[0]
    # the old labels keep their scores
    after = clf.predict_topk(data["text"][:5], k=5)
    old = after[1] != 29
    assert np.isin(after[1][old], before[1]).all()
    assert clf.predict(data["text"][:3]).shape == (3, 30)
    with pytest.raises(ValueError, match="already in classes_"):
        clf.add_labels(["w1 w2"], labels=[3])
    with pytest.raises(ValueError, match="single string"):
        clf.add_labels("w1 w2")


def test_add_labels_with_label_names():
    docs = ["red apple fruit", "green apple fruit", "blue sky cloud", "grey sky rain"]
    docs = docs * 10
    y = [["apple"], ["apple"], ["sky"], ["sky"]] * 10
    info = LabelInfo(text={"apple": "apple fruit", "sky": "sky cloud"})
    clf = DecafClassifier(**{**TINY, "max_leaf_size": 1}).fit(docs, y, label_info=info)
    with pytest.raises(ValueError, match="give the names"):
        clf.add_labels(["rain"])
    clf.add_labels(["rain grey"], labels=["weather"])
    assert list(clf.classes_) == ["apple", "sky", "weather"]
    assert all(isinstance(row, tuple) for row in clf.predict(docs[:2]))


# ---------------------------------------------------------------- sklearn


# The checks that fit many times on the largest data; run with -m slow.


def test_changed_label_text_does_not_resume(data, tmp_path):
    """Other label text (so other label features) is another fit: a fresh
    model in a file of its own, the first checkpoint kept."""
    X, Y = data["text"][:120], data["Y"][:120]
    params = dict(TINY, n_epochs=1, checkpoint_dir=str(tmp_path))
    first = DecafClassifier(**params).fit(X, Y, label_info=data["info"])
    (path,) = tmp_path.glob("decaf-*.ckpt")
    saved = path.read_bytes()
    other = LabelInfo(text=[t + " extra" for t in data["info"].text])
    second = DecafClassifier(**params).fit(X, Y, label_info=other)
    assert len(list(tmp_path.glob("decaf-*.ckpt"))) == 2
    assert path.read_bytes() == saved
    fresh = DecafClassifier(**{**params, "checkpoint_dir": None}).fit(
        X, Y, label_info=other
    )
    np.testing.assert_array_equal(
        second.predict_topk(X[:5], k=3)[0], fresh.predict_topk(X[:5], k=3)[0]
    )
    assert first.loss_curve_ != second.loss_curve_


@pytest.mark.parametrize(
    "bad, error, match",
    [([None], TypeError, "element 0"), ([], ValueError, "label"),
     (["ok", 3], TypeError, "element 1")],
)  # fmt: skip
def test_add_labels_names_the_bad_label_text(fitted, bad, error, match):
    with pytest.raises(error, match=match):
        pickle.loads(pickle.dumps(fitted)).add_labels(bad)


@pytest.mark.parametrize("kind", ["xr-linear", "shortlist"])
def test_add_labels_with_a_reranker(data, kind):
    # the re-ranker has no model for a label added after the fit: it used to
    # fail with "labels must lie in [0, 30)" at the next predict_topk
    params = {**TINY, "fusion": "learned", "reranker": kind, "rerank_size": 6}
    clf = DecafClassifier(**params).fit(
        data["text"][:240], data["Y"][:240], label_info=data["info"]
    )
    before = clf.predict_topk(data["text"][240:], k=5)
    # the learned fusion ranks a label without a re-ranker model low: a warning
    with pytest.warns(XMCDataWarning, match="no model in the reranker"):
        clf.add_labels([data["label_text"][3]])
    _, labels = clf.predict_topk(data["text"][240:], k=5)
    assert labels.shape == before[1].shape and labels.max() <= 30
    query = [" ".join([data["label_text"][3]] * 3)]
    assert 30 in clf.predict_topk(query, k=clf.n_labels_)[1][0]


def test_add_labels_many_at_once_equals_one_at_a_time(fitted, data):
    """More new labels than half the trained ones at once (30 + 16): the same
    model as adding them one by one. The label head used to take its
    all-labels product path with the old label count and fail in torch
    ("repeats must have the same size as input")."""
    texts = [f"{data['label_text'][j]} w{j}" for j in range(16)]
    at_once = pickle.loads(pickle.dumps(fitted))
    at_once.add_labels(texts)
    one_by_one = pickle.loads(pickle.dumps(fitted))
    for text in texts:
        one_by_one.add_labels([text])
    assert at_once.n_labels_ == one_by_one.n_labels_ == fitted.n_labels_ + 16
    queries = [" ".join([t] * 3) for t in texts[:4]] + data["text"][:4]
    a, b = at_once.predict_topk(queries, 8), one_by_one.predict_topk(queries, 8)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(a[0], b[0], rtol=1e-5)


def test_add_labels_rejects_bad_label_features(data):
    """Numeric fit: NaN label features (ranked first with a NaN score and a
    -1 label before), no rows (classes_ turned into floats) and another width
    (an index error inside torch) are clean errors that leave the model."""
    X, Z = _numeric(data)
    clf = DecafClassifier(**TINY).fit(X, data["Y"], label_info=LabelInfo(features=Z))
    bad_value = Z[:1].toarray()
    bad_value[0, 0] = np.nan
    for bad, match in [
        (sp.csr_matrix(bad_value), "NaN"),
        (sp.csr_matrix((0, Z.shape[1])), "0 sample"),
        (sp.csr_matrix(np.ones((1, Z.shape[1] + 3))), "columns"),
    ]:
        with pytest.raises(ValueError, match=match):
            clf.add_labels(bad)
    assert clf.n_labels_ == 30 and clf.classes_.dtype.kind == "i"
    clf.add_labels(Z[:1])
    assert clf.n_labels_ == 31 and clf.classes_.dtype.kind == "i"


# ----------------------------------------------------- pretrained token init
def test_token_init_array_is_the_starting_table(data):
    """The encoder's table starts from token_init (a learning rate too small
    to move it leaves it there) and the other weights are drawn as without."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vocabulary = TfidfVectorizer().fit(data["text"][:240] + data["label_text"])
    n_features = len(vocabulary.vocabulary_)  # the estimator's vocabulary
    init = np.random.default_rng(1).normal(size=(n_features, 16)).astype(np.float32)
    still = DecafClassifier(**{**TINY, "learning_rate": 1e-12}, token_init=init)
    still.fit(data["text"][:240], data["Y"][:240], label_info=data["info"])
    table = still.network_.encoder.embedding.weight.detach().numpy()
    np.testing.assert_allclose(table, init, atol=1e-6)
    random = DecafClassifier(**{**TINY, "learning_rate": 1e-12}).fit(
        data["text"][:240], data["Y"][:240], label_info=data["info"]
    )
    assert not np.allclose(random.network_.encoder.embedding.weight.detach(), init)
    for name in ("encoder.transform.linear.weight",):
        np.testing.assert_allclose(
            still.network_.state_dict()[name],
            random.network_.state_dict()[name],
            atol=1e-8,
        )


def test_token_init_from_an_encoder_folder(data, tmp_path):
    from skxmc.nn._text_encoder import static_term_embeddings
    from skxmc.utils._testing import save_tiny_bert

    words = sorted({w for t in data["text"][:240] for w in t.split()})[:300]
    folder = save_tiny_bert(tmp_path / "bert", words)
    clf = DecafClassifier(**TINY, token_init=folder)
    clf.fit(data["text"][:240], data["Y"][:240], label_info=data["info"])
    plain = DecafClassifier(**TINY).fit(
        data["text"][:240], data["Y"][:240], label_info=data["info"]
    )
    # the table it started from: the static embeddings of the vocabulary
    seed = int(np.random.RandomState(0).randint(np.iinfo(np.int32).max))
    expected = static_term_embeddings(
        folder, clf.vectorizer_.get_feature_names_out(), n_components=16,
        random_state=seed,
    )  # fmt: skip
    assert expected.shape == (len(clf.vectorizer_.vocabulary_), 16)
    np.testing.assert_allclose(np.linalg.norm(expected, axis=1), 1, rtol=1e-5)
    assert not np.array_equal(
        clf.predict_topk(data["text"][240:], k=3)[1],
        plain.predict_topk(data["text"][240:], k=3)[1],
    )


def test_token_init_errors(data, tmp_path):
    X = sp.random(40, 30, density=0.2, format="csr", random_state=0)
    Y = data["Y"][:40]
    Z = sp.random(Y.shape[1], 30, density=0.2, format="csr", random_state=1)
    with pytest.raises(ValueError, match="needs raw text input"):
        DecafClassifier(**TINY, token_init=str(tmp_path)).fit(
            X, Y, label_info=LabelInfo(features=Z)
        )
    with pytest.raises(ValueError, match=r"shape \(n_features, embedding_dim\)"):
        DecafClassifier(**TINY, token_init=np.zeros((29, 16))).fit(
            X, Y, label_info=LabelInfo(features=Z)
        )
