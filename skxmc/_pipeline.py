"""A Pipeline that also forwards ``predict_topk`` and ``add_labels``."""

from __future__ import annotations

from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.utils.metaestimators import available_if

__all__ = ["XMCPipeline", "make_xmc_pipeline"]


def _final_estimator_has(attr):
    def check(self):
        getattr(self._final_estimator, attr)
        return True

    return check


class XMCPipeline(Pipeline):
    """A :class:`~sklearn.pipeline.Pipeline` with ``predict_topk`` and ``add_labels``.

    sklearn's Pipeline forwards only the methods it knows (``predict``,
    ``decision_function``, ...). This subclass adds ``predict_topk``, so a
    vectorizer followed by an skxmc classifier returns ranked labels directly,
    and ``add_labels`` (when the final estimator has it, as
    :class:`~skxmc.DecafClassifier` and :class:`~skxmc.EclareClassifier` do),
    which sends the new labels' text through the pipeline's own transformers.
    Everything else is the plain Pipeline (parameters, cloning, grid search).

    Parameters
    ----------
    steps : list of tuples
        ``(name, estimator)`` pairs, as for :class:`~sklearn.pipeline.Pipeline`.
    transform_input : list of str, default=None
        See :class:`~sklearn.pipeline.Pipeline`.
    memory : str or object with the joblib.Memory interface, default=None
        See :class:`~sklearn.pipeline.Pipeline`.
    verbose : bool, default=False
        See :class:`~sklearn.pipeline.Pipeline`.

    See Also
    --------
    make_xmc_pipeline : Build an XMCPipeline from estimators, naming the steps.

    Examples
    --------
    >>> from sklearn.feature_extraction.text import TfidfVectorizer
    >>> from skxmc import XMCPipeline
    >>> from skxmc.utils._testing import CentroidRanker
    >>> pipe = XMCPipeline([("tfidf", TfidfVectorizer()), ("clf", CentroidRanker())])
    >>> pipe.fit(["red apple", "green pear", "red cherry"], [["fruit", "red"],
    ...          ["fruit"], ["fruit", "red"]])
    XMCPipeline(...)
    >>> from skxmc.utils import labels_to_classes
    >>> scores, labels = pipe.predict_topk(["red berry"], k=2)
    >>> labels_to_classes(pipe.classes_, labels).tolist()  # -1 padding -> None
    [['red', 'fruit']]
    """

    @available_if(_final_estimator_has("predict_topk"))
    def predict_topk(self, X, k=None, **params):
        """Transform ``X`` through the steps, then rank labels with the final one.

        Parameters
        ----------
        X : iterable
            Data to predict on; must fulfil the input requirements of the first
            step.
        k : int, default=None
            Number of labels per sample (the final estimator's ``top_k`` if None).
        **params : dict
            Passed on to the final estimator's ``predict_topk`` (e.g.
            ``return_scores``).

        Returns
        -------
        result : tuple of ndarray or ndarray
            What the final estimator's ``predict_topk`` returns.
        """
        Xt = X
        for _, _, transformer in self._iter(with_final=False):
            Xt = transformer.transform(Xt)
        return self.steps[-1][1].predict_topk(Xt, k, **params)

    @available_if(_final_estimator_has("add_labels"))
    def add_labels(self, label_text, *, labels=None):
        """Add labels known by their text to the fitted final estimator.

        The text goes through the fitted transformers of the pipeline (the same
        vectorizer the documents go through), and the result to the final
        estimator's ``add_labels``; no step is refitted.

        Parameters
        ----------
        label_text : sequence of str
            The text of each new label; must fulfil the input requirements of
            the first step.
        labels : sequence, default=None
            Names of the new labels, passed on to the final estimator.

        Returns
        -------
        self : XMCPipeline
            The pipeline; ``classes_`` has grown by the new labels.

        Examples
        --------
        A pipeline ending in :class:`~skxmc.DecafClassifier` fitted on
        TF-IDF features (the label features come from the same vectorizer)::

            pipe = make_xmc_pipeline(TfidfVectorizer(), DecafClassifier())
            pipe.fit(docs, Y, decafclassifier__label_info=LabelInfo(features=F))
            pipe.add_labels(["python3-numpy: fast arrays"], labels=["numpy"])
            pipe.predict_topk(["array computing in python"], k=5)
        """
        Zt = label_text
        for _, _, transformer in self._iter(with_final=False):
            Zt = transformer.transform(Zt)
        self.steps[-1][1].add_labels(Zt, labels=labels)
        return self


def make_xmc_pipeline(*steps, memory=None, transform_input=None, verbose=False):
    """Build an :class:`XMCPipeline` from estimators, naming the steps.

    Parameters
    ----------
    *steps : list of estimators
        As for :func:`sklearn.pipeline.make_pipeline`.
    memory : str or object with the joblib.Memory interface, default=None
        See :func:`sklearn.pipeline.make_pipeline`.
    transform_input : list of str, default=None
        See :func:`sklearn.pipeline.make_pipeline`.
    verbose : bool, default=False
        See :func:`sklearn.pipeline.make_pipeline`.

    Returns
    -------
    pipeline : XMCPipeline
        The pipeline.

    Examples
    --------
    >>> from sklearn.feature_extraction.text import TfidfVectorizer
    >>> from skxmc import make_xmc_pipeline
    >>> from skxmc.utils._testing import CentroidRanker
    >>> make_xmc_pipeline(TfidfVectorizer(), CentroidRanker()).steps[1][0]
    'centroidranker'
    """
    pipeline = make_pipeline(
        *steps, memory=memory, transform_input=transform_input, verbose=verbose
    )
    return XMCPipeline(
        pipeline.steps, memory=memory, transform_input=transform_input, verbose=verbose
    )
