"""Test-only estimators and helpers (not part of the public API)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils._param_validation import StrOptions

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


def save_tiny_bert(folder, words, *, hidden_size=32, seed=0):
    """Write a random-init 1-layer BERT and a WordPiece tokenizer to ``folder``.

    The vocabulary is BERT's special tokens plus ``words``; the weights come
    from a forked, seeded torch RNG (the caller's RNG state is untouched).
    For tests of the transformer estimators without any download.

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
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
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
