from readerstudy.models.presentation import (
    Aspect,
    CtWindow,
    Derivative,
    PresentationProfile,
    SourceResolution,
)
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
    "Aspect",
    "CtWindow",
    "Derivative",
    "PresentationProfile",
    "SourceResolution",
    "Answer",
    "Assignment",
    "Design",
    "Mask",
    "Reading",
    "ReadingRevision",
    "ReadingSlot",
    "Study",
    "StudyCase",
    "StudyStatus",
]
