"""Hounsfield units of a CT slice, straight from its stored DICOM (no Django here).

The import keeps the de-identified DICOM as the image's original, so the rescaled HU data of
every real CT slice is always at hand: a derivative applies the study's window to these values,
never to the 8-bit image windowed at import with whatever window the series' header carried.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut

from .pipeline import PresentationError


def read_hounsfield(data: bytes, frame_index: int = 0) -> np.ndarray:
    """Float64 HU of one frame: stored values through Rescale Slope/Intercept (or the
    Modality LUT). A file without rescale attributes is read as already in HU."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
            frames = int(ds.get("NumberOfFrames") or 1)
            if frame_index >= frames:
                raise PresentationError(f"the DICOM has no frame {frame_index}")
            arr = ds.pixel_array
    except PresentationError:
        raise
    except Exception as error:  # noqa: BLE001 - pydicom and its plugins raise many types
        raise PresentationError(f"the stored DICOM could not be decoded ({error})") from None
    if frames > 1:
        arr = arr[frame_index]
    if arr.ndim != 2:
        raise PresentationError("a CT slice must be a single-channel image")
    return np.asarray(apply_modality_lut(arr, ds), np.float64)
