"""The machine observer: held-out AUC of a real-vs-synthetic classifier."""

import numpy as np
import pytest

from evaluation.metrics import machine_observer, machine_observer_from_features
from readerstudy.analysis import Estimate, NotDefined


def test_it_is_near_chance_for_identical_sets(real_pool, extractor):
    images = real_pool[0]
    result = machine_observer(images, images.copy(), extractor, seed=0)
    assert isinstance(result.auc, Estimate)
    assert abs(result.auc.estimate - 0.5) < 0.2
    assert result.auc.ci_low < 0.5 < result.auc.ci_high
    assert result.extractor_sha256 == extractor.sha256
    assert (result.n_real, result.n_synthetic, result.n_held_out) == (96, 96, 58)


def test_it_spots_a_brightness_shifted_set(held_out_real, extractor):
    brighter = np.clip(held_out_real.astype(int) + 30, 0, 255).astype(np.uint8)
    result = machine_observer(held_out_real, brighter, extractor, seed=0)
    # The shift separates the held-out sets completely: AUC 1 with no (zero-width) interval.
    assert result.auc.estimate == 1.0 and result.auc.ci_low is None
    assert "perfect separation" in result.auc.note
    assert result.accuracy.estimate > 0.8


def test_it_is_reproducible_for_a_seed():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(40, 5)), rng.normal(0.3, size=(40, 5))
    first = machine_observer_from_features(real, fake, seed=3)
    assert first == machine_observer_from_features(real, fake, seed=3)
    assert first.auc.method.startswith("Mann-Whitney AUC; DeLong")


def test_it_needs_four_images_of_each_class():
    result = machine_observer_from_features(np.zeros((3, 4)), np.ones((10, 4)))
    assert isinstance(result.auc, NotDefined) and not result.defined
    assert "at least 4 real and 4 synthetic images" in result.auc.reason
    assert "got 3 real and 10 synthetic" in result.auc.reason
    smallest = machine_observer_from_features(np.zeros((4, 4)), np.ones((4, 4)))
    assert smallest.defined and smallest.n_held_out == 4 and smallest.n_train == 4
    with pytest.raises(ValueError, match="held_out"):
        machine_observer_from_features(np.zeros((4, 4)), np.ones((4, 4)), held_out=1.0)
