"""Loading and classifier-free-guided sampling of the class-conditional ddpm engine (tiny CPU models)."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading

import numpy as np
import pytest
import torch

from generation.engine import checkpoints as ckpt
from generation.engine import training as training_mod
from generation.engine.checkpoints import ModelFolderError, load_model
from generation.engine.ddpm import DDPMConfig, DDPMError, UnknownFindingError
from generation.engine.sampling import SCHEDULERS, SamplingCancelled, sample
from generation.engine.training import TrainingConfig, train

FINDINGS = ["normal", "effusion", "cardiomegaly"]
PROVENANCE_KEYS = {
    "generator",
    "model",
    "model_folder",
    "checkpoint",
    "checkpoint_step",
    "weights_sha256",
    "modality",
    "finding",
    "class_index",
    "scheduler",
    "prediction_type",
    "steps",
    "guidance",
    "eta",
    "seed",
    "resolution",
    "device",
    "dtype",
    "compiled",
    "library_versions",
}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained a few steps; the in-memory EMA module is kept for the round trip."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    data = [(rng.integers(0, 256, (32, 32), dtype=np.uint8), FINDINGS[i % 3]) for i in range(6)]
    config = DDPMConfig(
        resolution=32, findings=FINDINGS, preset="tiny", name="tiny-sampler", modality="cxr"
    )
    folder = tmp_path_factory.mktemp("ddpm") / "model"
    emas = []

    class RecordingEMA(training_mod.EMA):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            emas.append(self)

    original = training_mod.EMA
    training_mod.EMA = RecordingEMA
    try:
        # a high LR and short EMA make the class embedding matter after only a few steps
        train(
            data,
            config,
            folder,
            TrainingConfig(
                steps=8,
                batch_size=6,
                lr=5e-3,
                warmup_steps=1,
                ema_decay=0.5,
                checkpoint_every=8,
                grid_steps=2,
                label_dropout=0.2,
            ),
        )
    finally:
        training_mod.EMA = original
    return folder, emas[0].module


@pytest.fixture(scope="module")
def model(trained):
    return load_model(trained[0])


def gen(model, findings, seeds, **kwargs):
    kwargs = {"steps": 4, "guidance": 3.0, "batch_size": 8, **kwargs}
    return sample(model, findings, seeds=seeds, **kwargs)


def diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(int) - b.astype(int)).max())


# ------------------------------------------------------------------------------- loading
def test_it_save_load_round_trip_gives_identical_outputs(trained, model):
    folder, in_memory = trained
    x = torch.randn(3, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 3])  # 3: the null class
    with torch.no_grad():
        expected = in_memory(x, 500, class_labels=labels).sample
        loaded = model.unet(x, 500, class_labels=labels).sample
    assert torch.equal(expected, loaded)
    again = load_model(folder)
    assert again.weights_sha256 == model.weights_sha256
    assert np.array_equal(gen(model, "normal", [5])[0].array, gen(again, "normal", [5])[0].array)


def test_it_weights_sha256_is_that_of_the_file(model):
    assert model.weights_sha256 == hashlib.sha256(model.weights_path.read_bytes()).hexdigest()
    assert model.weights_path.name == "diffusion_pytorch_model.safetensors"
    assert model.findings == FINDINGS and model.step == 8


def test_it_a_checkpoint_folder_loads_directly(model):
    direct = load_model(model.checkpoint)
    assert direct.checkpoint == model.checkpoint and direct.folder == model.folder


# ------------------------------------------------------------------------------ sampling
def test_it_output_and_provenance(model):
    images = gen(model, ["normal", "effusion"], [11, 12], scheduler="ddim")
    assert len(images) == 2
    for image, finding, seed in zip(images, ["normal", "effusion"], [11, 12], strict=True):
        assert image.array.shape == (32, 32) and image.array.dtype == np.uint8
        p = image.provenance
        assert set(p) == PROVENANCE_KEYS
        assert p["generator"] == "ddpm" and p["model"] == "tiny-sampler"
        assert p["finding"] == finding and p["class_index"] == FINDINGS.index(finding)
        assert p["seed"] == seed and p["steps"] == 4 and p["guidance"] == 3.0
        assert p["scheduler"] == "ddim" and p["resolution"] == 32
        assert p["device"] == "cpu" and p["dtype"] == "float32"
        assert p["weights_sha256"] == model.weights_sha256
        assert p["checkpoint"] == str(model.checkpoint) and p["checkpoint_step"] == 8
        assert {"torch", "diffusers", "python"} <= set(p["library_versions"])
        json.dumps(p)  # storable as is


def test_it_same_seed_same_image(model):
    a = gen(model, "effusion", [42])[0].array
    b = gen(model, "effusion", [42])[0].array
    assert np.array_equal(a, b)
    assert diff(a, gen(model, "effusion", [43])[0].array) > 10


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_it_same_image_alone_or_in_a_batch(model, scheduler):
    alone = gen(model, "effusion", [42], scheduler=scheduler)[0].array
    batch = gen(
        model,
        ["normal", "effusion", "cardiomegaly", "effusion"],
        [7, 42, 9, 1],
        scheduler=scheduler,
        batch_size=3,
    )
    assert diff(alone, batch[1].array) <= 1
    assert [i.provenance["seed"] for i in batch] == [7, 42, 9, 1]


def test_it_stochastic_ddim_noise_is_per_image(model):
    alone = gen(model, "normal", [3], eta=1.0)[0].array
    batch = gen(model, ["effusion", "normal"], [8, 3], eta=1.0)
    assert diff(alone, batch[1].array) <= 1
    assert diff(alone, gen(model, "normal", [3], eta=0.0)[0].array) > 0


def test_it_different_class_different_image(model):
    a = gen(model, "normal", [42])[0].array
    b = gen(model, "cardiomegaly", [42])[0].array
    assert diff(a, b) > 20


def test_it_guidance_changes_the_output(model):
    a = gen(model, "normal", [42], guidance=1.0)[0].array
    b = gen(model, "normal", [42], guidance=5.0)[0].array
    c = gen(model, "normal", [42], guidance=0.0)[0].array  # unconditional
    assert diff(a, b) > 20 and diff(a, c) > 20


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_it_each_scheduler_runs(model, scheduler):
    images = gen(model, ["normal", "effusion"], [1, 2], scheduler=scheduler, steps=3)
    assert all(i.array.shape == (32, 32) and i.provenance["scheduler"] == scheduler for i in images)


def test_it_callbacks_and_cancellation(model):
    seen, batches = [], []
    gen(
        model,
        "normal",
        [1, 2, 3],
        batch_size=2,
        on_image=lambda index, image: seen.append((index, image.provenance["seed"])),
        on_batch=lambda done, total: batches.append((done, total)),
    )
    assert seen == [(0, 1), (1, 2), (2, 3)] and batches == [(2, 3), (3, 3)]

    steps = []
    gen(model, "normal", [1, 2, 3], batch_size=2, steps=4, on_step=lambda *a: steps.append(a))
    assert steps == [(i, 8) for i in range(1, 9)]

    event = threading.Event()
    with pytest.raises(SamplingCancelled) as info:
        gen(
            model,
            "normal",
            [1, 2, 3],
            batch_size=2,
            cancel=event,
            on_batch=lambda done, total: event.set(),
        )
    assert [i.provenance["seed"] for i in info.value.completed] == [1, 2]
    with pytest.raises(SamplingCancelled):
        gen(model, "normal", [1], cancel=lambda: True)


# ---------------------------------------------------------------------------- bad inputs
def test_it_a_prompt_is_rejected(model):
    with pytest.raises(DDPMError, match="class-conditional.*not a text prompt"):
        gen(model, "normal", [1], prompt="a chest x-ray with effusion")


def test_it_unknown_finding(model):
    with pytest.raises(UnknownFindingError, match="'pneumothorax'.*normal, effusion, cardiomegaly"):
        gen(model, ["normal", "pneumothorax"], [1, 2])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seeds": [1, 2, 3], "findings": ["normal", "effusion"]}, "2 findings for 3 seeds"),
        ({"seeds": []}, "no seeds"),
        ({"seeds": [-1]}, "out of range"),
        ({"seeds": [1.5]}, "integers"),
        ({"scheduler": "heun"}, "unknown scheduler"),
        ({"steps": 0}, "steps"),
        ({"guidance": float("nan")}, "guidance"),
        ({"batch_size": 0}, "batch_size"),
        ({"eta": 0.5, "scheduler": "euler"}, "eta"),
        ({"precision": "fp8"}, "precision"),
    ],
)
def test_it_bad_sampling_arguments(model, kwargs, message):
    kwargs = {"findings": "normal", "seeds": [1], **kwargs}
    findings, seeds = kwargs.pop("findings"), kwargs.pop("seeds")
    with pytest.raises(ValueError, match=message):
        gen(model, findings, seeds, **kwargs)


def test_it_missing_folder(tmp_path):
    with pytest.raises(ModelFolderError, match="does not exist"):
        load_model(tmp_path / "nope")


def test_it_incomplete_folder_names_the_missing_file(trained, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(trained[0], copy)
    (ckpt.latest_checkpoint(copy) / ckpt.WEIGHTS).unlink()
    with pytest.raises(ModelFolderError, match="missing unet/diffusion_pytorch_model.safetensors"):
        load_model(copy)


def test_it_corrupt_weights_are_detected(trained, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(trained[0], copy)
    weights = ckpt.latest_checkpoint(copy) / ckpt.WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFolderError, match="SHA-256"):
        load_model(copy)


def test_it_a_model_folder_without_checkpoints(trained, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(trained[0] / ckpt.MARKER, copy / ckpt.MARKER)
    with pytest.raises(ModelFolderError, match="no checkpoint"):
        load_model(copy)


def test_it_a_stable_diffusion_folder_is_rejected(tmp_path):
    sd = tmp_path / "sd"
    (sd / "unet").mkdir(parents=True)
    (sd / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    with pytest.raises(ModelFolderError, match="StableDiffusionPipeline.*not a ddpm model"):
        load_model(sd)


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ({"kind": "stable_diffusion", "format": 1}, "kind 'stable_diffusion', not 'ddpm'"),
        ({"format": 1}, "no 'kind'"),
        ({"kind": "ddpm", "format": 99}, "unsupported ddpm folder format"),
    ],
)
def test_it_wrong_or_missing_kind(tmp_path, marker, message):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / ckpt.MARKER).write_text(json.dumps(marker))
    with pytest.raises(ModelFolderError, match=message):
        load_model(folder)


def test_it_a_folder_without_a_marker(tmp_path):
    (tmp_path / "m").mkdir()
    with pytest.raises(ModelFolderError, match="missing generator.json"):
        load_model(tmp_path / "m")
