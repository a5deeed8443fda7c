"""MS-SSIM diversity and the number of scales a small image allows."""

import numpy as np
import pytest

from evaluation.metrics import InsufficientData, ms_ssim_diversity, scales_for
from evaluation.metrics.diversity import STANDARD_BETAS, random_pairs
from tests.evaluation.phantoms import xray_like


def test_it_allows_five_scales_from_176_px_and_fewer_below():
    table = {11: 1, 21: 1, 22: 2, 43: 2, 44: 3, 98: 3, 99: 4, 175: 4, 176: 5, 512: 5}
    assert {side: scales_for(side) for side in table} == table
    with pytest.raises(InsufficientData, match="at least 11 px"):
        scales_for(10)


def test_it_is_zero_for_copies_of_one_image_and_larger_for_different_images():
    image = xray_like(1, 64, seed=1)[0]
    copies = ms_ssim_diversity([image] * 5)
    assert copies.mean == pytest.approx(0.0, abs=1e-5)
    assert copies.n_pairs == 10 and copies.scales == 3 and copies.image_size == 64
    assert sum(copies.betas) == pytest.approx(1.0, abs=1e-5)
    assert copies.betas[0] / copies.betas[1] == pytest.approx(
        STANDARD_BETAS[0] / STANDARD_BETAS[1], rel=1e-4
    )
    different = ms_ssim_diversity(xray_like(8, 64, seed=2), n_pairs=20)
    assert different.mean > 0.05 and different.n_pairs == 20


def test_it_measures_display_sized_images_at_256_px_with_the_standard_five_weights():
    images = np.repeat(xray_like(3, 64, seed=3), 8, axis=1).repeat(8, axis=2)  # 512 px
    result = ms_ssim_diversity(images, n_pairs=2)
    assert (result.image_size, result.scales, result.betas) == (256, 5, STANDARD_BETAS)


def test_it_draws_distinct_pairs_without_replacement():
    pairs = random_pairs(30, 100, np.random.default_rng(0))
    assert len({tuple(p) for p in pairs.tolist()}) == 100
    assert (pairs[:, 0] < pairs[:, 1]).all() and pairs.max() < 30
    assert len(random_pairs(4, 100, np.random.default_rng(0))) == 6


def test_it_needs_two_images():
    with pytest.raises(InsufficientData, match="at least 2 images, got 1"):
        ms_ssim_diversity(xray_like(1, 64))
