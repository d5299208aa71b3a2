"""Every XMC check catches the bug it is about.

Each check runs on a tiny estimator (a :class:`CentroidRanker` subclass) that
breaks exactly one part of the contract, and must raise an AssertionError;
the checks passing on the well-behaved estimators is tested in
tests/test_common.py.
"""

import io
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator

from skxmc import XRLinearClassifier
from skxmc.training._checkpoint import _MAGIC
from skxmc.utils._testing import CentroidRanker
from skxmc.utils.estimator_checks import (
    check_xmc_checkpoints_are_safe,
    check_xmc_cuda_fit_loads_on_cpu,
    check_xmc_fit_reproducible,
    check_xmc_global_random_state_untouched,
    check_xmc_grid_search,
    check_xmc_pickle_round_trip,
    check_xmc_predict_topk_format,
    check_xmc_rejects_bare_string,
    check_xmc_resume_equals_uninterrupted_fit,
    check_xmc_topk_equals_full_scores,
    yield_xmc_checks,
)


def _fails(check, estimator, match=None):
    with pytest.raises(AssertionError, match=match):
        check(type(estimator).__name__, estimator)


# ------------------------------------------------------- broken estimators
class _UnsortedRanker(CentroidRanker):
    """Returns its top-k worst first."""

    def _predict_topk(self, X, k):
        scores, indices = super()._predict_topk(X, k)
        return scores[:, ::-1].copy(), indices[:, ::-1].copy()


class _ForgetfulPickleRanker(CentroidRanker):
    """Loses its tie-breaking jitter when unpickled."""

    def __setstate__(self, state):
        super().__setstate__(state)
        if hasattr(self, "tie_breaker_"):
            self.tie_breaker_ = torch.zeros_like(self.tie_breaker_)


class _UnseededRanker(CentroidRanker):
    """Draws its jitter from fresh OS entropy instead of ``seed``."""

    def _fit(self, X, Y, *, label_info, seed):
        return super()._fit(X, Y, label_info=label_info, seed=None)


class _LeakyRanker(CentroidRanker):
    """Carries state from one fit into the next."""

    def _fit(self, X, Y, *, label_info, seed):
        self._n_fits = getattr(self, "_n_fits", 0) + 1
        return super()._fit(X, Y, label_info=label_info, seed=seed + self._n_fits)


class _NumpyGlobalRanker(CentroidRanker):
    """Draws from numpy's global random state during fit."""

    def _fit(self, X, Y, *, label_info, seed):
        np.random.random()
        return super()._fit(X, Y, label_info=label_info, seed=seed)


class _TorchGlobalRanker(CentroidRanker):
    """Draws from torch's global generator when predicting."""

    def _predict_topk(self, X, k):
        torch.rand(1)
        return super()._predict_topk(X, k)


class _DenseTopkDecisionRanker(CentroidRanker):
    """decision_function returns the dense top-k scores, not a label matrix."""

    def decision_function(self, X):
        return self.predict_topk(X, self.top_k)[0]


class _LenientTextRanker(CentroidRanker):
    """Reads a bare string as a one-document corpus."""

    def _validate_X(self, X, *, reset):
        if isinstance(X, str):
            X = [X]
        return super()._validate_X(X, reset=reset)


class _DenseScores(CentroidRanker):
    """Exposes its exact dense scores as ``_full_scores``."""

    def _full_scores(self, X):
        scores, indices = CentroidRanker._predict_topk(self, X, self.n_labels_)
        full = np.empty(scores.shape, dtype=np.float32)
        np.put_along_axis(full, indices, scores, axis=1)
        return full


class _ShortlistBugRanker(_DenseScores):
    """Never retrieves label 0, which ``_full_scores`` does score."""

    def _predict_topk(self, X, k):
        scores, indices = super()._predict_topk(X, self.n_labels_)
        keep = indices != 0
        n = scores.shape[0]
        scores = scores[keep].reshape(n, -1)[:, :k]
        indices = indices[keep].reshape(n, -1)[:, :k]
        pad = k - scores.shape[1]
        return (
            np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf),
            np.pad(indices, ((0, 0), (0, pad)), constant_values=-1),
        )


class _KDependentRanker(CentroidRanker):
    """Skips the best label when fewer than all labels are asked for."""

    def _predict_topk(self, X, k):
        if k >= self.n_labels_:
            return super()._predict_topk(X, k)
        scores, indices = super()._predict_topk(X, k + 1)
        return scores[:, 1:], indices[:, 1:]


class _CheckpointedRanker(CentroidRanker):
    """Moves its centroids by seeded noise over ``n_epochs`` epochs, saving a
    checkpoint in ``checkpoint_dir`` after each and printing one line per
    epoch when ``verbose``; a fit resumes from the checkpoint it finds."""

    _restores_rng = True
    _reports_progress = True

    def __init__(
        self,
        *,
        n_epochs=3,
        checkpoint_dir=None,
        top_k=5,
        threshold=0.5,
        device="auto",
        accept="numeric",
        random_state=None,
        verbose=0,
    ):
        super().__init__(
            top_k=top_k,
            threshold=threshold,
            device=device,
            accept=accept,
            random_state=random_state,
            verbose=verbose,
        )
        self.n_epochs = n_epochs
        self.checkpoint_dir = checkpoint_dir

    def _fit(self, X, Y, *, label_info, seed):
        super()._fit(X, Y, label_info=label_info, seed=seed)
        centroids = self.centroids_.cpu().numpy()
        rng = np.random.default_rng(seed)
        start, path = 0, None
        if self.checkpoint_dir is not None:
            path = Path(self.checkpoint_dir) / "ranker.pkl"
            if path.exists():
                saved = pickle.loads(path.read_bytes())
                start, centroids = saved["epoch"], saved["centroids"]
                if self._restores_rng:
                    rng.bit_generator.state = saved["rng"]
        for epoch in range(start, self.n_epochs):
            if self.verbose and self._reports_progress:
                print(f"epoch {epoch + 1}/{self.n_epochs}", file=sys.stderr)
            noise = rng.normal(0, 0.05, centroids.shape).astype(np.float32)
            centroids = centroids + noise
            if path is not None:
                state = {"epoch": epoch + 1, "centroids": centroids}
                path.write_bytes(
                    pickle.dumps({**state, "rng": rng.bit_generator.state})
                )
        self.centroids_ = torch.from_numpy(centroids).to(self.centroids_.device)
        return self


class _RngLosingCheckpointRanker(_CheckpointedRanker):
    """Resumes without its random generator's state."""

    _restores_rng = False


class _SilentCheckpointedRanker(_CheckpointedRanker):
    """Writes no progress output, so the check cannot interrupt it."""

    _reports_progress = False


class _StoreCheckpointedRanker(CentroidRanker):
    """Like _CheckpointedRanker, through skxmc's CheckpointStore."""

    _unsafe_load = False
    _one_file = False

    def __init__(
        self, *, n_epochs=3, checkpoint_dir=None, top_k=5, threshold=0.5,
        device="auto", random_state=None, verbose=0,
    ):  # fmt: skip
        super().__init__(
            top_k=top_k, threshold=threshold, device=device,
            random_state=random_state, verbose=verbose,
        )  # fmt: skip
        self.n_epochs = n_epochs
        self.checkpoint_dir = checkpoint_dir

    def _fit(self, X, Y, *, label_info, seed):
        from skxmc.training import CheckpointStore

        store = self._open_checkpoint([X, Y])
        if store is not None and self._one_file:
            store = CheckpointStore(self.checkpoint_dir, "ranker", "same")
        saved = None
        if store is not None:
            if self._unsafe_load and store.path.exists():
                body = store.path.read_bytes()[len(_MAGIC) + 32 :]
                try:
                    torch.load(io.BytesIO(body), weights_only=False)
                except Exception:
                    pass
            saved = store.load()
            seed = store.resume_seed(seed)
        super()._fit(X, Y, label_info=label_info, seed=seed)
        centroids = self.centroids_.cpu()
        generator = torch.Generator().manual_seed(seed)
        start = 0
        if saved is not None:
            start, centroids = saved["epoch"], saved["centroids"]
            generator.set_state(saved["rng"])
        for epoch in range(start, self.n_epochs):
            centroids = centroids + 0.05 * torch.randn(
                centroids.shape, generator=generator
            )
            if store is not None:
                store.save(
                    {"epoch": epoch + 1, "centroids": centroids,
                     "rng": generator.get_state()},
                    seed=seed,
                )  # fmt: skip
        self.centroids_ = centroids.to(self.centroids_.device)
        return self


class _UnsafeLoadingRanker(_StoreCheckpointedRanker):
    """Unpickles its checkpoint without weights_only before checking it."""

    _unsafe_load = True


class _OneFileRanker(_StoreCheckpointedRanker):
    """Writes every fit's checkpoint to the same file."""

    _one_file = True


class _PlainPickleRanker(CentroidRanker):
    """Pickles its tensors as they are: a CUDA fit needs CUDA to load."""

    def __getstate__(self):
        return BaseEstimator.__getstate__(self)

    def __setstate__(self, state):
        BaseEstimator.__setstate__(self, state)


# ------------------------------------------------------------------ tests
def test_yield_xmc_checks_picks_the_checks_that_apply():
    def names(estimator):
        return {check.__name__ for check in yield_xmc_checks(estimator)}

    common = {
        "check_xmc_predict_topk_format",
        "check_xmc_pickle_round_trip",
        "check_xmc_fit_reproducible",
        "check_xmc_global_random_state_untouched",
        "check_xmc_grid_search",
        "check_xmc_topk_equals_full_scores",
    }
    assert names(XRLinearClassifier()) == common
    cuda = {"check_xmc_cuda_fit_loads_on_cpu"}
    assert names(CentroidRanker()) == common | cuda
    text = {"check_xmc_rejects_bare_string"}
    assert names(CentroidRanker(accept="text")) == common | cuda | text
    resume = {
        "check_xmc_resume_equals_uninterrupted_fit",
        "check_xmc_checkpoints_are_safe",
    }
    assert names(_CheckpointedRanker()) == common | cuda | resume


def test_predict_topk_format_catches_unsorted_output():
    _fails(check_xmc_predict_topk_format, _UnsortedRanker(), "best first")


def test_pickle_round_trip_catches_lost_state():
    _fails(check_xmc_pickle_round_trip, _ForgetfulPickleRanker(), "after pickling")


def test_fit_reproducible_catches_an_unseeded_fit():
    _fails(check_xmc_fit_reproducible, _UnseededRanker(), "random_state=0 differ")


def test_fit_reproducible_catches_state_carried_between_fits():
    _fails(check_xmc_fit_reproducible, _LeakyRanker(), "same estimator twice")


@pytest.mark.parametrize(
    "estimator, match",
    [
        (_NumpyGlobalRanker(), "fit changed the global numpy"),
        (_TorchGlobalRanker(), "predict_topk changed torch's global"),
    ],
)
def test_global_random_state_untouched_catches_global_draws(estimator, match):
    _fails(check_xmc_global_random_state_untouched, estimator, match)


def test_grid_search_catches_a_decision_function_scorers_cannot_read():
    _fails(check_xmc_grid_search, _DenseTopkDecisionRanker(), "GridSearchCV")


def test_rejects_bare_string_catches_a_string_read_as_a_corpus():
    _fails(
        check_xmc_rejects_bare_string,
        _LenientTextRanker(accept="text"),
        "did not raise ValueError",
    )


def test_topk_equals_full_scores_catches_a_label_missing_from_the_shortlist():
    check_xmc_topk_equals_full_scores("DenseScores", _DenseScores())
    _fails(check_xmc_topk_equals_full_scores, _ShortlistBugRanker(), "misses labels")


def test_topk_equals_full_scores_catches_a_ranking_that_depends_on_k():
    _fails(check_xmc_topk_equals_full_scores, _KDependentRanker(), "is not the start")


def test_resume_check_passes_a_sound_checkpointing_estimator():
    check_xmc_resume_equals_uninterrupted_fit(
        "CheckpointedRanker", _CheckpointedRanker()
    )


def test_resume_check_catches_a_resume_that_loses_the_random_state():
    _fails(
        check_xmc_resume_equals_uninterrupted_fit,
        _RngLosingCheckpointRanker(),
        "resumed after an interruption",
    )


def test_resume_check_needs_progress_output_to_interrupt_the_fit():
    _fails(
        check_xmc_resume_equals_uninterrupted_fit,
        _SilentCheckpointedRanker(),
        "could not interrupt",
    )


@pytest.mark.gpu
def test_cuda_check_catches_tensors_pickled_on_the_gpu():
    _fails(check_xmc_cuda_fit_loads_on_cpu, _PlainPickleRanker(), "CPU-only")


def test_checkpoint_safety_check_passes_the_checkpoint_store():
    check_xmc_checkpoints_are_safe("StoreRanker", _StoreCheckpointedRanker())


def test_checkpoint_safety_check_catches_an_unsafe_load():
    _fails(check_xmc_checkpoints_are_safe, _UnsafeLoadingRanker(), "ran its code")


def test_checkpoint_safety_check_catches_one_file_for_every_fit():
    _fails(check_xmc_checkpoints_are_safe, _OneFileRanker(), "file of its own")
