"""The ddpm training recipe: prediction type, schedules, min-SNR weighting, offset noise, LR
schedule, flips and the null class, each checked against what the literature defines."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from generation.engine import checkpoints as ckpt
from generation.engine import recipe
from generation.engine import training as training_mod
from generation.engine.checkpoints import load_model
from generation.engine.ddpm import (
    LEGACY_RECIPE,
    DDPMConfig,
    DDPMError,
    build_noise_scheduler,
)
from generation.engine.sampling import SCHEDULERS, denoise, make_scheduler, sample
from generation.engine.training import (
    LEGACY_TRAINING_RECIPE,
    TrainingConfig,
    TrainingError,
    diffusion_loss,
    init_unet,
    prepare_dataset,
    train,
)

from .test_ddpm_training import FINDINGS, quick
from .test_ddpm_training import make_dataset as toy_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


def make_config(**overrides) -> DDPMConfig:
    base = {"resolution": 32, "findings": FINDINGS, "preset": "tiny", "name": "recipe-test"}
    return DDPMConfig(**{**base, **overrides})


def test_it_zero_terminal_snr_makes_the_last_alpha_bar_zero():
    for schedule in ("linear", "squaredcos_cap_v2", "scaled_linear"):
        scheduler = build_noise_scheduler(make_config(beta_schedule=schedule))
        assert float(scheduler.alphas_cumprod[-1]) == 0.0, schedule
        plain = build_noise_scheduler(
            make_config(beta_schedule=schedule, prediction_type="epsilon",
                        rescale_betas_zero_snr=False)
        )  # fmt: skip
        assert float(plain.alphas_cumprod[-1]) > 0.0
        # Lin et al.: the rescale keeps the first step's SNR and only pulls the end to zero
        torch.testing.assert_close(scheduler.alphas_cumprod[0], plain.alphas_cumprod[0])


def test_it_zero_terminal_snr_needs_v_prediction():
    with pytest.raises(DDPMError, match="v_prediction"):
        make_config(prediction_type="epsilon", rescale_betas_zero_snr=True)
    with pytest.raises(DDPMError, match="prediction_type"):
        make_config(prediction_type="sample")
    with pytest.raises(DDPMError, match="beta_schedule"):
        make_config(beta_schedule="sigmoid")


def test_it_the_cosine_schedule_is_nichol_and_dhariwals():
    config = make_config(beta_schedule="squaredcos_cap_v2", rescale_betas_zero_snr=False)
    scheduler = build_noise_scheduler(config)

    def f(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    for t in (0, 100, 500, 900):
        expected = f((t + 1) / 1000) / f(0)  # alpha_bar after step t (0-based)
        assert float(scheduler.alphas_cumprod[t]) == pytest.approx(expected, rel=1e-3)


def test_it_a_shifted_schedule_divides_the_snr_by_the_shift_squared():
    base = build_noise_scheduler(make_config(rescale_betas_zero_snr=False))
    shifted = build_noise_scheduler(make_config(rescale_betas_zero_snr=False, schedule_shift=2.0))
    t = torch.tensor([10, 200, 500, 800])
    ratio = recipe.snr(shifted.alphas_cumprod, t) / recipe.snr(base.alphas_cumprod, t)
    torch.testing.assert_close(ratio, torch.full((4,), 0.25), rtol=2e-3, atol=0)
    # and sampling reads the same shifted schedule back from the saved config
    sampler = make_scheduler("ddim", dict(shifted.config))
    torch.testing.assert_close(sampler.alphas_cumprod, shifted.alphas_cumprod)
    ztsnr = build_noise_scheduler(make_config(schedule_shift=2.0))
    assert float(ztsnr.alphas_cumprod[-1]) == 0.0


# -------------------------------------------------------------------- targets and weights
def test_it_the_v_target_is_salimans_and_hos():
    scheduler = build_noise_scheduler(make_config())
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(4, 1, 8, 8, generator=g), torch.randn(4, 1, 8, 8, generator=g)
    t = torch.tensor([0, 300, 700, 999])
    ab = scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    expected = ab.sqrt() * noise - (1 - ab).sqrt() * x0
    torch.testing.assert_close(recipe.training_target(scheduler, x0, noise, t), expected)
    eps_scheduler = build_noise_scheduler(
        make_config(prediction_type="epsilon", rescale_betas_zero_snr=False)
    )
    assert recipe.training_target(eps_scheduler, x0, noise, t) is noise


def test_it_min_snr_weights_are_hang_et_als():
    snr = torch.tensor([0.01, 0.5, 1.0, 5.0, 20.0, 1000.0])
    gamma = 5.0
    clipped = torch.minimum(snr, torch.tensor(gamma))
    torch.testing.assert_close(recipe.min_snr_weights(snr, gamma, "epsilon"), clipped / snr)
    torch.testing.assert_close(recipe.min_snr_weights(snr, gamma, "v_prediction"), clipped / (snr + 1))
    assert torch.equal(recipe.min_snr_weights(snr, 0.0, "epsilon"), torch.ones(6))
    # the zero-SNR end of a rescaled schedule: finite, and trained
    zero = torch.tensor([0.0, 2.0])
    for kind in ("epsilon", "v_prediction"):
        weights = recipe.min_snr_weights(zero, gamma, kind)
        assert torch.isfinite(weights).all() and float(weights[0]) == 1.0


def test_it_the_weighted_loss_is_the_weighted_mean_of_per_image_errors():
    config = make_config()
    unet = init_unet(config, seed=0).eval()
    scheduler = build_noise_scheduler(config)
    g = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(4, 1, 32, 32, generator=g), torch.randn(4, 1, 32, 32, generator=g)
    t, labels = torch.tensor([5, 250, 600, 999]), torch.tensor([0, 1, 2, 0])
    with torch.no_grad():
        weighted = diffusion_loss(unet, scheduler, x0, labels, noise, t, min_snr_gamma=5.0)
        pred = unet(scheduler.add_noise(x0, noise, t), t, class_labels=labels).sample
    target = scheduler.get_velocity(x0, noise, t)
    per_image = ((pred - target) ** 2).mean(dim=(1, 2, 3))
    snr = recipe.snr(scheduler.alphas_cumprod, t)
    weights = torch.where(snr == 0, 1.0, torch.clamp(snr, max=5.0) / (snr + 1))
    torch.testing.assert_close(weighted, (per_image * weights).mean())


# --------------------------------------------------------------------- LR, noise, flips
def test_it_the_lr_warms_up_then_decays_to_zero_by_the_end():
    factor = recipe.lr_lambda(warmup=10, total=100, schedule="cosine")
    assert factor(0) == pytest.approx(0.1)
    assert factor(10) == 1.0  # warm-up end: the full learning rate
    assert factor(55) == pytest.approx(0.5)  # half-way through the decay
    assert factor(100) == pytest.approx(0.0, abs=1e-12)  # the end
    constant = recipe.lr_lambda(warmup=10, total=100, schedule="constant")
    assert [constant(i) for i in (9, 10, 100)] == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="lr_schedule"):
        recipe.lr_lambda(10, 100, "step")


def test_it_training_logs_the_warm_up_and_cosine_learning_rates(tmp_path):
    result = train(toy_dataset(4), make_config(), tmp_path / "m", quick(lr=1e-3, steps=6))
    rows = [json.loads(line) for line in (tmp_path / "m" / ckpt.LOSS_LOG).read_text().splitlines()]
    lrs = [row["lr"] for row in rows]  # the LR of steps 1..6: factor(0..5)
    assert lrs[0] == pytest.approx(5e-4) and lrs[2] == pytest.approx(1e-3)
    assert lrs[5] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 3 / 4)))
    state = ckpt.load_training_state(result.last_checkpoint)
    assert state["lr_scheduler"]["_last_lr"][0] == pytest.approx(0.0, abs=1e-12)


def test_it_offset_noise_adds_one_constant_per_image():
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(2000, 1, 4, 4, generator=g)
    assert recipe.add_offset_noise(noise, 0.0, g) is noise
    shifted = recipe.add_offset_noise(noise, 0.1, g)
    offset = shifted - noise
    assert torch.allclose(offset, offset[:, :, :1, :1].expand_as(offset), atol=1e-6)
    assert float(offset[:, 0, 0, 0].std()) == pytest.approx(0.1, rel=0.1)


def test_it_flips_are_off_by_default_and_mirror_when_asked(tmp_path, monkeypatch):
    assert TrainingConfig().hflip is False
    calls = []
    original = training_mod.random_hflip
    monkeypatch.setattr(
        training_mod, "random_hflip", lambda x, g, *rest: calls.append(len(x)) or original(x, g, *rest)
    )
    train(toy_dataset(4), make_config(), tmp_path / "a", quick(steps=2, checkpoint_every=2))
    assert calls == []
    train(toy_dataset(4), make_config(), tmp_path / "b", quick(steps=2, hflip=True))
    assert calls == [4, 4]
    x = torch.arange(2 * 16, dtype=torch.float32).view(2, 1, 4, 4).repeat(50, 1, 1, 1)
    flipped = recipe.random_hflip(x, torch.Generator().manual_seed(0))
    mirrored = [bool(torch.equal(a, b.flip(-1))) for a, b in zip(flipped, x, strict=True)]
    kept = [bool(torch.equal(a, b)) for a, b in zip(flipped, x, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True))
    assert 30 < sum(mirrored) < 70


# ------------------------------------------------------------------------ the null class
def test_it_images_without_a_finding_train_the_null_class(tmp_path, monkeypatch):
    config = make_config()
    data = toy_dataset(4) + [(toy_dataset(1)[0][0], ""), (toy_dataset(1)[0][0], None)]
    labels = [label for _, label in prepare_dataset(data, config)]
    assert labels == [0, 1, 0, 1, config.null_class, config.null_class]
    seen: list[int] = []
    original = training_mod.diffusion_loss

    def recording(unet, scheduler, x0, labels, *args, **kwargs):
        seen.extend(labels.tolist())
        return original(unet, scheduler, x0, labels, *args, **kwargs)

    monkeypatch.setattr(training_mod, "diffusion_loss", recording)
    train(data, config, tmp_path / "m", quick(steps=3, batch_size=6, label_dropout=0.0,
                                              checkpoint_every=3))  # fmt: skip
    assert seen.count(config.null_class) == 2 * 3  # every epoch shows both unlabelled images


# ---------------------------------------------------------------- each option converges
def _fixed_loss(config, unet, data, gamma: float) -> float:
    x0 = torch.from_numpy(np.stack([a for a, _ in data]))[:, None].float() / 127.5 - 1
    labels = torch.tensor([FINDINGS.index(f) for _, f in data])
    g = torch.Generator().manual_seed(123)
    noise = torch.randn(x0.shape, generator=g)
    t = torch.linspace(50, 950, len(data)).long()
    with torch.no_grad():
        scheduler = build_noise_scheduler(config)
        return float(diffusion_loss(unet.eval(), scheduler, x0, labels, noise, t,
                                    min_snr_gamma=gamma))  # fmt: skip


@pytest.mark.parametrize(
    ("model", "training"),
    [
        # the new defaults: v, cosine, zero-terminal SNR, min-SNR 5, warm-up + cosine LR
        ({}, {}),
        # the old recipe's schedule with every other new training option on
        (
            {"prediction_type": "epsilon", "beta_schedule": "linear",
             "rescale_betas_zero_snr": False, "schedule_shift": 2.0, "dropout": 0.1},
            {"min_snr_gamma": 5.0, "offset_noise": 0.1, "hflip": True},
        ),
    ],
    ids=["new-defaults", "eps-shift-dropout-offset-flip"],
)  # fmt: skip
def test_it_a_tiny_run_converges_with_the_options(tmp_path, model, training):
    config = make_config(**model)
    data = toy_dataset(8)
    tc = quick(steps=40, batch_size=8, lr=3e-3, warmup_steps=5, checkpoint_every=40,
               label_dropout=0.0, log_every=10, **training)  # fmt: skip
    before = _fixed_loss(config, init_unet(config, seed=0), data, tc.min_snr_gamma)
    result = train(data, config, tmp_path / "m", tc)
    unet = init_unet(config, seed=0)
    unet.load_state_dict(ckpt.load_state_tensors(result.last_checkpoint / ckpt.RAW_WEIGHTS))
    after = _fixed_loss(config, unet, data, tc.min_snr_gamma)
    assert after < 0.6 * before, (before, after)


# ---------------------------------------------------------------------------- sampling
class _Oracle(torch.nn.Module):
    """A 'UNet' that knows the answer x0: it outputs the exact epsilon or v for any x_t."""

    def __init__(self, x0: torch.Tensor, alphas_cumprod: torch.Tensor, prediction_type: str):
        super().__init__()
        self.x0, self.ab, self.kind = x0, alphas_cumprod.double(), prediction_type

    def forward(self, x, t, class_labels=None, return_dict=False):
        ab = self.ab[int(round(float(t)))]
        x0 = self.x0.expand(x.shape[0], -1, -1, -1).double()
        eps = (x.double() - ab.sqrt() * x0) / (1 - ab).sqrt()
        out = eps if self.kind == "epsilon" else ab.sqrt() * eps - (1 - ab).sqrt() * x0
        return (out.float(),)


@pytest.mark.parametrize("scheduler_name", SCHEDULERS)
def test_it_every_sampler_reads_v_predictions_as_v(scheduler_name):
    config = make_config()  # v-prediction, zero-terminal SNR
    scheduler_config = dict(build_noise_scheduler(config).config)
    target = torch.linspace(-0.8, 0.8, 32 * 32).view(1, 1, 32, 32)
    oracle = _Oracle(target, build_noise_scheduler(config).alphas_cumprod, "v_prediction")
    noise = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))

    def run(cfg, steps):
        return denoise(oracle, make_scheduler(scheduler_name, cfg), noise,
                       torch.zeros(2, dtype=torch.long), null_class=2, steps=steps, guidance=1.0)  # fmt: skip

    x = run(scheduler_config, 20)
    assert x is not None and float((x - target).abs().max()) < 0.05
    # read as epsilon, the first step from pure noise lands far off (later steps would hide it:
    # the oracle recomputes its answer from wherever the sampler has got to)
    wrong = run({**scheduler_config, "prediction_type": "epsilon", "rescale_betas_zero_snr": False}, 1)
    assert float((wrong - target).abs().mean()) > 0.2


def test_it_a_v_model_samples_with_the_v_sampler(tmp_path):
    config = make_config()
    train(toy_dataset(4), config, tmp_path / "m", quick(steps=3, checkpoint_every=3))
    model = load_model(tmp_path / "m")
    assert model.config.prediction_type == "v_prediction"
    assert model.scheduler_config["prediction_type"] == "v_prediction"
    assert model.scheduler_config["rescale_betas_zero_snr"] is True
    for name in SCHEDULERS:
        sampler = make_scheduler(name, model.scheduler_config)
        assert sampler.config.prediction_type == "v_prediction"
        assert sampler.config.rescale_betas_zero_snr is True
        images = sample(model, "normal", seeds=[0, 1], steps=3, scheduler=name, device="cpu")
        assert images[0].provenance["prediction_type"] == "v_prediction"
        assert images[0].array.shape == (32, 32)


# ------------------------------------------------------------------- old checkpoints
def test_it_an_old_checkpoint_loads_resumes_and_samples_as_epsilon_linear(tmp_path):
    old = make_config(**LEGACY_RECIPE)
    # trained as before the recipe options: constant learning rate, no weighting
    train(toy_dataset(4), old, tmp_path / "m",
          quick(steps=3, checkpoint_every=3, **LEGACY_TRAINING_RECIPE))  # fmt: skip
    for marker_path in [tmp_path / "m" / ckpt.MARKER, *(tmp_path / "m").glob("checkpoints/*/" + ckpt.MARKER)]:
        marker = json.loads(marker_path.read_text())  # as written before the recipe fields
        for key in ("prediction_type", "rescale_betas_zero_snr", "schedule_shift"):
            marker["model"].pop(key)
        marker_path.write_text(json.dumps(marker))
    model = load_model(tmp_path / "m")
    assert (model.config.prediction_type, model.config.beta_schedule) == ("epsilon", "linear")
    assert make_scheduler("ddim", model.scheduler_config).config.prediction_type == "epsilon"
    assert len(sample(model, "normal", seeds=[0], steps=2, device="cpu")) == 1
    saved = json.loads((tmp_path / "m" / ckpt.MARKER).read_text())["model"]
    resumed = train(toy_dataset(4), DDPMConfig.from_dict(saved), tmp_path / "m",
                    quick(steps=6, checkpoint_every=3, **LEGACY_TRAINING_RECIPE))  # fmt: skip
    assert resumed.step == 6


def test_it_bad_recipe_options_are_refused(tmp_path):
    for overrides, message in (
        ({"min_snr_gamma": -1.0}, "min_snr_gamma"),
        ({"offset_noise": 2.0}, "offset_noise"),
        ({"lr_schedule": "linear"}, "lr_schedule"),
    ):
        with pytest.raises(TrainingError, match=message):
            train(toy_dataset(2), make_config(), tmp_path / "m", quick(**overrides))
    with pytest.raises(DDPMError, match="schedule_shift"):
        make_config(schedule_shift=0.0)
