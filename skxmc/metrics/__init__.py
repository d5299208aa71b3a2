"""Ranking metrics and scorers of extreme multi-label classification."""

from skxmc.metrics._coverage import (
    CoverageResult,
    coverage_at_precision,
    opis,
    precision_lower_bound,
    precision_threshold,
)
from skxmc.metrics._plot import (
    LabelFrequencyDisplay,
    PropensityTiltDisplay,
    ThresholdDisplay,
)
from skxmc.metrics._ranking import (
    coverage_at_k,
    inverse_propensity,
    ndcg_at_k,
    precision_at_k,
    psndcg_at_k,
    psp_at_k,
    recall_at_k,
    xmc_report,
)
from skxmc.metrics._scorer import (
    XMC_SCORERS,
    make_coverage_scorer,
    make_opis_scorer,
    make_psp_scorer,
)

__all__ = [
    "precision_at_k",
    "ndcg_at_k",
    "recall_at_k",
    "psp_at_k",
    "psndcg_at_k",
    "inverse_propensity",
    "coverage_at_k",
    "coverage_at_precision",
    "precision_threshold",
    "precision_lower_bound",
    "opis",
    "CoverageResult",
    "xmc_report",
    "XMC_SCORERS",
    "make_psp_scorer",
    "LabelFrequencyDisplay",
    "PropensityTiltDisplay",
    "ThresholdDisplay",
    "make_coverage_scorer",
    "make_opis_scorer",
]
