"""Train one ddpm model, or one Stable Diffusion LoRA, with N processes (one per GPU) on this
host. No Django.

The worker that holds the job calls `train_processes`: it starts N copies of this module
(`python -m generation.engine.launch SPEC`) with the torch.distributed variables set (the same
ones torchrun sets: RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), and stays the
job's only contact with the database: it reads rank 0's progress file, and asks the ranks to
stop by writing a stop file (they agree on the step through `distributed.any_rank` and rank 0
saves a checkpoint of it). A rank whose launcher died stops too, so a killed worker leaves no
orphan holding the GPUs; the job's recovery then resumes from the latest checkpoint.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .ddpm import DDPMError

PROGRESS = "progress.json"
RESULT = "result.json"
ERROR = "error-{rank}.json"
STOP = "stop"
POLL_S = 0.5
_ROOT = str(Path(__file__).resolve().parents[2])  # the project, for `python -m` in the ranks


class LaunchError(DDPMError):
    """A rank failed; the message is its error's (or the end of its output)."""


@dataclass(frozen=True)
class Outcome:
    step: int
    cancelled: bool
    last_loss: float | None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _start(spec_path: Path, processes: int, work: Path) -> list[tuple[subprocess.Popen, Any]]:
    port = _free_port()
    ranks = []
    for rank in range(processes):
        env = {
            **os.environ,
            "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(processes),
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
            "SPOTTHEFAKE_LAUNCHER_PID": str(os.getpid()),
            "PYTHONPATH": os.pathsep.join(filter(None, [_ROOT, os.environ.get("PYTHONPATH")])),
        }  # fmt: skip
        log = open(work / f"rank-{rank}.log", "w+b")  # noqa: SIM115 - closed in train_processes
        command = [sys.executable, "-m", "generation.engine.launch", str(spec_path)]
        ranks.append((subprocess.Popen(command, env=env, stdout=log, stderr=log), log))
    return ranks


def _tail(log: Any, limit: int = 4000) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")[-limit:].strip()


def _stop_all(ranks: list[tuple[subprocess.Popen, Any]]) -> None:
    for process, _ in ranks:
        if process.poll() is None:
            process.terminate()
    for process, _ in ranks:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def train_processes(
    spec: dict[str, Any],
    processes: int,
    on_progress: Callable[[dict[str, Any]], None],
    should_stop: Callable[[], bool],
) -> Outcome:
    """Run `spec` (train's arguments as JSON) in `processes` ranks until they finish or fail.

    `on_progress({"step", "total", "loss"})` is called in this process after each new step
    rank 0 reports; `should_stop()` true asks the ranks to stop (they save the step's checkpoint).
    """
    with tempfile.TemporaryDirectory(prefix="sf-launch-") as folder:
        work = Path(folder)
        spec_path = work / "spec.json"
        _write_json(spec_path, {**spec, "work": str(work)})
        ranks = _start(spec_path, processes, work)
        try:
            _watch(ranks, work, on_progress, should_stop)
        except BaseException:
            _stop_all(ranks)
            raise
        finally:
            for _, log in ranks:
                log.close()
        result = _read_json(work / RESULT)
        if result is None:
            raise LaunchError("the training processes ended without a result")
        return Outcome(int(result["step"]), bool(result["cancelled"]), result["last_loss"])


def _watch(ranks, work: Path, on_progress, should_stop) -> None:
    seen = -1
    stop_written = False
    while True:
        progress = _read_json(work / PROGRESS)
        if progress is not None and progress["step"] != seen:
            seen = progress["step"]
            on_progress(progress)
        if not stop_written and should_stop():
            (work / STOP).touch()
            stop_written = True
        codes = [process.poll() for process, _ in ranks]
        failed = [rank for rank, code in enumerate(codes) if code not in (None, 0)]
        if failed:
            raise LaunchError(_failure(ranks, codes, failed, work))
        if all(code == 0 for code in codes):
            progress = _read_json(work / PROGRESS)
            if progress is not None and progress["step"] != seen:
                on_progress(progress)
            return
        time.sleep(POLL_S)


def _failure(ranks, codes: list, failed: list[int], work: Path) -> str:
    """The researcher's message of the first rank that said why it failed, else an output tail."""
    for rank in failed:
        error = _read_json(work / ERROR.format(rank=rank))
        if error is not None:
            return str(error["message"])
    rank = failed[0]
    return (
        f"training process {rank} of {len(ranks)} failed (exit code {codes[rank]}):\n"
        f"{_tail(ranks[rank][1])}"
    )


# ------------------------------------------------------------------------- one rank
def _stop_requested(work: Path, launcher: int) -> bool:
    return (work / STOP).exists() or os.getppid() != launcher


def _rank_main(spec_path: str) -> None:
    import torch

    from . import distributed

    spec = json.loads(Path(spec_path).read_text())
    work, launcher = Path(spec["work"]), int(os.environ["SPOTTHEFAKE_LAUNCHER_PID"])
    torch.set_num_threads(max(1, int(spec.get("threads_per_rank", 1))))
    device = spec.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
    world = distributed.init_from_env(torch.device(device).type)
    if torch.device(device).type == "cuda":
        torch.cuda.set_device(world.local_rank)

    def on_step(step: int, total: int, loss: float) -> None:
        if world.main:
            _write_json(work / PROGRESS, {"step": step, "total": total, "loss": loss})

    try:
        result = _train_rank(spec, device, world, on_step, lambda: _stop_requested(work, launcher))
        if world.main:
            _write_json(work / RESULT, {
                "step": result.step, "cancelled": result.cancelled,
                "last_loss": result.last_loss,
            })  # fmt: skip
    except _researcher_errors() as error:  # a message for the researcher (bad data, NaN, ...)
        _write_json(work / ERROR.format(rank=world.rank), {"message": str(error)})
        raise SystemExit(1) from None
    finally:
        if world.active:
            torch.distributed.destroy_process_group()


def _researcher_errors() -> tuple[type[Exception], ...]:
    from .stable_diffusion.errors import StableDiffusionError

    return (DDPMError, StableDiffusionError, ValueError)


def _train_rank(spec: dict, device: str, world, on_step, cancel):
    if spec.get("kind") == "lora":
        return _train_lora_rank(spec, device, on_step, cancel)
    from .ddpm import DDPMConfig
    from .training import TrainingConfig, train

    training = dict(spec["training"])
    training["adam_betas"] = tuple(training.get("adam_betas", (0.9, 0.999)))
    return train(
        [tuple(item) for item in spec["dataset"]],
        DDPMConfig.from_dict(spec["config"]),
        spec["model_dir"],
        TrainingConfig(**training),
        device=device,
        on_step=on_step,
        cancel=cancel,
        resume=True,
        save_on_cancel=True,
    )


def _train_lora_rank(spec: dict, device: str, on_step, cancel):
    from .stable_diffusion.lora import LoraTrainingConfig, train_lora

    return train_lora(
        spec["checkpoint"],
        spec["model_dir"],
        [tuple(item) for item in spec["dataset"]],
        LoraTrainingConfig.from_dict(spec["lora"]),
        device=device,
        resume=True,
        on_step=on_step,
        cancel=cancel,
        model_name=spec.get("model_name"),
    )


if __name__ == "__main__":
    _rank_main(sys.argv[1])
