"""The TF-IDF that the pretrained-encoder engines rank with."""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from skxmc.utils._text import fit_stable_vocabulary
from skxmc.utils._validation import named_vocabulary_error


def fit_tfidf(texts, params: dict | None = None):
    """Fit the encoder engines' TF-IDF on ``texts`` (XR-Transformer, ELIAS).

    :class:`~sklearn.feature_extraction.text.TfidfVectorizer` with
    ``sublinear_tf=True`` and ``dtype=np.float32``, updated by ``params``; an
    empty vocabulary is reported as a problem of ``X``; a ``max_features`` cut
    keeps the same terms on every machine (:func:`fit_stable_vocabulary`).

    Parameters
    ----------
    texts : sequence of str
        The training documents.
    params : dict, default=None
        More (or other) vectorizer parameters.

    Returns
    -------
    vectorizer : TfidfVectorizer
        The fitted vectorizer.
    X : csr_matrix of shape (n_texts, n_terms), dtype float32
        The TF-IDF of ``texts``.

    Examples
    --------
    >>> from skxmc.models._text_features import fit_tfidf
    >>> vectorizer, X = fit_tfidf(["a cat", "a dog"], {"token_pattern": r"\\w+"})
    >>> X.shape, X.dtype.name
    ((2, 3), 'float32')
    """
    vectorizer = TfidfVectorizer(
        **{"sublinear_tf": True, "dtype": np.float32, **(params or {})}
    )
    with named_vocabulary_error("X"):
        if vectorizer.max_features is None:
            X = vectorizer.fit_transform(texts)
        else:  # the same terms on every machine
            texts = list(texts)
            vectorizer = fit_stable_vocabulary(vectorizer, texts)
            X = vectorizer.transform(texts)
    return vectorizer, X.astype(np.float32)
