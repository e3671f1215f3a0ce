"""Questionnaire waves: exports of every form tool, read into raw, cleaned without personal data."""

from __future__ import annotations

import csv
import datetime as dt
import http.server
import io
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import duckdb
import polars as pl
import pytest

from observatoire.cleaning import questionnaire as qc
from observatoire.core import warehouse
from observatoire.sources import questionnaire as q
from observatoire.sources.reference import load_reference_table

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "data" / "reference"

EMAIL = "camille.durand@example.org"
PHONE = "06 12 34 56 78"
PERSON = "Camille Durand"

HEADER = [
    "Date de soumission",
    "Numéro SIRET",
    "Nom de votre structure",
    "Code postal",
    "Commune",
    "Vos nom et prénom",
    "Courriel",
    "Téléphone",
    "Avez-vous un besoin de locaux ?",
    "Quels sont vos besoins prioritaires ?",
    "Combien de salariés ?",
    "Autre chose à nous dire ?",
]

MAPPING = """\
[vague]
titre = "Mieux vous connaître pour mieux répondre à vos besoins"
date_debut = "2026-03-01"
date_fin = "2026-05-31"
outil = "{outil}"
{extra}

[identification]
horodatage = "Date de soumission"
siret = "Numéro SIRET"
nom = "Nom de votre structure"
code_postal = "Code postal"
commune = "Commune"
donnees_personnelles = ["Vos nom et prénom", "Courriel", "Téléphone"]

[[questions]]
code = "besoin_locaux"
colonne = "Avez-vous un besoin de locaux ?"
type = "choix_unique"
besoin = "locaux"
cite_si = ["Oui"]

[[questions]]
code = "besoins_prioritaires"
colonne = "Quels sont vos besoins prioritaires ?"
type = "choix_multiple"
separateur = "{multi_sep}"
options = {{ "Trouver des locaux" = "locaux", "Recruter" = "recrutement", \
"Financer un projet" = "financement", "Se former, monter en compétences" = "formation", \
"Autre" = "" }}

[[questions]]
code = "nb_salaries"
colonne = "Combien de salariés ?"
type = "nombre"

[[questions]]
code = "commentaire"
colonne = "Autre chose à nous dire ?"
type = "texte"
"""


def mapping_text(outil: str = "limesurvey", extra: str = "", multi_sep: str = ";") -> str:
    return MAPPING.format(outil=outil, extra=extra, multi_sep=multi_sep)


def answer(**changes: str) -> list[str]:
    """One answer in HEADER order; keyword names are the column's first word, lower-cased."""
    row = {
        "Date de soumission": "2026-03-14 10:22:31",
        "Numéro SIRET": "123 456 789 00012",
        "Nom de votre structure": "Ressourcerie Créteil ï",
        "Code postal": "94000",
        "Commune": "Créteil",
        "Vos nom et prénom": PERSON,
        "Courriel": EMAIL,
        "Téléphone": PHONE,
        "Avez-vous un besoin de locaux ?": "Oui",
        "Quels sont vos besoins prioritaires ?": "Trouver des locaux;Recruter",
        "Combien de salariés ?": "12",
        "Autre chose à nous dire ?": "Merci !",
    }
    for key, value in changes.items():
        column = next(c for c in HEADER if c.lower().replace(" ", "_").startswith(key))
        row[column] = value
    return [row[c] for c in HEADER]


def csv_bytes(
    rows: list[list[str]], *, sep: str = ",", encoding: str = "utf-8", header: list[str] = HEADER
) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=sep, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def write_wave(
    inbox: Path,
    vague: str,
    content: bytes | None,
    *,
    mapping: str | None = None,
    name: str = "export.csv",
) -> Path:
    folder = inbox / "questionnaires" / vague
    folder.mkdir(parents=True, exist_ok=True)
    (folder / q.MAPPING_FILE).write_text(mapping or mapping_text(), encoding="utf-8")
    if content is not None:
        (folder / name).write_bytes(content)
    return folder


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with warehouse.connect(tmp_path / "warehouse" / "obs.duckdb") as connection:
        load_reference_table(connection, "communes", REFERENCE)
        yield connection


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    return tmp_path / "inbox"


def run(
    con: duckdb.DuckDBPyConnection, folder: Path, *, max_reject_rate: float = 0.5
) -> tuple[q.WaveIngest, qc.WaveClean]:
    ingest = q.ingest_wave(
        con, folder, download_dir=folder.parent.parent / "dl", max_reject_rate=max_reject_rate
    )
    clean = qc.clean_wave(con, ingest.vague, q.load_mapping(folder / q.MAPPING_FILE))
    return ingest, clean


def rows(con: duckdb.DuckDBPyConnection, sql: str, *params: object) -> list[tuple]:
    return con.execute(sql, list(params)).fetchall()


# --------------------------------------------------------------------------------------------
# Reading exports


@pytest.mark.parametrize("sep", [",", ";", "\t"], ids=["virgule", "point-virgule", "tabulation"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_encodings_and_separators(con, inbox, encoding, sep):
    data = csv_bytes(
        [
            answer(),
            answer(
                nom="Régie de quartier, Vitry",
                code="94400",
                commune="Vitry-sur-Seine",
                autre="Besoin d'un « local » ; voilà",
            ),
        ],
        sep=sep,
        encoding=encoding,
    )
    ingest, clean = run(con, write_wave(inbox, "vague-2026", data))
    assert (ingest.encodage, ingest.separateur) == (encoding, sep)
    assert (ingest.lignes_lues, ingest.lignes_mal_formees, clean.nb_reponses) == (2, 0, 2)
    assert rows(
        con,
        "select ligne, nom, code_postal, code_commune, libelle_commune "
        "from clean.questionnaire_reponses order by ligne",
    ) == [
        (2, "Ressourcerie Créteil ï", "94000", "94028", "Créteil"),
        (3, "Régie de quartier, Vitry", "94400", "94081", "Vitry-sur-Seine"),
    ]
    assert rows(
        con, "select valeur from clean.questionnaire_valeurs where question = 'commentaire'"
    ) == [("Merci !",), ("Besoin d'un « local » ; voilà",)]
    assert rows(
        con, "select encodage, separateur, outil, lignes_fichier from raw.questionnaire_lectures"
    ) == [(encoding, sep, "limesurvey", 3)]


def test_declared_encoding_and_separator_win_over_detection(con, inbox):
    # a cp1252 file whose header has more commas than semicolons
    header = [h.replace("?", "?, oui") if "locaux" in h else h for h in HEADER]
    data = csv_bytes([answer()], sep=";", encoding="cp1252", header=header)
    mapping = mapping_text(extra='encodage = "cp1252"\nseparateur = ";"').replace(
        "Avez-vous un besoin de locaux ?", "Avez-vous un besoin de locaux ?, oui"
    )
    ingest, clean = run(con, write_wave(inbox, "v1", data, mapping=mapping))
    assert (ingest.encodage, ingest.separateur, clean.nb_reponses) == ("cp1252", ";", 1)


def test_xlsx_export(con, inbox, tmp_path):
    folder = write_wave(
        inbox, "vague-xlsx", None, mapping=mapping_text(extra='feuille = "Réponses"')
    )
    first = answer()
    frame = pl.DataFrame(
        {
            c: [v, None if c != "Numéro SIRET" else "98765432100017"]
            for c, v in zip(HEADER, first, strict=True)
        }
    ).with_columns(
        pl.Series("Date de soumission", [dt.datetime(2026, 3, 14, 10, 22, 31), None]),
        pl.Series("Combien de salariés ?", [12.5, 3.0]),
    )
    frame.write_excel(folder / "export.xlsx", worksheet="Réponses")
    ingest, clean = run(con, folder)
    assert (ingest.encodage, ingest.separateur, ingest.lignes_lues) == (None, None, 2)
    assert rows(
        con,
        "select ligne, horodatage, siret_declare, code_commune from clean.questionnaire_reponses "
        "order by ligne",
    ) == [
        (2, dt.datetime(2026, 3, 14, 10, 22, 31), "12345678900012", "94028"),
        (3, None, "98765432100017", None),
    ]
    assert rows(
        con,
        "select valeur_nombre from clean.questionnaire_valeurs where question = 'nb_salaries' "
        "order by reponse_id",
    ) == [(12.5,), (3.0,)]
    assert rows(con, "select ligne, motif from clean.questionnaire_rejets") == [
        (3, "horodatage manquant")
    ]


def test_xlsx_missing_sheet(con, inbox):
    folder = write_wave(inbox, "v1", None, mapping=mapping_text(extra='feuille = "Réponses"'))
    pl.DataFrame({c: ["x"] for c in HEADER}).write_excel(folder / "export.xlsx", worksheet="Data")
    with pytest.raises(q.QuestionnaireError, match="feuille « Réponses » introuvable.*Data"):
        run(con, folder)


def test_xlsx_mapped_column_present_twice_is_refused(con, inbox):
    """Polars renames a repeated header (`…_1`): the second column must not be ignored silently."""
    import xlsxwriter

    folder = write_wave(inbox, "v1", None)
    book = xlsxwriter.Workbook(folder / "export.xlsx")
    sheet = book.add_worksheet("Réponses")
    sheet.write_row(0, 0, [*HEADER, "Combien de salariés ?"])
    sheet.write_row(1, 0, [*answer(), "15"])
    book.close()
    with pytest.raises(q.QuestionnaireError) as err:
        run(con, folder)
    assert "ligne 1 : colonne « Combien de salariés ? » présente 2 fois" in str(err.value)


@pytest.mark.parametrize(
    ("outil", "stamp", "expected"),
    [
        ("limesurvey", "2026-03-14 10:22:31", dt.datetime(2026, 3, 14, 10, 22, 31)),
        ("google_forms", "14/03/2026 10:22:31", dt.datetime(2026, 3, 14, 10, 22, 31)),
        ("google_forms", "2026/03/14 10:22:31 PM UTC+1", dt.datetime(2026, 3, 14, 22, 22, 31)),
        ("google_forms", "2026/03/14 10:22:31 AM GMT", dt.datetime(2026, 3, 14, 11, 22, 31)),
        ("kobotoolbox", "2026-03-14T10:22:31.000+01:00", dt.datetime(2026, 3, 14, 10, 22, 31)),
        # summer time: Paris is UTC+2, the UTC stamp moves by two hours
        ("kobotoolbox", "2026-06-14T10:22:31.000Z", dt.datetime(2026, 6, 14, 12, 22, 31)),
        ("framaforms", "14/03/2026 - 10:22", dt.datetime(2026, 3, 14, 10, 22)),
        ("framaforms", "sam, 14/03/2026 - 10:22", dt.datetime(2026, 3, 14, 10, 22)),
    ],
)
def test_each_tools_timestamp(con, inbox, outil, stamp, expected):
    data = csv_bytes([answer(date=stamp)])
    run(con, write_wave(inbox, "v1", data, mapping=mapping_text(outil=outil)))
    assert rows(con, "select horodatage from clean.questionnaire_reponses") == [(expected,)]
    assert rows(con, "select outil from clean.questionnaire_vagues") == [(outil,)]
    assert rows(con, "select count(*) from clean.questionnaire_rejets") == [(0,)]


def test_unreadable_timestamp_is_rejected_answer_kept(con, inbox):
    run(con, write_wave(inbox, "v1", csv_bytes([answer(date="hier matin")])))
    assert rows(con, "select horodatage, nom from clean.questionnaire_reponses") == [
        (None, "Ressourcerie Créteil ï")
    ]
    assert rows(con, "select ligne, colonne, motif from clean.questionnaire_rejets") == [
        (2, "Date de soumission", "horodatage illisible : « hier matin »")
    ]
    assert rows(con, "select count(*) from clean.questionnaire_valeurs") == [(5,)]


# --------------------------------------------------------------------------------------------
# Values


def test_choices_and_needs(con, inbox):
    data = csv_bytes(
        [
            answer(),
            answer(avez="Non", quels="Financer un projet; ;Recruter;Recruter"),
            answer(avez="Je ne sais pas", quels="Trouver des locaux;Acheter un camion"),
        ]
    )
    _, clean = run(con, write_wave(inbox, "v1", data))
    got = rows(
        con,
        "select reponse_id, question, valeur, besoin from clean.questionnaire_valeurs "
        "where type like 'choix%' order by reponse_id, question, valeur",
    )
    assert got == [
        ("v1:2", "besoin_locaux", "Oui", "locaux"),
        ("v1:2", "besoins_prioritaires", "Recruter", "recrutement"),
        ("v1:2", "besoins_prioritaires", "Trouver des locaux", "locaux"),
        ("v1:3", "besoin_locaux", "Non", None),
        ("v1:3", "besoins_prioritaires", "Financer un projet", "financement"),
        ("v1:3", "besoins_prioritaires", "Recruter", "recrutement"),
        ("v1:4", "besoin_locaux", "Je ne sais pas", None),
        ("v1:4", "besoins_prioritaires", "Trouver des locaux", "locaux"),
    ]
    assert rows(con, "select ligne, colonne, motif from clean.questionnaire_rejets") == [
        (
            4,
            "Quels sont vos besoins prioritaires ?",
            "réponse « Acheter un camion » absente des options prévues",
        )
    ]
    assert clean.nb_rejets == 1
    assert rows(
        con, "select question, type, besoin from clean.questionnaire_questions order by question"
    ) == [
        ("besoin_locaux", "choix_unique", "locaux"),
        ("besoins_prioritaires", "choix_multiple", None),
        ("commentaire", "texte", None),
        ("nb_salaries", "nombre", None),
    ]


def test_google_forms_comma_separator_keeps_options_with_commas(con, inbox):
    data = csv_bytes(
        [answer(quels="Recruter, Se former, monter en compétences, Autre, trouver des locaux")]
    )
    run(con, write_wave(inbox, "v1", data, mapping=mapping_text("google_forms", multi_sep=",")))
    assert rows(
        con,
        "select valeur, besoin from clean.questionnaire_valeurs "
        "where question = 'besoins_prioritaires' order by valeur",
    ) == [
        ("Autre", None),
        ("Recruter", "recrutement"),
        ("Se former, monter en compétences", "formation"),
        # options are compared without case: the label of the mapping is kept
        ("Trouver des locaux", "locaux"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12", 12.0), ("12,5", 12.5), ("1 200", 1200.0), ("12.5", 12.5), ("1\u202f200,5", 1200.5)],
)
def test_numbers(con, inbox, text, expected):
    run(con, write_wave(inbox, "v1", csv_bytes([answer(combien=text)])))
    assert rows(
        con,
        "select valeur, valeur_nombre from clean.questionnaire_valeurs where type = 'nombre'",
    ) == [(text, expected)]


def test_unparseable_number_rejected_rest_kept(con, inbox):
    run(con, write_wave(inbox, "v1", csv_bytes([answer(combien="une douzaine")])))
    assert rows(con, "select ligne, colonne, motif from clean.questionnaire_rejets") == [
        (2, "Combien de salariés ?", "nombre illisible : « une douzaine »")
    ]
    assert rows(con, "select question from clean.questionnaire_valeurs order by question") == [
        ("besoin_locaux",),
        ("besoins_prioritaires",),
        ("besoins_prioritaires",),
        ("commentaire",),
    ]


def test_free_text_masks_contacts(con, inbox):
    text = (
        "Écrivez-moi à jean.dupont@asso-exemple.fr ou au 01.23.45.67.89, "
        "sinon +33 6 98 76 54 32. SIRET 12345678900012, 150 bénévoles.\nMerci"
    )
    run(con, write_wave(inbox, "v1", csv_bytes([answer(autre=text)])))
    assert rows(
        con, "select valeur from clean.questionnaire_valeurs where question = 'commentaire'"
    ) == [
        (
            "Écrivez-moi à [courriel masqué] ou au [téléphone masqué], "
            "sinon [téléphone masqué]. SIRET 12345678900012, 150 bénévoles.\nMerci",
        )
    ]


def test_identifiers_normalised_and_kept_with_wrong_key(con, inbox):
    data = csv_bytes(
        [
            answer(numéro="123.456.789.00013"),  # wrong Luhn key: kept, the linker decides
            answer(numéro="552 100 554"),  # a SIREN typed in the SIRET box
            answer(numéro="1234567890012"),  # leading zero lost by a spreadsheet
            answer(numéro="inconnu"),
            answer(numéro=PHONE),  # a phone number is no identifier, and goes no further
        ]
    )
    run(con, write_wave(inbox, "v1", data))
    assert rows(
        con,
        "select ligne, siret_declare, siren_declare from clean.questionnaire_reponses "
        "order by ligne",
    ) == [
        (2, "12345678900013", None),
        (3, None, "552100554"),
        (4, "01234567890012", None),
        (5, None, None),
        (6, None, None),
    ]
    assert rows(con, "select ligne, motif from clean.questionnaire_rejets order by ligne") == [
        (5, "SIRET illisible : « inconnu »"),
        (6, "SIRET illisible : « [téléphone masqué] »"),
    ]


def test_personal_data_in_raw_never_in_clean(con, inbox):
    data = csv_bytes(
        [
            answer(),
            answer(autre=f"Contact : {EMAIL}, {PHONE}"),
            # the respondent types their own name again: signing a comment, or as the
            # structure's name (a sole trader's association)
            answer(autre="Merci, Camille (directrice)", nom=PERSON),
        ]
    )
    run(con, write_wave(inbox, "v1", data))
    raw = {v for (v,) in rows(con, "select valeur from raw.questionnaire_cellules")}
    assert {EMAIL, PHONE, PERSON} <= raw
    tables = rows(
        con,
        "select table_name, column_name from information_schema.columns "
        "where table_schema = 'clean' order by all",
    )
    assert {t for t, _ in tables} == set(q.CLEAN_TABLES)
    for table, column in tables:
        found = rows(
            con,
            f'select count(*) from clean.{table} where cast("{column}" as varchar) ilike ? '
            f'or cast("{column}" as varchar) ilike ? or cast("{column}" as varchar) ilike ?',
            f"%{EMAIL}%",
            f"%{PHONE}%",
            f"%{PERSON}%",
        )
        assert found == [(0,)], (table, column)
    assert rows(
        con, "select valeur from clean.questionnaire_valeurs where question = 'commentaire'"
    ) == [
        ("Merci !",),
        ("Contact : [courriel masqué], [téléphone masqué]",),
        ("Merci, [donnée personnelle masquée] (directrice)",),
    ]
    assert rows(con, "select nom from clean.questionnaire_reponses order by ligne") == [
        ("Ressourcerie Créteil ï",),
        ("Ressourcerie Créteil ï",),
        ("[donnée personnelle masquée]",),
    ]


def test_mask_person_whole_values_and_words():
    values = ["Camille Durand", "camille.durand@example.org"]
    assert qc.mask_person("Association Camille Durand", values) == (
        "Association [donnée personnelle masquée]"
    )
    # words only where asked: a structure may carry a first name ("Maison Camille Claudel")
    assert qc.mask_person("Maison Camille Claudel", values) == "Maison Camille Claudel"
    assert qc.mask_person("Signé : camille D.", values, words=True) == (
        "Signé : [donnée personnelle masquée] D."
    )
    assert qc.mask_person("Camillerie", values, words=True) == "Camillerie"


# --------------------------------------------------------------------------------------------
# Broken files


def broken_export() -> bytes:
    """Lines 2-3: a quoted cell over two lines (valid); line 4: one field too many; line 5: ok."""
    text = csv_bytes([answer(autre="Première ligne\nseconde ligne")]).decode()
    text += ",".join(answer(nom="Trop de champs")) + ",en trop\r\n"
    return text.encode() + csv_bytes([answer()]).split(b"\r\n", 1)[1]


def test_broken_rows_quarantined_with_their_line(con, inbox):
    ingest, clean = run(con, write_wave(inbox, "v1", broken_export()), max_reject_rate=0.5)
    assert (ingest.lignes_fichier, ingest.lignes_lues, ingest.lignes_mal_formees) == (5, 2, 1)
    assert rows(con, "select ligne, motif from raw.questionnaire_rejets_lecture") == [
        (4, "nombre de champs : 13 au lieu de 12")
    ]
    # no content copied: the broken row may hold personal data
    assert rows(
        con, "select count(*) from raw.questionnaire_cellules where valeur = 'Trop de champs'"
    ) == [(0,)]
    assert rows(con, "select distinct ligne from raw.questionnaire_cellules order by 1") == [
        (2,),
        (5,),
    ]
    assert clean.nb_reponses == 2
    assert rows(
        con, "select valeur from clean.questionnaire_valeurs where question = 'commentaire'"
    ) == [("Première ligne\nseconde ligne",), ("Merci !",)]


def test_too_many_fields_at_physical_line_5(con, inbox):
    # records start at lines 2 and 3-4 (quoted newline); the bad one is at physical line 5
    text = csv_bytes([answer(), answer(autre="a\nb")]).decode()
    text += ",".join(answer()) + ",x,y\r\n" + ",".join(answer()) + "\r\n"
    ingest, _ = run(con, write_wave(inbox, "v1", text.encode()), max_reject_rate=0.5)
    assert ingest.lignes_mal_formees == 1
    assert rows(con, "select ligne, motif from raw.questionnaire_rejets_lecture") == [
        (5, "nombre de champs : 14 au lieu de 12")
    ]
    assert rows(con, "select distinct ligne from raw.questionnaire_cellules order by 1") == [
        (2,),
        (3,),
        (6,),
    ]


def test_unterminated_quote_at_end_of_file(con, inbox):
    text = csv_bytes([answer(), answer(), answer()]).decode()
    text += ",".join(answer(autre='Un écran 12" suffit')) + "\r\n"
    text += ",".join(answer()[:-1]) + ',"Pas de fin\r\nde citation\r\n'
    ingest, _ = run(con, write_wave(inbox, "v1", text.encode()), max_reject_rate=0.5)
    assert ingest.lignes_lues == 4
    (line, motif), *others = rows(con, "select ligne, motif from raw.questionnaire_rejets_lecture")
    assert others == []
    assert line == 6
    assert "guillemet non fermé" in motif


def test_refusal_above_threshold_names_file_and_lines(con, inbox):
    folder = write_wave(inbox, "v1", csv_bytes([answer()]))
    run(con, folder)
    (folder / "export.csv").write_bytes(broken_export())
    with pytest.raises(q.QuestionnaireError) as err:
        run(con, folder, max_reject_rate=0.2)
    message = str(err.value)
    assert "export.csv" in message
    assert "1 lignes mal formées sur 3" in message
    assert "lignes en cause : 4" in message
    # the previous read of the wave is kept
    assert rows(con, "select lignes_lues, lignes_mal_formees from raw.questionnaire_lectures") == [
        (1, 0)
    ]


def test_missing_mapped_column(con, inbox):
    header = [h for h in HEADER if h != "Courriel"]
    data = csv_bytes(
        [[v for h, v in zip(HEADER, answer(), strict=True) if h != "Courriel"]], header=header
    )
    folder = write_wave(inbox, "v1", data)
    with pytest.raises(q.QuestionnaireError) as err:
        run(con, folder)
    message = str(err.value)
    assert message.startswith(f"fichier {folder / 'export.csv'}, ligne 1 : colonne « Courriel »")
    assert "absente (colonnes présentes : Date de soumission, Numéro SIRET" in message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "fichier vide"),
        (b"\r\n  \r\n", "fichier vide"),
        (csv_bytes([]), "aucune réponse"),
    ],
)
def test_empty_exports(con, inbox, content, message):
    with pytest.raises(q.QuestionnaireError, match=message):
        run(con, write_wave(inbox, "v1", content))


def test_export_must_be_single(con, inbox):
    folder = write_wave(inbox, "v1", None)
    with pytest.raises(q.QuestionnaireError, match="exactement un export .*aucun"):
        run(con, folder)
    (folder / "a.csv").write_bytes(csv_bytes([answer()]))
    (folder / "b.xlsx").write_bytes(b"")
    with pytest.raises(q.QuestionnaireError, match="trouvé : a.csv, b.xlsx"):
        run(con, folder)


def test_invalid_wave_name(con, inbox):
    folder = write_wave(inbox, "Vague 2026", csv_bytes([answer()]))
    with pytest.raises(q.QuestionnaireError, match="nom de vague « Vague 2026 » invalide"):
        run(con, folder)


# --------------------------------------------------------------------------------------------
# Mapping errors


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'type = "nombre"',
            'type = "entier"',
            "question « nb_salaries » : type « entier » inconnu",
        ),
        (
            'besoin = "locaux"',
            'besoin = "logement"',
            "question « besoin_locaux » : besoin « logement »",
        ),
        (
            '"Recruter" = "recrutement"',
            '"Recruter" = "embauche"',
            "question « besoins_prioritaires », option « Recruter » : besoin « embauche »",
        ),
        (
            'code = "nb_salaries"',
            'code = "besoin_locaux"',
            "question « besoin_locaux » : code en double",
        ),
        ('siret = "Numéro SIRET"\nnom = "Nom de votre structure"\n', "", "siret, siren ou nom"),
        ('outil = "limesurvey"', 'outil = "typeform"', "outil « typeform » inconnu"),
        (
            'colonne = "Autre chose à nous dire ?"',
            'colonne = "Courriel"',
            "question « commentaire » : la colonne « Courriel » est déclarée donnée personnelle",
        ),
        ('cite_si = ["Oui"]', "", "question « besoin_locaux » : « besoin » sans « cite_si »"),
        ('separateur = ";"', 'separatuer = ";"', "clé(s) inconnue(s) separatuer"),
        ('date_fin = "2026-05-31"', 'date_fin = "31/05/2026"', "date_fin"),
        ("[vague]", "[vague", "TOML invalide"),
    ],
)
def test_bad_mappings(tmp_path, old, new, message):
    text = mapping_text()
    assert old in text
    path = tmp_path / "v1" / q.MAPPING_FILE
    path.parent.mkdir()
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(q.QuestionnaireError) as err:
        q.load_mapping(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_mapping_parsed(tmp_path):
    path = tmp_path / q.MAPPING_FILE
    path.write_text(mapping_text(extra='separateur = "\\t"'), encoding="utf-8")
    mapping = q.load_mapping(path)
    assert (mapping.outil, mapping.separateur, mapping.date_debut) == (
        "limesurvey",
        "\t",
        dt.date(2026, 3, 1),
    )
    multi = mapping.questions[1]
    assert multi.options is not None
    assert (multi.options["Recruter"], multi.options["Autre"]) == ("recrutement", None)
    assert "Courriel" in mapping.columns()
    assert "Courriel" not in mapping.clean_columns()


# --------------------------------------------------------------------------------------------
# Waves over time


def test_reingest_replaces_the_wave(con, inbox):
    folder = write_wave(inbox, "v1", csv_bytes([answer(), answer(), answer()]))
    run(con, folder)
    run(con, folder)
    counts = "select count(*), count(distinct reponse_id) from clean.questionnaire_reponses"
    assert rows(con, counts) == [(3, 3)]
    assert rows(con, "select count(*) from raw.questionnaire_lectures") == [(1,)]
    n_cells = rows(con, "select count(*) from raw.questionnaire_cellules")[0][0]
    assert n_cells == 3 * len(HEADER)
    (folder / "export.csv").write_bytes(csv_bytes([answer(combien="douze")]))
    run(con, folder)
    assert rows(con, counts) == [(1, 1)]
    assert rows(con, "select nb_reponses from clean.questionnaire_vagues") == [(1,)]
    assert rows(con, "select count(*) from clean.questionnaire_rejets") == [(1,)]


def test_two_waves_coexist_and_history_is_kept(con, inbox, tmp_path):
    write_wave(inbox, "2025-printemps", csv_bytes([answer()]))
    framaforms = [
        answer(date="14/03/2026 - 10:22"),
        answer(date="15/03/2026 - 11:00", commune="94081", code="94400"),
    ]
    write_wave(
        inbox, "2026-printemps", csv_bytes(framaforms, sep=";"), mapping=mapping_text("framaforms")
    )
    ingested = q.ingest_all(con, inbox, download_dir=tmp_path / "dl", max_reject_rate=0.1)
    assert [w.vague for w in ingested] == ["2025-printemps", "2026-printemps"]
    cleaned = qc.clean_all(con, inbox)
    assert [(w.vague, w.nb_reponses) for w in cleaned] == [
        ("2025-printemps", 1),
        ("2026-printemps", 2),
    ]
    assert rows(
        con, "select vague, reponse_id, code_commune from clean.questionnaire_reponses order by 2"
    ) == [
        ("2025-printemps", "2025-printemps:2", "94028"),
        ("2026-printemps", "2026-printemps:2", "94028"),
        ("2026-printemps", "2026-printemps:3", "94081"),
    ]
    # a wave removed from the inbox stays in the warehouse
    for path in (inbox / "questionnaires" / "2025-printemps").iterdir():
        path.unlink()
    (inbox / "questionnaires" / "2025-printemps").rmdir()
    q.ingest_all(con, inbox, download_dir=tmp_path / "dl", max_reject_rate=0.1)
    qc.clean_all(con, inbox)
    assert rows(con, "select vague, nb_reponses from clean.questionnaire_vagues order by 1") == [
        ("2025-printemps", 1),
        ("2026-printemps", 2),
    ]
    assert rows(con, "select count(distinct vague) from raw.questionnaire_cellules") == [(2,)]


def test_mapping_points_to_a_relative_file(con, inbox, tmp_path):
    exports = inbox / "exports"
    exports.mkdir(parents=True)
    (exports / "limesurvey_2026.csv").write_bytes(csv_bytes([answer()]))
    folder = write_wave(
        inbox,
        "v1",
        None,
        mapping='fichier = "../../exports/limesurvey_2026.csv"\n' + mapping_text(),
    )
    ingest, clean = run(con, folder)
    assert (ingest.fichier_source, clean.nb_reponses) == ("limesurvey_2026.csv", 1)
    (folder / q.MAPPING_FILE).write_text(
        'fichier = "absent.csv"\n' + mapping_text(), encoding="utf-8"
    )
    with pytest.raises(q.QuestionnaireError, match="fichier « absent.csv » introuvable"):
        run(con, folder)


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_mapping_points_to_a_url(con, inbox, tmp_path, http_root):
    root, base = http_root
    (root / "reponses.csv").write_bytes(csv_bytes([answer(), answer()], sep=";"))
    folder = write_wave(
        inbox, "v1", None, mapping=f'fichier = "{base}/reponses.csv"\n' + mapping_text()
    )
    ingest = q.ingest_wave(con, folder, download_dir=tmp_path / "dl", max_reject_rate=0.0)
    assert ingest.path == tmp_path / "dl" / "v1" / "reponses.csv"
    assert ingest.lignes_lues == 2


def test_clean_needs_the_raw_wave(con, tmp_path):
    path = tmp_path / q.MAPPING_FILE
    path.write_text(mapping_text(), encoding="utf-8")
    with pytest.raises(q.QuestionnaireError, match="pas encore lue"):
        qc.clean_wave(con, "jamais-lue", q.load_mapping(path))


def test_create_tables_gives_empty_tables(con):
    q.create_tables(con)
    q.create_tables(con)  # twice: safe to re-run
    for schema, tables in (("raw", q.RAW_TABLES), ("clean", q.CLEAN_TABLES)):
        for table in tables:
            assert rows(con, f"select count(*) from {schema}.{table}") == [(0,)]
    assert rows(
        con,
        "select data_type from information_schema.columns where table_schema = 'clean' "
        "and table_name = 'questionnaire_valeurs' and column_name = 'valeur_nombre'",
    ) == [("DOUBLE",)]


def test_stray_quote_in_last_record_is_not_an_unterminated_quote(con, inbox):
    text = csv_bytes([answer()]).decode() + ",".join(answer(autre='Un écran 12" suffit'))
    ingest, _ = run(con, write_wave(inbox, "v1", text.encode()), max_reject_rate=0.0)
    assert (ingest.lignes_lues, ingest.lignes_mal_formees) == (2, 0)
    assert rows(
        con, "select valeur from clean.questionnaire_valeurs where question = 'commentaire'"
    ) == [("Merci !",), ('Un écran 12" suffit',)]
