"""The ddpm trainer under torch.distributed: two CPU processes on gloo against one process.

The global batch is the same whatever the number of processes (each rank trains on its half,
DDP averages the gradients), so the loss curve of two processes equals the one-process curve up
to float rounding: the tolerance below is 1e-4 relative on the loss and 1e-4 absolute on the
weights (the two differ only in the order of float additions). Resuming two processes from a
checkpoint gives exactly the uninterrupted two-process run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from PIL import Image

from generation.engine import checkpoints as ckpt
from generation.engine.training import TrainingConfig, train

from .test_ddpm_training import assert_same_weights, make_config, make_dataset, raw_weights

STEPS = 6
LOSS_RTOL = 1e-4
WEIGHT_ATOL = 1e-4


def settings(**overrides) -> TrainingConfig:
    base = {
        "steps": STEPS,
        "batch_size": 4,
        "grad_accum": 2,
        "lr": 1e-3,
        "warmup_steps": 2,
        "checkpoint_every": 3,
        "log_every": 1,
        "grid_steps": 0,
        "keep_checkpoints": 0,
        "augment": True,
        "label_dropout": 0.3,
        "data_workers": 0,
    }
    return TrainingConfig(**{**base, **overrides})


def losses(model_dir: Path) -> list[tuple[int, float, float]]:
    rows = [json.loads(line) for line in (model_dir / ckpt.LOSS_LOG).read_text().splitlines()]
    return [(r["step"], r["loss"], r["lr"]) for r in rows]


def files_dataset(folder: Path) -> list[tuple[str, str]]:
    """The test images as PNG files: the streaming path (decoded per batch)."""
    folder.mkdir()
    items = []
    for i, (array, finding) in enumerate(make_dataset(6)):
        path = folder / f"{i}.png"
        Image.fromarray(array).save(path)
        items.append((str(path), finding))
    return items


def _rank_main(rank: int, root: str) -> None:
    """One rank: join the gloo group, train straight, then stop at step 3 and resume."""
    torch.set_num_threads(1)
    base = Path(root)
    dist.init_process_group(
        "gloo", init_method=f"file://{base / 'rendezvous'}", rank=rank, world_size=2
    )
    try:
        data = json.loads((base / "data.json").read_text())
        config = make_config()
        train(data, config, base / "two", settings(), device="cpu")
        train(data, config, base / "two-resumed", settings(),
              device="cpu", on_step=lambda step, total, loss: step != 3)  # fmt: skip
        train(data, config, base / "two-resumed", settings(), device="cpu")
    finally:
        dist.destroy_process_group()


pytestmark = pytest.mark.usefixtures("one_thread")


def test_it_two_processes_follow_the_one_process_loss_curve_and_resume_exactly(tmp_path):
    data = files_dataset(tmp_path / "images")
    (tmp_path / "data.json").write_text(json.dumps(data))
    mp.spawn(_rank_main, args=(str(tmp_path),), nprocs=2, join=True)

    # one process, decoding in two DataLoader worker processes
    one = train(data, make_config(), tmp_path / "one", settings(data_workers=2), device="cpu")
    two_dir, resumed_dir = tmp_path / "two", tmp_path / "two-resumed"

    one_curve, two_curve = losses(tmp_path / "one"), losses(two_dir)
    assert [s for s, _, _ in two_curve] == list(range(1, STEPS + 1))
    for (step, loss_1, lr_1), (_, loss_2, lr_2) in zip(one_curve, two_curve, strict=True):
        assert loss_2 == pytest.approx(loss_1, rel=LOSS_RTOL), step
        assert lr_2 == lr_1
    two_final = ckpt.latest_checkpoint(two_dir)
    assert_same_weights(raw_weights(one.last_checkpoint), raw_weights(two_final), WEIGHT_ATOL)

    # stopped at step 3 and resumed: the same run as the uninterrupted one
    assert losses(resumed_dir) == two_curve
    assert_same_weights(
        raw_weights(two_final), raw_weights(ckpt.latest_checkpoint(resumed_dir)), atol=0
    )
    marker = json.loads((two_final / ckpt.MARKER).read_text())
    assert marker["training"]["run"]["world_size"] == 2
    assert marker["training"]["run"]["precision"] == "fp32"
    state = ckpt.load_training_state(two_final)
    assert len(state["rng_ranks"]) == 2
    assert not torch.equal(state["rng_ranks"][0]["torch"], state["rng_ranks"][1]["torch"])


def test_it_splits_every_global_batch_between_the_ranks():
    from generation.engine.data import DataError, StepBatches

    with pytest.raises(DataError, match="multiple of the number of processes"):
        StepBatches(6, seed=0, batch_size=3, grad_accum=1, first=1, last=2, world_size=2)
    halves = [
        list(
            StepBatches(
                6, seed=0, batch_size=4, grad_accum=1, first=1, last=3, rank=r, world_size=2
            )
        )  # fmt: skip
        for r in (0, 1)
    ]
    whole = list(StepBatches(6, seed=0, batch_size=4, grad_accum=1, first=1, last=3))
    assert [a + b for a, b in zip(*halves, strict=True)] == whole
    assert np.unique(np.concatenate(whole[:1] + whole[1:2])[:6]).size == 6  # one epoch: all seen
