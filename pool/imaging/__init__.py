"""Pure imaging layer of Spot the fake (no Django here).

``read_image`` turns an uploaded PNG, JPEG or DICOM into display-ready float
frames (and, for DICOM, a de-identified copy to keep as the original);
``make_display_png`` turns a frame into the one derivative readers receive.
"""

from .decode import SUPPORTED, read_image
from .dicom import deidentify
from .display import make_display_png
from .errors import ImageImportError
from .result import DecodedFile, Frame

__all__ = [
    "SUPPORTED",
    "DecodedFile",
    "Frame",
    "ImageImportError",
    "deidentify",
    "make_display_png",
    "read_image",
]
