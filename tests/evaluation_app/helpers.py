"""Pool images with chosen display bytes, and studies made of them."""

import io

import numpy as np
from django.core.files.base import ContentFile
from PIL import Image as PILImage

from pool.imaging import make_display_png
from pool.models import Truth
from readerstudy.models import Assignment, StudyCase
from tests.factories import ImageFactory, StudyFactory, image_pixels


def image_with_display(truth: str, display: bytes, **fields):
    """An image whose stored original (what the study's presentation processes) and display
    file are both ``display``."""
    image = ImageFactory(truth=truth, **fields)
    with PILImage.open(io.BytesIO(display)) as decoded:
        image.original_width, image.original_height = decoded.size
    image.original.save("original.png", ContentFile(display), save=False)
    image.display.save("display.png", ContentFile(display), save=True)
    return image


def pixels(seed: int, size: int = 48, brightness: float = 0.0) -> np.ndarray:
    return np.clip(image_pixels(seed, size) + brightness, 0.0, 1.0)


def study_of(real_displays, synthetic_displays, *, readers=()):
    study = StudyFactory()
    for truth, displays in ((Truth.REAL, real_displays), (Truth.SYNTHETIC, synthetic_displays)):
        for display in displays:
            StudyCase.objects.create(study=study, image=image_with_display(truth, display))
    for reader in readers:
        Assignment.objects.create(study=study, reader=reader)
    return study


def leaky_study(n: int = 10, *, readers=()):
    """Synthetic images brighter and larger (80 px) than the real ones (64 px)."""
    real = [make_display_png(pixels(100 + i), 64) for i in range(n)]
    synthetic = [make_display_png(pixels(200 + i, brightness=0.3), 80) for i in range(n)]
    return study_of(real, synthetic, readers=readers)


def twin_study(n: int = 10, *, readers=()):
    """Every synthetic image looks exactly like one real image: nothing can separate them."""
    displays = [make_display_png(pixels(300 + i), 64) for i in range(n)]
    return study_of(displays, displays, readers=readers)
