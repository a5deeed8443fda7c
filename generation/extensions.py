"""Where a higher app plugs into generation without this app importing it.

Apps above generation (the evaluation app) fill these in from their ``AppConfig.ready``.
Registering the same name again replaces the earlier entry, so ``ready`` may run twice.
A finished job is announced by the ``generation.signals.generation_succeeded`` signal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: name -> provider(generator=...): extra context of a model's page.
_model_panels: dict[str, Callable[..., Any]] = {}
#: name -> provider(job=...): extra context of a generation job's page.
_job_panels: dict[str, Callable[..., Any]] = {}


def register_model_panel(name: str, provider: Callable[..., Any]) -> None:
    """Put ``provider(generator=generator)`` into a model page's context as ``name``."""
    _model_panels[name] = provider


def register_job_panel(name: str, provider: Callable[..., Any]) -> None:
    """Put ``provider(job=job)`` into a generation job page's context as ``name``."""
    _job_panels[name] = provider


def model_panels(generator) -> dict[str, Any]:
    return {name: provider(generator=generator) for name, provider in _model_panels.items()}


def job_panels(job) -> dict[str, Any]:
    return {name: provider(job=job) for name, provider in _job_panels.items()}
