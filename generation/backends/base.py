"""What every generator backend offers, and what the tasks hand it to train or sample with.

No torch and no engine imports here (the web process reads these classes).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from generation.models import GenerationJob, GeneratorModel, TrainingRun
    from generation.runner import JobRunner


def model_findings(generator: GeneratorModel) -> list[str]:
    """The class labels a model was trained on (its folder's list once it has one)."""
    return [str(f) for f in (generator.config or {}).get("findings") or generator.findings or []]


class JobError(Exception):
    """A job cannot run as configured; the message is for the researcher."""


class Stopped(Exception):
    """Sampling stopped early because the runner asked it to (cancel, time limit, lost)."""


@dataclass(frozen=True)
class FolderLayout:
    """Where a kind keeps its checkpoints, weights, grids and loss log in a model folder."""

    checkpoints: list[tuple[int, Path]]
    weights: str
    marker: str
    grid: str | None
    loss_log: Path | None


@dataclass
class TrainingSession:
    """One attempt at a training run, as the task sets it up for the backend."""

    run: TrainingRun
    generator: GeneratorModel
    params: dict[str, Any]
    device: str | None
    runner: JobRunner
    # called with (step, total, loss, checkpoint_every) after every optimizer step
    on_step: Callable[[int, int, float, int], None]

    def step_callback(self, checkpoint_every: int) -> Callable[[int, int, float], None]:
        def on_step(step: int, total: int, loss: float) -> None:
            self.on_step(step, total, loss, checkpoint_every)

        return on_step

    def cancel(self) -> bool:
        return self.runner.should_stop()


@dataclass(frozen=True)
class TrainingOutcome:
    stopped: bool
    step: int
    last_loss: float | None


@dataclass
class GenerationSession:
    """The missing images of a generation job: one seed each, stored as they come."""

    job: GenerationJob
    generator: GeneratorModel
    seeds: list[int]
    device: str | None
    store: Callable[[int, Any], None]
    cancel: Callable[[], bool]
    prompt: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Backend(ABC):
    """One generator kind. Subclasses set the class attributes and override what differs."""

    kind: ClassVar[str]
    # the classifier-free guidance scale a generation job gets when none is asked for; each kind
    # declares its own (what suits a small class-conditional model does not suit Stable Diffusion)
    default_guidance: ClassVar[float]
    trainable: ClassVar[bool] = True
    untrainable_reason: ClassVar[str] = ""
    # a text-to-image model (prompt, or a finding to build one from) vs a class-conditional one
    takes_prompt: ClassVar[bool] = True
    takes_negative_prompt: ClassVar[bool] = False
    # runs on this worker's device (False: a remote service; no device to describe)
    runs_locally: ClassVar[bool] = True
    needs_base_checkpoint: ClassVar[bool] = False
    # rows of this kind are made by training only, never added by hand in the admin
    made_by_training: ClassVar[bool] = False
    # settings a training run of this kind takes (besides COMMON_PARAMS)
    training_params: ClassVar[frozenset[str]] = frozenset()
    # model-level files shared with other workers, and checkpoint-independent folders
    model_level_files: ClassVar[tuple[str, ...]] = ()
    shared_folders: ClassVar[tuple[str, ...]] = ()
    loss_log_name: ClassVar[str] = ""
    # the TrainForm fields only this kind uses
    train_form_fields: ClassVar[tuple[str, ...]] = ()
    # train_model's options only this kind takes: option -> run param (None: not a run param)
    command_options: ClassVar[dict[str, str | None]] = {}

    COMMON_PARAMS: ClassVar[frozenset[str]] = frozenset({"findings", "device", "gpus"})
    # whether a training run may ask for several GPUs of its worker (param "gpus")
    multi_gpu: ClassVar[bool] = False

    # --- parameters ---------------------------------------------------------------------

    def check_params(self, params: dict[str, Any]) -> None:
        """JobError naming any setting this kind does not take (None values ignored)."""
        known = self.training_params | self.COMMON_PARAMS
        unknown = sorted(k for k, v in params.items() if k not in known and v not in (None, ""))
        if unknown:
            raise JobError(
                f"unknown training setting(s) for a {self.kind} model: {', '.join(unknown)}"
            )
        self.check_gpus(params.get("gpus"))

    def check_gpus(self, gpus: Any) -> int:
        """The number of training processes a run asks for (1 when unset); JobError if bad."""
        if gpus in (None, ""):
            return 1
        if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
            raise JobError(f"gpus must be a whole number of at least 1, not {gpus!r}")
        if gpus > 1 and not self.multi_gpu:
            raise JobError(
                f"a {self.kind} model does not train on this host's GPUs; several GPUs per run "
                f"are for pixel diffusion and Stable Diffusion LoRA runs"
            )
        return gpus

    def check_sampling_request(
        self, generator: GeneratorModel, *, finding: str, prompt: str, negative_prompt: str
    ) -> str:
        """JobError for a request this model cannot make; returns the finding to store."""
        if not prompt and not finding:
            raise JobError(
                f"model {generator.name!r} is a text-to-image model: give a prompt or a finding "
                f"(a prompt is then built from it)"
            )
        return finding

    # --- the train_model command ----------------------------------------------------------

    def set_up_new(self, generator: GeneratorModel, options: dict[str, Any]) -> None:
        """Fill in a new model row from the command's options; JobError when they cannot do."""
        return None  # an optional hook: nothing to do unless a kind says otherwise

    def check_run(self, generator: GeneratorModel, params: dict[str, Any], options: dict) -> None:
        """JobError for a run of `generator` with these settings that would fail at once."""
        return None  # an optional hook: nothing to do unless a kind says otherwise

    # --- the staff forms ------------------------------------------------------------------

    def clean_train_form(self, form: Any, data: dict[str, Any]) -> None:
        """Add this kind's errors to the TrainForm (`form.add_error`)."""
        return None  # an optional hook: nothing to do unless a kind says otherwise

    def fixed_on_continue(self, generator: GeneratorModel, data: dict[str, Any]) -> dict:
        """name -> (stored, asked) of the settings that continuing a model cannot change."""
        return {}

    def base_checkpoint_from(self, data: dict[str, Any]) -> str:
        return ""

    def train_form_params(self, data: dict[str, Any]) -> dict[str, Any]:
        """The run's settings from a valid TrainForm, named as the backend's `train` reads them."""
        params = {"batch_size": data["batch_size"], "lr": data["learning_rate"]}
        if (data.get("gpus") or 1) > 1:
            params["gpus"] = data["gpus"]
        return params

    def usable_for_generation(self, generator: GeneratorModel) -> bool:
        """Whether the Generate form offers the model: it can make images now."""
        return True

    def clean_generate_form(
        self, form: Any, generator: GeneratorModel, data: dict[str, Any]
    ) -> None:
        """Add this kind's errors to the GenerateForm."""
        if not data.get("prompt") and not data.get("finding"):
            form.add_error("prompt", "Give a prompt, or a finding to build one from.")

    # --- the model folder -----------------------------------------------------------------

    def folder_layout(self, folder: Path) -> FolderLayout:
        return FolderLayout([], "", "", None, None)

    def checkpoint_entries(self, folder: Path) -> list[dict]:
        """[{step, path, weights_sha256}] of the complete checkpoints in `folder`, oldest first."""
        return []

    def grid_note(self, generator: GeneratorModel) -> str:
        """What the model page says a sample grid of this kind shows."""
        findings = ", ".join(model_findings(generator))
        return f"One row per finding ({findings})" if findings else "One row per finding"

    def can_sample_here(self, generator: GeneratorModel) -> None:
        """Raise (with a message for the researcher) when this machine cannot sample."""
        return None  # an optional hook: nothing to do unless a kind says otherwise

    # --- running (Celery workers and commands only) ---------------------------------------

    def describe_device(self, device: str | None) -> str:
        if not self.runs_locally:
            return "remote API"
        from generation.engine.devices import describe_device

        return describe_device(device)

    def engine_errors(self) -> tuple[type[BaseException], ...]:
        """Exceptions whose message is meant for the researcher."""
        return ()

    def train(self, session: TrainingSession) -> TrainingOutcome:
        raise JobError(f"a {self.kind} model cannot be trained")

    @abstractmethod
    def generate(self, session: GenerationSession) -> None:
        """Make one image per seed, handing each to `session.store`; Stopped when cancelled.

        Every kind generates (training is optional, see `train`), so each backend must say how.
        """
