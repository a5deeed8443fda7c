"""Percentile bootstrap intervals of the fidelity figures (no Django).

Each resample draws, with replacement and from one seeded generator, as many reference features
as there are and as many compared features as there are, and recomputes the figure; the interval
is the 2.5th and 97.5th percentile of the resampled figures (``level`` sets another), shifted by
the resamples' bias: the estimate minus their median. The synthetic figure and its real-vs-real
baseline are resampled independently, so each has its own interval.

Why shifted: these figures are not means. A resample holds only about 63% distinct images, so its
Fréchet distance is larger (the means of fewer images lie further apart) and its precision and
coverage smaller (fewer distinct balls) than the figure of the full sets: measured on the test
phantoms, the plain percentile interval of the Fréchet distance of 96 against 96 images lay
wholly above the estimate (0.33, interval 0.31-1.41; baseline 0.16, interval 0.25-0.55). Moving the
resamples' median onto the estimate keeps the interval's width, which is what the bootstrap
measures well, and puts it around the figure reported. Ends are clipped to the figure's range
(no negative distance, no share above 1).

What a resample with repeated images would get wrong is avoided rather than corrected:

- Fréchet distance: recomputed on the resampled features as they are;
- KID: the unbiased MMD^2 of the resample leaves out every pair of copies of the same image
  (not only the diagonal), else a repeated image would count as a perfect neighbour of itself;
  it is computed on the whole resample (the point estimate averages subsets);
- precision, recall, density and coverage: the k-NN radii are those of the full sets (the k-th
  neighbour of an image drawn twice would be its own copy, at distance 0); a resample redraws
  which images are counted and which balls are there, each as often as it was drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from evaluation.metrics.distances import frechet_distance, polynomial_kernel
from evaluation.metrics.manifold import kth_neighbour_distances, pairwise_distances

Seed = int | Sequence[int]
PRDC_NAMES = ("precision", "recall", "density", "coverage")


@dataclass(frozen=True)
class Interval:
    """``low``/``high`` None: too few resamples gave a figure (sets of two or three images)."""

    low: float | None
    high: float | None
    n_resamples: int
    level: float

    @property
    def method(self) -> str:
        return f"percentile bootstrap, {self.n_resamples} resamples, median on the estimate"


def percentile_interval(
    samples: np.ndarray,
    estimate: float,
    n_resamples: int,
    level: float = 0.95,
    bounds: tuple[float, float] = (-np.inf, np.inf),
) -> Interval:
    """The ``level`` percentile interval of ``samples`` moved by ``estimate - median(samples)``,
    clipped to ``bounds``; resamples without a finite figure are left out."""
    samples = np.asarray(samples, np.float64)
    samples = samples[np.isfinite(samples)]
    if len(samples) < max(2, n_resamples // 2):  # e.g. every draw of a 2-image set the same
        return Interval(None, None, n_resamples, level)
    tail = (1.0 - level) / 2.0 * 100.0
    low, middle, high = np.percentile(samples, [tail, 50.0, 100.0 - tail])
    shift = estimate - middle
    low, high = np.clip([low + shift, high + shift], *bounds)
    return Interval(float(low), float(high), n_resamples, level)


def _counts(rng: np.random.Generator, n: int) -> np.ndarray:
    """How often each of n items is drawn in a resample of n (with replacement)."""
    return np.bincount(rng.integers(0, n, n), minlength=n)


def _resampled(
    rng: np.random.Generator, sizes: tuple[int, int], n_resamples: int, figure: Callable
) -> np.ndarray:
    values = np.empty(n_resamples)
    for b in range(n_resamples):
        values[b] = figure(_counts(rng, sizes[0]), _counts(rng, sizes[1]))
    return values


def _interval(
    figure: Callable, sizes: tuple[int, int], estimate: float, n_resamples: int, seed: Seed,
    level: float, bounds: tuple[float, float] = (-np.inf, np.inf),
) -> Interval:  # fmt: skip
    """The percentile interval of `figure` over `n_resamples` seeded resamples of both sets."""
    rng = np.random.default_rng(seed)
    with _one_thread(), np.errstate(invalid="ignore", divide="ignore"):
        samples = _resampled(rng, sizes, n_resamples, figure)
    return percentile_interval(samples, estimate, n_resamples, level, bounds)


def frechet_interval(
    reference: np.ndarray,
    compared: np.ndarray,
    *,
    estimate: float,
    n_resamples: int,
    seed: Seed,
    level: float = 0.95,
) -> Interval:
    def figure(w: np.ndarray, v: np.ndarray) -> float:
        return frechet_distance(np.repeat(reference, w, axis=0), np.repeat(compared, v, axis=0))

    sizes = (len(reference), len(compared))
    return _interval(figure, sizes, estimate, n_resamples, seed, level, (0.0, np.inf))


def kid_interval(
    reference: np.ndarray,
    compared: np.ndarray,
    *,
    estimate: float,
    n_resamples: int,
    seed: Seed,
    level: float = 0.95,
) -> Interval:
    """The cubic polynomial kernel of ``distances.polynomial_mmd2``, from kernels computed once;
    ``estimate`` is the KID reported (a mean over subsets), on which the interval is centred."""
    k_aa = polynomial_kernel(reference, reference)
    k_bb = polynomial_kernel(compared, compared)
    k_ab = polynomial_kernel(reference, compared)

    def within(k: np.ndarray, w: np.ndarray) -> float:
        w = w.astype(np.float64)
        pairs = w.sum() ** 2 - (w**2).sum()  # ordered pairs of draws of different images
        return float((w @ k @ w - (w**2 * np.diag(k)).sum()) / pairs)

    def figure(w: np.ndarray, v: np.ndarray) -> float:
        cross = float(w @ k_ab @ v) / (w.sum() * v.sum())
        return within(k_aa, w) + within(k_bb, v) - 2.0 * cross

    return _interval(figure, (len(reference), len(compared)), estimate, n_resamples, seed, level)


def prdc_intervals(
    reference: np.ndarray,
    compared: np.ndarray,
    *,
    k: int,
    estimates: dict[str, float],
    n_resamples: int,
    seed: Seed,
    level: float = 0.95,
) -> dict[str, Interval]:
    """Intervals of precision, recall, density and coverage (``manifold.prdc``'s definitions),
    centred on ``estimates`` (name -> the figure of the full sets)."""
    dist = pairwise_distances(reference, compared)
    with _one_thread():
        samples = _prdc_samples(reference, compared, dist, k, n_resamples, seed)
    return {
        name: percentile_interval(
            samples[:, i], estimates[name], n_resamples, level, (0.0, 1.0 if i != 2 else np.inf)
        )
        for i, name in enumerate(PRDC_NAMES)
    }


def _prdc_samples(reference, compared, dist, k: int, n_resamples: int, seed: Seed) -> np.ndarray:
    in_real = (dist < kth_neighbour_distances(reference, k)[:, None]).astype(np.float64)
    in_compared = (dist < kth_neighbour_distances(compared, k)[None, :]).astype(np.float64)
    rng = np.random.default_rng(seed)
    samples = np.empty((n_resamples, 4))
    for b in range(n_resamples):
        w = _counts(rng, len(reference)).astype(np.float64)
        v = _counts(rng, len(compared)).astype(np.float64)
        balls_holding = w @ in_real  # per compared image: real balls (with repeats) it lies in
        samples[b] = (
            v @ (balls_holding > 0) / v.sum(),
            w @ ((in_compared @ (v > 0)) > 0) / w.sum(),
            v @ balls_holding / (k * v.sum()),
            w @ ((in_real @ (v > 0)) > 0) / w.sum(),
        )
    return samples


@contextmanager
def _one_thread() -> Iterator[None]:
    """BLAS on one thread: these matrices are small, and on a busy machine a threaded eigh of
    87 x 87 took 265 ms instead of 5 (measured with 8 processes sharing two cores)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield
