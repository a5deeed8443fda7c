"""``compare_sets``: every fidelity figure of a synthetic set beside its real-vs-real baseline.

The real images are split at random (seeded) into two disjoint halves: the *reference* half R
(the larger one when the count is odd) and the *other* half B. Every figure is computed twice, on
the same footing:

- value: R against the synthetic images S,
- baseline: R against B,

and, with ``match_sizes`` (the default), S and B are both cut (at random) to ``n = min(|S|, |B|)``
images, because the Fréchet distance, KID and the k-NN figures all depend on the sample size. So a
reader of the page knows what "as close as another sample of real images" looks like. MS-SSIM
diversity is the diversity within S beside the diversity within B (same number of images and
pairs), both measured at the same size: the smaller of 256 px and the smallest image of either.

The numbers depend on the extractor: a report records its version and weights' SHA-256, and
``comparable_with`` / ``check_comparable`` refuse to put side by side reports made with different
extractors. None of these figures is comparable with a published (Inception) FID.

The real images given here should be held out from the extractor's training: a baseline drawn
from images the extractor was trained on is optimistic. ``n_real_seen_by_extractor`` counts such
images and a note says so.

A figure that cannot be computed (too few images, images too small) is ``NotDefined`` with the
reason; ``compare_sets`` itself only raises for malformed input (not uint8 2-D images).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluation.metrics import bootstrap
from evaluation.metrics.bootstrap import PRDC_NAMES
from evaluation.metrics.distances import frechet_distance, kernel_distance
from evaluation.metrics.diversity import MAX_SIZE, ms_ssim_diversity
from evaluation.metrics.features import FeatureExtractor
from evaluation.metrics.images import Images, InsufficientData, as_image_list
from evaluation.metrics.manifold import prdc
from readerstudy.analysis import Estimate, NotDefined, Value, to_jsonable

SCHEMA = "spotthefake.evaluation.quality/1"
POINT = "point estimate"
#: bootstrap resamples of each 95% interval (evaluation.quality and the command use this too)
DEFAULT_RESAMPLES = 1000
MIN_REAL = 4

#: name -> (label, which direction is better, description)
METRICS = {
    "frechet_distance": (
        "Fréchet distance",
        "lower",
        "Fréchet distance of Gaussians fitted to the features",
    ),
    "kid": (
        "KID",
        "lower",
        "kernel (polynomial MMD^2) distance of the features, mean over subsets",
    ),
    "precision": ("Precision", "higher", "share of synthetic images inside the real k-NN manifold"),
    "recall": ("Recall", "higher", "share of real images inside the synthetic k-NN manifold"),
    "density": (
        "Density",
        "higher",
        "mean number of real k-NN balls holding a synthetic image, / k",
    ),
    "coverage": (
        "Coverage",
        "higher",
        "share of real k-NN balls holding at least one synthetic image",
    ),
    "ms_ssim_diversity": (
        "MS-SSIM diversity",
        "higher",
        "mean 1 - MS-SSIM over random pairs within the set",
    ),
}


class IncomparableReports(ValueError):
    """Figures computed with different feature extractors were put side by side."""


@dataclass(frozen=True)
class MetricComparison:
    name: str
    label: str
    better: str  # "lower" or "higher"
    description: str
    value: Value  # real reference half vs synthetic
    baseline: Value  # real reference half vs the other real half

    @property
    def ratio(self) -> float | None:
        """value / baseline, when both are defined and the baseline is not 0."""
        value, baseline = self.value, self.baseline
        if (
            isinstance(value, Estimate)
            and isinstance(baseline, Estimate)
            and baseline.estimate != 0
        ):
            return value.estimate / baseline.estimate
        return None


@dataclass(frozen=True)
class QualityReport:
    extractor_version: str
    extractor_sha256: str
    n_real: int
    n_synthetic: int
    n_reference: int  # real images in the reference half R
    n_compared: int  # images of S (and of B) compared with R
    n_real_seen_by_extractor: int  # real images compared that trained the extractor (should be 0)
    seed: int
    k: int
    metrics: tuple[MetricComparison, ...]
    notes: tuple[str, ...] = ()
    schema: str = SCHEMA

    def metric(self, name: str) -> MetricComparison:
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise KeyError(f"no metric named {name!r}")

    def comparable_with(self, other: QualityReport) -> bool:
        return self.extractor_sha256 == other.extractor_sha256

    def to_jsonable(self) -> dict:
        payload = to_jsonable(self)
        for row, metric in zip(payload["metrics"], self.metrics):
            row["ratio"] = metric.ratio
        return payload


def check_comparable(*reports: QualityReport) -> None:
    """Raise ``IncomparableReports`` unless every report used the same extractor weights."""
    versions = {(r.extractor_sha256, r.extractor_version) for r in reports}
    if len({sha for sha, _ in versions}) > 1:
        names = ", ".join(sorted(f"{version} ({sha[:12]})" for sha, version in versions))
        raise IncomparableReports(f"figures computed with different feature extractors: {names}")


def _point(value: float, n: int, note: str) -> Estimate:
    return Estimate(float(value), None, None, n, POINT, note=note)


def compare_sets(
    real: Images,
    synthetic: Images,
    extractor: FeatureExtractor,
    *,
    k: int = 5,
    seed: int = 0,
    match_sizes: bool = True,
    kid_subset_size: int | None = None,
    kid_subsets: int = 100,
    diversity_pairs: int = 100,
    progress: Callable[[str, int, int], None] | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> QualityReport:
    """Fidelity figures of ``synthetic`` against ``real`` (uint8 grey images), each with its
    real-vs-real baseline. ``progress(step, done, total)`` is called after each step.
    ``n_resamples`` > 0 gives the Fréchet distance, KID and precision/recall/density/coverage
    (and their baselines) a 95% percentile bootstrap interval (seeded by ``seed``)."""
    real_items = as_image_list(real, "real images")
    synthetic_items = as_image_list(synthetic, "synthetic images")
    reference_idx, other_idx, synthetic_idx = _split(
        len(real_items), len(synthetic_items), seed, match_sizes
    )
    seen = extractor.seen(real_items)
    used = np.concatenate([reference_idx, other_idx]).astype(np.int64)
    n_seen = int(seen[used].sum()) if len(used) else 0
    left_out = len(synthetic_items) - len(synthetic_idx) if match_sizes else 0
    notes = _notes(seed, len(reference_idx), len(other_idx), len(synthetic_idx), n_seen, used)
    notes += _left_out_note(left_out)
    tick = _Ticker(progress, ["features", "frechet_distance", "kid", "prdc", "ms_ssim_diversity"])
    other = [real_items[i] for i in other_idx]
    fake = [synthetic_items[i] for i in synthetic_idx]
    f_ref = extractor.features([real_items[i] for i in reference_idx])
    f_other = extractor.features(other)
    f_fake = extractor.features(fake)
    tick("features")
    figures = _Figures(f_ref, f_fake, f_other, k=k, seed=seed, tick=tick, resamples=n_resamples)
    values = figures.compute(fake, other, kid_subset_size, kid_subsets, diversity_pairs)
    values = _undefined_when_too_few(values, len(real_items), len(synthetic_items))
    metrics = tuple(
        MetricComparison(name, label, better, description, *values[name])
        for name, (label, better, description) in METRICS.items()
    )
    return QualityReport(
        extractor_version=extractor.version,
        extractor_sha256=extractor.sha256,
        n_real=len(real_items),
        n_synthetic=len(synthetic_items),
        n_reference=len(reference_idx),
        n_compared=len(synthetic_idx),
        n_real_seen_by_extractor=n_seen,
        seed=seed,
        k=k,
        metrics=metrics,
        notes=tuple(notes),
    )


def _split(
    n_real: int, n_synthetic: int, seed: int, match_sizes: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the reference half and the baseline half of the real images, and of the
    synthetic images compared (as many as the baseline half with `match_sizes`)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_real)
    n_reference = (n_real + 1) // 2
    reference_idx, other_idx = order[:n_reference], order[n_reference:]
    n = min(len(other_idx), n_synthetic) if match_sizes else None
    synthetic_idx = (
        np.sort(rng.permutation(n_synthetic)[:n]) if match_sizes else np.arange(n_synthetic)
    )
    other_idx = np.sort(other_idx[:n]) if match_sizes else np.sort(other_idx)
    return np.sort(reference_idx), other_idx, synthetic_idx


def _notes(
    seed: int, n_reference: int, n_other: int, n_compared: int, n_seen: int, used: np.ndarray
) -> list[str]:
    notes = [
        (
            f"real images split at random (seed {seed}) into a reference half of {n_reference} "
            f"and a baseline half; each figure compares the reference half with "
            f"{n_compared} synthetic images and, as the baseline, with {n_other} real ones"
        ),
    ]
    if n_seen:
        notes.append(
            f"{n_seen} of the {len(used)} real images compared were used to train the feature "
            "extractor: their features are more alike than those of new images, so the baseline is "
            "optimistic; evaluate with real images held out from the extractor's training"
        )
    return notes


def _left_out_note(left_out: int) -> list[str]:
    if left_out <= 0:
        return []
    return [
        (
            f"{left_out} synthetic images left out at random "
            "so that both comparisons use the same number of images"
        )
    ]


class _Ticker:
    """Calls ``progress(step, done, total)`` as each named step finishes."""

    def __init__(self, progress: Callable[[str, int, int], None] | None, steps: list[str]):
        self.progress, self.total, self.done = progress, len(steps), 0

    def __call__(self, step: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(step, self.done, self.total)


@dataclass
class _Figures:
    """Each figure of the synthetic set and of the real baseline against the reference half."""

    f_ref: np.ndarray
    f_fake: np.ndarray
    f_other: np.ndarray
    k: int
    seed: int
    tick: Callable[[str], None]
    resamples: int = 0

    def compute(self, fake, other, kid_subset_size, kid_subsets, diversity_pairs) -> dict:
        f_ref, seed = self.f_ref, self.seed
        values: dict[str, Any] = {}
        values["frechet_distance"] = self._both(
            lambda f: _point(frechet_distance(f_ref, f), len(f), f"{f_ref.shape[1]} features"),
            bootstrap.frechet_interval,
            figure=0,
        )
        self.tick("frechet_distance")
        values["kid"] = self._both(
            lambda f: _kid(f_ref, f, kid_subset_size, kid_subsets, seed),
            bootstrap.kid_interval,
            figure=1,
        )
        self.tick("kid")
        values.update(self._prdc())
        self.tick("prdc")
        values["ms_ssim_diversity"] = _diversity_values(fake, other, diversity_pairs, seed)
        self.tick("ms_ssim_diversity")
        return values

    def _both(self, compute: Callable[[np.ndarray], Value], interval, figure: int):
        """(synthetic figure, real baseline figure), each with its interval where defined."""
        out: list[Value] = []
        for slot, features in enumerate((self.f_fake, self.f_other)):
            try:
                value = compute(features)
            except InsufficientData as exc:
                out.append(NotDefined(str(exc)))
                continue
            if self.resamples > 0 and isinstance(value, Estimate):
                found = interval(
                    self.f_ref,
                    features,
                    estimate=value.estimate,
                    n_resamples=self.resamples,
                    seed=(self.seed, figure, slot),
                )
                value = _with_interval(value, found)
            out.append(value)
        return out[0], out[1]

    def _prdc(self) -> dict:
        f_ref, k = self.f_ref, self.k
        values: dict[str, list[Value | None]] = {name: [None, None] for name in PRDC_NAMES}
        for slot, features in enumerate((self.f_fake, self.f_other)):
            try:
                result = prdc(f_ref, features, k=k)
            except InsufficientData as exc:
                for name in PRDC_NAMES:
                    values[name][slot] = NotDefined(str(exc))
                continue
            intervals = {}
            if self.resamples > 0:
                intervals = bootstrap.prdc_intervals(
                    f_ref,
                    features,
                    k=k,
                    estimates={name: getattr(result, name) for name in PRDC_NAMES},
                    n_resamples=self.resamples,
                    seed=(self.seed, 2, slot),
                )
            note = f"k = {k}, {len(f_ref)} reference images"
            for name in PRDC_NAMES:
                value = _point(getattr(result, name), len(features), note)
                values[name][slot] = (
                    _with_interval(value, intervals[name]) if name in intervals else value
                )
        return values


def _with_interval(value: Estimate, interval: bootstrap.Interval) -> Estimate:
    if interval.low is None:
        note = "; ".join(filter(None, [value.note, "too few images for a bootstrap interval"]))
        return Estimate(value.estimate, None, None, value.n, POINT, note=note)
    return Estimate(
        value.estimate, interval.low, interval.high, value.n, interval.method, note=value.note
    )


def _kid(f_ref: np.ndarray, f: np.ndarray, subset_size, n_subsets: int, seed: int) -> Value:
    size = subset_size if subset_size is not None else min(len(f_ref), len(f), 1000)
    result = kernel_distance(f_ref, f, subset_size=size, n_subsets=n_subsets, seed=seed)
    return _point(
        result.mean,
        len(f),
        f"mean over {result.n_subsets} subsets of {result.subset_size}; sd {result.std:.3g}",
    )


def _diversity_values(
    fake: list[np.ndarray], other: list[np.ndarray], n_pairs: int, seed: int
) -> tuple[Value, Value]:
    # both sets at one size (at most 256 px), so that they get the same number of scales
    size = min([MAX_SIZE] + [min(image.shape) for image in fake + other])

    def diversity(images: list[np.ndarray]) -> Value:
        try:
            d = ms_ssim_diversity(images, n_pairs=n_pairs, seed=seed, max_size=size)
        except InsufficientData as exc:
            return NotDefined(str(exc))
        return _point(
            d.mean,
            d.n_images,
            f"{d.n_pairs} pairs at {d.image_size} px, {d.scales} scales, betas {list(d.betas)}; "
            f"sd {d.std:.3g}",
        )

    return diversity(fake), diversity(other)


def _undefined_when_too_few(values: dict, n_real: int, n_synthetic: int) -> dict:
    """Every figure NotDefined (with why) when either set is too small to compare."""
    if n_real < MIN_REAL:
        reason = (
            f"the real-vs-real baseline needs at least {MIN_REAL} real images (two halves of 2), "
            f"got {n_real}"
        )
        return {name: (NotDefined(reason), NotDefined(reason)) for name in METRICS}
    if n_synthetic < 2:
        reason = f"needs at least 2 synthetic images, got {n_synthetic}"
        return {name: (NotDefined(reason), values[name][1]) for name in METRICS}
    return values
