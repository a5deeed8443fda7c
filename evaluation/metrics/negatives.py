"""Images that are not of the kind being learnt, made from a training batch (no Django).

The feature extractor learns, beside reconstruction and the findings, to tell a real image from
these (its ``realness`` head), so that its features have a direction along which pure noise, a
blank frame, a heavily blurred or a scrambled image lie far from every real one:

- ``noise``: uniform white noise, or Gaussian noise with the image's own mean and spread;
- ``blank``: one grey level everywhere;
- ``blur``: the image under a Gaussian blur of 1-4 px (of a 64 px input);
- ``shuffle``: the image cut into a 4 x 4 grid of tiles put back in a random order.

Kinds are drawn per image from a ``torch.Generator``, so training stays deterministic for a seed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

KINDS = ("noise", "blank", "blur", "shuffle")
GRID = 4


def make_negatives(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One negative per image of an (n, 1, s, s) batch in [0, 1], of a randomly drawn kind."""
    n = batch.shape[0]
    kinds = torch.randint(len(KINDS), (n,), generator=generator)
    candidates = {
        "noise": _noise(batch, generator),
        "blank": _blank(batch, generator),
        "blur": _blur(batch, generator),
        "shuffle": _shuffle(batch, generator),
    }
    out = torch.empty_like(batch)
    for index, kind in enumerate(KINDS):
        chosen = kinds == index
        out[chosen] = candidates[kind][chosen]
    return out


def _noise(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n = batch.shape[0]
    uniform = torch.rand(batch.shape, generator=generator)
    mean = batch.mean(dim=(1, 2, 3), keepdim=True)
    spread = batch.std(dim=(1, 2, 3), keepdim=True) + 0.05
    gaussian = (mean + spread * torch.randn(batch.shape, generator=generator)).clamp(0.0, 1.0)
    pick = torch.rand((n, 1, 1, 1), generator=generator) < 0.5
    return torch.where(pick, uniform, gaussian)


def _blank(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    level = torch.rand((batch.shape[0], 1, 1, 1), generator=generator)
    return level.expand_as(batch).clone()


def _blur(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Gaussian blur, sigma drawn per batch between 1 and 4 px of a 64 px input (scaled)."""
    size = batch.shape[-1]
    sigma = float(1.0 + 3.0 * torch.rand((), generator=generator)) * size / 64
    radius = max(1, int(3 * sigma + 0.5))
    taps = torch.arange(-radius, radius + 1, dtype=batch.dtype)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    padded = F.pad(batch, (radius,) * 4, mode="replicate")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1))
    return F.conv2d(rows, kernel.view(1, 1, -1, 1))


def _shuffle(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n, c, size, _ = batch.shape
    tile = size // GRID
    tiles = batch[..., : tile * GRID, : tile * GRID].unfold(2, tile, tile).unfold(3, tile, tile)
    tiles = tiles.reshape(n, c, GRID * GRID, tile, tile)
    order = torch.randperm(GRID * GRID, generator=generator)
    tiles = tiles[:, :, order].reshape(n, c, GRID, GRID, tile, tile)
    out = batch.clone()
    out[..., : tile * GRID, : tile * GRID] = tiles.permute(0, 1, 2, 4, 3, 5).reshape(
        n, c, tile * GRID, tile * GRID
    )
    return out
