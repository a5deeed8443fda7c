"""python manage.py study_stats STUDY [--json]: every statistic of a study."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from readerstudy.analysis.bootstrap import CASE, KINDS
from readerstudy.management.commands._study_argument import add_study_argument
from readerstudy.models import Study
from readerstudy.results import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_SEED,
    GROUPINGS,
    find_study,
    run_analysis,
    study_payload,
)


def fmt(slot: dict, digits: int = 3) -> str:
    """An estimate slot in words; "not defined: <reason>" when it has no value."""
    if slot["not_defined"]:
        return f"not defined: {slot['not_defined']}"
    text = f"{slot['estimate']:.{digits}f}"
    if slot["ci_low"] is not None:
        text += f" [{slot['ci_low']:.{digits}f}, {slot['ci_high']:.{digits}f}]"
    if slot["note"]:
        text += f"  ({slot['note']})"
    return text


class Command(BaseCommand):
    help = (
        "Every statistic of a study: per-reader figures with Wilson intervals, reader averages "
        "with case-bootstrap intervals, ROC/AUC (Obuchowski-Rockette), agreement, fooling rates "
        "and intra-reader consistency. --json prints them with the stable keys documented in "
        "docs/statistics.md (plus a 'study' block); without it, a readable summary."
    )

    def add_arguments(self, parser) -> None:
        add_study_argument(parser)
        parser.add_argument("--json", action="store_true", help="Print JSON.")
        parser.add_argument("--indent", type=int, default=None, help="Indent the JSON.")
        parser.add_argument(
            "--bootstrap", type=int, default=DEFAULT_BOOTSTRAP,
            help="Case-bootstrap resamples (default 1000; 0: point estimates only).",
        )
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
        parser.add_argument(
            "--bootstrap-kind", choices=KINDS, default=CASE,
            help="case: resample cases, readers fixed (a fixed-reader interval; default); "
            "two-way: resample readers and cases (a random-reader interval).",
        )

    def handle(self, *args, study: str, json: bool, indent: int | None, bootstrap: int,
               seed: int, bootstrap_kind: str = CASE, **options) -> None:
        if bootstrap < 0:
            raise CommandError("--bootstrap must be 0 or more")
        try:
            found = find_study(study)
        except Study.DoesNotExist as error:
            raise CommandError(str(error)) from None
        analysis = run_analysis(
            found, n_bootstrap=bootstrap, seed=seed, bootstrap=bootstrap_kind
        )
        payload = study_payload(found, analysis)
        if json:
            self.stdout.write(_dumps(payload, indent))
        else:
            self.stdout.write("\n".join(summary_lines(payload)))


def _dumps(payload: dict, indent: int | None) -> str:
    return json.dumps(payload, indent=indent, allow_nan=False)


def summary_lines(payload: dict) -> list[str]:
    return [
        *_header_lines(payload),
        *_reader_lines(payload),
        *_average_lines(payload),
        *_roc_lines(payload),
        *_agreement_lines(payload),
        *_group_lines(payload),
        *_intra_lines(payload),
    ]


def _header_lines(payload: dict) -> list[str]:
    s = payload["summary"]
    study = payload["study"]
    lines = [
        f"Study {study['title']!r} ({study['public_id']}, {study['status']})",
        (f"  readers {s['n_readers']} ({s['n_readers_with_readings']} with readings); "
        f"cases {s['n_cases']} ({s['n_cases_read']} read: {s['n_fake_cases']} synthetic, "
        f"{s['n_real_cases']} real); readings {s['n_readings']} + {s['n_repeat_readings']} "
        f"repeats; confidence {'collected' if s['confidence_collected'] else 'not collected'}; "
        f"bootstrap {s['n_bootstrap']} {s['bootstrap']} resamples (seed {s['seed']}; case: "
        "readers fixed, two-way: readers and cases)"),
        "  positive class: fake (synthetic); practice cases excluded; 95% intervals",
        "",
        "Per reader (PRIMARY, intention to diagnose: unsure counts as wrong; Wilson intervals)",
    ]
    return lines


def _reader_lines(payload: dict) -> list[str]:
    lines = []
    for r in payload["readers"]:
        t = r["table"]
        lines += [
            f"  {r['reader']}: {r['n_readings']} read ({r['n_fake']} synthetic, {r['n_real']} real)",
            (f"    synthetic answered real/unsure/fake: {t['fake_answered_real']}/"
            f"{t['fake_answered_unsure']}/{t['fake_answered_fake']}; real answered "
            f"real/unsure/fake: {t['real_answered_real']}/{t['real_answered_unsure']}/"
            f"{t['real_answered_fake']}"),
            f"    accuracy    {fmt(r['accuracy'])}",
            f"    sensitivity {fmt(r['sensitivity'])}",
            f"    specificity {fmt(r['specificity'])}",
            (f"    SECONDARY committed only: accuracy {fmt(r['committed']['accuracy'])}; "
            f"sensitivity {fmt(r['committed']['sensitivity'])}; "
            f"specificity {fmt(r['committed']['specificity'])}; "
            f"unsure rate {fmt(r['committed']['unsure_rate'])}"),
        ]
    return lines


def _average_lines(payload: dict) -> list[str]:
    a = payload["reader_averaged"]
    kind = (
        "two-way bootstrap (readers and cases), percentile: random readers"
        if payload["summary"]["bootstrap"] == "two-way"
        else "case bootstrap, percentile: readers fixed"
    )
    return [
        "",
        f"Reader average ({kind})",
        f"  accuracy    {fmt(a['accuracy'])}",
        f"  sensitivity {fmt(a['sensitivity'])}",
        f"  specificity {fmt(a['specificity'])}",
        (f"  SECONDARY committed only: accuracy {fmt(a['committed']['accuracy'])}; "
        f"sensitivity {fmt(a['committed']['sensitivity'])}; "
        f"specificity {fmt(a['committed']['specificity'])}"),
        f"  unsure rate {fmt(a['committed']['unsure_rate'])}",
    ]


def _roc_lines(payload: dict) -> list[str]:
    lines = ["", "ROC (fake-score: +confidence fake, 0 unsure, -confidence real)"]
    roc = payload["roc"]
    if roc["confidence_collected"]:
        for r in roc["readers"]:
            lines.append(f"  {r['reader']}: AUC {fmt(r['auc'])}")
        lines += [
            "  reader-averaged AUC, Obuchowski-Rockette, random readers: "
            + fmt(roc["reader_averaged_auc_random_readers"]),
            "  reader-averaged AUC, Obuchowski-Rockette, fixed readers:  "
            + fmt(roc["reader_averaged_auc_fixed_readers"]),
        ]
        if roc["note"]:
            lines.append(f"  note: {roc['note']}")
    else:
        lines.append(f"  not defined: {roc['note']}")
    return lines


def _agreement_lines(payload: dict) -> list[str]:
    lines = []
    for key, title in (
        ("agreement", "Agreement, all answers (unsure a third category)"),
        ("agreement_committed", "Agreement, SECONDARY: committed answers only"),
    ):
        g = payload[key]
        lines += ["", title]
        for name in ("fleiss_kappa", "krippendorff_alpha", "gwet_ac1", "percent_agreement",
                     "mean_pairwise_cohen_kappa"):
            lines.append(f"  {name.replace('_', ' ')}: {fmt(g[name])}")
    return lines


def _group_lines(payload: dict) -> list[str]:
    lines = ["", "Fooling rate (synthetic answered real) and real answered fake, Wilson"]
    for key, name in GROUPINGS.items():
        rows = [g for g in payload["groups"] if g["grouping"] == key]
        if not rows:
            continue
        lines.append(f"  per {name}:")
        for g in rows:
            measure = "fooling rate" if g["measure"] == "fooling_rate" else "answered fake"
            lines.append(
                f"    {g['group']} ({g['truth']}, {g['n_readings']} readings): {measure} "
                f"{fmt(g['rate'])}; unsure {fmt(g['unsure_rate'])}"
            )
    return lines


def _intra_lines(payload: dict) -> list[str]:
    intra = payload["intra_reader"]
    lines = ["", "Intra-reader consistency (first vs repeat showing)"]
    for r in intra["readers"]:
        lines.append(
            f"  {r['reader']}: {r['n_pairs']} pairs; kappa {fmt(r['kappa'])}; "
            f"same answer {fmt(r['percent_agreement'])}"
        )
    lines.append(f"  pooled kappa {fmt(intra['pooled_kappa'])}")
    lines.append(f"  mean kappa {fmt(intra['mean_kappa'])}")
    return lines + design_lines(payload.get("designs"))


def design_lines(block: dict | None) -> list[str]:
    """The study design's figures (docs/study-designs.md), when it has any."""
    if not block:
        return []
    lines = [f"Design: {block['design']}"]
    if block["pairs"]:
        pairs = block["pairs"]
        for r in pairs["readers"]:
            lines.append(f"  2AFC {r['reader']}: {r['n_correct']}/{r['n_pairs']} correct, "
                         f"{fmt(r['proportion_correct'])}, p vs 0.5 = {r['p_value']:.4g}")
        lines.append(f"  2AFC reader-averaged: {fmt(pairs['reader_averaged'])}")
    if block["hype_infinity"]:
        lines.append(f"  HYPE-infinity error rate: {fmt(block['hype_infinity']['score'])}")
    if block["hype_time"]:
        for r in block["hype_time"]["readers"]:
            lines.append(f"  HYPE-time {r['reader']}: threshold {fmt(r['threshold_ms'], 1)} ms "
                         f"({r['n_reversals']} reversals)")
        lines.append(f"  HYPE-time mean threshold: {fmt(block['hype_time']['mean_threshold_ms'], 1)}")
    if block["findings"]:
        for f in block["findings"]["findings"]:
            lines.append(f"  finding {f['finding']}: sensitivity real "
                         f"{fmt(f['real_sensitivity'])}, synthetic {fmt(f['synthetic_sensitivity'])}")
    return lines

