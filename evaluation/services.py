"""Django side of the evaluation: the blinding audit of a study and the quality evaluations.

Blinding audit (``run_blinding_audit``): for every non-practice case of a study, the bytes and
headers a reader's browser receives for its image are fetched through the real reader image view
(``readerstudy.views.reading.image``, with every middleware) for a throwaway reader and slot made
inside a transaction that is rolled back, so nothing is re-implemented and nothing is left behind.
``evaluation.metrics.audit`` gives every cue's AUC; a cue above the threshold (0.65) blocks opening
the study until a researcher acknowledges the audit.

Small studies: with few images per class some cue separates the classes by chance alone (at 2
against 2, each continuous cue does so with probability 1/3), so a cue only blocks when the study
has at least ``EVALUATION_AUDIT_MIN_PER_CLASS`` (default 10) non-practice images of each truth;
below that the audit is stored and shown with a note, but does not block.
"""

from __future__ import annotations

import base64
import hashlib
import io
import secrets

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from django.urls import reverse
from PIL import Image as PILImage

from evaluation.metrics import BLOCKING_THRESHOLD, AuditItem, audit
from evaluation.metrics.remedies import remedy
from evaluation.models import AuditAcknowledgement, BlindingAudit, EvaluationStatus
from pool.models import Truth
from readerstudy.analysis import to_jsonable
from readerstudy.models import Assignment, ReadingSlot, Study, StudyStatus
from readerstudy.services.presentation import (
    build_study_derivatives,
    lowest_native_resolution,
    profile_key,
    profile_of,
    resolve_profile,
)
from readerstudy.services.studies import StudyRefused

DEFAULT_MIN_PER_CLASS = 10


def audit_min_per_class() -> int:
    return int(getattr(settings, "EVALUATION_AUDIT_MIN_PER_CLASS", DEFAULT_MIN_PER_CLASS))


def cases_signature(study: Study) -> str:
    """SHA-256 of the study's non-practice cases (case id and image id), in id order, and of its
    presentation profile: the audit measures the derivatives readers receive."""
    rows = study.cases.filter(is_practice=False).order_by("id").values_list("id", "image_id")
    text = ";".join(f"{case_id}:{image_id}" for case_id, image_id in rows)
    text += "|" + profile_key(study)
    return hashlib.sha256(text.encode()).hexdigest()


def current_audit(study: Study) -> BlindingAudit | None:
    """The latest finished audit of the study's current cases, or None (none yet, or stale)."""
    return (
        BlindingAudit.objects.filter(
            study=study, status=EvaluationStatus.SUCCEEDED, cases_signature=cases_signature(study)
        )
        .order_by("-computed_at", "-id")
        .first()
    )


class _RollBack(Exception):
    pass


def _request_host() -> str:
    for host in settings.ALLOWED_HOSTS:
        if host == "*":
            return "localhost"
        return host.lstrip(".")
    return "localhost"


def browser_view(study: Study) -> list[tuple[int, bytes, dict[str, str], bool]]:
    """(case id, body, headers, is synthetic) for every non-practice case, as a reader gets it.

    A throwaway reader is assigned to the study, which is marked open, and given one slot per
    case; each image is then requested from the reader image view through Django's test client
    (the full middleware stack). All of it happens in a transaction that is rolled back.
    """
    cases = list(study.cases.filter(is_practice=False).select_related("image").order_by("id"))
    received: list[tuple[int, bytes, dict[str, str], bool]] = []
    if not cases:
        return received
    try:
        with transaction.atomic():
            Study.objects.filter(pk=study.pk).update(status=StudyStatus.OPEN)
            user = get_user_model().objects.create(
                username=f"blinding-audit-{secrets.token_hex(8)}", is_active=True
            )
            assignment = Assignment.objects.create(study=study, reader=user)
            slots = ReadingSlot.objects.bulk_create(
                ReadingSlot(assignment=assignment, case=case, position=index + 1)
                for index, case in enumerate(cases)
            )
            client = Client(HTTP_HOST=_request_host())
            client.force_login(user)
            secure = bool(getattr(settings, "SECURE_SSL_REDIRECT", False))
            for case, slot in zip(cases, slots, strict=True):
                response = client.get(reverse("reading-image", args=[slot.token]), secure=secure)
                if response.status_code != 200:
                    raise RuntimeError(
                        f"the reader image view answered {response.status_code} for case "
                        f"{case.pk}; the audit cannot see what readers receive"
                    )
                received.append(
                    (
                        case.pk,
                        bytes(response.content),
                        {name: str(value) for name, value in response.headers.items()},
                        case.image.truth == Truth.SYNTHETIC,
                    )
                )
            raise _RollBack
    except _RollBack:
        pass
    return received


def _blocking_rows(report, threshold: float, advice: dict[str, str]) -> list[dict]:
    return [
        {
            "name": cue.name,
            "group": cue.group,
            "auc": cue.value,
            "direction": cue.direction,
            "remedy": advice.get(cue.name, ""),
        }
        for cue in report.blocking(threshold)
    ]


def _advice(study: Study, report, threshold: float) -> dict[str, str]:
    stored = profile_of(study)
    matched = resolve_profile(study, stored).source_resolution
    lowest = lowest_native_resolution(
        study, aspect=stored.aspect, border_crop=stored.border_crop_percent / 100.0
    )
    return {
        cue.name: remedy(cue.name, cue.direction, lowest=lowest, matched=matched)
        for cue in report.blocking(threshold)
    }


def mean_images(received, size: int = 256) -> dict[str, str]:
    """The mean real and the mean synthetic derivative, as small PNG data URLs."""
    sums: dict[bool, np.ndarray] = {}
    counts: dict[bool, int] = {}
    for _pk, body, _headers, synthetic in received:
        try:
            with PILImage.open(io.BytesIO(body)) as image:
                grey = np.asarray(image.convert("L"), np.float64)
        except (OSError, ValueError):
            continue
        if synthetic in sums and sums[synthetic].shape != grey.shape:
            continue
        sums[synthetic] = sums.get(synthetic, 0) + grey
        counts[synthetic] = counts.get(synthetic, 0) + 1
    out = {}
    for synthetic, total in sums.items():
        mean = PILImage.fromarray(np.rint(total / counts[synthetic]).astype(np.uint8))
        mean.thumbnail((size, size))
        buffer = io.BytesIO()
        mean.save(buffer, format="PNG")
        label = "synthetic" if synthetic else "real"
        out[label] = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    return out


def run_blinding_audit(study: Study, *, threshold: float = BLOCKING_THRESHOLD) -> BlindingAudit:
    """Audit what readers would receive for the study's cases now, and store the result."""
    signature = cases_signature(study)
    row = BlindingAudit.objects.create(
        study=study, cases_signature=signature, threshold=threshold
    )
    try:
        # Built (and kept) first: inside browser_view's rolled-back transaction they would be
        # built again at every audit and their rows lost.
        build_study_derivatives(study)
        received = browser_view(study)
        items = [
            AuditItem(content=body, headers=headers, is_synthetic=synthetic, label=f"case {pk}")
            for pk, body, headers, synthetic in received
        ]
        report = audit(items)
    except Exception as error:  # stored, and the study stays unopenable until it succeeds
        row.status = EvaluationStatus.FAILED
        row.error = f"{type(error).__name__}: {error}"
        row.save(update_fields=["status", "error"])
        raise
    payload = to_jsonable(report)
    advice = _advice(study, report, threshold)
    payload["remedies"] = advice
    payload["mean_images"] = mean_images(received)
    blocking = _blocking_rows(report, threshold, advice)
    minimum = audit_min_per_class()
    if blocking and min(report.n_synthetic, report.n_real) < minimum:
        payload["small_sample_note"] = (
            f"only {report.n_synthetic} synthetic and {report.n_real} real images: with fewer "
            f"than {minimum} of each, cues above {threshold} are shown but do not block (chance "
            "alone separates such small sets)"
        )
        blocking = []
    row.report = payload
    row.blocking = blocking
    row.status = EvaluationStatus.SUCCEEDED
    row.save(update_fields=["report", "blocking", "status"])
    return row


def ensure_current_audit(study: Study) -> BlindingAudit:
    return current_audit(study) or run_blinding_audit(study)


def acknowledge_audit(audit_row: BlindingAudit, user, note: str) -> BlindingAudit:
    """Record that ``user`` accepts the audit's blocking cues (who, when and why).

    Every acknowledgement is kept as its own row, linked to the audit it answered; the audit's
    own fields hold the first one and are never overwritten.
    """
    if not note.strip():
        raise ValueError("say why the cues are acceptable")
    with transaction.atomic():
        locked = BlindingAudit.objects.select_for_update().get(pk=audit_row.pk)
        entry = AuditAcknowledgement.objects.create(
            audit=locked, user=user, note=note.strip(), blocking=locked.blocking
        )
        if locked.acknowledged_at is None:
            locked.acknowledged_by = user
            locked.acknowledged_at = entry.acknowledged_at
            locked.acknowledgement_note = entry.note
            locked.save(
                update_fields=["acknowledged_by", "acknowledged_at", "acknowledgement_note"]
            )
    audit_row.refresh_from_db()
    return audit_row


def refuse_unacknowledged_leak(study: Study) -> None:
    """Open check: refuse a study whose current audit has an unacknowledged blocking cue."""
    row = ensure_current_audit(study)
    if row.blocking and not row.is_acknowledged:
        cues = ", ".join(
            f"{cue['name']} (AUC {cue['auc']:.2f}, {cue['direction']})" for cue in row.blocking
        )
        raise StudyRefused(
            f"“{study}” cannot open: the blinding audit found something other than anatomy that "
            f"separates real from synthetic images: {cues}. Fix the images, or acknowledge the "
            f"audit on the study's admin page."
        )
