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
    "Reading",
    "ReadingRevision",
    "ReadingSlot",
    "Study",
    "StudyCase",
    "StudyStatus",
]
