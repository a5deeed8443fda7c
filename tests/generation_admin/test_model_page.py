"""A model's page: configuration, checkpoints, training curve, sample grid, images; the grid file."""

import os

import pytest
from django.core.files.base import ContentFile

from generation.engine import checkpoints as ckpt
from generation.models import GeneratedImage, GenerationJob
from pool.models import Truth
from tests.factories import ImageFactory
from tests.sessions import session_queries

pytestmark = pytest.mark.django_db

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def page_url(generator) -> str:
    return f"/staff/generation/models/{generator.pk}/"


def made_images(generator, n: int) -> list:
    job = GenerationJob.objects.create(generator=generator, count=n, finding="normal")
    images = []
    for index in range(n):
        image = ImageFactory(truth=Truth.SYNTHETIC)
        GeneratedImage.objects.create(job=job, index=index, image=image)
        images.append(image)
    return images


def test_it_shows_the_kind_configuration_checkpoints_curve_and_grid_from_the_folder(
    staff_client, tiny_model
):
    response = staff_client.get(page_url(tiny_model))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Pixel diffusion from scratch" in html  # the kind, spelled out
    assert "normal, pneumonia" in html and "32 × 32" in html
    steps = [c.step for c in response.context["checkpoints"]]
    assert steps == [2, 1]  # newest first
    newest = response.context["checkpoints"][0]
    weights = tiny_model.folder / "checkpoints" / "step-00000002" / ckpt.WEIGHTS
    assert newest.weights_bytes == weights.stat().st_size > 0
    assert newest.saved_at is not None and newest.has_grid
    assert '<svg class="loss-curve"' in html and "step 2:" in html
    assert f'src="/staff/generation/models/{tiny_model.pk}/samples.png"' in html
    assert f"/staff/generation/models/{tiny_model.pk}/checkpoints/1/samples.png" in html


def test_it_serves_the_latest_and_each_checkpoints_sample_grid(staff_client, tiny_model):
    latest = staff_client.get(f"/staff/generation/models/{tiny_model.pk}/samples.png")
    assert latest.status_code == 200 and latest["Content-Type"] == "image/png"
    body = b"".join(latest.streaming_content)
    assert (
        body
        == (tiny_model.folder / "checkpoints" / "step-00000002" / ckpt.SAMPLE_GRID).read_bytes()
    )
    first = staff_client.get(f"/staff/generation/models/{tiny_model.pk}/checkpoints/1/samples.png")
    assert b"".join(first.streaming_content).startswith(PNG_SIGNATURE)
    missing = staff_client.get(
        f"/staff/generation/models/{tiny_model.pk}/checkpoints/3/samples.png"
    )
    assert missing.status_code == 404


def test_it_prefers_what_the_workers_recorded_on_the_model(staff_client, tiny_model):
    """A web server that cannot see the worker's disk still shows checkpoints, curve and grid."""
    import shutil

    shutil.rmtree(tiny_model.folder)
    tiny_model.checkpoints = [
        {"step": 500, "path": "checkpoints/step-00000500", "saved_at": "2026-01-02T03:04:05+00:00"}
    ]
    tiny_model.trained_steps = 500
    tiny_model.loss_curve = [[10, 0.9], [250, 0.2], [500, 0.02]]
    tiny_model.sample_grid.save("samples.png", ContentFile(PNG_SIGNATURE + b"recorded"), save=False)
    tiny_model.save()
    response = staff_client.get(page_url(tiny_model))
    html = response.content.decode()
    [checkpoint] = response.context["checkpoints"]
    assert (checkpoint.step, checkpoint.weights_bytes, checkpoint.saved_at.year) == (
        500,
        None,
        2026,
    )
    assert "step 500: 0.02" in html and "log scale" in html
    grid = staff_client.get(f"/staff/generation/models/{tiny_model.pk}/samples.png")
    assert b"".join(grid.streaming_content) == PNG_SIGNATURE + b"recorded"


def test_it_says_so_when_a_model_has_nothing_yet(staff_client, db):
    from generation.models import GeneratorModel

    generator = GeneratorModel.objects.create(name="fresh", kind="ddpm", findings=["normal"])
    html = staff_client.get(page_url(generator)).content.decode()
    assert (
        "No checkpoint yet" in html
        and "No loss logged yet" in html
        and "No sample grid yet" in html
    )
    assert (
        staff_client.get(f"/staff/generation/models/{generator.pk}/samples.png").status_code == 404
    )


def test_it_never_serves_a_file_outside_the_model_root(staff_client, tiny_model, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(PNG_SIGNATURE + b"secret")
    grid = tiny_model.folder / "checkpoints" / "step-00000001" / ckpt.SAMPLE_GRID
    grid.unlink()
    os.symlink(secret, grid)
    assert (
        staff_client.get(
            f"/staff/generation/models/{tiny_model.pk}/checkpoints/1/samples.png"
        ).status_code
        == 404
    )
    for bad in ("../1", "..%2F..%2Fsecret", "-1", "1.png"):
        response = staff_client.get(
            f"/staff/generation/models/{tiny_model.pk}/checkpoints/{bad}/samples.png"
        )
        assert response.status_code == 404, bad


def test_it_pages_through_the_images_it_produced(
    staff_client, tiny_model, django_assert_num_queries
):
    images = made_images(tiny_model, 30)
    newest_first = [image.public_id for image in reversed(images)]
    first = staff_client.get(page_url(tiny_model))
    html = first.content.decode()
    assert "Images it produced (30)" in html
    assert [image.public_id for image in first.context["images"]] == newest_first[:24]
    assert f"/staff/images/{newest_first[0]}/display.png" in html
    assert "?page=2#images" in html
    second = staff_client.get(page_url(tiny_model) + "?page=2")
    assert [image.public_id for image in second.context["images"]] == newest_first[24:]
    # (session,) user, model, images count + page, runs, jobs: not one per image
    with django_assert_num_queries(7 + session_queries()):  # +1: the latest quality evaluation (evaluation app)
        staff_client.get(page_url(tiny_model))


def test_it_links_the_model_page_from_the_admin(staff_client, tiny_model):
    change = staff_client.get(
        f"/admin/generation/generatormodel/{tiny_model.pk}/change/"
    ).content.decode()
    assert f'href="{page_url(tiny_model)}"' in change
    assert f'href="/staff/generation/generate/?model={tiny_model.pk}"' in change


def test_it_shows_a_lora_runs_sample_grids_like_a_ddpm_models(staff_client, db, tmp_path):
    """A Stable Diffusion model's folder as the LoRA trainer writes it: a grid per checkpoint."""
    from generation.models import GeneratorModel

    generator = GeneratorModel.objects.create(
        name="sd-lora", kind="stable-diffusion", base_checkpoint=str(tmp_path), findings=["normal"]
    )
    for step in (1, 2):
        folder = generator.folder / f"checkpoint-{step:07d}"
        folder.mkdir(parents=True)
        for name in ("pytorch_lora_weights.safetensors", "training_state.pt", "lora_training.json"):
            (folder / name).write_bytes(b"x")
        (folder / "samples.png").write_bytes(PNG_SIGNATURE + f"step {step}".encode())

    response = staff_client.get(page_url(generator))
    html = response.content.decode()
    assert [(c.step, c.has_grid) for c in response.context["checkpoints"]] == [(2, True), (1, True)]
    assert f'src="/staff/generation/models/{generator.pk}/samples.png"' in html
    assert "drawn with the LoRA as trained by then" in html and "at step 2" in html
    latest = staff_client.get(f"/staff/generation/models/{generator.pk}/samples.png")
    assert b"".join(latest.streaming_content) == PNG_SIGNATURE + b"step 2"
    first = staff_client.get(f"/staff/generation/models/{generator.pk}/checkpoints/1/samples.png")
    assert b"".join(first.streaming_content) == PNG_SIGNATURE + b"step 1"
