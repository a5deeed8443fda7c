"""Flat tables (lists of row dicts) from a :class:`StudyAnalysis`, ready for ``csv.DictWriter``.

Every estimate slot ``name`` is spread into the columns ``name_estimate``, ``name_ci_low``,
``name_ci_high``, ``name_se``, ``name_n``, ``name_method``, ``name_note``, ``name_not_defined``.
"""

from __future__ import annotations

from typing import Any

from readerstudy.analysis.results import (
    ESTIMATE_KEYS,
    AgreementAnalysis,
    StudyAnalysis,
    Value,
    to_jsonable,
)


def _spread(prefix: str, value: Value) -> dict[str, Any]:
    slot = to_jsonable(value)
    return {f"{prefix}_{key}": slot[key] for key in ESTIMATE_KEYS}


def _agreement_rows(analysis: AgreementAnalysis) -> list[dict[str, Any]]:
    rows = []
    for name in (
        "fleiss_kappa",
        "krippendorff_alpha",
        "gwet_ac1",
        "percent_agreement",
        "mean_pairwise_cohen_kappa",
    ):
        rows.append(
            {
                "answers": analysis.answers,
                "statistic": name,
                **_spread("value", getattr(analysis, name)),
            }
        )
    return rows


def _pair_rows(analysis: AgreementAnalysis) -> list[dict[str, Any]]:
    return [
        {
            "answers": analysis.answers,
            "reader_a": pair.reader_a,
            "reader_b": pair.reader_b,
            "n_cases": pair.n_cases,
            **_spread("kappa", pair.kappa),
        }
        for pair in analysis.pairwise_cohen_kappa
    ]


def _readers(analysis: StudyAnalysis) -> list[dict[str, Any]]:
    rows = []
    for r in analysis.readers:
        row: dict[str, Any] = {
            "reader": r.reader,
            "n_readings": r.n_readings,
            "n_fake": r.n_fake,
            "n_real": r.n_real,
            **to_jsonable(r.table),
        }
        for name in ("accuracy", "sensitivity", "specificity"):
            row.update(_spread(name, getattr(r, name)))
        for name in ("accuracy", "sensitivity", "specificity", "unsure_rate"):
            row.update(_spread(f"committed_{name}", getattr(r.committed, name)))
        rows.append(row)
    return rows


def _reader_averaged(analysis: StudyAnalysis) -> list[dict[str, Any]]:
    averaged = analysis.reader_averaged
    return [
        {
            "statistic": name,
            "answers": "primary (unsure counts as wrong)",
            **_spread("value", getattr(averaged, name)),
        }
        for name in ("accuracy", "sensitivity", "specificity")
    ] + [
        {
            "statistic": name,
            "answers": "SECONDARY: committed answers only",
            **_spread("value", getattr(averaged.committed, name)),
        }
        for name in ("accuracy", "sensitivity", "specificity", "unsure_rate")
    ]


def _auc(analysis: StudyAnalysis) -> list[dict[str, Any]]:
    roc = analysis.roc
    rows = [
        {"reader": r.reader, "n_fake": r.n_fake, "n_real": r.n_real, **_spread("auc", r.auc)}
        for r in roc.readers
    ]
    for name, value in (
        ("reader_average_random_readers", roc.reader_averaged_auc_random_readers),
        ("reader_average_fixed_readers", roc.reader_averaged_auc_fixed_readers),
    ):
        rows.append({"reader": name, "n_fake": None, "n_real": None, **_spread("auc", value)})
    return rows


def _cases(analysis: StudyAnalysis) -> list[dict[str, Any]]:
    return [
        {
            "case": c.case,
            "truth": c.truth,
            "n_real": c.n_real,
            "n_unsure": c.n_unsure,
            "n_fake": c.n_fake,
            **_spread("share_fake", c.share_fake),
        }
        for c in analysis.cases
    ]


def _groups(analysis: StudyAnalysis) -> list[dict[str, Any]]:
    return [
        {
            "grouping": g.grouping,
            "group": g.group,
            "truth": g.truth,
            "measure": g.measure,
            "n_cases": g.n_cases,
            "n_readings": g.n_readings,
            "n_answered_real": g.n_answered_real,
            "n_answered_unsure": g.n_answered_unsure,
            "n_answered_fake": g.n_answered_fake,
            **_spread("rate", g.rate),
            **_spread("unsure_rate", g.unsure_rate),
        }
        for g in analysis.groups
    ]


def _intra(analysis: StudyAnalysis) -> list[dict[str, Any]]:
    intra = analysis.intra_reader
    rows = [
        {
            "reader": r.reader,
            "n_pairs": r.n_pairs,
            **_spread("kappa", r.kappa),
            **_spread("percent_agreement", r.percent_agreement),
        }
        for r in intra.readers
    ]
    rows.append(
        {
            "reader": "pooled",
            "n_pairs": sum(r.n_pairs for r in intra.readers),
            **_spread("kappa", intra.pooled_kappa),
            **_spread("percent_agreement", intra.pooled_percent_agreement),
        }
    )
    return rows


def tables(analysis: StudyAnalysis) -> dict[str, list[dict[str, Any]]]:
    """The analysis as named flat tables (see ``docs/statistics.md`` for the columns)."""
    return {
        "readers": _readers(analysis),
        "reader_averaged": _reader_averaged(analysis),
        "auc": _auc(analysis),
        "roc_points": [
            {"reader": r.reader, "point": i, **to_jsonable(point)}
            for r in analysis.roc.readers
            for i, point in enumerate(r.points)
        ],
        "agreement": _agreement_rows(analysis.agreement)
        + _agreement_rows(analysis.agreement_committed),
        "pairwise_kappa": _pair_rows(analysis.agreement) + _pair_rows(analysis.agreement_committed),
        "cases": _cases(analysis),
        "groups": _groups(analysis),
        "intra_reader": _intra(analysis),
    }
