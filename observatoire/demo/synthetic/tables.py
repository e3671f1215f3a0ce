"""What the synthetic stock looks like: the weights, codes and rates its draws follow.

Kept apart from the drawing code so that the distributions can be read, and tuned against the
real stock, in one place. Weights are relative. The generator never invents a code:
`context.py` checks every code below against the bundled reference files and compiles these
tables into sampling tables once per stock, and the drawing steps (`units.py`,
`establishments.py`) read the rates. The two NAF 2025 rates that tests turn up live in
`units.py`, the module that reads them, so that patching them reaches the draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from observatoire.core import catalogue

# Employer bands in INSEE order (tranches_effectifs.csv without NN).
_BANDS = ("00", "01", "02", "03", "11", "12", "21", "22", "31", "32", "41", "42", "51", "52", "53")
# Band weights by size class: 0 = small units (most employers), 1 = medium, 2 = large networks.
_BAND_WEIGHTS = (
    (10, 34, 22, 13, 10, 7, 2.3, 1.0, 0.3, 0.25, 0.1, 0.04, 0.02, 0.005, 0.002),
    (6, 20, 18, 14, 14, 13, 6, 4, 1.5, 1.5, 0.8, 0.4, 0.2, 0.05, 0.02),
    (3, 8, 10, 10, 14, 18, 12, 9, 4, 5, 3, 2, 1.3, 0.4, 0.3),
)

_PRENOMS_M = (
    "JEAN", "PIERRE", "MICHEL", "ANDRE", "PHILIPPE", "NICOLAS", "THOMAS", "ALEXANDRE", "JULIEN",
    "KARIM", "MOHAMED", "LUCAS", "HUGO", "DAVID", "ERIC", "LAURENT", "SEBASTIEN", "YANNICK",
    "BAPTISTE", "MAXIME",
)  # fmt: skip
_PRENOMS_F = (
    "MARIE", "NATHALIE", "ISABELLE", "SYLVIE", "CATHERINE", "SOPHIE", "JULIE", "CAMILLE", "LEA",
    "MANON", "FATIMA", "AMINATA", "CHLOE", "EMMA", "SANDRINE", "VALERIE", "CELINE", "AURELIE",
    "INES", "CLAIRE",
)  # fmt: skip
_TYPES_VOIE = (("RUE", 55), ("AV", 18), ("BD", 7), ("PL", 4), ("CHE", 8), ("ALL", 4), ("IMP", 2),
               ("RTE", 2))  # fmt: skip
_LIBELLES_VOIE = (
    "DE LA REPUBLIQUE", "JEAN JAURES", "DU GENERAL DE GAULLE", "VICTOR HUGO", "PASTEUR",
    "DE PARIS", "DE LA GARE", "DES ECOLES", "DU MOULIN", "DE L'EGLISE", "GAMBETTA", "JULES FERRY",
    "DU MARECHAL LECLERC", "DES TILLEULS", "DES LILAS", "DE LA PAIX", "DU 8 MAI 1945",
    "SALVADOR ALLENDE", "PAUL VAILLANT COUTURIER", "MAURICE THOREZ", "DE STALINGRAD",
    "DE LA LIBERATION", "ARISTIDE BRIAND", "CARNOT", "DES ROSIERS", "DU CHATEAU",
    "DE VERDUN", "ANATOLE FRANCE", "GABRIEL PERI", "DES PRES", "DE LA FONTAINE",
    "LOUISE MICHEL", "DU PARC", "DE LA MAIRIE", "HENRI BARBUSSE", "EMILE ZOLA",
)  # fmt: skip
# A few complements need CSV quoting (comma), as some real ones do.
_COMPLEMENTS = ("BATIMENT A", "BAT B, ESCALIER 2", "ZI FICTIVE DU PARC", "RESIDENCE FICTIVE",
                "CENTRE COMMERCIAL FICTIF", "LOT 4")  # fmt: skip
_RM_SUFFIXES = ("AA", "AB", "ZB", "ZZ")


@dataclass(frozen=True)
class _Profile:
    """How one group of legal categories behaves: activities, employment, establishments.

    `naf` rows are (code, weight) or (code, weight, employer rate among active units), the latter
    overriding `employer_rate` (associations employ far more often in social work than in leisure).
    """

    naf: tuple[tuple[Any, ...], ...]
    employer_rate: float
    size: int  # index into _BAND_WEIGHTS
    extra_lambda: float  # mean of the Poisson part of the extra establishments
    tail_p: float  # probability of a heavy-tailed network of extra establishments
    tail_scale: float
    secondary_closed: float  # share of closed secondary establishments in active units
    creation_rate: float  # yearly decay of the creation-date distribution
    closure_factor: float  # asymptotic share of closed units among old units
    templates: tuple[str, ...] = ()  # denomination prefixes (empty: natural persons)
    etab_naf: tuple[tuple[str, float], ...] | None = None  # other activities of establishments
    rev1: tuple[str, ...] = ("74.1A",)  # NAF rév. 1 codes kept by units closed before 2008
    natural_person: bool = False


_NAF_PP = (
    ("47.91B", 3), ("49.32Z", 3), ("53.20Z", 3), ("56.10C", 2), ("43.39Z", 2), ("43.21A", 2),
    ("43.34Z", 2), ("43.99C", 2), ("62.01Z", 3), ("62.02A", 2), ("70.22Z", 6), ("74.90B", 5),
    ("73.11Z", 1), ("74.10Z", 3), ("74.20Z", 1.5), ("85.59A", 2), ("85.59B", 3), ("85.51Z", 1.5),
    ("86.21Z", 2), ("86.22C", 1), ("86.23Z", 0.7), ("86.90D", 2), ("86.90E", 2), ("86.90F", 1),
    ("96.02A", 2), ("96.02B", 2), ("96.09Z", 3), ("93.13Z", 0.5), ("93.19Z", 1), ("47.11B", 0.5),
    ("47.19B", 1), ("47.71Z", 1), ("47.81Z", 2), ("47.82Z", 1), ("47.89Z", 1), ("45.20A", 1),
    ("46.90Z", 1), ("01.11Z", 1.5), ("01.21Z", 1), ("01.41Z", 0.6), ("01.50Z", 0.5),
    ("68.20A", 3), ("68.20B", 2), ("68.31Z", 1.5), ("69.20Z", 0.5), ("69.10Z", 0.7),
    ("71.11Z", 0.7), ("71.12B", 0.8), ("81.21Z", 1), ("81.30Z", 1), ("88.91A", 2), ("90.01Z", 2),
    ("90.03A", 2), ("90.03B", 1), ("90.02Z", 1), ("56.10A", 1.5), ("10.71C", 0.5),
    ("59.11B", 0.5), ("74.30Z", 0.5), ("82.99Z", 1), ("66.22Z", 0.7), ("77.39Z", 0.2),
    ("95.29Z", 0.3), ("96.04Z", 0.5), ("97.00Z", 0.5), ("58.11Z", 0.1), ("32.12Z", 0.1),
    ("78.10Z", 0.2), ("16.23Z", 0.1), ("80.10Z", 0.2), ("79.90Z", 0.2),
)  # fmt: skip
_NAF_SOCIETE = (
    ("70.10Z", 3), ("64.20Z", 8), ("68.20B", 4), ("68.10Z", 2), ("41.20A", 3), ("43.21A", 2),
    ("43.99C", 2), ("43.31Z", 1), ("45.11Z", 2), ("45.20A", 2), ("46.90Z", 3), ("46.19B", 2),
    ("46.69B", 1), ("47.11B", 1), ("47.19B", 2), ("47.71Z", 2), ("47.91A", 2), ("47.91B", 1),
    ("47.73Z", 0.5), ("49.41A", 2), ("49.32Z", 2), ("52.29A", 1), ("55.10Z", 1), ("56.10A", 4),
    ("56.10C", 2), ("56.30Z", 1.5), ("62.01Z", 4), ("62.02A", 3), ("63.12Z", 0.5),
    ("66.19B", 0.5), ("66.22Z", 1), ("69.20Z", 1), ("69.10Z", 1), ("70.22Z", 6), ("71.11Z", 1),
    ("71.12B", 2), ("73.11Z", 1.5), ("74.90B", 1), ("77.11A", 0.5), ("77.39Z", 0.3),
    ("78.20Z", 0.5), ("78.10Z", 0.3), ("81.21Z", 1), ("82.11Z", 0.3), ("82.99Z", 1),
    ("85.59A", 1), ("86.21Z", 0.5), ("86.90D", 0.3), ("86.23Z", 0.5), ("93.13Z", 0.5),
    ("96.02A", 1), ("96.04Z", 0.3), ("10.71C", 0.5), ("10.13B", 0.2), ("25.62B", 0.5),
    ("28.99B", 0.2), ("33.12Z", 0.5), ("35.11Z", 0.5), ("38.11Z", 0.2), ("58.29C", 0.3),
    ("59.11C", 0.2), ("60.20B", 0.1), ("61.90Z", 0.2), ("72.19Z", 0.3), ("64.19Z", 0.05),
    ("65.12Z", 0.05),
)  # fmt: skip
_NAF_SCI = (("68.20B", 60), ("68.20A", 25), ("68.10Z", 8), ("68.32A", 2), ("41.10A", 3),
            ("68.31Z", 2))  # fmt: skip
_NAF_AGRICOLE = (
    ("01.11Z", 25), ("01.21Z", 15), ("01.41Z", 12), ("01.50Z", 15), ("01.47Z", 5), ("01.13Z", 5),
    ("01.24Z", 3), ("01.62Z", 2), ("02.10Z", 2), ("68.20B", 5), ("01.45Z", 3), ("01.46Z", 3),
)  # fmt: skip
_NAF_LIBERAL = (("86.21Z", 20), ("86.23Z", 15), ("69.10Z", 20), ("69.20Z", 15), ("71.11Z", 10),
                ("75.00Z", 5), ("86.90D", 5), ("86.22C", 10))  # fmt: skip
_NAF_AUTRE_PRIVE = (("68.20B", 30), ("81.10Z", 30), ("68.32A", 30), ("94.99Z", 10))
# Associations: (code, weight, employer rate among active units). Weighted mean ~12.8 %.
_NAF_ASSOCIATION = (
    ("94.99Z", 58, 0.05), ("85.59A", 3, 0.30), ("85.59B", 4, 0.25), ("88.99B", 5, 0.30),
    ("93.12Z", 8, 0.12), ("90.01Z", 4, 0.12), ("90.04Z", 1.5, 0.15), ("93.29Z", 2, 0.08),
    ("88.10A", 1, 0.60), ("88.10C", 1, 0.60), ("87.30A", 0.6, 0.70), ("87.90B", 0.6, 0.70),
    ("87.20B", 0.4, 0.70), ("86.90E", 0.5, 0.40), ("86.10Z", 0.1, 0.90), ("88.91A", 0.8, 0.50),
    ("88.91B", 0.3, 0.50), ("91.02Z", 0.2, 0.20), ("91.03Z", 0.2, 0.20), ("55.20Z", 0.4, 0.20),
    ("85.10Z", 0.3, 0.60), ("85.31Z", 0.4, 0.80), ("94.91Z", 1.5, 0.05), ("94.20Z", 0.6, 0.10),
    ("94.12Z", 0.7, 0.15), ("84.11Z", 0.1, 0.30), ("84.12Z", 0.1, 0.30), ("84.30C", 0.05, 0.30),
    ("68.20B", 0.3, 0.02),
)  # fmt: skip
# Establishments of associations sometimes carry an activity excluded from the ESS perimeter.
_ETAB_NAF_ASSOCIATION = (("94.91Z", 20), ("84.11Z", 8), ("84.12Z", 8), ("94.99Z", 20),
                         ("88.99B", 20), ("85.59A", 20), ("94.20Z", 4))  # fmt: skip
_NAF_COOP = (
    ("43.21A", 6), ("43.99C", 4), ("41.20A", 3), ("62.01Z", 6), ("71.12B", 4), ("70.22Z", 5),
    ("56.10A", 4), ("85.59A", 5), ("47.11D", 5), ("46.90Z", 3), ("49.41A", 3), ("88.10A", 3),
    ("90.01Z", 3), ("58.14Z", 1), ("74.10Z", 2), ("81.21Z", 3), ("68.20A", 3), ("41.10A", 3),
    ("01.61Z", 2), ("10.51A", 1), ("11.02B", 2), ("46.21Z", 3), ("38.11Z", 1), ("35.11Z", 2),
    ("78.30Z", 1), ("82.99Z", 2),
)  # fmt: skip
_NAF_COOP_AGRI = (("46.21Z", 20), ("10.51A", 10), ("11.02B", 15), ("01.61Z", 10), ("46.11Z", 10),
                  ("10.11Z", 5), ("10.61A", 5), ("46.31Z", 5), ("47.76Z", 3),
                  ("01.50Z", 5))  # fmt: skip
_NAF_COOP_BANQUE = (("64.19Z", 90), ("66.19B", 5), ("64.92Z", 5))
_NAF_MUTUELLE = (("65.12Z", 35), ("65.11Z", 20), ("86.10Z", 5), ("86.23Z", 5), ("86.90E", 4),
                 ("47.78A", 3), ("88.10A", 4), ("87.30A", 4), ("66.22Z", 5), ("94.99Z", 5),
                 ("65.20Z", 2))  # fmt: skip
_NAF_FONDATION = (("94.99Z", 30), ("88.10C", 10), ("87.30A", 8), ("87.10A", 5), ("86.10Z", 5),
                  ("72.19Z", 8), ("85.59A", 5), ("91.02Z", 4), ("88.99B", 10), ("85.42Z", 3),
                  ("90.04Z", 3), ("64.99Z", 3))  # fmt: skip
_NAF_PUBLIC = (
    ("84.11Z", 40), ("84.12Z", 10), ("84.13Z", 5), ("91.01Z", 3), ("85.31Z", 5), ("85.42Z", 3),
    ("86.10Z", 3), ("84.25Z", 2), ("72.19Z", 3), ("36.00Z", 2), ("37.00Z", 2), ("38.11Z", 2),
    ("49.31Z", 1), ("90.04Z", 2), ("93.11Z", 2), ("84.30A", 3), ("84.30C", 2),
)  # fmt: skip

_A = ("91.3E",)
_ASSOCIATION_NAMES = (
    "ASSOCIATION SYNTHETIQUE ", "CLUB SPORTIF FICTIF ", "AMICALE FICTIVE ",
    "COMITE DES FETES FICTIF ", "ASSOCIATION FICTIVE D'AIDE A DOMICILE ",
    # These two need CSV quoting (comma, double quote), as some real denominations do.
    "ASSOCIATION FICTIVE, CULTURE ET LOISIRS ", 'ASSOCIATION "LES AMIS FICTIFS" ',
)  # fmt: skip
_COMPANY_NAMES = ("SOCIETE FICTIVE ", "HOLDING SYNTHETIQUE ", "ENTREPRISE FICTIVE ",
                  "SOCIETE FICTIVE DES TRAVAUX, BATIMENT ET RENOVATION ")  # fmt: skip
_BANK_NAMES = ("CAISSE FICTIVE DE CREDIT MUTUEL ", "BANQUE POPULAIRE SYNTHETIQUE ",
               "CAISSE REGIONALE FICTIVE DE CREDIT AGRICOLE ")  # fmt: skip

# Columns: naf, employer_rate, size, extra_lambda, tail_p, tail_scale, secondary_closed,
# creation_rate, closure_factor, then templates (denomination prefixes) and keywords.
# fmt: off
_PROFILES: dict[str, _Profile] = {
    "personne_physique": _Profile(_NAF_PP, 0.04, 0, 0.30, 0.002, 1.0, 0.90, 0.050, 0.64,
                                  natural_person=True,
                                  rev1=("74.1A", "74.1G", "52.1B", "74.8K", "93.0D", "85.1C",
                                        "45.4J")),
    "societe": _Profile(_NAF_SOCIETE, 0.38, 1, 0.25, 0.010, 2.0, 0.78, 0.040, 0.55,
                        _COMPANY_NAMES,
                        rev1=("74.1A", "74.1G", "52.1B", "70.1A", "45.2B", "55.3A")),
    "sci": _Profile(_NAF_SCI, 0.01, 0, 0.03, 0.001, 1.0, 0.60, 0.040, 0.40,
                    ("SCI FICTIVE ",), rev1=("70.2A",)),
    "agricole": _Profile(_NAF_AGRICOLE, 0.25, 0, 0.20, 0.002, 1.0, 0.70, 0.030, 0.50,
                         ("GAEC FICTIF ", "EARL SYNTHETIQUE "), rev1=("01.1A",)),
    "liberal": _Profile(_NAF_LIBERAL, 0.55, 0, 0.25, 0.005, 1.5, 0.60, 0.040, 0.45,
                        ("SELARL FICTIVE ", "CABINET SYNTHETIQUE "), rev1=("85.1C",)),
    "autre_prive": _Profile(_NAF_AUTRE_PRIVE, 0.03, 0, 0.02, 0.0, 1.0, 0.50, 0.030, 0.35,
                            ("SYNDICAT DES COPROPRIETAIRES FICTIF ", "INDIVISION FICTIVE "),
                            rev1=("70.3C",)),
    "association": _Profile(_NAF_ASSOCIATION, 0.12, 0, 0.15, 0.008, 2.5, 0.65, 0.035, 0.55,
                            _ASSOCIATION_NAMES, etab_naf=_ETAB_NAF_ASSOCIATION, rev1=_A),
    "cooperative": _Profile(_NAF_COOP, 0.55, 1, 0.40, 0.030, 3.0, 0.55, 0.040, 0.45,
                            ("SCOP FICTIVE ", "COOPERATIVE SYNTHETIQUE ", "SCIC FICTIVE "),
                            rev1=("74.1A",)),
    "cooperative_agricole": _Profile(_NAF_COOP_AGRI, 0.45, 1, 0.30, 0.030, 3.0, 0.50, 0.020, 0.45,
                                     ("COOPERATIVE AGRICOLE FICTIVE ",
                                      "UNION SYNTHETIQUE DES COOPERATIVES "), rev1=("51.2A",)),
    "cuma": _Profile((("01.61Z", 1),), 0.10, 0, 0.05, 0.0, 1.0, 0.50, 0.025, 0.40,
                     ("CUMA FICTIVE ",), rev1=("01.4A",)),
    "cooperative_bancaire": _Profile(_NAF_COOP_BANQUE, 0.85, 2, 1.5, 0.25, 6.0, 0.30, 0.015, 0.35,
                                     _BANK_NAMES, rev1=("65.1C",)),
    "mutuelle": _Profile(_NAF_MUTUELLE, 0.70, 2, 1.0, 0.20, 5.0, 0.40, 0.020, 0.40,
                         ("MUTUELLE FICTIVE ", "MUTUELLE SYNTHETIQUE DES AGENTS "),
                         rev1=("66.0F",)),
    "fondation": _Profile(_NAF_FONDATION, 0.45, 2, 0.80, 0.15, 4.0, 0.40, 0.020, 0.25,
                          ("FONDATION FICTIVE ", "FONDATION SYNTHETIQUE POUR L'ENFANCE "),
                          rev1=_A),
    "public": _Profile(_NAF_PUBLIC, 0.60, 1, 1.5, 0.10, 5.0, 0.40, 0.015, 0.30,
                       ("ETABLISSEMENT PUBLIC FICTIF ", "SYNDICAT INTERCOMMUNAL FICTIF "),
                       rev1=("75.1A",)),
    "commune": _Profile((("84.11Z", 1),), 0.95, 1, 4.0, 0.30, 6.0, 0.30, 0.010, 0.10,
                        ("COMMUNE FICTIVE ",), rev1=("75.1A",)),
    "ccas": _Profile((("88.99B", 50), ("84.11Z", 40), ("87.30A", 10)),
                     0.60, 0, 0.50, 0.05, 2.0, 0.40, 0.015, 0.20,
                     ("CCAS FICTIF ",), rev1=("85.3K",)),
    "hopital": _Profile((("86.10Z", 1),), 0.95, 2, 2.0, 0.30, 4.0, 0.30, 0.010, 0.20,
                        ("CENTRE HOSPITALIER FICTIF ",), rev1=("85.1A",)),
    "universite": _Profile((("85.42Z", 1),), 0.95, 2, 2.0, 0.30, 4.0, 0.30, 0.010, 0.15,
                           ("UNIVERSITE FICTIVE ",), rev1=("80.3Z",)),
    "cse": _Profile((("94.99Z", 80), ("88.99B", 10), ("93.29Z", 5), ("79.12Z", 5)),
                    0.06, 0, 0.02, 0.0, 1.0, 0.40, 0.040, 0.45,
                    ("COMITE SOCIAL ET ECONOMIQUE FICTIF ",), rev1=_A),
    "prevoyance": _Profile((("65.11Z", 50), ("65.30Z", 50)),
                           0.80, 2, 1.0, 0.20, 3.0, 0.40, 0.015, 0.30,
                           ("INSTITUTION DE PREVOYANCE FICTIVE ",), rev1=("66.0A",)),
    "groupement_employeurs": _Profile((("78.30Z", 60), ("01.61Z", 20), ("78.20Z", 20)),
                                      0.70, 0, 0.10, 0.0, 1.0, 0.50, 0.045, 0.45,
                                      ("GROUPEMENT D'EMPLOYEURS FICTIF ",), rev1=("74.5B",)),
    "autre_non_lucratif": _Profile((("94.99Z", 40), ("68.20B", 10), ("81.10Z", 10),
                                    ("94.12Z", 10), ("88.99B", 10), ("85.59A", 10),
                                    ("84.13Z", 5), ("66.30Z", 5)),
                                   0.15, 0, 0.15, 0.01, 2.0, 0.50, 0.030, 0.40,
                                   ("ORGANISME FICTIF A BUT NON LUCRATIF ",), rev1=_A),
    "gcs": _Profile((("86.10Z", 1),), 0.60, 1, 0.3, 0.0, 1.0, 0.40, 0.040, 0.20,
                    ("GROUPEMENT DE COOPERATION SANITAIRE FICTIF ",), rev1=("85.1A",)),
    "syndicat_salaries": _Profile((("94.20Z", 1),), 0.12, 0, 0.20, 0.01, 2.0, 0.50, 0.030, 0.40,
                                  ("SYNDICAT FICTIF DES SALARIES ",), rev1=("91.2Z",)),
    "syndicat_patronal": _Profile((("94.11Z", 1),), 0.25, 0, 0.10, 0.01, 2.0, 0.50, 0.030, 0.40,
                                  ("CHAMBRE SYNDICALE FICTIVE ",), rev1=("91.1A",)),
    "ordre": _Profile((("94.12Z", 90), ("84.13Z", 10)), 0.40, 0, 0.30, 0.02, 2.0, 0.40, 0.015,
                      0.20, ("ORDRE FICTIF DES PROFESSIONS ",), rev1=("91.1C",)),
    "organisation_professionnelle": _Profile((("94.12Z", 70), ("94.11Z", 30)),
                                             0.25, 0, 0.10, 0.01, 2.0, 0.50, 0.030, 0.40,
                                             ("ORGANISATION PROFESSIONNELLE FICTIVE ",),
                                             rev1=("91.1C",)),
    # SIREN 356000000 only (weight 0 in _CATEGORIES, placed by _generate_chunk).
    "la_poste": _Profile((("53.10Z", 1),), 1.0, 2, 0.0, 0.0, 1.0, 0.0, 0.01, 0.0,
                         ("LA POSTE ",), rev1=("64.1A",)),
}
# fmt: on

# (categorieJuridique, weight in % of legal units, profile). Close to the real stock: natural
# persons ~57 % (1000, and ~1 % with a former code 1100-1900), SAS and SASU ~12 %, SCI ~8.5 %,
# SARL and EURL ~9 %, associations ~6.4 %, coops ~0.3 %. Weight-0 codes are never drawn: they are
# given afterwards (`_RELABEL_REMOVED`, `_OLD_NATURAL_PERSON_CJ`, La Poste). Removed codes
# (supprime = true in the reference) are listed in `_REMOVED_CATEGORIES`.
_CATEGORIES: tuple[tuple[str, float, str], ...] = (
    ("1000", 58.0, "personne_physique"),
    ("1100", 0.0, "personne_physique"), ("1200", 0.0, "personne_physique"),
    ("1300", 0.0, "personne_physique"), ("1400", 0.0, "personne_physique"),
    ("1500", 0.0, "personne_physique"), ("1600", 0.0, "personne_physique"),
    ("1700", 0.0, "personne_physique"), ("1800", 0.0, "personne_physique"),
    ("1900", 0.0, "personne_physique"),
    ("5710", 12.0, "societe"), ("5720", 0.0, "societe"), ("5499", 9.0, "societe"),
    ("5498", 0.0, "societe"), ("6540", 8.5, "sci"),
    ("6599", 1.5, "societe"), ("5599", 0.35, "societe"), ("5699", 0.1, "societe"),
    ("5202", 0.6, "societe"), ("5306", 0.03, "societe"), ("3120", 0.2, "societe"),
    ("6220", 0.1, "societe"), ("6521", 0.05, "sci"), ("6541", 0.3, "sci"),
    ("5785", 0.25, "liberal"), ("5485", 0.2, "liberal"), ("6589", 0.15, "liberal"),
    ("6585", 0.1, "liberal"),
    ("6533", 0.15, "agricole"), ("6598", 0.35, "agricole"), ("6597", 0.1, "agricole"),
    ("6534", 0.1, "agricole"),
    ("2110", 0.5, "autre_prive"), ("2900", 0.2, "autre_prive"), ("9110", 1.2, "autre_prive"),
    ("9150", 0.2, "autre_prive"),
    ("9220", 6.2, "association"), ("9210", 0.05, "association"), ("9221", 0.03, "association"),
    ("9222", 0.02, "association"), ("9230", 0.03, "association"), ("9260", 0.1, "association"),
    ("5458", 0.04, "cooperative"), ("5460", 0.05, "cooperative"), ("5560", 0.03, "cooperative"),
    ("5558", 0.01, "cooperative"), ("5459", 0.003, "cooperative"), ("6543", 0.005, "cooperative"),
    ("5547", 0.003, "cooperative"), ("6560", 0.005, "cooperative"),
    ("5432", 0.003, "cooperative_agricole"), ("6317", 0.04, "cooperative_agricole"),
    ("6318", 0.005, "cooperative_agricole"), ("6316", 0.07, "cuma"),
    ("6595", 0.01, "cooperative_bancaire"), ("6596", 0.01, "cooperative_bancaire"),
    ("5192", 0.005, "cooperative_bancaire"), ("5191", 0.005, "cooperative_bancaire"),
    ("5194", 0.002, "cooperative_bancaire"), ("5196", 0.002, "cooperative_bancaire"),
    ("6100", 0.001, "cooperative_bancaire"),
    ("8210", 0.03, "mutuelle"), ("8290", 0.01, "mutuelle"), ("6411", 0.005, "mutuelle"),
    ("8250", 0.003, "mutuelle"),
    # Removed from INSEE's list, still carried by a handful of units (see _MIN_UNITS).
    ("6412", 0.004, "mutuelle"), ("6413", 0.001, "mutuelle"), ("6414", 0.001, "prevoyance"),
    ("6588", 0.001, "agricole"), ("7130", 0.001, "public"), ("7510", 0.002, "public"),
    ("7520", 0.002, "public"),
    ("9300", 0.012, "fondation"),
    ("7210", 0.15, "commune"), ("7312", 0.05, "commune"), ("7361", 0.1, "ccas"),
    ("7364", 0.005, "hopital"), ("7383", 0.01, "universite"), ("7346", 0.005, "public"),
    ("7220", 0.001, "public"), ("7389", 0.12, "public"), ("7410", 0.02, "public"),
    ("7490", 0.3, "public"), ("7229", 0.005, "public"), ("7344", 0.001, "public"),
    ("7372", 0.001, "public"), ("7113", 0.001, "public"), ("7120", 0.01, "public"),
    ("7321", 0.05, "public"), ("7366", 0.02, "public"), ("4110", 0.01, "public"),
    ("4140", 0.02, "public"), ("8110", 0.02, "public"),
    ("8310", 0.15, "cse"), ("8311", 0.03, "cse"), ("8510", 0.002, "prevoyance"),
    ("8520", 0.001, "prevoyance"), ("9223", 0.02, "groupement_employeurs"),
    ("9900", 0.15, "autre_non_lucratif"), ("9970", 0.001, "gcs"),
    ("8410", 0.1, "syndicat_salaries"), ("8420", 0.05, "syndicat_patronal"),
    ("8450", 0.02, "ordre"), ("8490", 0.05, "organisation_professionnelle"),
    ("5510", 0.0, "la_poste"),
)  # fmt: skip

# Well-formed codes that no list knows (checked absent from categories_juridiques_n3.csv): INSEE
# adds codes between two releases of its lists. (code, weight, profile, ESS flag rate): the
# association-like code is flagged ESS as associations are; the rows are "non classé".
_UNKNOWN_CATEGORIES: tuple[tuple[str, float, str, float], ...] = (
    ("5730", 0.003, "societe", 0.002),
    ("6590", 0.002, "sci", 0.0),
    ("9280", 0.003, "association", 0.85),
)
# The 18 codes of the reference with supprime = true: all are generated.
_REMOVED_CATEGORIES = (
    "1100", "1200", "1300", "1400", "1500", "1600", "1700", "1800", "1900",
    "5498", "5720", "6412", "6413", "6414", "6588", "7130", "7510", "7520",
)  # fmt: skip
# Rare codes: at least this many units in every stock (placed in the first chunk when the draw
# gave fewer), so that a small stock still carries each of them.
_MIN_UNITS = {
    "6412": 3, "6413": 2, "6414": 2, "6588": 2, "7130": 2, "7510": 2, "7520": 2,
    "5730": 3, "6590": 2, "9280": 3,
}  # fmt: skip
_MIN_UNKNOWN_ESS_O = 2  # units of unknown categories flagged economieSocialeSolidaire = O
# Services of the PTT ministry ended when La Poste and France Télécom were created (1991).
_CLOSED_BEFORE = {"7130": "1991-01-01"}
# (code drawn, removed code, share, creation before): SASU and SARL unipersonnelles registered
# before INSEE's current list of categories (September 2022) often keep their former code. With
# the weights above: 5720 ~5.5 % and 5498 ~4 % of all legal units, 5710 ~6.5 % and 5499 ~5 %.
_RELABEL_REMOVED = (("5710", "5720", 0.55, "2022-09-01"), ("5499", "5498", 0.55, "2022-09-01"))
# Natural persons registered before 2008: a few keep a former code 1100-1900, chosen from their
# activity (first matching prefix; 1900 otherwise). ~1.1 % of all legal units.
_OLD_NATURAL_PERSON_RATE = 0.05
_OLD_NATURAL_PERSON_BEFORE = "2008-01-01"
_OLD_NATURAL_PERSON_CJ = (
    (("01.", "02."), "1600"),  # exploitant agricole
    (("69.10",), "1400"),  # officier public ou ministériel
    (("10.", "56.10"), "1100"),  # artisan-commerçant
    (("46.1", "66.22"), "1700"),  # agent commercial
    (("16.", "32.", "33.", "43.", "45.20", "81.2", "95.", "96.0"), "1300"),  # artisan
    (("45.", "46.", "47.", "55.", "56."), "1200"),  # commerçant
    (("62.", "69.", "70.", "71.", "73.", "74.", "75.", "85.", "86.", "90."), "1500"),  # libéral
)
_OLD_NATURAL_PERSON_1800 = 0.03  # associé gérant de société, whatever the activity

# Main activity already coded in NAF 2025: the rates are in units.py, which draws them. In the
# first chunk, at least this many establishments in excluded activities (84.xx, 94.xx) move too.
_MIN_NAF2025_EXCLUDED = 3

# Closed establishments keep the code of a commune merged after their closure. Share of the
# establishments closed before the merger that keep it: the territory's own former codes, and
# (fewer) former codes of other communes of its départements (attributed outside the territory).
_FORMER_COMMUNE_RATE = 0.15
_FORMER_COMMUNE_OUTSIDE_RATE = 0.002
# Closed establishments with a well-formed commune code that no list knows (current or former),
# in the territory's départements: up to 3 codes, 3 establishments each.
_UNKNOWN_COMMUNE_CODES = 3
_UNKNOWN_COMMUNE_ROWS = 3

# Share of units flagged economieSocialeSolidaireUniteLegale = O, by ESS family.
_ESS_FLAG_RATE = {
    "association": 0.85,
    "cooperative": 0.90,
    "mutuelle": 0.90,
    "fondation": 0.90,
    "autre_non_lucratif": 0.50,
}
_COMMERCIAL_ESS_CJ = ("5710", "5720", "5499", "5498")  # commercial ESS: a tiny flagged share
_COMMERCIAL_ESS_RATE = 0.002
_RNA_CJ = ("9220", "9221", "9222", "9230")  # associations with an RNA number (W...)

FAMILIES = (*catalogue.ESS_FAMILIES, "hors_ess")
_F_COMMERCIAL = FAMILIES.index("societe_commerciale_ess")
_F_HORS = FAMILIES.index("hors_ess")

# 0.7 gives the largest of 24 communes ~11 % of the rows (Vitry-sur-Seine in the EPT: ~13 % of
# the population) and the top 10 of 35,000 communes ~6 % nationally.
_ZIPF_EXPONENT = 0.7
# SIREN without key are spread over [1000, 10^8): never 000000000 or other placeholder-like values.
_SIREN_BASE_MIN = 1_000
_SIREN_SPAN = 100_000_000 - _SIREN_BASE_MIN
_TAIL_SHAPE = 1.3  # Lomax shape of the heavy tail of establishments per unit
_TAIL_CAP = 1500  # at most 1 + extra establishments per unit: keeps NIC sequences on 4 digits
# nomenclatureActivitePrincipale* of the codes 0, 1, 2 the generator draws.
_NOMENCLATURES = ("NAFRev2", "NAFRev1", "NAF2025")
