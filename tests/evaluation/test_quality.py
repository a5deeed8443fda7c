"""compare_sets: every figure beside its real-vs-real baseline."""

import dataclasses
import json

import numpy as np
import pytest

from evaluation.metrics import IncomparableReports, check_comparable, compare_sets
from readerstudy.analysis import Estimate, NotDefined
from tests.evaluation.phantoms import labelled_pool

NAMES = [
    "frechet_distance",
    "kid",
    "precision",
    "recall",
    "density",
    "coverage",
    "ms_ssim_diversity",
]
# these tests check the figures, not their intervals (test_bootstrap does): few resamples suffice
RESAMPLES = 200


def compare(*args, **kwargs):
    return compare_sets(*args, **{"n_resamples": RESAMPLES, **kwargs})


@pytest.fixture(scope="module")
def fresh():
    """60 new images from the same generator as the real pool: a perfect "generator"."""
    return labelled_pool(60, 64, seed=500)[0]


@pytest.fixture(scope="module")
def good_report(held_out_real, fresh, extractor):
    return compare(
        held_out_real,
        fresh,
        extractor,
        seed=0,
        kid_subsets=20,
        diversity_pairs=200,
    )


def brighter(images, amount=30):
    return np.clip(images.astype(int) + amount, 0, 255).astype(np.uint8)


def test_it_reports_every_figure_with_its_baseline_and_the_extractor(good_report, extractor):
    assert [m.name for m in good_report.metrics] == NAMES
    assert good_report.extractor_sha256 == extractor.sha256
    assert good_report.extractor_version == "test-extractor"
    # 96 real: a reference half of 48 against 48 synthetic (of 60) and 48 real
    assert (good_report.n_reference, good_report.n_compared, good_report.n_synthetic) == (
        48,
        48,
        60,
    )
    for metric in good_report.metrics:
        assert isinstance(metric.value, Estimate) and isinstance(metric.baseline, Estimate)
    assert "12 synthetic images left out" in " ".join(good_report.notes)
    assert good_report.n_real_seen_by_extractor == 0
    diversity = good_report.metric("ms_ssim_diversity").value
    assert "64 px, 3 scales" in diversity.note


def test_it_puts_a_generator_of_the_same_distribution_near_the_baseline(good_report):
    fd = good_report.metric("frechet_distance")
    assert fd.ratio < 2.0
    for name in ("precision", "recall", "coverage"):
        assert good_report.metric(name).value.estimate > 0.75
    assert good_report.metric("ms_ssim_diversity").ratio == pytest.approx(1.0, abs=0.15)


def test_it_puts_a_brightness_shifted_set_far_from_the_baseline(
    held_out_real, fresh, extractor, good_report
):
    report = compare(
        held_out_real,
        brighter(fresh),
        extractor,
        seed=0,
        kid_subsets=20,
        diversity_pairs=10,
    )
    fd = report.metric("frechet_distance")
    assert fd.value.estimate > 10 * fd.baseline.estimate
    assert fd.value.estimate > 10 * good_report.metric("frechet_distance").value.estimate
    kid = report.metric("kid")
    assert kid.value.estimate > 10 * abs(kid.baseline.estimate)
    assert report.metric("precision").value.estimate < 0.3


def test_it_is_reproducible_for_a_seed(held_out_real, fresh, extractor, good_report):
    again = compare(
        held_out_real,
        fresh,
        extractor,
        seed=0,
        kid_subsets=20,
        diversity_pairs=200,
    )
    assert again == good_report


def test_it_warns_when_the_real_images_trained_the_extractor(real_pool, fresh, extractor):
    report = compare(
        real_pool[0][:40],
        fresh[:20],
        extractor,
        kid_subsets=2,
        diversity_pairs=3,
    )
    assert report.n_real_seen_by_extractor == 40
    assert any("baseline is optimistic" in note for note in report.notes)


def test_it_serialises_to_json_with_ratios(good_report):
    payload = good_report.to_jsonable()
    text = json.dumps(payload)
    assert payload["schema"] == "spotthefake.evaluation.quality/1"
    row = payload["metrics"][0]
    assert row["name"] == "frechet_distance" and row["value"]["not_defined"] is None
    assert row["ratio"] == pytest.approx(good_report.metrics[0].ratio)
    assert "NaN" not in text


def test_it_refuses_to_compare_figures_from_different_extractors(good_report):
    check_comparable(good_report, good_report)
    other = dataclasses.replace(good_report, extractor_sha256="0" * 64, extractor_version="other")
    assert not good_report.comparable_with(other)
    with pytest.raises(IncomparableReports, match="different feature extractors"):
        check_comparable(good_report, other)


def test_it_explains_too_few_real_or_synthetic_images(real_pool, extractor):
    images = real_pool[0]
    few_real = compare(images[:3], images[3:20], extractor, kid_subsets=2)
    for metric in few_real.metrics:
        assert isinstance(metric.value, NotDefined) and isinstance(metric.baseline, NotDefined)
        assert "at least 4 real images" in metric.value.reason
    one_synthetic = compare(
        images[:40],
        images[40:41],
        extractor,
        kid_subsets=2,
        diversity_pairs=5,
    )
    for metric in one_synthetic.metrics:
        assert metric.value.reason == "needs at least 2 synthetic images, got 1"
    assert isinstance(
        one_synthetic.metric("frechet_distance").baseline, NotDefined
    )  # 1 vs 1 matched
    few = compare(
        images[:40],
        images[40:44],
        extractor,
        kid_subsets=2,
        diversity_pairs=5,
    )
    assert isinstance(few.metric("frechet_distance").value, Estimate)
    assert "more than 5 images" in few.metric("precision").value.reason
    none = compare(images[:40], images[:0], extractor)
    assert "got 0" in none.metric("kid").value.reason


def test_it_reports_progress(real_pool, extractor):
    steps = []
    compare(
        real_pool[0][:20],
        real_pool[0][20:30],
        extractor,
        kid_subsets=2,
        diversity_pairs=3,
        progress=lambda step, done, total: steps.append((step, done, total)),
    )
    assert [s[0] for s in steps] == [
        "features",
        "frechet_distance",
        "kid",
        "prdc",
        "ms_ssim_diversity",
    ]
    assert steps[-1][1:] == (5, 5)


def test_it_measures_diversity_of_both_sets_at_one_size(held_out_real, fresh, extractor):
    bigger = np.repeat(np.repeat(fresh[:20], 2, axis=1), 2, axis=2)  # 128 px synthetic, 64 px real
    report = compare(
        held_out_real[:40],
        bigger,
        extractor,
        kid_subsets=2,
        diversity_pairs=5,
    )
    diversity = report.metric("ms_ssim_diversity")
    assert (
        "at 64 px, 3 scales" in diversity.value.note
        and "at 64 px, 3 scales" in diversity.baseline.note
    )
