"""Indicators layer: the ESS perimeter, then the catalogue's indicators rolled up per territory."""

from observatoire.indicators.compute import (
    PrivacyError,
    check_privacy,
    compute_all,
    compute_indicator,
)
from observatoire.indicators.levels import (
    COVERAGE_MIN,
    Coverage,
    compute_levels,
    coverage,
    ensure_levels,
)
from observatoire.indicators.perimeter import compute_perimeter

__all__ = [
    "COVERAGE_MIN",
    "Coverage",
    "PrivacyError",
    "check_privacy",
    "compute_all",
    "compute_indicator",
    "compute_levels",
    "compute_perimeter",
    "coverage",
    "ensure_levels",
]
