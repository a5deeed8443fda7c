"""Storing generated images in the pool, the training set drawn from it, and model sharing."""

from __future__ import annotations

import hashlib
import io
import shutil

import numpy as np
import pytest
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from generation import datasets, services
from generation import storage as model_storage
from generation.models import GeneratedImage, GeneratorKind, GeneratorModel
from generation.pool import DuplicateImageError, store_generated_image
from pool.imaging import make_display_png
from pool.models import Image, Modality, Truth
from tests.generation.conftest import import_real


def stored_files() -> set[str]:
    found = set()

    def walk(path):
        folders, files = default_storage.listdir(path)
        found.update(f"{path}/{f}".lstrip("/") for f in files)
        for folder in folders:
            walk(f"{path}/{folder}".lstrip("/"))

    if default_storage.exists(""):
        walk("")
    return found


def pixels(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (32, 32), dtype=np.uint8)


@pytest.fixture
def job(tiny_generator):
    return services.create_generation_job(generator=tiny_generator, count=3, finding="pneumonia")


def test_it_keeps_the_raw_output_losslessly_and_derives_the_display_like_for_real_images(
    job, settings
):
    array = pixels(1)

    image = store_generated_image(job, 0, array, {"generator": "ddpm", "seed": 0})

    original = image.original.read()
    assert np.array_equal(np.asarray(PILImage.open(io.BytesIO(original))), array)
    assert image.sha256 == hashlib.sha256(original).hexdigest()
    assert image.display.read() == make_display_png(array, settings.IMAGE_DISPLAY_SIZE)
    assert (image.truth, image.modality, image.finding, image.source) == (
        Truth.SYNTHETIC,
        Modality.CXR,
        "pneumonia",
        "tiny",
    )
    assert image.provenance == {"generator": "ddpm", "seed": 0, "job": job.pk, "index": 0}
    assert (image.original_format, image.original_width, image.original_height) == ("png", 32, 32)
    assert GeneratedImage.objects.get(job=job, index=0).image == image


def test_it_skips_a_slot_that_is_already_filled_without_writing_a_file(job):
    store_generated_image(job, 0, pixels(1), {})
    before = stored_files()

    assert store_generated_image(job, 0, pixels(2), {}) is None

    assert stored_files() == before
    assert GeneratedImage.objects.filter(job=job).count() == 1


def test_it_removes_the_files_again_when_the_rows_cannot_be_written(job, monkeypatch):
    before = stored_files()

    def refuse(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(GeneratedImage.objects, "create", refuse)
    with pytest.raises(RuntimeError):
        store_generated_image(job, 0, pixels(1), {})

    assert stored_files() == before
    assert not Image.objects.filter(truth=Truth.SYNTHETIC).exists()


def test_it_treats_a_slot_filled_concurrently_as_already_made(job, monkeypatch):
    """The (job, index) constraint decides a race between two runs of the same job."""
    other = store_generated_image(job, 0, pixels(1), {})
    real_exists = GeneratedImage.objects.filter
    calls = []

    def first_says_empty(*args, **kwargs):
        queryset = real_exists(*args, **kwargs)
        calls.append(1)
        return queryset.none() if len(calls) == 1 else queryset

    monkeypatch.setattr(GeneratedImage.objects, "filter", first_says_empty)
    before = stored_files()

    assert store_generated_image(job, 0, pixels(7), {}) is None

    assert stored_files() == before
    assert GeneratedImage.objects.get(job=job, index=0).image == other


def test_it_refuses_an_image_identical_to_one_already_in_the_pool(job, tiny_generator):
    store_generated_image(job, 0, pixels(1), {})
    second = services.create_generation_job(generator=tiny_generator, count=1, finding="normal")

    with pytest.raises(DuplicateImageError, match=r"identical to pool image .* job #\d+"):
        store_generated_image(second, 0, pixels(1), {})


def exported(generator, folder, resolution=None) -> list[tuple[np.ndarray, str]]:
    """The training set as the trainers read it: PNG files, decoded."""
    items = datasets.export_training_set(generator, folder, resolution=resolution)
    return [(np.asarray(PILImage.open(path)), label) for path, label in items]


def test_it_trains_on_the_display_images_of_real_images_of_the_modality_and_findings(real_pool, tmp_path):
    generator = GeneratorModel(
        name="g", kind=GeneratorKind.DDPM, modality=Modality.CXR, findings=["pneumonia"]
    )
    import_real(50, finding="pneumonia")  # a real one, counted
    synthetic = import_real(51, finding="pneumonia")
    Image.objects.filter(pk=synthetic.pk).update(truth=Truth.SYNTHETIC)  # never trained on

    items = exported(generator, tmp_path, resolution=32)

    assert len(items) == 4  # 3 from the pool fixture + 1
    assert all(label == "pneumonia" for _, label in items)
    assert all(array.dtype == np.uint8 and array.shape == (32, 32) for array, _ in items)


def test_it_trains_the_null_class_of_a_ddpm_model_on_real_images_without_a_finding(real_pool, tmp_path):
    generator = GeneratorModel(
        name="g", kind=GeneratorKind.DDPM, modality=Modality.CXR, findings=["pneumonia"]
    )
    import_real(60, finding="")

    items = exported(generator, tmp_path, resolution=32)

    assert sorted(label for _, label in items) == ["", "pneumonia", "pneumonia", "pneumonia"]
    assert datasets.check_training_set(generator) == 3  # the labelled ones make it non-empty


def test_it_takes_every_labelled_finding_when_the_model_names_none(real_pool, tmp_path):
    generator = GeneratorModel(name="g", kind=GeneratorKind.DDPM, modality=Modality.CXR)
    assert datasets.resolve_findings(generator) == ["normal", "pneumonia"]
    assert len(exported(generator, tmp_path)) == 6


def test_it_says_clearly_when_the_training_set_is_empty(real_pool, tmp_path):
    generator = GeneratorModel(
        name="g", kind=GeneratorKind.DDPM, modality=Modality.CT, findings=["nodule"]
    )
    with pytest.raises(
        datasets.DatasetError, match="training set is empty: no real CT images with finding nodule"
    ):
        exported(generator, tmp_path)


def test_it_shares_a_checkpoint_through_the_storage_and_fetches_it_elsewhere(
    tiny_generator, settings
):
    entry = tiny_generator.checkpoints[-1]
    files = model_storage.publish(tiny_generator, entry["path"])
    assert "generator.json" in files and any(
        f.endswith("diffusion_pytorch_model.safetensors") for f in files
    )
    assert default_storage.exists(f"models/tiny/{entry['path']}/generator.json")
    tiny_generator.checkpoints = [{**entry, "files": files}]
    tiny_generator.save()
    shutil.rmtree(tiny_generator.folder)  # another worker: nothing on its disk

    assert model_storage.fetch(tiny_generator) is True

    from generation.engine.checkpoints import load_model

    assert load_model(tiny_generator.folder).step == entry["step"]
    assert model_storage.fetch(tiny_generator) is False  # already there
