"""Quality layer: the Great Expectations suites that gate each layer of a month."""

from observatoire.quality.gx import (
    CLEAN_TYPES,
    NO_REFERENCE,
    PERIMETER_RULES,
    SAMPLE_KEYS,
    SIRENE_SUITES,
    SOURCE_SUITES,
    STOCK_DATE_MIN_ROWS,
    SUITES,
    Outcome,
    SuiteResult,
    build_docs,
    month_problems,
    validate,
    validate_all,
)

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
