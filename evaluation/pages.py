"""What the pages show of the stored evaluations (no torch imported here)."""

from evaluation.models import QualityEvaluation


def latest_evaluation(*, generator=None, job=None) -> QualityEvaluation | None:
    """The newest evaluation of a job, or of a generator (its own or one of its jobs')."""
    rows = QualityEvaluation.objects.select_related("extractor")
    if job is not None:
        rows = rows.filter(generation_job=job)
    elif generator is not None:
        rows = rows.filter(generator=generator)
    else:
        return None
    return rows.order_by("-created_at", "-id").first()
