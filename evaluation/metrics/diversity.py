"""MS-SSIM diversity within a set of images: mean ``1 - MS-SSIM`` over random distinct pairs.

Higher is more diverse; a generator that collapses onto a few images scores low. Computed on the
pixels (not on features) with torchmetrics' ``multiscale_structural_similarity_index_measure``
(Gaussian window 11, sigma 1.5, data range 1, ``normalize="relu"`` so negative contrast terms at
coarse scales cannot give NaN).

Scales: five scales (the standard weights 0.0448, 0.2856, 0.3001, 0.2363, 0.1333) need images of
at least 176 px (torchmetrics requires ``side // (scales - 1)^2 > 10``, and the window must fit
the coarsest scale). Smaller images are not
upsampled (that would invent detail); instead the number of scales is reduced to the largest that
fits (``scales_for``: 99-175 px -> 4, 44-98 px -> 3, 22-43 px -> 2, 11-21 px -> 1, i.e. plain SSIM) and the first weights are
renormalised to sum to 1. The result states the scales and weights used; figures with different
scales are not comparable. Images of different sizes are centre-cropped and downsampled to the
smallest one first, and images larger than ``max_size`` (256 px by default, still 5 scales) are
downsampled to it (antialiased bilinear): on CPU a 512 px pair costs about 0.6 s, a 256 px pair
about a quarter of that, and the synthetic set and its baseline are always measured at the same
size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

from evaluation.metrics.images import (
    Images,
    InsufficientData,
    as_image_list,
    common_size,
    stack_resized,
)

STANDARD_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
KERNEL = 11
MAX_SIZE = 256


def scales_for(side: int, kernel_size: int = KERNEL) -> int:
    """Largest number of scales (1-5) for a ``side``-pixel image: the 11-px window must fit the
    coarsest scale (``side / 2^(scales-1) >= 11``) and torchmetrics' own size check must pass."""
    for scales in range(5, 0, -1):
        fits_window = side // 2 ** (scales - 1) >= kernel_size  # the window fits the coarsest scale
        if fits_window and side // max(1, scales - 1) ** 2 > kernel_size - 1:  # torchmetrics' check
            return scales
    raise InsufficientData(f"MS-SSIM needs images of at least {kernel_size} px, got {side} px")


def betas_for(scales: int) -> tuple[float, ...]:
    """The standard weights for 5 scales; the first ``scales`` renormalised to sum 1 otherwise."""
    if scales == len(STANDARD_BETAS):
        return STANDARD_BETAS
    head = STANDARD_BETAS[:scales]
    total = sum(head)
    return tuple(round(b / total, 6) for b in head)


@dataclass(frozen=True)
class Diversity:
    mean: float  # mean of 1 - MS-SSIM over the pairs
    std: float  # standard deviation over the pairs
    n_pairs: int
    n_images: int
    image_size: int
    scales: int
    betas: tuple[float, ...]


def random_pairs(n: int, n_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``n_pairs`` distinct unordered pairs (i < j) of ``range(n)``, drawn without replacement."""
    total = n * (n - 1) // 2
    chosen = np.sort(rng.choice(total, size=min(n_pairs, total), replace=False))
    # invert the row-major enumeration of the strict upper triangle
    i = (n - 2 - np.floor(np.sqrt(-8 * chosen + 4 * n * (n - 1) - 7) / 2 - 0.5)).astype(np.int64)
    j = (chosen + i + 1 - n * (n - 1) // 2 + (n - i) * ((n - i) - 1) // 2).astype(np.int64)
    return np.stack([i, j], axis=1)


def ms_ssim_diversity(
    images: Images,
    *,
    n_pairs: int = 100,
    seed: int = 0,
    max_size: int | None = MAX_SIZE,
    batch_size: int = 16,
) -> Diversity:
    """Mean ``1 - MS-SSIM`` over up to ``n_pairs`` random distinct pairs (seeded)."""
    items = as_image_list(images)
    if len(items) < 2:
        raise InsufficientData(f"MS-SSIM diversity needs at least 2 images, got {len(items)}")
    size = common_size(items)
    if max_size is not None:
        size = min(size, max_size)
    scales = scales_for(size)
    betas = betas_for(scales)
    pairs = random_pairs(len(items), n_pairs, np.random.default_rng(seed))
    values = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        first = stack_resized([items[i] for i in chunk[:, 0]], size)
        second = stack_resized([items[j] for j in chunk[:, 1]], size)
        with torch.no_grad():
            score = multiscale_structural_similarity_index_measure(
                first,
                second,
                kernel_size=KERNEL,
                sigma=1.5,
                data_range=1.0,
                betas=betas,
                normalize="relu",
                reduction="none",
            )
        values.append(1.0 - score.reshape(-1).numpy())
    diversity = np.concatenate(values)
    return Diversity(
        mean=float(diversity.mean()),
        std=float(diversity.std()),
        n_pairs=int(diversity.size),
        n_images=len(items),
        image_size=size,
        scales=scales,
        betas=betas,
    )
