"""The estimator contract every skxmc classifier inherits."""

from __future__ import annotations

import io
import pickle
import sys
from abc import ABCMeta, abstractmethod
from collections.abc import Iterator
from numbers import Integral, Real
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MultiOutputMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    validate_data,
)
from tqdm.auto import tqdm

from skxmc._label_info import LabelInfo, as_label_info
from skxmc.utils._validation import (
    check_numeric_rows,
    check_targets,
    check_text,
    encode_targets,
    is_empty_sequence,
    looks_like_text,
    reject_bare_string,
    warn_on_empty_rows_and_labels,
)

__all__ = ["BaseXMCClassifier"]


class BaseXMCClassifier(
    MultiOutputMixin, ClassifierMixin, BaseEstimator, metaclass=ABCMeta
):
    """Base class of the skxmc extreme multi-label classifiers.

    Subclasses list all their parameters in ``__init__`` and implement two hooks:

    - ``_fit(X, Y, *, label_info, seed)``: ``X`` is validated (a CSR float32
      matrix with ``n_features_in_`` set, or a list of str for estimators with
      ``_accepts_text = True``), ``Y`` a CSR float32 0/1 matrix of shape
      (n_samples, ``n_labels_``), ``label_info`` None or a :class:`~skxmc.LabelInfo`
      aligned with ``classes_``, ``seed`` an int drawn from ``random_state``.
    - ``_predict_topk(X, k)``: ``(scores, indices)`` float32 / int64 arrays of
      shape (n_samples, k), best first, padded with ``-inf`` / ``-1``.

    The base class validates inputs, binarizes ``y`` (indicator matrices, lists
    of label lists with any hashable labels, and 1-D binary/multiclass vectors),
    and derives ``predict_topk``, ``decision_function``, ``predict`` and
    ``score`` from ``_predict_topk``.
    """

    #: Whether ``fit``/``predict`` accept raw text (a sequence of str) as X.
    _accepts_text = False
    #: Whether numeric X is accepted (sparse or dense features).
    _accepts_numeric = True

    _parameter_constraints: dict = {
        "top_k": [Interval(Integral, 1, None, closed="left")],
        "threshold": [Real],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, *, label_info=None):
        """Fit the classifier.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or \
                sequence of str
            Training features, or raw documents for estimators that read text.
        y : {array-like, sparse matrix} of shape (n_samples, n_labels), \
                sequence of label lists, or array-like of shape (n_samples,)
            Targets: a 0/1 indicator matrix, a list of label lists (any
            hashable labels; ``classes_`` holds them) or a binary/multiclass
            vector.
        label_info : LabelInfo, sequence of str or mapping, default=None
            Data about the labels (text, features, graph). Wrap it in
            :class:`~skxmc.LabelInfo` so that cross-validation never splits it;
            a sequence of str or a mapping is read as label text.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        X = self._validate_X(X, reset=True)
        label_info = as_label_info(label_info)
        targets = check_targets(
            y, labels=None if label_info is None else label_info.labels
        )
        check_consistent_length(X, targets.Y)
        warn_on_empty_rows_and_labels(targets.Y)
        self.classes_ = targets.classes
        self.n_labels_ = len(targets.classes)
        self._y_container = targets.container
        self._y_dtype = targets.dtype
        if label_info is not None:
            # aligned even when it only holds labels, so a mismatch is reported
            aligned = label_info.aligned_to(self.classes_)
            label_info = None if label_info.is_empty else aligned
        seed = int(
            check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        )
        self._fit(X, targets.Y, label_info=label_info, seed=seed)
        return self

    @abstractmethod
    def _fit(self, X, Y: sp.csr_matrix, *, label_info: LabelInfo | None, seed: int):
        """Fit the engine on validated inputs."""

    @abstractmethod
    def _predict_topk(self, X, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(scores, indices)`` of the ``k`` best labels for each row."""

    # -------------------------------------------------------------- predict
    def predict_topk(self, X, k=None, *, return_scores=True):
        """Return the ``k`` best labels of each sample, best first.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or \
                sequence of str
            Samples to rank labels for.
        k : int, default=None
            Number of labels per sample; defaults to ``top_k``.
        return_scores : bool, default=True
            Whether to return the scores along with the labels.

        Returns
        -------
        scores : ndarray of shape (n_samples, k), dtype float32
            Scores of the retrieved labels; ``-inf`` where fewer than ``k``
            labels were retrieved. Only returned if ``return_scores``.
        indices : ndarray of shape (n_samples, k), dtype int64
            Column indices into ``classes_``; ``-1`` pads missing entries.
        """
        check_is_fitted(self)
        k = self._check_k(self.top_k if k is None else k)
        X = self._validate_X(X, reset=False)
        scores, indices = self._predict_topk(X, k)
        scores = np.asarray(scores, dtype=np.float32)
        indices = np.asarray(indices, dtype=np.int64)
        return (scores, indices) if return_scores else indices

    def decision_function(self, X):
        """Scores of the top ``top_k`` labels of each sample.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or \
                sequence of str
            Samples to score.

        Returns
        -------
        scores : sparse matrix of shape (n_samples, n_labels) or ndarray
            For a multi-label fit, a CSR matrix holding the ``top_k`` best
            scores of each row (absent entries were not retrieved; a dense
            matrix is out of the question at millions of labels). After a fit
            on a 1-D ``y``, sklearn's dense shapes: ``(n_samples,)`` for binary
            (positive means ``classes_[1]``) and ``(n_samples, n_classes)`` for
            multiclass.
        """
        check_is_fitted(self)
        if self._y_container == "1d":
            return self._dense_class_scores(X)
        scores, indices = self.predict_topk(X, self.top_k)
        return _topk_to_csr(scores, indices, self.n_labels_)

    def predict(self, X):
        """Predict the labels whose score passes ``threshold``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or \
                sequence of str
            Samples to label.

        Returns
        -------
        y_pred : sparse matrix, ndarray or list of tuples
            In the container type ``fit`` received: a CSR matrix for sparse
            ``y``, a dense 0/1 array for dense ``y``, a list of label tuples for
            label lists, and class labels for a 1-D ``y``. Only labels among
            each row's ``top_k`` best can be predicted.
        """
        check_is_fitted(self)
        if self._y_container == "1d":
            scores = self._dense_class_scores(X)
            if scores.ndim == 1:
                return self.classes_[(scores > 0).astype(int)]
            return self.classes_[np.argmax(scores, axis=1)]
        decision = _topk_to_csr(*self.predict_topk(X, self.top_k), self.n_labels_)
        decision.data = (decision.data > self._decision_threshold()).astype(np.float32)
        decision.eliminate_zeros()
        if self._y_container == "sparse":
            return decision.astype(self._y_dtype)
        if self._y_container == "dense":
            return decision.toarray().astype(self._y_dtype)
        return [tuple(self.classes_[row.indices]) for row in decision]

    def _decision_threshold(self) -> float:
        """The threshold :meth:`predict` applies (``threshold`` by default)."""
        return self.threshold

    def score(self, X, y, sample_weight=None):
        """Precision at 1 for multi-label fits, accuracy after a 1-D fit.

        Subset accuracy, sklearn's default for multi-label classifiers, is
        close to 0 for any model at thousands of labels, so it makes a useless
        default for model selection; P@1 is the field's headline metric.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or \
                sequence of str
            Test samples.
        y : {array-like, sparse matrix} or sequence of label lists
            True labels, in any form ``fit`` accepts. Labels never seen in
            ``fit`` (in label lists, DataFrame columns or a 1-D ``y``) can
            never be predicted: they count as misses.
        sample_weight : array-like of shape (n_samples,), default=None
            Only supported after a 1-D fit.

        Returns
        -------
        score : float
        """
        check_is_fitted(self)
        if self._y_container == "1d":
            encode_targets(y, self.classes_, "1d")
            return super().score(X, y, sample_weight=sample_weight)
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported for multi-label scores.")
        from skxmc.metrics import precision_at_k

        Y = encode_targets(y, self.classes_, self._y_container)
        return precision_at_k(Y, self.predict_topk(X, 1), k=1)

    # -------------------------------------------------------------- helpers
    def _validate_X(self, X, *, reset: bool):
        # One text check for every estimator (utils._validation.check_text):
        # anything that looks like text is checked element by element, and
        # text-only estimators check whatever is not plainly numeric the same
        # way, so a bad element is named with its index and type.
        reject_bare_string(X)
        if isinstance(X, Iterator):
            check_text(X)  # raises: a one-shot iterator cannot be validated
        if is_empty_sequence(X):
            raise ValueError(
                f"X holds no sample (an empty {type(X).__name__}); at least 1 is "
                "required."
            )
        if looks_like_text(X):
            if not self._accepts_text:
                raise TypeError(
                    f"{type(self).__name__} expects numeric features, got raw text. "
                    "Put a vectorizer in front of it, e.g. "
                    f"make_pipeline(TfidfVectorizer(), {type(self).__name__}())."
                )
            return check_text(X)
        if not self._accepts_numeric:
            if sp.issparse(X) or (
                isinstance(X, np.ndarray) and X.dtype.kind in "biufc"
            ):
                raise TypeError(
                    f"{type(self).__name__} expects raw text (a sequence of str), "
                    f"got {type(X).__name__}."
                )
            return check_text(X)
        if isinstance(X, (list, tuple)) or (
            isinstance(X, np.ndarray) and X.dtype.kind == "O"
        ):
            X = check_numeric_rows(X)  # names a ragged row or a non-number
        if not reset and self._is_valid_csr(X):
            return X  # what validate_data returns for it, without its overhead
        # a value overflowing float32 becomes inf, refused with sklearn's message
        # ("a value too large for dtype('float32')"), without a RuntimeWarning
        with np.errstate(over="ignore"):
            return validate_data(
                self, X, accept_sparse="csr", dtype=np.float32, reset=reset
            )

    def _is_valid_csr(self, X) -> bool:
        """Whether ``X`` is a CSR float32 matrix that ``validate_data(...,
        reset=False)`` would return unchanged, without a warning.

        sklearn's validation costs ~0.2 ms a call, much of a single query's
        time; this check costs a few microseconds.
        """
        return (
            sp.issparse(X)
            and X.format == "csr"
            and X.dtype == np.float32
            and X.ndim == 2
            and X.shape[0] >= 1
            and X.shape[1] >= 1
            and X.shape[1] == getattr(self, "n_features_in_", None)
            and not hasattr(self, "feature_names_in_")
            and X.indices.dtype in (np.int32, np.int64)
            and X.indptr.dtype == X.indices.dtype
            and bool(np.isfinite(X.data).all())
        )

    def _new_label_names(self, labels, n_new: int) -> np.ndarray:
        """The ``classes_`` entries of ``n_new`` labels given to ``add_labels``.

        By default the next integers; required when ``classes_`` holds names;
        never one already in ``classes_``.
        """
        if labels is None:
            if self.classes_.dtype.kind not in "iu":
                raise ValueError(
                    "classes_ holds label names: give the names of the new labels "
                    "with `labels`."
                )
            labels = np.arange(self.n_labels_, self.n_labels_ + n_new)
        labels = np.asarray(list(labels))
        if len(labels) != n_new:
            raise ValueError(f"Got {len(labels)} names for {n_new} new labels.")
        if np.isin(labels, self.classes_).any():
            raise ValueError("Some of the new labels are already in classes_.")
        return labels

    def _check_k(self, k: Any) -> int:
        if isinstance(k, bool) or not isinstance(k, (Integral, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}.")
        return int(k)

    def _dense_class_scores(self, X) -> np.ndarray:
        scores, indices = self.predict_topk(X, self.n_labels_)
        finite = np.isfinite(scores)
        floor = (scores[finite].min() if finite.any() else 0.0) - 1.0
        dense = np.full((scores.shape[0], self.n_labels_), floor, dtype=np.float32)
        rows = np.nonzero(indices >= 0)
        dense[rows[0], indices[rows]] = scores[rows]
        if self.n_labels_ == 2:
            return dense[:, 1] - dense[:, 0]
        return dense

    def _progress(self, iterable=None, **kwargs):
        """A tqdm progress bar shown when ``verbose`` is set."""
        return tqdm(iterable, disable=not self.verbose, leave=False, **kwargs)

    def _log(self, message: str) -> None:
        """Log ``message`` on the ``skxmc`` logger when ``verbose`` is set."""
        from skxmc.utils._logging import log

        log(f"{type(self).__name__}: {message}", verbose=self.verbose)

    #: Parameters that do not change a fitted model (left out of checkpoint
    #: fingerprints).
    _NEUTRAL_PARAMS = (
        "verbose", "checkpoint_dir", "device", "top_k", "threshold",
        "deterministic",
    )  # fmt: skip

    def _open_checkpoint(self, data):
        """The :class:`~skxmc.training.CheckpointStore` of this fit, or None.

        ``data`` is everything besides the parameters that changes the model
        (X, Y, label text / features / graph, the encoder's weights); the
        file name carries the estimator's class, so two estimators never
        share a checkpoint.
        """
        if getattr(self, "checkpoint_dir", None) is None:
            return None
        from skxmc.training import CheckpointStore, fit_fingerprint

        fingerprint = fit_fingerprint(self, data, neutral=self._NEUTRAL_PARAMS)
        name = type(self).__name__.lower().removesuffix("classifier")
        return CheckpointStore(self.checkpoint_dir, name, fingerprint)

    # -------------------------------------------------------------- pickling
    def __getstate__(self):
        # Torch tensors keep their device when pickled, and a model fitted on
        # a GPU would fail to unpickle on a CPU-only machine. The state is
        # pickled here with every tensor copied to the CPU, and unpickled by
        # plain pickle (no torch.load): models load on any machine, on the CPU
        # first, and move to their device on the first predict.
        state = super().__getstate__()
        state = {k: v for k, v in state.items() if k not in self._DEVICE_CACHES}
        buffer = io.BytesIO()
        _CpuTensorPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(state)
        return {"_skxmc_cpu_state": buffer.getvalue()}

    def __setstate__(self, state):
        if "_skxmc_cpu_state" in state:
            state = pickle.loads(state["_skxmc_cpu_state"])
        super().__setstate__(state)
        fill_missing_params(self)

    #: Attributes that hold device copies of fitted state (dropped on pickling,
    #: rebuilt on demand).
    _DEVICE_CACHES: tuple[str, ...] = ()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # input tags follow what _validate_X accepts; a text-only estimator
        # is skipped by sklearn's numeric common checks
        tags.input_tags.two_d_array = self._accepts_numeric
        tags.input_tags.sparse = self._accepts_numeric
        tags.input_tags.string = self._accepts_text
        tags.classifier_tags.multi_label = True
        return tags


class _PretrainedEncoderMixin(TransformerMixin):
    """What the estimators that fine-tune a pretrained text encoder share
    (:class:`~skxmc.EliasClassifier`, :class:`~skxmc.XRTransformerClassifier`):
    ``pooling`` / ``trainable_layers`` with ``"auto"`` resolved, the device of
    prediction, and a declared ``transform`` (text to float32 embeddings)."""

    def _encoder_options(self):
        """``(pooling, trainable_layers)`` with ``"auto"`` resolved."""
        from skxmc.nn._text_encoder import resolve_encoder_options
        from skxmc.training import resolve_device

        return resolve_encoder_options(
            self.encoder,
            self.pooling,
            self.trainable_layers,
            resolve_device(self.device, strict=False),
        )

    def _predict_device(self):
        from skxmc.training import resolve_device

        return resolve_device(self.device, strict=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # transform() maps text to float32 embeddings: no input dtype to keep
        tags.transformer_tags.preserves_dtype = []
        return tags


def fill_missing_params(estimator) -> None:
    """Give the parameters a saved model lacks their defaults.

    A model saved before a parameter was added has no attribute for it, and
    ``get_params`` (hence ``clone``, ``set_params``, ``repr``) would raise.
    Every parameter added keeps the old behaviour at its default, and a
    fitted model's predictions depend on its fitted attributes only.
    """
    import inspect

    for name, parameter in inspect.signature(
        type(estimator).__init__
    ).parameters.items():
        if (
            name != "self"
            and parameter.default is not inspect.Parameter.empty
            and name not in estimator.__dict__
        ):
            setattr(estimator, name, parameter.default)


def _topk_to_csr(
    scores: np.ndarray, indices: np.ndarray, n_labels: int
) -> sp.csr_matrix:
    from skxmc.utils._sparse import topk_to_csr

    return topk_to_csr(scores, indices, n_labels)


class _CpuTensorPickler(pickle.Pickler):
    """Pickles every torch tensor (and parameter) as a CPU copy."""

    def reducer_override(self, obj):
        # No tensor exists unless torch was imported: XR-Linear pickles
        # without torch installed.
        torch = sys.modules.get("torch")
        if torch is None:
            return NotImplemented
        if isinstance(obj, torch.Tensor) and obj.device.type != "cpu":
            if isinstance(obj, torch.nn.Parameter):
                return torch.nn.Parameter, (obj.detach().cpu(), obj.requires_grad)
            return _detached, (obj.detach().cpu(), obj.requires_grad)
        return NotImplemented


def _detached(tensor, requires_grad):
    return tensor.requires_grad_(requires_grad)
