"""Derivatives of a study's images under its presentation profile: resolve, build, serve.

* ``resolve_profile`` turns the stored profile into the pipeline's parameters, with the matched
  resolution worked out from the study's cases; once frozen, the stored parameters are used.
* ``build_study_derivatives`` builds what is missing, all or nothing: a failure removes what
  this run wrote and raises ``PresentationError`` naming the case.
* Opening builds first (``build_for_opening``, outside the opening transaction), then refuses
  unless every case has its derivative, and freezes the profile with the drawn orders.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from pool.imaging import ImageImportError, read_image
from pool.imaging.hounsfield import read_hounsfield
from pool.imaging.pipeline import (
    CT_WINDOWS,
    PresentationError,
    Profile,
    native_resolution,
    render_png,
    unit_to_hu,
)
from pool.models import Image, Modality
from readerstudy.models import Study, StudyCase
from readerstudy.models.presentation import (
    Derivative,
    PresentationProfile,
    SourceResolution,
)
from readerstudy.services.studies import StudyRefused

logger = logging.getLogger(__name__)


def profile_of(study: Study) -> PresentationProfile:
    """The study's profile, created with the defaults on first use."""
    profile, _ = PresentationProfile.objects.get_or_create(study=study)
    return profile


def _case_images(study: Study):
    return Image.objects.filter(study_cases__study=study).order_by("id")


def lowest_native_resolution(study: Study, *, aspect: str, border_crop: float) -> int | None:
    sizes = _case_images(study).values_list("original_width", "original_height")
    values = [native_resolution(w, h, aspect=aspect, border_crop=border_crop) for w, h in sizes]
    return min(values) if values else None


def resolve_profile(study: Study, stored: PresentationProfile | None = None) -> Profile:
    """The pipeline parameters of the study's presentation (CT window left out: per image)."""
    stored = stored or profile_of(study)
    if stored.is_frozen:
        params = dict(stored.frozen_params)
        params["percentiles"] = tuple(params["percentiles"])
        params["window"] = None
        return Profile(**params)
    border = stored.border_crop_percent / 100.0
    target = 0
    if stored.source_resolution_mode == SourceResolution.FIXED:
        target = int(stored.source_resolution or 0)
    elif stored.source_resolution_mode == SourceResolution.LOWEST:
        target = lowest_native_resolution(study, aspect=stored.aspect, border_crop=border) or 0
    return Profile(
        display_size=stored.display_size,
        aspect=stored.aspect,
        source_resolution=max(target, 16) if target else 0,
        border_crop=border,
        standardise=stored.standardise_intensity,
        percentiles=(stored.percentile_low, stored.percentile_high),
    )


def image_profile(base: Profile, image: Image, window: tuple[float, float] | None) -> Profile:
    """CT images carry the window in their parameters; other images never do."""
    return base.with_window(window if image.modality == Modality.CT else None)


def study_window(stored: PresentationProfile) -> tuple[float, float]:
    return stored.window()


def reader_windows(stored: PresentationProfile) -> dict[str, tuple[float, float]]:
    """The windows a reader may switch a CT case to: the study's, plus the presets if offered."""
    windows = {"study": stored.window()}
    if stored.ct_presets_for_readers:
        windows.update(CT_WINDOWS)
    return windows


# ------------------------------------------------------------------------------ building
def _source(image: Image) -> tuple[object, bool]:
    """Decoded pixels of the stored original: HU for CT (real DICOM, or a windowed PNG mapped
    back through the window it was made in), grey in [0, 1] otherwise."""
    with image.original.open("rb") as handle:
        data = handle.read()
    if image.modality == Modality.CT and image.original_format == "dicom":
        return read_hounsfield(data, image.frame_index), True
    frames = (image.frame_index, image.frame_index) if image.original_format == "dicom" else None
    try:
        decoded = read_image(
            data,
            name=image.original.name,
            max_bytes=settings.IMAGE_MAX_FILE_BYTES,
            max_pixels=settings.IMAGE_MAX_PIXELS,
            frames=frames,
        )
    except ImageImportError as error:
        raise PresentationError(f"the stored original cannot be decoded ({error})") from None
    unit = decoded.frames[0].pixels
    if image.modality == Modality.CT:
        # A synthetic (or PNG) CT slice lives in the 8-bit space of the window it was made in.
        centre, width = (image.provenance or {}).get("window") or CT_WINDOWS["lung"]
        return unit_to_hu(unit, float(centre), float(width)), True
    return unit, False


def render_image(image: Image, profile: Profile) -> bytes:
    pixels, hounsfield = _source(image)
    return render_png(pixels, profile, hounsfield=hounsfield)


def _store(image: Image, profile: Profile, png: bytes) -> tuple[Derivative, bool]:
    key = profile.key()
    existing = Derivative.objects.filter(image=image, key=key).first()
    if existing is not None:
        return existing, False
    derivative = Derivative(image=image, key=key)
    derivative.file.save("derivative.png", ContentFile(png), save=False)
    try:
        with transaction.atomic():
            derivative.save()
    except IntegrityError:  # built concurrently: keep the other one
        derivative.file.delete(save=False)
        return Derivative.objects.get(image=image, key=key), False
    return derivative, True


def ensure_derivative(image: Image, profile: Profile) -> Derivative:
    existing = Derivative.objects.filter(image=image, key=profile.key()).first()
    if existing is not None:
        return existing
    return _store(image, profile, render_image(image, profile))[0]


def _wanted(study: Study, stored: PresentationProfile) -> list[tuple[StudyCase, Profile]]:
    base = resolve_profile(study, stored)
    wanted = []
    cases = study.cases.select_related("image").order_by("id")
    for case in cases:
        windows = [stored.window()]
        if case.image.modality == Modality.CT:
            windows += list(reader_windows(stored).values())
        for window in dict.fromkeys(windows):
            wanted.append((case, image_profile(base, case.image, window)))
    return wanted


def build_study_derivatives(study: Study) -> int:
    """Build every missing derivative of the study's cases; all or nothing; returns how many."""
    stored = profile_of(study)
    built: list[Derivative] = []
    try:
        for case, profile in _wanted(study, stored):
            if Derivative.objects.filter(image=case.image, key=profile.key()).exists():
                continue
            try:
                png = render_image(case.image, profile)
            except (PresentationError, OSError, ValueError) as error:
                raise PresentationError(
                    f"case {case.pk} (image {case.image.public_id}): {error}"
                ) from None
            derivative, created = _store(case.image, profile, png)
            if created:
                built.append(derivative)
    except BaseException:
        for derivative in built:  # nothing half-built
            derivative.file.delete(save=False)
            derivative.delete()
        raise
    return len(built)


def build_for_opening(study: Study) -> None:
    """Open-check preparation: build the derivatives, or refuse with the reason."""
    try:
        build_study_derivatives(study)
    except PresentationError as error:
        raise StudyRefused(
            f"“{study}” cannot open: a presentation derivative could not be built: {error}. "
            "Replace that image or change the presentation profile."
        ) from None


def refuse_missing_derivatives(study: Study) -> None:
    """Open check (study locked): every case has its derivative; then freeze the profile."""
    stored = profile_of(study)
    missing = [
        case.pk
        for case, profile in _wanted(study, stored)
        if not Derivative.objects.filter(image_id=case.image_id, key=profile.key()).exists()
    ]
    if missing:
        listed = ", ".join(str(pk) for pk in sorted(set(missing))[:10])
        raise StudyRefused(
            f"“{study}” cannot open: the presentation derivatives of cases {listed} are missing; "
            "open it again to build them."
        )
    freeze(study, stored)


def freeze(study: Study, stored: PresentationProfile) -> None:
    if stored.is_frozen:
        return
    base = resolve_profile(study, stored)
    params = {**base.__dict__, "percentiles": list(base.percentiles), "window": None}
    stored.frozen_params = params
    stored.frozen_key = base.key()
    stored.frozen_at = timezone.now()
    stored.has_ct = study.cases.filter(image__modality=Modality.CT).exists()
    stored.save(update_fields=["frozen_params", "frozen_key", "frozen_at", "has_ct"])


def profile_key(study: Study) -> str:
    """Identifies the study's presentation (for the audit's staleness check)."""
    stored = profile_of(study)
    base = resolve_profile(study, stored)
    return base.with_window(stored.window()).key()


def derivative_bytes(study: Study, image: Image, window: str | None = None) -> bytes:
    """What a reader receives for ``image`` in ``study`` (in a preset window, for CT)."""
    try:
        stored = study.presentation  # fetched with the slot by the reading views
    except PresentationProfile.DoesNotExist:
        stored = profile_of(study)
    chosen = stored.window()
    if window is not None and image.modality == Modality.CT:
        chosen = reader_windows(stored).get(window, chosen)
    derivative = ensure_derivative(image, image_profile(resolve_profile(study, stored), image, chosen))
    with derivative.file.open("rb") as handle:
        return handle.read()


def reading_options(study: Study) -> dict:
    """What the reading page needs: the minimum viewing time and the CT windows a reader may
    switch to. The same for every case of the study (never per image)."""
    try:
        stored = study.presentation  # select_related by the reading views
    except PresentationProfile.DoesNotExist:
        return {"min_view_ms": 0, "windows": []}
    windows = []
    if stored.has_ct and stored.ct_presets_for_readers:
        windows = list(reader_windows(stored))
    return {"min_view_ms": round(stored.min_viewing_seconds * 1000), "windows": windows}
