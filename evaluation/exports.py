"""The `quality` CSV table of a study: the fidelity, memorization and machine-observer figures
of the evaluations that concern its synthetic images, next to their real-vs-real baselines."""

from collections.abc import Iterator

from django.db.models import Q

from evaluation.models import EvaluationStatus, QualityEvaluation
from pool.models import Truth
from readerstudy.export_dictionary import register_columns
from readerstudy.models import Study

QUALITY_HEADER = [
    "study", "evaluation", "subject", "extractor_version", "extractor_sha256", "figure",
    "synthetic_vs_real", "ci_low", "ci_high", "real_vs_real_baseline", "ratio", "better",
    "n_synthetic", "n_real", "note", "baseline_ci_low", "baseline_ci_high", "presentation",
]

QUALITY_COLUMNS = {
    "study": ("the study's public id", "id"),
    "evaluation": ("id of the quality evaluation", "id"),
    "subject": ("what was evaluated: the study, a generation job or a model", "text"),
    "extractor_version": ("version of the feature extractor the figures are computed in",
                          "text"),
    "extractor_sha256": ("SHA-256 of the feature extractor's weights", "hex"),
    "figure": (("frechet_distance, kid, precision, recall, density, coverage, diversity, "
               "machine_observer_auc (held-out real vs synthetic; 0.5 = chance) or memorized "
               "(synthetic images flagged as near-copies of a real image); fidelity: no figure "
               "could be computed at that presentation, the note says why"), "text"),
    "synthetic_vs_real": ("the figure between the synthetic images and the real ones",
                          "as the figure"),
    "ci_low": (("lower end of the 95% interval (machine observer: DeLong; the other figures: "
                "percentile bootstrap centred on the figure)"), "as the figure"),
    "ci_high": (("upper end of the 95% interval (machine observer: DeLong; the other figures: "
                 "percentile bootstrap centred on the figure)"), "as the figure"),
    "real_vs_real_baseline": (("the same figure between two halves of the real images; empty "
                              "(not defined) when it is <= 0, as the unbiased KID can be"),
                              "as the figure"),
    "ratio": (("synthetic_vs_real / real_vs_real_baseline; empty when the baseline is not "
              "defined or <= 0"), "ratio"),
    "better": ("which direction is better: lower or higher", "text"),
    "n_synthetic": ("synthetic images evaluated", "count"),
    "n_real": ("real images evaluated", "count"),
    "note": ("note on the figure, or why it or its baseline is not defined", "text"),
    "baseline_ci_low": ("lower end of the baseline's own 95% bootstrap interval", "as the figure"),
    "baseline_ci_high": ("upper end of the baseline's own 95% bootstrap interval",
                         "as the figure"),
    "presentation": (("model: the images at the model's resolution (their display derivatives); "
                      "display: as the study presents them (its presentation profile)"), "text"),
}
register_columns("quality", QUALITY_COLUMNS)


def evaluations_for(study: Study):
    """Finished evaluations of the study itself, and of the jobs and models that made its
    synthetic images, newest first."""
    jobs = study.cases.filter(image__truth=Truth.SYNTHETIC).values("image__generated_by__job")
    generators = study.cases.filter(image__truth=Truth.SYNTHETIC).values(
        "image__generated_by__job__generator"
    )
    return (
        QualityEvaluation.objects.filter(status=EvaluationStatus.SUCCEEDED)
        .filter(Q(study=study) | Q(generation_job__in=jobs) | Q(generator__in=generators))
        .select_related("extractor", "generation_job", "generator")
        .order_by("-created_at", "-id")
    )


def _subject(evaluation: QualityEvaluation) -> str:
    if evaluation.study_id:
        return "study"
    if evaluation.generation_job_id:
        return f"generation job {evaluation.generation_job_id} ({evaluation.generator.name})"
    return f"model {evaluation.generator.name}" if evaluation.generator_id else ""


def _cell(value):
    """A number cell: the number itself (lossless, never neutralised as a formula), empty for
    None."""
    return "" if value is None else value


def _metric_row(metric: dict) -> list:
    """synthetic_vs_real, ci_low, ci_high, baseline, ratio, better, note, baseline_ci_low,
    baseline_ci_high of one metric.

    A baseline <= 0 (the unbiased KID estimator goes negative when two real halves are as close
    as chance) is no scale to divide by: baseline and ratio are reported as not defined."""
    value, baseline = metric.get("value") or {}, metric.get("baseline") or {}
    base = baseline.get("estimate")
    ratio = metric.get("ratio")
    notes = [value.get("not_defined") or value.get("note") or ""]
    base_ci = [_cell(baseline.get("ci_low")), _cell(baseline.get("ci_high"))]
    if isinstance(base, (int, float)) and base <= 0:
        notes.append(f"baseline and ratio not defined: the real-vs-real baseline is {base!r} "
                     "(<= 0), so there is no scale to compare with")
        base = ratio = None
        base_ci = ["", ""]
    return [
        metric.get("name"), _cell(value.get("estimate")), _cell(value.get("ci_low")),
        _cell(value.get("ci_high")), _cell(base), _cell(ratio),
        metric.get("better", ""), "; ".join(filter(None, notes)), *base_ci,
    ]


def quality_rows(study: Study, analysis=None) -> Iterator[list]:
    yield QUALITY_HEADER
    for evaluation in evaluations_for(study):
        report = evaluation.report or {}
        quality = report.get("quality", {})
        base = [
            study.public_id, evaluation.pk, _subject(evaluation),
            quality.get("extractor_version", ""), quality.get("extractor_sha256", ""),
        ]
        sizes = [evaluation.n_synthetic, evaluation.n_real]
        for presentation, figures in (("model", quality), ("display", report.get("quality_display"))):
            if figures and "metrics" not in figures:  # why there are no figures, not silence
                note = figures.get("not_defined") or "no figures"
                yield [*base, "fidelity", *[""] * 6, *sizes, note, "", "", presentation]
            for metric in (figures or {}).get("metrics", []):
                *cells, better, note, low, high = _metric_row(metric)
                yield [*base, *cells, better, *sizes, note, low, high, presentation]
        observer = report.get("observer", {})
        auc = observer.get("auc") or {}
        yield [
            *base, "machine_observer_auc",
            _cell(auc.get("estimate")), _cell(auc.get("ci_low")), _cell(auc.get("ci_high")),
            0.5, "", "lower", *sizes, auc.get("not_defined") or auc.get("note") or "",
            "", "", "model",
        ]
        yield [
            *base, "memorized",
            evaluation.flagged_count, "", "", "", "", "lower", *sizes, "", "", "", "model",
        ]
