"""Calibration of retrieved scores: score -> probability that the label is right."""

from __future__ import annotations

import numpy as np

__all__ = ["CALIBRATION_METHODS", "ScoreCalibrator"]

#: Methods of :class:`ScoreCalibrator`.
CALIBRATION_METHODS = ("isotonic", "sigmoid")


class ScoreCalibrator:
    """Map the score of a retrieved label to the probability that it is true.

    Fitted on held-out rows: every (row, label) pair of the rows' top ``k``
    is a sample, its score the input and whether the label is one of the
    row's labels the target. The map is monotone non-decreasing, so it keeps
    each row's ranking (ties may appear with ``"isotonic"``, which is
    piecewise constant) and a threshold on calibrated scores is a threshold
    on raw ones.

    Parameters
    ----------
    method : {"isotonic", "sigmoid"}, default="isotonic"
        ``"isotonic"``: :class:`~sklearn.isotonic.IsotonicRegression`
        (non-parametric; needs a few hundred held-out pairs to be smooth),
        clipped to the fitted range. ``"sigmoid"``: Platt scaling,
        ``1 / (1 + exp(-(a s + b)))`` fitted by an almost unregularised
        :class:`~sklearn.linear_model.LogisticRegression` (two parameters;
        better with few pairs).

    Attributes
    ----------
    model_ : IsotonicRegression or LogisticRegression
        The fitted map.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.models import ScoreCalibrator
    >>> scores = np.array([0.1, 0.2, 0.3, 0.4, 0.8, 0.9])
    >>> hits = np.array([0, 0, 1, 0, 1, 1])
    >>> cal = ScoreCalibrator("isotonic").fit(scores, hits)
    >>> cal.transform(np.array([[0.95, 0.35, -np.inf]])).round(2).tolist()
    [[1.0, 0.5, -inf]]
    """

    def __init__(self, method: str = "isotonic"):
        if method not in CALIBRATION_METHODS:
            raise ValueError(
                f"method must be one of {CALIBRATION_METHODS}, got {method!r}."
            )
        self.method = method

    def fit(self, scores, hits) -> ScoreCalibrator:
        """Fit the map on held-out pairs.

        Parameters
        ----------
        scores : array-like of shape (n_pairs,)
            Finite scores of retrieved (row, label) pairs.
        hits : array-like of shape (n_pairs,)
            1 where the label is true for the row.

        Returns
        -------
        self : ScoreCalibrator
            Fitted.
        """
        scores = np.asarray(scores, dtype=np.float64).ravel()
        hits = np.asarray(hits, dtype=np.float64).ravel()
        if scores.size == 0 or not np.isfinite(scores).all():
            raise ValueError("Calibration needs at least one finite score.")
        if self.method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            self.model_ = IsotonicRegression(
                y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip"
            ).fit(scores, hits)
        else:
            from sklearn.linear_model import LogisticRegression

            if np.unique(hits).size < 2:
                raise ValueError(
                    "Sigmoid calibration needs held-out pairs of both kinds "
                    "(right and wrong labels)."
                )
            self.model_ = LogisticRegression(C=1e6).fit(scores[:, None], hits)
        return self

    def transform(self, scores) -> np.ndarray:
        """Probabilities of scores of any shape; ``-inf`` padding stays ``-inf``.

        Parameters
        ----------
        scores : ndarray
            Raw scores.

        Returns
        -------
        probabilities : ndarray of float32, the shape of ``scores``
            In [0, 1] where ``scores`` is finite.
        """
        scores = np.asarray(scores, dtype=np.float64)
        out = np.full(scores.shape, -np.inf, dtype=np.float32)
        finite = np.isfinite(scores)
        if finite.any():
            values = scores[finite]
            if self.method == "isotonic":
                out[finite] = self.model_.predict(values)
            else:
                out[finite] = self.model_.predict_proba(values[:, None])[:, 1]
        return out
