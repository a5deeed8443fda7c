"""The design statistics of a study, from the database: records, JSON, CSV tables, plots.

Loads plain records for ``readerstudy.analysis.designs`` (no Django there). Practice screens
never count; in single-image studies only first showings count (repeats measure consistency).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import F

from pool.models import Truth
from readerstudy.analysis import designs as stats
from readerstudy.analysis.results import to_jsonable
from readerstudy.models import Design, Reading, Study
from readerstudy.services.designs import is_correct

DEFAULT_BOOTSTRAP = 1000
DEFAULT_SEED = 0


@dataclass(frozen=True)
class DesignAnalysis:
    design: str
    asks_finding: bool
    pairs: stats.PairAnalysis | None
    hype_infinity: stats.HypeInfinity | None
    hype_time: stats.HypeTime | None
    findings: stats.FindingAnalysis | None


def _rows(study: Study):
    return (
        Reading.objects.filter(slot__assignment__study=study, slot__is_practice=False)
        .order_by("slot__assignment__reader__username", "slot__position")
        .values(
            "slot_id",
            "answer",
            "chosen_side",
            "finding_answer",
            "requested_exposure_ms",
            "achieved_exposure_ms",
            "slot__position",
            "slot__showing",
            "slot__case_id",
            reader=F("slot__assignment__reader__username"),
            truth=F("slot__case__image__truth"),
            finding=F("slot__case__image__finding"),
            right_truth=F("slot__right_case__image__truth"),
            right_finding=F("slot__right_case__image__finding"),
        )
    )


def _finding_records(row: dict, design: str) -> list[stats.FindingRecord]:
    if not row["finding_answer"]:
        return []
    images = [(row["truth"], row["finding"])]
    if design == Design.PAIR:  # one answer for a matched pair: it speaks for both images
        images.append((row["right_truth"], row["right_finding"]))
    return [
        stats.FindingRecord(row["reader"], truth == Truth.SYNTHETIC, finding, row["finding_answer"])
        for truth, finding in images
    ]


def _votes_records(analysis: Any) -> list[stats.ImageRecord]:
    """HYPE-∞ records from the study analysis' per-case votes (first showings): no query."""
    records = []
    for index, votes in enumerate(analysis.cases):
        synthetic = votes.truth == Truth.SYNTHETIC
        right = votes.n_fake if synthetic else votes.n_real
        wrong = votes.n_real + votes.n_unsure + votes.n_fake - right
        records += [stats.ImageRecord("", index, synthetic, True)] * right
        records += [stats.ImageRecord("", index, synthetic, False)] * wrong
    return records


def analyse_study(
    study: Study,
    *,
    analysis: Any = None,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
) -> DesignAnalysis:
    """``analysis``: the study's ``StudyAnalysis`` when the caller has it (saves a query)."""
    single = study.design == Design.SINGLE
    pairs, images, exposures, findings = [], [], [], []
    rows = _rows(study) if not single or study.ask_finding or analysis is None else []
    for row in rows:
        correct = is_correct(row["answer"], row["truth"])
        findings += _finding_records(row, study.design)
        if study.design == Design.PAIR:
            pairs.append(stats.PairRecord(row["reader"], row["slot_id"], correct))
        elif study.design == Design.EXPOSURE:
            if row["requested_exposure_ms"] is not None:
                exposures.append(
                    stats.ExposureRecord(
                        row["reader"],
                        row["slot__position"],
                        row["requested_exposure_ms"],
                        row["achieved_exposure_ms"],
                        correct,
                    )
                )
        elif row["slot__showing"] == 1 and analysis is None:
            images.append(
                stats.ImageRecord(
                    row["reader"], row["slot__case_id"], row["truth"] == Truth.SYNTHETIC, correct
                )
            )
    if single and analysis is not None:
        images = _votes_records(analysis)
    return DesignAnalysis(
        design=study.design,
        asks_finding=study.ask_finding,
        pairs=stats.analyse_pairs(pairs, n_bootstrap, seed)
        if study.design == Design.PAIR
        else None,
        hype_infinity=stats.analyse_hype_infinity(images, n_bootstrap, seed) if single else None,
        hype_time=stats.analyse_hype_time(exposures) if study.design == Design.EXPOSURE else None,
        findings=stats.analyse_findings(findings, study.findings) if study.ask_finding else None,
    )


def design_payload(study: Study, **options) -> dict[str, Any]:
    """The ``designs`` block of ``study_stats --json`` and the dashboard's JSON."""
    return to_jsonable(analyse_study(study, **options))


# ------------------------------------------------------------------------------- CSV tables

ESTIMATE_COLUMNS = ["estimate", "ci_low", "ci_high", "n", "method", "note"]


def _cells(slot: dict) -> list:
    note = f"not defined: {slot['not_defined']}" if slot["not_defined"] else slot["note"]
    return [slot["estimate"], slot["ci_low"], slot["ci_high"], slot["n"], slot["method"], note]


def _blank(value) -> Any:
    return "" if value is None else value


def _payload(study: Study, analysis: Any) -> dict:
    return design_payload(study, analysis=analysis)


def pairs_rows(study: Study, analysis: Any = None) -> Iterator[list]:
    yield [
        "study_public_id",
        "reader",
        "n_pairs",
        "n_correct",
        *[f"proportion_correct_{c}" for c in ESTIMATE_COLUMNS],
        "p_value_vs_chance",
    ]
    block = _payload(study, analysis)["pairs"]
    if block is None:
        return
    for r in block["readers"]:
        yield [
            study.public_id,
            r["reader"],
            r["n_pairs"],
            r["n_correct"],
            *_cells(r["proportion_correct"]),
            _blank(r["p_value"]),
        ]
    yield [
        study.public_id,
        "(reader-averaged)",
        block["n_pairs"],
        block["n_correct"],
        *_cells(block["reader_averaged"]),
        _blank(block["pooled_p_value"]),
    ]


def exposure_rows(study: Study, analysis: Any = None) -> Iterator[list]:
    yield [
        "study_public_id",
        "reader",
        "n_trials",
        "n_reversals",
        *[f"threshold_ms_{c}" for c in ESTIMATE_COLUMNS],
        "final_exposure_ms",
        *[f"accuracy_{c}" for c in ESTIMATE_COLUMNS],
        "median_timing_error_ms",
        "max_timing_error_ms",
    ]
    block = _payload(study, analysis)["hype_time"]
    if block is None:
        return
    for r in block["readers"]:
        yield [
            study.public_id,
            r["reader"],
            r["n_trials"],
            r["n_reversals"],
            *_cells(r["threshold_ms"]),
            _blank(r["final_exposure_ms"]),
            *_cells(r["accuracy"]),
            _blank(r["median_timing_error_ms"]),
            _blank(r["max_timing_error_ms"]),
        ]
    empty = [""] * len(ESTIMATE_COLUMNS)
    yield [
        study.public_id,
        "(reader-averaged)",
        "",
        "",
        *_cells(block["mean_threshold_ms"]),
        "",
        *empty,
        "",
        "",
    ]


def hype_infinity_rows(study: Study, analysis: Any = None) -> Iterator[list]:
    yield ["study_public_id", "statistic", *ESTIMATE_COLUMNS]
    block = _payload(study, analysis)["hype_infinity"]
    if block is None:
        return
    for name in ("score", "synthetic_error", "real_error"):
        yield [study.public_id, name, *_cells(block[name])]


FINDING_STATISTICS = (
    "real_sensitivity",
    "real_specificity",
    "synthetic_sensitivity",
    "synthetic_specificity",
    "sensitivity_difference",
    "specificity_difference",
)


def findings_rows(study: Study, analysis: Any = None) -> Iterator[list]:
    yield ["study_public_id", "finding", "statistic", *ESTIMATE_COLUMNS]
    block = _payload(study, analysis)["findings"]
    if block is None:
        return
    for f in block["findings"]:
        for name in FINDING_STATISTICS:
            yield [study.public_id, f["finding"], name, *_cells(f[name])]


def finding_confusion_rows(study: Study, analysis: Any = None) -> Iterator[list]:
    yield ["study_public_id", "truth", "image_finding", "answered_finding", "count"]
    block = _payload(study, analysis)["findings"]
    for cell in block["confusion"] if block else []:
        yield [
            study.public_id,
            cell["truth"],
            cell["image_finding"],
            cell["answered"],
            cell["count"],
        ]


DESIGN_READINGS_HEADER = [
    "study_public_id",
    "design",
    "reader",
    "position",
    "is_practice",
    "left_image_public_id",
    "left_truth",
    "right_image_public_id",
    "right_truth",
    "chosen_side",
    "answer",
    "correct",
    "image_finding",
    "finding_answer",
    "requested_exposure_ms",
    "achieved_exposure_ms",
]


def design_readings_rows(study: Study, analysis: Any = None) -> Iterator[list]:
    yield list(DESIGN_READINGS_HEADER)
    for values in _design_readings(study).iterator(chunk_size=5000):
        yield _design_reading_row(study, *values)


def _design_readings(study: Study):
    """Every reading of the study, one tuple each, by reader and position."""
    return (
        Reading.objects.filter(slot__assignment__study=study)
        .order_by("slot__assignment__reader__username", "slot__position")
        .values_list(
            "slot__assignment__reader__username",
            "slot__position",
            "slot__is_practice",
            "slot__case__image__public_id",
            "slot__case__image__truth",
            "slot__right_case__image__public_id",
            "slot__right_case__image__truth",
            "chosen_side",
            "answer",
            "slot__case__image__finding",
            "finding_answer",
            "requested_exposure_ms",
            "achieved_exposure_ms",
        )
    )


def _design_reading_row(
    study: Study,
    reader,
    position,
    practice,
    left_id,
    left_truth,
    right_id,
    right_truth,
    side,
    answer,
    finding,
    finding_answer,
    requested,
    achieved,
) -> list:
    return [
        study.public_id,
        study.design,
        reader,
        position,
        int(practice),
        left_id,
        left_truth,
        _blank(right_id),
        _blank(right_truth),
        side,
        answer,
        int(is_correct(answer, left_truth)),
        finding,
        finding_answer,
        _blank(requested),
        _blank(achieved),
    ]


def register_tables() -> None:
    from readerstudy.design_dictionary import DESIGN_COLUMNS
    from readerstudy.export_dictionary import register_columns
    from readerstudy.exports import TableSpec, register_table

    for table, columns in DESIGN_COLUMNS.items():
        register_columns(table, columns)

    for name, description, rows in (
        (
            "design_readings",
            "one row per reading with what the design adds (sides, exposures, findings answered)",
            design_readings_rows,
        ),
        (
            "design_pairs",
            "2AFC: proportion correct per reader and reader-averaged, exact tests against chance",
            pairs_rows,
        ),
        (
            "design_exposure",
            "HYPE-time: threshold exposure per reader and reader-averaged",
            exposure_rows,
        ),
        (
            "design_hype_infinity",
            "HYPE-infinity error rates with bootstrap intervals",
            hype_infinity_rows,
        ),
        (
            "design_findings",
            "diagnostic question: per-finding accuracy on real vs synthetic",
            findings_rows,
        ),
        (
            "design_finding_confusion",
            "diagnostic question: image finding x answered finding per truth",
            finding_confusion_rows,
        ),
    ):
        register_table(TableSpec(name, description, rows, name != "design_readings"))


# ------------------------------------------------------------------------------ dashboard


def dashboard_context(study: Study, analysis: Any = None) -> dict[str, Any]:
    """What the dashboard's design section shows: the payload and its plots."""
    from readerstudy.design_plots import interval_plot

    payload = design_payload(study, analysis=analysis)
    plots = {}
    if payload["pairs"]:
        rows = [(r["reader"], r["proportion_correct"]) for r in payload["pairs"]["readers"]]
        rows.append(("reader-averaged", payload["pairs"]["reader_averaged"]))
        plots["pairs"] = interval_plot(
            rows,
            title="2AFC: proportion of pairs with the synthetic image picked (95% CI)",
            low=0,
            high=1,
            axis="proportion correct (chance 0.5)",
            reference=0.5,
        )
    if payload["hype_time"]:
        rows = [(r["reader"], r["threshold_ms"]) for r in payload["hype_time"]["readers"]]
        rows.append(("reader-averaged", payload["hype_time"]["mean_threshold_ms"]))
        plots["hype_time"] = interval_plot(
            rows,
            title="HYPE-time: threshold exposure per reader (95% t interval)",
            low=study.exposure_min_ms,
            high=study.exposure_max_ms,
            axis="exposure (ms)",
        )
    if payload["hype_infinity"]:
        block = payload["hype_infinity"]
        plots["hype_infinity"] = interval_plot(
            [
                ("all images", block["score"]),
                ("synthetic", block["synthetic_error"]),
                ("real", block["real_error"]),
            ],
            title="HYPE-infinity: error rate (95% bootstrap CI); 0.5 = indistinguishable",
            low=0,
            high=1,
            axis="error rate",
            reference=0.5,
        )
    if payload["findings"]:
        rows = []
        for f in payload["findings"]["findings"]:
            rows.append((f"{f['finding']} real", f["real_sensitivity"]))
            rows.append((f"{f['finding']} synthetic", f["synthetic_sensitivity"]))
        plots["findings"] = interval_plot(
            rows,
            title="Diagnostic question: sensitivity per finding, real vs synthetic",
            low=0,
            high=1,
            axis="sensitivity (95% Wilson)",
        )
    return {"design": payload, "design_plots": plots}
