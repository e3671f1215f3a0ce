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

The modules, in the order a stock is made (each imports only those above it):

* `tables.py`: the distributions (weights, codes, rates) every draw follows;
* `context.py`: the reference files and the sampling tables all chunks share;
* `arrays.py`: vectorised builders of string columns;
* `truth.py`: the per-row facts of a chunk and the manifest's true counts;
* `establishments.py`, `units.py`: one chunk of legal units and their establishments;
* `writers.py`: CSV lines and the background sinks that compress them;
* `defects.py`: the malformed rows injected into the first chunk;
* `generate.py`: `generate_sirene`, the entry point, exported here with what callers use.

Names with a leading underscore are the package's own: its modules share them, callers do not.
"""

from observatoire.demo.common import DEFAULT_REFERENCE_DIR, ETABLISSEMENTS_CSV, UNITES_LEGALES_CSV
from observatoire.demo.synthetic.generate import (
    GENERATOR_VERSION,
    MANIFEST_NAME,
    MAX_CHUNK_ROWS,
    SyntheticSirene,
    all_communes,
    generate_sirene,
    la_poste_siret_valid,
)

__all__ = [
    "DEFAULT_REFERENCE_DIR",
    "ETABLISSEMENTS_CSV",
    "GENERATOR_VERSION",
    "MANIFEST_NAME",
    "MAX_CHUNK_ROWS",
    "UNITES_LEGALES_CSV",
    "SyntheticSirene",
    "all_communes",
    "generate_sirene",
    "la_poste_siret_valid",
]
