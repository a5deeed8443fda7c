"""CSV exports of a study, streamed row by row so memory stays flat at any size.

Each table is a generator of rows (lists of strings); `stream_csv` turns one into CSV
lines for a StreamingHttpResponse or a file. `TABLES` names every table (the management
command, the dashboard and the admin action share it); the columns are listed in
`docs/results.md`.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import lru_cache

import numpy as np
from django.db.models import Count, Q

from pool.models import Image, Truth
from readerstudy.analysis import FAKE, REAL, UNSURE, fake_scores
from readerstudy.export_dictionary import DICTIONARY_HEADER, dictionary_rows
from readerstudy.models import Answer, Reading, Study, StudyCase
from readerstudy.results import checkpoint_label, generator_kind, prompt_or_class

CHUNK = 5000

GENERATOR_COLUMNS = [
    "generator_kind", "generator_model", "generator_checkpoint", "generator_job", "generator_seed",
    "generator_prompt_or_class", "generator_sampler", "generator_steps", "generator_guidance",
]

READINGS_HEADER = [
    "study", "reader", "position", "image_public_id", "truth", "modality", "finding", "source",
    *GENERATOR_COLUMNS,
    "answer", "confidence", "fake_score", "is_practice", "is_repeat", "served_at", "answered_at",
    "seconds_on_case", "client_ms", "revisions", "comment",
]

CASES_HEADER = [
    "study", "image_public_id", "truth", "modality", "finding", "source", "generator_model",
    "is_practice", "readings", "answered_real", "answered_unsure", "answered_fake", "share_fake",
]

#: The column names the iMRMC R package's `doIMRMC` data frame requires.
MRMC_LONG_HEADER = ["readerID", "caseID", "modalityID", "score"]
IMRMC_IDS_HEADER = ["kind", "id", "label"]


@dataclass(frozen=True)
class ImageFacts:
    public_id: str
    truth: str
    modality: str
    finding: str
    source: str
    generator: tuple[str, ...]


def generator_fields(provenance: dict, truth: str) -> tuple[str, ...]:
    """The generator columns of an image (`GENERATOR_COLUMNS`), empty for real images.

    Reads the generation engine's provenance keys: `generator` (or the older `kind`), `model`,
    `checkpoint` / `base_checkpoint` with `weights_sha256` and `lora_sha256`, `job`, `seed`,
    `prompt` / `class` / `finding`, `scheduler`, `steps`, `guidance`.
    """
    if truth != Truth.SYNTHETIC:
        return ("",) * len(GENERATOR_COLUMNS)
    provenance = provenance if isinstance(provenance, dict) else {}
    return tuple(
        "" if value is None else str(value)
        for value in (
            generator_kind(provenance),
            provenance.get("model", ""),
            checkpoint_label(provenance),
            provenance.get("job", ""),
            provenance.get("seed", ""),
            prompt_or_class(provenance),
            provenance.get("scheduler", ""),
            provenance.get("steps", ""),
            provenance.get("guidance", ""),
        )
    )


def image_facts(study: Study) -> dict[int, ImageFacts]:
    """Facts for each case image, read once: one row per case, not per reading."""
    rows = Image.objects.filter(study_cases__study=study).values_list(
        "id", "public_id", "truth", "modality", "finding", "source", "provenance"
    )
    return {
        pk: ImageFacts(public_id, truth, modality, finding, source, generator_fields(prov or {}, truth))
        for pk, public_id, truth, modality, finding, source, prov in rows
    }


ANSWER_CODES = {Answer.REAL: REAL, Answer.UNSURE: UNSURE, Answer.FAKE: FAKE}


@lru_cache(maxsize=256)  # a handful of (answer, confidence) pairs: numpy once per pair, not per row
def fake_score(answer: str, confidence: int | None) -> int | float | None:
    """The analysis' fake-score (`readerstudy.analysis.fake_scores`, the one definition) of one
    reading; None (an empty cell) where a committed answer has no confidence."""
    score = float(
        fake_scores(
            np.array([ANSWER_CODES[answer]]),
            np.array([np.nan if confidence is None else float(confidence)]),
        )[0]
    )
    return None if math.isnan(score) else _score(score)


def _score(score: float) -> int | float:
    """Integral scores (integer confidences) as integers: 5, not 5.0."""
    return int(score) if score.is_integer() else score


def _iso(value) -> str:
    return value.isoformat() if value else ""


def readings_rows(study: Study) -> Iterator[list]:
    facts = image_facts(study)
    yield READINGS_HEADER
    readings = (
        Reading.objects.filter(slot__assignment__study=study)
        .order_by("slot__assignment__reader__username", "slot__position")
        .values_list(
            "slot__assignment__reader__username", "slot__position", "slot__case__image_id",
            "answer", "confidence", "slot__is_practice", "slot__showing", "served_at",
            "answered_at", "client_ms", "revision_count", "comment",
        )
    )
    for (reader, position, image_id, answer, confidence, practice, showing, served, answered,
         client_ms, revisions, comment) in readings.iterator(chunk_size=CHUNK):
        image = facts[image_id]
        yield [
            study.public_id, reader, position, image.public_id, image.truth, image.modality,
            image.finding, image.source, *image.generator, answer,
            "" if confidence is None else confidence, _num(fake_score(answer, confidence)),
            int(practice), int(showing > 1), _iso(served), _iso(answered),
            Decimal(f"{(answered - served).total_seconds():.3f}"),  # a number, not text
            "" if client_ms is None else client_ms,
            revisions, comment,
        ]


def cases_rows(study: Study) -> Iterator[list]:
    facts = image_facts(study)
    first = Q(slots__showing=1, slots__reading__isnull=False)
    cases = (
        StudyCase.objects.filter(study=study)
        .order_by("id")
        .annotate(
            n=Count("slots__reading", filter=first),
            n_real=Count("slots__reading", filter=first & Q(slots__reading__answer=Answer.REAL)),
            n_unsure=Count("slots__reading", filter=first & Q(slots__reading__answer=Answer.UNSURE)),
            n_fake=Count("slots__reading", filter=first & Q(slots__reading__answer=Answer.FAKE)),
        )
        .values_list("image_id", "is_practice", "n", "n_real", "n_unsure", "n_fake")
    )
    yield CASES_HEADER
    for image_id, practice, n, n_real, n_unsure, n_fake in cases.iterator(chunk_size=CHUNK):
        image = facts[image_id]
        share = Decimal(f"{n_fake / n:.4f}") if n else ""
        yield [
            study.public_id, image.public_id, image.truth, image.modality, image.finding,
            image.source, image.generator[1], int(practice), n, n_real, n_unsure, n_fake, share,
        ]


def _scored_first_readings(study: Study):
    """The analysis' own input (`load_readings`) reduced to what an MRMC file holds: first
    showings of non-practice cases with a defined fake-score. Returns the table, the fake-scores
    and the mask of the readings kept."""
    from readerstudy.results import load_readings

    table = load_readings(study).table
    scores = fake_scores(table.answer, table.confidence)
    keep = (table.showing == 1) & ~np.isnan(scores)
    return table, scores, keep


def _in_order(table, keep: np.ndarray) -> list[int]:
    """The kept readings by reader, then case: the same file for the same readings."""
    kept = np.flatnonzero(keep)
    return kept[np.lexsort((table.case[kept], table.reader[kept]))].tolist()


def _mrmc_ids(table, keep: np.ndarray) -> tuple[dict[int, int], dict[int, int]]:
    """Integer ids 1, 2, ... of the readers and cases with a scored first reading, in label
    order (readers by username, cases as the study lists them)."""
    readers = np.unique(table.reader[keep]).tolist()
    cases = np.unique(table.case[keep]).tolist()
    return ({r: i + 1 for i, r in enumerate(readers)}, {c: i + 1 for i, c in enumerate(cases)})


def mrmc_long_rows(study: Study) -> Iterator[list]:
    """The long data frame of the iMRMC R package (`doIMRMC`): one truth row per case
    (`readerID` and `modalityID` "truth", score 1 synthetic, 0 real), then one row per scored
    first reading, named by username and image public id. A reading without its confidence has
    no fake-score and is left out, as the analysis leaves it out."""
    table, scores, keep = _scored_first_readings(study)
    modality = f"study-{study.public_id}"
    yield MRMC_LONG_HEADER
    case_is_fake = np.zeros(table.n_cases, bool)
    case_is_fake[table.case] = table.is_fake
    for case in np.unique(table.case[keep]).tolist():
        yield ["truth", table.case_labels[case], "truth", int(case_is_fake[case])]
    for i in _in_order(table, keep):
        yield [table.reader_labels[table.reader[i]], table.case_labels[table.case[i]], modality,
               _score(float(scores[i]))]


def imrmc_rows(study: Study) -> Iterator[list]:
    """The iMRMC input file (`.imrmc`, read by iMRMC and RJafroc's `DfReadDataFile(format =
    "iMRMC")`): description lines, `NR:`, `N0:`, `N1:`, `NM:`, `BEGIN DATA:`, then
    `readerID,caseID,modalityID,score` rows with integer ids: truth rows `-1,<case>,truth,<0|1>`
    (1 = synthetic, the positive class) and one row per scored first reading (modality 1).
    The ids map to names in the `imrmc_ids` table."""
    table, scores, keep = _scored_first_readings(study)
    readers, cases = _mrmc_ids(table, keep)
    case_is_fake = np.zeros(table.n_cases, bool)
    case_is_fake[table.case] = table.is_fake
    n_fake = int(sum(case_is_fake[c] for c in cases))
    left_out = int(((table.showing == 1) & np.isnan(scores)).sum())
    yield [(f"Spot the fake, study {study.public_id}: fake-score of first showings "
           "(+confidence fake, 0 unsure, -confidence real); truth 1 = synthetic")]
    yield [(f"Reader and case ids: study-{study.public_id}-imrmc_ids.csv; {left_out} committed "
           "reading(s) without a confidence rating have no fake-score and are left out")]
    yield [f"NR: {len(readers)}"]
    yield [f"N0: {len(cases) - n_fake}"]
    yield [f"N1: {n_fake}"]
    yield ["NM: 1"]
    yield ["BEGIN DATA:"]
    for case, case_id in cases.items():
        yield [-1, case_id, "truth", int(case_is_fake[case])]
    for i in _in_order(table, keep):
        yield [readers[int(table.reader[i])], cases[int(table.case[i])], 1,
               _score(float(scores[i]))]


def imrmc_ids_rows(study: Study) -> Iterator[list]:
    """What the integer ids of the `.imrmc` file stand for: reader usernames, case image public
    ids and the one modality (the study)."""
    table, _scores, keep = _scored_first_readings(study)
    readers, cases = _mrmc_ids(table, keep)
    yield IMRMC_IDS_HEADER
    for reader, reader_id in readers.items():
        yield ["reader", reader_id, table.reader_labels[reader]]
    for case, case_id in cases.items():
        yield ["case", case_id, table.case_labels[case]]
    yield ["modality", 1, f"study-{study.public_id}"]


class _Line:
    """A file-like object whose write() returns the line, for csv.writer."""

    def write(self, value: str) -> str:
        return value


#: A text cell starting with one of these is a formula (or can become one) in Excel, LibreOffice
#: and Google Sheets: the OWASP "CSV injection" list.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell):
    """A text cell that a spreadsheet would run as a formula, prefixed with a single quote (the
    OWASP recommendation); everything else unchanged. Numbers (int, float) are left alone: a
    negative number is a number, not a formula, and must stay one for R, pandas and Excel."""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def _formula_cells(row: list) -> list[bool]:
    return [isinstance(cell, str) and cell.startswith(FORMULA_STARTS) for cell in row]


_QUOTED = csv.writer(_Line(), quoting=csv.QUOTE_ALL, lineterminator="")
_MINIMAL = csv.writer(_Line(), lineterminator="")


def _safe_line(row: list, formulas: list[bool]) -> str:
    # csv has no per-cell quoting: the neutralised cells are written (and escaped) by a
    # QUOTE_ALL writer, the others by the usual minimal one, and joined. Rare rows only.
    cells = [
        _QUOTED.writerow([neutralise(cell)]) if formula
        else "" if cell is None or cell == ""  # a lone empty field would come out as ""
        else _MINIMAL.writerow([cell])
        for cell, formula in zip(row, formulas)
    ]
    return ",".join(cells) + "\r\n"


def stream_csv(rows: Iterable[list]) -> Iterator[str]:
    """CSV lines of `rows`, every formula-like text cell neutralised and quoted (OWASP)."""
    writer = csv.writer(_Line())
    for row in rows:
        formulas = _formula_cells(row)
        yield _safe_line(row, formulas) if any(formulas) else writer.writerow(row)


def write_csv(rows: Iterable[list], handle: io.TextIOBase) -> int:
    count = 0
    for line in stream_csv(rows):
        handle.write(line)
        count += 1
    return count


# ------------------------------------------------------------------ tables from the analysis
#
# These come from `StudyAnalysis` (computed once per export, small: one row per reader,
# statistic, pair or group), so they stream from memory. Headers are short snake_case names;
# their definitions are in the `dictionary` table (`readerstudy/export_dictionary.py`). Every
# estimate has its 95% interval, its n and a note that says "not defined: <reason>" instead of
# a number when the data cannot give one.

ITD = "ITD: unsure counts as wrong"
COMMITTED = "SECONDARY: committed (real/fake) answers only, flatters readers who say unsure"

#: (column stem, path in a reader's JSON)
READER_FIGURES = [
    ("accuracy", ("accuracy",)),
    ("sensitivity", ("sensitivity",)),
    ("specificity", ("specificity",)),
    ("committed_accuracy", ("committed", "accuracy")),
    ("committed_sensitivity", ("committed", "sensitivity")),
    ("committed_specificity", ("committed", "specificity")),
    ("unsure_rate", ("committed", "unsure_rate")),
    ("auc", ("auc",)),
    ("intra_reader_kappa", ("intra", "kappa")),
    ("intra_reader_agreement", ("intra", "percent_agreement")),
]

TABLE_CELLS = [
    "fake_answered_real", "fake_answered_unsure", "fake_answered_fake",
    "real_answered_real", "real_answered_unsure", "real_answered_fake",
]

READERS_HEADER = [
    "study", "reader", "n_readings", "n_fake", "n_real", *TABLE_CELLS, "n_repeat_pairs",
]
for _stem, _path in READER_FIGURES:
    READERS_HEADER += [_stem, f"{_stem}_ci_low", f"{_stem}_ci_high", f"{_stem}_n", f"{_stem}_note"]

AGREEMENT_HEADER = [
    "statistic", "subset", "estimate", "ci_low", "ci_high", "n_cases", "n_readers", "note",
    "method", "se", "definition",
]

AGREEMENT_STATISTICS = [
    ("fleiss_kappa", "Fleiss' kappa over the cases read by every reader"),
    ("krippendorff_alpha", "Krippendorff's alpha, nominal, missing readings allowed"),
    ("gwet_ac1", "Gwet's AC1, missing readings allowed (q = 3 categories, 2 when committed)"),
    ("percent_agreement", "mean pairwise agreement over cases with at least two readings"),
    ("mean_pairwise_cohen_kappa", "mean of the defined pairwise Cohen's kappas (Light's kappa)"),
]

SUBSETS = {
    "all": ("agreement", "all answers; unsure is a third category"),
    "committed": ("agreement_committed", "SECONDARY: committed answers only, unsure as missing"),
}

READER_AVERAGED_HEADER = [
    "statistic", "subset", "estimate", "ci_low", "ci_high", "n_readers", "note", "method",
    "se", "definition",
]

PAIRWISE_KAPPA_HEADER = [
    "subset", "reader_a", "reader_b", "n_cases", "kappa", "ci_low", "ci_high", "se", "note",
]

GROUPS_HEADER = [
    "grouping", "group", "truth", "measure", "n_cases", "n_readings", "answered_real",
    "answered_unsure", "answered_fake", "rate", "rate_ci_low", "rate_ci_high", "unsure_rate",
    "unsure_rate_ci_low", "unsure_rate_ci_high", "note",
]

ROC_POINTS_HEADER = ["reader", "point", "threshold", "fpr", "tpr"]


def _num(value):
    """A number cell: the number itself (csv writes a float as its shortest round-trip text,
    lossless, and never neutralises it as a formula), empty for None."""
    return "" if value is None else value


def slot_note(slot: dict) -> str:
    """The note of an estimate slot, or "not defined: <reason>"."""
    if slot["not_defined"]:
        return f"not defined: {slot['not_defined']}"
    return slot["note"] or ""


def _slot_cells(slot: dict) -> list[str]:
    return [_num(slot["estimate"]), _num(slot["ci_low"]), _num(slot["ci_high"]), _num(slot["n"]),
            slot_note(slot)]


def _dig(data: dict, path: tuple[str, ...]) -> dict:
    for key in path:
        data = data[key]
    return data


def readers_rows(study: Study, analysis=None) -> Iterator[list]:
    payload = _payload(study, analysis)
    aucs = {r["reader"]: r["auc"] for r in payload["roc"]["readers"]}
    intra = {r["reader"]: r for r in payload["intra_reader"]["readers"]}
    yield READERS_HEADER
    for reader in payload["readers"]:
        name = reader["reader"]
        figures = {**reader, "auc": aucs[name], "intra": intra[name]}
        row = [study.public_id, name, reader["n_readings"], reader["n_fake"], reader["n_real"],
               *(reader["table"][cell] for cell in TABLE_CELLS), intra[name]["n_pairs"]]
        for _stem, path in READER_FIGURES:
            row += _slot_cells(_dig(figures, path))
        yield row


def _committed_readers(payload: dict) -> int:
    t = [r["table"] for r in payload["readers"]]
    return sum(
        1 for c in t
        if c["fake_answered_real"] + c["fake_answered_fake"] + c["real_answered_real"]
        + c["real_answered_fake"] > 0
    )


def agreement_rows(study: Study, analysis=None) -> Iterator[list]:
    payload = _payload(study, analysis)
    readers = {
        "all": payload["summary"]["n_readers_with_readings"],
        "committed": _committed_readers(payload),
    }
    yield AGREEMENT_HEADER
    for subset, (key, subset_definition) in SUBSETS.items():
        block = payload[key]
        for statistic, definition in AGREEMENT_STATISTICS:
            slot = block[statistic]
            pairs = statistic == "mean_pairwise_cohen_kappa"
            n_cases = "" if pairs or slot["n"] is None else slot["n"]
            note = slot_note(slot)
            if pairs and slot["n"] is not None:
                note = f"over {slot['n']} reader pair(s); {note}".rstrip("; ")
            yield [statistic, subset, _num(slot["estimate"]), _num(slot["ci_low"]),
                   _num(slot["ci_high"]), n_cases, readers[subset], note, slot["method"] or "",
                   _num(slot["se"]), f"{definition}; {subset_definition}"]


def reader_averaged_rows(study: Study, analysis=None) -> Iterator[list]:
    payload = _payload(study, analysis)
    averaged = payload["reader_averaged"]
    roc = payload["roc"]
    yield READER_AVERAGED_HEADER
    rows = [
        ("accuracy", "primary", averaged["accuracy"], f"mean of readers' accuracy ({ITD})"),
        ("sensitivity", "primary", averaged["sensitivity"],
         f"mean of readers' sensitivity ({ITD})"),
        ("specificity", "primary", averaged["specificity"],
         f"mean of readers' specificity ({ITD})"),
    ] + [
        (name, "committed", averaged["committed"][name], f"mean of readers' {name} ({COMMITTED})")
        for name in ("accuracy", "sensitivity", "specificity")
    ] + [
        ("unsure_rate", "primary", averaged["committed"]["unsure_rate"],
         "mean of readers' unsure rate"),
        ("auc_random_readers", "primary", roc["reader_averaged_auc_random_readers"],
         ("reader-averaged AUC of the fake-score, Obuchowski-Rockette, random readers "
         "(Hillis 2007 df)")),
        ("auc_fixed_readers", "primary", roc["reader_averaged_auc_fixed_readers"],
         "reader-averaged AUC of the fake-score, Obuchowski-Rockette, fixed readers"),
    ]
    for statistic, subset, slot, definition in rows:
        yield [statistic, subset, _num(slot["estimate"]), _num(slot["ci_low"]),
               _num(slot["ci_high"]), _num(slot["n"]), slot_note(slot), slot["method"] or "",
               _num(slot["se"]), definition]


def pairwise_kappa_rows(study: Study, analysis=None) -> Iterator[list]:
    payload = _payload(study, analysis)
    yield PAIRWISE_KAPPA_HEADER
    for subset, (key, _definition) in SUBSETS.items():
        for pair in payload[key]["pairwise_cohen_kappa"]:
            slot = pair["kappa"]
            yield [subset, pair["reader_a"], pair["reader_b"], pair["n_cases"],
                   _num(slot["estimate"]), _num(slot["ci_low"]), _num(slot["ci_high"]),
                   _num(slot["se"]), slot_note(slot)]


def groups_rows(study: Study, analysis=None) -> Iterator[list]:
    payload = _payload(study, analysis)
    yield GROUPS_HEADER
    for g in payload["groups"]:
        rate, unsure = g["rate"], g["unsure_rate"]
        notes = [n for n in (slot_note(rate), slot_note(unsure)) if n]
        yield [g["grouping"], g["group"], g["truth"], g["measure"], g["n_cases"], g["n_readings"],
               g["n_answered_real"], g["n_answered_unsure"], g["n_answered_fake"],
               _num(rate["estimate"]), _num(rate["ci_low"]), _num(rate["ci_high"]),
               _num(unsure["estimate"]), _num(unsure["ci_low"]), _num(unsure["ci_high"]),
               "; ".join(notes)]


def roc_points_rows(study: Study, analysis=None) -> Iterator[list]:
    payload = _payload(study, analysis)
    yield ROC_POINTS_HEADER
    for reader in payload["roc"]["readers"]:
        for index, point in enumerate(reader["points"]):
            yield [reader["reader"], index, _num(point["threshold"]), _num(point["fpr"]),
                   _num(point["tpr"])]


def _payload(study: Study, analysis) -> dict:
    from readerstudy.results import study_analysis

    if analysis is None:
        analysis = study_analysis(study)
    return analysis.to_jsonable()


# ---------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class TableSpec:
    """One exportable table: `rows(study, analysis=None)` yields the header, then the rows."""

    name: str
    description: str
    rows: Callable[..., Iterator[list]]
    #: computed from the statistics (`StudyAnalysis`) rather than streamed from the database
    uses_analysis: bool
    #: file extension: "csv", or "imrmc" for the iMRMC input file (plain comma-joined lines)
    extension: str = "csv"
    #: the column names (for the data dictionary); empty: the columns registered with
    #: `export_dictionary.register_columns`
    header: tuple[str, ...] = ()


def _db_table(function: Callable[[Study], Iterator[list]]) -> Callable[..., Iterator[list]]:
    def rows(study: Study, analysis=None) -> Iterator[list]:
        return function(study)

    rows.__doc__ = function.__doc__
    return rows


#: Every table, by name: the command, the dashboard and the admin action all use this.
_HEADERS = {
    "readings": READINGS_HEADER,
    "readers": READERS_HEADER,
    "agreement": AGREEMENT_HEADER,
    "cases": CASES_HEADER,
    "imrmc": MRMC_LONG_HEADER,
    "imrmc_ids": IMRMC_IDS_HEADER,
    "mrmc_long": MRMC_LONG_HEADER,
    "reader_averaged": READER_AVERAGED_HEADER,
    "pairwise_kappa": PAIRWISE_KAPPA_HEADER,
    "groups": GROUPS_HEADER,
    "roc_points": ROC_POINTS_HEADER,
    "dictionary": DICTIONARY_HEADER,
}

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec("readings", "one row per reading (practice and repeats flagged)",
                  _db_table(readings_rows), False),
        TableSpec("readers", "one row per reader: the 3x2 table and every per-reader figure "
                  "with its interval", readers_rows, True),
        TableSpec("agreement", "agreement statistics, all answers and committed only",
                  agreement_rows, True),
        TableSpec("cases", "one row per case with its votes", _db_table(cases_rows), False),
        TableSpec("imrmc", "iMRMC input file (.imrmc, for iMRMC and RJafroc): counts, "
                  "integer reader and case ids, truth rows -1,<case>,truth,<0|1>",
                  _db_table(imrmc_rows), False, "imrmc"),
        TableSpec("imrmc_ids", "what the integer reader, case and modality ids of the .imrmc "
                  "file stand for", _db_table(imrmc_ids_rows), False),
        TableSpec("mrmc_long", "long data frame for the iMRMC R package (doIMRMC): readerID, "
                  "caseID, modalityID, score, with truth rows", _db_table(mrmc_long_rows), False),
        TableSpec("reader_averaged", "reader-averaged accuracy, sensitivity, specificity and AUC",
                  reader_averaged_rows, True),
        TableSpec("pairwise_kappa", "Cohen's kappa of every reader pair", pairwise_kappa_rows,
                  True),
        TableSpec("groups", "fooling rate per generator, checkpoint, job, modality and finding",
                  groups_rows, True),
        TableSpec("roc_points", "ROC curve points of every reader (fake-score thresholds)",
                  roc_points_rows, True),
        TableSpec("dictionary", "data dictionary: every column of every table, its definition "
                  "and unit", _db_table(dictionary_rows), False),
    )
}
for _name, _header in _HEADERS.items():
    TABLES[_name] = replace(TABLES[_name], header=tuple(_header))



def register_table(spec: TableSpec) -> None:
    """Let another app add a table (the evaluation app adds `quality`) without this module
    importing it: results depend on the reader study, never the other way round."""
    TABLES[spec.name] = spec


def table_header(name: str) -> list[str]:
    """The columns of table `name` (the data columns, for the .imrmc file)."""
    from readerstudy.export_dictionary import TABLES as DOCUMENTED

    return list(TABLES[name].header or DOCUMENTED.get(name, {}))


def table_rows(name: str, study: Study, analysis=None) -> Iterator[list]:
    """The rows (header first) of table `name`; KeyError for an unknown name."""
    return TABLES[name].rows(study, analysis)


def csv_filename(study: Study, name: str) -> str:
    """The download name of table `name`: `study-<id>-<name>.csv` (`.imrmc` for the iMRMC
    file)."""
    spec = TABLES.get(name)
    extension = spec.extension if spec else "csv"
    return f"study-{study.public_id}-{name}.{extension}"


def stream_lines(rows: Iterable[list]) -> Iterator[str]:
    """Plain comma-joined lines (the iMRMC file: no quoting, which its readers do not parse)."""
    for row in rows:
        yield ",".join(str(cell) for cell in row) + "\n"


def stream_file(filename: str, rows: Iterable[list]) -> Iterator[str]:
    """The lines of a table file, in the format its name says (.imrmc or CSV)."""
    return stream_lines(rows) if filename.endswith(".imrmc") else stream_csv(rows)


def content_type(filename: str) -> str:
    if filename.endswith(".imrmc"):
        return "text/plain; charset=utf-8"
    return "text/csv; charset=utf-8"


class _ZipSink:
    """A write-only, unseekable file for zipfile: collects bytes until taken."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def stream_zip(members: Iterable[tuple[str, Iterable[list]]],
               flush_bytes: int = 1 << 20) -> Iterator[bytes]:
    """A zip of table files (CSV, or .imrmc by name) built and yielded piece by piece
    (constant memory)."""
    sink = _ZipSink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, rows in members:
            with archive.open(name, mode="w", force_zip64=True) as member:
                pending = 0
                for line in stream_file(name, rows):
                    data = line.encode("utf-8")
                    member.write(data)
                    pending += len(data)
                    if pending >= flush_bytes:
                        pending = 0
                        chunk = sink.take()
                        if chunk:
                            yield chunk
            chunk = sink.take()
            if chunk:
                yield chunk
    yield sink.take()
