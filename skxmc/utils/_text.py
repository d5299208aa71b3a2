"""Text vectorizers whose fitted vocabulary is the same on every machine."""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.feature_extraction.text import CountVectorizer


def fit_stable_vocabulary(vectorizer, texts):
    """Fit a copy of ``vectorizer`` keeping the same terms on every machine.

    scikit-learn's ``CountVectorizer`` / ``TfidfVectorizer`` with
    ``max_features`` keep the terms of highest count, ranked by NumPy's
    default (unstable) ``argsort``: which of the terms tied at the cut are
    kept then depends on the sort kernel NumPy picks for the CPU (its SIMD
    sorts differ between AVX-512, AVX2 and other machines). On
    LF-DebianPackages (1-2 grams, ``min_df=2``, 200,000 features) 69,979
    terms tie at the cut and 12,100 of them are kept, so the features, and
    every model fitted on them, change from one machine to the next. Here the
    terms are ranked by count and ties broken by the term itself
    (alphabetical order), which equals scikit-learn's choice whenever no tie
    crosses the cut.

    Parameters
    ----------
    vectorizer : CountVectorizer or TfidfVectorizer
        Unfitted; left untouched. Without ``max_features`` (or with a fixed
        ``vocabulary``), or of another kind, its copy is fitted as is.
    texts : iterable of str
        The documents to fit on (read twice when terms are cut).

    Returns
    -------
    fitted : CountVectorizer or TfidfVectorizer
        A fitted copy; when terms were cut, its ``vocabulary`` parameter holds
        the kept terms (``max_features`` then has no further effect).

    Examples
    --------
    >>> from sklearn.feature_extraction.text import TfidfVectorizer
    >>> from skxmc.utils import fit_stable_vocabulary
    >>> texts = ["pear apple", "fig apple", "kiwi"]  # fig, kiwi, pear: one each
    >>> fitted = fit_stable_vocabulary(TfidfVectorizer(max_features=2), texts)
    >>> fitted.get_feature_names_out().tolist()
    ['apple', 'fig']
    """
    fitted = clone(vectorizer)
    limit = getattr(vectorizer, "max_features", None)
    if (
        not isinstance(vectorizer, CountVectorizer)
        or limit is None
        or vectorizer.vocabulary is not None
    ):
        return fitted.fit(texts)
    texts = list(texts)
    count_params = set(CountVectorizer().get_params())
    counter = CountVectorizer(
        **{
            name: value
            for name, value in vectorizer.get_params().items()
            if name in count_params
        }
    ).set_params(max_features=None, dtype=np.int64)
    counts = counter.fit_transform(texts)
    if counts.shape[1] <= limit:
        return fitted.fit(texts)
    # columns are in alphabetical order of their terms, so a stable sort by
    # decreasing count breaks ties alphabetically
    totals = np.asarray(counts.sum(axis=0)).ravel()
    kept = np.sort(np.argsort(-totals, kind="stable")[:limit])
    terms = counter.get_feature_names_out()[kept]
    return fitted.set_params(vocabulary=list(terms)).fit(texts)
