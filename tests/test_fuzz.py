"""Fuzzing the public entry points with bad input (issue 14).

Every generated bad input must end in a ValueError or TypeError raised by
skxmc itself (or by scikit-learn's input validation) whose message names the
problem -- never an exception from inside numpy, scipy, numba or torch -- and
every valid input must give the answer of an independent oracle (never a
silently different answer).

The estimator tests run over ``ESTIMATORS``, all five estimators (DECAF on
text and on numeric features) with the fast parameters of the common checks:
add an estimator by adding a ``FuzzTarget`` (a fast configuration, tiny
training data and whether it reads text), and the same strategies apply to
it: bad X, y, k, label data and ``add_labels`` input must be clean errors;
odd but valid input (empty, unicode, out-of-vocabulary and over-long
documents, zero or huge rows, k beyond the labels, labels without positives,
rows without labels) must give a well-formed answer.

Bounded: ``max_examples`` is small, examples are derandomised (the same ones
on every run) and nothing is stored on disk (the module's time is measured
in the commit that extended it to the deep estimators).
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import traceback
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import skxmc  # noqa: E402
from skxmc import (  # noqa: E402
    DecafClassifier,
    EclareClassifier,
    EliasClassifier,
    LabelInfo,
    XRLinearClassifier,
    XRTransformerClassifier,
)
from skxmc.datasets import load_xc_repo, make_xmc_classification  # noqa: E402
from skxmc.metrics import ndcg_at_k, precision_at_k, psp_at_k  # noqa: E402

FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
# for tests parametrised over every defect: a few random problems per defect
FEW = settings(FUZZ, max_examples=6)

# Where a clean error may come from: skxmc, or sklearn's own input validation.
_SKXMC = str(Path(skxmc.__file__).resolve().parent) + os.sep
_SKLEARN_VALIDATION = tuple(
    os.sep + os.path.join("sklearn", "utils", name)
    for name in ("validation.py", "_param_validation.py", "multiclass.py")
)


def assert_clean_error(excinfo) -> None:
    """A ValueError/TypeError raised by skxmc (or sklearn's validation) with a
    message: never one escaping from inside numpy, scipy, numba or torch."""
    exc = excinfo.value
    assert isinstance(exc, (ValueError, TypeError)), repr(exc)
    assert str(exc).strip(), f"{type(exc).__name__} without a message"
    origin = str(Path(traceback.extract_tb(excinfo.tb)[-1].filename).resolve())
    assert origin.startswith(_SKXMC) or origin.endswith(_SKLEARN_VALIDATION), (
        f"{type(exc).__name__}({exc}) raised in {origin}"
    )


def raises_cleanly(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` raises a clean error, and no numpy
    RuntimeWarning (overflow, invalid value) leaks out on the way."""
    with pytest.raises((ValueError, TypeError)) as excinfo, warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fn(*args, **kwargs)
    assert_clean_error(excinfo)
    return excinfo.value


# --------------------------------------------------------------- estimators
@dataclass
class FuzzTarget:
    """How to fuzz one estimator.

    make : a fast, seeded configuration (a fit well under a second);
    data : tiny training data ``(X, Y)`` or ``(X, Y, fit_params)``; X numeric,
        or a list of str when ``text`` is True;
    text : whether the estimator reads raw text (the bad-text strategies
        apply) rather than numeric features (the bad-array strategies apply).
    """

    make: Callable[[], object]
    data: Callable[[], tuple]
    text: bool = False

    def training_data(self):
        X, Y, *rest = self.data()
        return X, Y, (rest[0] if rest else {})


def _numeric_data():
    X, Y = make_xmc_classification(
        n_samples=60, n_labels=10, n_features=20, random_state=0
    )
    return X.toarray(), Y


def _text_data():
    d = make_xmc_classification(
        n_samples=40, n_labels=6, n_features=30, return_text=True, random_state=0
    )
    return list(d.text), d.Y


def _text_data_with_label_text():
    d = make_xmc_classification(
        n_samples=40, n_labels=6, n_features=30, return_text=True, random_state=0
    )
    return list(d.text), d.Y, {"label_info": LabelInfo(text=list(d.label_text))}


def _numeric_data_with_label_features():
    from skxmc.indexing import pifa_embedding

    X, Y = _numeric_data()
    return X, Y, {"label_info": LabelInfo(features=pifa_embedding(X, Y))}


def _centroid_text():
    from skxmc.utils._testing import CentroidRanker

    return CentroidRanker(accept="text")


def _fast(cls):
    """The fast test configuration of ``cls`` (skxmc.utils._testing), seeded."""

    def make():
        from skxmc.utils._testing import make_fast_estimator

        return make_fast_estimator(cls, random_state=0)

    return make


ESTIMATORS = {
    "xr_linear": FuzzTarget(
        make=lambda: XRLinearClassifier(max_leaf_size=4, n_jobs=1, random_state=0),
        data=_numeric_data,
    ),
    # the test double of the text path of BaseXMCClassifier (the checks every
    # text estimator inherits)
    "base_text": FuzzTarget(make=_centroid_text, data=_text_data, text=True),
    # the deep estimators, with the fast parameters of the common checks
    "decaf": FuzzTarget(
        make=_fast(DecafClassifier), data=_text_data_with_label_text, text=True
    ),
    "decaf_numeric": FuzzTarget(
        make=_fast(DecafClassifier), data=_numeric_data_with_label_features
    ),
    "eclare": FuzzTarget(
        make=_fast(EclareClassifier), data=_text_data_with_label_text, text=True
    ),
    "xr_transformer": FuzzTarget(
        make=_fast(XRTransformerClassifier), data=_text_data, text=True
    ),
    "elias": FuzzTarget(make=_fast(EliasClassifier), data=_text_data, text=True),
}


@pytest.fixture(scope="module", params=sorted(ESTIMATORS))
def target(request):
    spec = ESTIMATORS[request.param]
    X, Y, fit_params = spec.training_data()
    return spec, spec.make().fit(X, Y, **fit_params), X, Y


_BAD_VALUES = [np.nan, np.inf, -np.inf, 1e39, -1e39]


@st.composite
def bad_numeric_X(draw, n_features):
    """(X, what is wrong) for a model fitted on ``n_features`` features."""
    n = draw(st.integers(1, 4))
    kind = draw(
        st.sampled_from(
            [
                "non_finite",
                "non_finite_sparse",
                "n_features",
                "ndim",
                "text",
                "mixed_text",
                "none",
                "complex",
                "empty",
                "ragged",
            ]
        )
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    X = rng.random((n, n_features))
    if kind in ("non_finite", "non_finite_sparse"):
        i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, n_features - 1))
        X[i, j] = draw(st.sampled_from(_BAD_VALUES))
        return (sp.csr_matrix(X) if kind.endswith("sparse") else X), kind
    if kind == "n_features":
        width = draw(st.integers(0, 2 * n_features).filter(lambda w: w != n_features))
        return rng.random((n, width)), kind
    if kind == "ndim":
        return rng.random((n, n_features, 2)), kind
    if kind == "text":
        return draw(st.lists(st.text(max_size=5), min_size=1, max_size=3)), kind
    if kind == "mixed_text":
        rows = X.tolist()
        rows[draw(st.integers(0, n - 1))] = draw(st.text(max_size=5))
        return rows, kind
    if kind == "none":
        rows = X.tolist()
        rows[draw(st.integers(0, n - 1))][0] = None
        return rows, kind
    if kind == "complex":
        return X + 1j, kind
    if kind == "empty":
        return draw(
            st.sampled_from([[], np.zeros((0,)), np.zeros((0, n_features))])
        ), kind
    rows = [*X.tolist(), X[0].tolist()]  # ragged: two rows at least, one short
    rows[0] = rows[0][:-1]
    return rows, kind


def _one_shot(texts):
    yield from texts


@st.composite
def bad_text_X(draw):
    """(X, what is wrong) for an estimator that reads raw text."""
    docs = draw(st.lists(st.text(max_size=8), min_size=1, max_size=4))
    kind = draw(
        st.sampled_from(["element", "bytes", "column", "generator", "empty", "str"])
    )
    if kind == "element":
        bad = draw(st.sampled_from([None, np.nan, 1, 2.5, True, ["a"], {"a": 1}, b"x"]))
        docs.insert(draw(st.integers(0, len(docs))), bad)
        return docs, kind
    if kind == "bytes":
        return [d.encode("utf-8", "surrogatepass") for d in docs], kind
    if kind == "column":
        return np.array(docs, dtype=object).reshape(-1, 1), kind
    if kind == "generator":
        return _one_shot(docs), kind
    if kind == "empty":
        return draw(st.sampled_from([[], (), np.array([], dtype=str)])), kind
    return docs[0], kind  # a bare string


def test_fitted_estimators_give_the_same_answer_for_every_container(target):
    spec, est, X, _ = target
    if spec.text:
        expected = est.predict_topk(X[:5], 3)
        for container in (tuple(X[:5]), np.array(X[:5]), np.array(X[:5], object)):
            got = est.predict_topk(container, 3)
            np.testing.assert_array_equal(got[1], expected[1])
        return
    expected = est.predict_topk(sp.csr_matrix(X[:5]), 3)
    for container in (X[:5], X[:5].tolist(), X[:5].astype(np.float64)):
        got = est.predict_topk(container, 3)
        np.testing.assert_array_equal(got[1], expected[1])
        np.testing.assert_allclose(got[0], expected[0], rtol=1e-6)


@FUZZ
@given(data=st.data())
def test_predict_rejects_bad_X_cleanly(target, data):
    spec, est, X, _ = target
    if spec.text:
        bad, _ = data.draw(bad_text_X())
        raises_cleanly(est.predict_topk, bad)
        return
    bad, _ = data.draw(bad_numeric_X(X.shape[1]))
    raises_cleanly(est.predict_topk, bad)
    if hasattr(est, "predict_topk_one"):  # the single-query path: one row of it
        one = bad
        if isinstance(bad, list) and bad and isinstance(bad[0], list):
            one = next((row for row in bad if not _is_clean_row(row)), bad[0])
        elif sp.issparse(bad) or (isinstance(bad, np.ndarray) and bad.ndim == 2):
            rows = [r for r in range(bad.shape[0]) if not _is_clean_row(bad[r])]
            one = bad[rows[0] if rows else 0 : (rows[0] if rows else 0) + 1]
        if not _is_clean_row(one, X.shape[1]):
            raises_cleanly(est.predict_topk_one, one)


def _is_clean_row(row, n_features=None) -> bool:
    """Whether ``row`` is one valid row of numbers (of ``n_features`` values)."""
    try:
        values = row.toarray() if sp.issparse(row) else np.asarray(row)
        if values.dtype.kind not in "biuf":
            return False
        values = values.astype(np.float64).ravel()
    except (TypeError, ValueError):
        return False
    if n_features is not None and values.size != n_features:
        return False
    return bool(np.isfinite(values).all() and np.abs(values).max(initial=0) < 3e38)


@st.composite
def bad_targets(draw, n_samples, n_labels):
    """(y, what is wrong) for ``n_samples`` rows: values, shapes, containers."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    Y = (rng.random((n_samples, n_labels)) < 0.3).astype(np.int64)
    Y[np.arange(n_samples), rng.integers(0, n_labels, n_samples)] = 1
    kind = draw(
        st.sampled_from(
            ["value", "value_sparse", "str", "rows", "ndim", "empty_space", "none"]
        )
    )
    if kind in ("value", "value_sparse"):
        i, j = draw(st.integers(0, n_samples - 1)), draw(st.integers(0, n_labels - 1))
        Y = Y.astype(np.float64)
        Y[i, j] = draw(st.sampled_from([2, -1, 0.5, np.nan, np.inf, 1e39]))
        return (sp.csr_matrix(Y) if kind == "value_sparse" else Y), kind
    if kind == "str":
        return Y.astype(str), kind
    if kind == "rows":
        return Y[: draw(st.integers(1, n_samples - 1))], kind
    if kind == "ndim":
        return Y[:, :, None], kind
    if kind == "empty_space":
        return np.zeros((n_samples, n_labels), dtype=np.int64), kind
    return None, kind


@FUZZ
@given(data=st.data())
def test_fit_rejects_bad_X_or_y_cleanly(target, data):
    spec, _, X, Y = target
    fit_params = spec.training_data()[2]
    X, Y = X[:12], Y[:12]
    if data.draw(st.booleans(), label="bad y"):
        bad_y, _ = data.draw(bad_targets(len(X), Y.shape[1]))
        raises_cleanly(spec.make().fit, X, bad_y, **fit_params)
    elif spec.text:
        bad_X, _ = data.draw(bad_text_X())
        raises_cleanly(spec.make().fit, bad_X, Y[:3], **fit_params)
    else:
        bad_X, kind = data.draw(bad_numeric_X(X.shape[1]))
        n_rows = bad_X.shape[0] if hasattr(bad_X, "shape") else len(bad_X)
        # rows matched, so the error is about X; any width is fine in fit, so
        # a bad width is made bad by a row count that differs from y's
        y = Y[: n_rows + (kind == "n_features")]
        raises_cleanly(spec.make().fit, bad_X, y, **fit_params)


# ------------------------------------------ odd but valid input: an answer
def assert_well_formed(scores, indices, n_rows, k, n_labels) -> None:
    """A ``predict_topk`` answer: ``k`` distinct labels per row, best first,
    finite scores, ``-1`` / ``-inf`` padding only after the last label."""
    assert scores.shape == indices.shape == (n_rows, k)
    assert scores.dtype == np.float32 and indices.dtype == np.int64
    valid = indices >= 0
    assert (valid[:, :-1] | ~valid[:, 1:]).all(), "padding before a label"
    assert (indices[~valid] == -1).all() and np.isneginf(scores[~valid]).all()
    assert np.isfinite(scores[valid]).all(), "a retrieved label without a score"
    assert (indices[valid] < n_labels).all()
    for row, ok, row_scores in zip(indices, valid, scores):
        assert len(set(row[ok].tolist())) == ok.sum(), "a label retrieved twice"
        assert (np.diff(row_scores[ok]) <= 0).all(), "not best first"


@FEW
@given(k=st.integers(1, 40))
def test_any_k_gives_the_ranking_padded(target, k):
    """k beyond the number of labels pads with -1 / -inf; the labels that are
    retrieved are those of a larger k, in the same order (k only cuts)."""
    _, est, X, _ = target
    rows = X[:4]
    big = est.n_labels_ + 5
    scores, indices = est.predict_topk(rows, k)
    assert_well_formed(scores, indices, 4, k, est.n_labels_)
    ref_scores, ref_indices = est.predict_topk(rows, max(k, big))
    np.testing.assert_array_equal(indices, ref_indices[:, :k])
    np.testing.assert_allclose(scores, ref_scores[:, :k], rtol=1e-5)


@FUZZ
@given(
    k=st.one_of(
        st.integers(-(2**40), 0),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.text(max_size=3),
        st.just([3]),
    )
)
def test_bad_k_is_rejected_cleanly(target, k):
    _, est, X, _ = target
    raises_cleanly(est.predict_topk, X[:2], k)


_ODD_DOCUMENTS = [
    "",
    " ",
    "\t\n",
    "\x00",
    "\ud800",  # a lone surrogate
    "🙂 漢字 ünïcødé",
    "[CLS] [SEP] [PAD] [UNK] [MASK]",
    "w1 " * 300,  # longer than max_length
    "qqq zzz",  # only words never seen
]


@st.composite
def odd_documents(draw, X):
    """Valid documents: training ones and empty, unicode, OOV, long ones."""
    pool = st.one_of(
        st.sampled_from(_ODD_DOCUMENTS), st.text(max_size=20), st.sampled_from(X)
    )
    return draw(st.lists(pool, min_size=1, max_size=5))


@st.composite
def odd_rows(draw, X):
    """Valid numeric rows: zero rows, negative, tiny and large finite values."""
    n = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    rows = X[rng.integers(0, len(X), n)].astype(np.float64)
    kind = draw(st.sampled_from(["zero", "negative", "tiny", "large", "train"]))
    if kind == "zero":
        rows[rng.random(n) < 0.7] = 0.0
    elif kind == "negative":
        rows = -rows
    elif kind == "tiny":
        rows = rows * 1e-30
    elif kind == "large":
        rows = rows * 1e30
    return sp.csr_matrix(rows) if draw(st.booleans()) else rows


@settings(FUZZ, max_examples=15)
@given(data=st.data())
def test_odd_but_valid_input_gets_a_well_formed_answer(target, data):
    """Empty, unicode, OOV and over-long documents (zero, negative, tiny and
    huge finite rows for numeric estimators) are valid: a ranking of finite
    scores, and for the estimators with ``transform`` finite embeddings."""
    spec, est, X, _ = target
    rows = data.draw(odd_documents(X) if spec.text else odd_rows(X))
    n_rows = len(rows) if spec.text else rows.shape[0]
    k = data.draw(st.integers(1, est.n_labels_ + 2))
    assert_well_formed(*est.predict_topk(rows, k), n_rows, k, est.n_labels_)
    if hasattr(est, "transform"):
        embedding = est.transform(rows)
        assert embedding.shape[0] == n_rows and np.isfinite(embedding).all()


@settings(FUZZ, max_examples=4)
@given(data=st.data())
def test_odd_training_data_fits_or_is_named(target, data):
    """Labels without positives, rows without labels and empty documents in
    training warn (XMCDataWarning) and fit a model that answers well-formed;
    training documents that hold no word at all are a clean error or a fit."""
    from skxmc.exceptions import XMCDataWarning

    spec, _, X, Y = target
    fit_params = spec.training_data()[2]
    Y = Y.tolil(copy=True)
    X = list(X) if spec.text else X.copy()
    kind = data.draw(
        st.sampled_from(
            ["label_without_positives", "row_without_labels", "empty_documents"]
            + (["no_word_at_all"] if spec.text else [])
        )
    )
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    picked = rng.choice(len(X), size=len(X) // 3, replace=False)
    if kind == "label_without_positives":
        Y[:, int(rng.integers(Y.shape[1]))] = 0
    elif kind == "row_without_labels":
        Y[picked] = 0
    elif kind == "empty_documents":
        for i in picked:
            X[i] = "" if spec.text else 0.0
    else:
        X = [data.draw(st.sampled_from(["", " ", "a", "\x00 ! ?"])) for _ in X]
    Y = Y.tocsr()
    est = spec.make()
    if kind == "no_word_at_all":
        try:
            est.fit(X, Y, **fit_params)
        except (ValueError, TypeError):
            raises_cleanly(spec.make().fit, X, Y, **fit_params)
            return
    elif kind == "empty_documents" and not spec.text:
        est.fit(X, Y, **fit_params)  # a zero row is an ordinary row
    else:
        expected = kind != "empty_documents"
        with pytest.warns(XMCDataWarning) if expected else nullcontext():
            est.fit(X, Y, **fit_params)
    assert_well_formed(*est.predict_topk(X[:3], 4), 3, 4, est.n_labels_)


@settings(FUZZ, max_examples=15)
@given(data=st.data())
def test_add_labels_rejects_bad_labels_cleanly(target, data):
    """add_labels of DECAF and ECLARE: bad label text or features is a clean
    error (NaN features used to rank the new label first with a NaN score),
    valid but odd label text a model that ranks one more label."""
    import copy

    spec, fitted, X, _ = target
    if not hasattr(fitted, "add_labels"):
        return
    est = copy.deepcopy(fitted)
    if spec.text:
        if data.draw(st.booleans(), label="valid"):
            texts = data.draw(odd_documents(X))
            est.add_labels(texts)
            n_labels = fitted.n_labels_ + len(texts)
            assert est.n_labels_ == n_labels
            assert_well_formed(
                *est.predict_topk(X[:3], n_labels), 3, n_labels, n_labels
            )
            return
        bad, _ = data.draw(bad_text_X())
    else:
        bad, _ = data.draw(bad_numeric_X(X.shape[1]))
        if isinstance(bad, np.ndarray) and bad.ndim == 2 and bad.dtype.kind == "f":
            bad = sp.csr_matrix(bad)  # label features are a sparse matrix
    raises_cleanly(est.add_labels, bad)
    assert est.n_labels_ == fitted.n_labels_ and len(est.classes_) == est.n_labels_


@st.composite
def bad_label_info(draw, n_labels, n_features):
    """(keyword arguments of LabelInfo, what is wrong): features or a graph
    of the wrong type, values or shape."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    features = rng.random((n_labels, n_features))
    graph = (rng.random((n_labels, n_labels)) < 0.3).astype(np.float64)
    part = draw(st.sampled_from(["features", "graph"]))
    kind = draw(st.sampled_from(["str", "object", "nan", "inf", "rows", "ndim"]))
    value = features if part == "features" else graph
    if kind == "str":
        value = value.astype(str)
    elif kind == "object":
        value = value.astype(object)
        value[0, 0] = draw(st.sampled_from(["a", None, b"x", [1]]))
    elif kind in ("nan", "inf"):
        value[0, 0] = np.nan if kind == "nan" else -np.inf
    elif kind == "rows":
        value = value[: draw(st.integers(0, n_labels - 1))]
    else:
        value = value[..., None]
    return {part: value}, f"{part}_{kind}"


@FUZZ
@given(data=st.data())
def test_bad_label_info_is_rejected_cleanly(target, data):
    spec, _, X, Y = target
    if not spec.make().__class__.__name__.startswith(("Decaf", "Eclare")):
        return
    fit_params = spec.training_data()[2]
    n_features = X.shape[1] if not spec.text else 5
    kwargs, _ = data.draw(bad_label_info(Y.shape[1], n_features))
    if spec.text:
        kwargs["text"] = list(fit_params["label_info"].text)

    def fit():
        spec.make().fit(X, Y, label_info=LabelInfo(**kwargs))

    raises_cleanly(fit)


# ---------------------------------------------------------------- metrics
def _oracle_precision(Y, S, k):
    top = np.argsort(-S, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.take_along_axis(Y, top, axis=1).sum(1) / k))


def _oracle_ndcg(Y, S, k):
    top = np.argsort(-S, axis=1, kind="stable")[:, :k]
    width = top.shape[1]  # min(k, n_labels)
    gains = np.take_along_axis(Y, top, axis=1) / np.log2(np.arange(2, width + 2))
    discounts = np.cumsum(1 / np.log2(np.arange(2, k + 2)))
    n_pos = np.minimum(Y.sum(1), k)
    ideal = np.where(n_pos > 0, discounts[np.maximum(n_pos - 1, 0)], 1.0)
    return float(np.mean(np.where(n_pos > 0, gains.sum(1) / ideal, 0.0)))


@st.composite
def metric_problem(draw):
    n = draw(st.integers(1, 6))
    n_labels = draw(st.integers(1, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    Y = (rng.random((n, n_labels)) < 0.4).astype(np.int64)
    S = rng.permuted(np.tile(np.arange(n_labels, dtype=np.float64), (n, 1)), axis=1)
    return Y, S, draw(st.integers(1, n_labels + 2))


@FUZZ
@given(problem=metric_problem(), sparse=st.booleans(), pair=st.booleans())
def test_metrics_agree_with_an_oracle_on_valid_input(problem, sparse, pair):
    Y, S, k = problem
    y_true = sp.csr_matrix(Y) if sparse else Y
    if pair:  # the predict_topk form: a (scores, indices) pair, best first
        order = np.argsort(-S, axis=1, kind="stable")
        y_score = (np.take_along_axis(S, order, axis=1), order)
    else:
        y_score = S
    assert precision_at_k(y_true, y_score, k=k) == pytest.approx(
        _oracle_precision(Y, S, k)
    )
    assert ndcg_at_k(y_true, y_score, k=k) == pytest.approx(_oracle_ndcg(Y, S, k))
    psp = psp_at_k(y_true, y_score, np.ones(Y.shape[1]), k=k)
    assert 0.0 <= psp <= 1.0


_METRIC_DEFECTS = [
    "y_true_value",
    "y_true_1d",
    "y_true_text",
    "score_nan",
    "score_shape",
    "score_text",
    "pair_indices",
    "pair_float_indices",
    "pair_shapes",
    "k",
    "propensity",
    "propensity_shape",
]


@pytest.mark.parametrize("defect", _METRIC_DEFECTS)
@FEW
@given(
    problem=metric_problem(),
    metric=st.sampled_from(["precision", "ndcg", "psp"]),
    value=st.sampled_from([2, -1, 0.5, np.nan, np.inf]),
)
def test_metrics_reject_bad_input_cleanly(defect, problem, metric, value):
    Y, S, k = problem
    n, n_labels = Y.shape
    inv_p = np.ones(n_labels)
    y_true, y_score = Y.astype(np.float64), S.copy()
    order = np.argsort(-S, axis=1, kind="stable")
    pair = (np.take_along_axis(S, order, axis=1), order)
    if defect == "y_true_value":
        y_true[0, 0] = value
    elif defect == "y_true_1d":
        y_true = y_true[0]
    elif defect == "y_true_text":
        y_true = y_true.astype(str)
    elif defect == "score_nan":
        y_score[0, 0] = np.nan
    elif defect == "score_shape":
        y_score = S[:, :-1] if n_labels > 1 else S[:-1] if n > 1 else S[:, :0]
    elif defect == "score_text":
        y_score = S.astype(str)
    elif defect == "pair_indices":
        bad = pair[1].copy()
        bad[0, 0] = n_labels if value != -1 else -2
        y_score = (pair[0], bad)
    elif defect == "pair_float_indices":
        y_score = (pair[0], pair[1].astype(np.float64))
    elif defect == "pair_shapes":
        y_score = (pair[0][:, :1], pair[1]) if n_labels > 1 else (pair[0][:0], pair[1])
    elif defect == "k":
        k = {2: 0, -1: -1, 0.5: 1.5, np.nan: "5"}.get(value, True)
    elif defect == "propensity":
        inv_p[0] = value if value not in (2, 0.5) else -value
    elif defect == "propensity_shape":
        inv_p = np.ones(n_labels + 1)
    if defect.startswith("propensity"):
        metric = "psp"
    fn = {
        "precision": lambda: precision_at_k(y_true, y_score, k=k),
        "ndcg": lambda: ndcg_at_k(y_true, y_score, k=k),
        "psp": lambda: psp_at_k(y_true, y_score, inv_p, k=k),
    }[metric]
    raises_cleanly(fn)


# ----------------------------------------------------------------- loaders
@st.composite
def bow_problem(draw):
    """A valid tiny bag-of-words data set: (X, Y) dense, float32-exact values."""
    n = draw(st.integers(1, 5))
    n_features = draw(st.integers(1, 6))
    n_labels = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    X = np.where(
        rng.random((n, n_features)) < 0.5, rng.integers(1, 64, (n, n_features)) / 8, 0
    )
    Y = (rng.random((n, n_labels)) < 0.4).astype(np.float32)
    return X.astype(np.float32), Y


def _bow_text(X, Y):
    lines = [f"{X.shape[0]} {X.shape[1]} {Y.shape[1]}"]
    for x, y in zip(X, Y):
        labels = ",".join(map(str, np.flatnonzero(y)))
        feats = " ".join(f"{j}:{x[j]:g}" for j in np.flatnonzero(x))
        lines.append(f"{labels} {feats}".rstrip() if labels else f" {feats}".rstrip())
    return "\n".join(lines) + "\n"


_BAD_TOKENS = ["nan", "inf", "1e39", "-3.5e38", "abc", "", "1:2", "0x10", "1e400"]


@pytest.mark.parametrize(
    "defect, token",
    [(None, None)]
    + [
        (defect, token)
        for defect in ("header", "count", "value", "label", "feature")
        for token in _BAD_TOKENS
    ],
)
@FEW
@given(problem=bow_problem(), gz=st.booleans())
def test_bow_loader_round_trips_or_names_the_file(defect, token, problem, gz):
    X, Y = problem
    n, n_features = X.shape
    n_labels = Y.shape[1]
    text = _bow_text(X, Y)
    header, *lines = text.splitlines()
    if defect == "header":
        text = f"{header} {token or 'x'}\n" + "\n".join(lines) + "\n"
    elif defect == "count":
        text = f"{n + 1} {n_features} {n_labels}\n" + "\n".join(lines) + "\n"
    elif defect == "value":
        lines[0] = f"{lines[0]} 0:{token}"
    elif defect == "label":
        lines[0] = f"{n_labels if token in ('', 'inf') else token},0 0:1"
    elif defect == "feature":
        lines[0] = f"0 {n_features if token == '' else token}:1"
    if defect not in (None, "header", "count"):
        text = "\n".join([header, *lines]) + "\n"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("train.txt.gz" if gz else "train.txt")
        raw = text.encode()
        path.write_bytes(gzip.compress(raw) if gz else raw)
        if defect is None:
            data = load_xc_repo(folder)
            np.testing.assert_array_equal(data.X_train.toarray(), X)
            np.testing.assert_array_equal(data.Y_train.toarray(), Y)
            return
        try:
            data = load_xc_repo(folder)
        except (ValueError, TypeError):
            error = raises_cleanly(load_xc_repo, folder)
            assert str(path) in str(error)
            return
        # the defect was harmless (e.g. "1:2" read as a feature): still exact
        assert np.isfinite(data.X_train.data).all()
        assert data.X_train.shape == (n, n_features)
        assert set(np.unique(data.Y_train.data)) <= {1.0}


@pytest.mark.parametrize(
    "defect",
    [None, "target", "big_target", "negative", "float", "json", "utf8", "truncated"],
)
@FEW
@given(n=st.integers(1, 4), n_labels=st.integers(1, 4))
def test_json_loader_round_trips_or_names_the_file(defect, n, n_labels):
    docs = [
        {"uid": i, "title": f"doc {i}", "target_ind": [i % n_labels]} for i in range(n)
    ]
    if defect == "target":
        docs[-1]["target_ind"] = [n_labels]
    elif defect == "big_target":
        docs[-1]["target_ind"] = [2**70]
    elif defect == "negative":
        docs[-1]["target_ind"] = [-1]
    elif defect == "float":
        docs[-1]["target_ind"] = [0.5]
    raw = "".join(json.dumps(d) + "\n" for d in docs).encode()
    if defect == "json":
        raw = raw[:-3] + b"\n"
    elif defect == "utf8":
        raw = raw.replace(b"doc", b"d\xffc", 1)
    labels = "".join(
        json.dumps({"title": f"label {j}"}) + "\n" for j in range(n_labels)
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "trn.json.gz"
        packed = gzip.compress(raw)
        if defect == "truncated":
            packed = packed[: len(packed) // 2]
        path.write_bytes(packed)
        (Path(folder) / "lbl.json").write_text(labels)
        if defect is None:
            data = load_xc_repo(folder)
            assert data.Y_train.shape == (n, n_labels)
            assert data.Y_train.nnz == n
            return
        error = raises_cleanly(load_xc_repo, folder)
        assert str(path) in str(error)
