"""The "stable-diffusion" generator kind: a diffusers-format text-to-image checkpoint on local disk.

Pure Python: no Django here. Three parts:

* `check_checkpoint` / `check_lora_folder`: say clearly what is wrong with a folder before any
  model is loaded (missing, incomplete, or a checkpoint of another kind).
* `StableDiffusionGenerator`: loads SD 1.x / 2.x / RoentGen-style folders (optionally with a LoRA
  folder on top) and samples grayscale uint8 images, one CPU-seeded generator per image so a seed
  gives the same image on any device and in any batch, each with a provenance dict.
* `LoraTrainer` / `train_lora`: LoRA fine-tuning of the UNet (optionally the text encoder too)
  through peft on (grayscale uint8 square array or image file, prompt) pairs, decoded per batch,
  in one process or several (`torch.distributed`), with atomic resumable checkpoints that hold
  only the LoRA weights plus a training state.

Nothing is ever fetched from a model hub: every load passes `local_files_only=True`.

The parts are modules of this package: ``layout`` (file names), ``errors``, ``checks`` (folder
checks, no torch), ``generator`` (sampling) and ``lora`` (fine-tuning). Every public name is
also importable from the package itself, loaded on first use so that reading a name from
``layout`` or ``checks`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "CHECKPOINT_PREFIX": "layout",
    "CheckpointError": "errors",
    "CheckpointInfo": "checks",
    "FINAL_LORA_DIRNAME": "layout",
    "GENERATOR_KIND": "layout",
    "GeneratedImage": "generator",
    "GenerationCancelled": "errors",
    "LORA_WEIGHT_NAME": "layout",
    "LOSS_LOG_NAME": "layout",
    "LoraTrainer": "lora",
    "LoraTrainingConfig": "lora",
    "LoraTrainingResult": "lora",
    "MAX_SEED": "layout",
    "REQUIRED_COMPONENTS": "layout",
    "SAMPLE_GRID_NAME": "layout",
    "SCHEDULER_NAMES": "layout",
    "StableDiffusionError": "errors",
    "StableDiffusionGenerator": "generator",
    "StepCallback": "layout",
    "TEXT_ENCODER_LORA_TARGETS": "layout",
    "TRAINING_INFO_NAME": "layout",
    "TRAINING_STATE_NAME": "layout",
    "TrainStepCallback": "layout",
    "TrainingDivergedError": "errors",
    "TrainingItem": "lora",
    "UNET_LORA_TARGETS": "layout",
    "check_checkpoint": "checks",
    "check_lora_folder": "checks",
    "make_scheduler": "generator",
    "rgb_to_gray_uint8": "generator",
    "sha256_file": "checks",
    "text_encoder_lora_problem": "lora",
    "train_lora": "lora",
    "weights_sha256": "checks",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
