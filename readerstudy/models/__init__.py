from readerstudy.models.pool import Image, Modality, Truth, new_public_id
from readerstudy.models.study import (
    Answer,
    Assignment,
    Reading,
    ReadingRevision,
    ReadingSlot,
    Study,
    StudyCase,
    StudyStatus,
)

__all__ = [
    "Answer",
    "Assignment",
    "Image",
    "Modality",
    "Reading",
    "ReadingRevision",
    "ReadingSlot",
    "Study",
    "StudyCase",
    "StudyStatus",
    "Truth",
    "new_public_id",
]
