"""A training run in N processes on the worker's host (one per GPU). Worker side only.

The backend builds the run's spec (what `generation.engine.launch` hands each rank's trainer);
this process keeps the job: progress, cancel and the time limit go through the launcher.
"""

from __future__ import annotations

import os
from typing import Any

from generation.backends.base import JobError, TrainingOutcome, TrainingSession


def train_in_processes(
    session: TrainingSession, spec: dict[str, Any], gpus: int, checkpoint_every: int
) -> TrainingOutcome:
    """Run `spec` in `gpus` ranks (gloo on CPU, nccl on CUDA) until they finish or stop."""
    import torch

    from generation.engine import launch

    device = session.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and gpus > torch.cuda.device_count():
        raise JobError(
            f"the run asks for {gpus} GPUs; this worker sees {torch.cuda.device_count()} "
            f"(CUDA_VISIBLE_DEVICES / the container's device reservation)"
        )
    spec = {**spec, "device": device, "threads_per_rank": max(1, (os.cpu_count() or 1) // gpus)}
    on_step = session.step_callback(checkpoint_every)
    outcome = launch.train_processes(
        spec,
        gpus,
        lambda progress: on_step(progress["step"], progress["total"], progress["loss"]),
        session.cancel,
    )
    return TrainingOutcome(outcome.cancelled, outcome.step, outcome.last_loss)
