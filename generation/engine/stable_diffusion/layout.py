"""Names of the files and folders a Stable Diffusion model folder holds, and fixed limits.

No torch here: the web process reads model folders with these names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

GENERATOR_KIND = "stable-diffusion"
LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
TRAINING_STATE_NAME = "training_state.pt"
TRAINING_INFO_NAME = "lora_training.json"
LOSS_LOG_NAME = "loss_log.jsonl"
CHECKPOINT_PREFIX = "checkpoint-"
FINAL_LORA_DIRNAME = "lora"
SAMPLE_GRID_NAME = "samples.png"  # in each checkpoint folder, as the ddpm engine's
GRID_MAX_PROMPTS = 8  # rows of a sample grid whose prompts come from the training set

MAX_SEED = 2**63 - 1
REQUIRED_COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
SCHEDULER_NAMES = ("ddim", "dpm++", "euler")
UNET_LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_ENCODER_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]

_MODEL_WEIGHT_NAMES = (
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.bin",
    "model.safetensors",
    "pytorch_model.bin",
)
_SHARD_INDEX_NAMES = (
    "diffusion_pytorch_model.safetensors.index.json",
    "diffusion_pytorch_model.bin.index.json",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)

# Callbacks, named as in the ddpm engine (generation/engine/sampling.py, training.py):
#   on_step(done_steps, total_steps) per denoising step while sampling,
#   on_image(index, image) / on_batch(done_images, total_images) as images finish,
#   on_step(step, max_steps, loss) per optimizer step while training (returning False stops),
#   cancel: a callable returning True, or an object with is_set() (threading.Event).
StepCallback = Callable[[int, int], Any]
TrainStepCallback = Callable[[int, int, float], Any]
