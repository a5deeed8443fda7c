"""The few torch.distributed operations the trainers need, and a no-op when run alone. No Django.

A trainer started by `launch` (or torchrun, or any launcher setting RANK / WORLD_SIZE /
MASTER_ADDR / MASTER_PORT) joins the process group with `init_from_env`; without those
variables it runs as one process and every operation here returns its input.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


def current() -> World:
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return World(dist.get_rank(), dist.get_world_size(), local)


def init_from_env(device_type: str) -> World:
    """Join the process group the launcher described (gloo on CPU, nccl on CUDA)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return current()


def all_mean(value: float, world: World, device: torch.device) -> float:
    """The mean of `value` over all ranks (the global batch's loss from each rank's part)."""
    if not world.active:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return float(tensor.item()) / world.size


def any_rank(flag: bool, world: World, device: torch.device) -> bool:
    """True on every rank if it is true on any (so all ranks stop at the same step)."""
    if not world.active:
        return flag
    tensor = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def gather(obj: Any, world: World) -> list[Any]:
    """[obj of rank 0, obj of rank 1, ...] on every rank."""
    if not world.active:
        return [obj]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def broadcast(obj: Any, world: World) -> Any:
    """Rank 0's `obj` on every rank."""
    if not world.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(world: World) -> None:
    if world.active:
        dist.barrier()


def wrap(module: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """DistributedDataParallel around `module` (gradients averaged over ranks); alone: itself."""
    if not world.active:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def local_device(device: torch.device, world: World) -> torch.device:
    """Each rank's own GPU (cuda:LOCAL_RANK) when several ranks share a host."""
    if device.type == "cuda" and world.active and device.index is None:
        return torch.device("cuda", world.local_rank)
    return device
