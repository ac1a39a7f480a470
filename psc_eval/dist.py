"""Distributed evaluation helpers: run under ``torchrun --nproc_per_node N`` or alone.

torchrun sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; we then join the default
process group (gloo on CPU, nccl on CUDA). Metric states are plain sums (confusion
counts, PSNR sums and counts), so ranks combine them with ``all_reduce(SUM)`` as
torchmetrics' states do; the result is independent of how images were split.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as tdist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def dist_info() -> DistInfo:
    """Rank / world size from the initialised group, else from torchrun's environment."""
    if tdist.is_available() and tdist.is_initialized():
        return DistInfo(tdist.get_rank(), tdist.get_world_size(),
                        int(os.environ.get("LOCAL_RANK", tdist.get_rank())))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return DistInfo(rank, world, int(os.environ.get("LOCAL_RANK", rank)))


def init_distributed(device: str = "cpu") -> DistInfo:
    """Join the process group when launched by torchrun (no-op for a single process)."""
    info = dist_info()
    if info.world_size > 1 and not tdist.is_initialized():
        backend = "nccl" if str(device).startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(info.local_rank)
        tdist.init_process_group(backend=backend)
    return dist_info()


def rank_device(device: str, info: DistInfo) -> str:
    """``cuda`` becomes ``cuda:<local_rank>`` under torchrun; anything else is kept."""
    if info.enabled and device == "cuda":
        return f"cuda:{info.local_rank}"
    return device


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a tensor over ranks in place (the backend's device: nccl needs CUDA tensors)."""
    if not info.enabled:
        return t
    dev = t.device
    work = t.to("cuda") if tdist.get_backend() == "nccl" and dev.type != "cuda" else t
    tdist.all_reduce(work, op=tdist.ReduceOp.SUM)
    if work is not t:
        t.copy_(work.to(dev))
    return t


def all_gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    tdist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    if info.enabled:
        tdist.barrier()


DEVICE_HELP = "auto (CUDA when available, else CPU), cpu, cuda or cuda:K"


def resolve_device(device: str | None = "auto") -> str:
    """The device a command runs on: ``auto`` (or None) is ``cuda`` when CUDA is available,
    else ``cpu``; ``cuda``/``cuda:K`` without CUDA, or an unknown name, is a ConfigError.
    Under torchrun, ``cuda`` becomes ``cuda:<local_rank>`` (``rank_device``)."""
    from .errors import ConfigError

    name = "auto" if device is None else str(device).strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r}, in --device, use {DEVICE_HELP}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} asked but CUDA is not available, in --device, "
                              "use --device cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r} does not exist ({torch.cuda.device_count()} "
                              "GPUs), in --device, use an index below that")
    elif dev.type != "cpu":
        raise ConfigError(f"unsupported device {device!r}, in --device, use {DEVICE_HELP}")
    return rank_device(name, dist_info())
