"""What the pages show of the stored evaluations (no torch imported here)."""

from evaluation.models import QualityEvaluation


def latest_evaluation(*, generator=None, job=None, study=None) -> QualityEvaluation | None:
    """The newest finished evaluation of a job, of a generator (its own or one of its jobs'),
    or of a study's synthetic half."""
    rows = QualityEvaluation.objects.select_related("extractor")
    if job is not None:
        rows = rows.filter(generation_job=job)
    elif generator is not None:
        rows = rows.filter(generator=generator)
    elif study is not None:
        rows = rows.filter(study=study, status="succeeded")
    else:
        return None
    return rows.order_by("-created_at", "-id").first()


def latest_machine_observer(study) -> QualityEvaluation | None:
    """The newest finished evaluation behind a study: the dashboard's machine observer."""
    from evaluation.exports import evaluations_for

    return evaluations_for(study).first()
