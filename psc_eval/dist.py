"""Distributed evaluation helpers: run under ``torchrun --nproc_per_node N`` or alone.

torchrun sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; we then join the default
process group (gloo on CPU, nccl on CUDA). Metric states are plain sums (confusion
counts, PSNR sums and counts), so ranks combine them with ``all_reduce(SUM)`` as
torchmetrics' states do; the result is independent of how images were split.
"""

from __future__ import annotations

import os
import threading
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
        _start_abort_watch()
    return dist_info()


# --- one failing rank ends the run -------------------------------------------------------
# A rank that fails sets ABORT_KEY in the process group's store; every rank runs a watcher
# thread that polls it (and the store itself: rank 0 hosts it) and ends its process at
# once, instead of waiting in a collective for the backend's timeout (tens of minutes on
# NCCL). The first rank to fail prints the one-line error; the others exit silently.
ABORT_KEY = "psc-eval/abort"
ABORT_COUNT = "psc-eval/abort-count"
ABORT_POLL_S = 0.5
_watch_stop = threading.Event()


def _store() -> Any:
    try:
        from torch.distributed import distributed_c10d

        return distributed_c10d._get_default_store()
    except Exception:  # noqa: BLE001 - no group, or a torch without the private accessor
        return None


def _start_abort_watch() -> None:
    store = _store()
    if store is None:
        return
    _watch_stop.clear()

    def watch() -> None:
        while not _watch_stop.wait(ABORT_POLL_S):
            try:
                code = int(store.get(ABORT_KEY)) if store.check([ABORT_KEY]) else None
            except Exception:  # noqa: BLE001 - the store (rank 0) is gone: the run is over
                code = 2
            if code is not None and not _watch_stop.is_set():
                os._exit(code)

    threading.Thread(target=watch, name="psc-eval-abort-watch", daemon=True).start()


def abort_run(exit_code: int) -> tuple[bool, int]:
    """Tell every rank to stop. Returns (whether this rank is the first to fail, and so
    reports; the exit status of the run: the first failing rank's)."""
    if not (tdist.is_available() and tdist.is_initialized()):
        return True, exit_code
    _watch_stop.set()  # this rank ends by itself
    store = _store()
    if store is None:
        return True, exit_code
    try:
        if store.add(ABORT_COUNT, 1) == 1:
            store.set(ABORT_KEY, str(exit_code))
            return True, exit_code
        # another rank failed first (this one may only have lost its peer): its status
        store.wait([ABORT_KEY])
        return False, int(store.get(ABORT_KEY))
    except Exception:  # noqa: BLE001 - the store is gone with rank 0, which failed first
        return False, 2


def shutdown_distributed() -> None:
    """End a finished run's process group cleanly (all ranks reach here, then it closes)."""
    if tdist.is_available() and tdist.is_initialized():
        _watch_stop.set()
        try:
            tdist.barrier()
        finally:
            tdist.destroy_process_group()


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
