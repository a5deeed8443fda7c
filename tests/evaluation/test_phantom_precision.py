"""Noise, blank and heavily blurred images are outside the real manifold; new real images are in.

Threshold: precision and density <= 0.05 for each phantom set (48 images against a reference of
48 held-out real images, k = 5); a held-out real split scores precision >= 0.75 (measured 0.94).
"""

import numpy as np
import pytest

from evaluation.metrics import compare_sets, prdc, train_feature_extractor
from tests.evaluation.phantoms import blank, blurred, labelled_pool, white_noise

MAX_PRECISION = 0.05


@pytest.fixture(scope="module")
def fresh():
    return labelled_pool(48, 64, seed=500)[0]


@pytest.fixture(scope="module")
def phantoms(fresh):
    return {
        "white noise": white_noise(48, 64, seed=1),
        "blank": blank(48, 64, seed=2),
        "blurred (sigma 2 px of 64)": blurred(fresh, 2.0),
        "blurred (sigma 3 px of 64)": blurred(fresh, 3.0),
    }


def test_it_puts_noise_blank_and_blurred_images_outside_the_real_manifold(
    extractor, held_out_real, phantoms
):
    reference = extractor.features(held_out_real[:48])
    for name, images in phantoms.items():
        result = prdc(reference, extractor.features(images), k=5)
        assert result.precision <= MAX_PRECISION, name
        assert result.density <= MAX_PRECISION, name


def test_it_keeps_a_held_out_real_split_and_new_real_images_inside(extractor, held_out_real, fresh):
    reference = extractor.features(held_out_real[:48])
    assert prdc(reference, extractor.features(held_out_real[48:]), k=5).precision >= 0.75
    assert prdc(reference, extractor.features(fresh), k=5).precision >= 0.75


def test_compare_sets_reports_noise_as_imprecise_beside_a_high_baseline(extractor, held_out_real):
    report = compare_sets(
        held_out_real,
        white_noise(48, 64, seed=3),
        extractor,
        kid_subsets=5,
        diversity_pairs=5,
        n_resamples=50,
    )
    precision = report.metric("precision")
    assert precision.value.estimate <= MAX_PRECISION and precision.value.ci_high <= 0.1
    assert precision.baseline.estimate >= 0.75


def test_the_learned_features_alone_take_blurred_images_for_real(real_pool, held_out_real, fresh):
    """Why the low-level statistics and the realness objective are there: without them, the
    blurred phantoms sit inside the real manifold."""
    images, labels = real_pool
    plain = train_feature_extractor(
        images, labels, epochs=12, seed=0, input_size=32, negatives=False, low_level=False
    )
    reference = plain.features(held_out_real[:48])
    assert prdc(reference, plain.features(blurred(fresh, 3.0)), k=5).precision > 0.5
    assert np.isfinite(reference).all()
