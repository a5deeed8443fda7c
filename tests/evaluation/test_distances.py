"""Fréchet distance and KID against torchmetrics and scipy, on random features."""

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from evaluation.metrics import InsufficientData, frechet_distance, kernel_distance


class Identity(nn.Module):
    """Features in, features out: lets torchmetrics compute on given features."""

    def __init__(self, d):
        super().__init__()
        self.num_features = d

    def forward(self, x):
        return x


def torchmetrics_fid(a, b):
    metric = FrechetInceptionDistance(feature=Identity(a.shape[1]))
    metric.update(torch.from_numpy(a), real=True)
    metric.update(torch.from_numpy(b), real=False)
    return float(metric.compute())


def test_it_matches_torchmetrics_fid_on_random_features():
    rng = np.random.default_rng(0)
    for n1, n2, d, shift in ((200, 150, 16, 0.3), (50, 80, 32, 1.0), (30, 30, 64, 0.0)):
        mix = rng.normal(size=(d, d)) / np.sqrt(d)
        a = rng.normal(size=(n1, d)) @ mix
        b = rng.normal(size=(n2, d)) @ (mix * 1.3) + shift
        assert frechet_distance(a, b) == pytest.approx(torchmetrics_fid(a, b), rel=1e-6, abs=1e-8)


def test_it_matches_the_sqrtm_formula_when_it_is_well_conditioned():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(500, 8)), rng.normal(0.5, 2.0, size=(400, 8))
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    diff = a.mean(0) - b.mean(0)
    expected = diff @ diff + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


def test_it_gives_zero_distance_for_identical_sets_even_when_covariance_is_singular():
    rng = np.random.default_rng(2)
    for n, d in ((100, 10), (12, 40)):  # second: rank-deficient covariance (n < d)
        a = rng.normal(size=(n, d))
        assert frechet_distance(a, a.copy()) == pytest.approx(0.0, abs=1e-8)
        assert frechet_distance(a, a[::-1]) == pytest.approx(0.0, abs=1e-8)


def test_it_grows_with_a_mean_shift_by_the_squared_shift():
    a = np.random.default_rng(3).normal(size=(300, 4))
    assert frechet_distance(a, a + [2.0, 0, 0, 0]) == pytest.approx(4.0, rel=1e-9)


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_it_matches_torchmetrics_kid_with_one_subset_of_everything():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(60, 12)), rng.normal(0.2, 1.1, size=(60, 12))
    metric = KernelInceptionDistance(feature=Identity(12), subsets=1, subset_size=60)
    metric.update(torch.from_numpy(a), real=True)
    metric.update(torch.from_numpy(b), real=False)
    ours = kernel_distance(a, b)
    assert ours.subset_size == 60 and ours.n_subsets == 1 and ours.std == 0.0
    assert ours.mean == pytest.approx(float(metric.compute()[0]), rel=1e-9)


def test_it_gives_kid_near_zero_for_identical_sets_and_positive_for_shifted_ones():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(400, 16))
    shifted = kernel_distance(a, a + 0.5)
    assert shifted.mean > 0.5
    # identical sets: the cross term keeps its diagonal, so the value is -O(1/n), not exactly 0
    same = kernel_distance(a, a.copy())
    assert -0.05 * shifted.mean < same.mean < 0
    independent = kernel_distance(a, rng.normal(size=(400, 16)), subset_size=200, n_subsets=20)
    assert abs(independent.mean) < 0.05 * shifted.mean


def test_it_draws_kid_subsets_reproducibly_from_the_seed_and_defaults_the_subset_size():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(50, 8)), rng.normal(size=(30, 8))
    first = kernel_distance(a, b, n_subsets=20, seed=7)
    assert first == kernel_distance(a, b, n_subsets=20, seed=7)
    assert first.subset_size == 30 and first.n_subsets == 20 and first.std > 0
    assert first != kernel_distance(a, b, n_subsets=20, seed=8)


def test_it_explains_why_too_few_images_give_no_distance():
    a = np.zeros((1, 4))
    with pytest.raises(InsufficientData, match="at least 2 images in each set, got 1 and 3"):
        frechet_distance(a, np.ones((3, 4)))
    with pytest.raises(InsufficientData, match="at least 2"):
        kernel_distance(np.ones((3, 4)), a)
    with pytest.raises(InsufficientData, match="larger than the smaller set"):
        kernel_distance(np.ones((3, 4)), np.ones((5, 4)), subset_size=4)
    with pytest.raises(ValueError, match="dimensions differ"):
        frechet_distance(np.ones((3, 4)), np.ones((3, 5)))
