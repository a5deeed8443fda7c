"""Studies of the pair and exposure designs, built from images with chosen findings."""

from pool.models import Truth
from readerstudy.models import Assignment, Study, StudyCase
from readerstudy.services.studies import open_study
from tests.factories import ImageFactory, StudyFactory


def accept_audit(study: Study) -> None:
    """The factory's random-pixel images can look separable to the blinding audit; say so."""
    from evaluation.services import acknowledge_audit, ensure_current_audit

    row = ensure_current_audit(study)
    if row.blocking:
        acknowledge_audit(row, None, "test images: random pixels, not anatomy")


def design_study(*, readers, real, synthetic, practice=(), open=True, **options) -> Study:
    """``real``/``synthetic``: findings, one image each; ``practice``: (truth, finding) pairs."""
    study = StudyFactory(**options)
    for truth, findings in ((Truth.REAL, real), (Truth.SYNTHETIC, synthetic)):
        for finding in findings:
            StudyCase.objects.create(study=study, image=ImageFactory(truth=truth, finding=finding))
    for truth, finding in practice:
        StudyCase.objects.create(
            study=study, image=ImageFactory(truth=truth, finding=finding), is_practice=True
        )
    for reader in readers:
        Assignment.objects.create(study=study, reader=reader)
    if open:
        accept_audit(study)
        open_study(study)
    return study
