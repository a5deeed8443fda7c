"""Stable Diffusion from a local diffusers folder, fine-tuned with LoRA
(generation.engine.stable_diffusion)."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
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
)

if TYPE_CHECKING:
    from generation.models import GeneratorModel

TRAINING_PARAMS = frozenset({
    "batch_size", "grad_accum", "lr", "checkpoint_every", "seed", "lora_rank",
    "train_text_encoder", "age_group", "resolution", "grid_steps",
})  # fmt: skip


def numbered_folders(folder: Path, prefix: str) -> list[tuple[int, Path]]:
    """(number, path) of the sub-folders named prefix + a number, by number."""
    if not folder.is_dir():
        return []
    found = []
    for child in folder.iterdir():
        number = child.name[len(prefix) :]
        if child.name.startswith(prefix) and number.isdigit() and child.is_dir():
            found.append((int(number), child))
    return sorted(found)


def lora_config_from(
    params: dict[str, Any], total_steps: int, resolution: Any, grid_prompts: Sequence[str] = ()
):
    """The engine's LoraTrainingConfig from a run's params, with defaults scaled to the run;
    `grid_prompts`: the sample grid's rows (one per finding)."""
    from generation.engine.stable_diffusion import LoraTrainingConfig

    grid = {"grid_prompts": list(grid_prompts)}
    if params.get("grid_steps") is not None:
        grid["grid_steps"] = int(params["grid_steps"])
    config = LoraTrainingConfig(
        rank=int(params.get("lora_rank", 8)),
        learning_rate=float(params.get("lr", 1e-4)),
        max_steps=total_steps,
        batch_size=int(params.get("batch_size", 1)),
        gradient_accumulation_steps=int(params.get("grad_accum", 1)),
        checkpoint_every=int(
            params.get("checkpoint_every", max(1, min(250, total_steps // 4 or 1)))
        ),
        resolution=int(resolution) if resolution else None,
        train_text_encoder=bool(params.get("train_text_encoder", False)),
        seed=int(params.get("seed", 0)),
        data_workers=2,  # none inside a Celery child (daemonic); two per rank of a multi-GPU run
        grid_guidance=StableDiffusionBackend.default_guidance,
        **grid,
    )
    config.validate()
    return config


class StableDiffusionBackend(Backend):
    kind = "stable-diffusion"
    # diffusers' default for Stable Diffusion; such checkpoints are usually sampled at 5-7.5
    default_guidance = 7.5
    takes_negative_prompt = True
    needs_base_checkpoint = True
    multi_gpu = True
    training_params = TRAINING_PARAMS
    model_level_files = ("loss_log.jsonl",)
    shared_folders = ("lora",)
    loss_log_name = "loss_log.jsonl"
    train_form_fields = ("base_checkpoint", "lora_rank")
    command_options: ClassVar[dict[str, str | None]] = {
        "lora_rank": "lora_rank",
        "age_group": "age_group",
        "resolution": "resolution",
        "train_text_encoder": "train_text_encoder",
        "grid_steps": "grid_steps",
        "base": None,
    }

    # --- parameters -------------------------------------------------------------------------

    def check_sampling_request(
        self, generator: GeneratorModel, *, finding: str, prompt: str, negative_prompt: str
    ) -> str:
        finding = super().check_sampling_request(
            generator, finding=finding, prompt=prompt, negative_prompt=negative_prompt
        )
        if not generator.base_checkpoint:
            raise JobError(
                f"model {generator.name!r} has no base checkpoint folder: set one on the model "
                f"first"
            )
        return finding

    # --- the train_model command ------------------------------------------------------------

    def set_up_new(self, generator: GeneratorModel, options: dict[str, Any]) -> None:
        if not options["base"]:
            raise JobError("a stable-diffusion model needs --base PATH (a local folder)")
        from generation.engine.stable_diffusion.checks import check_checkpoint
        from generation.engine.stable_diffusion.errors import StableDiffusionError

        try:
            info = check_checkpoint(options["base"], hash_weights=False)
        except (StableDiffusionError, OSError, ValueError) as error:
            raise JobError(str(error)) from None
        generator.base_checkpoint = str(info.path)
        generator.resolution = options["resolution"] or 0

    # --- the staff forms --------------------------------------------------------------------

    def clean_train_form(self, form: Any, data: dict[str, Any]) -> None:
        self._clean_base_checkpoint(form, data.get("base_checkpoint", "").strip())
        if data.get("lora_rank") is None and "lora_rank" not in form.errors:
            form.add_error("lora_rank", "Stable Diffusion fine-tuning needs a LoRA rank.")

    @staticmethod
    def _clean_base_checkpoint(form: Any, folder: str) -> None:
        if not folder:
            form.add_error("base_checkpoint", "Stable Diffusion needs a base checkpoint folder.")
            return
        # the folder checks import no torch, so the web process may run them
        from generation.engine.stable_diffusion.checks import check_checkpoint
        from generation.engine.stable_diffusion.errors import CheckpointError

        try:
            check_checkpoint(folder, hash_weights=False)
        except CheckpointError as error:
            form.add_error("base_checkpoint", str(error))
        else:
            form.cleaned_data["base_checkpoint"] = str(Path(folder).expanduser())

    def fixed_on_continue(self, generator: GeneratorModel, data: dict[str, Any]) -> dict:
        return {"base checkpoint": (generator.base_checkpoint, data.get("base_checkpoint"))}

    def base_checkpoint_from(self, data: dict[str, Any]) -> str:
        return data["base_checkpoint"]

    def train_form_params(self, data: dict[str, Any]) -> dict[str, Any]:
        return {**super().train_form_params(data), "lora_rank": data["lora_rank"]}

    # --- the model folder -------------------------------------------------------------------

    def grid_note(self, generator: GeneratorModel) -> str:
        from generation.backends.base import model_findings

        findings = ", ".join(model_findings(generator))
        rows = (
            f"One row per finding's prompt ({findings})"
            if findings
            else "One row per prompt of the training set"
        )
        return f"{rows}, drawn with the LoRA as trained by then (the same seeds in every grid)"

    def folder_layout(self, folder: Path) -> FolderLayout:
        from generation.engine.stable_diffusion import layout

        return FolderLayout(
            numbered_folders(folder, layout.CHECKPOINT_PREFIX),
            layout.LORA_WEIGHT_NAME,
            layout.TRAINING_INFO_NAME,
            layout.SAMPLE_GRID_NAME,
            folder / layout.LOSS_LOG_NAME,
        )

    def checkpoint_entries(self, folder: Path) -> list[dict]:
        from generation.engine.stable_diffusion.checks import sha256_file
        from generation.engine.stable_diffusion.layout import (
            CHECKPOINT_PREFIX,
            LORA_WEIGHT_NAME,
            TRAINING_STATE_NAME,
        )

        entries = []
        if not folder.is_dir():
            return entries
        for path in sorted(folder.glob(f"{CHECKPOINT_PREFIX}*")):
            suffix = path.name[len(CHECKPOINT_PREFIX) :]
            if not (
                suffix.isdigit()
                and (path / TRAINING_STATE_NAME).is_file()
                and (path / LORA_WEIGHT_NAME).is_file()
            ):
                continue
            entries.append(
                {
                    "step": int(suffix),
                    "path": str(path.relative_to(folder)),
                    "weights_sha256": sha256_file(path / LORA_WEIGHT_NAME),
                }
            )
        return entries

    def usable_for_generation(self, generator: GeneratorModel) -> bool:
        if not generator.base_checkpoint:
            return False
        if generator.trained_steps or generator.checkpoints:
            return True
        # A model whose training has written no LoRA yet would sample the bare base model
        # under its own name; one added by hand (never trained) samples the base on purpose.
        return not generator.has_training_runs()

    def can_sample_here(self, generator: GeneratorModel) -> None:
        from generation.engine.stable_diffusion.checks import check_checkpoint
        from generation.engine.stable_diffusion.errors import StableDiffusionError

        try:
            check_checkpoint(generator.base_checkpoint, hash_weights=False)
        except (StableDiffusionError, OSError, ValueError) as error:
            raise JobError(str(error)) from None

    # --- running ----------------------------------------------------------------------------

    def engine_errors(self) -> tuple[type[BaseException], ...]:
        from generation.engine.stable_diffusion.errors import StableDiffusionError

        return (StableDiffusionError,)

    def train(self, session: TrainingSession) -> TrainingOutcome:
        from generation.engine.stable_diffusion import train_lora

        generator, params = session.generator, session.params
        age_group = params.get("age_group") or (generator.config or {}).get("age_group")
        resolution = params.get("resolution") or generator.resolution or None
        config = lora_config_from(
            params, session.run.total_steps, resolution, self._grid_prompts(generator, age_group)
        )
        gpus = self.check_gpus(params.get("gpus"))
        # the training set goes to disk one image at a time and is decoded per batch
        with tempfile.TemporaryDirectory(prefix="spotthefake-training-") as folder:
            dataset = self._dataset(session, config, age_group, Path(folder))
            self._store_config(generator, config, age_group)
            if gpus > 1:
                return self._train_processes(session, config, dataset, gpus)
            result = train_lora(
                generator.base_checkpoint,
                generator.folder,
                dataset,
                config,
                device=session.device,
                resume=True,
                on_step=session.step_callback(config.checkpoint_every),
                cancel=session.cancel,
                model_name=generator.name,
            )
        return TrainingOutcome(result.cancelled, result.step, result.last_loss)

    @staticmethod
    def _train_processes(session: TrainingSession, config: Any, dataset: list, gpus: int):
        """Fine-tune in `gpus` processes on this host (one per GPU); this process keeps the job."""
        from dataclasses import asdict

        from generation.backends.processes import train_in_processes

        session.runner.log(f"LoRA fine-tuning in {gpus} processes")
        spec = {
            "kind": "lora",
            "checkpoint": session.generator.base_checkpoint,
            "model_dir": str(session.generator.folder),
            "model_name": session.generator.name,
            "dataset": dataset,
            "lora": asdict(config),
        }
        return train_in_processes(session, spec, gpus, config.checkpoint_every)

    @staticmethod
    def _grid_prompts(generator: GeneratorModel, age_group: str | None) -> list[str]:
        """One prompt per finding of the model, built as the training prompts are."""
        from generation.backends.base import model_findings
        from generation.engine.prompts import build_prompt

        findings = model_findings(generator)
        return [build_prompt(generator.modality, finding, age_group) for finding in findings]

    @staticmethod
    def _dataset(
        session: TrainingSession, config: Any, age_group: str | None, folder: Path
    ) -> list:
        from generation.datasets import export_training_set
        from generation.engine.prompts import build_prompt

        generator = session.generator
        dataset = export_training_set(
            generator,
            folder,
            resolution=config.resolution,
            label=lambda image: build_prompt(generator.modality, image.finding, age_group),
        )
        session.runner.log(f"{len(dataset)} training images; prompts like {dataset[0][1]!r}")
        return dataset

    @staticmethod
    def _store_config(generator: GeneratorModel, config: Any, age_group: str | None) -> None:
        type(generator).objects.filter(pk=generator.pk).update(
            config={
                **(generator.config or {}),
                "lora": dict(config.__dict__.items()),
                **({"age_group": age_group} if age_group else {}),
            },
        )
        generator.refresh_from_db()

    def generate(self, session: GenerationSession) -> None:
        from generation.engine.stable_diffusion import (
            FINAL_LORA_DIRNAME,
            GenerationCancelled,
            StableDiffusionGenerator,
        )

        generator, job = session.generator, session.job
        lora = generator.folder / FINAL_LORA_DIRNAME
        engine = StableDiffusionGenerator(
            generator.base_checkpoint,
            lora=lora if lora.is_dir() else None,
            model_name=generator.name,
            device=session.device,
        )
        try:
            engine.generate(
                session.prompt,
                session.seeds,
                negative_prompt=job.negative_prompt or None,
                steps=job.steps,
                guidance=job.guidance,
                scheduler=job.scheduler,
                width=generator.resolution or None,
                height=generator.resolution or None,
                batch_size=job.batch_size,
                on_image=session.store,
                cancel=session.cancel,
            )
        except GenerationCancelled:
            raise Stopped() from None
        finally:
            engine.close()
