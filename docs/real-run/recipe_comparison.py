"""The recipe comparison of docs/real-run.md: old vs new ddpm recipe, same data, steps and seed.

    python docs/real-run/recipe_comparison.py prepare OUT           # real images -> OUT/real.npz
    python docs/real-run/recipe_comparison.py train OUT old|new --steps N [--stop-at K]
    python docs/real-run/recipe_comparison.py sample OUT old|new [--step K]   # K: a checkpoint
    python docs/real-run/recipe_comparison.py evaluate OUT          # samples, figures, grids

It calls the project's pure packages directly (no database): pool.imaging for the display
derivative an import makes, generation.engine for training and sampling, evaluation.metrics for
the figures, with the split and the extractor settings of evaluation/quality.py. The same models
can be trained through `manage.py train_model` with the options printed by `train ... --show`.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SHARED = Path(os.environ.get("SHARED_XRAYS", "/work/shared/data/chest-xray-pediatric"))
SOURCES = [ROOT / "sample_data/chest-xray-pediatric", SHARED]
DISPLAY_SIZE = 512  # settings.IMAGE_DISPLAY_SIZE default
RESOLUTION = 64
BATCH_SIZE = 16
SEED = 0
FINDINGS = ["normal", "pneumonia"]
# evaluation/quality.py EXTRACTOR_DEFAULTS and SPLIT_SEED (not imported: that module needs Django)
EXTRACTOR = {"epochs": 30, "input_size": 64, "feature_dim": 64, "width": 16, "seed": 0}
SPLIT_SEED = 0
PER_FINDING = int(os.environ.get("PER_FINDING", "8"))  # synthetic images per finding (CPU budget)
SAMPLER = {"scheduler": "ddim", "steps": 10, "guidance": 2.0}

# model config, training config: the old recipe spelled out, the new one is the defaults
RECIPES = {
    "old": (
        {"prediction_type": "epsilon", "beta_schedule": "linear", "rescale_betas_zero_snr": False,
         "dropout": 0.0},
        {"min_snr_gamma": 0.0, "lr_schedule": "constant", "offset_noise": 0.0},
    ),
    "new": ({}, {}),
}  # fmt: skip


def prepare(out: Path) -> None:
    """Every distinct image (by SHA-256, as the pool dedupes) as its 512 px display derivative."""
    from PIL import Image

    from pool.imaging import make_display_png, read_image

    seen: set[str] = set()
    images, labels = [], []
    for folder in SOURCES:
        with open(folder / "manifest.csv") as handle:
            for row in csv.DictReader(handle):
                data = (folder / row["path"]).read_bytes()
                digest = hashlib.sha256(data).hexdigest()
                if digest in seen:
                    continue
                seen.add(digest)
                decoded = read_image(
                    data, name=row["path"], max_bytes=1 << 28, max_pixels=1 << 28,
                    min_side=2 * DISPLAY_SIZE,
                )  # fmt: skip
                png = make_display_png(decoded.frames[0].pixels, DISPLAY_SIZE)
                images.append(np.asarray(Image.open(io.BytesIO(png)).convert("L")))
                labels.append(row["label"])
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "real.npz", images=np.stack(images), labels=np.array(labels))
    print(f"{len(images)} distinct real images ({', '.join(f'{f}: {labels.count(f)}' for f in FINDINGS)})")


def _real(out: Path) -> tuple[np.ndarray, list[str]]:
    data = np.load(out / "real.npz")
    return data["images"], [str(x) for x in data["labels"]]


def train(out: Path, recipe: str, steps: int, stop_at: int = 0) -> None:
    """`steps` sets the schedules (warm-up, LR decay); `stop_at` ends the run early, at a
    checkpoint (a machine too busy to finish: the steps up to it are those of the full run)."""
    import torch

    from generation.engine.ddpm import DDPMConfig
    from generation.engine.training import TrainingConfig
    from generation.engine.training import train as run_training

    torch.set_num_threads(1)  # 2 shared cores, two runs side by side: one thread each
    images, labels = _real(out)
    model_kwargs, training_kwargs = RECIPES[recipe]
    config = DDPMConfig(resolution=RESOLUTION, findings=FINDINGS, preset="small", **model_kwargs)
    training = TrainingConfig(
        steps=steps, batch_size=BATCH_SIZE, seed=SEED, warmup_steps=min(500, steps // 10),
        checkpoint_every=max(50, steps // 4), log_every=10, grid_steps=0, **training_kwargs,
    )  # fmt: skip
    (out / f"{recipe}.json").write_text(
        json.dumps({"model": config.to_dict(), "training": training.to_dict()}, indent=1)
    )
    began = time.monotonic()
    def on_step(step: int, total: int, loss: float) -> bool:
        return not (stop_at and step >= stop_at)

    run_training(list(zip(images, labels, strict=True)), config, out / recipe, training,
                 device="cpu", on_step=on_step, save_on_cancel=True)  # fmt: skip
    print(f"{recipe}: {steps} steps in {time.monotonic() - began:.0f} s", flush=True)


def sample_recipe(out: Path, recipe: str, step: int) -> None:
    import torch

    torch.set_num_threads(1)
    began = time.monotonic()
    np.save(out / f"{recipe}-samples.npy", np.stack(_samples(out, recipe, step)))
    print(f"{recipe}: {2 * PER_FINDING} samples in {time.monotonic() - began:.0f} s")


def _samples(out: Path, recipe: str, step: int) -> list[np.ndarray]:
    from generation.engine.checkpoints import load_model
    from generation.engine.ddpm_layout import step_dir_name
    from generation.engine.sampling import sample

    folder = out / recipe
    model = load_model(folder / "checkpoints" / step_dir_name(step) if step else folder)
    arrays = []
    for i, finding in enumerate(FINDINGS):
        seeds = list(range(i * 1000, i * 1000 + PER_FINDING))
        arrays += [s.array for s in sample(model, finding, seeds=seeds, device="cpu", **SAMPLER)]
    return arrays


def _split(n: int) -> tuple[list[int], list[int]]:
    """(extractor half, held-out half), as evaluation/quality.py's split_real."""
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    half = n // 2
    return sorted(int(i) for i in order[:half]), sorted(int(i) for i in order[half:])


def extractor(out: Path):
    """The feature extractor, trained on the extractor half once and kept in OUT/extractor."""
    import torch

    from evaluation.metrics import FeatureExtractor, train_feature_extractor

    if (out / "extractor").is_dir():
        return FeatureExtractor.load(out / "extractor")
    torch.set_num_threads(1)
    images, labels = _real(out)
    train_idx, _ = _split(len(images))
    trained = train_feature_extractor(
        [images[i] for i in train_idx], [labels[i] for i in train_idx], **EXTRACTOR
    )
    trained.save(out / "extractor")
    return trained


def evaluate(out: Path) -> None:
    from evaluation.metrics import compare_sets, machine_observer
    from generation.engine.sampling import image_grid

    images, labels = _real(out)
    features = extractor(out)
    held_idx = _split(len(images))[1]
    held_out = [images[i] for i in held_idx]
    _real_grid(out, [images[i] for i in held_idx], [labels[i] for i in held_idx])
    rows = {}
    for recipe in RECIPES:
        synthetic = list(np.load(out / f"{recipe}-samples.npy"))
        grid = image_grid(synthetic[:8] + synthetic[PER_FINDING : PER_FINDING + 8], columns=8)
        from PIL import Image

        Image.fromarray(grid).save(out / f"{recipe}-grid.png")
        report = compare_sets(held_out, synthetic, features)
        observer = machine_observer(held_out, synthetic, features)
        rows[recipe] = _figures(report, observer)
    (out / "figures.json").write_text(json.dumps(rows, indent=1))
    _print_table(rows)


def _real_grid(out: Path, images: list[np.ndarray], labels: list[str]) -> None:
    """The first 8 held-out real images of each finding at the models' resolution: what the
    synthetic grids are read against."""
    from PIL import Image

    from generation.engine.sampling import image_grid

    picked = [i for f in FINDINGS for i in [j for j, lab in enumerate(labels) if lab == f][:8]]
    small = [
        np.asarray(Image.fromarray(images[i]).resize((RESOLUTION,) * 2, Image.Resampling.LANCZOS))
        for i in picked
    ]
    Image.fromarray(image_grid(small, columns=8)).save(out / "real-grid.png")


def _figures(report, observer) -> dict:
    def est(value):
        return getattr(value, "estimate", None)

    def ci(value):
        return [getattr(value, "ci_low", None), getattr(value, "ci_high", None)]

    fd, kid = report.metric("frechet_distance"), report.metric("kid")
    return {
        "n_compared": report.n_compared,
        "fd": est(fd.value), "fd_ci": ci(fd.value),
        "fd_baseline": est(fd.baseline), "fd_baseline_ci": ci(fd.baseline), "fd_ratio": fd.ratio,
        "kid": est(kid.value), "kid_ci": ci(kid.value), "kid_baseline": est(kid.baseline),
        "observer_auc": est(observer.auc),
        "observer_auc_ci": [getattr(observer.auc, "ci_low", None),
                            getattr(observer.auc, "ci_high", None)],
        "precision": est(report.metric("precision").value),
        "recall": est(report.metric("recall").value),
        "coverage": est(report.metric("coverage").value),
    }  # fmt: skip


def _print_table(rows: dict) -> None:
    keys = list(next(iter(rows.values())))
    print(f"{'figure':<16}" + "".join(f"{name:>24}" for name in rows))
    for key in keys:
        print(f"{key:<16}" + "".join(f"{str(rows[name][key]):>24}" for name in rows))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=["prepare", "train", "sample", "extractor", "evaluate"])
    parser.add_argument("out", type=Path)
    parser.add_argument("recipe", nargs="?", choices=list(RECIPES))
    parser.add_argument("--steps", type=int, default=0)
    parser.add_argument("--step", type=int, default=0, help="sample this checkpoint (0: last)")
    parser.add_argument("--stop-at", type=int, default=0, help="train: stop after this step")
    args = parser.parse_args()
    if args.action == "prepare":
        prepare(args.out)
    elif args.action == "train":
        train(args.out, args.recipe, args.steps, args.stop_at)
    elif args.action == "extractor":
        extractor(args.out)
    elif args.action == "sample":
        sample_recipe(args.out, args.recipe, args.step)
    else:
        evaluate(args.out)


if __name__ == "__main__":
    main()
