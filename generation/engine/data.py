"""The ddpm training set as a stream: images decoded per batch, in a seeded, resumable order.

No Django. An item is (image, finding) where image is a uint8 array already in memory or the
path of an image file, decoded only when its batch comes up (in `DataLoader` worker processes
when there are any), so a training set need not fit in RAM.

The order is a pure function of (seed, sample position): sample k of the run is position
k mod N of epoch k // N's permutation. The sampler starts at any step, so a resumed run reads
exactly the batches the uninterrupted run would have; the step is the sampler's whole state.
With several ranks, each reads its own contiguous slice of every global micro-batch
(the "equivalent" of DistributedSampler that keeps the global batch independent of the world
size).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

_MASK63 = (1 << 63) - 1


class DataError(ValueError):
    pass


def mix(*values: int) -> int:
    """A 63-bit seed from integers (splitmix-style)."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (v & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & _MASK63


class EpochOrder:
    """Sample index k of the whole run -> dataset index; a fresh permutation each epoch."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed = n, seed
        self._epoch = -1
        self._perm: torch.Tensor | None = None

    def indices(self, start: int, count: int) -> list[int]:
        out = []
        for k in range(start, start + count):
            epoch, pos = divmod(k, self.n)
            if epoch != self._epoch:
                g = torch.Generator().manual_seed(mix(self.seed, 1, epoch))
                self._perm, self._epoch = torch.randperm(self.n, generator=g), epoch
            assert self._perm is not None  # drawn above: the first k starts epoch 0, not -1
            out.append(int(self._perm[pos]))
        return out


def check_shares(batch_size: int, world_size: int) -> None:
    """Refuse a batch that `world_size` processes cannot split into equal parts."""
    if batch_size % world_size:
        raise DataError(
            f"batch_size {batch_size} must be a multiple of the number of processes "
            f"({world_size}): each takes an equal part of every batch"
        )


class StepBatches(torch.utils.data.Sampler):
    """The dataset indices of this rank's micro-batches for steps `first`..`last` (a batch
    sampler: one list per micro-batch, grad_accum of them per step)."""

    def __init__(self, n: int, *, seed: int, batch_size: int, grad_accum: int,
                 first: int, last: int, rank: int = 0, world_size: int = 1):  # fmt: skip
        check_shares(batch_size, world_size)
        self.n, self.seed, self.batch_size, self.grad_accum = n, seed, batch_size, grad_accum
        self.first, self.last = first, last
        self.local = batch_size // world_size
        self.rank = rank

    def __len__(self) -> int:
        return max(0, self.last - self.first + 1) * self.grad_accum

    def positions(self, step: int, micro: int) -> range:
        """The run's sample numbers this rank trains on in micro-batch `micro` of `step` (from 1):
        its contiguous slice of the global micro-batch."""
        first = ((step - 1) * self.grad_accum + micro) * self.batch_size + self.rank * self.local
        return range(first, first + self.local)

    def __iter__(self) -> Iterator[list[int]]:
        order = EpochOrder(self.n, self.seed)
        for step in range(self.first, self.last + 1):
            for micro in range(self.grad_accum):
                where = self.positions(step, micro)
                yield order.indices(where.start, len(where))


def as_square_uint8(image: Any, index: int, resolution: int) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise DataError(
            f"training image {index} has shape {array.shape}; expected a 2-D grayscale array"
        )
    if array.dtype != np.uint8:
        raise DataError(f"training image {index} is {array.dtype}; expected uint8")
    h, w = array.shape
    if h != w:
        raise DataError(f"training image {index} is {w}x{h}; expected a square image")
    if h < 8:
        raise DataError(f"training image {index} is only {w}x{h} pixels")
    if h != resolution:
        from PIL import Image

        resample = Image.Resampling.LANCZOS if h > resolution else Image.Resampling.BICUBIC
        array = np.asarray(Image.fromarray(array).resize((resolution, resolution), resample))
    return array


def read_image_file(path: str | os.PathLike, index: int) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as picture:
            return np.asarray(picture.convert("L"), dtype=np.uint8).copy()
    except (OSError, ValueError) as error:
        raise DataError(f"training image {index} ({path}) cannot be read: {error}") from None


class TrainingImages(torch.utils.data.Dataset):
    """(1 x R x R uint8 tensor, label) per item; files are decoded on access. The label is
    passed through: a class index for ddpm, a prompt for LoRA."""

    def __init__(self, items: Sequence[tuple[Any, Any]], resolution: int):
        self.items, self.resolution = items, resolution
        for i, (image, _) in enumerate(items):
            if not isinstance(image, (str, os.PathLike)):  # in memory: check the shape now
                as_square_uint8(image, i, max(8, np.asarray(image).shape[0]))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        image, label = self.items[index]
        if isinstance(image, (str, os.PathLike)):
            image = read_image_file(image, index)
        array = as_square_uint8(image, index, self.resolution)
        return torch.from_numpy(np.ascontiguousarray(array))[None], label


def loader_workers(requested: int) -> int:
    """`requested` worker processes, or none inside a daemonic process (Celery's prefork
    children may not start processes of their own)."""
    if requested and multiprocessing.current_process().daemon:
        return 0
    return requested


def batches(
    dataset: TrainingImages, sampler: StepBatches, workers: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(uint8 images, labels) per micro-batch, in the sampler's order."""
    workers = loader_workers(workers)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        persistent_workers=False,
        prefetch_factor=2 if workers else None,
        # its own generator: the loader must not draw from the global RNG (dropout's), which
        # would make a resumed run differ from the uninterrupted one
        generator=torch.Generator().manual_seed(sampler.seed),
    )
    return iter(loader)
