"""Linkage layer: answers and network members matched to SIRENE establishments, and the review
queue staff settle."""

from observatoire.linkage.link import (
    DEFAULT_REVIEW_THRESHOLD,
    DEFAULT_THRESHOLD,
    METHODS,
    MOTIF_LOW,
    MOTIF_SEVERAL_ACTIVE,
    REVIEW_COLUMNS,
    STATUSES,
    VIEWS,
    DecisionFileError,
    LinkResult,
    create_source_view,
    create_tables,
    evaluate,
    export_review_queue,
    fingerprint,
    import_decisions,
    link_month,
    normalise_name,
)

__all__ = [
    "DEFAULT_REVIEW_THRESHOLD",
    "DEFAULT_THRESHOLD",
    "DecisionFileError",
    "LinkResult",
    "METHODS",
    "MOTIF_LOW",
    "MOTIF_SEVERAL_ACTIVE",
    "REVIEW_COLUMNS",
    "STATUSES",
    "VIEWS",
    "create_source_view",
    "create_tables",
    "evaluate",
    "export_review_queue",
    "fingerprint",
    "import_decisions",
    "link_month",
    "normalise_name",
]
