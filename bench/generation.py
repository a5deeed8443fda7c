"""Sampling throughput of the ddpm engine against a bare diffusers loop.

    .venv/bin/python bench/generation.py                # CPU default: small UNet, 64x64, 10 steps
    .venv/bin/python bench/generation.py --preset base --resolution 256 --steps 50 --batch 32

Like for like: both sides run the same randomly initialised UNet, the same scheduler class and
settings, the same number of steps and images per batch, and the same classifier-free guidance
(cond + uncond halves in one doubled batch; with --guidance 1 neither side doubles). The bare
loop is what a diffusers pipeline does (one randn for the batch, scale_model_input, UNet, guidance,
scheduler.step); the engine adds per-image seeded generators, the uint8 conversion and provenance.
Repeats alternate between the two (engine first, then bare first, ...) so that drift in machine
load hits both equally; the ratio is given both as median engine images/s over median bare
images/s and as the median of the per-pair ratios (the more robust one on a shared machine).

On CUDA it also reports images/s at 256x256, 50 DDIM steps, batch 32, bf16 ("base" preset), the
FLOPs of one UNet forward (torch.utils.flop_counter) and the achieved TFLOP/s against the
measured bf16 rate of a large matmul on the same GPU.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ (this script's folder) holds other scripts whose names shadow the standard library
# (statistics.py): import from the repository root instead
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse
import contextlib
import statistics
import tempfile
import time

import torch

from generation.engine.checkpoints import LoadedModel
from generation.engine.ddpm import DDPMConfig, build_noise_scheduler, build_unet, parameter_count
from generation.engine.devices import pick_placement
from generation.engine.sampling import make_scheduler, sample

FINDINGS = ["normal", "effusion", "cardiomegaly", "nodule"]


def build_model(preset: str, resolution: int, device: torch.device) -> LoadedModel:
    config = DDPMConfig(
        resolution=resolution, findings=FINDINGS, preset=preset, name=f"bench-{preset}"
    )
    torch.manual_seed(0)
    unet = build_unet(config).eval().requires_grad_(False).to(device)
    folder = Path(tempfile.gettempdir())
    return LoadedModel(
        unet=unet,
        config=config,
        scheduler_config=dict(build_noise_scheduler(config).config),
        name=config.name,
        folder=folder,
        checkpoint=folder,
        step=0,
        weights_path=folder,
        weights_sha256="-",
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_loop(
    model: LoadedModel,
    scheduler_name: str,
    batch: int,
    steps: int,
    guidance: float,
    device: torch.device,
    dtype: torch.dtype,
    channels_last: bool,
) -> torch.Tensor:
    """A plain diffusers-style guided loop (what a pipeline would do), for comparison."""
    unet, res = model.unet, model.config.resolution
    scheduler = make_scheduler(scheduler_name, model.scheduler_config)
    scheduler.set_timesteps(steps, device=device)
    generator = torch.Generator().manual_seed(0)
    x = (
        torch.randn((batch, 1, res, res), generator=generator).to(device)
        * scheduler.init_noise_sigma
    )
    labels = torch.arange(batch, device=device) % len(FINDINGS)
    guided = guidance != 1.0
    if guided:
        labels = torch.cat([labels, torch.full_like(labels, model.config.null_class)])
    autocast = (
        torch.autocast(device.type, dtype=dtype)
        if dtype != torch.float32
        else contextlib.nullcontext()
    )
    with torch.inference_mode(), autocast:
        for t in scheduler.timesteps:
            model_in = scheduler.scale_model_input(x, t)
            if guided:
                model_in = torch.cat([model_in, model_in])
            if channels_last:
                model_in = model_in.contiguous(memory_format=torch.channels_last)
            eps = unet(model_in, t, class_labels=labels).sample.float()
            if guided:
                cond, uncond = eps.chunk(2)
                eps = uncond + guidance * (cond - uncond)
            x = scheduler.step(eps, t, x).prev_sample
    return x.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).cpu()


def engine_run(
    model: LoadedModel,
    scheduler_name: str,
    batch: int,
    steps: int,
    guidance: float,
    device: str,
    precision: str | None,
    compile: bool,
):
    findings = [FINDINGS[i % len(FINDINGS)] for i in range(batch)]
    return sample(
        model,
        findings,
        seeds=list(range(batch)),
        steps=steps,
        guidance=guidance,
        scheduler=scheduler_name,
        device=device,
        precision=precision,
        batch_size=batch,
        compile=compile,
    )


def compare(args, device: torch.device) -> None:
    placement = pick_placement(str(device), args.precision)
    model = build_model(args.preset, args.resolution, device)
    on_cuda = device.type == "cuda"
    print(
        f"UNet preset {args.preset!r}: {parameter_count(model.unet) / 1e6:.2f}M parameters, "
        f"{args.resolution}x{args.resolution}, batch {args.batch}, {args.steps} {args.scheduler} steps, "
        f"guidance {args.guidance} ({'cond+uncond doubled batch on both sides' if args.guidance != 1 else 'no guidance on either side'}), "
        f"device {device}, dtype {placement.dtype_name}, threads {torch.get_num_threads()}"
    )

    def run_engine():
        engine_run(
            model,
            args.scheduler,
            args.batch,
            args.steps,
            args.guidance,
            str(device),
            args.precision,
            args.compile,
        )

    def run_bare():
        bare_loop(
            model,
            args.scheduler,
            args.batch,
            args.steps,
            args.guidance,
            device,
            placement.dtype,
            channels_last=on_cuda,
        )

    run_engine()  # warm-up (moves the UNet, sets channels_last, compiles)
    run_bare()
    times = {"engine": [], "bare": []}
    for i in range(args.repeats):
        order = (("engine", run_engine), ("bare", run_bare))
        for name, fn in order if i % 2 == 0 else order[::-1]:
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    rates = {k: args.batch / statistics.median(v) for k, v in times.items()}
    for name, rate in rates.items():
        spread = [f"{args.batch / t:.2f}" for t in times[name]]
        print(
            f"  {name:6s}: {rate:8.2f} images/s (median of {args.repeats}; runs {', '.join(spread)})"
        )
    pair_ratios = sorted(b / e for e, b in zip(times["engine"], times["bare"], strict=True))
    print(
        f"  ratio engine / bare diffusers loop: {rates['engine'] / rates['bare']:.3f} of the medians, "
        f"{statistics.median(pair_ratios):.3f} median of the {args.repeats} side-by-side pairs "
        f"(range {pair_ratios[0]:.3f}-{pair_ratios[-1]:.3f}; target >= 0.97)"
    )


def cuda_report(args, device: torch.device) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    res, steps, batch = args.cuda_resolution, args.cuda_steps, args.cuda_batch
    print(
        f"\nCUDA: {torch.cuda.get_device_name(device)}; preset {args.cuda_preset!r}, {res}x{res}, "
        f"{steps} DDIM steps, batch {batch}, bf16 autocast, guidance {args.guidance}"
    )
    model = build_model(args.cuda_preset, res, device)
    print(f"  UNet: {parameter_count(model.unet) / 1e6:.1f}M parameters")

    def run():
        return engine_run(
            model, "ddim", batch, steps, args.guidance, str(device), "bf16", args.compile
        )

    run()
    times = []
    for _ in range(args.cuda_repeats):
        sync(device)
        t0 = time.perf_counter()
        run()
        sync(device)
        times.append(time.perf_counter() - t0)
    seconds = statistics.median(times)
    print(f"  engine: {batch / seconds:.2f} images/s ({seconds:.2f} s per batch of {batch})")

    forward_batch = batch * (2 if args.guidance != 1 else 1)
    x = torch.randn(forward_batch, 1, res, res, device=device).contiguous(
        memory_format=torch.channels_last
    )
    labels = torch.zeros(forward_batch, dtype=torch.long, device=device)
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        counter = FlopCounterMode(display=False)
        with counter:
            model.unet(x, torch.tensor(500, device=device), class_labels=labels)
    flops = counter.get_total_flops()
    achieved = flops * steps / seconds / 1e12
    print(
        f"  one UNet forward (batch {forward_batch}): {flops / 1e12:.3f} TFLOP; "
        f"achieved {achieved:.1f} TFLOP/s over the whole sampling run"
    )

    n = 8192
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    sync(device)
    reps = 20
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    peak = 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12
    print(
        f"  bf16 matmul {n}x{n}: {peak:.1f} TFLOP/s measured; sampler reaches {100 * achieved / peak:.1f}% of it"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="small", choices=["tiny", "small", "base"])
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--scheduler", default="ddim", choices=["ddim", "dpm++", "euler"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default=None)
    parser.add_argument("--precision", default=None, choices=["fp32", "bf16", "fp16"])
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads; default 1 on CPU (steadier on a shared machine), torch's own on CUDA",
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet (CUDA only)")
    parser.add_argument("--cuda-preset", default="base")
    parser.add_argument("--cuda-resolution", type=int, default=256)
    parser.add_argument("--cuda-steps", type=int, default=50)
    parser.add_argument("--cuda-batch", type=int, default=32)
    parser.add_argument("--cuda-repeats", type=int, default=3)
    parser.add_argument("--skip-compare", action="store_true")
    parser.add_argument("--skip-cuda", action="store_true")
    args = parser.parse_args(argv)
    device = pick_placement(args.device, args.precision).device
    if args.threads or device.type == "cpu":
        torch.set_num_threads(args.threads or 1)
    started = time.perf_counter()
    if not args.skip_compare:
        compare(args, device)
    if device.type == "cuda" and not args.skip_cuda:
        cuda_report(args, device)
    print(f"\ntotal {time.perf_counter() - started:.1f} s; torch {torch.__version__}")


if __name__ == "__main__":
    main()
