"""Low-level image statistics that sit beside the learned features (no Django).

A network trained on a few hundred real images has never seen white noise, a blank frame or a
heavily blurred picture, and may map any of them into the middle of the real features (it did:
white noise scored precision 1.0). These statistics describe what such images get wrong, whatever
the network makes of them:

- intensity: mean, standard deviation, 5th / 50th / 95th percentile;
- power spectrum: log mean power of the mean-removed image in octave bands of spatial frequency
  (1-2, 2-4, ... cycles per image up to the corner): white noise is flat, a blank image has none,
  a blurred one has lost its upper bands;
- gradients: log mean and log 90th percentile of the gradient magnitude, and a histogram of
  gradient orientations (8 bins over 0-180 degrees, weighted by magnitude, summing to 1);
- local contrast: log mean and log spread of the standard deviation within 4 x 4 patches.

Logs are of ``value + EPS``, so an image without any contrast lands far below every real one
instead of at minus infinity. They are computed on the extractor's input (``input_size``, grey in
[0, 1]), in torch, so the torchmetrics feature module computes them too.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

EPS = 1e-6
ORIENTATION_BINS = 8
QUANTILES = (0.05, 0.5, 0.95)


def band_edges(size: int) -> list[float]:
    """Octave edges in cycles per image: 1, 2, 4, ... size / 2, then the corner (size / sqrt 2)."""
    edges = [1.0]
    while edges[-1] < size / 2:
        edges.append(edges[-1] * 2)
    edges.append(size / math.sqrt(2) + 1e-9)
    return edges


def dimension(size: int) -> int:
    """Number of statistics for images of ``size`` px."""
    return 2 + len(QUANTILES) + (len(band_edges(size)) - 1) + 2 + ORIENTATION_BINS + 2


def statistics(x: torch.Tensor) -> torch.Tensor:
    """(n, dimension(s)) float64 statistics of an (n, 1, s, s) batch in [0, 1]."""
    x = x.double()
    flat = x.flatten(1)
    parts = [
        flat.mean(dim=1, keepdim=True),
        flat.std(dim=1, keepdim=True, correction=0),
        torch.quantile(flat, torch.tensor(QUANTILES, dtype=x.dtype), dim=1).T,
        _band_power(x),
        *_gradients(x),
        _local_contrast(x),
    ]
    return torch.cat(parts, dim=1)


def _band_power(x: torch.Tensor) -> torch.Tensor:
    size = x.shape[-1]
    centred = x - x.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(centred).abs().square()[:, 0] / size**4
    freq = torch.fft.fftfreq(size, d=1.0 / size, dtype=x.dtype)
    radius = torch.sqrt(freq[:, None] ** 2 + freq[None, :] ** 2)
    edges = band_edges(size)
    bands = []
    for low, high in zip(edges[:-1], edges[1:]):
        mask = (radius >= low) & (radius < high)
        bands.append(power[:, mask].mean(dim=1))
    return torch.log(torch.stack(bands, dim=1) + EPS**2)


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dx = x[..., 1:, 1:] - x[..., 1:, :-1]
    dy = x[..., 1:, 1:] - x[..., :-1, 1:]
    magnitude = torch.sqrt(dx.square() + dy.square()).flatten(1)
    level = torch.stack(
        [
            torch.log(magnitude.mean(dim=1) + EPS),
            torch.log(torch.quantile(magnitude, 0.9, dim=1) + EPS),
        ],
        dim=1,
    )
    angle = torch.remainder(torch.atan2(dy, dx).flatten(1), math.pi)
    index = torch.clamp((angle / math.pi * ORIENTATION_BINS).long(), 0, ORIENTATION_BINS - 1)
    histogram = torch.zeros(x.shape[0], ORIENTATION_BINS, dtype=x.dtype)
    histogram.scatter_add_(1, index, magnitude)
    histogram = histogram / (histogram.sum(dim=1, keepdim=True) + EPS)
    return level, histogram


def _local_contrast(x: torch.Tensor) -> torch.Tensor:
    mean = F.avg_pool2d(x, 4)
    local_std = torch.sqrt(torch.clamp(F.avg_pool2d(x.square(), 4) - mean.square(), min=0.0))
    local_std = local_std.flatten(1)
    return torch.stack(
        [
            torch.log(local_std.mean(dim=1) + EPS),
            torch.log(local_std.std(dim=1, correction=0) + EPS),
        ],
        dim=1,
    )
