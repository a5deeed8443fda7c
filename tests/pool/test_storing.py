"""The one way into the pool: files first, rows second, the caller's rows in the same commit."""

import re

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.db import IntegrityError

from pool.imaging import make_display_png
from pool.models import Image, Truth
from pool.storing import NewFrame, NewImage, store_images

pytestmark = pytest.mark.django_db


def new_image(truth=Truth.REAL, sha="a" * 64) -> NewImage:
    return NewImage(
        truth=truth,
        modality="CXR",
        sha256=sha,
        original_format="png",
        original_width=40,
        original_height=30,
        finding="normal",
        source="unit",
    )


def frame(index=0, seed=0) -> NewFrame:
    pixels = np.random.default_rng(seed).random((30, 40), dtype=np.float32)
    return NewFrame(index, pixels, {"n": index})


def media_files(settings) -> list:
    return sorted(p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file())


def test_it_stores_one_original_and_a_row_with_its_derivative_per_frame(settings):
    frames = [frame(0, 1), frame(1, 2)]
    images = store_images(new_image(), original=b"original", extension=".dcm", frames=frames)
    assert [image.frame_index for image in images] == [0, 1]
    assert {image.original.name for image in images} == {images[0].original.name}
    assert default_storage.open(images[0].original.name).read() == b"original"
    for image, made in zip(images, frames, strict=True):
        stored = Image.objects.get(pk=image.pk)
        assert stored.display.read() == make_display_png(made.pixels, settings.IMAGE_DISPLAY_SIZE)
        assert stored.provenance == made.provenance
    assert len(media_files(settings)) == 3


def test_it_names_originals_at_random_whatever_their_truth():
    names = [
        store_images(
            new_image(truth, sha=str(n) * 64), original=b"x", extension=".png", frames=[frame()]
        )[0].original.name
        for n, truth in enumerate([Truth.REAL, Truth.SYNTHETIC])
    ]
    for name in names:
        assert re.fullmatch(r"originals/[0-9a-f]{2}/[0-9a-f]{32}\.png", name), name


def test_it_writes_the_callers_rows_in_the_same_transaction(settings):
    def refuse(images):
        assert Image.objects.filter(pk=images[0].pk).exists()
        raise IntegrityError("the caller's row clashed")

    with pytest.raises(IntegrityError):
        store_images(new_image(), original=b"x", extension=".png", frames=[frame()], then=refuse)
    assert Image.objects.count() == 0
    assert media_files(settings) == []


def test_it_refuses_the_same_content_twice_and_leaves_no_file(settings):
    store_images(new_image(), original=b"x", extension=".png", frames=[frame()])
    with pytest.raises(IntegrityError):
        store_images(new_image(), original=b"x", extension=".png", frames=[frame()])
    assert Image.objects.count() == 1
    assert len(media_files(settings)) == 2
