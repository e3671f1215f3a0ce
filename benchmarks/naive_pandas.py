"""The naive way: what an analyst would write with pandas, as the speed baseline.

Reads both SIRENE stock CSVs whole with pandas (every column as text), keeps one
département, joins, applies the same ESS perimeter rules as the observatory, and computes the
headline tables (active ESS establishments, employer establishments and the jobs interval by
commune x family x NAF section x band). It is not meant to be good: it is the baseline the
benchmark compares the observatory's path with, on the same files.

Usage: python benchmarks/naive_pandas.py ETAB.csv UL.csv DEPARTEMENT REFERENCE_DIR OUT.csv
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd


def main(etab: str, ul: str, departement: str, reference_dir: str, out: str) -> None:
    ref = Path(reference_dir)
    et = pd.read_csv(etab, dtype=str)
    un = pd.read_csv(ul, dtype=str)
    et = et[et["codeCommuneEtablissement"].str.startswith(departement, na=False)]
    et = et[et["etatAdministratifEtablissement"] == "A"]
    df = et.merge(un, on="siren", how="left", suffixes=("", "_ul"))
    cj = pd.read_csv(ref / "ess_categories_juridiques.csv", dtype=str)
    excl = pd.read_csv(ref / "ess_naf_exclusions.csv", dtype=str)
    excl = set(excl.loc[excl["statut"] == "cité", "code_naf"])
    naf = pd.read_csv(ref / "naf_rev2_sous_classes.csv", dtype=str)
    bands = pd.read_csv(ref / "tranches_effectifs.csv", dtype={"code": str})
    df = df.merge(
        cj[["code_cj", "famille_ess"]],
        left_on="categorieJuridiqueUniteLegale",
        right_on="code_cj",
        how="left",
    )
    flagged = df["economieSocialeSolidaireUniteLegale"] == "O"
    natural = df["categorieJuridiqueUniteLegale"] == "1000"
    excluded = df["activitePrincipaleEtablissement"].isin(excl)
    by_cj = df["famille_ess"].notna()
    df["ess"] = (by_cj | flagged) & ~natural & ~excluded
    df["famille"] = (
        df["famille_ess"].where(by_cj, "societe_commerciale_ess").where(df["ess"], "hors_ess")
    )
    df = df.merge(
        naf[["code_sous_classe", "code_section"]],
        left_on="activitePrincipaleEtablissement",
        right_on="code_sous_classe",
        how="left",
    )
    df = df.merge(
        bands[["code", "effectif_min", "effectif_max"]],
        left_on="trancheEffectifsEtablissement",
        right_on="code",
        how="left",
    )
    df["employeur"] = (df["caractereEmployeurEtablissement"] == "O") | (
        df["trancheEffectifsEtablissement"].notna() & (df["trancheEffectifsEtablissement"] != "NN")
    )
    df["effectif_max"] = df["effectif_max"].fillna(df["effectif_min"])
    df["central"] = (df["effectif_min"] + df["effectif_max"]) / 2
    keys = ["codeCommuneEtablissement", "famille", "code_section", "trancheEffectifsEtablissement"]
    counts = df.groupby(keys, dropna=False).size().rename("nb_etablissements")
    emp = df[df["employeur"]]
    jobs = emp.groupby(keys, dropna=False).agg(
        nb_employeurs=("siret", "size"),
        emplois_bas=("effectif_min", "sum"),
        emplois_central=("central", "sum"),
        emplois_haut=("effectif_max", "sum"),
    )
    result = pd.concat([counts, jobs], axis=1).reset_index()
    result.to_csv(out, index=False)
    print(f"{len(df)} établissements actifs du département, {len(result)} lignes")


if __name__ == "__main__":
    main(*sys.argv[1:6])
