"""A study's readings, from the database into the pure statistics of `readerstudy.analysis`.

`load_readings(study)` reads everything `analyse` needs in a fixed number of queries (readers,
cases with their images, readings), whatever the study's size: the readings come as plain
value tuples (no model instance per row) and go straight into numpy arrays.

- Practice cases are left out everywhere.
- A reader is the assignment's username; a case is its image's public id.
- Second showings (repeats) keep `showing=2`: the analysis uses them for intra-reader
  consistency only.
- Cases are grouped for fooling rates by generator (model), generator checkpoint (model and
  checkpoint), generation job, modality and finding, read from the image's fields and its
  provenance JSON. Real images form the group "(real images)" in the generator groupings.

`study_analysis(study)` runs `analyse` and caches the result under a key that changes whenever
the inputs can have changed (see `analysis_cache_key`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from itertools import islice
from pathlib import PurePath
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db.models import Case, Count, IntegerField, Max, Q, Sum, When
from django.db.models import Value as V

from pool.models import Truth
from readerstudy.analysis import SCHEMA, ReadingTable, StudyAnalysis, analyse
from readerstudy.analysis.bootstrap import CASE
from readerstudy.models import Answer, Assignment, Reading, Study, StudyCase

DEFAULT_BOOTSTRAP = 1000
DEFAULT_SEED = 0
LOAD_CHUNK = 50_000
CACHE_SECONDS = 3600
#: Bump when the loader changes what it feeds to `analyse` (cached results then miss).
LOADER_VERSION = 2

REAL_GROUP = "(real images)"
NO_JOB = "(no generation job recorded)"
UNKNOWN = "(unknown)"

#: The case groupings passed to `analyse`, in display order, with their human names.
GROUPINGS = {
    "generator": "generator (model)",
    "generator_checkpoint": "generator checkpoint (model and weights)",
    "generation_job": "generation job",
    "modality": "modality",
    "finding": "finding",
}

ANSWER_CODE = Case(
    When(answer=Answer.REAL, then=V(0)),
    When(answer=Answer.UNSURE, then=V(1)),
    When(answer=Answer.FAKE, then=V(2)),
    default=V(-1),  # impossible by the model's choices; ReadingTable refuses it loudly
    output_field=IntegerField(),
)


# ------------------------------------------------------------------------------- provenance


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def generator_kind(provenance: dict) -> str:
    """The generation engine: provenance `generator` ("ddpm", "stable-diffusion", "image-api"),
    or the older `kind`."""
    return _text(provenance.get("generator")) or _text(provenance.get("kind"))


def relative_checkpoint(path: str) -> str:
    """A checkpoint path relative to the model folder (MODEL_ROOT), so no export or label shows
    where the server keeps its files; an absolute path elsewhere keeps only its last two parts
    (model folder and file), a relative or hub name is kept as it is."""
    if not path:
        return ""
    candidate = PurePath(path)
    if not candidate.is_absolute():
        return path
    try:
        return candidate.relative_to(PurePath(settings.MODEL_ROOT)).as_posix()
    except ValueError:
        return PurePath(*candidate.parts[-2:]).as_posix()


def checkpoint_label(provenance: dict) -> str:
    """The weights an image came from: checkpoint path (or SD base checkpoint) relative to the
    model folder, with the short SHA-256 of its weights, and the LoRA's short SHA-256 when one
    was applied."""
    path = relative_checkpoint(
        _text(provenance.get("checkpoint"))
        or _text(provenance.get("base_checkpoint"))
        or _text(provenance.get("checkpoint_path"))
    )
    sha = _text(provenance.get("weights_sha256")) or _text(provenance.get("checkpoint_sha256"))
    label = path
    if sha:
        label = f"{path}@sha256:{sha[:16]}" if path else f"sha256:{sha[:16]}"
    lora = _text(provenance.get("lora_sha256"))
    if lora:
        label = f"{label} + lora sha256:{lora[:16]}" if label else f"lora sha256:{lora[:16]}"
    return label


def model_label(provenance: dict, source: str = "") -> str:
    """The generator a synthetic image came from: its model name (with the engine kind)."""
    model = _text(provenance.get("model"))
    kind = generator_kind(provenance)
    if model and kind:
        return f"{model} ({kind})"
    return model or kind or _text(source) or UNKNOWN


def prompt_or_class(provenance: dict) -> str:
    return (
        _text(provenance.get("prompt"))
        or _text(provenance.get("class"))
        or _text(provenance.get("finding"))
    )


def generator_groups(provenance: dict | None, truth: str, source: str = "") -> tuple[str, str, str]:
    """(generator, generator_checkpoint, generation_job) groups of one image."""
    if truth != Truth.SYNTHETIC:
        return (REAL_GROUP,) * 3
    provenance = provenance if isinstance(provenance, dict) else {}
    model = model_label(provenance, source)
    checkpoint = checkpoint_label(provenance)
    job = _text(provenance.get("job"))
    return (
        model,
        f"{model} @ {checkpoint}" if checkpoint else f"{model} @ (checkpoint not recorded)",
        f"job {job}" if job else NO_JOB,
    )


# ------------------------------------------------------------------------------------ loading


@dataclass(frozen=True)
class CaseFacts:
    """What the dashboard shows next to a case's votes (staff only: includes the truth)."""

    public_id: str
    truth: str
    modality: str
    finding: str
    source: str
    generator: str


@dataclass(frozen=True)
class LoadedStudy:
    table: ReadingTable
    #: by case label (= image public id)
    cases: dict[str, CaseFacts]
    #: assignment id of each reader label, in label order
    assignment_ids: tuple[int, ...]


def _readers(study: Study) -> list[tuple[int, str]]:
    return list(
        Assignment.objects.filter(study=study)
        .order_by("reader__username", "id")
        .values_list("id", "reader__username")
    )


def _cases(study: Study) -> list[tuple]:
    return list(
        StudyCase.objects.filter(study=study, is_practice=False)
        .order_by("id")
        .values_list(
            "id",
            "image__public_id",
            "image__truth",
            "image__modality",
            "image__finding",
            "image__source",
            "image__provenance",
        )
    )


def _readings(study: Study) -> np.ndarray:
    """(n x 5) float array: assignment id, case id, answer code, confidence (NaN), showing.

    One query, fetched in chunks (a server-side cursor on PostgreSQL) and converted to numpy
    chunk by chunk, so no list of a whole study's row tuples is ever held.
    """
    rows = (
        Reading.objects.filter(slot__assignment__study=study, slot__is_practice=False)
        .order_by()
        .values_list(
            "slot__assignment_id", "slot__case_id", ANSWER_CODE, "confidence", "slot__showing"
        )
        .iterator(chunk_size=LOAD_CHUNK)
    )
    blocks = []
    while batch := list(islice(rows, LOAD_CHUNK)):
        # One conversion for all columns; None (no confidence) becomes NaN.
        blocks.append(np.array(batch, dtype=np.float64))
    return np.concatenate(blocks) if blocks else np.zeros((0, 5))


def _index_of(ids: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position in `ids` of each value, and whether it was found there."""
    if ids.size == 0:
        return np.zeros(values.size, np.int64), np.zeros(values.size, bool)
    order = np.argsort(ids)
    pos = np.minimum(np.searchsorted(ids, values, sorter=order), ids.size - 1)
    codes = order[pos]
    return codes, ids[codes] == values


def load_readings(study: Study) -> LoadedStudy:
    """Every non-practice reading of the study as a `ReadingTable` (three queries)."""
    readers = _readers(study)
    cases = _cases(study)
    data = _readings(study)

    assignment_ids = np.array([pk for pk, _ in readers], np.int64)
    case_ids = np.array([row[0] for row in cases], np.int64)
    case_is_fake = np.array([row[2] == Truth.SYNTHETIC for row in cases], bool)

    reader_code, reader_found = _index_of(assignment_ids, data[:, 0].astype(np.int64))
    case_code, case_found = _index_of(case_ids, data[:, 1].astype(np.int64))
    # A reading whose slot is not flagged practice but whose case is a practice case cannot be
    # matched to a study case: it is left out rather than misattributed.
    known = reader_found & case_found
    reader_code, case_code, data = reader_code[known], case_code[known], data[known]

    facts: dict[str, CaseFacts] = {}
    groups: dict[str, list[str]] = {name: [] for name in GROUPINGS}
    for _pk, public_id, truth, modality, finding, source, provenance in cases:
        generator, checkpoint, job = generator_groups(provenance, truth, source)
        facts[public_id] = CaseFacts(public_id, truth, modality, finding, source, generator)
        groups["generator"].append(generator)
        groups["generator_checkpoint"].append(checkpoint)
        groups["generation_job"].append(job)
        groups["modality"].append(modality)
        groups["finding"].append(finding or "(no finding recorded)")

    table = ReadingTable(
        reader=reader_code,
        case=case_code,
        is_fake=case_is_fake[case_code],
        answer=data[:, 2].astype(np.int64),
        confidence=data[:, 3],
        showing=data[:, 4].astype(np.int64),
        reader_labels=[name for _, name in readers],
        case_labels=[row[1] for row in cases],
        case_groups=groups,
        collects_confidence=study.collects_confidence,
    )
    return LoadedStudy(table, facts, tuple(int(pk) for pk in assignment_ids))


# ----------------------------------------------------------------------------------- analysis


def analysis_cache_key(study: Study, n_bootstrap: int, seed: int, bootstrap: str = CASE) -> str:
    """A key that changes whenever the analysis' inputs can have changed.

    One aggregate query over the study's readings: their number, the largest id, the latest
    answer time and the total number of revisions (a changed answer moves `answered_at` and
    the revision count; a new or deleted reading moves the count or the largest id); and one
    over the cases and their images (count, practice count, largest case id, latest image
    edit), which catches edited provenance, findings or truth. Readers added, removed or
    renamed are caught by `study_analysis`, which compares the cached reader labels.
    """
    readings = Reading.objects.filter(slot__assignment__study=study).aggregate(
        n=Count("id"), last_id=Max("id"), last=Max("answered_at"), revisions=Sum("revision_count")
    )
    cases = StudyCase.objects.filter(study=study).aggregate(
        n=Count("id"),
        n_practice=Count("id", filter=Q(is_practice=True)),
        last_id=Max("id"),
        image_edit=Max("image__updated_at"),
    )
    parts = [
        SCHEMA,
        LOADER_VERSION,
        study.pk,
        n_bootstrap,
        seed,
        bootstrap,
        readings["n"],
        readings["last_id"],
        readings["last"].isoformat() if readings["last"] else "",
        readings["revisions"] or 0,
        cases["n"],
        cases["n_practice"],
        cases["last_id"],
        cases["image_edit"].isoformat() if cases["image_edit"] else "",
    ]
    digest = hashlib.sha256(repr(parts).encode()).hexdigest()[:32]
    return f"readerstudy:analysis:{study.pk}:{digest}"


def run_analysis(
    study: Study,
    *,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
    bootstrap: str = CASE,
) -> StudyAnalysis:
    """Load and analyse, no cache. ``bootstrap``: "case" (readers fixed) or "two-way"."""
    return analyse(
        load_readings(study).table, n_bootstrap=n_bootstrap, seed=seed, bootstrap=bootstrap
    )


def study_analysis(
    study: Study,
    *,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
    use_cache: bool = True,
    bootstrap: str = CASE,
) -> StudyAnalysis:
    """The study's analysis, from the cache when nothing it depends on has changed.

    Reader usernames are part of the result but not of the aggregate key: a study whose
    reader was renamed is caught because the cached value records the labels and is compared
    with the current ones (one small query).
    """
    options = {"n_bootstrap": n_bootstrap, "seed": seed, "bootstrap": bootstrap}
    if not use_cache:
        return run_analysis(study, **options)
    key = analysis_cache_key(study, n_bootstrap, seed, bootstrap)
    cached = cache.get(key)
    labels = tuple(name for _, name in _readers(study))
    if cached is not None:
        cached_labels, analysis = cached
        if cached_labels == labels:
            return analysis
    analysis = run_analysis(study, **options)
    cache.set(key, (tuple(r.reader for r in analysis.readers), analysis), CACHE_SECONDS)
    return analysis


def study_payload(study: Study, analysis: StudyAnalysis) -> dict[str, Any]:
    from readerstudy.design_results import design_payload  # imports this module's models

    """The JSON document of `study_stats --json` and the dashboard's JSON endpoint: the
    analysis' documented keys (`docs/statistics.md`) plus a `study` block."""
    payload = analysis.to_jsonable()
    return {
        "schema": payload.pop("schema"),
        "study": {
            "public_id": study.public_id,
            "title": study.title,
            "status": study.status,
            "confidence_scale": study.confidence_scale,
            "design": study.design,
        },
        **payload,
        "designs": design_payload(
            study, analysis=analysis, n_bootstrap=payload["summary"]["n_bootstrap"],
            seed=payload["summary"]["seed"],
        ),
    }


def reader_progress(study: Study) -> list[dict[str, Any]]:
    """Per reader: slots in the drawn order, answered, practice and repeats (one query)."""
    answered = Q(slots__reading__isnull=False)
    rows = (
        Assignment.objects.filter(study=study)
        .order_by("reader__username", "id")
        .annotate(
            total=Count("slots"),
            answered=Count("slots", filter=answered),
            practice_total=Count("slots", filter=Q(slots__is_practice=True)),
            practice_answered=Count("slots", filter=answered & Q(slots__is_practice=True)),
            repeats_total=Count("slots", filter=Q(slots__showing__gt=1)),
            repeats_answered=Count("slots", filter=answered & Q(slots__showing__gt=1)),
            last_answer=Max("slots__reading__answered_at"),
        )
        .values(
            "reader__username",
            "order_drawn_at",
            "completed_at",
            "total",
            "answered",
            "practice_total",
            "practice_answered",
            "repeats_total",
            "repeats_answered",
            "last_answer",
        )
    )
    out = []
    for row in rows:
        total = row["total"]
        out.append(
            {
                "reader": row["reader__username"],
                "order_drawn": row["order_drawn_at"] is not None,
                "completed_at": row["completed_at"],
                "total": total,
                "answered": row["answered"],
                "share": row["answered"] / total if total else None,
                "practice": (row["practice_answered"], row["practice_total"]),
                "repeats": (row["repeats_answered"], row["repeats_total"]),
                "last_answer": row["last_answer"],
            }
        )
    return out


def find_study(identifier: str) -> Study:
    """A study by public id, or by primary key when the identifier is all digits and no study
    has that public id. Raises `Study.DoesNotExist` with a message naming both."""
    identifier = str(identifier).strip()
    study = Study.objects.filter(public_id=identifier).first()
    if study is None and identifier.isdigit():
        study = Study.objects.filter(pk=int(identifier)).first()
    if study is None:
        raise Study.DoesNotExist(f"no study with public id or pk {identifier!r}")
    return study
