"""Memorization: copies of training images are flagged, new images are not."""

import numpy as np
import pytest

from evaluation.metrics import find_memorized
from tests.evaluation.phantoms import labelled_pool, xray_like


@pytest.fixture(scope="module")
def reference():
    """Real images outside the training set, for the calibration."""
    return labelled_pool(96, 64, seed=700)[0]


@pytest.fixture(scope="module")
def report(real_pool, held_out_real, reference, extractor):
    training = real_pool[0]
    synthetic = np.concatenate([held_out_real[:20], training[[7, 30]]])  # 20 new images, 2 copies
    return find_memorized(synthetic, training, extractor, reference=reference)


def test_it_flags_exact_copies_of_training_images_and_points_at_them(report):
    flagged = {m.synthetic_index: m for m in report.flagged}
    assert set(flagged) == {20, 21}
    for index, source in ((20, 7), (21, 30)):
        match = flagged[index]
        assert (match.real_index, match.pixel_real_index) == (source, source)
        assert match.distance == pytest.approx(0.0, abs=1e-5)
        assert match.correlation == pytest.approx(1.0, abs=1e-9)
        assert match.flagged_by == ("features", "pixels")
    assert report.n_flagged == 2


def test_it_does_not_flag_new_images_of_the_same_kind(report):
    new = report.matches[:20]
    assert not any(m.flagged for m in new)
    # each threshold alone lets a few new images through: those are suspects, not flagged
    assert {m.synthetic_index for m in report.flagged} <= {
        m.synthetic_index for m in report.suspects
    }


def test_it_calibrates_on_the_closest_real_pairs_and_says_how(report, extractor):
    assert report.defined and report.n_training == 96 and report.n_synthetic == 22
    assert report.n_calibration == 96 and report.notes == ()
    assert 0 < report.feature_threshold and 0 < report.correlation_threshold < 1
    assert "reference (held-out real) image's nearest training image" in report.calibration
    assert "below the 1st percentile" in report.calibration
    assert "above the 99th percentile" in report.calibration
    assert report.extractor_sha256 == extractor.sha256 and report.pixel_size == 64


def test_it_calibrates_on_the_training_set_itself_without_reference_and_warns(real_pool, extractor):
    training = real_pool[0]
    result = find_memorized(training[[3]], training, extractor)
    assert result.n_calibration == 96 and "nearest other training image" in result.calibration
    assert "pass held-out real images as reference" in result.notes[0]
    assert result.matches[0].flagged_by == ("features", "pixels")


def test_it_leaves_reference_images_that_are_training_images_out(real_pool, reference, extractor):
    training = real_pool[0]
    result = find_memorized(
        training[[3]], training, extractor, reference=np.concatenate([reference, training[:2]])
    )
    assert result.reference_in_training == 2 and result.n_calibration == 96
    assert "also training images" in " ".join(result.notes)
    assert result.matches[0].flagged


def test_it_flags_a_near_copy_and_leaves_duplicates_in_the_training_set_out_of_calibration(
    real_pool, held_out_real, extractor
):
    training = np.concatenate([real_pool[0], real_pool[0][:1]])  # image 0 twice
    noisy = np.clip(
        real_pool[0][5].astype(int) + np.random.default_rng(0).integers(-2, 3, (64, 64)), 0, 255
    )
    result = find_memorized(
        np.stack([noisy.astype(np.uint8), held_out_real[0]]), training, extractor
    )
    assert result.n_calibration == 97  # every image, each copy of the twin skipping the other
    assert result.duplicate_training_images == 2
    assert result.feature_threshold > 0  # the duplicate pair did not set it to zero
    assert [m.flagged for m in result.matches] == [True, False]
    assert result.matches[0].pixel_real_index == 5


def test_it_explains_why_there_is_no_threshold(extractor):
    one = find_memorized(xray_like(3, 64), xray_like(1, 64, seed=9), extractor)
    assert not one.defined and "at least 2 different training images" in one.not_defined
    same = find_memorized(xray_like(3, 64), np.repeat(xray_like(1, 64), 3, axis=0), extractor)
    assert "1 distinct" in same.not_defined and same.duplicate_training_images == 3
    none = find_memorized(xray_like(0, 64), xray_like(5, 64), extractor)
    assert none.not_defined == "no synthetic images to check" and none.matches == ()
    training = xray_like(4, 64)
    circular = find_memorized(xray_like(2, 64, seed=5), training, extractor, reference=training[:2])
    assert "not also a training image" in circular.not_defined
