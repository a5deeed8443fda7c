"""CT in Hounsfield units: one study window for every CT case, whatever the series' header says."""

import io

import numpy as np
import pydicom
import pytest
from PIL import Image as PILImage
from pydicom.data import get_testdata_file

from pool.imaging.pipeline import CT_WINDOWS, Profile, window_unit
from pool.importing import ImportLabels, import_bytes
from pool.models import Truth
from readerstudy.services.presentation import image_profile, render_image

pytestmark = pytest.mark.django_db


def ct_series(window: tuple[float, float], *, shift_storage: bool) -> bytes:
    """pydicom's CT_small slice with its own header window; optionally stored with a different
    rescale intercept (same HU, different stored values)."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.WindowCenter, ds.WindowWidth = window
    if shift_storage:  # stored = HU + 24 instead of HU + 1024: intercept -24
        arr = ds.pixel_array.astype(np.int32) - 1000
        ds.PixelData = arr.astype(np.int16).tobytes()
        ds.RescaleIntercept = -24
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def ct_series_without_rescale() -> bytes:
    """The same slice stored directly in HU (signed), with no Rescale Slope/Intercept at all."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    hu = ds.pixel_array.astype(np.int32) * int(ds.RescaleSlope) + int(ds.RescaleIntercept)
    del ds.RescaleSlope
    del ds.RescaleIntercept
    ds.PixelRepresentation = 1
    ds.PixelData = hu.astype(np.int16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def decoded(png: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(png)), np.int16)


def test_it_maps_two_series_with_different_header_windows_to_the_same_grey():
    lung = import_bytes(ct_series((-600, 1500), shift_storage=False), name="a.dcm",
                        labels=ImportLabels(truth=Truth.REAL)).images[0]
    soft = import_bytes(ct_series((40, 350), shift_storage=True), name="b.dcm",
                        labels=ImportLabels(truth=Truth.REAL)).images[0]
    assert lung.modality == soft.modality == "CT"
    # At import each series was windowed with its own header: the display files differ.
    assert not np.array_equal(decoded(lung.display.read()), decoded(soft.display.read()))
    bare = import_bytes(ct_series_without_rescale(), name="c.dcm",
                        labels=ImportLabels(truth=Truth.REAL, modality="CT")).images[0]
    for window in (CT_WINDOWS["mediastinum"], CT_WINDOWS["lung"]):
        base = Profile(display_size=128)
        a = render_image(lung, image_profile(base, lung, window))
        b = render_image(soft, image_profile(base, soft, window))
        c = render_image(bare, image_profile(base, bare, window))
        assert np.array_equal(decoded(a), decoded(b))
        assert np.array_equal(decoded(a), decoded(c))


def test_it_presents_synthetic_ct_through_the_same_window():
    source = ct_series((-600, 1500), shift_storage=False)
    real = import_bytes(source, name="r.dcm", labels=ImportLabels(truth=Truth.REAL)).images[0]
    ds = pydicom.dcmread(io.BytesIO(source))
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    # A generator's output: 8 bits in the lung window it was trained in.
    grey = np.rint(window_unit(hu, *CT_WINDOWS["lung"]) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    PILImage.fromarray(grey).save(buffer, format="PNG")
    fake = import_bytes(buffer.getvalue(), name="g.png",
                        labels=ImportLabels(truth=Truth.SYNTHETIC, modality="CT")).images[0]
    fake.provenance = {"window": list(CT_WINDOWS["lung"])}
    fake.save()
    base = Profile(display_size=128)
    for name in ("lung", "mediastinum"):
        window = CT_WINDOWS[name]
        a = decoded(render_image(real, image_profile(base, real, window)))
        b = decoded(render_image(fake, image_profile(base, fake, window)))
        # Inside the generator's window only its 8-bit quantisation differs (1500/255 = 5.9 HU
        # a level); above 150 HU (the lung window's top) the synthetic slice has no data.
        inside = hu < 140
        assert inside.mean() > 0.5
        assert np.abs(a - b)[inside].mean() < 3, name
