"""SIRENE stock file layouts and their recognition.

INSEE changed the stock layouts twice since 2019 (v3.9 -> v3.11 in March 2024, NAF 2025 column
appended in 2025). Archived months must still be readable, and a file in an unknown layout must be
refused with a message naming what was found, so layouts are data here, compared header to header.
"""

from __future__ import annotations

from dataclasses import dataclass

ETABLISSEMENT_V3_11_NAF25: tuple[str, ...] = (
    "siren",
    "nic",
    "siret",
    "statutDiffusionEtablissement",
    "dateCreationEtablissement",
    "trancheEffectifsEtablissement",
    "anneeEffectifsEtablissement",
    "activitePrincipaleRegistreMetiersEtablissement",
    "dateDernierTraitementEtablissement",
    "etablissementSiege",
    "nombrePeriodesEtablissement",
    "complementAdresseEtablissement",
    "numeroVoieEtablissement",
    "indiceRepetitionEtablissement",
    "dernierNumeroVoieEtablissement",
    "indiceRepetitionDernierNumeroVoieEtablissement",
    "typeVoieEtablissement",
    "libelleVoieEtablissement",
    "codePostalEtablissement",
    "libelleCommuneEtablissement",
    "libelleCommuneEtrangerEtablissement",
    "distributionSpecialeEtablissement",
    "codeCommuneEtablissement",
    "codeCedexEtablissement",
    "libelleCedexEtablissement",
    "codePaysEtrangerEtablissement",
    "libellePaysEtrangerEtablissement",
    "identifiantAdresseEtablissement",
    "coordonneeLambertAbscisseEtablissement",
    "coordonneeLambertOrdonneeEtablissement",
    "complementAdresse2Etablissement",
    "numeroVoie2Etablissement",
    "indiceRepetition2Etablissement",
    "typeVoie2Etablissement",
    "libelleVoie2Etablissement",
    "codePostal2Etablissement",
    "libelleCommune2Etablissement",
    "libelleCommuneEtranger2Etablissement",
    "distributionSpeciale2Etablissement",
    "codeCommune2Etablissement",
    "codeCedex2Etablissement",
    "libelleCedex2Etablissement",
    "codePaysEtranger2Etablissement",
    "libellePaysEtranger2Etablissement",
    "dateDebut",
    "etatAdministratifEtablissement",
    "enseigne1Etablissement",
    "enseigne2Etablissement",
    "enseigne3Etablissement",
    "denominationUsuelleEtablissement",
    "activitePrincipaleEtablissement",
    "nomenclatureActivitePrincipaleEtablissement",
    "caractereEmployeurEtablissement",
    "activitePrincipaleNAF25Etablissement",
)

ETABLISSEMENT_V3_9: tuple[str, ...] = (
    "siren",
    "nic",
    "siret",
    "statutDiffusionEtablissement",
    "dateCreationEtablissement",
    "trancheEffectifsEtablissement",
    "anneeEffectifsEtablissement",
    "activitePrincipaleRegistreMetiersEtablissement",
    "dateDernierTraitementEtablissement",
    "etablissementSiege",
    "nombrePeriodesEtablissement",
    "complementAdresseEtablissement",
    "numeroVoieEtablissement",
    "indiceRepetitionEtablissement",
    "typeVoieEtablissement",
    "libelleVoieEtablissement",
    "codePostalEtablissement",
    "libelleCommuneEtablissement",
    "libelleCommuneEtrangerEtablissement",
    "distributionSpecialeEtablissement",
    "codeCommuneEtablissement",
    "codeCedexEtablissement",
    "libelleCedexEtablissement",
    "codePaysEtrangerEtablissement",
    "libellePaysEtrangerEtablissement",
    "complementAdresse2Etablissement",
    "numeroVoie2Etablissement",
    "indiceRepetition2Etablissement",
    "typeVoie2Etablissement",
    "libelleVoie2Etablissement",
    "codePostal2Etablissement",
    "libelleCommune2Etablissement",
    "libelleCommuneEtranger2Etablissement",
    "distributionSpeciale2Etablissement",
    "codeCommune2Etablissement",
    "codeCedex2Etablissement",
    "libelleCedex2Etablissement",
    "codePaysEtranger2Etablissement",
    "libellePaysEtranger2Etablissement",
    "dateDebut",
    "etatAdministratifEtablissement",
    "enseigne1Etablissement",
    "enseigne2Etablissement",
    "enseigne3Etablissement",
    "denominationUsuelleEtablissement",
    "activitePrincipaleEtablissement",
    "nomenclatureActivitePrincipaleEtablissement",
    "caractereEmployeurEtablissement",
)

UNITE_LEGALE_V3_11_NAF25: tuple[str, ...] = (
    "siren",
    "statutDiffusionUniteLegale",
    "unitePurgeeUniteLegale",
    "dateCreationUniteLegale",
    "sigleUniteLegale",
    "sexeUniteLegale",
    "prenom1UniteLegale",
    "prenom2UniteLegale",
    "prenom3UniteLegale",
    "prenom4UniteLegale",
    "prenomUsuelUniteLegale",
    "pseudonymeUniteLegale",
    "identifiantAssociationUniteLegale",
    "trancheEffectifsUniteLegale",
    "anneeEffectifsUniteLegale",
    "dateDernierTraitementUniteLegale",
    "nombrePeriodesUniteLegale",
    "categorieEntreprise",
    "anneeCategorieEntreprise",
    "dateDebut",
    "etatAdministratifUniteLegale",
    "nomUniteLegale",
    "nomUsageUniteLegale",
    "denominationUniteLegale",
    "denominationUsuelle1UniteLegale",
    "denominationUsuelle2UniteLegale",
    "denominationUsuelle3UniteLegale",
    "categorieJuridiqueUniteLegale",
    "activitePrincipaleUniteLegale",
    "nomenclatureActivitePrincipaleUniteLegale",
    "nicSiegeUniteLegale",
    "economieSocialeSolidaireUniteLegale",
    "societeMissionUniteLegale",
    "caractereEmployeurUniteLegale",
    "activitePrincipaleNAF25UniteLegale",
)

UNITE_LEGALE_V3_9: tuple[str, ...] = (
    "siren",
    "statutDiffusionUniteLegale",
    "unitePurgeeUniteLegale",
    "dateCreationUniteLegale",
    "sigleUniteLegale",
    "sexeUniteLegale",
    "prenom1UniteLegale",
    "prenom2UniteLegale",
    "prenom3UniteLegale",
    "prenom4UniteLegale",
    "prenomUsuelUniteLegale",
    "pseudonymeUniteLegale",
    "identifiantAssociationUniteLegale",
    "trancheEffectifsUniteLegale",
    "anneeEffectifsUniteLegale",
    "dateDernierTraitementUniteLegale",
    "nombrePeriodesUniteLegale",
    "categorieEntreprise",
    "anneeCategorieEntreprise",
    "dateDebut",
    "etatAdministratifUniteLegale",
    "nomUniteLegale",
    "nomUsageUniteLegale",
    "denominationUniteLegale",
    "denominationUsuelle1UniteLegale",
    "denominationUsuelle2UniteLegale",
    "denominationUsuelle3UniteLegale",
    "categorieJuridiqueUniteLegale",
    "activitePrincipaleUniteLegale",
    "nomenclatureActivitePrincipaleUniteLegale",
    "nicSiegeUniteLegale",
    "economieSocialeSolidaireUniteLegale",
    "caractereEmployeurUniteLegale",
)


@dataclass(frozen=True)
class Layout:
    """A known header of one SIRENE stock file."""

    kind: str  # "etablissements" or "unites_legales"
    name: str
    columns: tuple[str, ...]
    current: bool


LAYOUTS: tuple[Layout, ...] = (
    Layout(
        "etablissements",
        "v3.11 + NAF 2025 (54 colonnes, depuis 2025)",
        ETABLISSEMENT_V3_11_NAF25,
        True,
    ),
    Layout("etablissements", "v3.9 (48 colonnes, 2019 à mars 2024)", ETABLISSEMENT_V3_9, False),
    Layout(
        "unites_legales",
        "v3.11 + NAF 2025 (35 colonnes, depuis 2025)",
        UNITE_LEGALE_V3_11_NAF25,
        True,
    ),
    Layout("unites_legales", "v3.9 (33 colonnes, 2019 à 2022)", UNITE_LEGALE_V3_9, False),
)

CURRENT = {layout.kind: layout for layout in LAYOUTS if layout.current}


class LayoutError(ValueError):
    """The header of a SIRENE file matches no accepted layout."""


def detect_layout(kind: str, header: list[str] | tuple[str, ...], source: str) -> Layout:
    """Return the layout whose header equals `header`, or raise with a diagnosis.

    The diagnosis names the closest known layout and the missing, extra or reordered columns, so
    that the data team can tell a new INSEE layout from a wrong or damaged file.
    """
    cols = tuple(c.strip().lstrip("\ufeff") for c in header)
    candidates = [layout for layout in LAYOUTS if layout.kind == kind]
    for layout in candidates:
        if cols == layout.columns:
            return layout
    other = [layout for layout in LAYOUTS if layout.kind != kind and cols == layout.columns]
    if other:
        raise LayoutError(
            f"{source}: en-tête du fichier SIRENE {other[0].kind} ({other[0].name}) "
            f"là où un fichier {kind} était attendu"
        )
    duplicated = sorted({c for c in cols if cols.count(c) > 1})
    if duplicated:
        raise LayoutError(f"{source}: colonnes en double dans l'en-tête : {', '.join(duplicated)}")
    best = min(candidates, key=lambda layout: len(set(layout.columns) ^ set(cols)))
    missing = [c for c in best.columns if c not in cols]
    extra = [c for c in cols if c not in best.columns]
    if not missing and not extra:
        first = next(i for i, (a, b) in enumerate(zip(cols, best.columns, strict=True)) if a != b)
        detail = (
            f"colonnes dans un ordre différent (colonne {first + 1} : « {cols[first]} », "
            f"attendu « {best.columns[first]} »)"
        )
    else:
        parts = []
        if missing:
            parts.append(
                "manquantes : " + ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
            )
        if extra:
            parts.append("en trop : " + ", ".join(extra[:10]) + (" …" if len(extra) > 10 else ""))
        detail = "; ".join(parts)
    raise LayoutError(
        f"{source}: en-tête de {len(cols)} colonnes non reconnu pour un fichier SIRENE {kind}; "
        f"le plus proche est la disposition {best.name} — {detail}"
    )
