"""The locally trained feature extractor: determinism, save/load with SHA-256, torchmetrics use."""

import json

import numpy as np
import pytest
import torch
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from evaluation.metrics import (
    ExtractorError,
    FeatureExtractor,
    frechet_distance,
    kernel_distance,
    lowlevel,
    train_feature_extractor,
)
from evaluation.metrics.features import MARKER, WEIGHTS
from tests.evaluation.phantoms import xray_like


def tiny(seed=0, labels=True):
    images = xray_like(16, 32, seed=3)
    names = ["a", "b"] * 8 if labels else None
    return train_feature_extractor(
        images, names, epochs=2, seed=seed, input_size=16, feature_dim=8, width=4
    )


def test_it_trains_the_same_weights_for_the_same_seed_and_others_for_another():
    assert tiny(seed=1).sha256 == tiny(seed=1).sha256
    assert tiny(seed=1).sha256 != tiny(seed=2).sha256


def test_it_leaves_the_global_torch_random_state_alone():
    before = torch.random.get_rng_state()
    tiny()
    assert torch.equal(before, torch.random.get_rng_state())


def test_it_trains_on_reconstruction_alone_without_two_findings():
    for extractor in (
        tiny(labels=False),
        train_feature_extractor(
            xray_like(8, 32), ["normal"] * 8, epochs=1, input_size=16, feature_dim=8, width=4
        ),
    ):
        assert "finding classification" not in extractor.training["objective"]
        assert extractor.training["objective"].startswith("reconstruction + realness")
        assert extractor.classes == ()
        # 8 learned features, the realness logit and the low-level statistics of 16 px inputs
        assert extractor.config.feature_dim == 8
        assert extractor.features(xray_like(3, 32)).shape == (3, 8 + 1 + lowlevel.dimension(16))


def test_it_records_the_finding_objective_and_label_counts(extractor):
    assert extractor.training["objective"] == (
        "reconstruction + finding classification"
        " + realness against noise, blank, blurred and scrambled images"
    )
    assert extractor.training["label_counts"] == {"normal": 48, "opacity": 48}
    assert extractor.classes == ("normal", "opacity")
    assert extractor.identity.startswith("test-extractor (weights sha256 ")


def test_it_gives_standardised_features_of_any_image_size(extractor, real_pool):
    images, _ = real_pool
    features = extractor.features(images)
    assert features.shape == (96, extractor.feature_dim) and features.dtype == np.float64
    np.testing.assert_allclose(features.mean(axis=0), 0, atol=1e-4)
    # a 512 px derivative of the same picture lands close to the 64 px one
    big = np.asarray(
        torch.nn.functional.interpolate(
            torch.from_numpy(images[:4, None]).float(), size=512, mode="bilinear"
        )
        .round()
        .clamp(0, 255)
        .to(torch.uint8)[:, 0]
    )
    assert np.abs(extractor.features(big) - features[:4]).mean() < 0.5
    assert extractor.features([]).shape == (0, extractor.feature_dim)


def test_it_saves_and_loads_with_the_same_sha256_and_features(tmp_path, extractor, real_pool):
    folder = extractor.save(tmp_path / "extractor")
    marker = json.loads((folder / MARKER).read_text())
    assert marker["weights_sha256"] == extractor.sha256 and marker["version"] == "test-extractor"
    assert marker["config"]["input_size"] == 32 and marker["libraries"]["torch"]
    loaded = FeatureExtractor.load(folder)
    assert loaded.sha256 == extractor.sha256
    assert loaded.training_fingerprints == extractor.training_fingerprints
    images, _ = real_pool
    np.testing.assert_array_equal(loaded.features(images[:5]), extractor.features(images[:5]))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_it_refuses_weights_that_do_not_match_their_sha256(tmp_path):
    folder = tiny().save(tmp_path / "x")
    data = bytearray((folder / WEIGHTS).read_bytes())
    data[-1] ^= 1
    (folder / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(ExtractorError, match="SHA-256"):
        FeatureExtractor.load(folder)


def test_it_refuses_missing_or_foreign_folders_and_overwriting(tmp_path):
    with pytest.raises(ExtractorError, match="not a saved feature extractor"):
        FeatureExtractor.load(tmp_path)
    (tmp_path / MARKER).write_text(json.dumps({"kind": "ddpm"}))
    with pytest.raises(ExtractorError, match="not a spotthefake-feature-extractor"):
        FeatureExtractor.load(tmp_path)
    with pytest.raises(ExtractorError, match="never overwritten"):
        tiny().save(tmp_path)


def test_it_knows_which_images_it_was_trained_on(extractor, real_pool, held_out_real):
    assert extractor.seen(real_pool[0]).all()
    assert not extractor.seen(held_out_real).any()
    assert len(extractor.training_fingerprints) == 96


def test_it_rejects_bad_training_input():
    with pytest.raises(ValueError, match="at least 2 images"):
        train_feature_extractor(xray_like(1, 32), epochs=1)
    with pytest.raises(ValueError, match="expected uint8"):
        train_feature_extractor(np.zeros((4, 32, 32), np.float32), epochs=1)
    with pytest.raises(ValueError, match="3 labels for 4 images"):
        train_feature_extractor(xray_like(4, 32), ["a", "b", "a"], epochs=1)
    with pytest.raises(ValueError, match="power of two"):
        train_feature_extractor(xray_like(4, 32), epochs=1, input_size=48)


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_it_works_as_a_torchmetrics_feature_module_for_fid_and_kid(extractor, real_pool):
    images, _ = real_pool
    real, fake = images[:40], np.clip(images[40:80].astype(int) + 10, 0, 255).astype(np.uint8)
    module = extractor.torchmetrics_module()
    fid = FrechetInceptionDistance(feature=module)
    kid = KernelInceptionDistance(feature=module, subsets=1, subset_size=40)
    for metric in (fid, kid):
        metric.update(torch.from_numpy(real[:, None]), real=True)
        metric.update(torch.from_numpy(fake[:, None]), real=False)
    ours_fd = frechet_distance(extractor.features(real), extractor.features(fake))
    assert float(fid.compute()) == pytest.approx(ours_fd, rel=1e-6)
    ours_kid = kernel_distance(extractor.features(real), extractor.features(fake))
    assert float(kid.compute()[0]) == pytest.approx(ours_kid.mean, rel=1e-6)
