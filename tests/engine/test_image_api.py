"""The "image-api" generator kind against a small HTTP server started by the test on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import threading
import time
import uuid
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from generation.engine.image_api import (
    GENERATOR_KIND,
    ImageApiAuthError,
    ImageApiCancelled,
    ImageApiClient,
    ImageApiConfigError,
    ImageApiConnectionError,
    ImageApiRateLimitError,
    ImageApiRequestError,
    ImageApiResponseError,
    ImageApiServerError,
    ImageApiTimeoutError,
    parse_retry_after,
    to_grayscale_uint8,
)
from generation.engine.inflight import FileSlots, RedisSlots

API_KEY = "sk-test-0123456789-secret"
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def png_b64(image: Image.Image, fmt: str = "PNG") -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def rgb_test_image(width: int = 64, height: int = 48) -> Image.Image:
    yy, xx = np.mgrid[:height, :width]
    rgb = np.stack([xx * 4 % 256, yy * 5 % 256, (xx + yy) * 2 % 256], axis=-1).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def ok_body(image: Image.Image | None = None, **extra) -> bytes:
    item = {"b64_json": png_b64(image or rgb_test_image())}
    item.update(extra)
    return json.dumps({"created": 1700000000, "data": [item]}).encode()


def error_body(message: str, code: str = "invalid_request_error") -> bytes:
    return json.dumps({"error": {"message": message, "type": code, "code": None}}).encode()


class Reply:
    """What the test server answers. `status` None: read the request, then hang up without a
    reply. `gate`: hold the reply until the event is set (requests in flight pile up)."""

    def __init__(self, status=200, body=b"", headers=None, delay_s=0.0, gate=None):
        self.status, self.body, self.headers, self.delay_s = status, body, headers or {}, delay_s
        self.gate = gate


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_POST(self):
        server = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        with server.lock:
            server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            reply = server.replies.pop(0) if len(server.replies) > 1 else server.replies[0]
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
        try:
            self._reply(reply)
        finally:
            with server.lock:
                server.in_flight -= 1

    def _reply(self, reply):
        try:
            if reply.gate is not None:
                reply.gate.wait(timeout=60)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            if reply.status is None:
                self.close_connection = True
                return
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and went away


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address):
        pass


@pytest.fixture
def api_server():
    server = _Server(("127.0.0.1", 0), _Handler)
    server.replies = [Reply(200, ok_body())]
    server.requests = []
    server.lock = threading.Lock()
    server.in_flight = server.max_in_flight = 0
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    server.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield server
    server.shutdown()
    server.server_close()


class SleepRecorder:
    def __init__(self):
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def make_client(server, **kwargs) -> tuple[ImageApiClient, SleepRecorder]:
    """A client asking for the test image's size (64x48), waiting the full backoff (jitter 1)."""
    sleep = SleepRecorder()
    options = {
        "timeout_s": 5.0,
        "max_retries": 2,
        "backoff_base_s": 0.01,
        "sleep": sleep,
        "size": "64x48",
        "jitter": lambda: 1.0,
    }
    options.update(kwargs)
    return ImageApiClient(server.base_url, API_KEY, "test-image-model", **options), sleep


# -- success ---------------------------------------------------------------------------------


def test_it_success_returns_grayscale_array_and_provenance(api_server):
    image = rgb_test_image(64, 48)
    api_server.replies = [
        Reply(
            200,
            ok_body(image, revised_prompt="a frontal chest x-ray, photorealistic"),
            headers={"x-request-id": "req_abc123"},
        )
    ]
    client, sleep = make_client(api_server)

    result = client.generate("a frontal chest x-ray with pneumonia")
    pixels, provenance = result

    assert pixels.dtype == np.uint8 and pixels.shape == (48, 64)
    assert np.array_equal(pixels, np.asarray(image.convert("L")))
    assert sleep.calls == []

    (request,) = api_server.requests
    assert request["path"] == "/v1/images/generations"
    assert request["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert json.loads(request["body"]) == {
        "model": "test-image-model",
        "prompt": "a frontal chest x-ray with pneumonia",
        "n": 1,
        "size": "64x48",
        "response_format": "b64_json",
    }

    assert provenance["generator"] == GENERATOR_KIND == "image-api"
    assert provenance["api_host"] == api_server.base_url.split("//")[1].split("/")[0]
    assert provenance["model"] == "test-image-model"
    assert provenance["prompt"] == "a frontal chest x-ray with pneumonia"
    assert provenance["revised_prompt"] == "a frontal chest x-ray, photorealistic"
    assert provenance["size"] == "64x48"
    assert provenance["resolution"] == "64x48" and provenance["width"] == 64
    assert provenance["seed"] is None
    assert provenance["request_id"] == "req_abc123"
    assert provenance["api_created"] == 1700000000
    assert provenance["attempts"] == 1
    assert provenance["created_at"].endswith("+00:00")
    assert API_KEY not in json.dumps(provenance)
    assert API_KEY not in repr(client)


def test_it_size_extra_params_and_no_response_format(api_server):
    client, _ = make_client(
        api_server, send_response_format=False, extra_params={"quality": "high"}
    )
    client.generate("a chest x-ray", size="48x48")
    body = json.loads(api_server.requests[0]["body"])
    assert body["size"] == "48x48" and body["quality"] == "high"
    assert "response_format" not in body
    with pytest.raises(ImageApiConfigError, match="1024x1024"):
        client.generate("a chest x-ray", size="big")


def test_it_generate_many_reports_each_image(api_server):
    client, _ = make_client(api_server)
    seen = []
    results = client.generate_many(
        ["one", "two", "three"],
        on_image=lambda i, image: seen.append((i, image.provenance["prompt"])),
    )
    assert len(results) == 3 and seen == [(0, "one"), (1, "two"), (2, "three")]
    assert results[0].array.shape == (48, 64)
    assert [json.loads(r["body"])["prompt"] for r in api_server.requests] == ["one", "two", "three"]


def test_it_cancel_before_request(api_server):
    client, _ = make_client(api_server)
    with pytest.raises(ImageApiCancelled):
        client.generate("a chest x-ray", cancel=lambda: True)
    assert api_server.requests == []


def test_it_cancel_between_images_keeps_finished_ones(api_server):
    client, _ = make_client(api_server)
    event = threading.Event()
    with pytest.raises(ImageApiCancelled) as info:
        client.generate_many(
            ["one", "two", "three"], on_image=lambda i, image: event.set(), cancel=event
        )
    assert len(info.value.completed) == 1 and len(api_server.requests) == 1


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url, key, model, words",
    [
        (None, API_KEY, "m", "base URL"),
        ("http://127.0.0.1:1/v1", "", "m", "API key"),
        ("http://127.0.0.1:1/v1", API_KEY, None, "model"),
        ("", None, "", "base URL, no API key, no model"),
    ],
)
def test_it_not_configured(base_url, key, model, words):
    with pytest.raises(ImageApiConfigError, match="not configured") as info:
        ImageApiClient(base_url, key, model)
    assert words in str(info.value)


def test_it_bad_base_url():
    with pytest.raises(ImageApiConfigError, match="http"):
        ImageApiClient("ftp://example.org/v1", API_KEY, "m")
    with pytest.raises(ImageApiConfigError, match="not in the base URL"):
        ImageApiClient("https://user:pw@example.org/v1", API_KEY, "m")


# -- HTTP errors -------------------------------------------------------------------------------


def test_it_401_is_an_auth_error_without_retry_and_key_is_redacted(api_server):
    api_server.replies = [
        Reply(401, error_body(f"Incorrect API key provided: {API_KEY}.", "invalid_api_key"))
    ]
    client, sleep = make_client(api_server)
    with pytest.raises(ImageApiAuthError) as info:
        client.generate("a chest x-ray")
    assert info.value.status == 401
    assert "rejected the API key" in str(info.value)
    assert "Incorrect API key provided" in str(info.value)
    assert API_KEY not in str(info.value)
    assert len(api_server.requests) == 1 and sleep.calls == []


def test_it_403_is_an_auth_error(api_server):
    api_server.replies = [Reply(403, error_body("This key may not use this model"))]
    client, _ = make_client(api_server)
    with pytest.raises(ImageApiAuthError, match="may not use this model"):
        client.generate("a chest x-ray")


def test_it_400_reports_the_api_message_without_retry(api_server):
    message = "Your request was rejected as a result of our safety system."
    api_server.replies = [Reply(400, error_body(message))]
    client, sleep = make_client(api_server)
    with pytest.raises(ImageApiRequestError) as info:
        client.generate("a chest x-ray")
    assert message in str(info.value) and info.value.status == 400
    assert len(api_server.requests) == 1 and sleep.calls == []


def test_it_404_points_at_the_base_url(api_server):
    api_server.replies = [Reply(404, b"not here")]
    client, _ = make_client(api_server)
    with pytest.raises(ImageApiRequestError, match="check the base URL"):
        client.generate("a chest x-ray")


def test_it_redirects_are_not_followed(api_server):
    api_server.replies = [Reply(302, b"", headers={"Location": "http://127.0.0.1:9/steal"})]
    client, _ = make_client(api_server)
    with pytest.raises(ImageApiRequestError, match="redirect"):
        client.generate("a chest x-ray")
    assert len(api_server.requests) == 1


def test_it_429_then_success_honours_retry_after(api_server):
    api_server.replies = [
        Reply(429, error_body("Rate limit reached"), headers={"Retry-After": "0"}),
        Reply(200, ok_body()),
    ]
    client, sleep = make_client(api_server, backoff_base_s=5.0)
    pixels, provenance = client.generate("a chest x-ray")
    assert pixels.shape == (48, 64)
    assert provenance["attempts"] == 2
    assert sleep.calls == [0.0]  # Retry-After, not the 5 s backoff


def test_it_429_every_time_gives_up_after_max_retries(api_server):
    api_server.replies = [Reply(429, error_body("Rate limit reached"))]
    client, sleep = make_client(api_server, max_retries=3, backoff_base_s=0.01)
    with pytest.raises(ImageApiRateLimitError) as info:
        client.generate("a chest x-ray")
    assert len(api_server.requests) == 4 and info.value.attempts == 4
    assert sleep.calls == pytest.approx([0.01, 0.02, 0.04])  # exponential backoff
    assert "Rate limit reached" in str(info.value) and "4 attempts" in str(info.value)


def test_it_429_with_a_very_long_retry_after_fails_at_once(api_server):
    api_server.replies = [Reply(429, error_body("quota"), headers={"Retry-After": "3600"})]
    client, sleep = make_client(api_server, max_retry_after_s=60)
    with pytest.raises(ImageApiRateLimitError, match="3600"):
        client.generate("a chest x-ray")
    assert len(api_server.requests) == 1 and sleep.calls == []


KEY_HEADER = "Idempotency-Key"


def idempotency_keys(server) -> list[str | None]:
    return [request["headers"].get(KEY_HEADER) for request in server.requests]


def test_it_500_then_success_with_an_idempotency_key(api_server):
    api_server.replies = [Reply(500, error_body("internal error")), Reply(200, ok_body())]
    client, sleep = make_client(api_server, backoff_base_s=0.01, idempotency_header=KEY_HEADER)
    _, provenance = client.generate("a chest x-ray")
    assert provenance["attempts"] == 2 and sleep.calls == [0.01]
    first, second = idempotency_keys(api_server)
    assert first and first == second  # the provider sees one request, not two


def test_it_5xx_every_time_is_a_server_error(api_server):
    api_server.replies = [Reply(503, b"<html>upstream down</html>")]
    client, _ = make_client(api_server, max_retries=1, idempotency_header=KEY_HEADER)
    with pytest.raises(ImageApiServerError, match="HTTP 503") as info:
        client.generate("a chest x-ray")
    assert len(api_server.requests) == 2 and info.value.status == 503


def test_it_slow_reply_times_out_and_is_retried_with_an_idempotency_key(api_server):
    api_server.replies = [Reply(200, ok_body(), delay_s=1.5)]
    client, sleep = make_client(
        api_server, timeout_s=0.2, max_retries=1, idempotency_header=KEY_HEADER
    )
    started = time.monotonic()
    with pytest.raises(ImageApiTimeoutError, match="did not answer within 0.2 s"):
        client.generate("a chest x-ray")
    assert time.monotonic() - started < 1.5
    assert len(api_server.requests) == 2 and len(sleep.calls) == 1
    assert len(set(idempotency_keys(api_server))) == 1


def test_it_slow_then_fast_succeeds(api_server):
    api_server.replies = [Reply(200, ok_body(), delay_s=1.0), Reply(200, ok_body())]
    client, _ = make_client(api_server, timeout_s=0.2, max_retries=2, idempotency_header=KEY_HEADER)
    _, provenance = client.generate("a chest x-ray")
    assert provenance["attempts"] == 2


# -- requests that may have been billed --------------------------------------------------------


@pytest.mark.parametrize(
    "reply, error",
    [
        (Reply(500, error_body("internal error")), ImageApiServerError),
        (Reply(502, b"bad gateway"), ImageApiServerError),
        (Reply(200, ok_body(), delay_s=1.5), ImageApiTimeoutError),  # sent, no reply in time
        (Reply(None), ImageApiConnectionError),  # sent, then the server hung up
    ],
)
def test_it_never_repeats_a_request_that_may_have_been_billed_without_a_key(
    api_server, reply, error
):
    api_server.replies = [reply, Reply(200, ok_body())]
    client, sleep = make_client(api_server, timeout_s=0.3, max_retries=3)
    with pytest.raises(error, match="may already have made and billed the image") as info:
        client.generate("a chest x-ray")
    assert len(api_server.requests) == 1 and sleep.calls == []
    assert info.value.attempts == 1 and "IMAGE_API_IDEMPOTENCY_HEADER" in str(info.value)
    assert idempotency_keys(api_server) == [None]


def test_it_retries_a_hang_up_after_sending_with_the_same_key(api_server):
    api_server.replies = [Reply(None), Reply(None), Reply(200, ok_body())]
    client, sleep = make_client(api_server, max_retries=3, idempotency_header=KEY_HEADER)
    _, provenance = client.generate("a chest x-ray")
    assert provenance["attempts"] == 3 and len(sleep.calls) == 2
    assert len(set(idempotency_keys(api_server))) == 1


def test_it_gives_every_image_its_own_key(api_server):
    client, _ = make_client(api_server, idempotency_header=KEY_HEADER)
    client.generate_many(["one", "two"])
    keys = idempotency_keys(api_server)
    assert len(keys) == 2 and all(keys) and keys[0] != keys[1]


def test_it_retries_408_and_429_without_a_key(api_server):
    # neither made an image: 408, the server gave up waiting for the request; 429, refused
    api_server.replies = [
        Reply(408, b"request timeout"),
        Reply(429, error_body("slow down")),
        Reply(200, ok_body()),
    ]
    client, sleep = make_client(api_server, max_retries=2)
    _, provenance = client.generate("a chest x-ray")
    assert provenance["attempts"] == 3 and len(sleep.calls) == 2


def test_it_rejects_a_bad_idempotency_header_name(api_server):
    with pytest.raises(ImageApiConfigError, match="header name"):
        make_client(api_server, idempotency_header="Idempotency Key:")


# -- backoff -----------------------------------------------------------------------------------


def test_it_backoff_is_fully_jittered_and_capped(api_server):
    api_server.replies = [Reply(429, error_body("Rate limit reached"))]
    draws = iter([0.5, 0.0, 0.25, 0.999])
    client, sleep = make_client(
        api_server, max_retries=4, backoff_base_s=1.0, backoff_max_s=3.0, jitter=lambda: next(draws)
    )
    with pytest.raises(ImageApiRateLimitError):
        client.generate("a chest x-ray")
    # ceilings 1, 2, 4 -> 3 (the cap), 8 -> 3; each wait is the draw times its ceiling
    assert sleep.calls == pytest.approx([0.5, 0.0, 0.75, 2.997])


def test_it_backoff_waits_spread_out_between_zero_and_the_ceiling(api_server):
    api_server.replies = [Reply(429, error_body("Rate limit reached"))]
    waits = SleepRecorder()
    client = ImageApiClient(  # the default jitter source
        api_server.base_url, API_KEY, "m", max_retries=1, backoff_base_s=1.0, sleep=waits
    )
    for _ in range(8):
        with pytest.raises(ImageApiRateLimitError):
            client.generate("a chest x-ray")
    waits = waits.calls
    assert len(waits) == 8 and all(0.0 <= w <= 1.0 for w in waits)
    assert len(set(waits)) > 1  # not one fixed delay: workers that failed together spread out


def test_it_unreachable_host_is_a_connection_error():
    with socket.socket() as sock:  # a free port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleep = SleepRecorder()
    client = ImageApiClient(
        f"http://127.0.0.1:{port}/v1", API_KEY, "m", max_retries=1, backoff_base_s=0.01, sleep=sleep
    )
    with pytest.raises(ImageApiConnectionError, match="could not reach"):
        client.generate("a chest x-ray")
    assert len(sleep.calls) == 1


# -- bad payloads ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, words",
    [
        (b"<html>gateway says hello</html>", "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (json.dumps({"data": []}).encode(), '"data" list'),
        (json.dumps({"result": "ok"}).encode(), '"data" list'),
        (
            json.dumps({"data": [{"url": "https://cdn.example.org/x.png"}]}).encode(),
            "URL instead of base64",
        ),
        (json.dumps({"data": [{"b64_json": "!!!not base64!!!"}]}).encode(), "not valid base64"),
        (
            json.dumps(
                {"data": [{"b64_json": base64.b64encode(b"plain text, no image").decode()}]}
            ).encode(),
            "not a readable image",
        ),
    ],
)
def test_it_malformed_replies_are_clear_errors(api_server, body, words):
    api_server.replies = [Reply(200, body)]
    client, sleep = make_client(api_server)
    with pytest.raises(ImageApiResponseError, match=words):
        client.generate("a chest x-ray")
    assert len(api_server.requests) == 1 and sleep.calls == []


def test_it_oversized_reply_is_refused(api_server):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    api_server.replies = [Reply(200, ok_body(Image.fromarray(noise)))]  # about 5.5 kB of JSON
    client, _ = make_client(api_server, max_response_bytes=1000)
    with pytest.raises(ImageApiResponseError, match="more than 1000 bytes"):
        client.generate("a chest x-ray")


@pytest.mark.parametrize("width, height", [(1, 1), (64, 63), (63, 64)])
def test_it_refuses_an_image_smaller_than_asked_for(api_server, width, height):
    api_server.replies = [Reply(200, ok_body(rgb_test_image(width, height)))]
    client, sleep = make_client(api_server, size="64x64", max_retries=3)
    with pytest.raises(ImageApiResponseError) as info:
        client.generate("a chest x-ray")
    assert f"returned a {width}x{height} image, smaller than the 64x64 asked for" in str(info.value)
    assert len(api_server.requests) == 1 and sleep.calls == []  # billed already: no retry


def test_it_keeps_an_image_at_least_as_large_as_asked_for(api_server):
    api_server.replies = [Reply(200, ok_body(rgb_test_image(80, 64)))]
    client, _ = make_client(api_server, size="64x64")
    assert client.generate("a chest x-ray").array.shape == (64, 80)
    api_server.replies = [Reply(200, ok_body(rgb_test_image(2, 2)))]
    assert client.generate("a chest x-ray", size="auto").array.shape == (2, 2)  # none asked


# -- requests in flight ------------------------------------------------------------------------


@pytest.fixture
def redis_slots_name():
    import redis

    name = f"test:image-api:in-flight:{uuid.uuid4().hex}"
    yield name
    redis.Redis.from_url(REDIS_URL).delete(name)


def wait_for(condition, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _run_clients_against_a_held_server(api_server, make_limit, n_clients: int = 5) -> list:
    """n clients (threads, each with its own limiter object, as separate processes would have)
    ask for one image each while the server holds every reply; returns their results."""
    gate = threading.Event()
    api_server.replies = [Reply(200, ok_body(), gate=gate)]
    results: list = []

    def one_client():
        client, _ = make_client(api_server, in_flight=make_limit())
        results.append(client.generate("a chest x-ray"))

    threads = [threading.Thread(target=one_client) for _ in range(n_clients)]
    for thread in threads:
        thread.start()
    wait_for(lambda: api_server.in_flight == 2, "two requests in flight")
    time.sleep(0.3)  # a third request would arrive now if the limit did not hold it back
    assert api_server.in_flight == 2 and len(api_server.requests) == 2
    gate.set()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_it_bounds_requests_in_flight_across_clients_through_redis(api_server, redis_slots_name):
    results = _run_clients_against_a_held_server(
        api_server, lambda: RedisSlots(REDIS_URL, redis_slots_name, 2, lease_s=60, poll_s=0.01)
    )
    assert len(results) == 5 and len(api_server.requests) == 5
    assert api_server.max_in_flight == 2
    assert RedisSlots(REDIS_URL, redis_slots_name, 2, lease_s=60).holders() == 0  # all given back


def test_it_bounds_requests_in_flight_across_clients_through_lock_files(api_server, tmp_path):
    results = _run_clients_against_a_held_server(
        api_server, lambda: FileSlots(tmp_path / "slots", 2, poll_s=0.01)
    )
    assert len(results) == 5 and len(api_server.requests) == 5
    assert api_server.max_in_flight == 2


def test_it_takes_back_the_slot_of_a_holder_that_died(redis_slots_name):
    dead = RedisSlots(REDIS_URL, redis_slots_name, 1, lease_s=0.2)
    assert dead._try("a-worker-killed-mid-request")  # taken and never given back
    alive = RedisSlots(REDIS_URL, redis_slots_name, 1, lease_s=60, poll_s=0.01)
    assert not alive._try("another-worker")
    with alive.slot():  # waits until the dead holder's lease runs out
        assert alive.holders() == 1


def test_it_cancels_while_waiting_for_a_slot(api_server, tmp_path):
    slots = FileSlots(tmp_path / "slots", 1, poll_s=0.01)
    cancel = threading.Event()
    client, _ = make_client(api_server, in_flight=slots)
    with slots.slot():  # another process holds the only slot
        threading.Timer(0.1, cancel.set).start()
        with pytest.raises(ImageApiCancelled):
            client.generate("a chest x-ray", cancel=cancel)
    assert api_server.requests == []


def test_it_says_when_the_slot_store_is_unreachable(api_server):
    with socket.socket() as sock:  # a free port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    slots = RedisSlots(f"redis://127.0.0.1:{port}/0", "x", 2, lease_s=60)
    client, _ = make_client(api_server, in_flight=slots)
    with pytest.raises(ImageApiConnectionError, match="request-slot store"):
        client.generate("a chest x-ray")
    assert api_server.requests == []


# -- helpers -----------------------------------------------------------------------------------


def test_it_parse_retry_after():
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("-5") == 0.0
    now = time.time()
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after("soon") is None


def test_it_grayscale_conversion_of_other_modes():
    rgba = Image.new("RGBA", (4, 2), (200, 200, 200, 0))
    assert np.all(to_grayscale_uint8(rgba) == 0)  # transparent -> black
    gray16 = Image.fromarray(np.array([[0, 1000], [2000, 4000]], dtype=np.uint16))
    assert to_grayscale_uint8(gray16).tolist() == [[0, 64], [128, 255]]
    jpeg = Image.open(io.BytesIO(base64.b64decode(png_b64(rgb_test_image(), "JPEG"))))
    assert to_grayscale_uint8(jpeg).shape == (48, 64)
