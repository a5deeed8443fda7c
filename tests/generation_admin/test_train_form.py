"""The Train form: what a researcher can get wrong is refused with a clear error."""

import json

import pytest

from generation.forms import DDPM_PRESETS, TrainForm
from generation.models import GeneratorKind, GeneratorModel, TrainingRun

pytestmark = pytest.mark.django_db


def ddpm_data(**overrides) -> dict:
    return {
        "kind": "ddpm",
        "name": "lungs-64",
        "modality": "CXR",
        "findings": "normal, pneumonia",
        "resolution": "64",
        "steps": "100",
        "batch_size": "8",
        "learning_rate": "0.0002",
        "preset": "small",
        **overrides,
    }


def sd_folder(root) -> str:
    """The files a diffusers Stable Diffusion folder must have (empty weights will do here)."""
    folder = root / "sd-base"
    (folder / "scheduler").mkdir(parents=True)
    index = {
        name: ["diffusers", "X"]
        for name in ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
    }
    (folder / "model_index.json").write_text(
        json.dumps({"_class_name": "StableDiffusionPipeline", **index})
    )
    for name, cls in (
        ("unet", "UNet2DConditionModel"),
        ("vae", "AutoencoderKL"),
        ("text_encoder", "CLIPTextModel"),
    ):
        (folder / name).mkdir()
        (folder / name / "config.json").write_text(json.dumps({"_class_name": cls}))
        (folder / name / "model.safetensors").write_bytes(b"")
    (folder / "tokenizer").mkdir()
    (folder / "tokenizer" / "tokenizer.json").write_text("{}")
    (folder / "scheduler" / "scheduler_config.json").write_text("{}")
    return str(folder)


def test_it_accepts_a_ddpm_run_and_names_the_params_as_the_tasks_read_them(real_pool):
    form = TrainForm(ddpm_data())
    assert form.is_valid(), form.errors
    assert form.cleaned_data["findings"] == ["normal", "pneumonia"]
    assert form.params() == {"batch_size": 8, "lr": 0.0002, "preset": "small"}


def test_it_passes_the_ddpm_recipe_fields_to_the_run(real_pool):
    form = TrainForm(
        ddpm_data(recipe="legacy", prediction_type="epsilon", beta_schedule="squaredcos_cap_v2",
                  min_snr_gamma="5", offset_noise="0.05", dropout="0.1", hflip="on")
    )  # fmt: skip
    assert form.is_valid(), form.errors
    assert form.params() == {
        "batch_size": 8, "lr": 0.0002, "preset": "small", "recipe": "legacy",
        "prediction_type": "epsilon", "beta_schedule": "squaredcos_cap_v2",
        "min_snr_gamma": 5.0, "offset_noise": 0.05, "dropout": 0.1, "hflip": True,
    }  # fmt: skip
    assert TrainForm(ddpm_data()).fields["hflip"].initial is None  # mirroring is off unless ticked


def test_it_matches_findings_in_the_pool_without_regard_to_case(real_pool):
    form = TrainForm(ddpm_data(findings="Normal, PNEUMONIA, normal"))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["findings"] == ["normal", "pneumonia"]


def test_it_refuses_a_finding_with_no_real_images_in_the_pool(real_pool):
    form = TrainForm(ddpm_data(findings="normal, effusion"))
    assert not form.is_valid()
    message = form.errors["findings"][0]
    assert "“effusion”" in message
    assert "normal, pneumonia" in message  # what is there instead


def test_it_refuses_a_finding_of_another_modality(real_pool):
    form = TrainForm(ddpm_data(modality="CXR", findings="nodule"))
    assert not form.is_valid()
    assert "No real chest x-ray images labelled “nodule”" in form.errors["findings"][0]


def test_it_refuses_an_empty_findings_list(real_pool):
    form = TrainForm(ddpm_data(findings=" , "))
    assert not form.is_valid()
    assert "at least one finding" in form.errors["findings"][0]


@pytest.mark.parametrize("resolution", ["96", "32", "1024", "100"])
def test_it_refuses_a_resolution_that_is_not_a_power_of_two_from_64_to_512(real_pool, resolution):
    form = TrainForm(ddpm_data(resolution=resolution))
    assert not form.is_valid()
    assert form.errors["resolution"]


@pytest.mark.parametrize("resolution", ["64", "128", "256", "512"])
def test_it_accepts_every_power_of_two_from_64_to_512(real_pool, resolution):
    assert TrainForm(ddpm_data(resolution=resolution)).is_valid()


def test_it_does_not_train_a_hosted_image_api(real_pool):
    form = TrainForm(ddpm_data(kind="image-api"))
    assert not form.is_valid()
    assert "not trainable" in form.errors["kind"][0]


def test_it_needs_a_stable_diffusion_base_folder_that_exists(real_pool, tmp_path):
    form = TrainForm(ddpm_data(kind="stable-diffusion", lora_rank="8", base_checkpoint=""))
    assert not form.is_valid()
    assert "base checkpoint folder" in form.errors["base_checkpoint"][0]

    missing = tmp_path / "nowhere"
    form = TrainForm(
        ddpm_data(kind="stable-diffusion", lora_rank="8", base_checkpoint=str(missing))
    )
    assert not form.is_valid()
    assert "does not exist" in form.errors["base_checkpoint"][0]


def test_it_refuses_a_folder_that_is_not_a_stable_diffusion_pipeline(real_pool, tmp_path):
    (tmp_path / "ddpm-like").mkdir()
    (tmp_path / "ddpm-like" / "config.json").write_text('{"_class_name": "UNet2DModel"}')
    form = TrainForm(
        ddpm_data(
            kind="stable-diffusion", lora_rank="8", base_checkpoint=str(tmp_path / "ddpm-like")
        )
    )
    assert not form.is_valid()
    assert "UNet2DModel" in form.errors["base_checkpoint"][0]


def test_it_accepts_a_stable_diffusion_run_with_its_lora_rank(real_pool, tmp_path):
    form = TrainForm(
        ddpm_data(
            kind="stable-diffusion",
            resolution="512",
            lora_rank="4",
            base_checkpoint=sd_folder(tmp_path),
        )
    )
    assert form.is_valid(), form.errors
    assert form.params() == {"batch_size": 8, "lr": 0.0002, "lora_rank": 4}


def test_it_needs_a_lora_rank_for_stable_diffusion(real_pool, tmp_path):
    form = TrainForm(
        ddpm_data(kind="stable-diffusion", lora_rank="", base_checkpoint=sd_folder(tmp_path))
    )
    assert not form.is_valid()
    assert form.errors["lora_rank"]


def test_it_continues_an_existing_model_only_if_it_is_the_same_model(real_pool):
    GeneratorModel.objects.create(
        name="lungs-64", kind=GeneratorKind.DDPM, findings=["normal", "pneumonia"], resolution=64
    )
    assert TrainForm(ddpm_data()).is_valid()
    changed = TrainForm(ddpm_data(resolution="128"))
    assert not changed.is_valid()
    assert "another resolution" in changed.errors["name"][0]
    other_kind = TrainForm(ddpm_data(kind="stable-diffusion", lora_rank="8", base_checkpoint=""))
    assert not other_kind.is_valid()
    assert "choose a new name" in other_kind.errors["name"][0]


def test_it_refuses_a_second_run_while_one_is_active(real_pool):
    generator = GeneratorModel.objects.create(
        name="lungs-64", kind=GeneratorKind.DDPM, findings=["normal", "pneumonia"], resolution=64
    )
    TrainingRun.objects.create(generator=generator, total_steps=10)
    form = TrainForm(ddpm_data())
    assert not form.is_valid()
    assert "already has a training run" in form.errors["name"][0]


def test_its_network_sizes_are_the_engines_presets():
    from generation.engine.ddpm import PRESETS

    assert {value for value, _ in DDPM_PRESETS} <= set(PRESETS)
