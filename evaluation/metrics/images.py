"""Image inputs of the metrics: validation and resizing. No Django here.

Every metric takes images as a sequence of 2-D ``uint8`` arrays (grey, 0-255: the display
derivatives a reader sees, e.g. 512 x 512) or one 3-D ``uint8`` array ``(n, h, w)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

Images = Sequence[np.ndarray] | np.ndarray


class InsufficientData(ValueError):
    """Too few (or unusable) inputs for a figure; the message says what was needed."""


def as_image_list(images: Images, what: str = "images") -> list[np.ndarray]:
    """The images as a list of 2-D uint8 arrays; ValueError with a clear message otherwise."""
    if isinstance(images, np.ndarray):
        if images.ndim == 2:
            raise ValueError(
                f"{what}: got one 2-D image; pass a list of images or an (n, h, w) array"
            )
        if images.ndim != 3:
            raise ValueError(f"{what}: expected an (n, h, w) array, got shape {images.shape}")
        items = list(images)
    else:
        try:
            items = list(images)
        except TypeError:
            raise ValueError(f"{what}: expected a sequence of 2-D uint8 arrays") from None
    out = []
    for index, image in enumerate(items):
        arr = np.asarray(image)
        if arr.dtype != np.uint8:
            raise ValueError(f"{what}[{index}]: expected uint8 grey values, got {arr.dtype}")
        if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ValueError(
                f"{what}[{index}]: expected a non-empty 2-D image, got shape {arr.shape}"
            )
        out.append(arr)
    return out


def to_unit_tensor(batch: torch.Tensor, size: int | None) -> torch.Tensor:
    """(n, 1, size, size) float32 in [0, 1] from an (n, h, w) / (n, c, h, w) batch.

    uint8 is divided by 255 (floats are taken as already in [0, 1]); three channels are averaged
    to grey; the image is centre-cropped to a square and resized with antialiased bilinear
    interpolation when ``size`` is given and differs.
    """
    if batch.ndim == 3:
        batch = batch.unsqueeze(1)
    if batch.ndim != 4:
        raise ValueError(f"expected an (n, h, w) or (n, c, h, w) batch, got {tuple(batch.shape)}")
    x = batch.float() / 255.0 if batch.dtype == torch.uint8 else batch.float()
    if x.shape[1] == 3:
        x = x.mean(dim=1, keepdim=True)
    elif x.shape[1] != 1:
        raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
    h, w = x.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    x = x[..., top : top + side, left : left + side]
    if size is not None and side != size:
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
    return x


def stack_resized(images: list[np.ndarray], size: int) -> torch.Tensor:
    """(n, 1, size, size) float32 in [0, 1]; images of different sizes are resized one by one."""
    if not images:
        return torch.zeros((0, 1, size, size))
    shapes = {image.shape for image in images}
    if len(shapes) == 1:
        return to_unit_tensor(torch.from_numpy(np.stack(images)), size)
    return torch.cat([to_unit_tensor(torch.from_numpy(image)[None], size) for image in images])


def common_size(images: list[np.ndarray]) -> int:
    """The side every image can be brought to without upsampling: the smallest shorter side."""
    return min(min(image.shape) for image in images)
