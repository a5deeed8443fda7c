"""train_model and generate_images: the same code as the tasks, run synchronously."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from generation.models import GeneratedImage, GenerationJob, GeneratorModel, JobStatus, TrainingRun
from pool.models import Image, Truth

TRAIN = [
    "--kind",
    "ddpm",
    "--modality",
    "CXR",
    "--resolution",
    "32",
    "--steps",
    "3",
    "--batch-size",
    "4",
    "--preset",
    "tiny",
    "--grid-steps",
    "1",
    "--no-progress",
]


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def nothing_written(settings, name: str) -> bool:
    folder = settings.MODEL_ROOT / name
    return (
        not GeneratorModel.objects.filter(name=name).exists()
        and not TrainingRun.objects.exists()
        and not (folder.exists() and any(folder.iterdir()))
    )


def test_it_trains_a_model_and_generates_images_from_the_command_line(real_pool, settings):
    output = run("train_model", "cxr-tiny", *TRAIN)

    assert "trained cxr-tiny to step 3" in output
    generator = GeneratorModel.objects.get(name="cxr-tiny")
    assert generator.findings == ["normal", "pneumonia"] and generator.trained_steps == 3
    assert TrainingRun.objects.get().status == JobStatus.SUCCEEDED

    output = run(
        "generate_images",
        "--model",
        "cxr-tiny",
        "--count",
        "3",
        "--finding",
        "normal",
        "--steps",
        "2",
        "--scheduler",
        "ddim",
        "--seed",
        "0",
        "--no-progress",
    )

    job = GenerationJob.objects.get()
    assert f"generation job #{job.pk}: 3 images in the pool" in output
    assert job.status == JobStatus.SUCCEEDED
    assert [s.image.provenance["seed"] for s in job.outputs.all()] == [0, 1, 2]
    assert Image.objects.filter(truth=Truth.SYNTHETIC, source="cxr-tiny").count() == 3


def test_it_resumes_training_only_when_asked(real_pool):
    run("train_model", "again", *TRAIN)
    with pytest.raises(CommandError, match="already exists .* pass --resume"):
        run("train_model", "again", *TRAIN)

    args = [a if a != "3" else "5" for a in TRAIN]
    output = run("train_model", "again", "--resume", *args)

    assert "trained again to step 5" in output
    assert GeneratorModel.objects.get(name="again").trained_steps == 5


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--findings", "normal,covid"], r"unknown finding\(s\) 'covid'.*normal, pneumonia"),
        (["--resolution", "48"], "resolution must be a power of two"),
        (["--lora-rank", "4"], "--lora-rank is for stable-diffusion models"),
    ],
)
def test_it_refuses_bad_training_input_and_writes_nothing(real_pool, settings, extra, message):
    with pytest.raises(CommandError, match=message):
        run("train_model", "bad", *TRAIN, *extra)
    assert nothing_written(settings, "bad")


def test_it_refuses_to_train_on_an_empty_training_set(transactional_db, settings):
    with pytest.raises(CommandError, match="training set is empty"):
        run("train_model", "empty", *TRAIN)
    assert nothing_written(settings, "empty")


def test_it_removes_a_new_model_whose_training_fails_before_a_checkpoint(
    real_pool, settings, monkeypatch
):
    from generation.engine import training

    def explode(*args, **kwargs):
        raise training.NonFiniteLossError("loss is nan at step 1; lower the learning rate")

    monkeypatch.setattr(training, "train", explode)
    with pytest.raises(CommandError, match="loss is nan"):
        run("train_model", "nan", *TRAIN)
    assert nothing_written(settings, "nan")


@pytest.fixture
def generator_ready(real_pool, tiny_generator):
    return tiny_generator


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--model", "nope", "--count", "1", "--finding", "normal"],
            r"no model named 'nope' \(known models: tiny\)",
        ),
        (
            ["--model", "tiny", "--count", "1", "--finding", "covid"],
            "unknown finding 'covid' for model 'tiny'; it knows: normal, pneumonia",
        ),
        (
            ["--model", "tiny", "--count", "1", "--prompt", "a chest x-ray"],
            "class-conditional ddpm model: it takes a finding",
        ),
        (["--model", "tiny", "--count", "0", "--finding", "normal"], "count must be a positive"),
    ],
)
def test_it_refuses_bad_generation_input_and_creates_nothing(generator_ready, args, message):
    with pytest.raises(CommandError, match=message):
        run("generate_images", *args, "--no-progress")
    assert not GenerationJob.objects.exists()
    assert not Image.objects.filter(truth=Truth.SYNTHETIC).exists()


def test_it_refuses_a_model_without_a_usable_folder(generator_ready):
    import shutil

    shutil.rmtree(generator_ready.folder / "checkpoints")
    with pytest.raises(CommandError, match="cannot sample: .* has no checkpoint yet"):
        run("generate_images", "--model", "tiny", "--count", "1", "--finding", "normal")
    assert not GenerationJob.objects.exists()


def test_it_continues_a_stopped_job_with_retry(generator_ready):
    run(
        "generate_images",
        "--model",
        "tiny",
        "--count",
        "3",
        "--finding",
        "normal",
        "--steps",
        "2",
        "--no-progress",
    )
    job = GenerationJob.objects.get()
    last = GeneratedImage.objects.get(job=job, index=2)
    image = last.image
    last.delete()
    image.delete()
    GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.CANCELLED)

    output = run("generate_images", "--retry", str(job.pk), "--no-progress")

    assert "3 images in the pool" in output
    assert sorted(job.outputs.values_list("index", flat=True)) == [0, 1, 2]


def _latest_marker(generator) -> dict:
    import json

    from generation.engine.ddpm_layout import MARKER, latest_checkpoint

    return json.loads((latest_checkpoint(generator.folder) / MARKER).read_text())


def test_it_stores_the_recipe_options_with_the_model_and_its_checkpoints(real_pool):
    run("train_model", "legacy-tiny", *TRAIN, "--recipe", "legacy", "--min-snr-gamma", "5",
        "--offset-noise", "0.05", "--dropout", "0.1", "--hflip")  # fmt: skip
    generator = GeneratorModel.objects.get(name="legacy-tiny")
    config = generator.config
    assert (config["prediction_type"], config["beta_schedule"]) == ("epsilon", "linear")
    assert config["rescale_betas_zero_snr"] is False and config["dropout"] == 0.1
    marker = _latest_marker(generator)
    assert marker["model"]["prediction_type"] == "epsilon"
    training = marker["training"]
    assert (training["lr_schedule"], training["min_snr_gamma"]) == ("constant", 5.0)
    assert training["offset_noise"] == 0.05 and training["hflip"] is True

    run("train_model", "new-tiny", *TRAIN, "--zero-terminal-snr", "off", "--schedule-shift",
        "0.5", "--beta-schedule", "linear")  # fmt: skip
    config = GeneratorModel.objects.get(name="new-tiny").config
    assert config["prediction_type"] == "v_prediction" and config["rescale_betas_zero_snr"] is False
    assert (config["schedule_shift"], config["beta_schedule"]) == (0.5, "linear")
    training = _latest_marker(GeneratorModel.objects.get(name="new-tiny"))["training"]
    assert training["lr_schedule"] == "cosine" and training["hflip"] is False


def test_it_resumes_a_model_made_before_the_recipe_options_with_its_old_recipe(real_pool):
    import json

    from generation.engine.ddpm_layout import MARKER

    run("train_model", "old-tiny", *TRAIN, "--recipe", "legacy")
    generator = GeneratorModel.objects.get(name="old-tiny")
    new_keys = ("prediction_type", "rescale_betas_zero_snr", "schedule_shift")
    old_config = {k: v for k, v in generator.config.items() if k not in new_keys}
    GeneratorModel.objects.filter(pk=generator.pk).update(config=old_config)
    for path in generator.folder.rglob(MARKER):  # as written before the recipe options
        marker = json.loads(path.read_text())
        marker["model"] = {k: v for k, v in marker["model"].items() if k not in new_keys}
        if "training" in marker:
            for key in ("min_snr_gamma", "offset_noise"):
                marker["training"].pop(key, None)
        path.write_text(json.dumps(marker))

    args = [a if a != "3" else "5" for a in TRAIN]
    assert "trained old-tiny to step 5" in run("train_model", "old-tiny", "--resume", *args)
    marker = _latest_marker(generator)
    assert marker["model"]["prediction_type"] == "epsilon"
    assert (marker["training"]["lr_schedule"], marker["training"]["min_snr_gamma"]) == (
        "constant",
        0.0,
    )
    # the first resume stored the full config; a second one still trains with the old recipe
    assert "prediction_type" in GeneratorModel.objects.get(pk=generator.pk).config
    args = [a if a != "3" else "7" for a in TRAIN]
    assert "trained old-tiny to step 7" in run("train_model", "old-tiny", "--resume", *args)
    training = _latest_marker(generator)["training"]
    assert (training["lr_schedule"], training["min_snr_gamma"], training["offset_noise"]) == (
        "constant",
        0.0,
        0.0,
    )
