"""Deterministic synthetic questionnaire answers and network member lists, with their truth.

Everything written here is SYNTHETIC: respondents, e-mails, phone numbers and structures are
invented, and the structures are drawn from the synthetic SIRENE stock of
`observatoire.demo.synthetic`. The generator exists because the readers of the inbox
(`questionnaire.py`, `reseaux.py`) and the linker (`linkage.py`) can only be checked against
files whose truth is known: for every answer and member, the SIRET it really belongs to and the
defect it carries. The files reproduce what a data team actually receives (see
`docs/sources_externes.md`): a LimeSurvey export in UTF-8 with BOM and `;`, every field quoted, a
multi-line answer; the ASP's list of SIAE as Excel writes it (Windows-1252, `;`); a network's JSON
where most members have no SIRET. Identifiers and names carry the defects seen in real files
(spaces, wrong keys, SIREN only, name variants, duplicates, closed or unknown structures).

Output depends only on the arguments (the SIRENE stock included): two runs give byte-identical
files. The truth (`source,cle_source,ligne,siret_attendu,cas`) is written outside the inbox, with
a JSON manifest beside it that counts records per file and per defect case.

The modules, each importing only those above it: `spelling.py` (names, addresses, identifiers
and CSV records as the files' authors write them), `stock.py` (the stock reduced to what the
sources need, and what a source drawing from it holds), `wave.py` (the questionnaire wave),
`networks.py` (the two network lists), `generate.py` (`generate_sources`, exported here with
what callers use). Names with a leading underscore are the package's own.
"""

from observatoire.demo.common import DEFAULT_MODELES_DIR
from observatoire.demo.synthetic_sources.generate import (
    EXPORT_NAME,
    GENERATOR_VERSION,
    RESSOURCERIES,
    SIAE,
    TRUTH_HEADER,
    VAGUE,
    SourcesManifest,
    generate_sources,
)

__all__ = [
    "DEFAULT_MODELES_DIR",
    "EXPORT_NAME",
    "GENERATOR_VERSION",
    "RESSOURCERIES",
    "SIAE",
    "TRUTH_HEADER",
    "VAGUE",
    "SourcesManifest",
    "generate_sources",
]
