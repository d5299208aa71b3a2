"""Synthetic extreme multi-label data: power-law labels, label text, correlations."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, validate_params

__all__ = ["make_xmc_classification"]

# Rounds of re-drawing a label already drawn for the same sample.
_MAX_REDRAW_ROUNDS = 100


class _LabelSampler:
    """Draw label ids by popularity, globally or within a label group."""

    def __init__(self, popularity: np.ndarray, groups: np.ndarray, n_groups: int):
        self.order = np.argsort(groups, kind="stable")
        self.cum = np.cumsum(popularity[self.order])
        sorted_groups = groups[self.order]
        self.start = np.searchsorted(sorted_groups, np.arange(n_groups), side="left")
        self.end = np.searchsorted(sorted_groups, np.arange(n_groups), side="right")
        cum0 = np.concatenate([[0.0], self.cum])
        self.low = cum0[self.start]
        self.high = cum0[self.end]
        self.groups = groups

    def draw(self, rng: np.random.Generator, group: np.ndarray | None, size: int):
        """``size`` labels; entry i restricted to ``group[i]`` when given."""
        u = rng.random(size)
        if group is None:
            low, high = 0.0, self.cum[-1]
            first, last = 0, len(self.cum) - 1
        else:
            low, high = self.low[group], self.high[group]
            first, last = self.start[group], self.end[group] - 1
        pos = np.searchsorted(self.cum, low + u * (high - low), side="right")
        return self.order[np.clip(pos, first, last)]


def _draw_label_chunk(
    rng: np.random.Generator,
    sampler: _LabelSampler,
    n_rows: int,
    n_labels: int,
    avg_labels: float,
    correlation: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Row pointers and label ids (sorted, distinct per row) for ``n_rows`` samples."""
    counts = np.minimum(1 + rng.poisson(avg_labels - 1.0, size=n_rows), n_labels)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    rows = np.repeat(np.arange(n_rows), counts)
    slot = np.arange(len(rows))
    is_first = slot == indptr[rows]
    labels = np.empty(len(rows), dtype=np.int64)
    labels[is_first] = sampler.draw(rng, None, n_rows)
    first_group = sampler.groups[labels[is_first]]

    def draw(slots: np.ndarray) -> np.ndarray:
        same = rng.random(len(slots)) < correlation
        from_group = sampler.draw(rng, first_group[rows[slots]], len(slots))
        from_all = sampler.draw(rng, None, len(slots))
        return np.where(same, from_group, from_all)

    others = np.flatnonzero(~is_first)
    labels[others] = draw(others)
    for _ in range(_MAX_REDRAW_ROUNDS):
        order = np.lexsort((slot, labels, rows))
        dup = np.zeros(len(rows), dtype=bool)
        dup[order[1:]] = (rows[order[1:]] == rows[order[:-1]]) & (
            labels[order[1:]] == labels[order[:-1]]
        )
        redo = np.flatnonzero(dup)
        if not redo.size:
            break
        labels[redo] = draw(redo)
    matrix = sp.csr_matrix(
        (np.ones(len(labels), dtype=np.float32), labels, indptr),
        shape=(n_rows, n_labels),
    )
    matrix.sum_duplicates()  # duplicates left after the redraw rounds
    return matrix.indptr.astype(np.int64), matrix.indices.astype(np.int64)


def _distinct_words(
    rng: np.random.Generator, n_labels: int, n_words: int, n_features: int
) -> np.ndarray:
    """``n_words`` distinct, sorted word ids per label, shape (n_labels, n_words)."""
    draws = rng.integers(0, n_features - n_words + 1, size=(n_labels, n_words))
    draws.sort(axis=1)
    return (draws + np.arange(n_words)).astype(np.int32)


def _join_rows(tokens: np.ndarray, indptr: np.ndarray) -> list[str]:
    """Join string tokens row by row with spaces (every row non-empty)."""
    seps = np.full(len(tokens), " ", dtype=object)
    seps[indptr[1:] - 1] = "\n"
    joined = np.empty(2 * len(tokens), dtype=object)
    joined[0::2] = tokens
    joined[1::2] = seps
    return "".join(joined.tolist()).split("\n")[:-1]


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_labels": [Interval(Integral, 1, None, closed="left")],
        "n_features": [Interval(Integral, 1, None, closed="left")],
        "avg_labels_per_sample": [Interval(Real, 1, None, closed="left")],
        "label_power_law": [Interval(Real, 0, None, closed="left")],
        "n_label_groups": [Interval(Integral, 1, None, closed="left"), None],
        "label_correlation": [Interval(Real, 0, 1, closed="both")],
        "n_words_per_label": [Interval(Integral, 1, None, closed="left")],
        "avg_words_per_sample": [Interval(Real, 1, None, closed="left")],
        "noise": [Interval(Real, 0, 1, closed="both")],
        "return_text": ["boolean"],
        "chunk_size": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_xmc_classification(
    n_samples=100,
    n_labels=20,
    n_features=100,
    *,
    avg_labels_per_sample=3.0,
    label_power_law=1.0,
    n_label_groups=None,
    label_correlation=0.5,
    n_words_per_label=5,
    avg_words_per_sample=20.0,
    noise=0.2,
    return_text=False,
    chunk_size=10_000,
    random_state=None,
):
    """Generate a random extreme multi-label problem with label text.

    Labels follow a power law and co-occur within groups; every label owns a few
    words, and documents are bags of words drawn from the words of their labels
    plus background noise, so the labels can be learned from the features (and
    from the text, and matched to the label text).

    The generative process:

    1. Label ``j`` has popularity ``(j + 1) ** -label_power_law`` (label 0 is
       the most popular). Labels are split at random into ``n_label_groups``
       groups of equal size (within one).
    2. Sample ``i`` gets ``k_i = 1 + Poisson(avg_labels_per_sample - 1)``
       labels (at most ``n_labels``): the first drawn by popularity among all
       labels; each other one, with probability ``label_correlation``, by
       popularity within the group of the first label, else among all labels.
       A label drawn twice for a sample is drawn again (up to 100 rounds, then
       merged), so the mean number of labels is close to
       ``avg_labels_per_sample``.
    3. If ``n_labels <= n_samples``, every label that was never drawn is added
       to one distinct, randomly chosen sample, so that every label has at
       least one positive; otherwise labels never drawn have no positive.
    4. Label ``j`` owns ``n_words_per_label`` distinct random words (feature
       ids). Sample ``i`` has ``1 + Poisson(avg_words_per_sample - 1)``
       tokens; each is, with probability ``noise``, a background word (Zipf
       distributed over a random order of the vocabulary), else a random word
       of a random label of the sample.
    5. ``X`` holds the tf-idf of the tokens: ``(1 + log(count)) * idf`` with
       ``idf = log((1 + n_samples) / (1 + df)) + 1``, rows L2-normalised.

    Parameters
    ----------
    n_samples : int, default=100
        Number of samples.
    n_labels : int, default=20
        Number of labels.
    n_features : int, default=100
        Vocabulary size (number of features).
    avg_labels_per_sample : float, default=3.0
        Mean number of labels per sample (at least 1).
    label_power_law : float, default=1.0
        Exponent of the Zipf-like label popularity; 0 gives uniform labels,
        larger values a heavier head.
    n_label_groups : int, default=None
        Number of groups of co-occurring labels; ``None`` means
        ``ceil(n_labels / 10)`` (about 10 labels per group). Capped at
        ``n_labels``.
    label_correlation : float, default=0.5
        Probability that a sample's second, third, ... label comes from the
        group of its first label.
    n_words_per_label : int, default=5
        Words owned by each label (capped at ``n_features``).
    avg_words_per_sample : float, default=20.0
        Mean number of tokens per sample (at least 1).
    noise : float, default=0.2
        Probability that a token is a background word.
    return_text : bool, default=False
        If True, return a :class:`~sklearn.utils.Bunch` that also holds the
        text of the samples and of the labels.
    chunk_size : int, default=10_000
        Samples generated at a time; bounds the temporary memory. Changing
        it changes the draw, like changing ``random_state``.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible output.

    Returns
    -------
    X : csr_matrix of shape (n_samples, n_features), float32
        Tf-idf features, rows of unit L2 norm. Returned as a tuple ``(X, Y)``
        when ``return_text=False``.
    Y : csr_matrix of shape (n_samples, n_labels), float32
        0/1 label indicator matrix; every row has at least one label.
    data : :class:`~sklearn.utils.Bunch`
        Only when ``return_text=True``, instead of the tuple: keys ``X``,
        ``Y``, ``text`` (list of n_samples str, the tokens of each sample
        such as ``"w12 w873 w12"``, word ``wJ`` being feature ``J``),
        ``label_text`` (list of n_labels str, the words of each label),
        ``feature_names`` (list of str, ``"w0"``, ``"w1"``, ...) and
        ``label_groups`` (ndarray of shape (n_labels,), the group of each
        label).

    Notes
    -----
    Memory and time are linear in ``n_labels * n_words_per_label`` plus the
    size of the output; no Python loop runs over samples or labels, so
    ``n_labels=1_000_000, n_samples=100_000`` takes seconds.

    Examples
    --------
    >>> from skxmc.datasets import make_xmc_classification
    >>> X, Y = make_xmc_classification(n_samples=50, n_labels=10, random_state=0)
    >>> X.shape, Y.shape, X.dtype, Y.dtype
    ((50, 100), (50, 10), dtype('float32'), dtype('float32'))
    >>> bool(Y.sum(axis=1).min() >= 1)
    True
    >>> data = make_xmc_classification(
    ...     n_samples=5, n_labels=3, return_text=True, random_state=0
    ... )
    >>> len(data.text), len(data.label_text)
    (5, 3)
    >>> data.label_text[0]
    'w... w... w... w... w...'
    """
    rs = check_random_state(random_state)
    seed = int(rs.randint(np.iinfo(np.int32).max))
    n_chunks = math.ceil(n_samples / chunk_size)
    label_seq, *chunk_seqs = np.random.SeedSequence(seed).spawn(1 + 2 * n_chunks)
    rng = np.random.default_rng(label_seq)

    n_groups = n_label_groups if n_label_groups is not None else -(-n_labels // 10)
    n_groups = min(n_groups, n_labels)
    popularity = np.arange(1, n_labels + 1, dtype=np.float64) ** -float(label_power_law)
    popularity /= popularity.sum()
    groups = (rng.permutation(n_labels) % n_groups).astype(np.int64)
    sampler = _LabelSampler(popularity, groups, n_groups)
    n_words = min(n_words_per_label, n_features)
    label_words = _distinct_words(rng, n_labels, n_words, n_features)
    background = np.cumsum(1.0 / np.arange(1, n_features + 1))
    background_words = rng.permutation(n_features)

    # Pass 1: labels.
    bounds = [
        (c * chunk_size, min((c + 1) * chunk_size, n_samples)) for c in range(n_chunks)
    ]
    indptrs, indices = [np.zeros(1, dtype=np.int64)], []
    offset = 0
    for (start, stop), seq in zip(bounds, chunk_seqs[:n_chunks]):
        ptr, idx = _draw_label_chunk(
            np.random.default_rng(seq),
            sampler,
            stop - start,
            n_labels,
            float(avg_labels_per_sample),
            float(label_correlation),
        )
        indptrs.append(ptr[1:] + offset)
        indices.append(idx)
        offset += len(idx)
    Y = sp.csr_matrix(
        (
            np.ones(offset, dtype=np.float32),
            np.concatenate(indices),
            np.concatenate(indptrs),
        ),
        shape=(n_samples, n_labels),
    )
    if n_labels <= n_samples:
        missing = np.flatnonzero(np.bincount(Y.indices, minlength=n_labels) == 0)
        if missing.size:
            hosts = rng.choice(n_samples, size=missing.size, replace=False)
            coo = Y.tocoo()
            Y = sp.csr_matrix(
                (
                    np.ones(coo.nnz + missing.size, dtype=np.float32),
                    (
                        np.concatenate([coo.row, hosts]),
                        np.concatenate([coo.col, missing]),
                    ),
                ),
                shape=(n_samples, n_labels),
            )
    Y.sort_indices()
    Y.data[:] = 1.0

    # Pass 2: words.
    x_parts, texts = [], []
    vocab = np.array([f"w{j}" for j in range(n_features)], dtype=object)
    for (start, stop), seq in zip(bounds, chunk_seqs[n_chunks:]):
        crng = np.random.default_rng(seq)
        m = stop - start
        n_tokens = 1 + crng.poisson(avg_words_per_sample - 1.0, size=m)
        rows = np.repeat(np.arange(m), n_tokens)
        y_ptr = Y.indptr[start : stop + 1]
        n_row_labels = np.diff(y_ptr)[rows]
        pick = y_ptr[rows] + (crng.random(len(rows)) * n_row_labels).astype(np.int64)
        words = label_words[Y.indices[pick], crng.integers(0, n_words, size=len(rows))]
        is_noise = crng.random(len(rows)) < noise
        u = crng.random(int(is_noise.sum())) * background[-1]
        noise_rank = np.minimum(
            np.searchsorted(background, u, side="right"), n_features - 1
        )
        words[is_noise] = background_words[noise_rank]
        counts = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, words)),
            shape=(m, n_features),
        )
        counts.sum_duplicates()
        x_parts.append(counts)
        if return_text:
            token_ptr = np.concatenate([[0], np.cumsum(n_tokens)])
            texts.extend(_join_rows(vocab[words], token_ptr))

    X = sp.vstack(x_parts, format="csr", dtype=np.float32)
    X.sort_indices()
    df = np.bincount(X.indices, minlength=n_features)
    idf = np.log((1.0 + n_samples) / (1.0 + df)) + 1.0
    X.data = ((1.0 + np.log(X.data)) * idf[X.indices]).astype(np.float32)
    norms = np.sqrt(np.add.reduceat(X.data.astype(np.float64) ** 2, X.indptr[:-1]))
    X.data /= np.repeat(norms, np.diff(X.indptr)).astype(np.float32)

    if not return_text:
        return X, Y
    label_ptr = np.arange(0, n_labels * n_words + 1, n_words)
    label_text = _join_rows(vocab[label_words.ravel()], label_ptr)
    return Bunch(
        X=X,
        Y=Y,
        text=texts,
        label_text=label_text,
        feature_names=vocab.tolist(),
        label_groups=groups,
    )
