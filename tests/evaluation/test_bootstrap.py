"""Bootstrap intervals of the Fréchet distance, KID and precision/recall/density/coverage."""

import numpy as np
import pytest

from evaluation.metrics import compare_sets, frechet_distance, kernel_distance, prdc
from evaluation.metrics.bootstrap import frechet_interval, kid_interval, prdc_intervals
from readerstudy.analysis import Estimate
from tests.evaluation.phantoms import labelled_pool

NAMES = ("precision", "recall", "density", "coverage")


def gaussian_sets(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6)), rng.normal(0.3, 1.0, size=(n, 6))


def intervals(n: int, seed: int = 0, resamples: int = 200):
    a, b = gaussian_sets(n)
    fd = frechet_distance(a, b)
    kid = kernel_distance(a, b).mean
    point = prdc(a, b, k=5)
    estimates = {name: getattr(point, name) for name in NAMES}
    out = {
        "frechet_distance": (
            fd,
            frechet_interval(a, b, estimate=fd, n_resamples=resamples, seed=seed),
        ),
        "kid": (kid, kid_interval(a, b, estimate=kid, n_resamples=resamples, seed=seed)),
    }
    found = prdc_intervals(a, b, k=5, estimates=estimates, n_resamples=resamples, seed=seed)
    out.update({name: (estimates[name], found[name]) for name in NAMES})
    return out


def test_it_covers_the_point_estimate_of_every_figure():
    for name, (estimate, interval) in intervals(60).items():
        assert interval.low <= estimate <= interval.high, name
        assert interval.high > interval.low, name
        assert interval.method == "percentile bootstrap, 200 resamples, median on the estimate"


def test_it_is_reproducible_with_the_seed_and_differs_with_another():
    first, again, other = intervals(60, seed=3), intervals(60, seed=3), intervals(60, seed=4)
    assert first == again
    assert all(first[name][1] != other[name][1] for name in first)


def test_it_narrows_with_more_images():
    small, large = intervals(40), intervals(320)
    for name in small:
        small_width = small[name][1].high - small[name][1].low
        large_width = large[name][1].high - large[name][1].low
        assert large_width < 0.7 * small_width, name


def test_it_keeps_shares_within_zero_and_one_and_distances_non_negative():
    a = np.random.default_rng(1).normal(size=(30, 4))
    found = prdc_intervals(
        a, a.copy(), k=3, estimates={n: 1.0 for n in NAMES}, n_resamples=100, seed=0
    )
    for name in ("precision", "recall", "coverage"):
        assert found[name].high == 1.0 and 0.0 <= found[name].low <= 1.0
    interval = frechet_interval(a, a.copy(), estimate=0.0, n_resamples=100, seed=0)
    assert interval.low == 0.0


@pytest.fixture(scope="module")
def sized_reports(extractor):
    """The same kind of images, 24 and 96 of each."""
    reports = {}
    for n in (24, 96):
        real = labelled_pool(2 * n, 64, seed=900)[0]
        synthetic = labelled_pool(n, 64, seed=901)[0]
        reports[n] = compare_sets(
            real, synthetic, extractor, kid_subsets=5, diversity_pairs=5, n_resamples=100
        )
    return reports


def test_compare_sets_gives_every_distance_and_share_and_its_baseline_an_interval(sized_reports):
    report = sized_reports[96]
    for metric in report.metrics:
        if metric.name == "ms_ssim_diversity":
            continue
        for value in (metric.value, metric.baseline):
            assert isinstance(value, Estimate) and value.method.startswith("percentile bootstrap")
            assert value.ci_low <= value.estimate <= value.ci_high, metric.name
    payload = report.to_jsonable()
    assert payload["metrics"][0]["baseline"]["ci_high"] is not None


def test_compare_sets_intervals_narrow_with_more_images(sized_reports):
    def width(report, name, slot):
        value = getattr(report.metric(name), slot)
        return value.ci_high - value.ci_low

    for name in ("kid", "density"):
        for slot in ("value", "baseline"):
            assert width(sized_reports[96], name, slot) < width(sized_reports[24], name, slot)


def test_compare_sets_without_resamples_gives_point_estimates(extractor, held_out_real):
    report = compare_sets(
        held_out_real[:40],
        held_out_real[40:60],
        extractor,
        kid_subsets=2,
        diversity_pairs=3,
        n_resamples=0,
    )
    assert all(m.value.ci_low is None for m in report.metrics)
