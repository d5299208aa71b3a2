"""Test-only estimators and helpers (not part of the public API).

- :class:`CentroidRanker`, a tiny estimator that exercises the base contract;
- ``INIT_PARAMS`` and :func:`make_fast_estimator`: fast configurations of every
  public estimator for the common checks (sklearn's ``INIT_PARAMS``);
- adapters that let sklearn's numeric common checks reach the estimators that
  need more than ``fit(X, y)`` on numeric X (:class:`DecafWithPifaLabels`,
  :class:`EclareWithPifaLabels`, :class:`XRTransformerOnNumeric`,
  :class:`EliasOnNumeric`, :class:`DualEncoderOnNumeric`);
- :func:`save_tiny_bert` and :func:`tiny_bert_dir`: a local random-init BERT
  for the transformer estimators, and the keyword documents they learn.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils._param_validation import StrOptions

from skxmc._decaf import DecafClassifier
from skxmc._dual_encoder import DualEncoderClassifier
from skxmc._eclare import EclareClassifier
from skxmc._elias import EliasClassifier
from skxmc._label_info import LabelInfo
from skxmc._xr_linear import XRLinearClassifier
from skxmc._xr_transformer import XRTransformerClassifier
from skxmc.base import BaseXMCClassifier
from skxmc.training import resolve_device


class CentroidRanker(BaseXMCClassifier):
    """A tiny ranker that exercises the base contract in the test suite.

    Each label is the centroid of its positive training rows; a label's score is
    ``1 / (1 + ||x - centroid||^2)``. The centroids live on ``device`` as a torch
    tensor, so pickling a GPU fit and loading it on a CPU machine is tested
    through the same path the deep estimators use.

    Parameters
    ----------
    top_k : int, default=5
        Labels kept per row by ``decision_function``.
    threshold : float, default=0.5
        ``predict`` returns the labels scoring above it.
    device : {"auto", "cpu", "cuda"} or "cuda:N", default="auto"
        Where the centroids live.
    accept : {"numeric", "text"}, default="numeric"
        With ``"text"``, X must be raw text, turned into bag-of-characters
        counts (to test the raw-text path of the contract).
    random_state : int, RandomState instance or None, default=None
        Used to break ties between equidistant labels reproducibly.
    verbose : int, default=0
        Shows a progress bar over labels during fit.
    """

    _parameter_constraints: dict = {
        **BaseXMCClassifier._parameter_constraints,
        "device": [str],
        "accept": [StrOptions({"numeric", "text"})],
    }

    def __init__(
        self,
        *,
        top_k=5,
        threshold=0.5,
        device="auto",
        accept="numeric",
        random_state=None,
        verbose=0,
    ):
        self.top_k = top_k
        self.threshold = threshold
        self.device = device
        self.accept = accept
        self.random_state = random_state
        self.verbose = verbose

    @property
    def _accepts_text(self):
        return self.accept == "text"

    @property
    def _accepts_numeric(self):
        return self.accept == "numeric"

    def _features(self, X) -> np.ndarray:
        if isinstance(X, list):  # raw text: character counts over a-z
            counts = np.zeros((len(X), 26), dtype=np.float32)
            for i, doc in enumerate(X):
                for ch in doc.lower():
                    if "a" <= ch <= "z":
                        counts[i, ord(ch) - 97] += 1
            return counts
        return X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float32)

    def _fit(self, X, Y, *, label_info, seed):
        device = resolve_device(self.device)
        features = self._features(X)
        counts = np.asarray(Y.sum(axis=0)).ravel()
        sums = np.zeros((Y.shape[1], features.shape[1]), dtype=np.float32)
        for label in self._progress(range(Y.shape[1]), desc="centroids"):
            rows = Y[:, label].nonzero()[0]
            sums[label] = features[rows].sum(axis=0)
        centroids = sums / np.maximum(counts, 1)[:, None]
        # A seeded jitter far below any real distance breaks exact ties.
        jitter = np.random.default_rng(seed).uniform(0, 1e-6, size=Y.shape[1])
        self.centroids_ = torch.from_numpy(centroids).to(device)
        self.tie_breaker_ = torch.from_numpy(jitter.astype(np.float32)).to(device)
        return self

    def _predict_topk(self, X, k):
        device = resolve_device(self.device, strict=False)
        x = torch.from_numpy(self._features(X)).to(device)
        centroids = self.centroids_.to(device)
        distances = torch.cdist(x, centroids).pow(2)
        scores = 1.0 / (1.0 + distances) + self.tie_breaker_.to(device)
        kk = min(k, centroids.shape[0])
        top_scores, top_indices = torch.topk(scores, kk, dim=1)
        out_scores = np.full((x.shape[0], k), -np.inf, dtype=np.float32)
        out_indices = np.full((x.shape[0], k), -1, dtype=np.int64)
        out_scores[:, :kk] = top_scores.cpu().numpy()
        out_indices[:, :kk] = top_indices.cpu().numpy()
        return out_scores, out_indices


def save_tiny_bert(
    folder, words, *, hidden_size=32, seed=0, dropout=0.1, num_hidden_layers=1
):
    """Write a random-init BERT and a WordPiece tokenizer to ``folder``.

    The vocabulary is BERT's special tokens plus ``words``; the weights come
    from a forked, seeded torch RNG (the caller's RNG state is untouched).
    For tests of the transformer estimators without any download;
    ``dropout`` is BERT's hidden and attention dropout.

    Returns
    -------
    folder : pathlib.Path
        The folder, loadable with ``AutoModel.from_pretrained``.
    """
    from pathlib import Path

    import torch
    import transformers

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    transformers.BertTokenizerFast(str(folder / "vocab.txt")).save_pretrained(folder)
    config = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        transformers.BertModel(config).save_pretrained(folder)
    return folder


# Keyword documents for the tiny-transformer tests: label j owns two keywords.
KEYWORD_LABELS = 8
KEYWORDS = [(f"key{j}a", f"key{j}b") for j in range(KEYWORD_LABELS)]
NOISE_WORDS = [f"noise{j}" for j in range(12)]
#: Every word of the keyword documents (a tiny tokenizer's vocabulary).
KEYWORD_VOCABULARY = [w for pair in KEYWORDS for w in pair] + NOISE_WORDS


def make_keyword_docs(n, seed):
    """``n`` documents mixing their labels' keywords with noise words.

    Document ``i`` carries label ``i % 8`` and one random label; it holds one
    keyword of each label and three noise words, shuffled. Returns ``(docs,
    Y)`` with ``Y`` a CSR matrix of shape ``(n, 8)``.
    """
    rng = np.random.default_rng(seed)
    docs, rows = [], []
    for i in range(n):
        labels = sorted({i % KEYWORD_LABELS, int(rng.integers(KEYWORD_LABELS))})
        words = [KEYWORDS[j][int(rng.integers(2))] for j in labels]
        words += [NOISE_WORDS[int(k)] for k in rng.integers(len(NOISE_WORDS), size=3)]
        rng.shuffle(words)
        docs.append(" ".join(words))
        rows.append(labels)
    Y = sp.lil_matrix((n, KEYWORD_LABELS), dtype=np.float32)
    for i, labels in enumerate(rows):
        Y[i, labels] = 1
    return docs, Y.tocsr()


# ------------------------------------------------------------ fast configs
#: Words of the tiny BERT of the common checks: the words ``w0``, ``w1``, ...
#: of :func:`skxmc.datasets.make_xmc_classification` and the negative-value
#: words ``n0``, ``n1``, ... of :func:`numeric_to_text`.
TINY_BERT_WORDS = [f"{kind}{j}" for kind in "wn" for j in range(64)]
_TINY_BERT_HIDDEN = 16


@cache
def tiny_bert_dir() -> str:
    """The folder of a tiny random-init BERT over ``TINY_BERT_WORDS``.

    Built once per machine under the temporary directory, at a path that
    depends only on its content (so test ids that show the estimator's
    ``encoder`` parameter are stable); written to a private folder first and
    renamed into place, so concurrent test runs never see half a model.

    Returns
    -------
    folder : str
        Loadable with ``transformers.AutoModel.from_pretrained``.
    """
    import transformers

    key = repr((TINY_BERT_WORDS, _TINY_BERT_HIDDEN, transformers.__version__))
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    folder = Path(tempfile.gettempdir()) / f"skxmc-tiny-bert-{digest}"
    if not (folder / "config.json").exists():
        staging = Path(tempfile.mkdtemp(prefix="skxmc-tiny-bert-"))
        save_tiny_bert(staging, TINY_BERT_WORDS, hidden_size=_TINY_BERT_HIDDEN)
        try:
            os.rename(staging, folder)
        except OSError:  # another process won the race
            shutil.rmtree(staging, ignore_errors=True)
    return str(folder)


#: Fast parameters of every estimator for the common checks: a fit on the
#: check data takes well under a second on the CPU. The transformer
#: estimators also need ``encoder`` (see :func:`make_fast_estimator`).
INIT_PARAMS: dict[type, dict] = {
    CentroidRanker: {},
    XRLinearClassifier: {"branching_factor": 2, "max_leaf_size": 2},
    DecafClassifier: {
        "embedding_dim": 8,
        "n_epochs": 3,
        "batch_size": 64,
        "learning_rate": 0.2,
        "dropout": 0.0,
        "max_leaf_size": 1,
        "beam_size": 4,
        "fusion": "weights",
        "reranker": None,
        "device": "cpu",
    },
    EclareClassifier: {
        "embedding_dim": 8,
        "n_epochs": 3,
        "batch_size": 64,
        "learning_rate": 0.2,
        "dropout": 0.0,
        "max_leaf_size": 1,
        "beam_size": 4,
        "n_neighbors": 2,
        "fusion": "weights",
        "reranker": None,
        "device": "cpu",
    },
    XRTransformerClassifier: {
        "max_length": 16,
        "pooling": "mean",
        "branching_factor": 2,
        "max_leaf_size": 3,
        "n_steps": 2,
        "batch_size": 16,
        "learning_rate": 1e-3,
        "head_learning_rate": 5e-2,
        "beam_size": 4,
        "device": "cpu",
        "n_jobs": 1,
    },
    DualEncoderClassifier: {
        "max_length": 16,
        "label_max_length": 16,
        "n_epochs": 1,
        "batch_size": 16,
        "cluster_size": 4,
        "learning_rate": 1e-3,
        "device": "cpu",
        "n_jobs": 1,
    },
    EliasClassifier: {
        "max_length": 16,
        "pooling": "mean",
        "dropout": 0.1,
        "max_leaf_size": 2,
        "kappa": 3,
        "beam_size": 2,
        "shortlist_size": 5,
        "reranker": None,
        "n_epochs": (1, 1),
        "batch_size": 32,
        "learning_rate": 1e-3,
        "head_learning_rate": 5e-2,
        "device": "cpu",
        "n_jobs": 1,
    },
}


def make_fast_estimator(estimator_class, **params):
    """An instance of ``estimator_class`` with its ``INIT_PARAMS``.

    Looks ``INIT_PARAMS`` up along the class's method resolution order, so
    the test-only adapters below get the parameters of the estimator they
    wrap; estimators that require an ``encoder`` get :func:`tiny_bert_dir`
    (DECAF's optional one stays off).

    Parameters
    ----------
    estimator_class : type
        An skxmc estimator class (or a subclass of one).
    **params
        Overrides of the fast parameters.

    Returns
    -------
    estimator : BaseXMCClassifier
        Unfitted.
    """
    base = next(c for c in estimator_class.__mro__ if c in INIT_PARAMS)
    fast = dict(INIT_PARAMS[base])
    if _requires(estimator_class, "encoder"):
        fast["encoder"] = tiny_bert_dir()
    return estimator_class(**{**fast, **params})


def _requires(estimator_class, name: str) -> bool:
    """Whether ``name`` is a parameter of ``estimator_class`` without a default."""
    import inspect

    parameter = inspect.signature(estimator_class.__init__).parameters.get(name)
    return parameter is not None and parameter.default is inspect.Parameter.empty


# ------------------------------------------- adapters for sklearn's checks
class PifaLabels:
    """Mixin: label features default to PIFA when ``fit`` gets no label data.

    sklearn's common checks call ``fit(X, y)`` without label data, which DECAF
    and ECLARE reject; the labels' PIFA vectors (in the feature space of X)
    stand in as label features.
    """

    def _fit(self, X, Y, *, label_info, seed):
        from skxmc.indexing import pifa_embedding

        if label_info is None:
            label_info = LabelInfo(features=pifa_embedding(X, Y))
        return super()._fit(X, Y, label_info=label_info, seed=seed)


class DecafWithPifaLabels(PifaLabels, DecafClassifier):
    """DecafClassifier for sklearn's common checks (see :class:`PifaLabels`)."""


class EclareWithPifaLabels(PifaLabels, EclareClassifier):
    """EclareClassifier for sklearn's common checks (see :class:`PifaLabels`)."""


def numeric_to_text(X) -> list[str]:
    """Spell each row of a numeric matrix as a document.

    Feature ``j`` with value ``v`` becomes the word ``w{j}`` (``v > 0``) or
    ``n{j}`` (``v < 0``), repeated ``1 + min(floor(2 |v|), 4)`` times; zeros
    give no word. Coarse, but the TF-IDF the text estimators fit on it keeps
    enough of ``X`` to separate sklearn's test blobs.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Numeric features.

    Returns
    -------
    documents : list of str
        One document per row.
    """
    X = sp.csr_matrix(X)
    documents = []
    for row in range(X.shape[0]):
        start, stop = X.indptr[row], X.indptr[row + 1]
        words = []
        for j, v in zip(X.indices[start:stop], X.data[start:stop]):
            if v == 0 or not np.isfinite(v):
                continue
            word = f"{'w' if v > 0 else 'n'}{j}"
            words += [word] * (1 + min(int(2 * abs(v)), 4))
        documents.append(" ".join(words))
    return documents


class NumericAsText:
    """Mixin: a text-only estimator that reads numeric X through
    :func:`numeric_to_text`, so that sklearn's common checks
    (``parametrize_with_checks``) reach its parameters, validation, fitted
    state, predictions and ``transform``.

    X is validated as numeric (sklearn's messages, ``n_features_in_``), then
    spelled as text for ``fit``, the predictions and ``transform``.
    """

    _accepts_numeric = True
    _accepts_text = False

    def _validate_X(self, X, *, reset):
        return numeric_to_text(super()._validate_X(X, reset=reset))


class XRTransformerOnNumeric(NumericAsText, XRTransformerClassifier):
    """XRTransformerClassifier for sklearn's common checks (numeric X)."""


class EliasOnNumeric(NumericAsText, EliasClassifier):
    """EliasClassifier for sklearn's common checks (numeric X)."""


class DualEncoderOnNumeric(NumericAsText, DualEncoderClassifier):
    """DualEncoderClassifier for sklearn's common checks (numeric X).

    Without label data, each label's text is its PIFA vector (the mean of
    its positive rows, in the feature space of X) spelled as words.
    """

    def _validate_X(self, X, *, reset):
        # keep the numeric X of a fit: the PIFA label text is computed from it
        numeric = super(NumericAsText, self)._validate_X(X, reset=reset)
        if reset:
            self._numeric_X = numeric
        return numeric_to_text(numeric)

    def _fit(self, X, Y, *, label_info, seed):
        from skxmc.indexing import pifa_embedding

        if label_info is None:
            numeric = self.__dict__.pop("_numeric_X")
            text = numeric_to_text(pifa_embedding(numeric, Y) * 4)
            label_info = LabelInfo(text=[t or "w0" for t in text])
        return super()._fit(X, Y, label_info=label_info, seed=seed)
