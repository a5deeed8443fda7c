"""A finished study built straight from the models: readers, cases, slots and readings."""

from datetime import timedelta

from django.utils import timezone

from pool.models import Truth
from readerstudy.models import Assignment, Reading, ReadingSlot, StudyCase
from tests.factories import ImageFactory, StudyFactory, UserFactory


def synthetic_provenance(index: int, **extra) -> dict:
    """Provenance as the generation engine writes it (plus the job id the Django side adds)."""
    return {"generator": "ddpm", "model": "tiny", "checkpoint": "tiny/step-100.pt",
            "weights_sha256": "ab" * 32, "seed": index, "class": "normal", "scheduler": "ddim",
            "steps": 50, "guidance": 2.0, "job": 7, **extra}


def finished_study(answers: dict[str, list[tuple[str, int | None]]], truths: list[str], *,
                   practice: int = 0, confidence: bool = True, repeats: dict | None = None,
                   provenance: dict[int, dict] | None = None, modalities: dict[int, str] | None = None):
    """answers[reader] = [(answer, confidence) per case in `truths` order; None: not answered].

    `practice` extra practice cases are read first by everyone (answered "real").
    `repeats[reader] = {case_index: (answer, confidence)}` adds second showings.
    `provenance[case_index]` replaces a synthetic image's provenance; `modalities[case_index]`
    its modality (default CXR). Positions are 1-based, as the reading code stores them.
    """
    study = StudyFactory(confidence_scale=5 if confidence else 0, status="closed")
    cases = []
    for _ in range(practice):
        cases.append(StudyCase.objects.create(study=study, image=ImageFactory(), is_practice=True))
    for index, truth in enumerate(truths):
        image = ImageFactory(
            truth=truth,
            finding="pneumonia" if index % 2 else "normal",
            modality=(modalities or {}).get(index, "CXR"),
            provenance=(provenance or {}).get(index, synthetic_provenance(index))
            if truth == Truth.SYNTHETIC else {"dataset": "unit", "original_name": f"p{index}.png"},
        )
        cases.append(StudyCase.objects.create(study=study, image=image))
    start = timezone.now() - timedelta(hours=1)
    for reader_name, reader_answers in answers.items():
        reader = UserFactory(username=reader_name)
        assignment = Assignment.objects.create(study=study, reader=reader)
        position = 1
        plan = [(case, ("real", None), 1) for case in cases[:practice]]
        plan += [(case, answer, 1) for case, answer in zip(cases[practice:], reader_answers, strict=True)]
        for case_index, answer in (repeats or {}).get(reader_name, {}).items():
            plan.append((cases[practice + case_index], answer, 2))
        for case, reading, showing in plan:
            answer, conf = reading if reading is not None else (None, None)
            slot = ReadingSlot.objects.create(
                assignment=assignment, case=case, position=position, showing=showing,
                is_practice=case.is_practice,
            )
            if answer is None:  # drawn but not answered yet
                position += 1
                continue
            served = start + timedelta(seconds=10 * position)
            Reading.objects.create(
                slot=slot, answer=answer, confidence=conf if confidence else None,
                served_at=served, answered_at=served + timedelta(seconds=4), client_ms=3900,
            )
            position += 1
    return study
