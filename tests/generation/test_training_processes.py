"""A training run that asks for N GPUs: the worker starts N processes (gloo on CPU here) and
keeps the job's progress, cancel and checkpoints as a one-process run does."""

from __future__ import annotations

import json

import pytest

from generation import services, tasks
from generation.backends import JobError, backend_for
from generation.engine import checkpoints as ckpt
from generation.models import GeneratorKind, GeneratorModel, JobStatus, TrainingRun

PARAMS = {"batch_size": 2, "preset": "tiny", "grid_steps": 0, "gpus": 2}


def new_run(name: str, total_steps: int, **params) -> TrainingRun:
    generator = GeneratorModel.objects.create(
        name=name, kind=GeneratorKind.DDPM, modality="CXR", resolution=32
    )
    return services.create_training_run(
        generator=generator, total_steps=total_steps, params={**PARAMS, **params}
    )


def test_it_trains_in_two_processes_with_progress_and_checkpoints(real_pool):
    run = new_run("two-procs", 4, checkpoint_every=2)
    seen = []

    tasks.run_training(run.pk, on_progress=lambda done, total, loss: seen.append(done))

    run.refresh_from_db()
    generator = run.generator
    generator.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.step == 4 and run.latest_loss is not None
    assert seen and seen[-1] == 4 and seen == sorted(seen)
    assert [c["step"] for c in generator.checkpoints] == [2, 4]
    assert "precision fp32, 2 processes" in run.log_tail
    marker = json.loads(
        (generator.folder / generator.checkpoints[-1]["path"] / ckpt.MARKER).read_text()
    )
    assert marker["training"]["run"]["world_size"] == 2
    assert (
        len(
            ckpt.load_training_state(generator.folder / generator.checkpoints[-1]["path"])[
                "rng_ranks"
            ]
        )
        == 2
    )

    tasks.run_training(run.pk)  # run twice: a finished run is left alone
    run.refresh_from_db()
    assert run.attempts == 1


def test_it_cancels_the_processes_keeping_a_checkpoint_of_the_step_they_stopped_at(
    real_pool, monkeypatch
):
    run = new_run("two-procs-cancel", 500, checkpoint_every=1000)
    monkeypatch.setattr("generation.runner.CANCEL_CHECK_EVERY_S", 0)

    def cancel_at_two(done, total, loss):
        # the job polls rank 0's progress file: on a fast machine it may never read step 2 itself
        if done >= 2:
            TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)

    tasks.run_training(run.pk, on_progress=cancel_at_two)

    run.refresh_from_db()
    generator = run.generator
    generator.refresh_from_db()
    assert run.status == JobStatus.CANCELLED, run.error
    assert 2 <= run.step < 500
    assert generator.trained_steps == run.step  # the ranks agreed on the step and saved it


def test_it_fails_with_the_engines_reason_from_a_rank(real_pool):
    run = new_run("two-procs-odd", 2, batch_size=3)

    tasks.run_training(run.pk)

    run.refresh_from_db()
    assert run.status == JobStatus.FAILED
    assert "batch_size 3 must be a multiple of the number of processes (2)" in run.error


@pytest.mark.parametrize(
    ("kind", "gpus", "message"),
    [
        ("ddpm", 0, "gpus must be a whole number of at least 1"),
        ("ddpm", "2", "gpus must be a whole number"),
        ("image-api", 2, "does not train on this host's GPUs"),
    ],
)
def test_it_refuses_a_bad_number_of_gpus(kind, gpus, message):
    with pytest.raises(JobError, match=message):
        backend_for(kind).check_params({"gpus": gpus})


@pytest.fixture(scope="module")
def tiny_sd_folder(tmp_path_factory):
    from tests.engine.tiny_sd import build_tiny_sd

    return build_tiny_sd(tmp_path_factory.mktemp("sd") / "tiny-sd")


def new_lora_run(name: str, folder, total_steps: int, **params) -> TrainingRun:
    generator = GeneratorModel.objects.create(
        name=name, kind=GeneratorKind.STABLE_DIFFUSION, modality="CXR", resolution=32,
        base_checkpoint=str(folder),
    )  # fmt: skip
    params = {"lora_rank": 2, "batch_size": 2, "grid_steps": 2, "gpus": 2, **params}
    return services.create_training_run(
        generator=generator, total_steps=total_steps, params=params
    )


def test_it_fine_tunes_a_lora_in_two_processes(real_pool, tiny_sd_folder):
    run = new_lora_run("lora-two-procs", tiny_sd_folder, 2, checkpoint_every=1)
    seen = []

    tasks.run_training(run.pk, on_progress=lambda done, total, loss: seen.append(done))

    run.refresh_from_db()
    generator = run.generator
    generator.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.step == 2 and run.latest_loss is not None and seen[-1] == 2
    assert "LoRA fine-tuning in 2 processes" in run.log_tail
    assert [c["step"] for c in generator.checkpoints] == [1, 2]
    info = json.loads((generator.folder / "lora" / "lora_training.json").read_text())
    assert info["processes"] == 2 and info["step"] == 2
    # rank 0 wrote one loss line per step and a grid with every checkpoint
    lines = (generator.folder / "loss_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2]
    assert (generator.folder / "checkpoint-0000002" / "samples.png").is_file()
    assert generator.sample_grid

    tasks.run_training(run.pk)  # run twice: a finished run is left alone
    run.refresh_from_db()
    assert run.attempts == 1


def test_it_fails_a_lora_run_with_the_engines_reason_from_a_rank(real_pool, tiny_sd_folder):
    run = new_lora_run("lora-two-procs-odd", tiny_sd_folder, 2, batch_size=3)

    tasks.run_training(run.pk)

    run.refresh_from_db()
    assert run.status == JobStatus.FAILED
    assert "batch_size 3 must be a multiple of the number of processes (2)" in run.error
