from readerstudy.models.pool import Image, Modality, Truth, new_public_id
from readerstudy.models.study import (
    Answer,
    Assignment,
    Design,
    Mask,
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
    "Design",
    "Image",
    "Mask",
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
