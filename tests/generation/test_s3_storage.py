"""Media (and shared model checkpoints) in an S3-compatible object store: moto's server mode on
127.0.0.1, talked to over HTTP by django-storages exactly as a real bucket would be."""

from __future__ import annotations

import shutil
import socket

import boto3
import pytest
from django.core.files.storage import default_storage

from generation import services, tasks
from generation import storage as model_storage
from generation.models import JobStatus
from pool.models import Truth
from tests.generation.conftest import import_real

BUCKET = "spot-the-fake-media"
KEYS = {"access_key": "testing", "secret_key": "testing"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_media(settings, s3_endpoint):
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_endpoint,
                "region_name": "us-east-1",
                "default_acl": None,
                "querystring_auth": True,
                "file_overwrite": False,
                **KEYS,
            },
        },
    }
    yield client
    objects = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    for item in objects:
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def keys(client) -> set[str]:
    return {item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def test_it_keeps_real_and_generated_images_in_the_object_store(s3_media, tiny_generator):
    from storages.backends.s3 import S3Storage

    assert isinstance(default_storage, S3Storage)  # the lazy default follows the setting
    real = import_real(1, finding="normal")
    job = services.create_generation_job(
        generator=tiny_generator, count=1, finding="normal", steps=2
    )

    tasks.run_generation(job.pk)

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    synthetic = job.outputs.get().image
    stored = keys(s3_media)
    for image in (real, synthetic):
        assert image.original.name in stored and image.display.name in stored
        assert isinstance(image.display.storage, S3Storage)
    # read both back through the storage: the same kind of file, the same length
    real_display, synthetic_display = real.display.read(), synthetic.display.read()
    assert real_display[:8] == synthetic_display[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(real_display) == len(synthetic_display)
    assert synthetic.truth == Truth.SYNTHETIC
    with default_storage.open(synthetic.original.name, "rb") as handle:
        assert handle.read()[:8] == b"\x89PNG\r\n\x1a\n"


def test_it_shares_checkpoints_through_the_object_store_for_other_workers(
    s3_media, real_pool, settings
):
    from generation.models import GeneratorKind, GeneratorModel

    settings.GENERATION_SHARE_MODELS = True
    generator = GeneratorModel.objects.create(
        name="shared", kind=GeneratorKind.DDPM, modality="CXR", resolution=32
    )
    run = services.create_training_run(
        generator=generator,
        total_steps=2,
        params={"batch_size": 2, "preset": "tiny", "grid_steps": 1, "checkpoint_every": 2},
    )
    tasks.run_training(run.pk)
    generator.refresh_from_db()
    entry = generator.checkpoints[-1]
    assert f"models/shared/{entry['path']}/unet/diffusion_pytorch_model.safetensors" in keys(
        s3_media
    )
    assert generator.sample_grid.name in keys(s3_media)

    shutil.rmtree(generator.folder)  # a second GPU machine: nothing on its own disk
    job = services.create_generation_job(generator=generator, count=2, finding="pneumonia", steps=2)
    tasks.run_generation(job.pk)

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert (generator.folder / entry["path"]).is_dir()
    assert model_storage.fetch(generator) is False
