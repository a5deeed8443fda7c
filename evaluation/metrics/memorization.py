"""Memorization check: does a synthetic image copy a training image?

For every synthetic image two nearest training images are found:

- by **feature distance**: Euclidean distance between the extractor's standardised learned
  features (``learned_only``: the low-level statistics describe how pixels are made, which the
  pixel correlation already measures, and would make the two tests agree by chance together);
- by **pixel correlation**: Pearson correlation of the images downsampled (antialiased bilinear,
  centre-cropped) to ``pixel_size`` (64 px by default). An image with constant pixels has no
  correlation with anything; it is given 0.

**Thresholds, calibrated on real images** ("how close do two different real patients get?"):

- with ``reference`` (real images that are *not* in the training set; preferred): each reference
  image's nearest training image by each measure. That is exactly the situation of a synthetic
  image from a generator that copies nothing: a new image from the same population, compared with
  the training set. Reference images pixel-identical to a training image are left out (and
  counted: that is a leak of its own).
- without it: each training image's nearest *other* training image (leave one out), with
  pixel-identical duplicates inside the training set left out (they would put the threshold at 0
  and hide every copy) and counted. When the extractor was trained on these same images (the
  usual case), their features are spread further apart than those of new images, so new images
  land closer to a training image than training images to each other: on the test phantoms about
  1 in 10 new images is flagged this way. The report then carries a note saying so.

From those nearest-neighbour values:

- feature threshold: their 1st percentile;
- correlation threshold: the 99th percentile of the highest correlations;

each taken as an observed value (numpy ``method="lower"`` / ``"higher"``), so with 100 calibration
images or fewer it is the closest real pair itself. ``flagged_by`` lists each measure by which a
synthetic image is strictly closer to a training image than that; by construction about 1 in 100
images of a generator that copies nothing passes each threshold by chance (on the test phantoms
3-5 in 100, the minimum of 96 values being a noisy threshold). A synthetic image is **flagged**
when it passes *both* (close in content and in pixel layout; on the phantoms none of 96 new images
did, while copies with added noise all were); ``suspects`` lists those passing either. Flagged
pairs are for a researcher to judge side by side, not a verdict.

Limitation: the pixel correlation is not shift-invariant; a copy displaced by a few pixels (2 px at
64 px on the phantoms) passes neither threshold. Diffusion models trained on aligned chest X-rays
reproduce training images in place, which is what this check catches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evaluation.metrics.features import FeatureExtractor
from evaluation.metrics.images import Images, as_image_list, stack_resized

FEATURE_PERCENTILE = 1.0
CORRELATION_PERCENTILE = 99.0
BLOCK = 1024


@dataclass(frozen=True)
class MemorizationMatch:
    synthetic_index: int
    real_index: int  # nearest training image by feature distance
    distance: float  # its feature distance
    pixel_real_index: int  # most correlated training image
    correlation: float  # its pixel correlation
    flagged: bool  # closer than both thresholds
    flagged_by: tuple[str, ...]  # the thresholds passed: "features" and/or "pixels"


@dataclass(frozen=True)
class MemorizationReport:
    matches: tuple[MemorizationMatch, ...]  # one per synthetic image, in input order
    feature_threshold: float | None
    correlation_threshold: float | None
    n_training: int
    n_synthetic: int
    n_calibration: int  # real images whose nearest-neighbour values set the thresholds
    calibration: str  # how the thresholds were set
    duplicate_training_images: (
        int  # training images with a pixel-identical twin in the training set
    )
    reference_in_training: int  # reference images pixel-identical to a training image
    pixel_size: int
    extractor_version: str
    extractor_sha256: str
    notes: tuple[str, ...] = ()
    not_defined: str | None = None

    @property
    def defined(self) -> bool:
        return self.not_defined is None

    @property
    def flagged(self) -> tuple[MemorizationMatch, ...]:
        """Flagged matches, most correlated first (then smallest feature distance)."""
        hits = [m for m in self.matches if m.flagged]
        return tuple(sorted(hits, key=lambda m: (-m.correlation, m.distance)))

    @property
    def n_flagged(self) -> int:
        return sum(m.flagged for m in self.matches)

    @property
    def suspects(self) -> tuple[MemorizationMatch, ...]:
        """Matches closer than at least one threshold (flagged ones included), most correlated first."""
        hits = [m for m in self.matches if m.flagged_by]
        return tuple(sorted(hits, key=lambda m: (-m.correlation, m.distance)))


def pixel_vectors(images: list[np.ndarray], size: int) -> np.ndarray:
    """Downsampled images as zero-mean unit-norm rows (constant images: all zeros)."""
    if not images:
        return np.zeros((0, size * size))
    x = stack_resized(images, size).reshape(len(images), -1).double().numpy()
    x = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 1e-12)


class _Groups:
    """Ids shared by pixel-identical images, across every set looked up."""

    def __init__(self) -> None:
        self._ids: dict[tuple, int] = {}

    def __call__(self, images: list[np.ndarray]) -> np.ndarray:
        return np.array(
            [self._ids.setdefault((i.shape, i.tobytes()), len(self._ids)) for i in images], np.int64
        ).reshape(-1)


def _nearest(
    query_f: np.ndarray,
    query_p: np.ndarray,
    train_f: np.ndarray,
    train_p: np.ndarray,
    exclude: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per query row: nearest training row by feature distance (distance, index) and most
    correlated training row (correlation, index); pairs with equal ``exclude`` group ids are
    skipped (distance inf, correlation -inf when nothing is left)."""
    n = len(query_f)
    dist, dist_idx = np.empty(n), np.empty(n, np.int64)
    corr, corr_idx = np.empty(n), np.empty(n, np.int64)
    train_sq = (train_f**2).sum(axis=1)
    for start in range(0, n, BLOCK):
        rows = slice(start, start + BLOCK)
        sq = (query_f[rows] ** 2).sum(axis=1)[:, None] + train_sq[None, :]
        d = np.sqrt(np.clip(sq - 2.0 * query_f[rows] @ train_f.T, 0.0, None))
        c = query_p[rows] @ train_p.T
        if exclude is not None:
            same = exclude[0][rows, None] == exclude[1][None, :]
            d[same] = np.inf
            c[same] = -np.inf
        dist_idx[rows] = d.argmin(axis=1)
        dist[rows] = d.min(axis=1)
        corr_idx[rows] = c.argmax(axis=1)
        corr[rows] = c.max(axis=1)
    return dist, dist_idx, corr, corr_idx


def _ordinal(value: float) -> str:
    text = f"{value:g}"
    if not text.isdigit():
        return f"{text}th"
    if text.endswith(("11", "12", "13")):
        return f"{text}th"
    return text + {"1": "st", "2": "nd", "3": "rd"}.get(text[-1], "th")


def find_memorized(
    synthetic: Images,
    training: Images,
    extractor: FeatureExtractor,
    *,
    reference: Images | None = None,
    pixel_size: int = 64,
    feature_percentile: float = FEATURE_PERCENTILE,
    correlation_percentile: float = CORRELATION_PERCENTILE,
) -> MemorizationReport:
    """Nearest training image of every synthetic image, flagged against real-real thresholds.

    ``training``: the generator's training images; ``reference``: real images outside the
    training set for the calibration (optional; see the module documentation).
    """
    synthetic_items = as_image_list(synthetic, "synthetic images")
    training_items = as_image_list(training, "training images")
    reference_items = as_image_list(reference, "reference images") if reference is not None else []
    use_reference = bool(reference_items)
    group_of = _Groups()
    train_groups = group_of(training_items)
    reference_groups = group_of(reference_items)
    counts = np.bincount(train_groups) if train_groups.size else np.zeros(0, np.int64)
    distinct = int((counts > 0).sum())
    in_training = int(np.isin(reference_groups, train_groups).sum())
    base = _report_base(
        len(training_items), len(synthetic_items), extractor, pixel_size, in_training,
        duplicates=int((counts[train_groups] > 1).sum()) if train_groups.size else 0,
        calibration=_calibration(
            use_reference, pixel_size, feature_percentile, correlation_percentile
        ),
    )  # fmt: skip
    reason = _not_defined(
        len(synthetic_items), len(training_items), len(reference_items), distinct, in_training
    )
    if reason:
        return MemorizationReport((), None, None, n_calibration=0, not_defined=reason, **base)
    train_f = extractor.features(training_items, learned_only=True)
    train_p = pixel_vectors(training_items, pixel_size)
    if use_reference:
        keep = ~np.isin(reference_groups, train_groups)
        kept = [image for image, k in zip(reference_items, keep) if k]
        ref_f, ref_p = extractor.features(kept, learned_only=True), pixel_vectors(kept, pixel_size)
        nn_dist, _, nn_corr, _ = _nearest(ref_f, ref_p, train_f, train_p)
    else:
        nn_dist, _, nn_corr, _ = _nearest(
            train_f, train_p, train_f, train_p, exclude=(train_groups, train_groups)
        )
    usable = np.isfinite(nn_dist) & np.isfinite(nn_corr)
    thresholds = (
        float(np.percentile(nn_dist[usable], feature_percentile, method="lower")),
        float(np.percentile(nn_corr[usable], correlation_percentile, method="higher")),
    )
    notes = _notes(extractor, training_items, reference_items, in_training)
    synth_f = extractor.features(synthetic_items, learned_only=True)
    synth_p = pixel_vectors(synthetic_items, pixel_size)
    matches = _matches(*_nearest(synth_f, synth_p, train_f, train_p), *thresholds)
    return MemorizationReport(
        matches, *thresholds, n_calibration=int(usable.sum()), notes=tuple(notes), **base
    )


def _report_base(
    n_training: int,
    n_synthetic: int,
    extractor: FeatureExtractor,
    pixel_size: int,
    in_training: int,
    *,
    duplicates: int,
    calibration: str,
) -> dict:
    """The report's fields that do not depend on the thresholds."""
    return {
        "n_training": n_training,
        "n_synthetic": n_synthetic,
        "calibration": calibration,
        "duplicate_training_images": duplicates,
        "reference_in_training": in_training,
        "pixel_size": pixel_size,
        "extractor_version": extractor.version,
        "extractor_sha256": extractor.sha256,
    }  # fmt: skip


def _calibration(
    use_reference: bool, pixel_size: int, feature_percentile: float, correlation_percentile: float
) -> str:
    """How the thresholds are set, in words for the report."""
    source = (
        "each reference (held-out real) image's nearest training image"
        if use_reference
        else "each training image's nearest other training image"
    )
    return (
        f"{source}, pixel-identical pairs left out: flagged when the feature distance is below the "
        f"{_ordinal(feature_percentile)} percentile of those distances and the pixel correlation at "
        f"{pixel_size} px is above the {_ordinal(correlation_percentile)} percentile of those "
        f"correlations (observed values, numpy 'lower'/'higher')"
    )


def _not_defined(
    n_synthetic: int, n_training: int, n_reference: int, distinct: int, in_training: int
) -> str | None:
    """Why no threshold can be set (or nothing is to be checked); None when all is well."""
    if not n_synthetic:
        return "no synthetic images to check"
    if n_reference and (distinct < 1 or in_training == n_reference):
        return (
            "the threshold needs training images and at least one reference image that is not "
            f"also a training image, got {n_training} training and "
            f"{n_reference} reference images ({in_training} of them in the training set)"
        )
    if not n_reference and distinct < 2:
        return (
            f"the threshold needs at least 2 different training images, got {n_training} "
            f"image(s) with {distinct} distinct"
        )
    return None


def _notes(extractor: FeatureExtractor, training_items, reference_items, in_training: int):
    """What makes the thresholds less trustworthy: images the extractor was trained on."""
    use_reference = bool(reference_items)
    notes = []
    seen_training = int(extractor.seen(training_items).sum())
    if not use_reference and seen_training:
        notes.append(
            f"{seen_training} of the {len(training_items)} training images trained the feature "
            "extractor and the thresholds come from the training images themselves: new images "
            "tend to land closer to a training image than training images to each other, so expect "
            "extra feature suspects; pass held-out real images as reference"
        )
    if use_reference and in_training:
        notes.append(f"{in_training} reference image(s) are also training images; left out")
    if use_reference and extractor.seen(reference_items).any():
        notes.append(
            f"{int(extractor.seen(reference_items).sum())} reference image(s) trained the feature "
            "extractor; the feature threshold may be off"
        )
    return notes


def _matches(
    distance, nearest, best_corr, most_correlated, feature_threshold, correlation_threshold
) -> tuple[MemorizationMatch, ...]:
    """Every synthetic image's nearest training images; flagged when both tests hit."""
    matches = []
    for s in range(len(distance)):
        d, c = float(distance[s]), float(best_corr[s])
        hits = (("features", d < feature_threshold), ("pixels", c > correlation_threshold))
        reasons = tuple(name for name, hit in hits if hit)
        matches.append(
            MemorizationMatch(
                synthetic_index=s,
                real_index=int(nearest[s]),
                distance=d,
                pixel_real_index=int(most_correlated[s]),
                correlation=c,
                flagged=len(reasons) == 2,
                flagged_by=reasons,
            )
        )
    return tuple(matches)
