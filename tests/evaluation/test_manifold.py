"""Precision, recall, density and coverage on k-NN manifolds."""

import numpy as np
import pytest

from evaluation.metrics import InsufficientData, prdc


def test_it_gives_one_for_identical_sets():
    a = np.random.default_rng(0).normal(size=(100, 8))
    result = prdc(a, a.copy(), k=5)
    assert (result.precision, result.recall, result.coverage) == (1.0, 1.0, 1.0)
    assert result.density == pytest.approx(1.0, abs=0.2)


def test_it_gives_zero_for_far_apart_sets():
    a = np.random.default_rng(1).normal(size=(50, 4))
    result = prdc(a, a + 100.0, k=3)
    assert (result.precision, result.recall, result.density, result.coverage) == (0, 0, 0, 0)


def test_it_follows_the_definitions_on_a_hand_worked_line():
    # real at 0, 1, 2, 3 (k = 1: each ball has radius 1, open); synthetic at 0.5, 10, 11
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    synthetic = np.array([[0.5], [10.0], [11.0]])
    result = prdc(real, synthetic, k=1)
    # 0.5 lies in the balls of 0 and 1; 10 and 11 in none
    assert result.precision == pytest.approx(1 / 3)
    assert result.density == pytest.approx(2 / 3)
    # balls of 0 and 1 hold a synthetic sample
    assert result.coverage == pytest.approx(2 / 4)
    # synthetic radii: 0.5 -> 9.5, 10 -> 1, 11 -> 1; every real point is within 9.5 of 0.5
    assert result.recall == 1.0


def test_it_loses_precision_but_keeps_recall_for_a_collapsed_generator():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(200, 2))
    collapsed = rng.normal(scale=0.05, size=(200, 2))  # everything near the centre
    result = prdc(real, collapsed, k=5)
    assert result.precision > 0.9
    assert result.coverage < 0.3 and result.recall < 0.3


def test_it_needs_more_than_k_images_in_each_set():
    with pytest.raises(InsufficientData, match="more than 5 images in each set, got 5 real"):
        prdc(np.zeros((5, 2)), np.zeros((10, 2)), k=5)
