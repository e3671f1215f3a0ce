"""Quality layer: the Great Expectations suites that gate each layer of a month."""

from observatoire.quality.builder import NO_REFERENCE
from observatoire.quality.gx import (
    SAMPLE_KEYS,
    SUITES,
    Outcome,
    SuiteResult,
    build_docs,
    month_problems,
    validate,
    validate_all,
)
from observatoire.quality.sirene_suites import (
    CLEAN_TYPES,
    PERIMETER_RULES,
    SIRENE_SUITES,
    STOCK_DATE_MIN_ROWS,
)
from observatoire.quality.source_suites import SOURCE_SUITES

__all__ = [
    "CLEAN_TYPES",
    "NO_REFERENCE",
    "PERIMETER_RULES",
    "SAMPLE_KEYS",
    "SIRENE_SUITES",
    "SOURCE_SUITES",
    "STOCK_DATE_MIN_ROWS",
    "SUITES",
    "Outcome",
    "SuiteResult",
    "build_docs",
    "month_problems",
    "validate",
    "validate_all",
]
