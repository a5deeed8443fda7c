"""The LoRA training set as a stream, and each sample's own random numbers. No Django.

An item is (image, prompt): a uint8 array already in memory or the path of an image file,
decoded only when its batch comes up (in `DataLoader` worker processes when there are any).
Sample k of the run is position k mod N of epoch k // N's permutation (the ddpm trainer's
order, `generation.engine.data.EpochOrder`), and every random number a sample uses (caption
dropout, the VAE's posterior draw, the noise, the timestep) comes from a generator seeded by
(seed, k). A sample's loss therefore does not depend on which rank computes it nor on the batch
it shares, so N processes splitting every global batch follow the one-process loss curve, and
the step is a resumed run's whole data and RNG state.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from generation.engine.data import EpochOrder, loader_workers, mix, read_image_file

_SAMPLE_STREAM = 2  # the seed stream of the per-sample generators (1 is the epoch order's)


def to_pixels(image: Any, resolution: int) -> torch.Tensor:
    """uint8 grayscale (H, W) -> float (3, R, R) in [-1, 1] (gray copied into the 3 channels)."""
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise ValueError(f"training images must be 2-D grayscale arrays, got shape {array.shape}")
    if array.dtype != np.uint8:
        raise ValueError(f"training images must be uint8, got {array.dtype}")
    if array.shape != (resolution, resolution):
        if array.shape[0] != array.shape[1]:
            raise ValueError(
                f"training images must be square, got {array.shape[1]}x{array.shape[0]}"
            )
        resized = Image.fromarray(array).resize((resolution, resolution), Image.Resampling.BICUBIC)
        array = np.asarray(resized)
    tensor = torch.from_numpy(array.astype(np.float32) / 127.5 - 1.0)
    return tensor.unsqueeze(0).expand(3, -1, -1).contiguous()


class LoraImages(torch.utils.data.Dataset):
    """(3 x R x R pixels, prompt) per item; files are decoded on access."""

    def __init__(self, items: Sequence[tuple[Any, str]], resolution: int):
        self.items, self.resolution = items, resolution

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        image, prompt = self.items[index]
        if isinstance(image, (str, os.PathLike)):
            image = read_image_file(image, index)
        return to_pixels(image, self.resolution), str(prompt)


def positions(step: int, micro: int, *, batch_size: int, accum: int, rank: int, world: int):
    """The stream positions this rank trains on in micro-batch `micro` of step `step` (0-based:
    the steps done before it): its contiguous slice of the global micro-batch."""
    local = batch_size // world
    first = (step * accum + micro) * batch_size + rank * local
    return range(first, first + local)


class MicroBatches(torch.utils.data.Sampler):
    """The dataset indices of this rank's micro-batches from step `first` (0-based) on."""

    def __init__(self, n: int, *, seed: int, batch_size: int, accum: int, first: int, last: int,
                 rank: int = 0, world: int = 1):  # fmt: skip
        self.order = EpochOrder(n, seed)
        self.shape = {"batch_size": batch_size, "accum": accum, "rank": rank, "world": world}
        self.first, self.last = first, last

    def __len__(self) -> int:
        return max(0, self.last - self.first) * self.shape["accum"]

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.first, self.last):
            for micro in range(self.shape["accum"]):
                where = positions(step, micro, **self.shape)
                yield self.order.indices(where.start, len(where))


def micro_batches(dataset: LoraImages, sampler: MicroBatches, workers: int):
    """(pixels, prompts) per micro-batch, in the sampler's order."""
    workers = loader_workers(workers)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        prefetch_factor=2 if workers else None,
        generator=torch.Generator().manual_seed(0),  # never the global RNG
    )
    return iter(loader)


def sample_generators(seed: int, where: range) -> list[torch.Generator]:
    """One CPU generator per sample, seeded by (seed, its stream position)."""
    return [torch.Generator("cpu").manual_seed(mix(seed, _SAMPLE_STREAM, k)) for k in where]
