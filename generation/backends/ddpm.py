"""Pixel-space DDPM trained from scratch, class-conditional on the findings (generation.engine)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from generation.backends.base import (
    Backend,
    FolderLayout,
    GenerationSession,
    JobError,
    Stopped,
    TrainingOutcome,
    TrainingSession,
    model_findings,
)
from generation.engine import legacy

if TYPE_CHECKING:
    from generation.models import GeneratorModel

# Run params read by the engine's TrainingConfig (the same names as its fields).
TRAINING_PARAMS = frozenset({
    "batch_size", "grad_accum", "lr", "warmup_steps", "weight_decay", "ema_decay",
    "label_dropout", "checkpoint_every", "keep_checkpoints", "log_every", "grid_steps",
    "grid_guidance", "grid_per_class", "augment", "seed", "max_grad_norm", "precision",
    "data_workers", "min_snr_gamma", "offset_noise", "lr_schedule", "hflip",
})  # fmt: skip
# Run params read by the engine's DDPMConfig: fixed once the model has a checkpoint.
RECIPE_MODEL_PARAMS = frozenset({
    "prediction_type", "beta_schedule", "rescale_betas_zero_snr", "schedule_shift",
})  # fmt: skip
MODEL_PARAMS = frozenset({"preset", "dropout", "recipe"}) | RECIPE_MODEL_PARAMS
# "legacy": the recipe of models made before the recipe options existed (and of docs/real-run.md's
# "old" column); the engine's own defaults are the new recipe.
LEGACY_MODEL_RECIPE = legacy.MODEL_RECIPE
LEGACY_TRAINING_RECIPE = legacy.TRAINING_RECIPE
RECIPES = [
    ("default", "default: v-prediction, cosine, zero-terminal SNR, min-SNR 5, cosine LR"),
    ("legacy", "legacy: epsilon, linear, no weighting, constant LR (models before 2026-11)"),
]
# the engine's presets (generation.engine.ddpm.PRESETS), named here without importing torch
PRESETS = [
    ("small", "small: about 7M parameters, 64 × 64 on a CPU"),
    ("base", "base: about 73M parameters, 128 or 256 on a GPU"),
    ("tiny", "tiny: a few channels, for trying the pipeline only"),
]


def _as_bool(value: Any) -> bool:
    """A flag from a run param: a bool, or on/off, yes/no, true/false as the command passes it."""
    if isinstance(value, str):
        return value.strip().lower() in ("on", "yes", "true", "1")
    return bool(value)


def recipe_params(params: dict) -> dict:
    """`params` with the recipe filled in: the legacy values for `recipe: legacy`, explicit
    values kept. A model trained before the recipe options existed needs no flag: the engine
    reads its stored config and checkpoints as legacy (`DDPMConfig.from_dict`,
    `training.stored_schedule`), so it resumes as it was."""
    legacy = params.get("recipe") == "legacy"
    filled = {**LEGACY_MODEL_RECIPE, **LEGACY_TRAINING_RECIPE} if legacy else {}
    filled.update({k: v for k, v in params.items() if v is not None and k != "recipe"})
    for flag in ("rescale_betas_zero_snr", "hflip"):
        if flag in filled:
            filled[flag] = _as_bool(filled[flag])
    if filled.get("prediction_type") == "epsilon":
        filled.setdefault("rescale_betas_zero_snr", False)  # zero terminal SNR needs v
    return filled


def training_config_from(params: dict, total_steps: int, stored: dict | None = None):
    """The engine's TrainingConfig from a run's params, with defaults scaled to the run.

    `stored`: the schedule a resumed run was started with (`training.stored_schedule`); what the
    params leave unset comes from it rather than from the new total, so a longer or shorter
    resumed run keeps its warm-up and intervals (the engine refuses explicitly changed ones).
    """
    from generation.engine.training import TrainingConfig

    values = {k: v for k, v in params.items() if k in TRAINING_PARAMS and v is not None}
    for name, value in (stored or {}).items():
        if name in TRAINING_PARAMS:
            values.setdefault(name, value)
    values.setdefault("checkpoint_every", max(1, min(1000, max(50, total_steps // 10))))
    values.setdefault("log_every", max(1, min(10, total_steps)))
    values.setdefault("warmup_steps", min(500, total_steps // 10))
    config = TrainingConfig(steps=total_steps, **values)
    config.validate()
    return config


def ddpm_config_for(generator: GeneratorModel, params: dict):
    """The model's DDPMConfig: the stored one once trained, else a new one from the model row."""
    from generation.datasets import resolve_findings
    from generation.engine.ddpm import DDPMConfig

    stored = generator.config or {}
    if stored.get("resolution"):
        return DDPMConfig.from_dict(stored)
    findings = resolve_findings(generator)
    if not findings:
        raise JobError(
            f"the training set is empty: the pool has no real {generator.modality} images with "
            f"a finding to train model {generator.name!r} on. Import some first "
            f"(manage.py import_images --truth real --finding ...)."
        )
    recipe = {k: v for k, v in recipe_params(params).items() if k in RECIPE_MODEL_PARAMS}
    return DDPMConfig(
        resolution=int(generator.resolution),
        findings=findings,
        preset=params.get("preset", "small"),
        modality=generator.modality,
        name=generator.name,
        dropout=float(params.get("dropout", 0.0)),
        **recipe,
    )


def has_checkpoint(generator: GeneratorModel) -> bool:
    """A ddpm model can sample once its first checkpoint is written.

    Workers record checkpoints on the model row (any web server sees them); a folder on this
    machine's disk counts too (a model trained with the command on the same machine).
    """
    if generator.checkpoints or generator.trained_steps:
        return True
    from generation.engine.ddpm_layout import latest_checkpoint

    return latest_checkpoint(generator.folder) is not None


class DDPMBackend(Backend):
    kind = "ddpm"
    # the grids' guidance too (engine.training): a small class-conditional model trained with
    # 10 % label dropout; much stronger guidance saturates its images
    default_guidance = 2.0
    takes_prompt = False
    multi_gpu = True
    made_by_training = True
    training_params = TRAINING_PARAMS | MODEL_PARAMS
    model_level_files = ("generator.json", "loss.jsonl")
    loss_log_name = "loss.jsonl"
    train_form_fields = (
        "preset", "gpus", "recipe", "prediction_type", "beta_schedule", "min_snr_gamma",
        "offset_noise", "dropout", "hflip",
    )  # fmt: skip
    command_options: ClassVar[dict[str, str | None]] = {
        "preset": "preset",
        "grid_steps": "grid_steps",
        "resolution": None,  # the model's size, set once when it is made
        "recipe": "recipe",
        "prediction_type": "prediction_type",
        "beta_schedule": "beta_schedule",
        "zero_terminal_snr": "rescale_betas_zero_snr",
        "schedule_shift": "schedule_shift",
        "min_snr_gamma": "min_snr_gamma",
        "offset_noise": "offset_noise",
        "lr_schedule": "lr_schedule",
        "warmup_steps": "warmup_steps",
        "dropout": "dropout",
        "hflip": "hflip",
    }
    presets: ClassVar[list[tuple[str, str]]] = PRESETS

    # --- parameters -------------------------------------------------------------------------

    def check_sampling_request(
        self, generator: GeneratorModel, *, finding: str, prompt: str, negative_prompt: str
    ) -> str:
        findings = model_findings(generator)
        if prompt or negative_prompt:
            raise JobError(
                f"model {generator.name!r} is a class-conditional ddpm model: it takes a finding "
                f"({', '.join(findings) or 'none trained yet'}), not a text prompt"
            )
        if not findings or not generator.trained_steps:
            raise JobError(
                f"model {generator.name!r} has no checkpoint yet: train it first (or wait for "
                f"its training run to reach its first checkpoint)"
            )
        if not finding:
            raise JobError(
                f"choose a finding for model {generator.name!r}: one of {', '.join(findings)}"
            )
        matches = [f for f in findings if f.lower() == finding.lower()]
        if not matches:
            raise JobError(
                f"unknown finding {finding!r} for model {generator.name!r}; it knows: "
                f"{', '.join(findings)}"
            )
        return matches[0]

    # --- the train_model command ------------------------------------------------------------

    def set_up_new(self, generator: GeneratorModel, options: dict[str, Any]) -> None:
        generator.resolution = options["resolution"] or 64

    def check_run(self, generator: GeneratorModel, params: dict[str, Any], options: dict) -> None:
        from generation.datasets import DatasetError
        from generation.engine.ddpm import DDPMError

        try:
            config = ddpm_config_for(generator, params)
            if generator.pk is None and options["findings"]:
                config.findings = list(options["findings"])
            config.validate()
            training_config_from(
                {k: v for k, v in recipe_params(params).items()
                 if k in TRAINING_PARAMS},
                options["steps"],
            )  # fmt: skip
        except (DDPMError, DatasetError, ValueError) as error:
            raise JobError(str(error)) from None
        if options["resolution"] and generator.pk and options["resolution"] != config.resolution:
            raise JobError(
                f"model {generator.name!r} is {config.resolution}x{config.resolution}; "
                f"--resolution cannot change it"
            )

    # --- the staff forms --------------------------------------------------------------------

    def train_form_params(self, data: dict[str, Any]) -> dict[str, Any]:
        params = {**super().train_form_params(data), "preset": data.get("preset") or "small"}
        for name in ("recipe", "prediction_type", "beta_schedule"):
            if data.get(name):
                params[name] = data[name]
        for name in ("min_snr_gamma", "offset_noise", "dropout"):
            if data.get(name) is not None:
                params[name] = data[name]
        if data.get("hflip"):
            params["hflip"] = True
        return params

    def usable_for_generation(self, generator: GeneratorModel) -> bool:
        return has_checkpoint(generator)

    def clean_generate_form(
        self, form: Any, generator: GeneratorModel, data: dict[str, Any]
    ) -> None:
        if data.get("prompt"):
            form.add_error(
                "prompt",
                f"“{generator.name}” is a class-conditional pixel diffusion model: it takes a "
                f"finding, not a prompt.",
            )
        if data.get("negative_prompt"):
            form.add_error("negative_prompt", "Pixel diffusion models take no negative prompt.")
        self._clean_finding(form, generator, data)
        if not has_checkpoint(generator):
            form.add_error(
                "generator",
                f"“{generator.name}” has no checkpoint yet: wait for its training run to write one.",
            )

    @staticmethod
    def _clean_finding(form: Any, generator: GeneratorModel, data: dict[str, Any]) -> None:
        finding = data.get("finding", "")
        findings = model_findings(generator)
        known = ", ".join(findings) or "none"
        matches = [name for name in findings if name.lower() == finding.lower()]
        if not finding:
            form.add_error(
                "finding", f"Choose the finding to draw; “{generator.name}” knows: {known}."
            )
        elif not matches:
            form.add_error(
                "finding", f"“{generator.name}” was not trained on “{finding}”; it knows: {known}."
            )
        else:
            data["finding"] = matches[0]

    # --- the model folder -------------------------------------------------------------------

    def grid_note(self, generator: GeneratorModel) -> str:
        return super().grid_note(generator) + ", drawn with the EMA weights"

    def folder_layout(self, folder: Path) -> FolderLayout:
        from generation.engine import ddpm_layout as ckpt

        return FolderLayout(
            ckpt.list_checkpoints(folder),
            ckpt.WEIGHTS,
            ckpt.MARKER,
            ckpt.SAMPLE_GRID,
            folder / ckpt.LOSS_LOG,
        )

    def checkpoint_entries(self, folder: Path) -> list[dict]:
        from generation.engine import ddpm_layout as ckpt

        entries = []
        for step, path in ckpt.list_checkpoints(folder):
            try:
                marker = json.loads((path / ckpt.MARKER).read_text())
            except (OSError, ValueError):
                continue
            entries.append(
                {
                    "step": step,
                    "path": str(path.relative_to(folder)),
                    "weights_sha256": marker.get("weights_sha256", ""),
                }
            )
        return entries

    def can_sample_here(self, generator: GeneratorModel) -> None:
        from generation.engine.checkpoints import ModelFolderError, resolve_checkpoint

        try:
            resolve_checkpoint(generator.folder)
        except ModelFolderError as error:
            raise JobError(str(error)) from None

    # --- running ----------------------------------------------------------------------------

    def engine_errors(self) -> tuple[type[BaseException], ...]:
        from generation.engine.ddpm import DDPMError

        return (DDPMError,)

    def train(self, session: TrainingSession) -> TrainingOutcome:
        from generation.engine import training

        generator = session.generator
        params = recipe_params(session.params)
        config = self._configure(generator, params)
        stored = training.stored_schedule(generator.folder)
        tc = training_config_from(params, session.run.total_steps, stored)
        self._store_config(generator, config)
        gpus = self.check_gpus(params.get("gpus"))
        self._log_precision(session, tc, gpus)
        # the training set goes to disk one image at a time and is decoded per batch
        with tempfile.TemporaryDirectory(prefix="spotthefake-training-") as folder:
            dataset = self._dataset(session, config, Path(folder))
            if gpus > 1:
                return self._train_processes(session, config, tc, dataset, gpus)
            result = training.train(
                dataset,
                config,
                generator.folder,
                tc,
                device=session.device,
                on_step=session.step_callback(tc.checkpoint_every),
                cancel=session.cancel,
                resume=True,
                save_on_cancel=True,
            )
        return TrainingOutcome(result.cancelled, result.step, result.last_loss)

    @staticmethod
    def _log_precision(session: TrainingSession, tc: Any, gpus: int) -> None:
        """The precision and the device's capability, in the job's log (and in every
        checkpoint's generator.json, under training.run)."""
        from generation.engine import devices, distributed, training

        device = distributed.local_device(devices.pick_device(session.device), distributed.World())
        precision = training.choose_precision(tc, device)
        processes = f", {gpus} processes" if gpus > 1 else ""
        session.runner.log(f"precision {precision.describe()}{processes}")

    @staticmethod
    def _train_processes(session: TrainingSession, config, tc, dataset, gpus: int):
        """Train in `gpus` processes on this host (one per GPU); this process keeps the job."""
        from generation.backends.processes import train_in_processes

        spec = {
            "kind": "ddpm",
            "dataset": dataset,
            "config": config.to_dict(),
            "training": tc.to_dict(),
            "model_dir": str(session.generator.folder),
        }
        return train_in_processes(session, spec, gpus, tc.checkpoint_every)

    @staticmethod
    def _configure(generator: GeneratorModel, params: dict[str, Any]):
        config = ddpm_config_for(generator, params)
        if params.get("findings"):
            wanted = [str(f) for f in params["findings"]]
            if wanted != list(config.findings):
                raise JobError(
                    f"model {generator.name!r} was trained on findings {config.findings}; a run "
                    f"cannot change them to {wanted}: make a new model"
                )
        return config

    @staticmethod
    def _store_config(generator: GeneratorModel, config: Any) -> None:
        type(generator).objects.filter(pk=generator.pk).update(
            config=config.to_dict(),
            findings=list(config.findings),
            resolution=config.resolution,
        )
        generator.refresh_from_db()

    @staticmethod
    def _dataset(session: TrainingSession, config: Any, folder: Path) -> list:
        from generation.datasets import export_training_set

        dataset = export_training_set(session.generator, folder, resolution=config.resolution)
        unlabelled = sum(1 for _, finding in dataset if not finding)
        session.runner.log(
            f"{len(dataset)} training images ({', '.join(config.findings)}; {unlabelled} "
            f"without a finding train the unconditional branch)"
        )
        return dataset

    def generate(self, session: GenerationSession) -> None:
        from generation.engine import checkpoints, sampling

        job = session.job
        model = checkpoints.load_model(session.generator.folder)
        try:
            sampling.sample(
                model,
                job.finding,
                seeds=session.seeds,
                steps=job.steps,
                guidance=job.guidance,
                scheduler=job.scheduler,
                device=session.device,
                batch_size=job.batch_size,
                on_image=session.store,
                cancel=session.cancel,
            )
        except sampling.SamplingCancelled:
            raise Stopped() from None
