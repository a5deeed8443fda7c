"""The errors the Stable Diffusion engine raises on purpose (messages are for the researcher)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .generator import GeneratedImage


class StableDiffusionError(Exception):
    """Base class for every error this engine raises on purpose."""


class CheckpointError(StableDiffusionError):
    """The base checkpoint folder or LoRA folder is missing, incomplete or of the wrong kind."""


class GenerationCancelled(StableDiffusionError):
    """Sampling stopped because `cancel` fired; `completed` holds the images finished before it."""

    def __init__(self, message: str, completed: list[GeneratedImage]):
        super().__init__(message)
        self.completed = completed


class TrainingDivergedError(StableDiffusionError):
    """The training loss became NaN or infinite."""
