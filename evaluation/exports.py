"""The `quality` CSV table of a study: the fidelity, memorization and machine-observer figures
of the evaluations that concern its synthetic images, next to their real-vs-real baselines."""

from collections.abc import Iterator

from django.db.models import Q

from evaluation.models import EvaluationStatus, QualityEvaluation
from pool.models import Truth
from readerstudy.models import Study

QUALITY_HEADER = [
    "study", "evaluation", "subject", "extractor_version", "extractor_sha256", "figure",
    "synthetic_vs_real", "ci_low", "ci_high", "real_vs_real_baseline",
    "ratio (synthetic / baseline)", "better", "n_synthetic", "n_real", "note",
]


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


def _cell(value) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


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
        for metric in quality.get("metrics", []):
            value, baseline = metric.get("value") or {}, metric.get("baseline") or {}
            yield [
                *base, metric.get("name"), _cell(value.get("estimate")), "", "",
                _cell(baseline.get("estimate")), _cell(metric.get("ratio")),
                metric.get("better", ""), *sizes,
                value.get("not_defined") or value.get("note") or "",
            ]
        observer = report.get("observer", {})
        auc = observer.get("auc") or {}
        yield [
            *base, "machine_observer_auc (held-out real vs synthetic; 0.5 = chance)",
            _cell(auc.get("estimate")), _cell(auc.get("ci_low")), _cell(auc.get("ci_high")),
            "0.5", "", "lower", *sizes, auc.get("not_defined") or auc.get("note") or "",
        ]
        yield [
            *base, "memorized (synthetic images flagged as near-copies of a real image)",
            evaluation.flagged_count, "", "", "", "", "lower", *sizes, "",
        ]
