"""Checks of the extreme multi-label contract, shared by every skxmc classifier.

scikit-learn's common checks
(:func:`sklearn.utils.estimator_checks.parametrize_with_checks`) test the
sklearn API on small numeric problems. The checks here test what they cannot
see: top-k retrieval, raw-text input, pickling of torch state, reproducible
fits that leave the global random state alone, model selection with sparse
targets and the XMC scorers, checkpoint resumption and loading a GPU fit on a
CPU. They fit on a tiny problem from
:func:`~skxmc.datasets.make_xmc_classification`: its text (``"w3 w17 ..."``,
with :class:`~skxmc.LabelInfo` label text) for estimators that read raw text,
else its TF-IDF matrix.

Each check takes ``(name, estimator)`` like sklearn's, works on clones of the
(unfitted) estimator, and raises an ``AssertionError`` when the estimator
breaks the contract (or ``unittest.SkipTest`` when it cannot run, e.g. without
CUDA). :func:`yield_xmc_checks` lists the checks that apply to an estimator.
The checks use only the public API, plus ``_accepts_text`` (does ``fit`` read
raw text) and, where an estimator defines it, the dense scoring helper
``_full_scores(X)``.

Examples
--------
>>> from skxmc.utils._testing import CentroidRanker
>>> from skxmc.utils.estimator_checks import (
...     check_xmc_pickle_round_trip,
...     yield_xmc_checks,
... )
>>> [check.__name__ for check in yield_xmc_checks(CentroidRanker())]
... # doctest: +NORMALIZE_WHITESPACE
['check_xmc_predict_topk_format', 'check_xmc_pickle_round_trip',
 'check_xmc_fit_reproducible', 'check_xmc_global_random_state_untouched',
 'check_xmc_grid_search', 'check_xmc_topk_equals_full_scores',
 'check_xmc_cuda_fit_loads_on_cpu']
>>> check_xmc_pickle_round_trip("CentroidRanker", CentroidRanker())
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import SkipTest, mock

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.utils import Bunch

from skxmc._label_info import LabelInfo
from skxmc.datasets import make_xmc_classification
from skxmc.exceptions import XMCDataWarning

__all__ = [
    "yield_xmc_checks",
    "check_xmc_predict_topk_format",
    "check_xmc_pickle_round_trip",
    "check_xmc_fit_reproducible",
    "check_xmc_global_random_state_untouched",
    "check_xmc_grid_search",
    "check_xmc_rejects_bare_string",
    "check_xmc_topk_equals_full_scores",
    "check_xmc_resume_equals_uninterrupted_fit",
    "check_xmc_checkpoints_are_safe",
    "check_xmc_cuda_fit_loads_on_cpu",
]

# The check problem: 6 labels, 30 words (w0 ... w29), 48 training rows.
_N_TRAIN, _N_TEST, _N_LABELS, _N_FEATURES = 48, 16, 6, 30
_K = 3
_BARE_STRING = "Iterable over raw text documents"


def yield_xmc_checks(estimator) -> Iterator[Callable]:
    """Yield the XMC checks that apply to ``estimator``.

    Every estimator gets the checks of top-k output, pickling,
    reproducibility, global random state, grid search and top-k against full
    scores; estimators that read raw text (``_accepts_text``) also get the
    bare-string check, estimators with a ``checkpoint_dir`` parameter the
    resume check, and estimators with a ``device`` parameter the CUDA check
    (which skips itself without a CUDA device).

    Parameters
    ----------
    estimator : BaseXMCClassifier
        An unfitted estimator instance.

    Yields
    ------
    check : callable
        ``check(name, estimator)``; raises ``AssertionError`` on failure.
    """
    params = estimator.get_params(deep=False)
    yield check_xmc_predict_topk_format
    yield check_xmc_pickle_round_trip
    yield check_xmc_fit_reproducible
    yield check_xmc_global_random_state_untouched
    yield check_xmc_grid_search
    if getattr(estimator, "_accepts_text", False):
        yield check_xmc_rejects_bare_string
    yield check_xmc_topk_equals_full_scores
    if "checkpoint_dir" in params:
        yield check_xmc_resume_equals_uninterrupted_fit
        yield check_xmc_checkpoints_are_safe
    if "device" in params:
        yield check_xmc_cuda_fit_loads_on_cpu


# --------------------------------------------------------------- the checks
def check_xmc_predict_topk_format(name, estimator):
    """``predict_topk``, ``decision_function`` and ``predict`` keep their format.

    ``predict_topk(X, k)`` returns float32 scores and int64 column indices of
    shape ``(n_samples, k)``, best first, distinct labels per row, and pads
    with ``-inf`` / ``-1`` beyond the retrieved labels (``k > n_labels``);
    ``return_scores=False`` returns the indices alone. ``decision_function``
    is a CSR matrix ``(n_samples, n_labels)`` with at most ``top_k`` entries
    per row, the ``top_k`` best of ``predict_topk``; ``predict`` of a sparse
    ``y`` fit is a CSR matrix of the same shape.

    Parameters
    ----------
    name : str
        Name of the estimator, for the messages.
    estimator : BaseXMCClassifier
        Unfitted estimator.
    """
    data = _xmc_data(estimator)
    est = _fit(_seeded(estimator), data)
    n, n_labels = len(_rows(data.X_test)), est.n_labels_
    for k in (_K, n_labels + 2):
        scores, labels = est.predict_topk(data.X_test, k)
        valid = labels >= 0
        assert scores.shape == labels.shape == (n, k), (
            f"{name}: predict_topk(X, k={k}) returned shapes {scores.shape} and "
            f"{labels.shape}, expected {(n, k)}."
        )
        assert scores.dtype == np.float32 and labels.dtype == np.int64, (
            f"{name}: predict_topk returned dtypes {scores.dtype} and "
            f"{labels.dtype}, expected float32 and int64."
        )
        assert np.all(labels < n_labels), f"{name}: label index >= n_labels_."
        assert np.array_equal(valid, np.isfinite(scores)), (
            f"{name}: predict_topk pads with index -1 exactly where the score is -inf."
        )
        assert np.all(valid[:, :-1] >= valid[:, 1:]), (
            f"{name}: predict_topk padding is not at the end of the rows."
        )
        assert valid[:, 0].all(), f"{name}: a row retrieved no label."
        filled = np.where(valid, scores, 0.0)  # padding: no -inf - -inf
        assert np.all(np.diff(filled, axis=1)[valid[:, 1:]] <= 0), (
            f"{name}: predict_topk scores are not sorted best first."
        )
        for row in labels:
            kept = row[row >= 0]
            assert len(np.unique(kept)) == len(kept), (
                f"{name}: a label was returned twice in one row: {row}."
            )
        assert not valid[:, n_labels:].any(), (
            f"{name}: predict_topk(X, k > n_labels) did not pad the extra columns."
        )
    alone = est.predict_topk(data.X_test, _K, return_scores=False)
    assert np.array_equal(alone, est.predict_topk(data.X_test, _K)[1]), (
        f"{name}: predict_topk(return_scores=False) differs from the indices."
    )
    decision = est.decision_function(data.X_test)
    assert sp.issparse(decision) and decision.shape == (n, n_labels), (
        f"{name}: decision_function should be a sparse (n_samples, n_labels) "
        f"matrix after a multi-label fit, got {type(decision).__name__} of shape "
        f"{getattr(decision, 'shape', None)}."
    )
    decision = sp.csr_matrix(decision)
    top_labels = est.predict_topk(data.X_test, est.top_k, return_scores=False)
    for row in range(n):
        start, stop = decision.indptr[row], decision.indptr[row + 1]
        keep = top_labels[row] >= 0
        assert set(decision.indices[start:stop]) == set(top_labels[row][keep]), (
            f"{name}: decision_function row {row} does not hold the top_k labels "
            "of predict_topk."
        )
    prediction = est.predict(data.X_test)
    assert sp.issparse(prediction) and prediction.shape == (n, n_labels), (
        f"{name}: predict after a sparse-y fit should return a sparse "
        f"(n_samples, n_labels) matrix, got {type(prediction).__name__}."
    )


def check_xmc_pickle_round_trip(name, estimator):
    """A pickled and unpickled fitted estimator predicts identically.

    Parameters
    ----------
    name : str
        Name of the estimator, for the messages.
    estimator : BaseXMCClassifier
        Unfitted estimator.
    """
    data = _xmc_data(estimator)
    est = _fit(_seeded(estimator), data)
    expected = est.predict_topk(data.X_test, _K)
    prediction = est.predict(data.X_test)
    try:
        loaded = pickle.loads(pickle.dumps(est))
        got = loaded.predict_topk(data.X_test, _K)
        loaded_prediction = loaded.predict(data.X_test)
    except Exception as exc:
        raise AssertionError(
            f"{name}: the unpickled estimator fails to predict: {exc!r}"
        ) from exc
    _assert_same_topk(expected, got, f"{name}: predict_topk changed after pickling")
    _assert_same_prediction(
        prediction, loaded_prediction, f"{name}: predict changed after pickling"
    )


def check_xmc_fit_reproducible(name, estimator):
    """Fits with ``random_state=0`` are identical, and so is a second fit.

    Two clones fitted with ``random_state=0`` predict identical top-k scores
    and labels, and refitting one of them on the same data changes nothing
    (no state leaks from one fit into the next).

    Parameters
    ----------
    name : str
        Name of the estimator, for the messages.
    estimator : BaseXMCClassifier
        Unfitted estimator.
    """
    data = _xmc_data(estimator)
    first = _fit(_seeded(estimator), data)
    second = _fit(_seeded(estimator), data)
    expected = first.predict_topk(data.X_test, _K)
    _assert_same_topk(
        expected,
        second.predict_topk(data.X_test, _K),
        f"{name}: two fits with random_state=0 differ",
    )
    _fit(first, data)
    _assert_same_topk(
        expected,
        first.predict_topk(data.X_test, _K),
        f"{name}: fitting the same estimator twice gives different models",
    )


def check_xmc_global_random_state_untouched(name, estimator):
    """``fit`` and the predict methods leave the global random states alone.

    The global numpy state (``np.random.get_state()``), torch's CPU generator
    (``torch.get_rng_state()``) and, with CUDA, torch's CUDA generators are the
    same before and after ``fit``, ``predict_topk``, ``decision_function`` and
    ``predict`` with ``random_state=0``: seeds come from ``random_state`` and
    local generators only.

    Parameters
    ----------
    name : str
        Name of the estimator, for the messages.
    estimator : BaseXMCClassifier
        Unfitted estimator.
    """
    import torch

    data = _xmc_data(estimator)
    est = _seeded(estimator)
    steps = [
        ("fit", lambda: _fit(est, data)),
        ("predict_topk", lambda: est.predict_topk(data.X_test, _K)),
        ("decision_function", lambda: est.decision_function(data.X_test)),
        ("predict", lambda: est.predict(data.X_test)),
    ]
    for method, step in steps:
        numpy_before = np.random.get_state()
        torch_before = torch.get_rng_state()
        cuda_before = _cuda_rng_states()
        step()
        numpy_after = np.random.get_state()
        assert numpy_before[2] == numpy_after[2] and np.array_equal(
            numpy_before[1], numpy_after[1]
        ), f"{name}.{method} changed the global numpy random state."
        assert torch.equal(torch_before, torch.get_rng_state()), (
            f"{name}.{method} changed torch's global (CPU) random state."
        )
        cuda_after = _cuda_rng_states()
        assert all(torch.equal(a, b) for a, b in zip(cuda_before, cuda_after)), (
            f"{name}.{method} changed torch's global CUDA random state."
        )


def check_xmc_grid_search(name, estimator):
    """``GridSearchCV`` runs with a sparse ``y`` and the XMC scorers.

    A grid over ``top_k`` with ``scoring=XMC_SCORERS``, ``refit="P@1"`` and
    ``KFold(2, shuffle=True, random_state=0)`` fits on a CSR ``y`` (label data
    passed as ``fit(..., label_info=...)``, never split), scores every split
    with finite values and refits a best estimator that predicts.

    Parameters
    ----------
    name : str
        Name of the estimator, for the messages.
    estimator : BaseXMCClassifier
        Unfitted estimator.
    """
    from skxmc.metrics import XMC_SCORERS

    data = _xmc_data(estimator)
    search = GridSearchCV(
        _seeded(estimator),
        {"top_k": [3, 5]},
        scoring=XMC_SCORERS,
        refit="P@1",
        cv=KFold(2, shuffle=True, random_state=0),
        error_score="raise",
    )
    fit_params = {} if data.label_info is None else {"label_info": data.label_info}
    try:
        with warnings.catch_warnings():
            # a fold may miss a rare label
            warnings.simplefilter("ignore", XMCDataWarning)
            search.fit(data.X, sp.csr_matrix(data.Y), **fit_params)
        labels = search.best_estimator_.predict_topk(data.X_test, 2)[1]
    except Exception as exc:
        raise AssertionError(
            f"{name}: GridSearchCV with a sparse y and XMC_SCORERS failed: {exc!r}"
        ) from exc
    for metric in XMC_SCORERS:
        values = search.cv_results_.get(f"mean_test_{metric}")
        assert values is not None and np.all(np.isfinite(values)), (
            f"{name}: GridSearchCV gave no finite mean_test_{metric}: {values}."
        )
    assert search.best_params_["top_k"] in (3, 5)
    assert labels.shape == (len(_rows(data.X_test)), 2), (
        f"{name}: the refitted best estimator's predict_topk has shape {labels.shape}."
    )


def check_xmc_rejects_bare_string(name, estimator):
    """A single string is rejected as X with sklearn's ``ValueError``.

    ``fit``, ``predict_topk``, ``decision_function`` and ``predict`` raise
    ``ValueError("Iterable over raw text documents expected, string object
    received.")`` (the message of sklearn's vectorizers) for a bare ``str``,
    instead of reading its characters as documents. An estimator that reads
    raw text only also rejects numeric X with a ``TypeError``.

    Parameters
    ----------
    name : str
        Name of the estimator, for the messages.
    estimator : BaseXMCClassifier
        Unfitted estimator that reads raw text.
    """
    data = _xmc_data(estimator)
    document = data.X_test[0]
    _assert_raises(
        ValueError,
        _BARE_STRING,
        lambda: clone(estimator).fit(document, data.Y[:1], label_info=data.label_info),
        f"{name}.fit(a single string)",
    )
    est = _fit(_seeded(estimator), data)
    for method in ("predict_topk", "decision_function", "predict"):
        _assert_raises(
            ValueError,
            _BARE_STRING,
            lambda method=method: getattr(est, method)(document),
            f"{name}.{method}(a single string)",
        )
    if not getattr(estimator, "_accepts_numeric", True):
        _assert_raises(
            TypeError,
            "raw text",
            lambda: est.predict_topk(np.zeros((2, 3), dtype=np.float32)),
            f"{name}.predict_topk(numeric X)",
        )


def check_xmc_topk_equals_full_scores(name, estimator):
    """With a full beam, ``predict_topk`` is the top of the full score ranking.

    After a fit, every search-width parameter the estimator has
    (``beam_size``, ``shortlist_size``) is set to ``n_labels_``. The full
    ranking is then the estimator's dense ``_full_scores(X)`` (every label
    scored, no search) where it defines one, else ``decision_function`` with
    ``top_k=n_labels_``. ``predict_topk(X, k=n_labels_)`` must return each
    label with its full score, every label the full ranking scores, and the
    scores of the full ranking in decreasing order; ``predict_topk(X, k=3)``
    must be the start of that ranking.

    Parameters
    ----------
    name : str
        Name of the estimator, for the messages.
    estimator : BaseXMCClassifier
        Unfitted estimator.
    """
    data = _xmc_data(estimator)
    est = _fit(_seeded(estimator), data)
    n_labels = est.n_labels_
    params = est.get_params(deep=False)
    est.set_params(
        **{p: n_labels for p in ("beam_size", "shortlist_size") if p in params}
    )
    scores, labels = est.predict_topk(data.X_test, n_labels)
    if hasattr(est, "_full_scores"):
        source = "_full_scores"
        full = np.asarray(est._full_scores(data.X_test), dtype=np.float64)
    else:
        source = "decision_function with top_k=n_labels_"
        decision = sp.csr_matrix(
            est.set_params(top_k=n_labels).decision_function(data.X_test)
        )
        full = np.full(decision.shape, -np.inf)
        rows = np.repeat(np.arange(decision.shape[0]), np.diff(decision.indptr))
        full[rows, decision.indices] = decision.data
    assert full.shape == (len(scores), n_labels), (
        f"{name}: {source} has shape {full.shape}."
    )
    valid = labels >= 0
    picked = np.take_along_axis(full, np.where(valid, labels, 0), axis=1)
    np.testing.assert_allclose(
        scores[valid],
        picked[valid],
        rtol=1e-5,
        atol=1e-6,
        err_msg=f"{name}: predict_topk scores differ from {source} at their labels",
    )
    np.testing.assert_array_equal(
        valid.sum(axis=1),
        np.isfinite(full).sum(axis=1),
        err_msg=f"{name}: with a full beam predict_topk(k=n_labels) misses labels "
        f"that {source} scores",
    )
    ranked = -np.sort(-np.where(np.isfinite(full), full, -np.inf), axis=1)
    np.testing.assert_allclose(
        np.where(valid, scores, 0.0),
        np.where(valid, ranked, 0.0),
        rtol=1e-5,
        atol=1e-6,
        err_msg=f"{name}: predict_topk(k=n_labels) is not the ranking of {source}",
    )
    small_scores, small_labels = est.predict_topk(data.X_test, _K)
    np.testing.assert_allclose(
        small_scores,
        scores[:, :_K],
        rtol=1e-5,
        atol=1e-6,
        err_msg=f"{name}: predict_topk(k={_K}) is not the start of "
        "predict_topk(k=n_labels)",
    )
    small_picked = np.take_along_axis(full, np.maximum(small_labels, 0), axis=1)
    np.testing.assert_allclose(
        np.where(small_labels >= 0, small_scores, 0.0),
        np.where(small_labels >= 0, small_picked, 0.0),
        rtol=1e-5,
        atol=1e-6,
        err_msg=f"{name}: predict_topk(k={_K}) scores differ from {source}",
    )


def check_xmc_resume_equals_uninterrupted_fit(name, estimator):
    """A fit resumed from ``checkpoint_dir`` equals an uninterrupted fit.

    Three ways to the same model, all with ``random_state=0`` and
    ``verbose=1`` (output discarded), must predict exactly like a plain fit:

    1. a fit with ``checkpoint_dir`` (which must write a checkpoint there);
    2. a second fit of a clone with the same, finished, ``checkpoint_dir``;
    3. a fit interrupted once a first checkpoint exists, then a clone's fit
       with the same ``checkpoint_dir``.

    The interruption uses only the public API: ``sys.stdout`` and
    ``sys.stderr`` are redirected to a stream that raises a
    ``BaseException`` (like Ctrl-C) at the first progress output written
    once ``checkpoint_dir`` is not empty, so the estimator must report
    progress with ``verbose=1`` after it writes a checkpoint (it fails the
    check otherwise). Where that output comes after a checkpoint but before
    the next epoch starts, the fit stops between epochs.

    Parameters
    ----------
    name : str
        Name of the estimator, for the messages.
    estimator : BaseXMCClassifier
        Unfitted estimator with a ``checkpoint_dir`` parameter.
    """
    data = _xmc_data(estimator)
    est = _seeded(estimator).set_params(verbose=1, checkpoint_dir=None)
    with _quiet():
        expected = _fit(clone(est), data).predict_topk(data.X_test, _K)
    with tempfile.TemporaryDirectory() as folder:
        with _quiet():
            first = _fit(clone(est).set_params(checkpoint_dir=folder), data)
        assert os.listdir(folder), (
            f"{name}: a fit with checkpoint_dir wrote nothing there."
        )
        _assert_same_topk(
            expected,
            first.predict_topk(data.X_test, _K),
            f"{name}: a fit with checkpoint_dir differs from one without",
        )
        with _quiet():
            again = _fit(clone(est).set_params(checkpoint_dir=folder), data)
        _assert_same_topk(
            expected,
            again.predict_topk(data.X_test, _K),
            f"{name}: a fit resumed from a finished checkpoint differs from the "
            "uninterrupted fit",
        )
    with tempfile.TemporaryDirectory() as folder:
        stream = _InterruptWhenCheckpointed(folder)
        try:
            with redirect_stdout(stream), redirect_stderr(stream):
                _fit(clone(est).set_params(checkpoint_dir=folder), data)
        except _FitInterrupted:
            pass
        else:
            raise AssertionError(
                f"{name}: could not interrupt fit: with verbose=1 it wrote no "
                "progress output after its first checkpoint."
            )
        with _quiet():
            resumed = _fit(clone(est).set_params(checkpoint_dir=folder), data)
        _assert_same_topk(
            expected,
            resumed.predict_topk(data.X_test, _K),
            f"{name}: a fit resumed after an interruption differs from the "
            "uninterrupted fit",
        )


class _CodeRunningPayload:
    """Unpickling this creates a file: what a crafted checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _crafted_checkpoint(marker) -> bytes:
    """A well-formed skxmc checkpoint (valid checksum) whose body runs code
    when unpickled without ``weights_only``."""
    import hashlib
    import io

    import torch

    from skxmc.training._checkpoint import _MAGIC

    buffer = io.BytesIO()
    torch.save({"trainer": _CodeRunningPayload(marker)}, buffer)
    body = buffer.getvalue()
    return _MAGIC + hashlib.sha256(body).digest() + body


def check_xmc_checkpoints_are_safe(name, estimator):
    """Checkpoints never run code, survive damage and never overwrite others.

    With ``random_state=0`` and a ``checkpoint_dir``:

    1. the fit's checkpoint file is replaced by a crafted one (valid format
       and checksum, a pickle payload that creates a marker file), by a
       truncated copy and by an empty file: each refit warns naming the file,
       never creates the marker, and fits afresh to the same model;
    2. a fit with other parameters (``random_state=1``) writes a file of its
       own and leaves the first one untouched;
    3. with ``random_state=None``, a refit resumes the stored fit (same
       model);
    4. ``checkpoint_dir`` pointing to a file is an error before training.

    Parameters
    ----------
    name : str
        Name of the estimator, for the messages.
    estimator : BaseXMCClassifier
        Unfitted estimator with a ``checkpoint_dir`` parameter.
    """
    data = _xmc_data(estimator)
    est = _seeded(estimator).set_params(verbose=0, checkpoint_dir=None)
    expected = _fit(clone(est), data).predict_topk(data.X_test, _K)
    with tempfile.TemporaryDirectory() as folder:
        _fit(clone(est).set_params(checkpoint_dir=folder), data)
        files = sorted(os.listdir(folder))
        assert len(files) == 1, f"{name}: expected one checkpoint file, got {files}."
        path = os.path.join(folder, files[0])
        good = open(path, "rb").read()
        marker = os.path.join(folder, "marker")
        damages = {
            "crafted": _crafted_checkpoint(marker),
            "truncated": good[: len(good) // 2],
            "empty": b"",
        }
        for kind, content in damages.items():
            with open(path, "wb") as file:
                file.write(content)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                refit = _fit(clone(est).set_params(checkpoint_dir=folder), data)
            messages = [str(w.message) for w in caught]
            assert any(
                "Ignoring the checkpoint" in m and files[0] in m for m in messages
            ), f"{name}: a {kind} checkpoint gave no warning naming it: {messages}"
            assert not os.path.exists(marker), (
                f"{name}: loading a crafted checkpoint ran its code."
            )
            _assert_same_topk(
                expected,
                refit.predict_topk(data.X_test, _K),
                f"{name}: the fit after a {kind} checkpoint differs from a fresh fit",
            )
        good = open(path, "rb").read()
        _fit(clone(est).set_params(checkpoint_dir=folder, random_state=1), data)
        assert len(os.listdir(folder)) == 2, (
            f"{name}: a fit with other parameters did not write a file of its own."
        )
        assert open(path, "rb").read() == good, (
            f"{name}: a fit with other parameters overwrote another fit's checkpoint."
        )
    with tempfile.TemporaryDirectory() as folder:
        unseeded = clone(est).set_params(random_state=None, checkpoint_dir=folder)
        first = _fit(clone(unseeded), data).predict_topk(data.X_test, _K)
        _assert_same_topk(
            first,
            _fit(clone(unseeded), data).predict_topk(data.X_test, _K),
            f"{name}: with random_state=None a refit did not resume its checkpoint",
        )
        path = os.path.join(folder, "a-file")
        open(path, "w").close()
        _assert_raises(
            NotADirectoryError,
            "is a file",
            lambda: _fit(clone(est).set_params(checkpoint_dir=path), data),
            f"{name}.fit with checkpoint_dir naming a file",
        )


def check_xmc_cuda_fit_loads_on_cpu(name, estimator):
    """A model fitted with ``device="cuda"`` unpickles and predicts on a CPU.

    Needs a CUDA device (raises ``unittest.SkipTest`` otherwise). The model
    is fitted on ``"cuda"`` and pickled; then, with
    ``torch.cuda.is_available`` patched to return False (a CPU-only machine),
    it is unpickled, set to ``device="cpu"`` and predicts. No torch tensor of
    the loaded estimator may live on a CUDA device, and the top-1 labels must
    agree with the GPU's on at least 90% of the rows (GPU fits may use
    reduced precision), their scores within 0.01.

    Parameters
    ----------
    name : str
        Name of the estimator, for the messages.
    estimator : BaseXMCClassifier
        Unfitted estimator with a ``device`` parameter.
    """
    import torch

    if not torch.cuda.is_available():
        raise SkipTest("check_xmc_cuda_fit_loads_on_cpu needs a CUDA device")
    data = _xmc_data(estimator)
    est = _fit(_seeded(estimator).set_params(device="cuda"), data)
    gpu_scores, gpu_labels = est.predict_topk(data.X_test, _K)
    payload = pickle.dumps(est)
    with mock.patch("torch.cuda.is_available", return_value=False):
        try:
            loaded = pickle.loads(payload)
            loaded.set_params(device="cpu")
            cpu_scores, cpu_labels = loaded.predict_topk(data.X_test, _K)
        except Exception as exc:
            raise AssertionError(
                f"{name}: a model fitted on CUDA fails to load or predict on a "
                f"CPU-only machine: {exc!r}"
            ) from exc
    on_cuda = _cuda_tensors(loaded)
    assert not on_cuda, (
        f"{name}: tensors still on CUDA after loading on a CPU-only machine: "
        f"{on_cuda[:5]}"
    )
    agree = np.mean(cpu_labels[:, 0] == gpu_labels[:, 0])
    assert agree >= 0.9, (
        f"{name}: the top-1 labels on CPU agree with the GPU's on only "
        f"{agree:.0%} of the rows."
    )
    same = cpu_labels[:, 0] == gpu_labels[:, 0]
    np.testing.assert_allclose(
        cpu_scores[same, 0],
        gpu_scores[same, 0],
        rtol=1e-2,
        atol=1e-2,
        err_msg=f"{name}: top-1 scores on CPU differ from the GPU's",
    )


# ------------------------------------------------------------------ helpers
def _xmc_data(estimator) -> Bunch:
    """The check problem, as text if the estimator reads text, else TF-IDF."""
    data = make_xmc_classification(
        n_samples=_N_TRAIN + _N_TEST,
        n_labels=_N_LABELS,
        n_features=_N_FEATURES,
        avg_labels_per_sample=2.0,
        return_text=True,
        random_state=0,
    )
    if getattr(estimator, "_accepts_text", False):
        X, label_info = data.text, LabelInfo(text=data.label_text)
    else:
        X, label_info = data.X, None
    return Bunch(
        X=X[:_N_TRAIN], Y=data.Y[:_N_TRAIN], X_test=X[_N_TRAIN:], label_info=label_info
    )


def _rows(X):
    return X if isinstance(X, list) else range(X.shape[0])


def _seeded(estimator):
    """An unfitted clone with ``random_state=0``."""
    est = clone(estimator)
    if "random_state" in est.get_params(deep=False):
        est.set_params(random_state=0)
    return est


def _fit(estimator, data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XMCDataWarning)
        return estimator.fit(data.X, data.Y, label_info=data.label_info)


def _assert_same_topk(expected, got, message):
    np.testing.assert_array_equal(got[1], expected[1], err_msg=f"{message} (labels)")
    np.testing.assert_array_equal(got[0], expected[0], err_msg=f"{message} (scores)")


def _assert_same_prediction(expected, got, message):
    if sp.issparse(expected):
        assert sp.issparse(got) and (expected != got).nnz == 0, message
    else:
        np.testing.assert_array_equal(got, expected, err_msg=message)


def _assert_raises(error, match, func, what):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", XMCDataWarning)
            func()
    except error as exc:
        assert match in str(exc), (
            f"{what} raised {type(exc).__name__} without {match!r}: {exc}"
        )
    except Exception as exc:
        raise AssertionError(
            f"{what} raised {type(exc).__name__}, expected {error.__name__}: {exc}"
        ) from exc
    else:
        raise AssertionError(f"{what} did not raise {error.__name__}.")


def _cuda_rng_states() -> list:
    import torch

    return torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []


def _cuda_tensors(obj, path="estimator", seen=None, depth=0) -> list[str]:
    """Paths of the torch tensors reachable from ``obj`` that live on CUDA."""
    import torch

    seen = set() if seen is None else seen
    if depth > 8 or id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        return [path] if obj.is_cuda else []
    if isinstance(obj, torch.nn.Module):
        return [
            f"{path}.{key}" for key, value in obj.state_dict().items() if value.is_cuda
        ]
    if isinstance(obj, (str, bytes, np.ndarray, type)) or sp.issparse(obj):
        return []
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    elif hasattr(obj, "__dict__"):
        items = vars(obj).items()
    else:
        return []
    found = []
    for key, value in items:
        found += _cuda_tensors(value, f"{path}[{key!r}]", seen, depth + 1)
    return found


class _FitInterrupted(BaseException):
    """Stops a fit from its progress output, as Ctrl-C would."""


class _InterruptWhenCheckpointed(io.TextIOBase):
    """A text stream that raises :class:`_FitInterrupted` at the first write
    (from the thread that made it) once ``folder`` holds a file; every other
    write is discarded."""

    def __init__(self, folder):
        self._folder = Path(folder)
        self._thread = threading.get_ident()
        self.fired = False

    def writable(self):
        return True

    def write(self, text):
        if (
            not self.fired
            and threading.get_ident() == self._thread
            and any(self._folder.iterdir())
        ):
            self.fired = True
            raise _FitInterrupted
        return len(text)


@contextmanager
def _quiet():
    """Discard what a verbose fit writes to stdout and stderr."""
    sink = io.StringIO()
    with redirect_stdout(sink), redirect_stderr(sink):
        yield
