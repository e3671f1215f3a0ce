"""Link questionnaire answers and network members to the month's SIRENE establishments.

SIRENE is monthly, so links are too: an establishment closes, a SIRET appears, and a record
linked last month may need a new look. Each record goes through the methods in order of
trust, and the first that concludes wins:

1. `decision`: a reviewer already decided for this exact content (its `empreinte`); a human
   beats every rule, and a rejected candidate must not come back while the record is unchanged;
2. `siret`: a declared SIRET with a valid key that exists in the month;
3. `siren_commune`: a valid SIREN (declared, or taken from a SIRET whose key is wrong or that
   is absent from the month) with an establishment in the record's commune;
4. `nom_commune`: probabilistic linkage with splink on name, address and commune;
   then a link to a closed establishment follows the structure's move within the commune
   (`transfert`, see _follow_moves);
5. `aucune`: nothing; the record stays, as `non_lie`, and goes to the review queue.

Unlinked records are never dropped: every record of `clean.a_rapprocher` has one row in
`clean.rapprochements` per month, and every record that is not linked has one row in
`clean.rapprochements_a_revoir`.

This module runs the methods and writes both tables. The probabilistic step's fixed splink
model is in `scoring`, the name and address rules and the fingerprint in `normalisation`, the
tables and their vocabulary in `tables`, and what reviewers do with the queue in `review`.

Privacy: names of establishments whose unit or establishment is not diffusible (statut de
diffusion other than `O`) may be compared (the record declared its own name), but never shown:
`nom_candidat` is NULL for them, in the table and in the CSV. Decisions store no name at all.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from observatoire.core import warehouse
from observatoire.core.identifiers import normalise, siren_valid, siret_valid
from observatoire.linkage.normalisation import fingerprint, install_macros
from observatoire.linkage.scoring import build_candidates, score_with_splink
from observatoire.linkage.tables import (
    DDL_A_REVOIR,
    DDL_RAPPROCHEMENTS,
    METHODS,
    STATUSES,
    check_mois,
)

# A link is accepted without review from this splink match probability. With the fixed
# parameters of `scoring`, an exact (normalised) name in the record's commune scores 0.96, a close
# spelling needs a matching address to pass, and a name that only shares words with the
# candidate needs the exact address. Below 0.9 the cost of a wrong link in published counts
# (an association counted as another) outweighs the reviewer's time.
DEFAULT_THRESHOLD = 0.9
# Candidates between this and DEFAULT_THRESHOLD go to the review queue with the candidate
# shown. 0.2 keeps "same words + same commune" (0.26) and "close spelling, no address" (0.48)
# in front of a reviewer, and drops "same address, unrelated name" (0.02): a business centre
# hosts dozens of structures.
DEFAULT_REVIEW_THRESHOLD = 0.2

# Two candidates whose match weights (log2 of the odds) are closer than this are too close to
# choose between without a human: the same name for two active establishments of one structure
# in a commune is the usual case.
RIVAL_WEIGHT_GAP = 2.0

MOTIF_NONE = "aucun candidat"
MOTIF_LOW = "score sous le seuil de liaison"
MOTIF_RIVALS = "plusieurs candidats proches"
MOTIF_SEVERAL_ACTIVE = "plusieurs établissements actifs de ce SIREN dans la commune"

# work tables of a run, this module's and `scoring.build_candidates`'s, dropped at the end
_TEMP_TABLES = (
    "_lk_rec",
    "_lk_rec_siren",
    "_lk_etab",
    "_lk_out",
    "_lk_left",
    "_lk_noms",
    "_lk_cand_tous",
    "_lk_cand",
    "_lk_pred",
    "_lk_moves",
)


@dataclass
class LinkResult:
    """Counts of one month's linkage, for the asset's metadata and the CLI."""

    mois: str
    records: int
    by_status: dict[str, int] = field(default_factory=dict)
    by_method: dict[str, int] = field(default_factory=dict)
    closed: int = 0
    review_queue: int = 0

    @property
    def linked(self) -> int:
        return self.by_status.get("lie", 0)

    @property
    def to_review(self) -> int:
        return self.by_status.get("a_revoir", 0)

    @property
    def unlinked(self) -> int:
        return self.by_status.get("non_lie", 0)


def _drop_temp(con: duckdb.DuckDBPyConnection) -> None:
    for name in _TEMP_TABLES:
        with contextlib.suppress(duckdb.Error):
            con.execute(f"drop table if exists temp.{name}")


def _load_records(con: duckdb.DuckDBPyConnection) -> int:
    """Records with identifiers checked by the project's single identifier module.

    Done in Python: a few thousand rows at most, and the SIREN/SIRET rules must be the ones
    of observatoire.core.identifiers, not a second SQL copy.
    """
    rows = con.execute(
        "select source, cle_source, enregistrement_id, siret_declare, siren_declare, nom, "
        "adresse, code_postal, code_commune, horodatage from clean.a_rapprocher"
    ).fetchall()
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "rid",
            "source",
            "cle_source",
            "enregistrement_id",
            "horodatage",
            "nom_brut",
            "adresse",
            "code_postal",
            "code_commune",
            "siret_n",
            "siret_ok",
            "empreinte",
        )
    }
    sirens: list[tuple[int, str]] = []
    for rid, row in enumerate(rows):
        source, cle, rec_id, siret_d, siren_d, nom, adresse, cp, commune, horodatage = row
        siret_n = normalise(siret_d, 14)
        siret_ok = siret_valid(siret_n)
        cp = normalise(cp, 5) or ((str(cp).strip() or None) if cp is not None else None)
        commune = (str(commune).strip().upper() or None) if commune is not None else None
        candidates = [normalise(siren_d, 9)]
        if siret_n is not None:
            # used only if the SIRET itself does not conclude (wrong key, absent from the month)
            candidates.append(siret_n[:9])
        for s in dict.fromkeys(candidates):
            if siren_valid(s):
                sirens.append((rid, s))  # type: ignore[arg-type]
        for key, value in (
            ("rid", rid),
            ("source", source),
            ("cle_source", cle),
            ("enregistrement_id", rec_id),
            ("horodatage", horodatage),
            ("nom_brut", nom),
            ("adresse", adresse),
            ("code_postal", cp),
            ("code_commune", commune),
            ("siret_n", siret_n),
            ("siret_ok", siret_ok),
            ("empreinte", fingerprint(source, cle, siret_d, nom, adresse, cp, commune)),
        ):
            cols[key].append(value)
    schema = pa.schema(
        [
            ("rid", pa.int64()),
            ("source", pa.string()),
            ("cle_source", pa.string()),
            ("enregistrement_id", pa.string()),
            ("horodatage", pa.timestamp("us")),
            ("nom_brut", pa.string()),
            ("adresse", pa.string()),
            ("code_postal", pa.string()),
            ("code_commune", pa.string()),
            ("siret_n", pa.string()),
            ("siret_ok", pa.bool_()),
            ("empreinte", pa.string()),
        ]
    )
    records = pa.Table.from_pydict(cols, schema=schema)
    siren_table = pa.Table.from_pydict(
        {"rid": [r for r, _ in sirens], "siren": [s for _, s in sirens]},
        schema=pa.schema([("rid", pa.int64()), ("siren", pa.string())]),
    )
    con.register("_lk_rec_py", records)
    con.register("_lk_rec_siren_py", siren_table)
    try:
        con.execute(
            """
            create or replace temp table _lk_rec as
            select *,
                lk_nom(nom_brut) as nom_norm,
                lk_numero(lk_adresse_sans_cp(adresse)) as numero,
                lk_adresse_voie(adresse) as voie
            from _lk_rec_py
            """
        )
        con.execute("create or replace temp table _lk_rec_siren as select * from _lk_rec_siren_py")
    finally:
        con.unregister("_lk_rec_py")
        con.unregister("_lk_rec_siren_py")
    return len(rows)


def _load_establishments(con: duckdb.DuckDBPyConnection, mois: str) -> int:
    """The month's establishments with what every method needs, read once."""
    con.execute(
        """
        create or replace temp table _lk_etab as
        select
            e.siret,
            e.siren,
            e.code_commune,
            e.code_postal,
            e.etat_administratif = 'A' as actif,
            coalesce(e.etablissement_siege, false) as siege,
            e.etat_administratif = 'F' as ferme,
            e.date_creation,
            -- for a closed establishment, the start of its closed period: its closing date
            e.date_debut,
            coalesce(e.statut_diffusion = 'O' and u.statut_diffusion = 'O', false) as diffusible,
            -- shown only when both the establishment and its unit are diffusible
            case when e.statut_diffusion = 'O' and u.statut_diffusion = 'O'
                then coalesce(u.denomination, e.denomination_usuelle, e.enseigne, u.sigle)
            end as nom_affiche,
            u.denomination,
            u.sigle,
            e.enseigne,
            e.denomination_usuelle,
            e.numero_voie,
            e.libelle_voie
        from clean.sirene_etablissements as e
        left join clean.sirene_unites_legales as u on u.siren = e.siren and u.mois = $mois
        where e.mois = $mois
        """,
        {"mois": mois},
    )
    return int(con.execute("select count(*) from _lk_etab").fetchone()[0])  # type: ignore[index]


def _link_decisions(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "create or replace temp table _lk_out (rid bigint, siret varchar, methode varchar, "
        "score double, statut varchar, candidat varchar, motif varchar)"
    )
    if not warehouse.table_exists(con, "ref", "decisions_rapprochement"):
        return
    con.execute(
        """
        insert into _lk_out
        select r.rid,
            case when d.decision = 'accepte' then d.siret end,
            'decision', 1.0,
            case when d.decision = 'accepte' then 'lie' else 'non_lie' end,
            null, null
        from _lk_rec as r
        join ref.decisions_rapprochement as d on d.empreinte = r.empreinte
        where d.decision in ('accepte', 'rejete')
        """
    )


def _link_siret(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        insert into _lk_out
        select r.rid, e.siret, 'siret', 1.0, 'lie', null, null
        from _lk_rec as r
        join _lk_etab as e on e.siret = r.siret_n
        where r.siret_ok and r.rid not in (select rid from _lk_out)
        """
    )


def _link_siren_commune(con: duckdb.DuckDBPyConnection) -> None:
    """A SIREN names a structure; the commune picks its establishment.

    An active establishment is preferred to a closed one, and the head office to another; but
    two active establishments of the structure in the commune are a question for a reviewer.
    """
    con.execute(
        """
        insert into _lk_out
        with c as (
            select s.rid, e.siret,
                count(*) filter (where e.actif) over (partition by s.rid) as n_actifs,
                row_number() over (
                    partition by s.rid order by e.actif desc, e.siege desc, e.siret
                ) as rang
            from _lk_rec_siren as s
            join _lk_rec as r on r.rid = s.rid
            join _lk_etab as e on e.siren = s.siren and e.code_commune = r.code_commune
            where s.rid not in (select rid from _lk_out)
        )
        select rid,
            case when n_actifs <= 1 then siret end,
            'siren_commune',
            case when n_actifs <= 1 then 1.0 else 1.0 / n_actifs end,
            case when n_actifs <= 1 then 'lie' else 'a_revoir' end,
            case when n_actifs > 1 then siret end,
            case when n_actifs > 1 then $motif || ' (' || n_actifs || ')' end
        from c
        where rang = 1
        """,
        {"motif": MOTIF_SEVERAL_ACTIVE},
    )


def _link_names(con: duckdb.DuckDBPyConnection, seuil: float, seuil_revue: float) -> None:
    left, right = build_candidates(con)
    scored = score_with_splink(left, right)
    con.register("_lk_pred_py", scored)
    try:
        con.execute("create or replace temp table _lk_pred as select * from _lk_pred_py")
    finally:
        con.unregister("_lk_pred_py")
    con.execute(
        """
        insert into _lk_out
        with p as (
            select rid, siret, max(score) as score, max(poids) as poids
            from _lk_pred group by rid, siret
        ),
        ranked as (
            select p.*, e.actif,
                row_number() over (
                    partition by p.rid order by p.poids desc, e.actif desc, e.siege desc, p.siret
                ) as rang
            from p join _lk_etab as e using (siret)
        ),
        top as (select * from ranked where rang = 1),
        rivals as (
            -- as close as the best, and not merely a closed twin of an active best
            select t.rid, count(*) as n
            from top as t join ranked as x on x.rid = t.rid and x.rang > 1
            where x.poids >= t.poids - $ecart and (x.actif or not t.actif)
            group by t.rid
        ),
        decided as (
            select t.rid, t.siret, t.score, coalesce(v.n, 0) as rivaux
            from top as t left join rivals as v using (rid)
            where t.score >= $seuil_revue
        )
        select rid,
            case when score >= $seuil and rivaux = 0 then siret end,
            'nom_commune',
            score,
            case when score >= $seuil and rivaux = 0 then 'lie' else 'a_revoir' end,
            case when not (score >= $seuil and rivaux = 0) then siret end,
            case
                when score >= $seuil and rivaux = 0 then null
                when rivaux > 0 then $rivals || ' (' || (rivaux + 1) || ')'
                else $low
            end
        from decided
        """,
        {
            "ecart": RIVAL_WEIGHT_GAP,
            "seuil": seuil,
            "seuil_revue": seuil_revue,
            "rivals": MOTIF_RIVALS,
            "low": MOTIF_LOW,
        },
    )


def _follow_moves(con: duckdb.DuckDBPyConnection) -> None:
    """A closed establishment whose structure opened one establishment in the commune meanwhile.

    Lists and answers keep a SIRET for years; when a structure moves within its commune, SIRENE
    closes the old SIRET and opens a new one under the same SIREN around the same date (the
    stock carries no successor link). An active establishment created long before the closure
    is another site, not the move's destination. Counting the member as closed would be wrong,
    and a reviewer would only confirm the obvious, so the link follows the move (`transfert`).
    With no such establishment (the structure ceased) or several (which one?), the closed link
    stays and is flagged. A reviewer's decision is never moved.
    """
    con.execute(
        """
        create or replace temp table _lk_moves as
        with closed as (
            select o.rid, e.siren, e.code_commune, e.date_debut as ferme_le
            from _lk_out as o
            join _lk_etab as e on e.siret = o.siret
            where o.statut = 'lie' and o.methode <> 'decision' and e.ferme
        ),
        successors as (
            -- opened around the closure (up to a quarter before it): a move; an establishment
            -- that was already there is another site of the structure, not where it went
            select c.rid, a.siret, count(*) over (partition by c.rid) as n
            from closed as c
            join _lk_etab as a
                on a.siren = c.siren and a.code_commune = c.code_commune and a.actif
            where c.ferme_le is not null and a.date_creation is not null
                and a.date_creation >= c.ferme_le - interval 92 day
        )
        select rid, siret from successors where n = 1
        """
    )
    con.execute(
        "update _lk_out set siret = m.siret, methode = 'transfert' "
        "from _lk_moves as m where _lk_out.rid = m.rid"
    )


def _link_rest(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        insert into _lk_out
        select rid, null, 'aucune', null, 'non_lie', null, $motif
        from _lk_rec where rid not in (select rid from _lk_out)
        """,
        {"motif": MOTIF_NONE},
    )


def _write(con: duckdb.DuckDBPyConnection, mois: str) -> None:
    """Replace the month in both tables at once: readers see the old month or the new one."""
    with warehouse.transaction(con):
        con.execute(DDL_RAPPROCHEMENTS)
        con.execute(DDL_A_REVOIR)
        con.execute("delete from clean.rapprochements where mois = $mois", {"mois": mois})
        con.execute("delete from clean.rapprochements_a_revoir where mois = $mois", {"mois": mois})
        con.execute(
            """
            insert into clean.rapprochements by name
            with j as (
                select r.*, o.siret, o.methode, o.score, o.statut, e.ferme
                from _lk_out as o
                join _lk_rec as r using (rid)
                left join _lk_etab as e on e.siret = o.siret
            ),
            ranked as (
                select *,
                    row_number() over (
                        partition by source, cle_source, siret, statut
                        order by horodatage desc nulls last,
                            try_cast(regexp_extract(enregistrement_id, '(\\d+)$', 1) as bigint)
                                desc nulls last,
                            enregistrement_id desc
                    ) as ordre
                from j
            )
            select $mois as mois, source, cle_source, enregistrement_id, empreinte,
                siret, left(siret, 9) as siren, methode, score, statut,
                case when statut = 'lie' then coalesce(ferme, false) end as ferme,
                case when source = 'questionnaire' and statut = 'lie' then ordre = 1
                    else true end as retenu
            from ranked
            """,
            {"mois": mois},
        )
        con.execute(
            """
            insert into clean.rapprochements_a_revoir by name
            select $mois as mois, r.source, r.cle_source, r.enregistrement_id, r.empreinte,
                -- next to a candidate that is not diffusible, the record's own name would
                -- name that unit: the reviewer decides on the SIRET alone
                case when e.siret is not null and not e.diffusible then null
                    else r.nom_brut end as nom,
                r.code_commune, o.candidat as siret_candidat,
                e.nom_affiche as nom_candidat, o.score, o.motif
            from _lk_out as o
            join _lk_rec as r using (rid)
            left join _lk_etab as e on e.siret = o.candidat
            where o.statut in ('a_revoir', 'non_lie') and o.methode <> 'decision'
            """,
            {"mois": mois},
        )


def link_month(
    con: duckdb.DuckDBPyConnection,
    mois: str,
    *,
    seuil: float = DEFAULT_THRESHOLD,
    seuil_revue: float = DEFAULT_REVIEW_THRESHOLD,
) -> LinkResult:
    """Link every record of `clean.a_rapprocher` to the month's establishments.

    Re-running a month gives the same rows (fixed model, stable ordering), so the review queue
    does not reshuffle between two refreshes.
    """
    check_mois(mois)
    if not 0 < seuil_revue <= seuil <= 1:
        raise ValueError(
            f"seuils incohérents : 0 < seuil_revue ({seuil_revue}) <= seuil ({seuil}) <= 1 attendu"
        )
    for schema, name in (
        ("clean", "a_rapprocher"),
        ("clean", "sirene_etablissements"),
        ("clean", "sirene_unites_legales"),
    ):
        if not warehouse.table_exists(con, schema, name):
            raise ValueError(f"table {schema}.{name} absente : rapprochement impossible")
    install_macros(con)
    try:
        n_records = _load_records(con)
        if _load_establishments(con, mois) == 0:
            raise ValueError(f"aucun établissement SIRENE pour le mois {mois}")
        _link_decisions(con)
        _link_siret(con)
        _link_siren_commune(con)
        _link_names(con, seuil, seuil_revue)
        _follow_moves(con)
        _link_rest(con)
        _write(con, mois)
    finally:
        _drop_temp(con)
    by_status = dict(
        con.execute(
            "select statut, count(*) from clean.rapprochements where mois = ? group by statut",
            [mois],
        ).fetchall()
    )
    by_method = dict(
        con.execute(
            "select methode, count(*) from clean.rapprochements where mois = ? group by methode",
            [mois],
        ).fetchall()
    )
    closed, queue = con.execute(
        "select (select count(*) from clean.rapprochements where mois = $mois and ferme), "
        "(select count(*) from clean.rapprochements_a_revoir where mois = $mois)",
        {"mois": mois},
    ).fetchone()  # type: ignore[misc]
    return LinkResult(
        mois=mois,
        records=n_records,
        by_status={s: int(by_status.get(s, 0)) for s in STATUSES},
        by_method={m: int(by_method.get(m, 0)) for m in METHODS},
        closed=int(closed),
        review_queue=int(queue),
    )
