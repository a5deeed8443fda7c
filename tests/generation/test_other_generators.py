"""The Stable Diffusion and hosted-API generator kinds, run through the same task functions."""

from __future__ import annotations

import base64
import io
import json
import threading
import typing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image as PILImage

from generation import services, tasks
from generation.models import GenerationJob, GeneratorKind, GeneratorModel, JobStatus
from pool.models import Truth
from tests.engine.tiny_sd import build_tiny_sd


@pytest.fixture(scope="module")
def tiny_sd_folder(tmp_path_factory):
    return build_tiny_sd(tmp_path_factory.mktemp("sd") / "tiny-sd")


@pytest.fixture
def sd_generator(transactional_db, tiny_sd_folder):
    return GeneratorModel.objects.create(
        name="sd-tiny",
        kind=GeneratorKind.STABLE_DIFFUSION,
        modality="CXR",
        resolution=32,
        base_checkpoint=str(tiny_sd_folder),
    )


def test_it_generates_from_a_prompt_with_a_stable_diffusion_folder(sd_generator):
    job = services.create_generation_job(
        generator=sd_generator,
        count=2,
        prompt="a frontal chest x-ray with pneumonia",
        negative_prompt="text",
        steps=2,
        guidance=3.0,
        batch_size=2,
        seed=7,
    )

    tasks.run_generation(job.pk)

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    images = [slot.image for slot in job.outputs.all()]
    assert [image.provenance["seed"] for image in images] == [7, 8]
    assert {image.provenance["prompt"] for image in images} == {
        "a frontal chest x-ray with pneumonia"
    }
    assert all(image.truth == Truth.SYNTHETIC and image.source == "sd-tiny" for image in images)


def test_it_samples_at_stable_diffusions_own_guidance_by_default(sd_generator):
    from django.core.management import call_command

    call_command(
        "generate_images", "--model", "sd-tiny", "--count", "1", "--prompt", "a chest x-ray",
        "--steps", "1", "--no-progress", stdout=io.StringIO(),
    )  # fmt: skip

    job = GenerationJob.objects.get()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.guidance == 7.5 and job.outputs.get().image.provenance["guidance"] == 7.5


def test_it_fine_tunes_a_lora_and_samples_with_it(sd_generator, real_pool):
    run = services.create_training_run(
        generator=sd_generator,
        total_steps=2,
        params={"lora_rank": 2, "batch_size": 1, "checkpoint_every": 1, "age_group": "child"},
    )

    tasks.train_generator(run_pk=run.pk)

    run.refresh_from_db()
    sd_generator.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.step == 2 and run.latest_loss is not None
    assert [c["step"] for c in sd_generator.checkpoints][-1] == 2
    assert (sd_generator.folder / "lora" / "pytorch_lora_weights.safetensors").is_file()
    assert sd_generator.loss_curve[-1][0] == 2
    # a sample grid with every checkpoint, the newest recorded on the model as for ddpm models
    grid = sd_generator.folder / "checkpoint-0000002" / "samples.png"
    assert (sd_generator.folder / "checkpoint-0000001" / "samples.png").is_file()
    assert sd_generator.sample_grid.read() == grid.read_bytes()
    # the model lists no findings: one row per prompt of its training set (normal, pneumonia)
    assert np.asarray(PILImage.open(grid)).shape == (2 * 34 + 2, 2 * 34 + 2)  # 2 x 2 of 32 px

    job = services.create_generation_job(
        generator=sd_generator, count=1, finding="pneumonia", steps=2
    )
    tasks.run_generation(job.pk)
    job.refresh_from_db()
    provenance = job.outputs.get().image.provenance
    assert provenance["prompt"] == "a frontal chest x-ray of a child with pneumonia"
    assert provenance["lora_sha256"]


class _ApiHandler(BaseHTTPRequestHandler):
    replies: typing.ClassVar[list] = []
    served = 0
    side = 0  # 0: the size asked for; else this many pixels a side
    keys: typing.ClassVar[list] = []  # the Idempotency-Key header of every request

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.keys.append(self.headers.get("Idempotency-Key"))
        width, height = (int(n) for n in body["size"].split("x"))
        if self.side:
            width = height = self.side
        status = self.replies.pop(0) if self.replies else 200
        if status != 200:
            payload = json.dumps({"error": {"message": "invalid api key"}}).encode()
        else:
            type(self).served += 1  # a different picture for every request
            rng = np.random.default_rng([len(body["prompt"]), self.served])
            picture = PILImage.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
            buffer = io.BytesIO()
            picture.save(buffer, format="PNG")
            payload = json.dumps(
                {"data": [{"b64_json": base64.b64encode(buffer.getvalue()).decode()}]}
            ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def image_api(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ApiHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.IMAGE_API_BASE_URL = f"http://127.0.0.1:{server.server_address[1]}/v1"
    settings.IMAGE_API_KEY = "sk-test"
    settings.IMAGE_API_MODEL = "test-image-model"
    settings.IMAGE_API_SIZE = "48x48"
    settings.IMAGE_API_MAX_RETRIES = 0
    _ApiHandler.replies = []
    _ApiHandler.served = 0
    _ApiHandler.side = 0
    _ApiHandler.keys = []
    yield _ApiHandler
    server.shutdown()
    server.server_close()


@pytest.fixture
def api_generator(transactional_db):
    return GeneratorModel.objects.create(
        name="hosted", kind=GeneratorKind.IMAGE_API, modality="CXR"
    )


def test_it_stores_what_the_hosted_api_returns(image_api, api_generator):
    job = services.create_generation_job(generator=api_generator, count=2, finding="pneumonia")

    tasks.run_generation(job.pk)

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    image = job.outputs.first().image
    assert image.provenance["prompt"] == "a frontal chest x-ray with pneumonia"
    assert image.finding == "pneumonia" and image.truth == Truth.SYNTHETIC
    assert job.device == "remote API"


def test_it_fails_with_the_apis_reason_and_never_shows_the_key(image_api, api_generator):
    image_api.replies = [401]
    job = services.create_generation_job(generator=api_generator, count=1, prompt="a chest x-ray")

    tasks.run_generation(job.pk)

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "401" in job.error or "key" in job.error.lower()
    assert "sk-test" not in job.error and "sk-test" not in job.log_tail


def test_it_refuses_an_api_job_when_the_api_is_not_configured(api_generator, settings):
    settings.IMAGE_API_BASE_URL = ""
    with pytest.raises(services.InvalidJob, match="not configured"):
        services.create_generation_job(generator=api_generator, count=1, prompt="x")


def test_it_fails_clearly_when_the_api_returns_an_image_it_returned_before(
    image_api, api_generator
):
    job = services.create_generation_job(generator=api_generator, count=1, prompt="a chest x-ray")
    tasks.run_generation(job.pk)
    image_api.served = 0  # the server starts over: the same picture again
    again = services.create_generation_job(generator=api_generator, count=1, prompt="a chest x-ray")

    tasks.run_generation(again.pk)

    again.refresh_from_db()
    assert again.status == JobStatus.FAILED
    assert "the image API returned an image identical to pool image" in again.error


def test_it_fails_clearly_when_the_api_returns_a_smaller_image(image_api, api_generator):
    image_api.side = 1
    job = services.create_generation_job(generator=api_generator, count=1, prompt="a chest x-ray")

    tasks.run_generation(job.pk)

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "returned a 1x1 image, smaller than the 48x48 asked for" in job.error
    assert not job.outputs.exists()


def test_it_retries_a_failed_request_with_one_key_when_the_provider_takes_keys(
    image_api, api_generator, settings
):
    settings.IMAGE_API_IDEMPOTENCY_HEADER = "Idempotency-Key"
    settings.IMAGE_API_MAX_RETRIES = 2
    image_api.replies = [500]
    job = services.create_generation_job(generator=api_generator, count=1, prompt="a chest x-ray")

    tasks.run_generation(job.pk)

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert len(image_api.keys) == 2 and image_api.keys[0] and len(set(image_api.keys)) == 1


def test_it_never_repeats_a_request_that_may_have_been_billed_by_default(
    image_api, api_generator, settings
):
    settings.IMAGE_API_MAX_RETRIES = 2
    image_api.replies = [500]
    job = services.create_generation_job(generator=api_generator, count=1, prompt="a chest x-ray")

    tasks.run_generation(job.pk)

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "may already have made and billed the image" in job.error
    assert image_api.keys == [None]


def test_it_bounds_requests_in_flight_in_redis_or_on_this_host(settings):
    from generation.backends import backend_for
    from generation.engine.inflight import FileSlots, RedisSlots

    settings.IMAGE_API_BASE_URL = "https://images.example.org/v1"
    settings.IMAGE_API_MAX_IN_FLIGHT = 3
    settings.REDIS_URL = "redis://127.0.0.1:6379/8"
    slots = backend_for(GeneratorKind.IMAGE_API).in_flight_limit()
    assert isinstance(slots, RedisSlots) and slots.limit == 3
    assert slots.key.endswith("images.example.org")
    assert slots.lease_s > settings.IMAGE_API_TIMEOUT_S  # no request outlives its slot's lease
    settings.REDIS_URL = None
    slots = backend_for(GeneratorKind.IMAGE_API).in_flight_limit()
    assert isinstance(slots, FileSlots) and slots.limit == 3


def test_it_hands_the_lora_trainer_one_grid_row_per_finding():
    from generation.backends.stable_diffusion import StableDiffusionBackend, lora_config_from

    generator = GeneratorModel(
        name="sd",
        kind=GeneratorKind.STABLE_DIFFUSION,
        modality="CXR",
        findings=["normal", "effusion"],
    )
    prompts = StableDiffusionBackend._grid_prompts(generator, "child")
    assert prompts == [
        "a normal frontal chest x-ray of a child",
        "a frontal chest x-ray of a child with effusion",
    ]
    config = lora_config_from({}, 100, 32, prompts)
    assert (config.grid_prompts, config.grid_steps, config.grid_guidance) == (prompts, 20, 7.5)
    assert lora_config_from({"grid_steps": 0}, 100, 32, prompts).grid_steps == 0  # no grids
