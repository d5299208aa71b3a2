"""fit_stable_vocabulary: the max_features cut keeps the same terms everywhere."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from skxmc.utils import fit_stable_vocabulary


def _literal_cut(texts, limit, **params):
    """The kept terms by the rule: count descending, then the term itself."""
    counts = CountVectorizer(**params).fit(texts)
    totals = np.asarray(counts.transform(texts).sum(axis=0)).ravel()
    terms = counts.get_feature_names_out()
    ranked = sorted(zip(terms, totals), key=lambda item: (-item[1], item[0]))
    return sorted(term for term, _ in ranked[:limit])


def _tied_corpus(n_words=300, seed=0):
    """Words seen 1, 2 or 3 times, mixed in alphabetical order, and the limit
    that cuts through those seen twice. (NumPy's default sort is not stable:
    on this corpus scikit-learn's own cut keeps 27 other twice-seen words on a
    2-core AVX2 machine; which ones depends on the CPU's sort kernel.)"""
    counts = np.random.default_rng(seed).integers(1, 4, size=n_words)
    texts = [f"w{i:04d} " * count for i, count in enumerate(counts)]
    limit = int((counts == 3).sum() + (counts == 2).sum() // 2)
    return texts, counts, limit


@pytest.mark.parametrize("kind", [CountVectorizer, TfidfVectorizer])
def test_the_cut_through_tied_terms_follows_the_rule(kind):
    texts, counts, limit = _tied_corpus()
    fitted = fit_stable_vocabulary(kind(max_features=limit), texts)
    kept = fitted.get_feature_names_out().tolist()
    assert kept == _literal_cut(texts, limit)
    # every word seen 3 times, and the alphabetically first of those seen twice
    twice = [f"w{i:04d}" for i in np.flatnonzero(counts == 2)]
    thrice = [f"w{i:04d}" for i in np.flatnonzero(counts == 3)]
    assert kept == sorted(thrice + twice[: limit - len(thrice)])


@settings(max_examples=30, deadline=None)
@given(
    docs=st.lists(
        st.lists(st.sampled_from(["ant", "bee", "cat", "dog", "eel", "fox", "gnu"])),
        min_size=1,
        max_size=12,
    ).filter(lambda docs: any(docs)),
    limit=st.integers(1, 8),
    ngram_max=st.integers(1, 2),
)
def test_kept_terms_equal_the_literal_rule(docs, limit, ngram_max):
    texts = [" ".join(words) for words in docs]
    fitted = fit_stable_vocabulary(
        TfidfVectorizer(max_features=limit, ngram_range=(1, ngram_max)), texts
    )
    expected = _literal_cut(texts, limit, ngram_range=(1, ngram_max))
    assert fitted.get_feature_names_out().tolist() == expected


def test_without_ties_at_the_cut_it_is_sklearns_fit():
    texts = ["red red red blue blue green", "red blue green green yellow", "red"]
    ours = fit_stable_vocabulary(
        TfidfVectorizer(max_features=3, sublinear_tf=True), texts
    )
    theirs = TfidfVectorizer(max_features=3, sublinear_tf=True).fit(texts)
    assert ours.vocabulary_ == theirs.vocabulary_
    np.testing.assert_array_equal(ours.idf_, theirs.idf_)
    new = ["blue red", "green yellow purple"]
    np.testing.assert_array_equal(
        ours.transform(new).toarray(), theirs.transform(new).toarray()
    )


def test_no_cut_fits_the_vectorizer_as_is_and_leaves_it_unfitted():
    texts = ["red blue", "green red"]
    vectorizer = TfidfVectorizer()
    fitted = fit_stable_vocabulary(vectorizer, texts)
    assert fitted is not vectorizer and not hasattr(vectorizer, "vocabulary_")
    assert fitted.vocabulary is None
    assert fitted.vocabulary_ == TfidfVectorizer().fit(texts).vocabulary_
    # a limit above the number of terms cuts nothing either
    wide = fit_stable_vocabulary(TfidfVectorizer(max_features=10), texts)
    assert wide.vocabulary is None and len(wide.vocabulary_) == 3
