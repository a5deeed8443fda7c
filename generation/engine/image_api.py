"""The "image-api" generator kind: a hosted, OpenAI-compatible images endpoint.

Pure Python, standard library HTTP (urllib) plus Pillow and numpy; no Django here. The client is
off unless configured: building it without a base URL, key or model raises ImageApiConfigError.

One request per image:

    POST {base_url}/images/generations
    Authorization: Bearer <key>
    {"model": ..., "prompt": ..., "n": 1, "size": "1024x1024", "response_format": "b64_json"}

and the reply must carry `data[0].b64_json` (image URLs are not fetched: that would mean a second
request to a host we do not know). The image is decoded with Pillow and returned as a grayscale
uint8 (H, W) array with a provenance dict, the same shape of result as the local engines.

Failures become one of the ImageApiError subclasses below, with a message a study admin can act
on. Retries (up to `max_retries`, waiting a fully jittered exponential backoff) only where they
cannot cost a second image: a 429 (honouring Retry-After), a 408 and a connection that failed
before the request was sent. A request that reached the API and then failed (5xx, a reply that
timed out or broke off) may already have been billed, so it is retried only when the provider
takes an idempotency key (`idempotency_header`): then every attempt for one image carries the
same key, and the provider answers a repeat with the first result instead of billing again.
400/401/403/404 are never retried, nor is an image smaller than the size asked for. The API key
is never put in an error message or in provenance. Hosted image APIs take no seed, so
provenance says `seed: None` and such images cannot be regenerated.

`in_flight` (generation.engine.inflight) bounds how many requests are in flight at once across
every worker process; a slot is held from just before sending until the reply is read.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import http.client
import io
import json
import platform
import random
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import numpy as np
import PIL
from PIL import Image, UnidentifiedImageError

from generation.engine.cancellation import cancel_requested
from generation.engine.inflight import InFlightCancelled, InFlightError, InFlightLimit

GENERATOR_KIND = "image-api"
GENERATIONS_PATH = "/images/generations"
REQUEST_ID_HEADERS = (
    "x-request-id",
    "request-id",
    "openai-request-id",
    "apim-request-id",
    "x-amzn-requestid",
)
_SIZE_RE = re.compile(r"^(\d+)x(\d+)$")
# RFC 9110 token characters: what a header name may be made of
_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class ImageApiError(Exception):
    """Base class. `status` is the HTTP status if there was one; `attempts` how many requests
    were made."""

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 0):
        super().__init__(message)
        self.status = status
        self.attempts = attempts


class ImageApiConfigError(ImageApiError):
    """The client is not configured (no base URL, key or model) or configured wrongly."""


class ImageApiAuthError(ImageApiError):
    """401 / 403: the API key is wrong, expired or not allowed to use this model."""


class ImageApiRequestError(ImageApiError):
    """400 and other 4xx: the API refused this request (bad prompt, bad size, unknown model...)."""


class ImageApiRateLimitError(ImageApiError):
    """429 still returned after every retry."""


class ImageApiServerError(ImageApiError):
    """5xx still returned after every retry."""


class ImageApiTimeoutError(ImageApiError):
    """No complete reply within timeout_s, on every attempt."""


class ImageApiConnectionError(ImageApiError):
    """The host could not be reached, on every attempt."""


class ImageApiResponseError(ImageApiError):
    """A 2xx reply that is not JSON, has no base64 image, or whose payload is not an image."""


class ImageApiCancelled(ImageApiError):
    """`cancel` fired; `completed` holds the images finished before it (generate_many)."""

    def __init__(self, message: str, *, completed: list | None = None, attempts: int = 0):
        super().__init__(message, attempts=attempts)
        self.completed = completed or []


class GeneratedImage(NamedTuple):
    """One synthetic image: a grayscale uint8 (H, W) array and its provenance dict (the same
    two attributes as the local engines' results; also unpacks as a pair)."""

    array: np.ndarray
    provenance: dict


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Never follow redirects: urllib would resend the Authorization header to the new host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class _Retry(Exception):
    """Internal: a failure that may be retried, with the error to raise if it is not.

    `maybe_billed`: the request reached the API, which may have made (and billed) the image."""

    def __init__(
        self, error: ImageApiError, delay_s: float | None = None, *, maybe_billed: bool = False
    ):
        super().__init__(str(error))
        self.error = error
        self.delay_s = delay_s
        self.maybe_billed = maybe_billed


def _parsed_base_url(base_url: str | None, api_key: str | None, model: str | None):
    """The split base URL; ImageApiConfigError when the client is not configured or wrongly."""
    missing = [
        name
        for name, value in (("base URL", base_url), ("API key", api_key), ("model", model))
        if not value or not str(value).strip()
    ]
    if missing:
        raise ImageApiConfigError(
            "the image-api generator is not configured: no " + ", no ".join(missing) + " set"
        )
    parsed = urllib.parse.urlsplit(str(base_url).strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ImageApiConfigError(f"image API base URL must be an http(s) URL, not {base_url!r}")
    if parsed.username or parsed.password:
        raise ImageApiConfigError("put the API key in the key setting, not in the base URL")
    return parsed


def to_grayscale_uint8(image: Image.Image) -> np.ndarray:
    """A decoded Pillow image -> grayscale uint8 (H, W). Transparent areas become black; 16-bit
    and 32-bit grayscale are rescaled from their own min..max."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        low, high = float(array.min()), float(array.max())
        if high <= low:
            return np.zeros(array.shape, dtype=np.uint8)
        return np.clip(np.rint((array - low) / (high - low) * 255.0), 0, 255).astype(np.uint8)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(image.convert("L"), dtype=np.uint8))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else time.time()
    return max(0.0, when.timestamp() - current)


class ImageApiClient:
    """Client for an OpenAI-compatible `/images/generations` endpoint.

    `base_url` includes the API version path, e.g. "https://api.openai.com/v1". Retries: up to
    `max_retries` extra attempts after a 429, a 408 or a connection that failed before sending,
    and, only with an `idempotency_header` (e.g. "Idempotency-Key"; the same random key on every
    attempt for one image), after 5xx / a timed-out or broken reply too. The wait before
    attempt k+1 is drawn uniformly from [0, min(backoff_max_s, backoff_base_s * 2**(k-1))]
    ("full jitter", so workers that failed together do not retry together), or the server's
    Retry-After on 429 when it asks for no more than `max_retry_after_s`. `in_flight` bounds the
    requests in flight across processes (generation.engine.inflight). `sleep` and `jitter` (a
    function returning a float in [0, 1]) are injectable for tests.
    `send_response_format=False` leaves "response_format" out of the request, for models that
    always answer in base64 and reject the field. `extra_params` are merged into every request
    body (e.g. {"quality": "high"}).
    """

    kind = GENERATOR_KIND

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        model: str | None,
        *,
        timeout_s: float = 120.0,
        max_retries: int = 3,
        size: str = "1024x1024",
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        max_retry_after_s: float = 120.0,
        send_response_format: bool = True,
        extra_params: dict[str, Any] | None = None,
        max_response_bytes: int = 64 * 1024 * 1024,
        idempotency_header: str = "",
        in_flight: InFlightLimit | None = None,
        sleep: Callable[[float], Any] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ):
        parsed = _parsed_base_url(base_url, api_key, model)
        if timeout_s <= 0:
            raise ImageApiConfigError("timeout_s must be positive")
        if max_retries < 0:
            raise ImageApiConfigError("max_retries must be 0 or more")
        self._check_size(size)
        idempotency_header = str(idempotency_header or "").strip()
        if idempotency_header and not _HEADER_NAME_RE.match(idempotency_header):
            raise ImageApiConfigError(
                f"the idempotency header must be an HTTP header name, not {idempotency_header!r}"
            )
        self.base_url = urllib.parse.urlunsplit(
            (parsed.scheme, parsed.netloc, parsed.path.rstrip("/"), "", "")
        )
        self.host = parsed.netloc
        self.endpoint = self.base_url + GENERATIONS_PATH
        self.__api_key = str(api_key).strip()
        self.model = str(model).strip()
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.size = size
        self.backoff_base_s = float(backoff_base_s)
        self.backoff_max_s = float(backoff_max_s)
        self.max_retry_after_s = float(max_retry_after_s)
        self.send_response_format = send_response_format
        self.extra_params = dict(extra_params or {})
        self.max_response_bytes = int(max_response_bytes)
        self.idempotency_header = idempotency_header
        self.in_flight = in_flight
        self._sleep = sleep
        self._jitter = jitter
        self._opener = urllib.request.build_opener(_NoRedirects())

    def __repr__(self) -> str:  # never show the key
        return f"ImageApiClient(host={self.host!r}, model={self.model!r})"

    @staticmethod
    def _check_size(size: str) -> None:
        if size != "auto" and not _SIZE_RE.match(str(size)):
            raise ImageApiConfigError(
                f'image size must look like "1024x1024" (or "auto"), not {size!r}'
            )

    def _redact(self, text: str) -> str:
        return text.replace(self.__api_key, "***") if self.__api_key else text

    # -- public --------------------------------------------------------------------------------

    def generate(
        self,
        prompt: str,
        *,
        size: str | None = None,
        cancel: Any = None,
    ) -> GeneratedImage:
        """One image for `prompt`; raises an ImageApiError subclass on failure. `cancel` (a
        callable returning True or an object with is_set()) is checked before every attempt."""
        if not prompt or not str(prompt).strip():
            raise ImageApiRequestError("the prompt is empty")
        size = size or self.size
        self._check_size(size)
        payload: dict[str, Any] = {"model": self.model, "prompt": str(prompt), "n": 1, "size": size}
        if self.send_response_format:
            payload["response_format"] = "b64_json"
        payload.update(self.extra_params)
        body = json.dumps(payload).encode("utf-8")
        # one key for every attempt at this image: a repeat is the same request to the provider
        extra = {self.idempotency_header: uuid.uuid4().hex} if self.idempotency_header else {}

        attempt = 0
        while True:
            if cancel_requested(cancel):
                raise ImageApiCancelled("image generation cancelled", attempts=attempt)
            attempt += 1
            try:
                status, headers, raw = self._send(body, extra, cancel)
                return self._handle(
                    status, headers, raw, prompt=str(prompt), size=size, attempts=attempt
                )
            except ImageApiError as error:
                error.attempts = error.attempts or attempt
                raise
            except _Retry as retry:
                self._sleep(self._retry_delay(retry, attempt))

    def _retry_delay(self, retry: _Retry, attempt: int) -> float:
        """Seconds to wait before the next attempt; raises the failure when none may follow."""
        failure = retry.error
        failure.attempts = attempt
        if retry.maybe_billed and not self.idempotency_header and self.max_retries:
            failure.args = (
                f"{failure.args[0]}; not retried: the request reached the API, which may already "
                "have made and billed the image (set IMAGE_API_IDEMPOTENCY_HEADER if the "
                "provider takes idempotency keys)",
            )
            raise failure from None
        if attempt > self.max_retries:
            if attempt > 1:
                failure.args = (f"{failure.args[0]} (gave up after {attempt} attempts)",)
            raise failure from None
        if retry.delay_s is not None:  # the server said how long
            return min(max(0.0, retry.delay_s), self.backoff_max_s)
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
        return ceiling * min(1.0, max(0.0, float(self._jitter())))

    def generate_many(
        self,
        prompts: Sequence[str],
        *,
        size: str | None = None,
        on_image: Callable[[int, GeneratedImage], Any] | None = None,
        cancel: Any = None,
    ) -> list[GeneratedImage]:
        """One image per prompt, in order; `on_image(index, image)` as each arrives. If `cancel`
        fires, ImageApiCancelled is raised holding the images already made."""
        results: list[GeneratedImage] = []
        for index, prompt in enumerate(prompts):
            try:
                image = self.generate(prompt, size=size, cancel=cancel)
            except ImageApiCancelled as exc:
                exc.completed = list(results)
                raise
            results.append(image)
            if on_image is not None:
                on_image(index, image)
        return results

    # -- HTTP ----------------------------------------------------------------------------------

    def _send(self, body: bytes, extra: dict[str, str], cancel: Any) -> tuple[int, Any, bytes]:
        """One POST, inside an in-flight slot when a limit is set."""
        if self.in_flight is None:
            return self._post(body, extra)
        try:
            with self.in_flight.slot(cancel):
                return self._post(body, extra)
        except InFlightCancelled:
            raise ImageApiCancelled("image generation cancelled") from None
        except InFlightError as error:
            raise ImageApiConnectionError(str(error)) from None

    def _post(self, body: bytes, extra: dict[str, str]) -> tuple[int, Any, bytes]:
        request = urllib.request.Request(
            self.endpoint,
            data=body,
            method="POST",
            headers={
                "Authorization": f"Bearer {self.__api_key}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": "spot-the-fake image-api client",
                **extra,
            },
        )
        deadline = time.monotonic() + self.timeout_s
        try:
            try:
                response = self._opener.open(request, timeout=self.timeout_s)
            except urllib.error.HTTPError as err:  # a non-2xx reply: still read its body
                response = err
            with response:
                raw = self._read(response, deadline)
            status = getattr(response, "status", None) or response.code
            return int(status), response.headers, raw
        # urllib wraps in URLError only what fails while connecting or sending the request, so
        # the API never had the whole request: nothing can have been billed. Anything later
        # (waiting for or reading the reply) came after the request was sent.
        except urllib.error.URLError as err:
            if isinstance(err.reason, (TimeoutError, socket.timeout)):
                raise self._timeout(maybe_billed=False) from None
            raise _Retry(
                ImageApiConnectionError(
                    f"could not reach the image API at {self.host}: {self._redact(str(err.reason))}"
                )
            ) from None
        except TimeoutError:
            raise self._timeout(maybe_billed=True) from None
        except (OSError, http.client.HTTPException) as err:
            raise _Retry(
                ImageApiConnectionError(
                    f"the connection to the image API at {self.host} failed after the request "
                    f"was sent: {err.__class__.__name__} {self._redact(str(err))}".strip()
                ),
                maybe_billed=True,
            ) from None

    def _timeout(self, *, maybe_billed: bool) -> _Retry:
        return _Retry(
            ImageApiTimeoutError(
                f"the image API at {self.host} did not answer within {self.timeout_s:g} s"
            ),
            maybe_billed=maybe_billed,
        )

    def _read(self, response, deadline: float) -> bytes:
        """Read the body in chunks, enforcing the overall deadline and the size limit."""
        chunks: list[bytes] = []
        total = 0
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError("overall deadline passed")
            chunk = response.read(1 << 16)
            if not chunk:
                return b"".join(chunks)
            total += len(chunk)
            if total > self.max_response_bytes:
                raise ImageApiResponseError(
                    f"the image API at {self.host} sent more than {self.max_response_bytes} bytes"
                )
            chunks.append(chunk)

    # -- replies -------------------------------------------------------------------------------

    def _api_message(self, raw: bytes) -> str:
        """The error message an OpenAI-style API put in its body, or the start of the body."""
        text = raw.decode("utf-8", errors="replace").strip()
        message = ""
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            error = data.get("error")
            if isinstance(error, dict):
                message = str(error.get("message") or error.get("code") or error.get("type") or "")
            elif isinstance(error, str):
                message = error
            if not message:
                message = str(data.get("message") or data.get("detail") or "")
        if not message:
            message = text[:300]
        return self._redact(" ".join(message.split()))

    def _handle(
        self, status: int, headers, raw: bytes, *, prompt: str, size: str, attempts: int
    ) -> GeneratedImage:
        if 200 <= status < 300:
            return self._decode(headers, raw, prompt=prompt, size=size, attempts=attempts)
        message = self._api_message(raw)
        detail = f": {message}" if message else ""
        if status in (401, 403):
            what = (
                "rejected the API key"
                if status == 401
                else "refused access (403) for this key or model"
            )
            raise ImageApiAuthError(
                f"the image API at {self.host} {what}{detail}", status=status, attempts=attempts
            )
        if status == 429:
            wait = parse_retry_after(headers.get("Retry-After") if headers else None)
            error = ImageApiRateLimitError(
                f"the image API at {self.host} is rate limiting requests (429){detail}",
                status=status,
            )
            if wait is not None and wait > self.max_retry_after_s:
                error.args = (
                    f"{error.args[0]}; it asks to wait {wait:.0f} s, longer than {self.max_retry_after_s:g} s",
                )
                error.attempts = attempts
                raise error
            raise _Retry(error, delay_s=wait)
        if status >= 500 or status == 408:
            raise _Retry(
                ImageApiServerError(
                    f"the image API at {self.host} failed with HTTP {status}{detail}", status=status
                ),
                # 408: the server gave up waiting for the request, so it made nothing
                maybe_billed=status != 408,
            )
        if 300 <= status < 400:
            location = headers.get("Location", "?") if headers else "?"
            raise ImageApiRequestError(
                f"the image API at {self.host} redirected to {location}; redirects are not followed "
                "(check the base URL)",
                status=status,
                attempts=attempts,
            )
        if status == 404:
            raise ImageApiRequestError(
                f"{self.endpoint} was not found (404); check the base URL (it usually ends in /v1){detail}",
                status=status,
                attempts=attempts,
            )
        raise ImageApiRequestError(
            f"the image API at {self.host} refused the request (HTTP {status}){detail}",
            status=status,
            attempts=attempts,
        )

    def _decode(
        self, headers, raw: bytes, *, prompt: str, size: str, attempts: int
    ) -> GeneratedImage:
        def bad(message: str) -> ImageApiResponseError:
            return ImageApiResponseError(
                f"the image API at {self.host} {message}", status=200, attempts=attempts
            )

        data, item = _first_item(raw, bad)
        image_bytes = _image_bytes(item, bad)
        array, image_format, image_mode = _read_image(image_bytes, bad)
        _check_image_size(array, size, bad)
        request_id = _request_id(headers)
        revised = item.get("revised_prompt")
        height, width = array.shape
        provenance = {
            "generator": GENERATOR_KIND,
            "api_host": self.host,
            "endpoint_path": urllib.parse.urlsplit(self.endpoint).path,
            "model": self.model,
            "prompt": prompt,
            "revised_prompt": revised if isinstance(revised, str) else None,
            "size": size,
            "width": int(width),
            "height": int(height),
            "resolution": int(width) if width == height else f"{width}x{height}",
            "seed": None,
            "seed_note": "hosted image APIs take no seed; this image cannot be regenerated",
            "request_id": request_id,
            "api_created": data.get("created")
            if isinstance(data.get("created"), (int, float))
            else None,
            "attempts": attempts,
            "returned_format": image_format,
            "returned_mode": image_mode,
            "returned_sha256": hashlib.sha256(image_bytes).hexdigest(),
            "color": "grayscale (Pillow 'L' conversion; transparency composited on black)",
            "library_versions": {"python": platform.python_version(), "pillow": PIL.__version__},
            "created_at": datetime.now(UTC).isoformat(),
        }
        return GeneratedImage(array, provenance)


def _first_item(raw: bytes, bad: Callable[[str], Exception]) -> tuple[dict, dict]:
    """The reply's JSON and its first image entry."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        snippet = raw[:60].decode("utf-8", errors="replace")
        raise bad(f"sent a reply that is not JSON (starts {snippet!r})") from None
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items or not isinstance(items[0], dict):
        raise bad('sent JSON without a "data" list of images')
    return data, items[0]


def _image_bytes(item: dict, bad: Callable[[str], Exception]) -> bytes:
    """The image's bytes from its base64 field (URLs are refused: nothing is downloaded)."""
    encoded = item.get("b64_json")
    if not encoded:
        if item.get("url"):
            raise bad(
                "returned an image URL instead of base64 data; this client asks for "
                'response_format "b64_json" and does not download URLs'
            )
        raise bad('sent no "b64_json" image data')
    if not isinstance(encoded, str):
        raise bad('sent "b64_json" that is not a string')
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise bad('sent "b64_json" that is not valid base64') from None


def _read_image(image_bytes: bytes, bad: Callable[[str], Exception]):
    """(grayscale uint8 array, format, mode) of the returned image."""
    try:
        with Image.open(io.BytesIO(image_bytes)) as image:
            image.load()
            return to_grayscale_uint8(image), image.format, image.mode
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise bad(
            f"sent base64 data that is not a readable image ({exc.__class__.__name__})"
        ) from None


def _check_image_size(array: np.ndarray, size: str, bad: Callable[[str], Exception]) -> None:
    """Refuse an image smaller than the size asked for (larger ones are kept as they are)."""
    match = _SIZE_RE.match(size)
    if match is None:  # "auto": nothing was asked for
        return
    width, height = int(match.group(1)), int(match.group(2))
    got_height, got_width = array.shape
    if got_width < width or got_height < height:
        raise bad(
            f"returned a {got_width}x{got_height} image, smaller than the {size} asked for "
            "(IMAGE_API_SIZE); it was not stored"
        )


def _request_id(headers) -> str | None:
    if headers is None:
        return None
    for name in REQUEST_ID_HEADERS:
        if headers.get(name):
            return headers.get(name)
    return None
