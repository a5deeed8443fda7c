"""Celery tasks of the evaluation: the blinding audit (default queue), quality (gpu queue)."""

from __future__ import annotations

from evaluation.models import EvaluationStatus
from spotthefake.celery import GPU_QUEUE, project_task


@project_task()
def audit_study_blinding(*, study_pk: int) -> int | None:
    """Audit the study's current cases unless an audit of exactly these cases exists.

    Safe to run twice: the second run finds the audit of the same cases and does nothing.
    Returns the audit's pk (None when the study is gone).
    """
    from evaluation.services import current_audit, run_blinding_audit
    from readerstudy.models import Study

    study = Study.objects.filter(pk=study_pk).first()
    if study is None:
        return None
    existing = current_audit(study)
    if existing is not None:
        return existing.pk
    return run_blinding_audit(study).pk


@project_task(queue=GPU_QUEUE)
def evaluate_generation_job(*, job_pk: int) -> int | None:
    """Quality evaluation of a finished generation job against the real pool of its modality.

    Safe to run twice: a job with a succeeded evaluation is left alone.
    """
    from evaluation.models import QualityEvaluation
    from evaluation.quality import evaluate_job_after_generation

    done = QualityEvaluation.objects.filter(
        generation_job_id=job_pk, status=EvaluationStatus.SUCCEEDED
    ).first()
    if done is not None:
        return done.pk
    evaluation = evaluate_job_after_generation(job_pk)
    return evaluation.pk if evaluation else None
