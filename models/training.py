"""A general training loop for colorizers: Adam, Polyak averaging, checkpoints, resume, CSV.

``Trainer(model, train_cfg, dataset, val_dataset, out_dir, ...)`` trains any
``nn.Module`` whose ``forward(batch)`` (or a ``loss_fn(model, batch)``) returns a dict of
named scalar loss terms plus ``"total"``; the paper's network and the baselines share it.

- Optimiser (Sec. 4.1): Adam, lr 1e-3, betas (0.95, 0.9995).
- Polyak averaging (Polyak & Juditsky 1992; PIC's decay 0.9995): an exponential moving
  average of the weights, ``ema <- d * ema + (1 - d) * w`` with
  ``d = min(decay, (1 + t) / (10 + t))`` at update t = 0, 1, ... (the warm-up of
  TensorFlow's ExponentialMovingAverage with ``num_updates``), so a short run is not
  dominated by the random initial weights. Validation uses the averaged weights, and the colorizers
  load them (``"ema"`` in the checkpoint).
- Data order: epoch e visits the training set in ``randperm(n, seed * 1000003 + e)``,
  a pure function of (seed, epoch); with the model, optimiser, averaged weights and
  RNG states in the checkpoint, a resumed run repeats the uninterrupted one bit for bit
  on the same device.
- A checkpoint every epoch: ``out_dir/epoch-NNNN.pt`` and ``out_dir/last.pt``
  (``psc_eval.checkpoint.save_checkpoint``, kind ``"colorizer"``), and ``out_dir/log.csv``
  rewritten atomically with the epoch's mean training terms (``train_*``) and the
  validation terms of the averaged weights (``val_*``).
- Multi-GPU: under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in
  DistributedDataParallel, each rank reads every ``world``-th index of the epoch's
  permutation, rank 0 writes checkpoints and the CSV; the logged training terms are
  rank 0's.
"""

from __future__ import annotations

import copy
import csv
import io
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from ..data.base import collate
from ..dist import DistInfo, dist_info, rank_device
from ..errors import ConfigError, PscError, WeightsError
from ..io import atomic_write, ensure_dir
from .config import TrainConfig

# Config keys that may change when resuming (more epochs, another device).
RESUMABLE_KEYS = frozenset({"train.epochs", "train.device", "train.workers"})
LAST = "last.pt"
LOG = "log.csv"


def seed_everything(seed: int) -> None:
    """Seed torch / numpy / python before the model is built (initial weights)."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    random.seed(seed)


def epoch_order(n: int, seed: int, epoch: int) -> Tensor:
    """The training-set order of one epoch: a pure function of (seed, epoch)."""
    g = torch.Generator().manual_seed(seed * 1000003 + epoch)
    return torch.randperm(n, generator=g)


class MemoryCache(torch.utils.data.Dataset):
    """Keep each loaded sample in RAM after its first load, stored compactly.

    ``rgb`` (exactly uint8 / 255 by the sample format) is kept as uint8 and the mask
    as uint8 (labels 0..255), both restored bit-exactly on access. Only useful with
    ``workers=0`` (worker processes do not share the cache).
    """

    def __init__(self, base: torch.utils.data.Dataset):
        self.base = base
        self.store: dict[int, dict] = {}

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict:
        if i not in self.store:
            s = dict(self.base[i])
            if isinstance(s.get("rgb"), Tensor):
                s["rgb"] = torch.round(s["rgb"] * 255.0).to(torch.uint8)
            if isinstance(s.get("mask"), Tensor):
                s["mask"] = s["mask"].to(torch.uint8)
            self.store[i] = s
        s = dict(self.store[i])
        if isinstance(s.get("rgb"), Tensor):
            s["rgb"] = s["rgb"].float() / 255.0
        if isinstance(s.get("mask"), Tensor):
            s["mask"] = s["mask"].to(torch.int64)
        return s


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Keys whose values differ between two resolved configs (lists == tuples)."""
    a, b = _flatten(old), _flatten(new)

    def norm(v):
        return list(v) if isinstance(v, (list, tuple)) else v

    return sorted(k for k in set(a) | set(b) if norm(a.get(k)) != norm(b.get(k)))


def resolve_device(device: str, info: DistInfo) -> torch.device:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked but CUDA is not available, in --device, "
                          "use --device cpu")
    return torch.device(device)


def _to(batch: dict, device: torch.device) -> dict:
    return {k: (v.to(device, non_blocking=True) if isinstance(v, Tensor) else v)
            for k, v in batch.items()}


@dataclass
class TrainResult:
    out_dir: Path
    last: Path
    history: list[dict[str, Any]]
    wall_s: float


class Trainer:
    """Train ``model`` on ``dataset``; see the module docstring.

    ``meta`` is stored in every checkpoint; its ``variant`` and ``num_classes`` must match
    on resume (WeightsError). ``config`` is the resolved config dict; resuming with a
    different one (other than ``RESUMABLE_KEYS``) is a ConfigError.
    """

    def __init__(
        self,
        model: nn.Module,
        train_cfg: TrainConfig,
        dataset: torch.utils.data.Dataset,
        val_dataset: torch.utils.data.Dataset | None,
        out_dir: str | Path,
        *,
        config: dict[str, Any],
        meta: dict[str, Any],
        device: str | torch.device = "cpu",
        loss_fn: Callable[[nn.Module, dict], dict[str, Tensor]] | None = None,
        collate_fn: Callable = collate,
        progress: bool = True,
        kind: str = "colorizer",
    ):
        self.cfg = train_cfg
        self.info = dist_info()
        self.device = resolve_device(rank_device(str(device), self.info), self.info)
        self.model = model.to(self.device)
        self.dataset = dataset
        self.val_dataset = val_dataset
        self.out_dir = Path(out_dir)
        self.config = config
        self.meta = dict(meta)
        self.loss_fn = loss_fn or (lambda m, b: m(b))
        self.collate_fn = collate_fn
        self.progress = progress and self.info.is_main
        self.kind = kind
        self.ema = copy.deepcopy(self.model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=train_cfg.lr,
                                    betas=tuple(train_cfg.betas))
        self.step = 0
        self.epoch = 0  # epochs completed
        self.history: list[dict[str, Any]] = []

    # --- checkpoints ---------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "config": self.config,
            **self.meta,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.opt.state_dict(),
            "rng": rng_state(),
            "data_order": {"seed": self.cfg.seed, "epoch": self.epoch,
                           "scheme": "randperm(n, seed * 1000003 + epoch)"},
            "epoch": self.epoch,
            "step": self.step,
            "history": self.history,
        }

    def _write_csv(self) -> None:
        keys: list[str] = []
        for row in self.history:
            keys += [k for k in row if k not in keys]

        def write(f):
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=keys)
            w.writeheader()
            w.writerows(self.history)
            f.write(buf.getvalue())

        atomic_write(self.out_dir / LOG, write, binary=False)

    def _resume(self, path: Path) -> None:
        ck = load_checkpoint(path, hint="pass an existing checkpoint to --resume")
        for key in ("variant", "dataset", "num_classes"):
            if key in self.meta and ck.get(key) != self.meta[key]:
                raise WeightsError(
                    f"checkpoint has {key}={ck.get(key)!r} but this run has {self.meta[key]!r}, "
                    f"{path}, resume the matching run or train without --resume in another folder"
                )
        if ck.get("kind") != self.kind:
            raise WeightsError(f"checkpoint kind {ck.get('kind')!r} is not {self.kind!r}, {path}, "
                               "pass a checkpoint written by this trainer")
        diff = [k for k in config_diff(ck["config"], self.config) if k not in RESUMABLE_KEYS]
        if diff:
            raise ConfigError(
                f"resuming with a changed config ({', '.join(diff)}), {path}, "
                "rerun with the checkpoint's config or train into another folder"
            )
        self.model.load_state_dict(ck["model"])
        self.ema.load_state_dict(ck["ema"])
        self.opt.load_state_dict(ck["optimizer"])
        self.step, self.epoch = int(ck["step"]), int(ck["epoch"])
        self.history = [dict(r) for r in ck["history"]]
        set_rng_state(ck["rng"])

    # --- one epoch -----------------------------------------------------------------------
    @torch.no_grad()
    def _update_ema(self) -> None:
        t = self.step - 1  # updates before this one
        d = min(self.cfg.polyak, (1.0 + t) / (10.0 + t))
        for pe, p in zip(self.ema.parameters(), self.model.parameters()):
            pe.lerp_(p.detach(), 1.0 - d)
        for be, b in zip(self.ema.buffers(), self.model.buffers()):
            be.copy_(b)

    def _loader(self, ds, indices: list[int]) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(
            ds, batch_size=self.cfg.batch_size, sampler=indices, num_workers=self.cfg.workers,
            collate_fn=self.collate_fn, generator=torch.Generator().manual_seed(0),
        )

    def _nan_error(self, terms: dict[str, float]) -> PscError:
        last = self.out_dir / LAST
        resume = (f"resume from {last} with --resume (e.g. with a lower --lr)"
                  if last.is_file() else "no checkpoint yet; restart with a lower --lr")
        vals = ", ".join(f"{k}={v:.4g}" for k, v in terms.items())
        return PscError(
            f"loss is not finite at step {self.step} (epoch {self.epoch + 1}): {vals}, "
            f"in training {self.out_dir}, {resume}"
        )

    def _train_epoch(self, wrapped: nn.Module) -> dict[str, float]:
        n = len(self.dataset)
        order = epoch_order(n, self.cfg.seed, self.epoch)
        w = self.info.world_size
        order = order[: n - n % w][self.info.rank :: w] if w > 1 else order
        sums: dict[str, float] = {}
        count = 0
        self.model.train()
        bar = tqdm(self._loader(self.dataset, order.tolist()), disable=not self.progress,
                   desc=f"epoch {self.epoch + 1}/{self.cfg.epochs}", leave=False)
        for batch in bar:
            if batch.get("L") is None:  # every sample skipped (no colour)
                continue
            batch = _to(batch, self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16,
                                enabled=self.cfg.amp == "bf16"):
                terms = self.loss_fn(wrapped, batch)
            total = terms["total"]
            vals = {k: float(v.detach()) for k, v in terms.items()}
            if not all(math.isfinite(v) for v in vals.values()):
                raise self._nan_error(vals)
            self.opt.zero_grad(set_to_none=True)
            total.backward()
            if self.cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
            self.opt.step()
            self.step += 1
            self._update_ema()
            b = int(batch["L"].shape[0])
            for k, v in vals.items():
                sums[k] = sums.get(k, 0.0) + v * b
            count += b
            bar.set_postfix({k: f"{v:.3g}" for k, v in vals.items()})
        return {k: v / max(count, 1) for k, v in sums.items()}

    @torch.no_grad()
    def evaluate(self, ds=None, model: nn.Module | None = None) -> dict[str, float]:
        """Mean loss terms of the averaged weights on the validation set."""
        ds = self.val_dataset if ds is None else ds
        model = self.ema if model is None else model
        if ds is None or len(ds) == 0:
            return {}
        model.eval()
        sums: dict[str, float] = {}
        count = 0
        for batch in self._loader(ds, list(range(len(ds)))):
            if batch.get("L") is None:
                continue
            batch = _to(batch, self.device)
            terms = self.loss_fn(model, batch)
            b = int(batch["L"].shape[0])
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v) * b
            count += b
        return {k: v / max(count, 1) for k, v in sums.items()}

    # --- the loop ------------------------------------------------------------------------
    def fit(self, resume: str | Path | None = None) -> TrainResult:
        """Train to ``cfg.epochs``; ``resume`` = a checkpoint path (``last.pt``) or None."""
        t0 = time.time()
        if resume is not None:
            self._resume(Path(resume))
        elif (self.out_dir / LAST).is_file():
            raise ConfigError(
                f"checkpoints already exist, {self.out_dir}, pass --resume to continue them "
                "or remove the folder to start again"
            )
        if self.info.is_main:
            ensure_dir(self.out_dir, "checkpoint folder")
        wrapped: nn.Module = self.model
        if self.info.world_size > 1:
            import torch.distributed as dist
            from torch.nn.parallel import DistributedDataParallel as DDP

            if not dist.is_initialized():
                dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            wrapped = DDP(self.model, device_ids=[self.device.index] if self.device.type == "cuda"
                          else None)
        while self.epoch < self.cfg.epochs:
            te = time.time()
            train = self._train_epoch(wrapped)
            val = self.evaluate()
            self.epoch += 1
            row: dict[str, Any] = {"epoch": self.epoch, "step": self.step}
            row.update({f"train_{k}": v for k, v in train.items()})
            row.update({f"val_{k}": v for k, v in val.items()})
            row["epoch_s"] = round(time.time() - te, 3)
            self.history.append(row)
            if self.info.is_main:
                state = self._state()
                save_checkpoint(self.out_dir / f"epoch-{self.epoch:04d}.pt", state)
                save_checkpoint(self.out_dir / LAST, state)
                self._write_csv()
                if self.progress:
                    tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                        for k, v in row.items()))
        return TrainResult(self.out_dir, self.out_dir / LAST, self.history, time.time() - t0)
