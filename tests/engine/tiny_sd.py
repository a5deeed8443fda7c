"""Build a tiny, randomly initialised Stable Diffusion checkpoint entirely in code.

Nothing is downloaded: the tokenizer's vocabulary and merges are written by hand, every model is
constructed from a small config with a fixed torch seed, and the result is saved in diffusers
format (model_index.json + one subfolder per component), exactly like a real SD 1.x folder.
Used by tests/engine/test_stable_diffusion.py only.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import torch

# Every word used in the tests' prompts gets its own token; anything else falls back to letters.
SD_TINY_WORDS = [
    "a",
    "frontal",
    "chest",
    "x",
    "ray",
    "of",
    "child",
    "adult",
    "patient",
    "with",
    "pneumonia",
    "normal",
    "no",
    "findings",
    "effusion",
    "cardiomegaly",
    "blurry",
    "noisy",
    "text",
    "axial",
    "ct",
    "slice",
    "lung",
    "nodule",
]

SD_TINY_MAX_TOKENS = 16
SD_TINY_IMAGE_SIZE = 32  # pixels; the VAE halves it, so the UNet works on 16x16 latents


def _write_tokenizer_files(folder: Path) -> None:
    """CLIP BPE files: byte-level letters, word-final letters (`x</w>`), and one merge chain per word."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {}

    def add(token: str) -> None:
        if token not in vocab:
            vocab[token] = len(vocab)

    symbols = string.ascii_lowercase + string.digits + ".,-'()/:;"
    for ch in symbols:
        add(ch)
    for ch in symbols:
        add(ch + "</w>")
    merges: list[str] = []
    for word in SD_TINY_WORDS:
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        # merge left to right: c h -> ch, ch e -> che, ... , ches t</w> -> chest</w>
        current = pieces[0]
        for nxt in pieces[1:]:
            merge = f"{current} {nxt}"
            if merge not in merges:
                merges.append(merge)
            current = current + nxt
            add(current)
    add("<|startoftext|>")
    add("<|endoftext|>")
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8"
    )


def build_tiny_sd(folder: Path, *, seed: int = 0, prediction_type: str = "epsilon") -> Path:
    """Save a tiny SD pipeline to `folder` and return it."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    token_dir = folder.parent / (folder.name + "-tokenizer-src")
    _write_tokenizer_files(token_dir)
    tokenizer = CLIPTokenizer(
        vocab=str(token_dir / "vocab.json"),
        merges=str(token_dir / "merges.txt"),
        model_max_length=SD_TINY_MAX_TOKENS,
    )

    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=SD_TINY_MAX_TOKENS,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    unet = UNet2DConditionModel(
        sample_size=SD_TINY_IMAGE_SIZE // 2,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(32, 64),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=SD_TINY_IMAGE_SIZE,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type=prediction_type,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    return folder
