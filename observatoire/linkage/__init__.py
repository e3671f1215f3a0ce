"""Linkage layer: answers and network members matched to SIRENE establishments, and the review
queue staff settle."""

from observatoire.linkage.evaluation import evaluate
from observatoire.linkage.link import (
    DEFAULT_REVIEW_THRESHOLD,
    DEFAULT_THRESHOLD,
    MOTIF_LOW,
    MOTIF_SEVERAL_ACTIVE,
    LinkResult,
    link_month,
)
from observatoire.linkage.normalisation import fingerprint, normalise_name
from observatoire.linkage.review import (
    REVIEW_COLUMNS,
    DecisionFileError,
    export_review_queue,
    import_decisions,
)
from observatoire.linkage.tables import (
    METHODS,
    STATUSES,
    VIEWS,
    create_source_view,
    create_tables,
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
