"""A hosted text-to-image API (generation.engine.image_api): nothing to train, nothing on disk."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from generation.backends.base import Backend, GenerationSession, JobError, Stopped

if TYPE_CHECKING:
    from generation.models import GeneratorModel


class ImageApiBackend(Backend):
    kind = "image-api"
    # a hosted API takes no guidance scale: 0 records that none was used
    default_guidance = 0.0
    trainable = False
    runs_locally = False

    untrainable_reason = "a hosted image API model cannot be trained"

    def check_sampling_request(
        self, generator: GeneratorModel, *, finding: str, prompt: str, negative_prompt: str
    ) -> str:
        from django.conf import settings

        finding = super().check_sampling_request(
            generator, finding=finding, prompt=prompt, negative_prompt=negative_prompt
        )
        if not settings.IMAGE_API_BASE_URL:
            raise JobError(
                "the hosted image API is not configured: set IMAGE_API_BASE_URL, IMAGE_API_KEY "
                "and IMAGE_API_MODEL on the workers and the web server"
            )
        return finding

    def clean_generate_form(
        self, form: Any, generator: GeneratorModel, data: dict[str, Any]
    ) -> None:
        super().clean_generate_form(form, generator, data)
        if data.get("negative_prompt"):
            form.add_error("negative_prompt", "The image API takes no negative prompt.")

    def in_flight_limit(self) -> Any:
        """The slots bounding requests in flight: in Redis when the project has it (shared by
        every worker host), else lock files on this host."""
        import tempfile
        from pathlib import Path

        from django.conf import settings

        from generation.engine.inflight import FileSlots, RedisSlots

        limit = settings.IMAGE_API_MAX_IN_FLIGHT
        if settings.REDIS_URL:
            host = settings.IMAGE_API_BASE_URL.split("//", 1)[-1].split("/", 1)[0]
            return RedisSlots(
                settings.REDIS_URL,
                f"spotthefake:image-api:in-flight:{host}",
                limit,
                # longer than any request may last (connect, then the reply's deadline)
                lease_s=2 * settings.IMAGE_API_TIMEOUT_S + 60,
            )
        return FileSlots(Path(tempfile.gettempdir()) / "spotthefake-image-api-slots", limit)

    def engine_errors(self) -> tuple[type[BaseException], ...]:
        from generation.engine.image_api import ImageApiError

        return (ImageApiError,)

    def generate(self, session: GenerationSession) -> None:
        from django.conf import settings

        from generation.engine.image_api import ImageApiCancelled, ImageApiClient

        client = ImageApiClient(
            settings.IMAGE_API_BASE_URL,
            settings.IMAGE_API_KEY,
            settings.IMAGE_API_MODEL,
            timeout_s=settings.IMAGE_API_TIMEOUT_S,
            max_retries=settings.IMAGE_API_MAX_RETRIES,
            size=settings.IMAGE_API_SIZE,
            idempotency_header=settings.IMAGE_API_IDEMPOTENCY_HEADER,
            in_flight=self.in_flight_limit(),
        )
        try:
            client.generate_many(
                [session.prompt] * len(session.seeds), on_image=session.store, cancel=session.cancel
            )
        except ImageApiCancelled:
            raise Stopped() from None
