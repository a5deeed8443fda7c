"""The training precision: bf16 where the card has it, fp16 with a gradient scaler below, fp32 on
CPU; the choice and the device's capability recorded with every checkpoint."""

from __future__ import annotations

import json

import pytest
import torch

from generation.engine import checkpoints as ckpt
from generation.engine.precision import PrecisionError, choose
from generation.engine.training import TrainingError, train

from .test_ddpm_training import assert_same_weights, make_config, make_dataset, quick, raw_weights

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(
    ("device", "capability", "requested", "name", "scaler"),
    [
        ("cuda", (9, 0), "auto", "bf16", False),  # H100
        ("cuda", (8, 0), "auto", "bf16", False),  # A100
        ("cuda", (7, 0), "auto", "fp16", True),  # V100
        ("cuda", (7, 5), "auto", "fp16", True),  # T4
        ("cuda", (6, 0), "auto", "fp16", True),  # P100
        ("cuda", (8, 6), "fp16", "fp16", True),
        ("cuda", (8, 6), "fp32", "fp32", False),
        ("cuda", (8, 6), False, "fp32", False),  # mixed_precision off
        ("cuda", (7, 0), True, "fp16", True),
        ("cpu", None, "auto", "fp32", False),
        ("mps", None, "auto", "fp32", False),
    ],
)
def test_it_chooses_the_precision_by_device_capability(device, capability, requested, name, scaler):
    chosen = choose(device, capability, requested)
    assert (chosen.name, chosen.uses_scaler) == (name, scaler)
    record = chosen.record()
    assert record["precision"] == name and record["grad_scaler"] == scaler
    assert record["device_capability"] == (f"{capability[0]}.{capability[1]}" if capability else "")


def test_it_refuses_bf16_on_a_card_without_it_and_unknown_names():
    with pytest.raises(PrecisionError, match="compute capability 8.0 or newer; this card is 7.5"):
        choose("cuda", (7, 5), "bf16")
    with pytest.raises(PrecisionError, match="precision must be one of"):
        choose("cuda", (8, 0), "fp8")


def test_it_trains_in_fp32_on_cpu_and_records_it(tmp_path):
    result = train(
        make_dataset(4), make_config(), tmp_path / "m", quick(steps=2, checkpoint_every=2)
    )
    run = json.loads((result.last_checkpoint / ckpt.MARKER).read_text())["training"]["run"]
    assert run == {
        "precision": "fp32",
        "grad_scaler": False,
        "device_type": "cpu",
        "device_capability": "",
        "world_size": 1,
        "device": "cpu",
    }
    assert ckpt.load_training_state(result.last_checkpoint)["grad_scaler"] == {}


def test_it_trains_in_fp16_with_a_grad_scaler_and_resumes_exactly(tmp_path):
    """torch.amp's CPU GradScaler and CPU fp16 autocast stand in for an fp16-only card."""
    data, config = make_dataset(4), make_config()
    settings = {"steps": 4, "checkpoint_every": 2, "precision": "fp16"}
    straight = train(data, config, tmp_path / "straight", quick(**settings))
    marker = json.loads((straight.last_checkpoint / ckpt.MARKER).read_text())
    assert marker["training"]["run"]["precision"] == "fp16"
    assert marker["training"]["run"]["grad_scaler"] is True
    scaler_state = ckpt.load_training_state(straight.last_checkpoint)["grad_scaler"]
    assert scaler_state["scale"] > 0 and "_growth_tracker" in scaler_state
    assert all(torch.isfinite(t).all() for t in raw_weights(straight.last_checkpoint).values())

    train(data, config, tmp_path / "resumed", quick(**settings),
          on_step=lambda step, total, loss: step != 2)  # fmt: skip
    resumed = train(data, config, tmp_path / "resumed", quick(**settings))
    assert_same_weights(raw_weights(straight.last_checkpoint), raw_weights(resumed.last_checkpoint))


def test_it_refuses_an_unknown_precision(tmp_path):
    with pytest.raises(TrainingError, match="precision must be one of"):
        train(make_dataset(2), make_config(), tmp_path / "m", quick(precision="fp8"))
