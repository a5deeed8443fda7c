"""Shared pieces of the generation-job tests: a small real pool, a tiny trained ddpm model, and
a Celery app pointed at a broker of the test's choosing."""

from __future__ import annotations

import contextlib
import io
import shutil

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from generation.models import GeneratorKind, GeneratorModel
from pool.importing import ImportLabels, import_bytes
from pool.models import Image, Modality, Truth

torch.set_num_threads(1)

FINDINGS = ["normal", "pneumonia"]
TINY_NAME = "tiny"


def real_png(seed: int, size: int = 40) -> bytes:
    """A smooth random grey picture, different for every seed."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 255, (5, 5)).astype(np.uint8)
    picture = PILImage.fromarray(coarse).resize((size, size), PILImage.Resampling.BILINEAR)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def import_real(seed: int, *, finding: str = "normal", modality: str = Modality.CXR) -> Image:
    outcome = import_bytes(
        real_png(seed),
        name=f"real-{seed}.png",
        labels=ImportLabels(truth=Truth.REAL, modality=modality, finding=finding, source="test"),
    )
    assert outcome.status == "imported", outcome.line()
    return outcome.images[0]


@contextlib.contextmanager
def use_broker(url: str, transport_options: dict | None = None):
    """Point the project's Celery app at another broker for a while (and back again)."""
    from spotthefake.celery import app

    saved = (app.conf.broker_url, app.conf.broker_transport_options)

    def reset_pools() -> None:
        # drop the references only: kombu keeps its pools in a global registry, and a closed
        # pool handed out again from there would refuse every later publish
        app._pool = None
        with contextlib.suppress(AttributeError, KeyError):
            app.__dict__["amqp"]._producer_pool = None

    reset_pools()
    app.conf.broker_url = url
    app.conf.broker_transport_options = dict(transport_options or {})
    try:
        yield app
    finally:
        reset_pools()
        app.conf.broker_url, app.conf.broker_transport_options = saved


@pytest.fixture(autouse=True)
def _generation_settings(settings, tmp_path):
    """Small display derivatives, a private model folder, quick heartbeats."""
    settings.IMAGE_DISPLAY_SIZE = 64
    settings.MODEL_ROOT = tmp_path / "models"
    settings.GENERATION_HEARTBEAT_INTERVAL_S = 1
    settings.GENERATION_HEARTBEAT_STALE_S = 3
    settings.GENERATION_DEVICE = "cpu"
    settings.GENERATION_SHARE_MODELS = False


@pytest.fixture(autouse=True)
def _memory_broker():
    """No test of this package publishes to a real queue unless it says so."""
    with use_broker("memory://") as app:
        yield app


@pytest.fixture
def real_pool(transactional_db):
    """Six real chest X-rays (three normal, three pneumonia) and one real CT slice."""
    images = [import_real(seed, finding=FINDINGS[seed % 2]) for seed in range(6)]
    images.append(import_real(99, finding="normal", modality=Modality.CT))
    return images


@pytest.fixture(scope="session")
def tiny_model_folder(tmp_path_factory):
    """A tiny 32x32 ddpm model, trained for two steps once per test session."""
    from generation.engine import ddpm, training

    folder = tmp_path_factory.mktemp("tiny-model") / TINY_NAME
    rng = np.random.default_rng(0)
    data = [(rng.integers(0, 255, (32, 32), dtype=np.uint8), FINDINGS[i % 2]) for i in range(8)]
    config = ddpm.DDPMConfig(
        resolution=32, findings=FINDINGS, preset="tiny", name=TINY_NAME, modality="CXR"
    )
    training.train(
        data,
        config,
        folder,
        training.TrainingConfig(
            steps=2, batch_size=4, checkpoint_every=2, grid_steps=0, warmup_steps=0
        ),
        device="cpu",
    )
    return folder, config


@pytest.fixture
def tiny_generator(transactional_db, settings, tiny_model_folder):
    """A GeneratorModel row whose folder holds the tiny trained model."""
    folder, config = tiny_model_folder
    shutil.copytree(folder, settings.MODEL_ROOT / TINY_NAME)
    from generation.tasks import record_checkpoints

    generator = GeneratorModel.objects.create(
        name=TINY_NAME,
        kind=GeneratorKind.DDPM,
        modality=Modality.CXR,
        findings=FINDINGS,
        resolution=32,
        config=config.to_dict(),
    )
    record_checkpoints(generator)
    return generator
