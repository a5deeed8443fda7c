"""The "stable-diffusion" generator kind on a tiny SD pipeline built in code (CPU, no downloads)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import threading

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from safetensors.torch import load_file

from generation.engine.prompts import build_prompt
from generation.engine.stable_diffusion import (
    GENERATOR_KIND,
    LORA_WEIGHT_NAME,
    LOSS_LOG_NAME,
    SAMPLE_GRID_NAME,
    TRAINING_STATE_NAME,
    CheckpointError,
    GenerationCancelled,
    LoraTrainer,
    LoraTrainingConfig,
    StableDiffusionError,
    StableDiffusionGenerator,
    TrainingDivergedError,
    check_checkpoint,
    check_lora_folder,
    rgb_to_gray_uint8,
    text_encoder_lora_problem,
    train_lora,
)

try:
    from .tiny_sd import SD_TINY_IMAGE_SIZE, build_tiny_sd
except ImportError:  # tests/engine run as a plain folder
    from tiny_sd import SD_TINY_IMAGE_SIZE, build_tiny_sd

PROMPT = "a frontal chest x-ray of a child with pneumonia"
OTHER_PROMPT = "a normal frontal chest x-ray of an adult"
SAMPLE = {"steps": 4, "guidance": 3.0}
PROVENANCE_KEYS = {
    "generator",
    "model",
    "base_checkpoint",
    "pipeline_class",
    "weights_file",
    "weights_sha256",
    "lora_path",
    "lora_weights_file",
    "lora_sha256",
    "lora_scale",
    "prompt",
    "negative_prompt",
    "scheduler",
    "scheduler_class",
    "prediction_type",
    "steps",
    "guidance",
    "seed",
    "seed_generator",
    "width",
    "height",
    "resolution",
    "color",
    "device",
    "dtype",
    "library_versions",
    "created_at",
}


@pytest.fixture(scope="module", autouse=True)
def sd_one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def sd_no_network(monkeypatch):
    """Loading must never reach out to a model hub: refuse every non-loopback connection."""
    original = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if (
            isinstance(host, str)
            and host not in ("127.0.0.1", "::1", "localhost")
            and self.family != socket.AF_UNIX
        ):
            raise AssertionError(f"test tried to connect to {address!r}")
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="module")
def sd_checkpoint(tmp_path_factory):
    return build_tiny_sd(tmp_path_factory.mktemp("sd") / "tiny-sd")


@pytest.fixture(scope="module")
def sd_generator(sd_checkpoint):
    return StableDiffusionGenerator(sd_checkpoint, model_name="tiny-sd")


def _pattern(k: int, size: int = SD_TINY_IMAGE_SIZE) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size] * (SD_TINY_IMAGE_SIZE / size)
    return np.clip(128 + 100 * np.sin(xx / 3 + k) * np.cos(yy / 4 - k), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def sd_dataset():
    return [
        (_pattern(0), build_prompt("CXR", "pneumonia", "child")),
        (_pattern(1), build_prompt("CXR", "normal", "adult")),
        (_pattern(2, size=48), build_prompt("CXR", "effusion")),  # resized to 32 x 32
    ]


@pytest.fixture(scope="module")
def sd_trained(sd_checkpoint, sd_dataset, tmp_path_factory):
    """A LoRA trained 12 steps at a high learning rate, with its fixed-batch loss before/after."""
    config = LoraTrainingConfig(
        rank=4, learning_rate=1e-2, max_steps=12, batch_size=3, checkpoint_every=6
    )
    trainer = LoraTrainer(
        sd_checkpoint, tmp_path_factory.mktemp("lora") / "run", sd_dataset, config
    )
    before = np.mean([trainer.evaluate_loss(seed=s) for s in range(3)])
    result = trainer.train()
    after = np.mean([trainer.evaluate_loss(seed=s) for s in range(3)])
    return trainer, result, before, after


def _diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(int) - b.astype(int)).max())


# -- prompts -----------------------------------------------------------------------------------


def test_it_build_prompt_template():
    assert (
        build_prompt("CXR", "pneumonia", "child")
        == "a frontal chest x-ray of a child with pneumonia"
    )
    assert build_prompt("CXR", "pneumonia") == "a frontal chest x-ray with pneumonia"
    assert build_prompt("CXR", "normal", "adult") == "a normal frontal chest x-ray of an adult"
    assert build_prompt("CXR", "No Finding") == "a normal frontal chest x-ray"
    assert build_prompt("cxr", "Pleural_Effusion", "elderly") == (
        "a frontal chest x-ray of an elderly patient with pleural effusion"
    )
    assert build_prompt("CT", "lung nodule") == "an axial chest ct slice with lung nodule"


# -- sampling ----------------------------------------------------------------------------------


def test_it_text_to_image_gives_grayscale_arrays_with_provenance(sd_generator, sd_checkpoint):
    images = sd_generator.generate(PROMPT, seeds=[1, 2], negative_prompt="text", **SAMPLE)
    assert len(images) == 2
    for image, seed in zip(images, [1, 2]):
        assert image.array.dtype == np.uint8
        assert image.array.shape == (SD_TINY_IMAGE_SIZE, SD_TINY_IMAGE_SIZE)
        assert set(image.provenance) == PROVENANCE_KEYS
        assert image.provenance["seed"] == seed
    _, provenance = images[0]  # also unpacks as a pair
    unet_file = sd_checkpoint / "unet" / "diffusion_pytorch_model.safetensors"
    assert provenance["generator"] == GENERATOR_KIND == "stable-diffusion"
    assert provenance["model"] == "tiny-sd"
    assert provenance["base_checkpoint"] == str(sd_checkpoint.resolve())
    assert provenance["weights_sha256"] == hashlib.sha256(unet_file.read_bytes()).hexdigest()
    assert provenance["lora_path"] is None and provenance["lora_sha256"] is None
    assert provenance["prompt"] == PROMPT and provenance["negative_prompt"] == "text"
    assert (provenance["scheduler"], provenance["steps"], provenance["guidance"]) == (
        "ddim",
        4,
        3.0,
    )
    assert provenance["resolution"] == SD_TINY_IMAGE_SIZE
    assert (provenance["device"], provenance["dtype"]) == ("cpu", "float32")
    assert {"torch", "diffusers", "transformers", "peft"} <= set(provenance["library_versions"])
    json.dumps(provenance)  # storable as JSON as it is


def test_it_same_seed_same_image_alone_or_in_any_batch(sd_generator):
    batch = sd_generator.generate(PROMPT, seeds=[7, 42, 9], batch_size=2, **SAMPLE)
    alone = sd_generator.generate(PROMPT, seeds=[42], batch_size=1, **SAMPLE)
    again = sd_generator.generate(PROMPT, seeds=[42, 7], batch_size=4, **SAMPLE)
    assert np.array_equal(batch[1].array, alone[0].array)
    assert np.array_equal(again[0].array, alone[0].array)
    assert np.array_equal(again[1].array, batch[0].array)
    assert _diff(batch[0].array, batch[1].array) > 0  # different seeds, different images


def test_it_mixed_prompts_in_one_batch(sd_generator):
    mixed = sd_generator.generate([PROMPT, OTHER_PROMPT], seeds=[5, 5], **SAMPLE)
    first = sd_generator.generate(PROMPT, seeds=[5], **SAMPLE)
    second = sd_generator.generate(OTHER_PROMPT, seeds=[5], **SAMPLE)
    assert np.array_equal(mixed[0].array, first[0].array)
    assert np.array_equal(mixed[1].array, second[0].array)
    assert _diff(first[0].array, second[0].array) > 0  # the prompt matters
    with pytest.raises(ValueError, match="2 prompts for 3 seeds"):
        sd_generator.generate([PROMPT, OTHER_PROMPT], seeds=[1, 2, 3], **SAMPLE)


def test_it_guidance_and_negative_prompt_change_the_image(sd_generator):
    low = sd_generator.generate(PROMPT, seeds=[3], steps=4, guidance=1.0)[0].array
    high = sd_generator.generate(PROMPT, seeds=[3], steps=4, guidance=7.0)[0].array
    negative = sd_generator.generate(
        PROMPT, seeds=[3], steps=4, guidance=7.0, negative_prompt="blurry noisy"
    )[0].array
    assert _diff(low, high) > 0
    assert _diff(high, negative) > 0


@pytest.mark.parametrize(
    "scheduler, cls",
    [
        ("ddim", "DDIMScheduler"),
        ("dpm++", "DPMSolverMultistepScheduler"),
        ("euler", "EulerDiscreteScheduler"),
    ],
)
def test_it_each_scheduler_runs(sd_generator, scheduler, cls):
    (image,) = sd_generator.generate(PROMPT, seeds=[11], scheduler=scheduler, **SAMPLE)
    assert image.array.shape == (SD_TINY_IMAGE_SIZE, SD_TINY_IMAGE_SIZE)
    assert image.provenance["scheduler"] == scheduler and image.provenance["scheduler_class"] == cls
    if scheduler == "dpm++":
        assert sd_generator.pipe.scheduler.config.algorithm_type == "dpmsolver++"


def test_it_bad_arguments(sd_generator):
    with pytest.raises(ValueError, match="scheduler must be one of"):
        sd_generator.generate(PROMPT, seeds=[1], scheduler="pndm", **SAMPLE)
    with pytest.raises(ValueError, match="multiples of 8"):
        sd_generator.generate(PROMPT, seeds=[1], width=30, height=32, **SAMPLE)
    with pytest.raises(ValueError, match="between 0 and 2"):
        sd_generator.generate(PROMPT, seeds=[-1], **SAMPLE)
    (small,) = sd_generator.generate(PROMPT, seeds=[1], width=16, height=24, **SAMPLE)
    assert small.array.shape == (24, 16) and small.provenance["resolution"] == "16x24"
    assert sd_generator.generate(PROMPT, seeds=[], **SAMPLE) == []


def test_it_callbacks_and_cancel(sd_generator):
    steps, images, batches = [], [], []
    sd_generator.generate(
        PROMPT,
        seeds=[1, 2, 3],
        batch_size=2,
        steps=3,
        guidance=2.0,
        on_step=lambda d, t: steps.append((d, t)),
        on_image=lambda i, image: images.append((i, image.provenance["seed"])),
        on_batch=lambda d, t: batches.append((d, t)),
    )
    assert steps == [(i, 6) for i in range(1, 7)]
    assert images == [(0, 1), (1, 2), (2, 3)] and batches == [(2, 3), (3, 3)]

    calls = []

    def cancel():  # fires in the second batch, after its first step
        calls.append(1)
        return len(calls) > 4

    with pytest.raises(GenerationCancelled) as info:
        sd_generator.generate(
            PROMPT, seeds=[1, 2, 3], batch_size=2, steps=3, guidance=2.0, cancel=cancel
        )
    assert [i.provenance["seed"] for i in info.value.completed] == [1, 2]

    event = threading.Event()
    event.set()
    with pytest.raises(GenerationCancelled) as info:
        sd_generator.generate(PROMPT, seeds=[1], cancel=event, **SAMPLE)
    assert info.value.completed == []


def test_it_grayscale_conversion():
    rgb = np.zeros((1, 2, 2, 3))
    rgb[0, 0, 0] = (1.0, 1.0, 1.0)
    rgb[0, 1, 1] = (1.0, 0.0, 0.0)
    (gray,) = rgb_to_gray_uint8(rgb)
    assert gray.tolist() == [[255, 0], [0, 76]]


# -- checkpoint folders ------------------------------------------------------------------------


def test_it_check_checkpoint_accepts_the_tiny_pipeline(sd_checkpoint):
    info = check_checkpoint(sd_checkpoint)
    assert info.pipeline_class == "StableDiffusionPipeline" and info.prediction_type == "epsilon"
    assert len(info.unet_sha256) == 64 and info.variant is None


def test_it_missing_and_wrong_kind_folders(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        StableDiffusionGenerator(tmp_path / "nowhere")
    with pytest.raises(
        CheckpointError, match="no Stable Diffusion checkpoint folder was configured"
    ):
        check_checkpoint("")
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="is a file"):
        check_checkpoint(tmp_path / "file.bin")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="model_index.json is missing"):
        check_checkpoint(tmp_path / "empty")

    # a bare pixel-space UNet2DModel folder, as the ddpm engine writes
    from diffusers import UNet2DModel

    UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=(8, 8),
        norm_num_groups=4,
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
    ).save_pretrained(tmp_path / "ddpm")
    with pytest.raises(CheckpointError, match="bare UNet2DModel"):
        StableDiffusionGenerator(tmp_path / "ddpm")

    # a DDPMPipeline folder: model_index.json without text encoder, tokenizer, vae
    (tmp_path / "ddpm-pipe").mkdir()
    (tmp_path / "ddpm-pipe" / "model_index.json").write_text(
        json.dumps(
            {
                "_class_name": "DDPMPipeline",
                "unet": ["diffusers", "UNet2DModel"],
                "scheduler": ["diffusers", "DDPMScheduler"],
            }
        )
    )
    with pytest.raises(
        CheckpointError, match="DDPMPipeline.*lists no vae, text_encoder, tokenizer"
    ):
        check_checkpoint(tmp_path / "ddpm-pipe")


def _copy_without(src, dst, *relative):
    shutil.copytree(src, dst)
    for rel in relative:
        target = dst / rel
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    return dst


def test_it_incomplete_folders(sd_checkpoint, tmp_path):
    folder = _copy_without(sd_checkpoint, tmp_path / "no-unet", "unet")
    with pytest.raises(CheckpointError, match=r"missing subfolder\(s\) unet/"):
        StableDiffusionGenerator(folder)
    folder = _copy_without(
        sd_checkpoint,
        tmp_path / "no-weights",
        "unet/diffusion_pytorch_model.safetensors",
        "tokenizer/tokenizer.json",
    )
    with pytest.raises(
        CheckpointError, match=r"incomplete: missing unet/ weights.*tokenizer/tokenizer.json"
    ):
        check_checkpoint(folder)
    folder = _copy_without(sd_checkpoint, tmp_path / "no-index", "model_index.json")
    with pytest.raises(CheckpointError, match="model_index.json is missing"):
        check_checkpoint(folder)


def test_it_lora_folder_errors(sd_checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        check_lora_folder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=f"holds no {LORA_WEIGHT_NAME}"):
        check_lora_folder(tmp_path / "empty")
    with pytest.raises(CheckpointError, match="full pipeline checkpoint, not a LoRA folder"):
        StableDiffusionGenerator(sd_checkpoint, lora=sd_checkpoint)


# -- LoRA fine-tuning --------------------------------------------------------------------------


def test_it_lora_training_lowers_the_loss(sd_trained):
    _, result, before, after = sd_trained
    assert result.step == 12 and not result.cancelled and result.resumed_from is None
    assert len(result.losses) == 12 and all(np.isfinite(loss) for _, loss in result.losses)
    assert after < before - 0.02, (before, after)


def test_it_lora_files_hold_only_lora_weights(sd_trained, sd_checkpoint):
    _, result, *_ = sd_trained
    weights_file = result.lora_dir / LORA_WEIGHT_NAME
    weights = load_file(str(weights_file))
    assert weights and all(key.startswith("unet.") and ".lora" in key for key in weights)
    unet_bytes = (sd_checkpoint / "unet" / "diffusion_pytorch_model.safetensors").stat().st_size
    assert weights_file.stat().st_size < unet_bytes / 10
    assert sorted(p.name for p in result.lora_dir.iterdir()) == [
        "lora_training.json",
        LORA_WEIGHT_NAME,
    ]
    info = json.loads((result.lora_dir / "lora_training.json").read_text())
    assert info["step"] == 12 and info["config"]["rank"] == 4
    assert info["unet_sha256"] == check_checkpoint(sd_checkpoint).unet_sha256
    precision = info["precision"]  # the run's precision and the device's capability
    assert set(precision) == {"precision", "grad_scaler", "device_type", "device_capability"}
    if precision["device_type"] == "cpu":
        assert precision["precision"] == "fp32" and precision["grad_scaler"] is False
    # checkpoints every 6 steps, the last two kept, each with a training state
    names = sorted(p.name for p in result.output_dir.glob("checkpoint-*"))
    assert names == ["checkpoint-0000006", "checkpoint-0000012"]
    assert (result.last_checkpoint / TRAINING_STATE_NAME).is_file()
    log = [
        json.loads(line) for line in (result.output_dir / LOSS_LOG_NAME).read_text().splitlines()
    ]
    assert [r["step"] for r in log] == list(range(1, 13))
    assert not list(result.output_dir.glob(".tmp-*"))


def _grid_cells(path, columns: int, size: int = SD_TINY_IMAGE_SIZE, pad: int = 2) -> list:
    """The images of a sample grid (tiled by generation.engine.sampling.image_grid), row-major."""
    grid = np.asarray(PILImage.open(path))
    rows = (grid.shape[0] - pad) // (size + pad)
    assert grid.shape == (rows * (size + pad) + pad, columns * (size + pad) + pad)
    return [
        grid[pad + r * (size + pad) : pad + r * (size + pad) + size,
             pad + c * (size + pad) : pad + c * (size + pad) + size]
        for r in range(rows)
        for c in range(columns)
    ]  # fmt: skip


def test_it_writes_a_sample_grid_with_every_checkpoint(sd_trained, sd_dataset):
    trainer, result, *_ = sd_trained
    prompts = sorted({prompt for _, prompt in sd_dataset})  # one row per distinct prompt
    assert trainer.grid_prompts() == prompts and len(prompts) == 3
    at_6, at_12 = (
        _grid_cells(result.output_dir / name / SAMPLE_GRID_NAME, columns=2)
        for name in ("checkpoint-0000006", "checkpoint-0000012")
    )
    assert len(at_6) == len(at_12) == 6
    # the last grid is what the LoRA of step 12 draws at seeds 0 and 1, with the grid's settings
    cfg = trainer.config
    expected = trainer.generator().generate(
        [p for p in prompts for _ in range(2)], [0, 1] * 3,
        steps=cfg.grid_steps, guidance=cfg.grid_guidance,
    )  # fmt: skip
    assert all(_diff(cell, image.array) <= 1 for cell, image in zip(at_12, expected))
    assert any(_diff(a, b) > 0 for a, b in zip(at_6, at_12))  # the LoRA moved in between
    assert not (result.lora_dir / SAMPLE_GRID_NAME).exists()  # the export holds weights only


def test_it_sample_grid_prompts_and_switch(sd_checkpoint, sd_dataset, tmp_path):
    config = LoraTrainingConfig(
        rank=2, max_steps=1, grid_steps=2, grid_per_prompt=3, grid_prompts=[PROMPT]
    )
    result = train_lora(sd_checkpoint, tmp_path / "one-row", sd_dataset, config)
    cells = _grid_cells(result.last_checkpoint / SAMPLE_GRID_NAME, columns=3)
    assert len(cells) == 3 and _diff(cells[0], cells[1]) > 0  # one prompt, three seeds
    info = json.loads((result.last_checkpoint / "lora_training.json").read_text())
    assert info["config"]["grid_prompts"] == [PROMPT] and info["config"]["grid_steps"] == 2

    off = LoraTrainingConfig(rank=2, max_steps=1, grid_steps=0)
    result = train_lora(sd_checkpoint, tmp_path / "no-grid", sd_dataset, off)
    assert not (result.last_checkpoint / SAMPLE_GRID_NAME).exists()
    with pytest.raises(ValueError, match="grid_per_prompt"):
        LoraTrainingConfig(grid_per_prompt=0).validate()


def test_it_lora_load_matches_the_trained_model_and_differs_from_base(
    sd_trained, sd_checkpoint, sd_generator
):
    trainer, result, *_ = sd_trained
    loaded = StableDiffusionGenerator(
        sd_checkpoint, lora=result.lora_dir, model_name="tiny-sd+lora"
    )
    in_memory = trainer.generator()
    args = {"seeds": [5, 6], **SAMPLE}
    from_file = loaded.generate(PROMPT, **args)
    from_trainer = in_memory.generate(PROMPT, **args)
    base = sd_generator.generate(PROMPT, **args)
    for a, b, c in zip(from_file, from_trainer, base):
        assert _diff(a.array, b.array) <= 1  # same model, loaded from the LoRA file
        assert _diff(a.array, c.array) > 0  # and not the base model
    provenance = from_file[0].provenance
    expected_sha = hashlib.sha256((result.lora_dir / LORA_WEIGHT_NAME).read_bytes()).hexdigest()
    assert provenance["lora_sha256"] == expected_sha and provenance["lora_scale"] == 1.0
    assert provenance["lora_path"] == str(result.lora_dir.resolve())
    assert provenance["weights_sha256"] == base[0].provenance["weights_sha256"]

    zero = StableDiffusionGenerator(sd_checkpoint, lora=result.lora_dir, lora_scale=0.0)
    assert np.array_equal(zero.generate(PROMPT, **args)[0].array, base[0].array)


def test_it_resume_continues_exactly(sd_checkpoint, sd_dataset, tmp_path):
    options = {
        "rank": 2,
        "learning_rate": 5e-3,
        "batch_size": 2,
        "checkpoint_every": 2,
        "gradient_accumulation_steps": 2,
        "caption_dropout": 0.3,
        "lr_warmup_steps": 2,
        "keep_checkpoints": 0,
    }
    straight = train_lora(
        sd_checkpoint, tmp_path / "straight", sd_dataset, LoraTrainingConfig(max_steps=4, **options)
    )

    first = train_lora(
        sd_checkpoint, tmp_path / "resumed", sd_dataset, LoraTrainingConfig(max_steps=2, **options)
    )
    assert first.step == 2 and first.lora_dir is not None
    second = train_lora(
        sd_checkpoint, tmp_path / "resumed", sd_dataset, LoraTrainingConfig(max_steps=4, **options)
    )
    assert second.resumed_from == 2 and second.step == 4 and len(second.losses) == 4
    assert [s for s, _ in second.losses] == [1, 2, 3, 4]
    assert [v for _, v in second.losses] == pytest.approx([v for _, v in straight.losses])
    a = load_file(str(straight.lora_dir / LORA_WEIGHT_NAME))
    b = load_file(str(second.lora_dir / LORA_WEIGHT_NAME))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    lines = (tmp_path / "resumed" / LOSS_LOG_NAME).read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3, 4]

    done = train_lora(
        sd_checkpoint, tmp_path / "resumed", sd_dataset, LoraTrainingConfig(max_steps=4, **options)
    )
    assert done.step == 4 and done.resumed_from == 4 and len(done.losses) == 4  # nothing left to do

    with pytest.raises(CheckpointError, match="rank 2"):
        train_lora(
            sd_checkpoint,
            tmp_path / "resumed",
            sd_dataset,
            LoraTrainingConfig(max_steps=6, **{**options, "rank": 4}),
        )


def test_it_training_cancel_saves_a_checkpoint(sd_checkpoint, sd_dataset, tmp_path):
    config = LoraTrainingConfig(rank=2, max_steps=10, batch_size=1, checkpoint_every=100)
    result = train_lora(
        sd_checkpoint,
        tmp_path / "run",
        sd_dataset,
        config,
        on_step=lambda step, total, loss: step < 3,
    )
    assert result.cancelled and result.step == 3 and result.lora_dir is None
    assert result.last_checkpoint.name == "checkpoint-0000003"
    assert not (tmp_path / "run" / "lora").exists()

    event = threading.Event()
    event.set()
    again = train_lora(sd_checkpoint, tmp_path / "run", sd_dataset, config, cancel=event)
    assert again.cancelled and again.step == 3 and again.resumed_from == 3


def test_it_nan_loss_is_a_clear_error(sd_checkpoint, sd_dataset, tmp_path):
    trainer = LoraTrainer(
        sd_checkpoint, tmp_path / "run", sd_dataset, LoraTrainingConfig(rank=2, max_steps=3)
    )
    trainer.unet.register_forward_hook(lambda module, args, output: (output[0] * float("nan"),))
    with pytest.raises(
        TrainingDivergedError, match="loss became nan at step 1; lower the learning rate"
    ):
        trainer.train()


def test_it_v_prediction_checkpoints_train_and_sample(sd_checkpoint, sd_dataset, tmp_path):
    folder = shutil.copytree(sd_checkpoint, tmp_path / "v-pred")
    config_path = folder / "scheduler" / "scheduler_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "prediction_type": "v_prediction"}))
    trainer = LoraTrainer(
        folder, tmp_path / "run", sd_dataset, LoraTrainingConfig(rank=2, max_steps=1)
    )
    assert trainer.noise_scheduler.config.prediction_type == "v_prediction"
    assert trainer.train().step == 1
    (image,) = trainer.generator().generate(PROMPT, seeds=[1], scheduler="euler", **SAMPLE)
    assert image.provenance["prediction_type"] == "v_prediction"
    assert trainer.generator().pipe.scheduler.config.prediction_type == "v_prediction"


def test_it_training_config_and_data_errors(sd_checkpoint, sd_dataset, tmp_path):
    with pytest.raises(ValueError, match="learning_rate"):
        LoraTrainer(
            sd_checkpoint,
            tmp_path / "a",
            sd_dataset,
            LoraTrainingConfig(learning_rate=float("nan")),
        )
    with pytest.raises(ValueError, match="max_steps"):
        LoraTrainer(sd_checkpoint, tmp_path / "a", sd_dataset, LoraTrainingConfig(max_steps=0))
    with pytest.raises(ValueError, match="empty"):
        LoraTrainer(sd_checkpoint, tmp_path / "a", [], LoraTrainingConfig())
    bad = [(np.zeros((32, 40), dtype=np.uint8), PROMPT)]
    with pytest.raises(ValueError, match="square"):
        LoraTrainer(
            sd_checkpoint, tmp_path / "b", bad, LoraTrainingConfig(rank=2, max_steps=1)
        ).train()
    bad = [(np.zeros((32, 32), dtype=np.float32), PROMPT)]
    with pytest.raises(ValueError, match="uint8"):
        LoraTrainer(
            sd_checkpoint, tmp_path / "c", bad, LoraTrainingConfig(rank=2, max_steps=1)
        ).train()


def test_it_text_encoder_lora(sd_checkpoint, sd_dataset, tmp_path):
    config = LoraTrainingConfig(
        rank=2, learning_rate=1e-2, max_steps=2, batch_size=3, train_text_encoder=True
    )
    problem = text_encoder_lora_problem()
    if problem:
        with pytest.raises(StableDiffusionError, match="peft"):
            LoraTrainer(sd_checkpoint, tmp_path / "run", sd_dataset, config)
        pytest.skip(problem)
    result = train_lora(sd_checkpoint, tmp_path / "run", sd_dataset, config)
    weights = load_file(str(result.lora_dir / LORA_WEIGHT_NAME))
    assert any(k.startswith("text_encoder.") for k in weights) and any(
        k.startswith("unet.") for k in weights
    )
    resumed = train_lora(
        sd_checkpoint,
        tmp_path / "run",
        sd_dataset,
        LoraTrainingConfig(**{**config.__dict__, "max_steps": 3}),
    )
    assert resumed.resumed_from == 2 and resumed.step == 3
    (image,) = StableDiffusionGenerator(sd_checkpoint, lora=resumed.lora_dir).generate(
        PROMPT, seeds=[1], **SAMPLE
    )
    assert image.array.shape == (SD_TINY_IMAGE_SIZE, SD_TINY_IMAGE_SIZE)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_it_cuda_half_precision_sampling_and_bf16_training(sd_checkpoint, sd_dataset, tmp_path):
    gen = StableDiffusionGenerator(sd_checkpoint)  # default placement: half precision on the GPU
    alone = gen.generate(PROMPT, seeds=[1, 2], batch_size=1, **SAMPLE)
    batched = gen.generate(PROMPT, seeds=[1, 2], batch_size=2, **SAMPLE)
    assert alone[0].provenance["device"].startswith("cuda")
    assert alone[0].provenance["dtype"] in ("bfloat16", "float16")
    assert _diff(alone[1].array, batched[1].array) <= 2  # half-precision kernels may round apart
    assert alone[0].array.std() > 0

    config = LoraTrainingConfig(rank=2, learning_rate=1e-2, max_steps=3, batch_size=3)
    trainer = LoraTrainer(sd_checkpoint, tmp_path / "run", sd_dataset, config)
    result = trainer.train()
    assert result.step == 3 and all(np.isfinite(loss) for _, loss in result.losses)
    precision = json.loads((result.lora_dir / "lora_training.json").read_text())["precision"]
    major = torch.cuda.get_device_capability()[0]
    assert precision["precision"] == ("bf16" if major >= 8 else "fp16")
    assert precision["grad_scaler"] is (major < 8)
    weights = load_file(str(result.lora_dir / LORA_WEIGHT_NAME))
    assert all(t.dtype == torch.float32 for t in weights.values())
    loaded = StableDiffusionGenerator(sd_checkpoint, lora=result.lora_dir)
    (image,) = loaded.generate(PROMPT, seeds=[1], **SAMPLE)
    assert image.array.shape == (SD_TINY_IMAGE_SIZE, SD_TINY_IMAGE_SIZE)
