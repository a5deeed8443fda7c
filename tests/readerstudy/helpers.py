"""Studies ready to read, and a reader's way through them with the test client."""

import itertools
import re
from dataclasses import dataclass, field

from pool.models import Truth
from readerstudy.models import Assignment, ReadingSlot, Study, StudyCase
from readerstudy.services.studies import open_study
from tests.factories import ImageFactory, StudyFactory
from tests.sessions import session_queries  # noqa: F401 - for the reading tests

TOKEN_IN_URL = re.compile(r"/read/([A-Za-z0-9_-]+)/")

_findings = itertools.cycle(["pneumonia", "effusion", "cardiomegaly"])


@dataclass
class StudyBuilder:
    """Build a study with images of both truths; open it unless told otherwise."""

    created: list = field(default_factory=list)

    def __call__(
        self,
        *,
        readers=(),
        n_real: int = 2,
        n_synthetic: int = 2,
        n_practice: int = 0,
        open: bool = True,
        **options,
    ) -> Study:
        study = StudyFactory(**options)
        truths = [Truth.REAL] * n_real + [Truth.SYNTHETIC] * n_synthetic
        for truth in truths:
            StudyCase.objects.create(
                study=study, image=ImageFactory(truth=truth, finding=next(_findings))
            )
        for index in range(n_practice):
            truth = Truth.REAL if index % 2 == 0 else Truth.SYNTHETIC
            StudyCase.objects.create(study=study, image=ImageFactory(truth=truth), is_practice=True)
        for reader in readers:
            Assignment.objects.create(study=study, reader=reader)
        if open:
            open_study(study)
        self.created.append(study)
        return study


def slots_of(study: Study, reader) -> list[ReadingSlot]:
    return list(
        ReadingSlot.objects.filter(assignment__study=study, assignment__reader=reader)
        .select_related("case__image")
        .order_by("position")
    )


def case_url(slot: ReadingSlot) -> str:
    return f"/read/{slot.token}/"


def answer_payload(answer="real", confidence=None, comment="", client_ms="1234") -> dict:
    payload = {"answer": answer, "comment": comment, "client_ms": client_ms}
    if confidence is not None:
        payload["confidence"] = str(confidence)
    return payload


HTMX = {"HTTP_HX_REQUEST": "true"}

