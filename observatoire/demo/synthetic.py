"""Deterministic synthetic SIRENE stock files (StockUniteLegale and StockEtablissement).

Everything written here is SYNTHETIC: no row describes a real legal unit or establishment. The
generator exists because the real national stock is 8.6 GB of CSV that cannot be shipped with the
project or used in tests, and because a pipeline can only be checked against data whose truth is
known. The files have INSEE's exact layout (headers from `observatoire.sources.layouts`, comma-
separated UTF-8, one header line, fields quoted only when needed, `\\n` line ends, zipped as INSEE
ships them) and realistic distributions (legal categories, ESS families, closures, employer bands,
P units, La Poste's SIRET exception, a Zipf-like spread over communes), so that reading, cleaning
and the indicators face the same shapes as with the real stock. Denominations say so in the data
itself ("ASSOCIATION SYNTHETIQUE 000123", "SCOP FICTIVE 000456", natural persons named "FICTIF-
XXXXX").

The same code produces a territory sample (tests, bundled demo data) and a national-scale stock
(~28 M legal units, ~42 M establishments) for benchmarks: rows are generated chunk by chunk with
vectorised numpy and pyarrow.compute, and compressed by background threads while the next chunk is
generated. The output depends only on the arguments (seed, chunk size included): two runs give
byte-identical files. `synthetic_manifest.json`, written beside the files, records the true counts
and every injected defect so that tests can compare pipeline outputs with the truth.

Like the real register, the stock carries codes outside today's nomenclatures, counted by code in
the manifest's "drift" section: legal categories INSEE removed from its list (5720 SASU and 5498
SARL unipersonnelle among the most common, 1100-1900 on old natural persons, a handful of 6412,
6413, 6414, 6588, 7130, 7510, 7520) and a few well-formed codes no list knows; main activities
already coded in NAF 2025 on ~5 % of active rows, NAF rév. 1 on establishments closed before 2008;
former commune codes kept by establishments closed before their commune merged, and a few
commune codes no list knows. `activitePrincipaleNAF25*` is the image of the NAF rév. 2 code
through INSEE's correspondence (naf_rev2_naf_2025.csv), as the real stock carries it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import queue
import re
import stat
import threading
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from observatoire.core import catalogue
from observatoire.core.identifiers import LA_POSTE_SIREN, siret_valid
from observatoire.sources.layouts import ETABLISSEMENT_V3_11_NAF25, UNITE_LEGALE_V3_11_NAF25

GENERATOR_VERSION = "1.1.0"

# The one place where the package locates its bundled reference data.
DEFAULT_REFERENCE_DIR = Path(__file__).resolve().parents[2] / "data" / "reference"

ETABLISSEMENTS_CSV = "StockEtablissement_utf8.csv"
UNITES_LEGALES_CSV = "StockUniteLegale_utf8.csv"
MANIFEST_NAME = "synthetic_manifest.json"

# Largest number of legal units per chunk: keeps every chunk's CSV text under pyarrow's 2 GB
# string-array limit and the memory of a national run under 3 GB.
MAX_CHUNK_ROWS = 2_000_000

# ---------------------------------------------------------------------------------------------
# Distributions. Weights are relative; every code is checked against the reference files.
# ---------------------------------------------------------------------------------------------

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

# Main activity already coded in NAF 2025 (nomenclatureActivitePrincipale* = NAF2025): active
# units created in the stock's last twelve months often, older active units sometimes (~5 % of
# active units and establishments in all). Only rows whose NAF 2025 image keeps their ESS
# exclusion status move (their activity did not change). An establishment moves with its unit.
_NAF2025_RATE_NEW = 0.35
_NAF2025_RATE = 0.03
_MIN_NAF2025_EXCLUDED = 3  # first chunk: establishments in excluded activities (84.xx, 94.xx)

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


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticSirene:
    """Paths and sizes of one generated synthetic stock.

    `n_etablissements` / `n_unites_legales` count the data lines written (header excluded,
    injected defect lines included); the manifest also gives the true entity counts.
    """

    etablissements: Path
    unites_legales: Path
    n_etablissements: int
    n_unites_legales: int
    manifest: Path


def generate_sirene(
    out_dir: Path,
    communes: Sequence[str],
    *,
    n_unites_legales: int,
    mois: str,
    seed: int = 2026,
    fmt: Literal["zip", "csv"] = "zip",
    defects: bool = True,
    reference_dir: Path = DEFAULT_REFERENCE_DIR,
    chunk_rows: int = 1_000_000,
    etablissements_per_unite_legale: float = 1.5,
    compresslevel: int = 6,
) -> SyntheticSirene:
    """Write a synthetic SIRENE stock (legal units and establishments) for `mois` ("YYYY-MM").

    Every establishment lies in one of `communes` (COG codes, drawn with Zipf-like weights), apart
    from one injected defect row. `chunk_rows` legal units are generated at a time; like `seed`,
    it is part of what determines the bytes. `defects=True` injects a few malformed rows, listed
    with their line numbers in the manifest; `defects=False` writes clean files.
    """
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", mois):
        raise ValueError(f"mois doit être au format YYYY-MM, reçu {mois!r}")
    if n_unites_legales < 1:
        raise ValueError("n_unites_legales doit être positif")
    if n_unites_legales > 50_000_000:
        raise ValueError("n_unites_legales > 50 000 000 : l'espace des SIREN serait trop dense")
    if defects and n_unites_legales < 50:
        raise ValueError("defects=True demande au moins 50 unités légales")
    if not 1 <= chunk_rows <= MAX_CHUNK_ROWS:
        raise ValueError(f"chunk_rows doit être entre 1 et {MAX_CHUNK_ROWS}")
    if fmt not in ("zip", "csv"):
        raise ValueError(f"fmt doit être 'zip' ou 'csv', reçu {fmt!r}")
    if etablissements_per_unite_legale < 1.05:
        raise ValueError("etablissements_per_unite_legale doit être au moins 1.05")

    ref = _Reference.load(Path(reference_dir))
    ctx = _Context.build(ref, communes, n_unites_legales, mois, etablissements_per_unite_legale)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    year, month = (int(x) for x in mois.split("-"))
    date_time = (year, month, 1, 0, 0, 0)
    if fmt == "zip":
        etab_path = out_dir / "StockEtablissement_utf8.zip"
        ul_path = out_dir / "StockUniteLegale_utf8.zip"
    else:
        etab_path = out_dir / ETABLISSEMENTS_CSV
        ul_path = out_dir / UNITES_LEGALES_CSV

    counts = _Counts(ctx)
    defect_log: list[dict[str, Any]] = []
    n_chunks = -(-n_unites_legales // chunk_rows)
    with (
        _Sink(
            ul_path, UNITES_LEGALES_CSV if fmt == "zip" else None, date_time, compresslevel
        ) as ul_sink,
        _Sink(
            etab_path, ETABLISSEMENTS_CSV if fmt == "zip" else None, date_time, compresslevel
        ) as etab_sink,
    ):
        ul_sink.write([(",".join(UNITE_LEGALE_V3_11_NAF25) + "\n").encode()], 1)
        etab_sink.write([(",".join(ETABLISSEMENT_V3_11_NAF25) + "\n").encode()], 1)
        for chunk in range(n_chunks):
            start = chunk * chunk_rows
            stop = min(n_unites_legales, start + chunk_rows)
            rng = np.random.default_rng([seed, chunk])
            ul_cols, etab_cols, ul_view, etab_view = _generate_chunk(ctx, rng, start, stop)
            counts.add(ul_view, etab_view)
            if defects and chunk == 0:
                ul_lines = _join_lines(ul_cols, UNITE_LEGALE_V3_11_NAF25)
                etab_lines = _join_lines(etab_cols, ETABLISSEMENT_V3_11_NAF25)
                drng = np.random.default_rng([seed, 7_777_777])
                ul_parts, ul_found = _inject_ul_defects(ul_lines, ul_view, drng)
                etab_parts, etab_found = _inject_etab_defects(etab_lines, etab_view, ctx, drng)
                defect_log += ul_found + etab_found
                ul_sink.write(ul_parts, _count_lines(ul_parts))
                etab_sink.write(etab_parts, _count_lines(etab_parts))
                del ul_lines, etab_lines, ul_parts, etab_parts
            else:
                # Lines are built and handed over in slices, so that the text of a whole chunk
                # never sits in memory next to its columns.
                _write_slices(ul_sink, ul_cols, ul_view.n, UNITE_LEGALE_V3_11_NAF25)
                _write_slices(etab_sink, etab_cols, etab_view.n, ETABLISSEMENT_V3_11_NAF25)
            del ul_cols, etab_cols

    n_ul_lines = ul_sink.lines - 1
    n_etab_lines = etab_sink.lines - 1
    manifest = {
        "synthetic": True,
        "description": (
            "Fichiers SIRENE SYNTHETIQUES (aucune ligne ne décrit une entreprise réelle), "
            "au format exact des stocks INSEE v3.11 + NAF 2025"
        ),
        "generator": "observatoire.demo.synthetic",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "mois": mois,
        "date_fin_donnees": ctx.end_date.isoformat(),
        "fmt": fmt,
        "chunk_rows": chunk_rows,
        "etablissements_per_unite_legale": etablissements_per_unite_legale,
        "defects_injected": defects,
        "communes": list(ctx.communes),
        "files": {
            "unites_legales": {
                "path": ul_path.name,
                "member": UNITES_LEGALES_CSV if fmt == "zip" else None,
                "data_lines": n_ul_lines,
                "csv_sha256": ul_sink.sha256,
                "columns": len(UNITE_LEGALE_V3_11_NAF25),
            },
            "etablissements": {
                "path": etab_path.name,
                "member": ETABLISSEMENTS_CSV if fmt == "zip" else None,
                "data_lines": n_etab_lines,
                "csv_sha256": etab_sink.sha256,
                "columns": len(ETABLISSEMENT_V3_11_NAF25),
            },
        },
        "counts": counts.as_dict(),
        "drift": counts.drift(),
        "defects": defect_log,
    }
    manifest_path = out_dir / MANIFEST_NAME
    manifest_path.write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=False) + "\n",
        encoding="utf-8",
    )
    return SyntheticSirene(
        etablissements=etab_path,
        unites_legales=ul_path,
        n_etablissements=n_etab_lines,
        n_unites_legales=n_ul_lines,
        manifest=manifest_path,
    )


def all_communes(reference_dir: Path = DEFAULT_REFERENCE_DIR) -> list[str]:
    """Every COG code under which SIRENE locates establishments (the national territory).

    SIRENE uses the municipal arrondissements of Paris, Lyon and Marseille, never the parent
    communes 75056, 69123 and 13055, so those three are left out.
    """
    communes = []
    with (Path(reference_dir) / "cog_communes.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["code_commune"] not in ("75056", "69123", "13055"):
                communes.append(row["code_commune"])
    return communes


def la_poste_siret_valid(siret: str) -> bool:
    """INSEE's exception for La Poste (see `observatoire.core.identifiers.siret_valid`)."""
    return siret.startswith(LA_POSTE_SIREN) and siret_valid(siret)


# ---------------------------------------------------------------------------------------------
# Reference data and pre-computed tables
# ---------------------------------------------------------------------------------------------


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@dataclass(frozen=True)
class _Reference:
    """The reference files the generator draws codes from, so it never invents a code."""

    communes: dict[str, tuple[str, str, str]]  # code -> (libellé COG, type, nature EPCI)
    naf_rev2: frozenset[str]
    naf_2025: tuple[str, ...]
    naf_rev2_to_2025: dict[str, tuple[str, ...]]  # INSEE's correspondence, in file order
    categories: frozenset[str]
    removed_categories: frozenset[str]  # supprime = true: off INSEE's list, still carried
    ess_families: dict[str, str]  # code_cj -> famille_ess
    naf_exclusions: frozenset[str]
    former_communes: tuple[dict[str, str], ...]  # rows of cog_communes_anciennes.csv

    @classmethod
    def load(cls, reference_dir: Path) -> _Reference:
        cog = _read_csv(reference_dir / "cog_communes.csv")
        categories = _read_csv(reference_dir / "categories_juridiques_n3.csv")
        correspondence: dict[str, tuple[str, ...]] = {}
        for r in _read_csv(reference_dir / "naf_rev2_naf_2025.csv"):
            correspondence[r["code_naf_rev2"]] = correspondence.get(r["code_naf_rev2"], ()) + (
                r["code_naf2025"],
            )
        return cls(
            communes={
                r["code_commune"]: (r["libelle_commune"], r["type_commune"], r["nature_epci"])
                for r in cog
            },
            naf_rev2=frozenset(
                r["code_sous_classe"]
                for r in _read_csv(reference_dir / "naf_rev2_sous_classes.csv")
            ),
            naf_2025=tuple(
                r["code_naf2025"] for r in _read_csv(reference_dir / "naf_2025_sous_classes.csv")
            ),
            naf_rev2_to_2025=correspondence,
            categories=frozenset(r["code_n3"] for r in categories),
            removed_categories=frozenset(
                r["code_n3"] for r in categories if r["supprime"].strip().lower() == "true"
            ),
            ess_families={
                r["code_cj"]: r["famille_ess"]
                for r in _read_csv(reference_dir / "ess_categories_juridiques.csv")
            },
            naf_exclusions=frozenset(
                r["code_naf"] for r in _read_csv(reference_dir / "ess_naf_exclusions.csv")
            ),
            former_communes=tuple(_read_csv(reference_dir / "cog_communes_anciennes.csv")),
        )


@dataclass(frozen=True)
class _Grouped:
    """Per-group discrete distributions flattened for one vectorised `searchsorted`.

    Group g's cumulative probabilities are stored shifted by g, so `group + u` (u in [0, 1))
    lands in group g's entries only.
    """

    cum: np.ndarray
    group_last: np.ndarray  # index of each group's last entry
    values: np.ndarray  # entry -> value index

    @classmethod
    def build(cls, groups: Sequence[Sequence[tuple[int, float]]]) -> _Grouped:
        cum: list[float] = []
        values: list[int] = []
        last: list[int] = []
        for g, entries in enumerate(groups):
            weights = np.array([w for _, w in entries], dtype=np.float64)
            c = np.cumsum(weights) / weights.sum()
            c[-1] = 1.0
            cum.extend(g + c)
            values.extend(v for v, _ in entries)
            last.append(len(values) - 1)
        return cls(np.array(cum), np.array(last, dtype=np.int64), np.array(values, np.int64))

    def entry(self, group: np.ndarray, u: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.cum, group + u, side="right")
        return np.minimum(pos, self.group_last[group])

    def sample(self, group: np.ndarray, u: np.ndarray) -> np.ndarray:
        return self.values[self.entry(group, u)]


def _ascii_upper(text: str) -> str:
    """SIRENE commune labels are upper case without accents."""
    stripped = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return stripped.upper()


def _commune_label(code: str, libelle: str, kind: str) -> str:
    if kind == "ARM":  # "Paris 15e Arrondissement" -> "PARIS 15"
        city = libelle.split()[0]
        number = int(code[-1]) if code.startswith("6938") else int(code[-2:])
        return f"{_ascii_upper(city)} {number}"
    return _ascii_upper(libelle)


def _postal_code(code: str, h: int) -> str:
    """A plausible postal code for a commune: its département and 3 stable pseudo-digits."""
    if code.startswith("751"):
        return "750" + code[3:]
    if code.startswith("6938"):
        return "6900" + code[4:]
    if code.startswith("132"):
        return "130" + code[3:]
    if code.startswith("97"):
        return code[:3] + f"{(h % 9 + 1) * 10:02d}"
    dep = "20" if code[:2] in ("2A", "2B") else code[:2]
    return dep + f"{(h % 90 + 10) * 10:03d}"


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


@dataclass
class _Context:
    """Everything shared by all chunks: dictionaries of strings and sampling tables."""

    ref: _Reference
    n: int
    mois: str
    end_date: date
    end_day: int  # days since 1970-01-01
    day0: int  # first day of the date dictionary (1900-01-01)
    year: int
    communes: tuple[str, ...]
    commune_cum: np.ndarray
    commune_code: pa.Array
    commune_label: pa.Array
    commune_postal: pa.Array
    commune_dep: pa.Array  # first 2 characters (RNA numbers)
    commune_x: np.ndarray
    commune_y: np.ndarray
    cj_codes: tuple[str, ...]  # _CATEGORIES, then _UNKNOWN_CATEGORIES
    cj_cum: np.ndarray
    cj_code: pa.Array
    cj_profile: np.ndarray
    cj_common: np.ndarray  # categories rare codes may be taken from (weight >= 1 %)
    cj_minimum: tuple[tuple[int, int], ...]  # (cj, units) of _MIN_UNITS
    cj_unknown: np.ndarray
    cj_closed_before: np.ndarray  # day before which the unit is closed (_CLOSED_BEFORE)
    cj_relabel: np.ndarray  # removed code given to part of the older units (-1: none)
    cj_relabel_rate: np.ndarray
    cj_relabel_before: np.ndarray
    natural_old_cj: np.ndarray  # NAF rév. 2 index -> former natural-person code (cj index)
    cj_1000: int
    cj_1800: int
    cj_family: np.ndarray
    cj_ess_rate: np.ndarray
    cj_rna: np.ndarray
    cj_societe: np.ndarray
    la_poste_cj: int
    profile_names: tuple[str, ...]
    prof_natural: np.ndarray
    prof_size: np.ndarray
    prof_lambda: np.ndarray
    prof_tail_p: np.ndarray
    prof_tail_scale: np.ndarray
    prof_secondary_closed: np.ndarray
    prof_creation_rate: np.ndarray
    prof_closure: np.ndarray
    prof_has_alt: np.ndarray
    prof_rm: np.ndarray  # natural persons and companies may be registered craftsmen
    naf_codes: tuple[str, ...]
    naf_dict: pa.Array  # index 0 = ""
    naf25_dict: pa.Array  # index 0 = ""
    naf25_table: _Grouped  # NAF rév. 2 index -> its NAF 2025 images (INSEE's correspondence)
    naf25_excluded: np.ndarray  # images of ess_naf_exclusions.csv
    naf_excluded: np.ndarray
    naf_table: _Grouped
    naf_entry_rate: np.ndarray
    alt_table: _Grouped
    rev1_table: _Grouped
    rev1_dict: pa.Array
    template_table: _Grouped
    template_dict: pa.Array
    band_table: _Grouped
    tranche_dict: pa.Array  # "", "NN", then _BANDS
    date_dict: pa.Array  # index 0 = "", index i = day0 + i - 1
    time_dict: pa.Array
    prenom_dict: pa.Array
    type_voie_cum: np.ndarray
    type_voie_dict: pa.Array
    libelle_voie_dict: pa.Array
    complement_dict: pa.Array
    rm_dict: pa.Array
    former_code: pa.Array  # former commune codes; index 0 = none
    former_label: pa.Array
    former_postal: pa.Array
    former_day: np.ndarray  # closure before this day (the merger) to keep the former code
    former_inside: _Grouped  # commune index -> former codes attributed to it
    former_outside: _Grouped  # commune index -> former codes of its département, elsewhere
    former_inside_last: np.ndarray  # commune index -> latest day of its former_inside codes
    former_outside_last: np.ndarray
    former_info: tuple[tuple[str, str, bool], ...]  # (date d'effet, current commune, inside)
    unknown_communes: tuple[tuple[str, str], ...]  # (code, département)
    number_width: int
    la_poste_index: int
    la_poste_naf: int
    est_extra_factor: float = 1.0
    poste_seq: tuple[int, ...] = field(default=())

    @classmethod
    def build(
        cls,
        ref: _Reference,
        communes: Sequence[str],
        n: int,
        mois: str,
        etab_per_ul: float,
    ) -> _Context:
        year, month = (int(x) for x in mois.split("-"))
        end_date = date(year, month, 1) - timedelta(days=1)
        epoch = date(1970, 1, 1)
        end_day = (end_date - epoch).days
        day0 = (date(1900, 1, 1) - epoch).days

        # Communes: unique, known, Zipf-like weights (exponent _ZIPF_EXPONENT). Ranks follow
        # the urban tier (municipal arrondissements, then métropoles, CU, CA, CC) and then a
        # stable hash, so that nationally Paris rather than a village gets the most rows.
        unique = tuple(dict.fromkeys(str(c) for c in communes))
        if not unique:
            raise ValueError("communes est vide")
        unknown = [c for c in unique if c not in ref.communes]
        if unknown:
            raise ValueError(f"codes commune inconnus du COG : {unknown[:10]}")
        tiers = {"ME": 1, "CU": 2, "CA": 3, "CC": 4}

        def tier(c: str) -> int:
            _, kind, nature = ref.communes[c]
            return 0 if kind == "ARM" else tiers.get(nature, 5)

        ranked = sorted(unique, key=lambda c: (tier(c), _crc("rank" + c), c))
        rank = {c: i for i, c in enumerate(ranked)}
        w = np.array([1.0 / (rank[c] + 1) ** _ZIPF_EXPONENT for c in unique])
        commune_cum = np.cumsum(w) / w.sum()
        commune_cum[-1] = 1.0
        labels, postals, deps, xs, ys = [], [], [], [], []
        for c in unique:
            libelle, kind, _ = ref.communes[c]
            h = _crc("cp" + c)
            labels.append(_commune_label(c, libelle, kind))
            postals.append(_postal_code(c, h))
            deps.append(c[:2])
            # Pseudo-centroids in Lambert 93 ranges: a département box, then the commune.
            hd, hc = _crc("dep" + c[:2]), _crc("com" + c)
            xs.append(200_000 + hd % 950_000 + (hc % 40_001) - 20_000)
            ys.append(6_150_000 + (hd // 7) % 900_000 + ((hc // 7) % 40_001) - 20_000)

        # Legal categories and profiles: current codes, removed codes (supprime = true), then
        # codes no list knows.
        profile_names = tuple(_PROFILES)
        prof_index = {p: i for i, p in enumerate(profile_names)}
        for code, _, profile in _CATEGORIES:
            if code not in ref.categories:
                raise ValueError(f"catégorie juridique {code} absente de la référence")
            if profile not in prof_index:
                raise ValueError(f"profil inconnu {profile}")
        for code, _, profile, _ in _UNKNOWN_CATEGORIES:
            if code in ref.categories or not re.fullmatch(r"\d{4}", code):
                raise ValueError(f"catégorie juridique {code} : doit être inconnue et bien formée")
            if profile not in prof_index:
                raise ValueError(f"profil inconnu {profile}")
        if set(_REMOVED_CATEGORIES) != set(ref.removed_categories):
            raise ValueError("catégories juridiques supprimées : la référence a changé")
        table = [(c, w, p, None) for c, w, p in _CATEGORIES] + list(_UNKNOWN_CATEGORIES)
        cj_codes = tuple(c for c, _, _, _ in table)
        cj_pos = {c: i for i, c in enumerate(cj_codes)}
        cj_w = np.array([w for _, w, _, _ in table])
        cj_cum = np.cumsum(cj_w) / cj_w.sum()
        cj_cum[np.flatnonzero(cj_w)[-1] :] = 1.0  # zero-weight codes are never drawn
        fam_index = {f: i for i, f in enumerate(FAMILIES)}
        cj_family = np.array([fam_index[ref.ess_families.get(c, "hors_ess")] for c in cj_codes])
        cj_ess_rate = np.array(
            [
                (
                    _ESS_FLAG_RATE.get(ref.ess_families.get(c, ""), 0.0)
                    + (_COMMERCIAL_ESS_RATE if c in _COMMERCIAL_ESS_CJ else 0.0)
                )
                if rate is None
                else rate
                for c, _, _, rate in table
            ]
        )
        cj_rna = np.array([c in _RNA_CJ for c in cj_codes])
        cj_societe = np.array([c.startswith("5") and c not in ref.ess_families for c in cj_codes])
        cj_relabel = np.full(len(cj_codes), -1)
        cj_relabel_rate = np.zeros(len(cj_codes))
        cj_relabel_before = np.zeros(len(cj_codes), dtype=np.int64)
        for drawn, removed, share, before in _RELABEL_REMOVED:
            cj_relabel[cj_pos[drawn]] = cj_pos[removed]
            cj_relabel_rate[cj_pos[drawn]] = share
            cj_relabel_before[cj_pos[drawn]] = (date.fromisoformat(before) - epoch).days
        cj_closed_before = np.full(len(cj_codes), np.iinfo(np.int64).max)
        for code, before in _CLOSED_BEFORE.items():
            cj_closed_before[cj_pos[code]] = (date.fromisoformat(before) - epoch).days

        # NAF codes: one dictionary for all profiles, with the NAF 2025 code of the same stem.
        naf_codes: list[str] = [""]
        naf_pos: dict[str, int] = {"": 0}

        def naf_id(code: str) -> int:
            if code not in ref.naf_rev2:
                raise ValueError(f"code NAF rév. 2 {code} absent de la référence")
            if code not in naf_pos:
                naf_pos[code] = len(naf_codes)
                naf_codes.append(code)
            return naf_pos[code]

        naf_groups, rate_values, alt_groups = [], [], []
        for p in profile_names:
            prof = _PROFILES[p]
            entries = []
            for row in prof.naf:
                entries.append((naf_id(row[0]), float(row[1])))
                rate_values.append(row[2] if len(row) > 2 else prof.employer_rate)
            naf_groups.append(entries)
            alt = prof.etab_naf if prof.etab_naf is not None else prof.naf
            alt_groups.append([(naf_id(row[0]), float(row[1])) for row in alt])
        # NAF 2025 images of each rév. 2 code, as the stock's activitePrincipaleNAF25* carries
        # them: a code with several images (type Multiple) gets one of them per row.
        known_2025 = set(ref.naf_2025)
        naf25_codes: list[str] = [""]
        naf25_groups: list[list[tuple[int, float]]] = [[(0, 1.0)]]
        for code in naf_codes[1:]:
            images = ref.naf_rev2_to_2025.get(code, ())
            if not images or not set(images) <= known_2025:
                raise ValueError(f"code NAF rév. 2 {code} : correspondance NAF 2025 incomplète")
            entries = []
            for image in images:
                if image not in naf25_codes:
                    naf25_codes.append(image)
                entries.append((naf25_codes.index(image), 1.0))
            naf25_groups.append(entries)
        excluded_2025 = {
            image for c in ref.naf_exclusions for image in ref.naf_rev2_to_2025.get(c, ())
        }
        old_cj = []
        for code in naf_codes:
            target = "1900"
            for prefixes, cj_old in _OLD_NATURAL_PERSON_CJ:
                if code.startswith(prefixes):
                    target = cj_old
                    break
            old_cj.append(cj_pos[target])

        rev1_codes: list[str] = []
        rev1_groups = []
        for p in profile_names:
            entries = []
            for code in _PROFILES[p].rev1:
                if code not in rev1_codes:
                    rev1_codes.append(code)
                entries.append((rev1_codes.index(code), 1.0))
            rev1_groups.append(entries)

        templates: list[str] = [""]
        template_groups = []
        for p in profile_names:
            prof = _PROFILES[p]
            if prof.natural_person:
                template_groups.append([(0, 1.0)])
                continue
            entries = []
            for t in prof.templates:
                templates.append(t)
                entries.append((len(templates) - 1, 1.0))
            template_groups.append(entries)

        band_groups = [list(enumerate(ws)) for ws in _BAND_WEIGHTS]

        n_days = end_day - day0 + 1
        dates = np.arange(day0, end_day + 1).astype("datetime64[D]").astype(str)
        date_dict = pa.array([""] + dates.tolist(), pa.string())
        assert len(date_dict) == n_days + 1
        secs = np.arange(86_400)
        time_dict = pa.array(
            [f"{h:02d}:{m:02d}:{s:02d}" for h, m, s in zip(secs // 3600, secs // 60 % 60, secs % 60,
                                                           strict=True)]
        )  # fmt: skip
        tv_w = np.array([w for _, w in _TYPES_VOIE], dtype=np.float64)
        tv_cum = np.cumsum(tv_w) / tv_w.sum()
        tv_cum[-1] = 1.0

        # Number width of denominations: 000123 up to 999999, wider beyond.
        width = max(6, len(str(n)))
        # La Poste takes the slot of the SIREN space containing 35600000 (its SIREN without key).
        la_poste_index = ((35_600_000 - _SIREN_BASE_MIN + 1) * n - 1) // _SIREN_SPAN

        # Extra establishments per unit: Poisson part scaled so that the mean matches.
        weights = {p: 0.0 for p in profile_names}
        for _, wgt, p, _ in table:
            weights[p] += wgt
        total_w = sum(weights.values())
        m_vals = np.arange(1, _TAIL_CAP + 1, dtype=np.float64)
        lam_sum = 0.0
        tail_sum = 0.0
        for p, wgt in weights.items():
            prof = _PROFILES[p]
            tail_mean = float(np.sum((1.0 + m_vals / prof.tail_scale) ** (-_TAIL_SHAPE)))
            tail_sum += wgt / total_w * prof.tail_p * tail_mean
            lam_sum += wgt / total_w * prof.extra_lambda
        factor = (etab_per_ul - 1.0 - tail_sum) / lam_sum
        if factor <= 0:
            raise ValueError(
                f"etablissements_per_unite_legale trop faible (minimum {1.0 + tail_sum:.3f})"
            )

        # Former communes: codes attributed to one of `communes` (kept by establishments closed
        # before the merger), and codes of the same départements attributed elsewhere (only
        # mergers of the SIRENE era, and only on closures before the counts' first year).
        commune_pos = {c: i for i, c in enumerate(unique)}
        own_deps = {c[:2] for c in unique}
        window = (date(year - 10, 1, 1) - epoch).days
        f_code, f_label, f_postal, f_day, f_info = [""], [""], [""], [0], [("", "", False)]
        inside: list[list[tuple[int, float]]] = [[] for _ in unique]
        outside_by_dep: dict[str, list[int]] = {}
        for r in ref.former_communes:
            old_code, current = r["code_commune_ancienne"], r["code_commune_actuelle"]
            if old_code in ref.communes or current not in ref.communes:
                continue
            day = (date.fromisoformat(r["date_effet"]) - epoch).days
            if current in commune_pos:
                inside[commune_pos[current]].append((len(f_code), 1.0))
            elif old_code[:2] in own_deps and r["date_effet"] >= "1973-01-01":
                outside_by_dep.setdefault(old_code[:2], []).append(len(f_code))
                day = min(day, window)
            else:
                continue
            f_code.append(old_code)
            f_label.append(_ascii_upper(r["libelle_ancienne"]))
            f_postal.append(_postal_code(current, _crc("cp" + current)))
            f_day.append(day)
            f_info.append((r["date_effet"], current, current in commune_pos))
        inside_groups = [g or [(0, 1.0)] for g in inside]
        outside_groups = [
            [(e, 1.0) for e in outside_by_dep.get(c[:2], [])] or [(0, 1.0)] for c in unique
        ]
        # Unknown communes: one code per département (up to _UNKNOWN_COMMUNE_CODES), in no
        # list and unlike the defect codes (99x), chosen by a stable hash.
        known_codes = set(ref.communes) | {r["code_commune_ancienne"] for r in ref.former_communes}
        unknown_communes = []
        for dep in sorted(own_deps, key=lambda d: (_crc("inconnue" + d), d))[
            :_UNKNOWN_COMMUNE_CODES
        ]:
            suffixes = sorted(range(900, 990), key=lambda x, d=dep: (_crc(f"{d}{x}"), x))
            code = next(f"{dep}{x}" for x in suffixes if f"{dep}{x}" not in known_codes)
            unknown_communes.append((code, dep))

        profiles = [_PROFILES[p] for p in profile_names]
        return cls(
            ref=ref,
            n=n,
            mois=mois,
            end_date=end_date,
            end_day=end_day,
            day0=day0,
            year=year,
            communes=unique,
            commune_cum=commune_cum,
            commune_code=pa.array(unique, pa.string()),
            commune_label=pa.array(labels, pa.string()),
            commune_postal=pa.array(postals, pa.string()),
            commune_dep=pa.array(deps, pa.string()),
            commune_x=np.array(xs, np.int64),
            commune_y=np.array(ys, np.int64),
            cj_codes=cj_codes,
            cj_cum=cj_cum,
            cj_code=pa.array(cj_codes, pa.string()),
            cj_profile=np.array([prof_index[p] for _, _, p, _ in table]),
            cj_common=cj_w >= 1.0,
            cj_minimum=tuple((cj_pos[c], k) for c, k in _MIN_UNITS.items()),
            cj_unknown=np.array([c not in ref.categories for c in cj_codes]),
            cj_closed_before=cj_closed_before,
            cj_relabel=cj_relabel,
            cj_relabel_rate=cj_relabel_rate,
            cj_relabel_before=cj_relabel_before,
            natural_old_cj=np.array(old_cj),
            cj_1000=cj_pos["1000"],
            cj_1800=cj_pos["1800"],
            cj_family=cj_family,
            cj_ess_rate=cj_ess_rate,
            cj_rna=cj_rna,
            cj_societe=cj_societe,
            la_poste_cj=cj_pos["5510"],
            profile_names=profile_names,
            prof_natural=np.array([p.natural_person for p in profiles]),
            prof_size=np.array([p.size for p in profiles]),
            prof_lambda=np.array([p.extra_lambda for p in profiles]) * factor,
            prof_tail_p=np.array([p.tail_p for p in profiles]),
            prof_tail_scale=np.array([p.tail_scale for p in profiles]),
            prof_secondary_closed=np.array([p.secondary_closed for p in profiles]),
            prof_creation_rate=np.array([p.creation_rate for p in profiles]),
            prof_closure=np.array([p.closure_factor for p in profiles]),
            prof_has_alt=np.array([p.etab_naf is not None for p in profiles]),
            prof_rm=np.array([p in ("personne_physique", "societe") for p in profile_names]),
            naf_codes=tuple(naf_codes),
            naf_dict=pa.array(naf_codes, pa.string()),
            naf25_dict=pa.array(naf25_codes, pa.string()),
            naf25_table=_Grouped.build(naf25_groups),
            naf25_excluded=np.array([c in excluded_2025 for c in naf25_codes]),
            naf_excluded=np.array([c in ref.naf_exclusions for c in naf_codes]),
            naf_table=_Grouped.build(naf_groups),
            naf_entry_rate=np.array(rate_values),
            alt_table=_Grouped.build(alt_groups),
            rev1_table=_Grouped.build(rev1_groups),
            rev1_dict=pa.array(rev1_codes, pa.string()),
            template_table=_Grouped.build(template_groups),
            template_dict=pa.array(templates, pa.string()),
            band_table=_Grouped.build(band_groups),
            tranche_dict=pa.array(("", "NN") + _BANDS, pa.string()),
            date_dict=date_dict,
            time_dict=time_dict,
            prenom_dict=pa.array(_PRENOMS_M + _PRENOMS_F, pa.string()),
            type_voie_cum=tv_cum,
            type_voie_dict=pa.array([t for t, _ in _TYPES_VOIE], pa.string()),
            libelle_voie_dict=pa.array(_LIBELLES_VOIE, pa.string()),
            complement_dict=pa.array(("",) + _COMPLEMENTS, pa.string()),
            rm_dict=pa.array(_RM_SUFFIXES, pa.string()),
            former_code=pa.array(f_code, pa.string()),
            former_label=pa.array(f_label, pa.string()),
            former_postal=pa.array(f_postal, pa.string()),
            former_day=np.array(f_day, dtype=np.int64),
            former_inside=_Grouped.build(inside_groups),
            former_outside=_Grouped.build(outside_groups),
            former_inside_last=np.array([max(f_day[e] for e, _ in g) for g in inside_groups]),
            former_outside_last=np.array([max(f_day[e] for e, _ in g) for g in outside_groups]),
            former_info=tuple(f_info),
            unknown_communes=tuple(unknown_communes),
            number_width=width,
            la_poste_index=la_poste_index,
            la_poste_naf=naf_pos["53.10Z"],
            est_extra_factor=factor,
            poste_seq=(4, 1203, 2318, 4471, 6590),
        )


# ---------------------------------------------------------------------------------------------
# Vectorised string builders
# ---------------------------------------------------------------------------------------------

_LUHN_DOUBLE = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], dtype=np.int32)


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) matrix of the decimal digits of non-negative integers, zero-padded.

    One divmod pass per digit on a 1-D array (uint32 when it fits) is ~10x faster than
    broadcasting divisions over an (n, width) int64 matrix.
    """
    out = np.empty((len(values), width), dtype=np.uint8)
    x = values.astype(np.uint32 if width <= 9 else np.uint64)
    ten = x.dtype.type(10)
    for i in range(width - 1, -1, -1):
        x, r = np.divmod(x, ten)
        out[:, i] = r
    return out


def _from_matrix(m: np.ndarray, keep: np.ndarray | None = None) -> pa.StringArray:
    """StringArray whose i-th value is row i of an ASCII byte matrix (only `keep` bytes)."""
    n, width = m.shape
    if keep is None:
        offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
        data = np.ascontiguousarray(m).ravel()
    else:
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(keep.sum(axis=1), out=offsets[1:])
        data = m[keep]
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def _fixed(values: np.ndarray, width: int) -> pa.StringArray:
    """Zero-padded decimal strings (denomination numbers, NIC sequences...)."""
    return _from_matrix(_digits(values, width) + 48)


def _plain(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Decimal strings without leading zeros; null (written empty) where not `valid`."""
    mask = None if valid is None else ~valid
    return pc.cast(pa.array(values, mask=mask), pa.string())


_DIGIT_DICT = pa.array([str(d) for d in range(10)])


def _decimal1(tenths: np.ndarray, valid: np.ndarray) -> pa.Array:
    """Numbers with one decimal ("652345.1") from integer tenths; null where not `valid`."""
    return pc.binary_join_element_wise(
        _plain(tenths // 10, valid), _take(_DIGIT_DICT, tenths % 10), "."
    )


def _sparse(mask: np.ndarray, build: Callable[[np.ndarray], pa.Array]) -> pa.Array | pa.Scalar:
    """A column filled only where `mask` holds, built from those rows alone (`build(rows)`).

    Rare fields (cedex, enseignes, RNA numbers...) cost a pass over a few rows instead of all.
    """
    rows = np.flatnonzero(mask)
    if rows.size == 0:
        return pa.scalar("")
    values = pa.concat_arrays([pa.array([""]), build(rows).cast(pa.string())])
    idx = np.zeros(len(mask), dtype=np.int32)
    idx[rows] = np.arange(1, rows.size + 1, dtype=np.int32)
    return pc.take(values, pa.array(idx))


def _letters(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    return rng.integers(65, 91, size=(n, width), dtype=np.uint8)


def _take(dictionary: pa.Array, idx: np.ndarray) -> pa.Array:
    return pc.take(dictionary, pa.array(idx.astype(np.int32, copy=False)))


def _labels(codes: np.ndarray, labels: tuple[str, ...]) -> pa.Array:
    """Small code arrays (0, 1, 2...) to their labels ("O"/"P", "A"/"F"...)."""
    return _take(pa.array(labels, pa.string()), codes)


def _where(mask: np.ndarray, value: str | pa.Array, other: pa.Array) -> pa.Array:
    if not mask.any():
        return other
    return pc.if_else(pa.array(mask), value, other)


def _csv_escape(arr: pa.Array) -> pa.Array:
    """Quote the values that need it (comma, quote, line break), as INSEE's files do."""
    needs = pc.match_substring_regex(arr, r'[,"\r\n]')
    if not pc.any(needs).as_py():
        return arr
    quoted = pc.binary_join_element_wise(
        pa.scalar('"'), pc.replace_substring(arr, '"', '""'), pa.scalar('"'), ""
    )
    return pc.if_else(needs, quoted, arr)


def _days_between(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Uniform day in [lo, hi] (hi >= lo)."""
    return lo + np.floor(rng.random(len(lo)) * (hi - lo + 1)).astype(np.int64)


def _days(iso: str) -> int:
    """Days since 1970-01-01 of an ISO date."""
    return (date.fromisoformat(iso) - date(1970, 1, 1)).days


def _years(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


def _luhn_key(m: np.ndarray) -> np.ndarray:
    """Key digit making the payload digit matrix `m` (n, k) Luhn-valid once appended."""
    k = m.shape[1]
    total = np.zeros(len(m), dtype=np.int32)
    for j in range(k):
        total += _LUHN_DOUBLE[m[:, j]] if (k - 1 - j) % 2 == 0 else m[:, j]
    return ((10 - total % 10) % 10).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Chunk generation
# ---------------------------------------------------------------------------------------------


@dataclass
class _View:
    """The few per-row facts the counts, the defects and the tests need, as numpy arrays."""

    n: int
    active: np.ndarray
    p: np.ndarray
    family: np.ndarray
    employer: np.ndarray
    cj: np.ndarray | None = None
    nomenclature: np.ndarray | None = None  # main activity in 0 NAFRev2, 1 NAFRev1, 2 NAF2025
    rev1: np.ndarray | None = None  # NAF rév. 1 code index (-1: none)
    naf25: np.ndarray | None = None  # NAF 2025 code index (0: empty)
    naf_excluded: np.ndarray | None = None  # activity in ess_naf_exclusions.csv (or its image)
    former_commune: np.ndarray | None = None  # former commune entry (0: none)
    unknown_commune: np.ndarray | None = None  # index into ctx.unknown_communes (-1: none)
    siren: np.ndarray | None = None
    siret: np.ndarray | None = None
    commune: np.ndarray | None = None
    excluded: np.ndarray | None = None
    la_poste: np.ndarray | None = None
    creation_year: np.ndarray | None = None
    closure_year: np.ndarray | None = None
    ess_flag: np.ndarray | None = None

    @property
    def drift(self) -> np.ndarray:
        """Rows carrying a code outside today's nomenclatures (never picked for a defect)."""
        assert self.nomenclature is not None
        mask = self.nomenclature != 0
        if self.cj is not None:
            mask = mask | _DRIFT_CJ[self.cj]
        if self.former_commune is not None and self.unknown_commune is not None:
            mask = mask | (self.former_commune > 0) | (self.unknown_commune >= 0)
        return mask


_DRIFT_CJ = np.array(
    [c in _REMOVED_CATEGORIES for c, _, _ in _CATEGORIES] + [True] * len(_UNKNOWN_CATEGORIES)
)
_NOMENCLATURES = ("NAFRev2", "NAFRev1", "NAF2025")


def _plant_minimum(
    ctx: _Context, rng: np.random.Generator, cj: np.ndarray, poste: np.ndarray
) -> None:
    """First chunk: rare codes (`_MIN_UNITS`) get their minimum of units, taken from common ones."""
    taken = np.zeros(len(cj), dtype=bool)
    for idx, units in ctx.cj_minimum:
        have = cj == idx
        taken |= have
        need = units - int(have.sum())
        if need <= 0:
            continue
        pool = np.flatnonzero(ctx.cj_common[cj] & ~poste & ~taken)
        rows = rng.choice(pool, size=min(need, pool.size), replace=False)
        cj[rows] = idx
        taken[rows] = True


def _generate_chunk(
    ctx: _Context, rng: np.random.Generator, start: int, stop: int
) -> tuple[dict[str, Any], dict[str, Any], _View, _View]:
    """Legal units [start, stop) and all their establishments, as columns of strings."""
    n = stop - start
    gidx = np.arange(start, stop, dtype=np.int64)
    end = ctx.end_day

    # --- SIREN: one per slot of the 8-digit space, so unique and sorted, plus the Luhn key.
    lo = _SIREN_BASE_MIN + gidx * _SIREN_SPAN // ctx.n
    hi = _SIREN_BASE_MIN + (gidx + 1) * _SIREN_SPAN // ctx.n
    base = lo + np.floor(rng.random(n) * (hi - lo)).astype(np.int64)
    poste = gidx == ctx.la_poste_index
    base[poste] = 35_600_000
    base_digits = _digits(base, 8)
    siren_digits = np.concatenate([base_digits, _luhn_key(base_digits)[:, None]], axis=1)
    siren_num = base * 10 + siren_digits[:, 8]

    # --- Legal category, profile, family.
    cj = np.minimum(np.searchsorted(ctx.cj_cum, rng.random(n), side="right"), len(ctx.cj_cum) - 1)
    cj[poste] = ctx.la_poste_cj
    first_chunk = start == 0
    if first_chunk:
        _plant_minimum(ctx, rng, cj, poste)
    prof = ctx.cj_profile[cj]
    natural = ctx.prof_natural[prof]

    # --- Creation, closure (older units are more often closed).
    rate = ctx.prof_creation_rate[prof]
    horizon = 85.0
    t_years = -np.log1p(-rng.random(n) * (1.0 - np.exp(-rate * horizon))) / rate
    creation = end - np.floor(t_years * 365.25).astype(np.int64)
    old_marker = (~natural) & (rng.random(n) < 0.003)
    creation[old_marker] = ctx.day0  # "1900-01-01", as for some very old units
    creation = np.maximum(creation, ctx.day0)
    creation[poste] = (date(1991, 1, 1) - date(1970, 1, 1)).days
    age = (end - creation) / 365.25
    closed = rng.random(n) < ctx.prof_closure[prof] * (1.0 - np.exp(-age / 12.0))
    closed[poste] = False
    # Closures lean towards recent years (u ** 0.8), as the stock's yearly closures grow.
    closure = creation + np.ceil((end - creation) * rng.random(n) ** 0.8).astype(np.int64)
    closure = np.clip(closure, creation, end)
    # Categories that ended at a known date: units created and closed before it.
    ended = np.flatnonzero(ctx.cj_closed_before[cj] <= end)
    if ended.size:
        before = ctx.cj_closed_before[cj[ended]] - 1
        back = np.floor(rng.random(ended.size) * 20 * 365.25).astype(np.int64)
        creation[ended] = np.maximum(np.minimum(creation[ended], before - back), ctx.day0)
        closed[ended] = True
        closure[ended] = creation[ended] + np.ceil(
            (before - creation[ended]) * rng.random(ended.size)
        ).astype(np.int64)
    upper = np.where(closed, closure, end)
    active = ~closed

    # --- Diffusion status.
    p_unit = rng.random(n) < np.where(natural, 0.10, 0.015)
    p_unit[poste] = False

    # --- Activity and employment.
    naf_entry = ctx.naf_table.entry(prof, rng.random(n))
    naf = ctx.naf_table.values[naf_entry]
    naf[poste] = ctx.la_poste_naf
    # Headcounts lag: a unit created this year cannot have a declared workforce yet.
    creation_year = _years(creation)
    employer = active & (rng.random(n) < ctx.naf_entry_rate[naf_entry])
    employer &= creation_year < ctx.year
    band = ctx.band_table.sample(ctx.prof_size[prof], rng.random(n))
    band[poste] = len(_BANDS) - 1
    employer[poste] = True
    u = rng.random(n)
    tranche = np.where(
        employer, 2 + band, np.where(active, np.where(u < 0.75, 1, 0), np.where(u < 0.5, 1, 0))
    )
    annee_eff = np.where(rng.random(n) < 0.9, ctx.year - 3, ctx.year - 4)
    annee_eff = np.minimum(np.maximum(annee_eff, creation_year), ctx.year - 1)
    u = rng.random(n)
    employeur_code = np.where(
        employer,
        np.where(u < 0.88, 1, 0),
        np.where(active, np.where(u < 0.85, 2, 0), np.where(u < 0.5, 2, 0)),
    )

    # --- Removed legal categories kept by older units: SASU and SARL unipersonnelles, natural
    # persons' former codes (chosen from their activity).
    u = rng.random(n)
    target = ctx.cj_relabel[cj]
    relabel = (target >= 0) & (creation < ctx.cj_relabel_before[cj]) & (u < ctx.cj_relabel_rate[cj])
    old_pp = (cj == ctx.cj_1000) & (creation < _days(_OLD_NATURAL_PERSON_BEFORE))
    old_pp &= u < _OLD_NATURAL_PERSON_RATE
    old_code = np.where(
        rng.random(n) < _OLD_NATURAL_PERSON_1800, ctx.cj_1800, ctx.natural_old_cj[naf]
    )
    cj = np.where(relabel, target, np.where(old_pp, old_code, cj))

    # --- ESS flag and société à mission.
    ess_o = rng.random(n) < ctx.cj_ess_rate[cj]
    ess_o[poste] = False
    if first_chunk:  # a couple of units of unknown categories flagged ESS
        unknown = np.flatnonzero(ctx.cj_unknown[cj] & ~ess_o)
        flagged = int((ctx.cj_unknown[cj] & ess_o).sum())
        ess_o[unknown[: max(0, _MIN_UNKNOWN_ESS_O - flagged)]] = True
    u = rng.random(n)
    ess_code = np.where(ess_o, 1, np.where(u < 0.75, 2, 0))
    mission = ctx.cj_societe[cj] & (rng.random(n) < 0.001)
    family = ctx.cj_family[cj].copy()
    family[(family == _F_HORS) & ess_o] = _F_COMMERCIAL

    # --- NAF 2025: the image of the activity (active units), and for some the main code itself.
    naf25 = np.zeros(n, dtype=np.int32)
    live = np.flatnonzero(active)
    naf25[live] = ctx.naf25_table.sample(naf[live], rng.random(live.size))
    rate25 = np.where(creation > end - 365, _NAF2025_RATE_NEW, _NAF2025_RATE)
    main25 = active & ~poste & (rng.random(n) < rate25)
    main25 &= ctx.naf_excluded[naf] == ctx.naf25_excluded[naf25]
    rev1 = closed & (closure < _days("2008-01-01"))
    nomenclature = np.where(rev1, 1, np.where(main25, 2, 0)).astype(np.int8)

    # --- Establishments per unit: Poisson part plus a heavy tail (networks of dozens or more).
    extra = rng.poisson(ctx.prof_lambda[prof])
    tail = rng.random(n) < ctx.prof_tail_p[prof]
    lomax = ctx.prof_tail_scale[prof] * (rng.random(n) ** (-1.0 / _TAIL_SHAPE) - 1.0)
    extra = extra + np.where(tail, np.minimum(np.floor(lomax), _TAIL_CAP), 0).astype(np.int64)
    k = 1 + np.minimum(extra, _TAIL_CAP)
    k[poste] = len(ctx.poste_seq)

    ul_view = _View(
        n=n,
        active=active,
        p=p_unit,
        family=family,
        employer=employer,
        cj=cj,
        nomenclature=nomenclature,
        naf25=naf25,
        naf_excluded=ctx.naf_excluded[naf],
        siren=siren_num,
        ess_flag=ess_o,
    )

    etab_cols, etab_view, siege_nic, siege_commune = _generate_establishments(
        ctx,
        rng,
        siren_digits=siren_digits,
        siren_num=siren_num,
        k=k,
        prof=prof,
        natural=natural,
        creation=creation,
        closure=closure,
        closed=closed,
        upper=upper,
        p_unit=p_unit,
        naf=naf,
        employer=employer,
        band=band,
        annee_eff=annee_eff,
        family=family,
        poste=poste,
        naf25=naf25,
        main25=main25,
        first_chunk=first_chunk,
    )

    ul_cols, ul_view.rev1 = _unit_columns(
        ctx,
        rng,
        gidx=gidx,
        siren_digits=siren_digits,
        cj=cj,
        prof=prof,
        natural=natural,
        creation=creation,
        old_marker=old_marker,
        closure=closure,
        closed=closed,
        p_unit=p_unit,
        naf=naf,
        naf25=naf25,
        nomenclature=nomenclature,
        employer=employer,
        band=band,
        tranche=tranche,
        annee_eff=annee_eff,
        employeur_code=employeur_code,
        ess_code=ess_code,
        mission=mission,
        siege_nic=siege_nic,
        siege_commune=siege_commune,
        poste=poste,
    )
    return ul_cols, etab_cols, ul_view, etab_view


def _unit_columns(
    ctx: _Context,
    rng: np.random.Generator,
    *,
    gidx: np.ndarray,
    siren_digits: np.ndarray,
    cj: np.ndarray,
    prof: np.ndarray,
    natural: np.ndarray,
    creation: np.ndarray,
    old_marker: np.ndarray,
    closure: np.ndarray,
    closed: np.ndarray,
    p_unit: np.ndarray,
    naf: np.ndarray,
    naf25: np.ndarray,
    nomenclature: np.ndarray,
    employer: np.ndarray,
    band: np.ndarray,
    tranche: np.ndarray,
    annee_eff: np.ndarray,
    employeur_code: np.ndarray,
    ess_code: np.ndarray,
    mission: np.ndarray,
    siege_nic: pa.Array,
    siege_commune: np.ndarray,
    poste: np.ndarray,
) -> tuple[dict[str, Any], np.ndarray]:
    """The legal units' columns, and the NAF rév. 1 code index of each row (-1: none)."""
    n = len(gidx)
    end = ctx.end_day
    active = ~closed
    d0 = ctx.day0 - 1  # date_dict index = day - d0
    legal = ~natural
    empty = pa.scalar("")

    cols: dict[str, Any] = {}
    cols["siren"] = _from_matrix(siren_digits + 48)
    cols["statutDiffusionUniteLegale"] = _labels(p_unit.astype(np.int8), ("O", "P"))
    purged = closed & (closure < (date(2005, 1, 1) - date(1970, 1, 1)).days)
    purged &= rng.random(n) < 0.5
    cols["unitePurgeeUniteLegale"] = _labels(purged.astype(np.int8), ("", "true"))
    creation_missing = (creation < (date(1975, 1, 1) - date(1970, 1, 1)).days) & ~old_marker
    creation_missing &= rng.random(n) < 0.02
    cols["dateCreationUniteLegale"] = _take(
        ctx.date_dict, np.where(creation_missing, 0, creation - d0)
    )

    # Names: natural persons get FICTIF-XXXXX and first names, legal persons a denomination.
    sexe_f = rng.random(n) < 0.4
    has_sigle = legal & (rng.random(n) < 0.08)
    sigle = _from_matrix(_letters(rng, n, 3), np.repeat(has_sigle[:, None], 3, axis=1))
    cols["sigleUniteLegale"] = _where(p_unit & has_sigle, "[ND]", sigle)
    cols["sexeUniteLegale"] = _labels(np.where(natural, np.where(sexe_f, 2, 1), 0), ("", "M", "F"))
    n_m, n_f = len(_PRENOMS_M), len(_PRENOMS_F)

    def prenom(present: np.ndarray) -> pa.Array:
        idx = np.where(sexe_f, n_m + rng.integers(0, n_f, n), rng.integers(0, n_m, n))
        arr = _take(ctx.prenom_dict, idx)
        arr = _where(~present, empty, arr)
        return _where(p_unit & present, "[ND]", arr)

    has2 = natural & (rng.random(n) < 0.45)
    has3 = has2 & (rng.random(n) < 0.35)
    has4 = has3 & (rng.random(n) < 0.25)
    p1 = prenom(natural)
    cols["prenom1UniteLegale"] = p1
    cols["prenom2UniteLegale"] = prenom(has2)
    cols["prenom3UniteLegale"] = prenom(has3)
    cols["prenom4UniteLegale"] = prenom(has4)
    usuel = natural & (rng.random(n) < 0.85)
    cols["prenomUsuelUniteLegale"] = _where(~usuel, empty, p1)
    pseudo = natural & (rng.random(n) < 0.002)
    cols["pseudonymeUniteLegale"] = _sparse(
        pseudo, lambda r: _where(p_unit[r], "[ND]", pa.array(np.full(r.size, "PSEUDONYME FICTIF")))
    )

    def rna_id(rows: np.ndarray) -> pa.Array:
        tail = _fixed(rng.integers(1_000_000, 4_000_000, rows.size), 7)  # office digit + 6
        return pc.binary_join_element_wise(
            pa.scalar("W"), _take(ctx.commune_dep, siege_commune[rows]), tail, ""
        )

    rna = ctx.cj_rna[cj] & (rng.random(n) < 0.8)
    cols["identifiantAssociationUniteLegale"] = _sparse(rna, rna_id)

    cols["trancheEffectifsUniteLegale"] = _take(ctx.tranche_dict, tranche)
    cols["anneeEffectifsUniteLegale"] = _plain(annee_eff, tranche >= 2)

    debut = np.where(
        closed,
        closure,
        np.where(rng.random(n) < 0.45, creation, _days_between(rng, creation, np.full(n, end))),
    )
    cols["dateDernierTraitementUniteLegale"] = _timestamps(ctx, rng, debut)
    periods = 1 + rng.poisson(1.0, n) + closed
    cols["nombrePeriodesUniteLegale"] = _plain(periods)

    # categorieEntreprise: filled for most active units, from the employer band.
    cat_filled = active & (rng.random(n) < 0.92) & (_years(creation) <= ctx.year - 3)
    u = rng.random(n)
    big = employer & (band >= _BANDS.index("42"))
    mid = employer & (band >= _BANDS.index("31"))
    categorie = np.where(big, np.where(u < 0.6, 3, 2), np.where(mid, np.where(u < 0.5, 2, 1), 1))
    categorie = np.where(cat_filled, categorie, 0)
    cols["categorieEntreprise"] = _labels(categorie, ("", "PME", "ETI", "GE"))
    cols["anneeCategorieEntreprise"] = _plain(np.full(n, ctx.year - 3), cat_filled)
    cols["dateDebut"] = _take(ctx.date_dict, debut - d0)
    cols["etatAdministratifUniteLegale"] = _labels(closed.astype(np.int8), ("A", "C"))

    def fictitious_name(rows: np.ndarray) -> pa.Array:
        name = pc.binary_join_element_wise(
            pa.scalar("FICTIF-"), _from_matrix(_letters(rng, rows.size, 5)), ""
        )
        return _where(p_unit[rows], "[ND]", name)

    cols["nomUniteLegale"] = _sparse(natural, fictitious_name)
    usage = natural & sexe_f & (rng.random(n) < 0.2)
    cols["nomUsageUniteLegale"] = _sparse(usage, fictitious_name)

    def denomination(rows: np.ndarray) -> pa.Array:
        template = ctx.template_table.sample(prof[rows], rng.random(rows.size))
        number = _fixed(gidx[rows] + 1, ctx.number_width)
        text = pc.binary_join_element_wise(_take(ctx.template_dict, template), number, "")
        text = _where(poste[rows], "LA POSTE", text)
        return _csv_escape(_where(p_unit[rows], "[ND]", text))

    def usual_name(rows: np.ndarray) -> pa.Array:
        number = _fixed(gidx[rows] + 1, ctx.number_width)
        text = pc.binary_join_element_wise(pa.scalar("NOM COMMERCIAL FICTIF "), number, "")
        return _where(p_unit[rows], "[ND]", text)

    cols["denominationUniteLegale"] = _sparse(legal, denomination)
    usuelle = legal & (rng.random(n) < 0.03)
    cols["denominationUsuelle1UniteLegale"] = _sparse(usuelle, usual_name)
    cols["denominationUsuelle2UniteLegale"] = empty
    cols["denominationUsuelle3UniteLegale"] = empty
    cols["categorieJuridiqueUniteLegale"] = _take(ctx.cj_code, cj)

    rev1 = nomenclature == 1
    rev1_idx = ctx.rev1_table.sample(prof, rng.random(n))
    naf25_str = _take(ctx.naf25_dict, naf25)
    main = _where(nomenclature == 2, naf25_str, _take(ctx.naf_dict, naf))
    cols["activitePrincipaleUniteLegale"] = _where(rev1, _take(ctx.rev1_dict, rev1_idx), main)
    cols["nomenclatureActivitePrincipaleUniteLegale"] = _labels(nomenclature, _NOMENCLATURES)
    cols["nicSiegeUniteLegale"] = siege_nic
    cols["economieSocialeSolidaireUniteLegale"] = _labels(ess_code, ("", "O", "N"))
    cols["societeMissionUniteLegale"] = _labels(mission.astype(np.int8), ("", "O"))
    cols["caractereEmployeurUniteLegale"] = _labels(employeur_code, ("", "O", "N"))
    cols["activitePrincipaleNAF25UniteLegale"] = naf25_str
    return cols, np.where(rev1, rev1_idx, -1).astype(np.int16)


def _timestamps(ctx: _Context, rng: np.random.Generator, debut: np.ndarray) -> pa.Array:
    """dateDernierTraitement: within the last years, never before the last period's start.

    40 % of the rows share one mass-update day (INSEE reprocesses the whole stock at times).
    """
    n = len(debut)
    end = ctx.end_day
    lo = np.clip(np.maximum(debut, end - 6 * 365), None, end)
    day = _days_between(rng, lo, np.full(n, end))
    mass_day = end - 180
    mass = (rng.random(n) < 0.4) & (debut <= mass_day)
    day = np.where(mass, mass_day, day)
    secs = np.where(mass, rng.integers(5 * 3600, 9 * 3600, n), rng.integers(0, 86_400, n))
    return pc.binary_join_element_wise(
        _take(ctx.date_dict, day - ctx.day0 + 1), _take(ctx.time_dict, secs), "T"
    )


def _generate_establishments(
    ctx: _Context,
    rng: np.random.Generator,
    *,
    siren_digits: np.ndarray,
    siren_num: np.ndarray,
    k: np.ndarray,
    prof: np.ndarray,
    natural: np.ndarray,
    creation: np.ndarray,
    closure: np.ndarray,
    closed: np.ndarray,
    upper: np.ndarray,
    p_unit: np.ndarray,
    naf: np.ndarray,
    employer: np.ndarray,
    band: np.ndarray,
    annee_eff: np.ndarray,
    family: np.ndarray,
    poste: np.ndarray,
    naf25: np.ndarray,
    main25: np.ndarray,
    first_chunk: bool,
) -> tuple[dict[str, Any], _View, pa.Array, np.ndarray]:
    n = len(k)
    end = ctx.end_day
    d0 = ctx.day0 - 1
    m = int(k.sum())
    unit = np.repeat(np.arange(n), k)
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(k[:-1], out=starts[1:])
    j = np.arange(m) - starts[unit]
    kk = k[unit]
    # Natural persons move: their siège is the latest establishment; companies keep the first.
    siege_pos = np.where(natural, k - 1, 0)
    is_siege = j == siege_pos[unit]
    u_closed = closed[unit]

    # NIC: 4-digit sequence with small gaps, then the key making the SIRET Luhn-valid.
    step = 1 + np.where(rng.random(m) < 0.15, rng.integers(1, 4, m), 0)
    csum = np.cumsum(step)
    seq = csum - (csum[starts] - step[starts])[unit]  # <= 4 * (1 + _TAIL_CAP) < 10_000
    siret_digits = np.empty((m, 14), dtype=np.uint8)
    siret_digits[:, :9] = siren_digits[unit]
    siret_digits[:, 9:13] = _digits(seq, 4)
    siret_digits[:, 13] = _luhn_key(siret_digits[:, :13])
    la_poste_rows = np.flatnonzero(poste[unit])
    for r, s in zip(la_poste_rows, ctx.poste_seq if la_poste_rows.size else (), strict=True):
        siret_digits[r, 9:13] = _digits(np.array([s]), 4)[0]
        siret_digits[r, 13] = _luhn_key(siret_digits[r : r + 1, :13])[0]
        if s != ctx.poste_seq[0]:  # the siège keeps a Luhn-valid SIRET
            siret_digits[r, 13] = _la_poste_key(siret_digits[r, :13])
    nic_num = siret_digits[:, 9:].astype(np.int64) @ np.array([10_000, 1_000, 100, 10, 1])
    siret_num = siren_num[unit] * 100_000 + nic_num

    # Dates: establishments are created in order between the unit's creation and its end.
    span = upper[unit] - creation[unit]
    g = np.where(j == 0, 0.0, (j - 1 + rng.random(m)) / np.maximum(kk - 1, 1))
    cre = creation[unit] + np.floor(g * span).astype(np.int64)
    closed_e = u_closed | (~is_siege & (rng.random(m) < ctx.prof_secondary_closed[prof[unit]]))
    closed_e[poste[unit]] = False
    up = upper[unit]
    fermeture = cre + np.ceil((up - cre) * rng.random(m)).astype(np.int64)
    fermeture = np.where(u_closed & is_siege, closure[unit], np.clip(fermeture, cre, up))
    active_e = ~closed_e
    debut = np.where(
        closed_e,
        fermeture,
        np.where(rng.random(m) < 0.55, cre, _days_between(rng, cre, np.full(m, end))),
    )

    # Place: Zipf-like communes, plausible addresses, Lambert 93 pseudo-coordinates.
    commune = np.minimum(
        np.searchsorted(ctx.commune_cum, rng.random(m), side="right"), len(ctx.commune_cum) - 1
    )
    p_e = p_unit[unit]
    poste_e = poste[unit]

    # Closed establishments keep the code of a commune merged after their closure; a few carry
    # a well-formed code that no list knows (first chunk).
    former = np.zeros(m, dtype=np.int32)
    for table, last_day, rate, eligible in (
        (ctx.former_inside, ctx.former_inside_last, _FORMER_COMMUNE_RATE, closed_e),
        # attributed elsewhere, a territory does not read these rows: never a siège (every unit
        # keeps an establishment the territory reads, so the unit is read too), and closed in
        # NAF rév. 2 times (they carry no other drift the territory would then miss)
        (
            ctx.former_outside,
            ctx.former_outside_last,
            _FORMER_COMMUNE_OUTSIDE_RATE,
            ~is_siege & (fermeture >= _days("2008-01-01")),
        ),
    ):
        # only rows closed before the latest merger of a code of their commune are candidates
        eligible = eligible & closed_e & ~poste_e & (former == 0)
        rows = np.flatnonzero(eligible & (fermeture < last_day[commune]))
        entry = table.sample(commune[rows], rng.random(rows.size))
        keep = (fermeture[rows] < ctx.former_day[entry]) & (entry > 0)
        keep &= rng.random(rows.size) < rate
        former[rows[keep]] = entry[keep]
    unknown_commune = np.full(m, -1, dtype=np.int8)
    if first_chunk and ctx.unknown_communes:
        dep_of = np.array([c[:2] for c in ctx.communes])[commune]
        for i, (_, dep) in enumerate(ctx.unknown_communes):
            pool = np.flatnonzero(closed_e & ~poste_e & (former == 0) & (dep_of == dep))
            pool = pool[unknown_commune[pool] < 0]
            rows = rng.choice(pool, size=min(_UNKNOWN_COMMUNE_ROWS, pool.size), replace=False)
            unknown_commune[rows] = i

    # Employment: employer establishments only in active employer units; the siège always.
    emp_e = employer[unit] & active_e & (is_siege | (rng.random(m) < 0.65))
    small = ctx.band_table.sample(np.zeros(m, dtype=np.int64), rng.random(m))
    siege_band = np.where(kk == 1, band[unit], np.maximum(band[unit] - rng.integers(0, 3, m), 0))
    band_e = np.where(is_siege, siege_band, np.minimum(band[unit], small))
    u = rng.random(m)
    tranche_e = np.where(
        emp_e, 2 + band_e, np.where(active_e, np.where(u < 0.75, 1, 0), np.where(u < 0.5, 1, 0))
    )
    u = rng.random(m)
    employeur_e = np.where(emp_e, 1, np.where(active_e | (u < 0.7), 2, 0))

    # Activity: usually the unit's, sometimes another (associations: sometimes excluded codes).
    prof_e = prof[unit]
    other = rng.random(m) < np.where(ctx.prof_has_alt[prof_e], 0.10, 0.06)
    naf_e = np.where(other, ctx.alt_table.sample(prof_e, rng.random(m)), naf[unit])
    naf_e[poste[unit]] = ctx.la_poste_naf
    rev1_e = closed_e & (fermeture < _days("2008-01-01"))
    # NAF 2025: the unit's image when the activity is the unit's; the main code moves with the
    # unit's when the exclusion status is kept; in the first chunk, a few establishments in
    # excluded activities (84.xx, 94.xx) move on their own.
    naf25_e = np.where(active_e, naf25[unit], 0).astype(np.int32)  # active => unit active
    own = np.flatnonzero(active_e & (naf_e != naf[unit]))
    naf25_e[own] = ctx.naf25_table.sample(naf_e[own], rng.random(own.size))
    excluded_e = ctx.naf_excluded[naf_e]
    status_kept = excluded_e == ctx.naf25_excluded[naf25_e]
    main25_e = active_e & main25[unit] & status_kept
    if first_chunk:
        need = _MIN_NAF2025_EXCLUDED - int((main25_e & excluded_e).sum())
        pool = np.flatnonzero(active_e & excluded_e & status_kept & ~main25_e & ~poste_e)
        if need > 0 and pool.size:
            main25_e[rng.choice(pool, size=min(need, pool.size), replace=False)] = True
    nomenclature_e = np.where(rev1_e, 1, np.where(main25_e, 2, 0)).astype(np.int8)

    cols: dict[str, Any] = {}
    empty = pa.scalar("")
    cols["siren"] = _from_matrix(siret_digits[:, :9] + 48)
    cols["nic"] = _from_matrix(siret_digits[:, 9:] + 48)
    cols["siret"] = _from_matrix(siret_digits + 48)
    cols["statutDiffusionEtablissement"] = _labels(p_e.astype(np.int8), ("O", "P"))
    cre_missing = closed_e & (cre < (date(1990, 1, 1) - date(1970, 1, 1)).days)
    cre_missing &= rng.random(m) < 0.05
    cols["dateCreationEtablissement"] = _take(ctx.date_dict, np.where(cre_missing, 0, cre - d0))
    cols["trancheEffectifsEtablissement"] = _take(ctx.tranche_dict, tranche_e)
    cols["anneeEffectifsEtablissement"] = _plain(annee_eff[unit], tranche_e >= 2)
    naf_str = _take(ctx.naf_dict, naf_e)

    def craft_code(rows: np.ndarray) -> pa.Array:  # NAFA-like "4520AB"
        naf_rows = _take(ctx.naf_dict, naf_e[rows])
        return pc.binary_join_element_wise(
            pc.utf8_slice_codeunits(pc.replace_substring(naf_rows, ".", ""), 0, 4),
            _take(ctx.rm_dict, rng.integers(0, len(_RM_SUFFIXES), rows.size)),
            "",
        )

    rm = (~p_e) & ctx.prof_rm[prof_e] & (rng.random(m) < 0.03)
    cols["activitePrincipaleRegistreMetiersEtablissement"] = _sparse(rm, craft_code)
    cols["dateDernierTraitementEtablissement"] = _timestamps(ctx, rng, debut)
    cols["etablissementSiege"] = _labels(is_siege.astype(np.int8), ("false", "true"))
    cols["nombrePeriodesEtablissement"] = _plain(1 + rng.poisson(0.7, m) + closed_e)

    complement = np.where(rng.random(m) < 0.04, rng.integers(1, len(_COMPLEMENTS) + 1, m), 0)
    cols["complementAdresseEtablissement"] = _nd(
        p_e, _csv_escape(_take(ctx.complement_dict, complement))
    )
    has_num = rng.random(m) < 0.8
    numero = 1 + np.minimum(np.floor(rng.exponential(30.0, m)), 398).astype(np.int64)
    cols["numeroVoieEtablissement"] = _nd(p_e, _plain(numero, has_num))
    u = rng.random(m)
    indice = np.where(has_num & (u < 0.03), 1, np.where(has_num & (u < 0.037), 2, 0))
    cols["indiceRepetitionEtablissement"] = _nd(p_e, _labels(indice, ("", "B", "T")))
    cols["dernierNumeroVoieEtablissement"] = empty
    cols["indiceRepetitionDernierNumeroVoieEtablissement"] = empty
    type_voie = np.minimum(
        np.searchsorted(ctx.type_voie_cum, rng.random(m), side="right"), len(_TYPES_VOIE) - 1
    )
    cols["typeVoieEtablissement"] = _nd(p_e, _take(ctx.type_voie_dict, type_voie))
    voie = rng.integers(0, len(_LIBELLES_VOIE), m)
    cols["libelleVoieEtablissement"] = _nd(p_e, _take(ctx.libelle_voie_dict, voie))
    # Dictionaries: the communes, then the former codes, then the unknown codes (code only).
    n_com, n_former = len(ctx.communes), len(ctx.former_code)
    place = np.where(former > 0, n_com + former, commune)
    unknown_idx = n_com + n_former + unknown_commune.astype(np.int64)
    code_idx = np.where(unknown_commune >= 0, unknown_idx, place)
    postal = _take(pa.concat_arrays([ctx.commune_postal, ctx.former_postal]), place)
    cols["codePostalEtablissement"] = postal
    cols["libelleCommuneEtablissement"] = _take(
        pa.concat_arrays([ctx.commune_label, ctx.former_label]), place
    )
    cols["libelleCommuneEtrangerEtablissement"] = empty
    cols["distributionSpecialeEtablissement"] = empty
    unknown_codes = pa.array([c for c, _ in ctx.unknown_communes], pa.string())
    cols["codeCommuneEtablissement"] = _take(
        pa.concat_arrays([ctx.commune_code, ctx.former_code, unknown_codes]), code_idx
    )
    cedex = rng.random(m) < 0.005
    cols["codeCedexEtablissement"] = _sparse(
        cedex,
        lambda r: pc.binary_join_element_wise(
            pc.utf8_slice_codeunits(_take(ctx.commune_postal, commune[r]), 0, 2),
            _fixed(rng.integers(700, 1000, r.size), 3),
            "",
        ),
    )
    cols["libelleCedexEtablissement"] = _sparse(
        cedex,
        lambda r: pc.binary_join_element_wise(
            _take(ctx.commune_label, commune[r]), pa.scalar("CEDEX"), " "
        ),
    )
    cols["codePaysEtrangerEtablissement"] = empty
    cols["libellePaysEtrangerEtablissement"] = empty
    has_ban = active_e & (rng.random(m) < 0.6) & has_num
    cols["identifiantAdresseEtablissement"] = _nd(
        p_e,
        _sparse(
            has_ban,
            lambda r: pc.binary_join_element_wise(  # BAN-like "94081_1234_00012"
                _take(ctx.commune_code, commune[r]),
                _fixed((voie[r] * 37 + 1000) % 10_000, 4),
                _fixed(numero[r], 5),
                "_",
            ),
        ),
    )
    has_xy = rng.random(m) < np.where(active_e, 0.85, 0.4)
    x = (ctx.commune_x[commune] * 10 + np.round(rng.normal(0.0, 8000.0, m))).astype(np.int64)
    y = (ctx.commune_y[commune] * 10 + np.round(rng.normal(0.0, 8000.0, m))).astype(np.int64)
    cols["coordonneeLambertAbscisseEtablissement"] = _nd(p_e, _decimal1(x, has_xy))
    cols["coordonneeLambertOrdonneeEtablissement"] = _nd(p_e, _decimal1(y, has_xy))
    for name in (
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
    ):
        cols[name] = empty
    cols["dateDebut"] = _take(ctx.date_dict, debut - d0)
    cols["etatAdministratifEtablissement"] = _labels(closed_e.astype(np.int8), ("A", "F"))

    def label_with_number(prefix: str) -> Callable[[np.ndarray], pa.Array]:
        def build(rows: np.ndarray) -> pa.Array:
            number = _fixed(rows % 1_000_000 + 1, 6)
            return pc.binary_join_element_wise(pa.scalar(prefix), number, "")

        return build

    enseigne = rng.random(m) < np.where(natural[unit], 0.10, 0.05)
    cols["enseigne1Etablissement"] = _nd(
        p_e, _sparse(enseigne, label_with_number("ENSEIGNE FICTIVE "))
    )
    cols["enseigne2Etablissement"] = empty
    cols["enseigne3Etablissement"] = empty
    usuelle = rng.random(m) < 0.02
    cols["denominationUsuelleEtablissement"] = _nd(
        p_e, _sparse(usuelle, label_with_number("ETABLISSEMENT FICTIF "))
    )
    rev1_idx = ctx.rev1_table.sample(prof_e, rng.random(m))
    naf25_str = _take(ctx.naf25_dict, naf25_e)
    main = _where(main25_e, naf25_str, naf_str)
    cols["activitePrincipaleEtablissement"] = _where(rev1_e, _take(ctx.rev1_dict, rev1_idx), main)
    cols["nomenclatureActivitePrincipaleEtablissement"] = _labels(nomenclature_e, _NOMENCLATURES)
    cols["caractereEmployeurEtablissement"] = _labels(employeur_e, ("", "O", "N"))
    cols["activitePrincipaleNAF25Etablissement"] = naf25_str

    view = _View(
        n=m,
        active=active_e,
        p=p_e,
        family=family[unit],
        employer=emp_e,
        siren=siren_num[unit],
        siret=siret_num,
        commune=commune,
        excluded=excluded_e & ~rev1_e,
        nomenclature=nomenclature_e,
        rev1=np.where(rev1_e, rev1_idx, -1).astype(np.int16),
        naf25=naf25_e,
        naf_excluded=excluded_e,
        former_commune=former,
        unknown_commune=unknown_commune,
        la_poste=poste[unit],
        creation_year=np.where(cre_missing, 0, _years(cre)),
        closure_year=np.where(closed_e, _years(fermeture), 0),
    )
    siege_rows = starts + siege_pos
    siege_nic = _from_matrix(siret_digits[siege_rows, 9:] + 48)
    return cols, view, siege_nic, commune[siege_rows]


def _la_poste_key(payload: np.ndarray) -> int:
    """Last NIC digit for La Poste: digit sum a multiple of 5 while the Luhn key fails."""
    s = int(payload.astype(np.int64).sum())
    good = int(_luhn_key(payload[None, :])[0])
    for d in range(10):
        if (s + d) % 5 == 0 and d != good:
            return d
    raise AssertionError("unreachable: two digits satisfy the sum rule")


def _nd(p: np.ndarray, arr: pa.Array) -> pa.Array:
    """INSEE masks the address and name fields of partially diffusible units with [ND]."""
    return _where(p, "[ND]", arr)


# ---------------------------------------------------------------------------------------------
# CSV lines, defects, sinks
# ---------------------------------------------------------------------------------------------


def _join_lines(cols: dict[str, Any], header: tuple[str, ...]) -> pa.StringArray:
    """One CSV line per row, `\\n`-terminated, in header order (values already escaped)."""
    missing = set(header) - set(cols)
    extra = set(cols) - set(header)
    if missing or extra:
        raise AssertionError(f"columns mismatch: missing {missing}, extra {extra}")
    values: list[Any] = []
    run = 0  # consecutive constant empty columns, merged into one value of commas
    for name in header[:-1]:
        value = cols[name]
        if isinstance(value, pa.Scalar) and value.as_py() == "":
            run += 1
            continue
        if run:
            values.append(pa.scalar("," * (run - 1)))
            run = 0
        values.append(value)
    if run:
        values.append(pa.scalar("," * (run - 1)))
    values.append(
        pc.binary_join_element_wise(cols[header[-1]], pa.scalar("\n"), "", null_handling="replace")
    )
    return pc.binary_join_element_wise(*values, ",", null_handling="replace")


def _line_bytes(lines: pa.StringArray) -> memoryview:
    """The concatenated text of all lines, without copying."""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    lo = int(offsets[lines.offset])
    hi = int(offsets[lines.offset + len(lines)])
    return memoryview(lines.buffers()[2])[lo:hi]


def _count_lines(parts: list[Any]) -> int:
    """Line count of the (chunk 0, demo-sized) buffers that carry injected defects."""
    return sum(bytes(p).count(b"\n") for p in parts)


def _spliced(lines: pa.StringArray, replacements: dict[int, str]) -> list[Any]:
    """Line buffers with some lines replaced (a replacement may hold several lines)."""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[
        lines.offset : lines.offset + len(lines) + 1
    ]
    data = memoryview(lines.buffers()[2])
    parts: list[Any] = []
    pos = int(offsets[0])
    for row in sorted(replacements):
        parts.append(data[pos : int(offsets[row])])
        parts.append(replacements[row].encode())
        pos = int(offsets[row + 1])
    parts.append(data[pos : int(offsets[-1])])
    return parts


def _pick_rows(
    rng: np.random.Generator, lines: pa.StringArray, candidates: np.ndarray, count: int
) -> list[int]:
    """Distinct rows among `candidates` whose lines need no CSV quoting (safe to split)."""
    chosen: list[int] = []
    order = rng.permutation(candidates)
    for row in order:
        if '"' not in lines[int(row)].as_py():
            chosen.append(int(row))
            if len(chosen) == count:
                break
    if len(chosen) < count:
        raise ValueError("pas assez de lignes pour injecter les défauts")
    return chosen


def _inject_ul_defects(
    lines: pa.StringArray, view: _View, rng: np.random.Generator
) -> tuple[list[Any], list[dict[str, Any]]]:
    """One legal unit whose SIREN key is wrong (a typo as seen in real extracts)."""
    assert view.cj is not None and view.siren is not None
    candidates = np.flatnonzero((view.siren != int(LA_POSTE_SIREN)) & ~view.drift)
    (row,) = _pick_rows(rng, lines, candidates, 1)
    fields = lines[row].as_py().rstrip("\n").split(",")
    good = fields[0]
    bad = good[:8] + str((int(good[8]) + 3) % 10)
    fields[0] = bad
    found = [
        {
            "file": "unites_legales",
            "kind": "siren_luhn_invalide",
            "line": row + 2,
            "column": "siren",
            "siren": bad,
            "value": bad,
            "original": good,
            "detail": "clé de Luhn fausse",
        }
    ]
    return _spliced(lines, {row: ",".join(fields) + "\n"}), found


_ETAB_INDEX = {name: i for i, name in enumerate(ETABLISSEMENT_V3_11_NAF25)}


def _inject_etab_defects(
    lines: pa.StringArray, view: _View, ctx: _Context, rng: np.random.Generator
) -> tuple[list[Any], list[dict[str, Any]]]:
    """Malformed establishment rows, each listed with its physical line number (1 = header)."""
    assert view.la_poste is not None
    candidates = np.flatnonzero(view.active & ~view.p & ~view.la_poste & ~view.drift)
    if len(candidates) < 8:
        candidates = np.flatnonzero(~view.la_poste & ~view.drift)
    rows = _pick_rows(rng, lines, candidates, 8)
    kinds = (
        "siret_luhn_invalide",
        "siret_different_siren_nic",
        "commune_mal_formee",
        "date_impossible",
        "tranche_mal_formee",
        "siret_duplique",
        "colonne_en_trop",
        "colonnes_manquantes",
    )
    replacements: dict[int, str] = {}
    found: list[dict[str, Any]] = []
    for kind, row in zip(kinds, rows, strict=True):
        fields = lines[row].as_py().rstrip("\n").split(",")
        siret = fields[_ETAB_INDEX["siret"]]
        entry: dict[str, Any] = {"file": "etablissements", "kind": kind, "row": row}
        if kind == "siret_luhn_invalide":
            bad = siret[:13] + str((int(siret[13]) + 1) % 10)
            fields[_ETAB_INDEX["siret"]] = bad
            fields[_ETAB_INDEX["nic"]] = bad[9:]
            entry.update(column="siret", value=bad, original=siret, detail="clé de Luhn fausse")
            siret = bad
        elif kind == "siret_different_siren_nic":
            nic = fields[_ETAB_INDEX["nic"]]
            other = f"{(int(nic[:4]) + 5000) % 10_000:04d}"
            payload = np.array([int(c) for c in siret[:9] + other], dtype=np.uint8)
            new_nic = other + str(int(_luhn_key(payload[None, :])[0]))
            fields[_ETAB_INDEX["nic"]] = new_nic
            entry.update(column="nic", value=new_nic, original=nic, detail="siret ≠ siren + nic")
        elif kind == "commune_mal_formee":
            # a well-formed unknown code is kept (nomenclature drift): only a code that cannot
            # be one is quarantined
            code = fields[_ETAB_INDEX["codeCommuneEtablissement"]]
            bad = code[:2] + "X" + code[3:]
            fields[_ETAB_INDEX["codeCommuneEtablissement"]] = bad
            entry.update(
                column="codeCommuneEtablissement", value=bad, original=code, detail="mal formé"
            )
        elif kind == "date_impossible":
            col = "dateCreationEtablissement"
            entry.update(column=col, value="2023-02-30", original=fields[_ETAB_INDEX[col]])
            entry["detail"] = "date impossible"
            fields[_ETAB_INDEX[col]] = "2023-02-30"
        elif kind == "tranche_mal_formee":
            col = "trancheEffectifsEtablissement"
            entry.update(column=col, value="9", original=fields[_ETAB_INDEX[col]])
            entry["detail"] = "code de tranche mal formé"
            fields[_ETAB_INDEX[col]] = "9"
        elif kind == "siret_duplique":
            entry.update(column="siret", value=siret, original=None)
            entry["detail"] = "ligne répétée à l'identique (la ligne précédente)"
        elif kind == "colonne_en_trop":
            fields.append("COLONNE EN TROP")
            entry.update(column=None, value=None, original=None)
            entry["detail"] = f"{len(fields)} champs au lieu de 54"
        elif kind == "colonnes_manquantes":
            fields = fields[:44]
            entry.update(column=None, value=None, original=None)
            entry["detail"] = f"{len(fields)} champs au lieu de 54"
        entry["siret"] = siret
        entry["siren"] = siret[:9]
        text = ",".join(fields) + "\n"
        if kind == "siret_duplique":
            text = text + text
        replacements[row] = text
        found.append(entry)
    # Physical line numbers: header is line 1; the duplicate adds one line after its row.
    dup_row = next(e["row"] for e in found if e["kind"] == "siret_duplique")
    for e in found:
        row = e.pop("row")
        e["line"] = row + 2 + (1 if row > dup_row or e["kind"] == "siret_duplique" else 0)
    found.sort(key=lambda e: e["line"])
    return _spliced(lines, replacements), found


_SLICE_ROWS = 250_000
_MAX_PENDING_BYTES = 192 * 1024 * 1024


def _write_slices(sink: _Sink, cols: dict[str, Any], n: int, header: tuple[str, ...]) -> None:
    for lo in range(0, n, _SLICE_ROWS):
        length = min(_SLICE_ROWS, n - lo)
        part = {k: v if isinstance(v, pa.Scalar) else v.slice(lo, length) for k, v in cols.items()}
        lines = _join_lines(part, header)
        sink.write([_line_bytes(lines)], len(lines))


class _Sink:
    """One output file, written by a background thread so deflate overlaps generation.

    zlib and hashlib release the GIL on large buffers, so on 2 cores the compression of a chunk
    runs while the next one is generated. The text waiting to be written is capped in bytes
    (`_MAX_PENDING_BYTES`): the producer blocks beyond it, which bounds memory.
    """

    def __init__(
        self, path: Path, member: str | None, date_time: tuple[int, ...], compresslevel: int
    ) -> None:
        self.path = path
        self.lines = 0
        self._hash = hashlib.sha256()
        self._queue: queue.Queue[tuple[list[Any], int] | None] = queue.Queue()
        self._pending = 0
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._zip: zipfile.ZipFile | None = None
        self._fh: BinaryIO
        if member is None:
            self._fh = path.open("wb")
        else:
            self._zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED)
            info = zipfile.ZipInfo(member, date_time=date_time)  # type: ignore[arg-type]
            info.compress_type = zipfile.ZIP_DEFLATED
            info._compresslevel = compresslevel  # type: ignore[attr-defined]
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.create_system = 3
            self._fh = self._zip.open(info, "w", force_zip64=True)  # type: ignore[assignment]
        self._thread = threading.Thread(target=self._run, name=f"sink-{path.name}", daemon=True)
        self._thread.start()

    def __enter__(self) -> _Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            buffers, size = item
            del item
            try:
                if self._error is None:  # after an error, keep draining: never block the producer
                    for buf in buffers:
                        self._hash.update(buf)
                        self._fh.write(buf)
            except BaseException as exc:  # re-raised in the producer thread
                self._error = exc
            finally:
                del buffers
                with self._cond:
                    self._pending -= size
                    self._cond.notify_all()

    def write(self, buffers: list[Any], n_lines: int) -> None:
        if self._error is not None:
            raise self._error
        self.lines += n_lines
        size = sum(memoryview(b).nbytes for b in buffers)
        with self._cond:
            while self._pending and self._pending + size > _MAX_PENDING_BYTES:
                self._cond.wait()
            self._pending += size
        self._queue.put((buffers, size))

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._fh.close()
        if self._zip is not None:
            self._zip.close()
        if self._error is not None:
            raise self._error


# ---------------------------------------------------------------------------------------------
# True counts
# ---------------------------------------------------------------------------------------------


class _Counts:
    """Accumulates, chunk by chunk, the truth a pipeline's outputs can be compared with."""

    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx
        nf = len(FAMILIES)
        self.ul = {
            "rows": 0,
            "active": 0,
            "statut_diffusion_p": 0,
            "ess_flag_o": 0,
            "employer_active": 0,
        }
        self.ul_fam = np.zeros((nf, 4), dtype=np.int64)  # total, active, employer, P
        self.ul_cj = np.zeros(len(ctx.cj_codes), dtype=np.int64)
        self.ul_cj_ess = np.zeros(len(ctx.cj_codes), dtype=np.int64)
        # Drift: per file, NAF 2025 main codes, NAF rév. 1 codes, and for establishments the
        # former and unknown commune codes.
        n25, n1 = len(ctx.naf25_dict), len(ctx.rev1_dict)
        self.naf2025 = {k: np.zeros(n25, dtype=np.int64) for k in ("ul", "et")}
        self.naf2025_excluded = {"ul": 0, "et": 0}
        self.rev1 = {k: np.zeros(n1, dtype=np.int64) for k in ("ul", "et")}
        self.former = np.zeros(len(ctx.former_code), dtype=np.int64)
        self.unknown_commune = np.zeros(len(ctx.unknown_communes), dtype=np.int64)
        self.et = {
            "rows": 0,
            "active": 0,
            "statut_diffusion_p": 0,
            "employer_active": 0,
            "la_poste": 0,
        }
        self.et_fam = np.zeros((nf, 5), dtype=np.int64)
        self.years = np.arange(ctx.year - 10, ctx.year + 1)
        self.et_created = np.zeros(len(self.years), dtype=np.int64)
        self.et_closed = np.zeros(len(self.years), dtype=np.int64)
        self.communes = np.zeros(len(ctx.communes), dtype=np.int64)

    def add(self, ul: _View, et: _View) -> None:
        nf = len(FAMILIES)
        assert ul.cj is not None and ul.ess_flag is not None
        self.ul["rows"] += ul.n
        self.ul["active"] += int(ul.active.sum())
        self.ul["statut_diffusion_p"] += int(ul.p.sum())
        self.ul["ess_flag_o"] += int(ul.ess_flag.sum())
        self.ul["employer_active"] += int(ul.employer.sum())
        for col, mask in enumerate((None, ul.active, ul.employer, ul.p)):
            w = None if mask is None else mask.astype(np.int64)
            self.ul_fam[:, col] += np.bincount(ul.family, weights=w, minlength=nf).astype(np.int64)
        ncj = len(self.ctx.cj_codes)
        self.ul_cj += np.bincount(ul.cj, minlength=ncj)
        self.ul_cj_ess += np.bincount(ul.cj[ul.ess_flag], minlength=ncj)
        for key, view in (("ul", ul), ("et", et)):
            assert view.nomenclature is not None and view.naf25 is not None
            assert view.rev1 is not None and view.naf_excluded is not None
            main25 = view.nomenclature == 2
            self.naf2025[key] += np.bincount(view.naf25[main25], minlength=len(self.naf2025[key]))
            self.naf2025_excluded[key] += int((main25 & view.naf_excluded).sum())
            rev1 = view.rev1[view.rev1 >= 0]
            self.rev1[key] += np.bincount(rev1, minlength=len(self.rev1[key]))
        assert et.former_commune is not None and et.unknown_commune is not None
        self.former += np.bincount(et.former_commune, minlength=len(self.former))
        unknown = et.unknown_commune[et.unknown_commune >= 0]
        self.unknown_commune += np.bincount(unknown, minlength=len(self.unknown_commune))

        assert et.excluded is not None and et.commune is not None and et.la_poste is not None
        assert et.creation_year is not None and et.closure_year is not None
        self.et["rows"] += et.n
        self.et["active"] += int(et.active.sum())
        self.et["statut_diffusion_p"] += int(et.p.sum())
        self.et["employer_active"] += int(et.employer.sum())
        self.et["la_poste"] += int(et.la_poste.sum())
        inside = et.employer & ~et.excluded
        for col, mask in enumerate((None, et.active, et.employer, inside, et.active & et.p)):
            w = None if mask is None else mask.astype(np.int64)
            self.et_fam[:, col] += np.bincount(et.family, weights=w, minlength=nf).astype(np.int64)
        y0 = int(self.years[0])
        for arr, target in ((et.creation_year, self.et_created), (et.closure_year, self.et_closed)):
            sel = arr[arr >= y0] - y0
            target += np.bincount(sel, minlength=len(self.years))[: len(self.years)]
        self.communes += np.bincount(et.commune, weights=et.active.astype(np.int64),
                                     minlength=len(self.communes)).astype(np.int64)  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        ess = [i for i, f in enumerate(FAMILIES) if f != "hors_ess"]
        cj_codes = self.ctx.cj_codes
        return {
            "note": (
                "Comptes des entités générées, avant injection des défauts (voir 'defects'). "
                "Établissement ESS = famille ESS de la catégorie juridique ou indicateur "
                "economieSocialeSolidaireUniteLegale = O (societe_commerciale_ess) ; "
                "'active_employer_outside_naf_exclusions' retire les codes APE de "
                "ess_naf_exclusions.csv (tous, 94.12Z compris)."
            ),
            "unites_legales": {
                **self.ul,
                "by_famille": {
                    f: {
                        "total": int(self.ul_fam[i, 0]),
                        "active": int(self.ul_fam[i, 1]),
                        "employer_active": int(self.ul_fam[i, 2]),
                        "statut_diffusion_p": int(self.ul_fam[i, 3]),
                    }
                    for i, f in enumerate(FAMILIES)
                },
                "by_categorie_juridique": {
                    c: int(v) for c, v in zip(cj_codes, self.ul_cj, strict=True) if v
                },
            },
            "etablissements": {
                **self.et,
                "by_famille": {
                    f: {
                        "total": int(self.et_fam[i, 0]),
                        "active": int(self.et_fam[i, 1]),
                        "employer_active": int(self.et_fam[i, 2]),
                        "active_employer_outside_naf_exclusions": int(self.et_fam[i, 3]),
                        "active_statut_diffusion_p": int(self.et_fam[i, 4]),
                    }
                    for i, f in enumerate(FAMILIES)
                },
                "ess_active": int(self.et_fam[ess, 1].sum()),
                "ess_employer_active": int(self.et_fam[ess, 2].sum()),
                "ess_employer_active_outside_naf_exclusions": int(self.et_fam[ess, 3].sum()),
                "created_by_year": {
                    str(y): int(v) for y, v in zip(self.years, self.et_created, strict=True)
                },
                "closed_by_year": {
                    str(y): int(v) for y, v in zip(self.years, self.et_closed, strict=True)
                },
                "active_by_commune": {
                    c: int(v) for c, v in zip(self.ctx.communes, self.communes, strict=True)
                },
            },
        }

    def drift(self) -> dict[str, Any]:
        """What was planted outside today's nomenclatures, as the drift table should count it."""
        ctx = self.ctx
        removed = {
            c: int(self.ul_cj[i])
            for i, c in enumerate(ctx.cj_codes)
            if c in _REMOVED_CATEGORIES and self.ul_cj[i]
        }
        unknown = {
            c: {"rows": int(self.ul_cj[i]), "ess_o": int(self.ul_cj_ess[i])}
            for i, c in enumerate(ctx.cj_codes)
            if ctx.cj_unknown[i] and self.ul_cj[i]
        }

        def by_code(counts: np.ndarray, names: pa.Array) -> dict[str, int]:
            return {names[i].as_py(): int(v) for i, v in enumerate(counts) if v}

        naf2025 = {
            file: {
                "statut": None,
                "column": f"activitePrincipale{suffix}",
                "rows": int(self.naf2025[key].sum()),
                "rows_in_ess_naf_exclusions": self.naf2025_excluded[key],
                "by_code": by_code(self.naf2025[key], ctx.naf25_dict),
            }
            for file, key, suffix in (
                ("unites_legales", "ul", "UniteLegale"),
                ("etablissements", "et", "Etablissement"),
            )
        }
        rev1 = {
            file: {
                "statut": "nomenclature_ancienne",
                "column": f"activitePrincipale{suffix}",
                "rows": int(self.rev1[key].sum()),
                "by_code": by_code(self.rev1[key], ctx.rev1_dict),
            }
            for file, key, suffix in (
                ("unites_legales", "ul", "UniteLegale"),
                ("etablissements", "et", "Etablissement"),
            )
        }
        former = {}
        for i in np.argsort(np.array(ctx.former_code.to_pylist()), kind="stable"):
            if self.former[i] and i > 0:
                effet, current, inside = ctx.former_info[i]
                former[ctx.former_code[i].as_py()] = {
                    "rows": int(self.former[i]),
                    "code_commune_actuelle": current,
                    "date_effet": effet,
                    "dans_territoire": inside,
                }
        inside = sum(v["rows"] for v in former.values() if v["dans_territoire"])
        return {
            "note": (
                "Codes hors des nomenclatures du jour plantés dans les fichiers, comptés sur les "
                "lignes écrites (aucun défaut n'est injecté sur ces lignes). 'statut' : le statut "
                "de clean.codes_hors_nomenclature attendu (null : code connu, pas une dérive). "
                "Catégories juridiques : lignes du fichier des unités légales ; 'ess_o' = "
                "indicateur economieSocialeSolidaireUniteLegale = O (comptées en "
                "societe_commerciale_ess dans counts.by_famille). NAF : activité principale déjà "
                "en NAF 2025 (même activité, même statut d'exclusion ESS) ou encore en NAF rév. 1 "
                "(unités et établissements fermés avant 2008). Communes : établissements fermés "
                "seulement ; 'dans_territoire' = la commune actuelle est une commune demandée ; "
                "les autres (établissements secondaires, commune d'un même département) ne sont "
                "pas lus pour le territoire mais figurent dans counts.etablissements. Les défauts "
                "'commune_mal_formee' et 'tranche_mal_formee' (voir 'defects') sont mal formés : "
                "ils vont en quarantaine, pas dans la table des codes hors nomenclature."
            ),
            "categories_juridiques_supprimees": {
                "statut": "supprime",
                "column": "categorieJuridiqueUniteLegale",
                "rows": sum(removed.values()),
                "by_code": removed,
            },
            "categories_juridiques_inconnues": {
                "statut": "inconnu",
                "column": "categorieJuridiqueUniteLegale",
                "rows": sum(v["rows"] for v in unknown.values()),
                "by_code": unknown,
            },
            "activite_naf2025": naf2025,
            "activite_nafrev1": rev1,
            "communes_anciennes": {
                "statut": "commune_ancienne",
                "column": "codeCommuneEtablissement",
                "rows": int(self.former[1:].sum()),
                "rows_dans_territoire": inside,
                "rows_hors_territoire": int(self.former[1:].sum()) - inside,
                "by_code": former,
            },
            "communes_inconnues": {
                "statut": "inconnu",
                "column": "codeCommuneEtablissement",
                "rows": int(self.unknown_commune.sum()),
                "by_code": {
                    c: int(v)
                    for (c, _), v in zip(ctx.unknown_communes, self.unknown_commune, strict=True)
                    if v
                },
            },
        }
