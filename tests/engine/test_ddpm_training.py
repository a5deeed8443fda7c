"""Training, checkpointing and resuming of the class-conditional ddpm engine (tiny CPU models)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch

from generation.engine import checkpoints as ckpt
from generation.engine import training as training_mod
from generation.engine.ddpm import DDPMConfig, DDPMError, UnknownFindingError
from generation.engine.training import (
    NonFiniteLossError,
    TrainingConfig,
    TrainingError,
    diffusion_loss,
    init_unet,
    train,
)

FINDINGS = ["normal", "effusion"]


pytestmark = pytest.mark.usefixtures("one_thread")


def make_config(**overrides) -> DDPMConfig:
    return DDPMConfig(
        **{
            "resolution": 32,
            "findings": FINDINGS,
            "preset": "tiny",
            "name": "tiny-test",
            **overrides,
        }
    )


def make_dataset(n: int = 8, size: int = 32) -> list[tuple[np.ndarray, str]]:
    """Class 0: a bright left half; class 1: a bright disc. Plus a little fixed noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    items = []
    for i in range(n):
        image = np.full((size, size), 40.0)
        if i % 2 == 0:
            image[:, : size // 2] = 210
        else:
            image[(yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 4) ** 2] = 210
        image += rng.normal(0, 5, image.shape)
        items.append((np.clip(image, 0, 255).astype(np.uint8), FINDINGS[i % 2]))
    return items


def quick(**overrides) -> TrainingConfig:
    base = {
        "steps": 6,
        "batch_size": 4,
        "lr": 1e-3,
        "warmup_steps": 2,
        "checkpoint_every": 3,
        "log_every": 1,
        "grid_steps": 0,
        "keep_checkpoints": 0,
    }
    return TrainingConfig(**{**base, **overrides})


def raw_weights(checkpoint) -> dict[str, torch.Tensor]:
    return ckpt.load_state_tensors(checkpoint / ckpt.RAW_WEIGHTS)


def ema_weights(checkpoint) -> dict[str, torch.Tensor]:
    return ckpt.load_state_tensors(checkpoint / ckpt.WEIGHTS)


def assert_same_weights(a: dict, b: dict, atol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        torch.testing.assert_close(value, b[key], atol=atol, rtol=0, msg=key)


# ----------------------------------------------------------------------------- learning
def test_it_training_lowers_the_loss_on_a_fixed_batch(tmp_path):
    config = make_config()
    data = make_dataset(8)
    x0 = torch.from_numpy(np.stack([a for a, _ in data]))[:, None].float() / 127.5 - 1
    labels = torch.tensor([FINDINGS.index(f) for _, f in data])
    g = torch.Generator().manual_seed(123)
    noise = torch.randn(x0.shape, generator=g)
    timesteps = torch.linspace(50, 950, len(data)).long()
    scheduler = training_mod.build_noise_scheduler(config)

    def fixed_loss(unet) -> float:
        with torch.no_grad():
            return float(diffusion_loss(unet.eval(), scheduler, x0, labels, noise, timesteps))

    before = fixed_loss(init_unet(config, seed=0))
    result = train(
        data,
        config,
        tmp_path / "m",
        quick(
            steps=40,
            batch_size=8,
            lr=3e-3,
            warmup_steps=5,
            checkpoint_every=40,
            label_dropout=0.0,
            grid_steps=2,
            log_every=10,
        ),
    )
    unet = init_unet(config, seed=0)
    unet.load_state_dict(raw_weights(result.last_checkpoint))
    after = fixed_loss(unet)
    assert after < 0.6 * before, (before, after)

    assert result.step == 40 and not result.cancelled
    rows = [json.loads(line) for line in (tmp_path / "m" / ckpt.LOSS_LOG).read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20, 30, 40]
    assert all({"loss", "lr", "elapsed_s"} <= r.keys() for r in rows)
    assert (result.last_checkpoint / ckpt.SAMPLE_GRID).is_file()
    marker = json.loads((result.last_checkpoint / ckpt.MARKER).read_text())
    assert marker["kind"] == "ddpm" and marker["step"] == 40
    assert marker["weights_sha256"] == ckpt.sha256_file(result.last_checkpoint / ckpt.WEIGHTS)


def test_it_images_at_another_size_are_resized(tmp_path):
    result = train(
        make_dataset(4, size=48), make_config(), tmp_path / "m", quick(steps=1, checkpoint_every=1)
    )
    assert result.step == 1


# ------------------------------------------------------------------------------- resume
def test_it_resume_after_a_crash_matches_uninterrupted_training(tmp_path):
    data = make_dataset(6)
    config = make_config(dropout=0.1)  # dropout exercises the global RNG state too
    settings = {
        "steps": 7,
        "grad_accum": 2,
        "augment": True,
        "label_dropout": 0.3,
        "checkpoint_every": 3,
    }

    straight = train(data, config, tmp_path / "straight", quick(**settings))

    def crash_at_5(step, total, loss):
        if step == 5:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        train(data, config, tmp_path / "resumed", quick(**settings), on_step=crash_at_5)
    assert ckpt.latest_checkpoint(tmp_path / "resumed").name == "step-00000003"

    seen = []
    resumed = train(
        data,
        config,
        tmp_path / "resumed",
        quick(**settings),
        on_step=lambda step, total, loss: seen.append((step, total)),
    )
    assert seen == [(4, 7), (5, 7), (6, 7), (7, 7)]
    assert resumed.step == straight.step == 7

    assert_same_weights(raw_weights(straight.last_checkpoint), raw_weights(resumed.last_checkpoint))
    assert_same_weights(ema_weights(straight.last_checkpoint), ema_weights(resumed.last_checkpoint))
    state_a = ckpt.load_training_state(straight.last_checkpoint)
    state_b = ckpt.load_training_state(resumed.last_checkpoint)
    assert state_a["step"] == state_b["step"] == 7
    assert state_a["lr_scheduler"]["last_epoch"] == state_b["lr_scheduler"]["last_epoch"] == 7
    assert state_a["ema"] == state_b["ema"]
    for pa, pb in zip(
        state_a["optimizer"]["state"].values(), state_b["optimizer"]["state"].values(), strict=True
    ):
        assert float(pa["step"]) == float(pb["step"]) == 7
        torch.testing.assert_close(pa["exp_avg_sq"], pb["exp_avg_sq"], atol=1e-9, rtol=1e-5)

    # the loss log has one row per step, without the rows of the crashed run after step 3
    rows = [
        json.loads(line) for line in (tmp_path / "resumed" / ckpt.LOSS_LOG).read_text().splitlines()
    ]
    assert [r["step"] for r in rows] == list(range(1, 8))


def test_it_resume_refuses_a_different_model(tmp_path):
    train(make_dataset(4), make_config(), tmp_path / "m", quick(steps=1, checkpoint_every=1))
    with pytest.raises(TrainingError, match="different config"):
        train(make_dataset(4), make_config(modality="ct"), tmp_path / "m", quick(steps=2))
    with pytest.raises(TrainingError, match="already has checkpoints"):
        train(make_dataset(4), make_config(), tmp_path / "m", quick(steps=2), resume=False)


def test_it_resuming_a_finished_run_does_nothing(tmp_path):
    first = train(
        make_dataset(4), make_config(), tmp_path / "m", quick(steps=2, checkpoint_every=2)
    )
    again = train(
        make_dataset(4), make_config(), tmp_path / "m", quick(steps=2, checkpoint_every=2)
    )
    assert again.step == 2 and again.last_checkpoint == first.last_checkpoint


# --------------------------------------------------------------------------- cancelling
def test_it_cancel_from_on_step_keeps_the_last_checkpoint(tmp_path):
    result = train(
        make_dataset(4),
        make_config(),
        tmp_path / "m",
        quick(steps=10),
        on_step=lambda step, total, loss: step < 5,
    )
    assert result.cancelled and result.step == 5
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "m")] == [3]
    assert ckpt.load_model(tmp_path / "m").step == 3


def test_it_cancel_event_and_save_on_cancel(tmp_path):
    event = threading.Event()

    def on_step(step, total, loss):
        if step == 4:
            event.set()

    result = train(
        make_dataset(4),
        make_config(),
        tmp_path / "m",
        quick(steps=10),
        on_step=on_step,
        cancel=event,
        save_on_cancel=True,
    )
    assert result.cancelled and result.step == 4
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "m")] == [3, 4]


def test_it_cancel_before_the_first_checkpoint_leaves_nothing(tmp_path):
    result = train(
        make_dataset(4), make_config(), tmp_path / "m", quick(steps=10), cancel=lambda: True
    )
    assert result.cancelled and result.last_checkpoint is None
    assert not (tmp_path / "m").exists()


# ------------------------------------------------------------------------------ atomicity
def test_it_a_failed_checkpoint_write_never_becomes_the_latest(tmp_path, monkeypatch):
    real = ckpt._write_training_state
    calls = []

    def flaky(state, path):
        calls.append(state["step"])
        if state["step"] == 6:
            path.write_bytes(b"half a checkpoint")
            raise OSError("disk full")
        real(state, path)

    monkeypatch.setattr(ckpt, "_write_training_state", flaky)
    with pytest.raises(OSError, match="disk full"):
        train(make_dataset(4), make_config(), tmp_path / "m", quick(steps=6))
    assert calls == [3, 6]
    checkpoints = tmp_path / "m" / ckpt.CHECKPOINTS_DIR
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-00000003"]
    assert ckpt.load_model(tmp_path / "m").step == 3
    # and the next run resumes from step 3
    monkeypatch.setattr(ckpt, "_write_training_state", real)
    seen = []
    train(
        make_dataset(4),
        make_config(),
        tmp_path / "m",
        quick(steps=6),
        on_step=lambda step, total, loss: seen.append(step),
    )
    assert seen == [4, 5, 6]


def test_it_a_failed_first_checkpoint_leaves_no_model_folder(tmp_path, monkeypatch):
    def broken(state, path):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "_write_training_state", broken)
    with pytest.raises(OSError):
        train(make_dataset(4), make_config(), tmp_path / "m", quick(steps=3))
    assert not (tmp_path / "m").exists()


def test_it_stale_temporary_folders_are_cleaned_on_the_next_run(tmp_path):
    train(make_dataset(4), make_config(), tmp_path / "m", quick(steps=3))
    stale = tmp_path / "m" / ckpt.CHECKPOINTS_DIR / ".tmp-step-00000006-deadbeef"
    stale.mkdir()
    (stale / "training_state.pt").write_bytes(b"partial")
    assert ckpt.load_model(tmp_path / "m").step == 3  # never picked as the latest
    train(make_dataset(4), make_config(), tmp_path / "m", quick(steps=4))
    assert not stale.exists()


# ---------------------------------------------------------------------------- NaN loss
def test_it_an_absurd_learning_rate_fails_clearly_without_a_nan_checkpoint(tmp_path):
    data = make_dataset(4)
    train(data, make_config(), tmp_path / "m", quick(steps=3))
    good = ema_weights(ckpt.latest_checkpoint(tmp_path / "m"))
    with pytest.raises(NonFiniteLossError, match="(?i)nan|inf"):
        train(
            data,
            make_config(),
            tmp_path / "m",
            quick(steps=12, lr=1e30, max_grad_norm=None, checkpoint_every=1),
        )
    saved = ckpt.list_checkpoints(tmp_path / "m")
    assert saved[0][0] == 3 and len(saved) < 12  # stopped well before the end
    assert_same_weights(good, ema_weights(saved[0][1]), atol=0)
    for _, folder in saved:  # weights blew up, but no checkpoint holds NaN/inf
        for weights in (raw_weights(folder), ema_weights(folder)):
            assert all(torch.isfinite(t).all() for t in weights.values())
    ckpt.load_model(tmp_path / "m")
    assert not any(p.name.startswith(".tmp-") for p in (tmp_path / "m" / "checkpoints").iterdir())


def test_it_a_nan_loss_on_a_new_model_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(
        training_mod,
        "diffusion_loss",
        lambda *args, **kwargs: torch.tensor(float("nan"), requires_grad=True),
    )
    with pytest.raises(NonFiniteLossError, match="loss is nan at step 1"):
        train(make_dataset(4), make_config(), tmp_path / "m", quick())
    assert not (tmp_path / "m").exists()


def test_it_nan_weights_are_never_checkpointed(tmp_path, monkeypatch):
    real_update = training_mod.EMA.update

    def poisoned(self, model):
        real_update(self, model)
        if self.num_updates == 2:
            with torch.no_grad():
                next(self.module.parameters()).fill_(float("nan"))

    monkeypatch.setattr(training_mod.EMA, "update", poisoned)
    with pytest.raises(NonFiniteLossError, match="weights became NaN/inf by step 3"):
        train(make_dataset(4), make_config(), tmp_path / "m", quick())
    assert not (tmp_path / "m").exists()


# ---------------------------------------------------------------------------- bad inputs
def test_it_empty_training_set(tmp_path):
    with pytest.raises(TrainingError, match="empty"):
        train([], make_config(), tmp_path / "m", quick())
    assert not (tmp_path / "m").exists()


def test_it_unknown_finding_is_named(tmp_path):
    data = make_dataset(4) + [(make_dataset(1)[0][0], "pneumothorax")]
    with pytest.raises(UnknownFindingError, match="'pneumothorax' \\(1\\).*normal, effusion"):
        train(data, make_config(), tmp_path / "m", quick())
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((32, 40), np.uint8), "square"),
        (np.zeros((32, 32), np.float32), "uint8"),
        (np.zeros((3, 32, 32), np.uint8), "2-D"),
    ],
)
def test_it_bad_images(tmp_path, image, message):
    with pytest.raises(TrainingError, match=message):
        train([(image, "normal")], make_config(), tmp_path / "m", quick())
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"resolution": 48}, "power of two"),
        ({"resolution": 1024}, "power of two between 32 and 512"),
        ({"resolution": 16}, "power of two"),
        ({"resolution": 32, "block_out_channels": (8, 8, 8, 8, 8)}, "too small for 5 down blocks"),
        ({"findings": []}, "at least one finding"),
        ({"findings": ["a", "a"]}, "duplicate"),
        ({"preset": "huge"}, "unknown preset"),
    ],
)
def test_it_bad_model_configs(overrides, message):
    with pytest.raises(DDPMError, match=message):
        make_config(**overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"steps": 0}, "steps"),
        ({"lr": float("nan")}, "lr"),
        ({"label_dropout": 1.0}, "label_dropout"),
        ({"grad_accum": 0}, "grad_accum"),
    ],
)
def test_it_bad_training_configs(tmp_path, overrides, message):
    with pytest.raises(TrainingError, match=message):
        train(make_dataset(2), make_config(), tmp_path / "m", quick(**overrides))
    assert not (tmp_path / "m").exists()


def test_it_refuses_to_write_into_a_foreign_folder(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "notes.txt").write_text("mine")
    with pytest.raises(TrainingError, match="not a ddpm model folder"):
        train(make_dataset(2), make_config(), tmp_path / "m", quick())
    assert (tmp_path / "m" / "notes.txt").read_text() == "mine"


def test_it_presets_build():
    from generation.engine.ddpm import build_unet, parameter_count

    small = build_unet(DDPMConfig(resolution=64, findings=FINDINGS, preset="small"))
    assert 5e6 < parameter_count(small) < 8e6
    assert small.config.num_class_embeds == len(FINDINGS) + 1
    assert small.config.in_channels == small.config.out_channels == 1
