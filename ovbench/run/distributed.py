"""Which device a process computes on, and joining a torchrun job: the one place ovbench starts
torch.distributed, for `run` and `train` alike.

The process-group backend follows the device the process really uses, not the machine:
`torchrun ... ovbench train --device cpu` on a GPU node joins with gloo (NCCL would refuse CPU
tensors), and each CUDA process joins on the GPU of its local rank.
"""

from __future__ import annotations

import datetime
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ovbench.errors import ConfigError
from ovbench.records.provenance import usable_cores


@dataclass(frozen=True)
class Launch:
    """Where this process stands in a torchrun job."""

    rank: int
    world: int
    local_rank: int


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"--device {spec!r} is not a device (auto, cpu, cuda, cuda:K)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {spec}: CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s)")
    return device


def torchrun_launch() -> Launch | None:
    """This process's place when torchrun started several, else None (read from torchrun's
    environment; nothing is joined yet)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    return Launch(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def process_device(spec: str, launch: Launch | None) -> torch.device:
    """The device of this process: under torchrun, `auto` and `cuda` mean the GPU of the local
    rank (each process its own GPU)."""
    if launch is not None and spec in ("auto", "cuda") and torch.cuda.is_available():
        spec = f"cuda:{launch.local_rank}"
    return resolve_device(spec)


def join(device: torch.device) -> Launch | None:
    """Join the torchrun job (if any) with the backend for `device`: NCCL for CUDA, gloo else."""
    launch = torchrun_launch()
    if launch is None:
        return None
    import torch.distributed as dist

    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)  # NCCL's object collectives use the current device
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Launch(dist.get_rank(), dist.get_world_size(), launch.local_rank)


def leave(wait_for_others: bool) -> None:
    """Close the group before exiting: a process that exits with it open can abort in the
    collective library's threads (SIGABRT) after its work is done. After a failure the other
    ranks are not waited for (they may be inside another collective); torchrun stops them."""
    if "torch.distributed" not in sys.modules:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if wait_for_others:
            dist.barrier()
        dist.destroy_process_group()


def long_barrier_group(group):
    """A gloo group whose barrier waits as long as ranks take to finish far apart (NCCL's 10
    minutes would kill a job whose ranks got unequal work); a rank that fails ends the job
    through torchrun, not through this timeout."""
    if group is None:
        return None
    return torch.distributed.new_group(backend="gloo", timeout=datetime.timedelta(days=7))


def leave_cores_to_workers(workers: int) -> None:
    """On CPU the model's threads and the decoding workers share the cores; oversubscribed,
    OpenMP threads spin at barriers and a run slows down many times (measured: 20x on 2 cores).
    An explicit OMP_NUM_THREADS wins."""
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, usable_cores() - workers))


def process_group(count: int):
    """The torch.distributed default group when running under torchrun, else None."""
    if count > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.group.WORLD
    return None


def agree(group, decide: Callable[[], Any]) -> Any:
    """Rank 0 decides, everyone receives the same answer."""
    if group is None:
        return decide()
    box = [decide() if torch.distributed.get_rank() == 0 else None]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]
