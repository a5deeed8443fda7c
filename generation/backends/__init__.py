"""One backend per generator kind, found by kind and imported on first use.

A backend knows everything that differs between kinds: which settings a run takes, what the
staff forms ask for and check, how the model folder is laid out, and how to train and sample.
The rest of the app asks the backend (``backend_for(generator.kind).takes_prompt``, ...)
instead of comparing kinds, so a new kind is one new module and one line in ``BACKENDS``.

The registry names dotted paths rather than classes so that importing it costs nothing; a
backend module itself imports no torch either: the engines are imported inside ``train`` and
``generate``, which only Celery workers and management commands call.
"""

from __future__ import annotations

from functools import cache

from django.utils.module_loading import import_string

from generation.backends.base import Backend, JobError, Stopped

BACKENDS: dict[str, str] = {
    "ddpm": "generation.backends.ddpm.DDPMBackend",
    "stable-diffusion": "generation.backends.stable_diffusion.StableDiffusionBackend",
    "image-api": "generation.backends.image_api.ImageApiBackend",
}

__all__ = ["BACKENDS", "Backend", "JobError", "Stopped", "backend_for", "trainable_kinds"]


@cache
def backend_for(kind: str) -> Backend:
    """The backend of generator kind `kind`; JobError for a kind nobody registered."""
    path = BACKENDS.get(str(kind))
    if path is None:
        raise JobError(f"unknown generator kind {kind!r}")
    return import_string(path)()


def trainable_kinds() -> list[str]:
    return [kind for kind in BACKENDS if backend_for(kind).trainable]
