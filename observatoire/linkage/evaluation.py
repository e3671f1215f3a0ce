"""Linkage quality on a labelled set: precision, recall and the review queue's worth.

Used by the benchmark (`benchmarks/rapprochement.py`) and the tests, never by a month's run.
"""

from __future__ import annotations

from typing import Any

import duckdb

from observatoire.linkage.tables import check_mois


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def evaluate(
    con: duckdb.DuckDBPyConnection, mois: str, truth: dict[str, str | None]
) -> dict[str, Any]:
    """Linkage quality on records whose right answer is known (enregistrement_id -> SIRET).

    `None` in `truth` means "not in SIRENE": leaving it unlinked is right. Review-queue
    figures use the candidate shown to the reviewer, so they say how often a reviewer would
    only have to confirm.
    """
    check_mois(mois)
    rows = con.execute(
        """
        select r.enregistrement_id, r.statut, r.siret, q.siret_candidat
        from clean.rapprochements as r
        left join clean.rapprochements_a_revoir as q
            on q.mois = r.mois and q.empreinte = r.empreinte
            and q.enregistrement_id = r.enregistrement_id
        where r.mois = ?
        """,
        [mois],
    ).fetchall()
    seen: dict[str, tuple[str, str | None, str | None]] = {}
    for rec_id, statut, siret, candidate in rows:
        if rec_id in truth:
            seen[rec_id] = (statut, siret, candidate)
    expected_links = sum(1 for v in truth.values() if v is not None)
    linked = [(k, v) for k, v in seen.items() if v[0] == "lie"]
    linked_ok = sum(1 for k, v in linked if v[1] == truth[k])
    review = [(k, v) for k, v in seen.items() if v[0] == "a_revoir"]
    review_ok = sum(1 for k, v in review if truth[k] is not None and v[2] == truth[k])
    unlinked = [(k, v) for k, v in seen.items() if v[0] == "non_lie"]
    unlinked_ok = sum(1 for k, _ in unlinked if truth[k] is None)
    n = len(seen)
    return {
        "mois": mois,
        "labelled": len(truth),
        "found": n,
        "missing": sorted(set(truth) - set(seen)),
        "expected_links": expected_links,
        "lie": len(linked),
        "lie_correct": linked_ok,
        "lie_wrong": len(linked) - linked_ok,
        "a_revoir": len(review),
        "a_revoir_correct": review_ok,
        "non_lie": len(unlinked),
        "non_lie_correct": unlinked_ok,
        "match_rate": _ratio(len(linked), n),
        "precision": _ratio(linked_ok, len(linked)),
        "recall": _ratio(linked_ok, expected_links),
        "review_rate": _ratio(len(review), n),
        "review_precision": _ratio(review_ok, len(review)),
        "recall_with_review": _ratio(linked_ok + review_ok, expected_links),
    }
