"""Exact resume whatever the new total: warm-up and intervals are stored with the run; unset
ones come back from it, explicitly changed ones are refused."""

from __future__ import annotations

import json

import pytest

from generation.backends.ddpm import training_config_from
from generation.engine import checkpoints as ckpt
from generation.engine.training import TrainingError, stored_schedule, train

from .test_ddpm_training import make_config, make_dataset, quick

# A constant learning rate after the warm-up: a run that may be extended (a cosine decay ends
# where the run was planned to end; see the cosine tests below).
PARAMS = {
    "batch_size": 4, "checkpoint_every": 2, "log_every": 1, "grid_steps": 0,
    "lr_schedule": "constant",
}  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


def rows(model_dir) -> list[tuple[int, float, float]]:
    lines = (model_dir / ckpt.LOSS_LOG).read_text().splitlines()
    return [(r["step"], r["loss"], r["lr"]) for r in map(json.loads, lines)]


def stop_at(last):
    return lambda step, total, loss: step < last


def test_it_a_resume_with_another_total_keeps_the_learning_rate_of_step_k(tmp_path):
    data, config = make_dataset(4), make_config()
    first = training_config_from(PARAMS, 40)  # warm-up 4 steps (a tenth of the run)
    assert first.warmup_steps == 4

    # the uninterrupted 40-step run, looked at up to step 6
    train(data, config, tmp_path / "straight", first, on_step=stop_at(6))

    # the same run stopped at step 2, then resumed as a 100-step run
    train(data, config, tmp_path / "resumed", first, on_step=stop_at(2), save_on_cancel=True)
    stored = stored_schedule(tmp_path / "resumed")
    assert stored["warmup_steps"] == 4 and stored["checkpoint_every"] == 2
    assert training_config_from(PARAMS, 100).warmup_steps == 10  # what the new total would say
    longer = training_config_from(PARAMS, 100, stored)
    assert longer.warmup_steps == 4 and longer.steps == 100
    train(data, config, tmp_path / "resumed", longer, on_step=stop_at(6))

    straight, resumed = rows(tmp_path / "straight"), rows(tmp_path / "resumed")
    assert [lr for _, _, lr in resumed] == [lr for _, _, lr in straight]
    assert resumed[2][2] == pytest.approx(first.lr * 3 / 4)  # step 3, not 3/10 of it
    assert resumed == straight


def test_it_refuses_a_resume_with_an_explicitly_changed_schedule(tmp_path):
    data, config = make_dataset(4), make_config()
    train(data, config, tmp_path / "m", quick(steps=2, checkpoint_every=2, warmup_steps=2, lr_schedule="constant"))
    with pytest.raises(
        TrainingError, match=r"started with warmup_steps 2 \(asked: 5\).*new folder"
    ):
        train(data, config, tmp_path / "m", quick(steps=4, checkpoint_every=2, warmup_steps=5, lr_schedule="constant"))
    with pytest.raises(TrainingError, match=r"started with batch_size 4 \(asked: 2\)"):
        train(data, config, tmp_path / "m", quick(steps=4, batch_size=2, warmup_steps=2, lr_schedule="constant"))
    # the intervals move no number of the run: another checkpoint interval is fine
    result = train(
        data, config, tmp_path / "m",
        quick(steps=4, checkpoint_every=1, warmup_steps=2, lr_schedule="constant"),
    )  # fmt: skip
    assert result.step == 4
    assert [step for step, _ in ckpt.list_checkpoints(tmp_path / "m")] == [2, 3, 4]


def test_it_decays_a_resumed_cosine_run_over_its_new_total(tmp_path):
    from generation.engine.recipe import lr_lambda

    data, config = make_dataset(4), make_config()
    cosine = {**PARAMS, "lr_schedule": "cosine"}
    first = training_config_from(cosine, 12)
    train(data, config, tmp_path / "m", first, on_step=stop_at(4), save_on_cancel=True)
    assert stored_schedule(tmp_path / "m")["lr_schedule"] == "cosine"

    # extended to 20 steps: the stored warm-up, then the cosine of the new total, down to 0
    longer = training_config_from(cosine, 20, stored_schedule(tmp_path / "m"))
    train(data, config, tmp_path / "m", longer)
    lrs = [lr for _, _, lr in rows(tmp_path / "m")]
    planned = lr_lambda(first.warmup_steps, 12, "cosine")
    extended = lr_lambda(first.warmup_steps, 20, "cosine")
    assert lrs[:4] == pytest.approx([first.lr * planned(i) for i in range(4)])
    assert lrs[4:] == pytest.approx([first.lr * extended(i) for i in range(4, 20)])
    assert lrs[-1] < lrs[4] * 0.05

    # another kind of schedule is another run: refused
    constant = training_config_from({**PARAMS}, 24, stored_schedule(tmp_path / "m"))
    with pytest.raises(TrainingError, match=r"lr_schedule 'cosine' \(asked: 'constant'\)"):
        train(data, config, tmp_path / "m", constant)
