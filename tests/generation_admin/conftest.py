"""The generation admin's test world: a staff client, a labelled real pool, the broker, models."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from generation.models import GeneratorKind, GeneratorModel
from pool.models import Modality, Truth
from spotthefake.celery import GPU_QUEUE, app
from tests.factories import ImageFactory

UNREACHABLE_BROKER = "redis://127.0.0.1:1/0"
TINY_FINDINGS = ["normal", "pneumonia"]


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def reader_client(client, reader):
    client.force_login(reader)
    return client


@pytest.fixture(autouse=True)
def _models_in_tmp(settings, tmp_path):
    settings.MODEL_ROOT = tmp_path / "models"
    settings.MODEL_ROOT.mkdir()


@pytest.fixture
def real_pool(db):
    """Real chest X-rays labelled normal and pneumonia, and one real CT slice."""
    images = [ImageFactory(truth=Truth.REAL, finding=finding) for finding in TINY_FINDINGS * 2]
    images.append(ImageFactory(truth=Truth.REAL, modality=Modality.CT, finding="nodule"))
    return images


def drain_gpu_queue() -> list[tuple[str, dict]]:
    """Take every message off the gpu queue: [(task name, kwargs)]. Leaves nothing behind."""
    taken = []
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        while (message := channel.basic_get(GPU_QUEUE, no_ack=True)) is not None:
            _args, kwargs, _embed = message.decode()
            taken.append((message.headers["task"], kwargs))
    return taken


@pytest.fixture
def gpu_queue():
    """The real broker's gpu queue, emptied before and after the test."""
    drain_gpu_queue()
    yield drain_gpu_queue
    drain_gpu_queue()


@pytest.fixture
def broker_down(settings):
    """A broker URL nothing listens on; restored afterwards (the Celery app reads it at import)."""
    before = app.conf.broker_url
    settings.CELERY_BROKER_URL = UNREACHABLE_BROKER
    settings.GENERATION_BROKER_CHECK_TIMEOUT_S = 1
    app.conf.broker_url = UNREACHABLE_BROKER
    yield
    app.conf.broker_url = before


def _tiny_dataset(size: int = 32) -> list[tuple[np.ndarray, str]]:
    rng = np.random.default_rng(0)
    items = []
    for index in range(4):
        image = np.full((size, size), 40.0)
        image[:, : size // 2] += 150 if index % 2 == 0 else 0
        image += rng.normal(0, 5, image.shape)
        items.append((np.clip(image, 0, 255).astype(np.uint8), TINY_FINDINGS[index % 2]))
    return items


@pytest.fixture(scope="session")
def tiny_model_folder(tmp_path_factory) -> Path:
    """A ddpm model folder trained with the engine: tiny preset, 2 steps, a checkpoint each."""
    import torch

    from generation.engine.ddpm import DDPMConfig
    from generation.engine.training import TrainingConfig, train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        folder = tmp_path_factory.mktemp("tiny-models") / "tiny"
        train(
            _tiny_dataset(),
            DDPMConfig(resolution=32, findings=TINY_FINDINGS, preset="tiny", name="tiny"),
            folder,
            TrainingConfig(
                steps=2,
                batch_size=2,
                warmup_steps=0,
                checkpoint_every=1,
                keep_checkpoints=0,
                log_every=1,
                grid_steps=2,
                grid_per_class=2,
            ),
            device="cpu",
        )
    finally:
        torch.set_num_threads(threads)
    return folder


@pytest.fixture
def tiny_model(db, settings, tiny_model_folder) -> GeneratorModel:
    """A trained ddpm generator whose folder is in this test's MODEL_ROOT."""
    # trained_steps mirrors what a finished training run records on the model row.
    generator = GeneratorModel.objects.create(
        name="tiny", kind=GeneratorKind.DDPM, findings=TINY_FINDINGS, resolution=32,
        trained_steps=2,
    )
    shutil.copytree(tiny_model_folder, generator.folder)
    return generator
