"""THE training loop of psc-eval: the paper's model, the judges and every baseline use it.

A trainable method supplies its parts (:class:`TrainMethod`, in the spirit of nanoGPT's
``configure_optimizers``): the model, its optimisers with their learning-rate schedules,
and a step that returns the named loss terms of a batch (``"total"`` is minimised). With
several optimisers (a GAN's discriminator and generator) the step is called once per
optimiser in turn, with ``opt_index``. The loop, not the method, calls backward and steps
the optimisers and schedulers; it owns everything else:

- Data order: epoch e visits the training set in ``randperm(n, seed * 1000003 + e)``
  (:func:`epoch_order`), a pure function of (seed, epoch); under ``torchrun`` each rank
  reads every ``world``-th index of it. Augmentation randomness comes from the
  ``generator`` handed to the step, seeded from (seed, step): a pure function as well.
- bf16 autocast (``amp="bf16"``), gradient clipping (``grad_clip`` > 0, per optimiser),
  a one-line error on a non-finite loss term (naming the step and the checkpoint to
  resume from), DDP under ``torchrun`` (rank 0 writes).
- Polyak averaging (``ema_decay`` set; Polyak & Juditsky 1992, PIC's 0.9995): after each
  step ``ema <- d * ema + (1 - d) * w`` with ``d = min(decay, (1 + t) / (10 + t))`` at
  update t = 0, 1, ... (TensorFlow's ExponentialMovingAverage warm-up), so a short run is
  not dominated by the initial weights. Validation uses the averaged weights.
- Checkpoints (``psc_eval.checkpoint``): ``out_dir/last.pt`` after every epoch AND every
  ``checkpoint_every`` optimiser steps (mid-epoch: the position in the epoch, the
  epoch's running sums and the RNG states are stored), ``out_dir/epoch-NNNN.pt`` after
  every epoch (``keep_epochs``), and ``out_dir/log.csv`` with one row per epoch of every
  loss term (``train_*``, ``val_*``). A run killed anywhere and resumed from ``last.pt``
  reaches the same weights, bit for bit on the same device, as an uninterrupted run.
- Refusals: resuming a checkpoint of another kind or method, or with a changed config
  (other than the keys the method declares resumable) is a one-line error; so is
  starting over a folder that already holds checkpoints.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import math
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .checkpoint import (
    load_checkpoint,
    load_state_dict_checked,
    require_keys,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .data.base import collate
from .dist import dist_info, resolve_device
from .errors import ConfigError, PscError, WeightsError
from .io import atomic_write, ensure_dir
from .progress import bar as progress_bar
from .registry import Registry

# Trainable methods: ``psc-eval train --colorizer NAME`` calls the entry as
# ``fn(name, dataset, config, **options)`` (options: the train command's, None = the
# config's) and it returns a TrainResult. A baseline adds one line here.
TRAINABLE = Registry("trainable colorizer", option="--colorizer")
for _name, _what in (("ours", "the paper's model (Eq. 6)"),
                     ("psc-purple", "ablation: f + g, no semantics"),
                     ("psc-purple-blue", "ablation: f shares its trunk with h; g sees f only"),
                     ("psc-film", "ablation: feature-transform fusion of h")):
    TRAINABLE.add(_name, "psc_eval.models.commands:train_colorizer", _what)
for _name, _target, _what in (
        ("deshpande2017", "psc_eval.baselines.deshpande2017:train_deshpande2017",
         "Deshpande et al. 2017: chroma VAE, then an MDN from gray to its latent"),
        ("cao2017", "psc_eval.baselines.cao2017:train_cao2017",
         "Cao et al. 2017: conditional GAN, full-resolution generator, multi-layer noise"),
        ("royer2017", "psc_eval.baselines.royer2017:train_royer2017",
         "Royer et al. 2017 (PIC): gray embedding + conditional PixelCNN++"),
        ("zhang2016", "psc_eval.baselines.zhang2016:train_zhang2016",
         "Zhang et al. 2016: rebalanced ab classification"),
        ("iizuka2016", "psc_eval.baselines.iizuka2016:train_iizuka2016",
         "Iizuka et al. 2016: global/local fusion, MSE + classification"),
        ("larsson2016", "psc_eval.baselines.larsson2016:train_larsson2016",
         "Larsson et al. 2016: hypercolumns, hue/chroma histograms")):
    TRAINABLE.add(_name, _target, _what)

LAST = "last.pt"
LOG = "log.csv"
AMP_MODES = ("none", "bf16")


@dataclass
class LoopConfig:
    """What the loop needs of a method's config (each method maps its own config here)."""

    epochs: int = 10
    batch_size: int = 16
    seed: int = 0
    workers: int = 0
    grad_clip: float = 0.0  # 0: off
    amp: str = "none"  # "bf16": autocast the step's forward
    ema_decay: float | None = None  # None: no averaged weights
    checkpoint_every: int = 0  # optimiser steps between mid-epoch checkpoints; 0: epochs only
    keep_epochs: bool = True  # also write epoch-NNNN.pt (large models may turn it off)
    device: str = "auto"

    def check(self, where: str) -> None:
        for k in ("epochs", "batch_size"):
            if getattr(self, k) < 1:
                raise ConfigError(f"{k} must be >= 1, got {getattr(self, k)}, in {where}, "
                                  "use a positive value")
        for k in ("workers", "checkpoint_every"):
            if getattr(self, k) < 0:
                raise ConfigError(f"{k} must be >= 0, got {getattr(self, k)}, in {where}, "
                                  "use 0 or more")
        if not (math.isfinite(self.grad_clip) and self.grad_clip >= 0):
            raise ConfigError(f"grad_clip must be finite and >= 0, got {self.grad_clip}, "
                              f"in {where}, use 0 (off) or a positive norm")
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"averaging decay {self.ema_decay} outside [0, 1), in {where}, "
                              "use e.g. 0.9995 (0: off)")
        if self.amp not in AMP_MODES:
            raise ConfigError(f"amp={self.amp!r}, in {where}, use 'none' or 'bf16'")


@dataclass
class Optim:
    """One optimiser of a method and its schedule (stepped once per optimiser step)."""

    name: str
    optimizer: torch.optim.Optimizer
    scheduler: Any = None  # torch.optim.lr_scheduler.LRScheduler or None


class TrainMethod:
    """What a trainable method supplies. Subclasses set ``kind`` and ``model`` and define
    :meth:`configure_optimizers` and :meth:`training_step`.

    ``model`` is the one module whose weights are trained, averaged and checkpointed
    (several networks, e.g. a GAN's, live in one ``nn.Module``).
    """

    kind: str = "model"  # checkpoint kind ("colorizer", "judge"); checked on resume
    model: nn.Module
    # config keys (dotted) that may change on resume: more epochs, another device...
    resumable_keys: frozenset[str] = frozenset()

    def configure_optimizers(self, total_steps: int) -> Sequence[Optim]:
        raise NotImplementedError

    def training_step(self, model: nn.Module, batch: dict[str, Any], *, opt_index: int,
                      generator: torch.Generator) -> dict[str, Tensor]:
        """Loss terms of one batch for optimiser ``opt_index``; ``"total"`` is minimised.
        ``model`` is ``self.model`` or its DDP wrapper; ``generator`` (CPU) is for
        augmentation."""
        raise NotImplementedError

    def validation_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Loss terms on a validation batch (default: the first optimiser's step terms)."""
        return self.training_step(model, batch, opt_index=0,
                                  generator=torch.Generator().manual_seed(0))

    def skip_batch(self, batch: dict[str, Any]) -> bool:
        """True for a batch with nothing to learn from (every image skipped: no colour)."""
        return batch.get("rgb") is None


def seed_everything(seed: int) -> None:
    """Seed torch / numpy / python before the model is built (initial weights)."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    random.seed(seed)


def epoch_order(n: int, seed: int, epoch: int) -> Tensor:
    """The training-set order of one epoch: a pure function of (seed, epoch)."""
    g = torch.Generator().manual_seed(seed * 1000003 + epoch)
    return torch.randperm(n, generator=g)


def open_train_val(dataset: str, root: str | None, size: int, train_split: str = "",
                   val_split: str = "", n_train: int = 0, n_val: int = 0):
    """(train, val) datasets of a training run: the dataset's preferred training split
    (``data.TRAIN_SPLITS``; no fallback) and evaluation split unless named, cut to the
    first ``n_train`` / ``n_val`` (0: all)."""
    from .data import get_dataset, train_splits

    train = get_dataset(dataset, root=root, size=size,
                        split=train_split or train_splits(dataset)[0])
    val = get_dataset(dataset, root=root, split=val_split or None, size=size)
    if n_train:
        train.subset(n_train)
    if n_val:
        val.subset(n_val)
    return train, val


def step_generator(seed: int, step: int) -> torch.Generator:
    """The augmentation generator of optimiser step ``step``: a pure function of (seed, step)."""
    h = hashlib.sha256(f"psc-eval-train:{int(seed)}:{int(step)}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(h[:8], "little") & ((1 << 63) - 1))


class MemoryCache(torch.utils.data.Dataset):
    """Keep each loaded sample in RAM after its first load, stored compactly.

    ``rgb`` (exactly uint8 / 255 by the sample format) is kept as uint8 and the mask as
    uint8 (labels 0..255), both restored bit-exactly on access. ``keep`` names the
    fields to hold (others come back as empty tensors; a judge needs only rgb and mask).
    Only useful with ``workers=0`` (worker processes do not share the cache).
    """

    def __init__(self, base: torch.utils.data.Dataset, keep: Iterable[str] | None = None):
        self.base = base
        self.keep = None if keep is None else frozenset(keep) | {"id", "skip"}
        self.store: dict[int, dict] = {}

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict:
        if i not in self.store:
            s = dict(self.base[i])
            if self.keep is not None:
                s = {k: (v if k in self.keep else torch.zeros(0)) for k, v in s.items()}
            if isinstance(s.get("rgb"), Tensor) and s["rgb"].numel():
                s["rgb"] = torch.round(s["rgb"] * 255.0).to(torch.uint8)
            if isinstance(s.get("mask"), Tensor) and s["mask"].numel():
                s["mask"] = s["mask"].to(torch.uint8)
            self.store[i] = s
        s = dict(self.store[i])
        if isinstance(s.get("rgb"), Tensor) and s["rgb"].dtype == torch.uint8:
            s["rgb"] = s["rgb"].float() / 255.0
        if isinstance(s.get("mask"), Tensor) and s["mask"].dtype == torch.uint8:
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


def _to(batch: dict, device: torch.device) -> dict:
    return {k: (v.to(device, non_blocking=True) if isinstance(v, Tensor) else v)
            for k, v in batch.items()}


@dataclass
class TrainResult:
    out_dir: Path
    last: Path
    history: list[dict[str, Any]]
    wall_s: float
    complete: bool = True


@dataclass
class _Running:
    """The current epoch's running sums (checkpointed mid-epoch)."""

    pos: int = 0  # batches of this rank's epoch order already consumed
    sums: dict[str, float] = field(default_factory=dict)
    count: int = 0

    def state(self) -> dict[str, Any]:
        return {"pos": self.pos, "sums": dict(self.sums), "count": self.count}


class Trainer:
    """Train ``method.model`` on ``dataset`` into ``out_dir``; see the module docstring.

    ``config``: the method's resolved config (saved in every checkpoint; a resume with a
    different one, other than ``method.resumable_keys``, is refused). ``meta``: plain
    values stored in every checkpoint; those named in ``identity`` must match on resume.
    """

    def __init__(
        self,
        method: TrainMethod,
        loop: LoopConfig,
        dataset: torch.utils.data.Dataset,
        val_dataset: torch.utils.data.Dataset | None,
        out_dir: str | Path,
        *,
        config: dict[str, Any],
        meta: dict[str, Any] | None = None,
        identity: Sequence[str] = ("variant", "dataset", "num_classes"),
        collate_fn: Callable = collate,
        progress: bool = True,
    ):
        loop.check("the training config")
        self.method = method
        self.cfg = loop
        self.info = dist_info()
        self.device = torch.device(resolve_device(loop.device))
        self.model = method.model.to(self.device)
        self.dataset = dataset
        self.val_dataset = val_dataset
        self.out_dir = Path(out_dir)
        self.config = config
        self.meta = dict(meta or {})
        self.identity = tuple(identity)
        self.collate_fn = collate_fn
        self.progress = progress and self.info.is_main
        self.ema: nn.Module | None = None
        if loop.ema_decay is not None:
            self.ema = copy.deepcopy(self.model).eval()
            for p in self.ema.parameters():
                p.requires_grad_(False)
        n = len(dataset)
        w = self.info.world_size
        self.steps_per_epoch = -(-(n - n % w if w > 1 else n) // w // loop.batch_size)
        self.optims = list(method.configure_optimizers(self.steps_per_epoch * loop.epochs))
        if not self.optims:
            raise ConfigError(f"method {type(method).__name__} configured no optimiser, in "
                              "configure_optimizers(), return at least one Optim")
        self.step = 0  # optimiser steps done (one per batch, all optimisers)
        self.epoch = 0  # epochs completed
        self.running = _Running()
        self.history: list[dict[str, Any]] = []

    @property
    def eval_model(self) -> nn.Module:
        return self.ema if self.ema is not None else self.model

    # --- checkpoints ---------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "kind": self.method.kind,
            "config": self.config,
            **self.meta,
            "model": self.model.state_dict(),
            **({"ema": self.ema.state_dict()} if self.ema is not None else {}),
            "optimizers": [o.optimizer.state_dict() for o in self.optims],
            "schedulers": [None if o.scheduler is None else o.scheduler.state_dict()
                           for o in self.optims],
            "rng": rng_state(),
            "data_order": {"seed": self.cfg.seed, "epoch": self.epoch,
                           "scheme": "randperm(n, seed * 1000003 + epoch)"},
            "epoch": self.epoch,
            "step": self.step,
            "running": self.running.state(),
            "history": self.history,
        }

    def _save(self, epoch_end: bool) -> None:
        if not self.info.is_main:
            return
        state = self._state()
        if epoch_end and self.cfg.keep_epochs:
            save_checkpoint(self.out_dir / f"epoch-{self.epoch:04d}.pt", state)
        save_checkpoint(self.out_dir / LAST, state)
        if epoch_end:
            self._write_csv()

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

    def _newest(self, required: bool) -> tuple[Path, dict[str, Any]] | None:
        """The newest checkpoint of ``out_dir`` that loads: ``last.pt`` normally; after a
        kill between writing ``epoch-N.pt`` and ``last.pt``, or with a damaged
        ``last.pt``, the highest complete ``epoch-N.pt`` (said on stderr). Judged by the
        epochs the files hold, not by file times (copies change those)."""
        last = self.out_dir / LAST
        epochs = sorted(self.out_dir.glob("epoch-*.pt"),
                        key=lambda p: int(p.stem.split("-")[1]) if p.stem[6:].isdigit() else -1,
                        reverse=True)
        errors: list[WeightsError] = []
        ck_last = None
        if last.is_file():
            try:
                ck_last = load_checkpoint(last)
            except WeightsError as e:
                errors.append(e)
            if ck_last is not None and not isinstance(ck_last, dict):
                errors.append(WeightsError(f"checkpoint holds a {type(ck_last).__name__}, not "
                                           f"a checkpoint dict, {last}, retrain or restore it"))
                ck_last = None
        top = int(epochs[0].stem.split("-")[1]) if epochs and epochs[0].stem[6:].isdigit() \
            else -1
        if ck_last is not None and int(ck_last.get("epoch", -1)) >= top:
            return last, ck_last
        for p in epochs:
            try:
                ck = load_checkpoint(p)
            except WeightsError as e:
                errors.append(e)
                continue
            if not isinstance(ck, dict):
                continue
            from tqdm.auto import tqdm

            why = "is damaged" if errors else ("is missing" if not last.is_file()
                                               else "is older")
            tqdm.write(f"psc-eval: {last} {why}; resuming from {p}")
            return p, ck
        if ck_last is not None:
            return last, ck_last
        if errors:
            raise errors[0]
        if required:
            raise WeightsError(f"no checkpoint to resume, {self.out_dir}, "
                               "train without --resume first")
        return None

    def _resume(self, path: Path, ck: dict[str, Any] | None = None) -> None:
        hint = "pass a checkpoint written by this command to --resume"
        if ck is None:
            ck = load_checkpoint(path, hint=hint)
        require_keys(ck, ("kind", "config", "model", "step", "epoch", "history", "rng"), path,
                     hint)
        if ck.get("kind") != self.method.kind:
            raise WeightsError(
                f"checkpoint kind {ck.get('kind')!r} is not {self.method.kind!r}, {path}, "
                "pass a checkpoint written by this command"
            )
        for key in self.identity:
            if key in self.meta and ck.get(key) != self.meta[key]:
                raise WeightsError(
                    f"checkpoint has {key}={ck.get(key)!r} but this run has {self.meta[key]!r}, "
                    f"{path}, resume the matching run or train without --resume in another folder"
                )
        if not isinstance(ck["config"], dict):
            raise WeightsError(f"checkpoint's config is a {type(ck['config']).__name__}, "
                               f"{path}, {hint}")
        diff = [k for k in config_diff(ck["config"], self.config)
                if k not in self.method.resumable_keys]
        if diff:
            raise ConfigError(
                f"resuming with a changed config ({', '.join(diff)}), {path}, "
                "rerun with the checkpoint's config or train into another folder"
            )
        what = f"this {self.method.kind}"
        load_state_dict_checked(self.model, ck["model"], path, what, hint)
        if self.ema is not None:
            load_state_dict_checked(self.ema, ck.get("ema"), path, f"{what}'s averaged weights",
                                    hint)
        # "optimizer" / "scheduler": the single-optimiser format of earlier checkpoints
        opts = ck.get("optimizers") or ([ck["optimizer"]] if "optimizer" in ck else [])
        scheds = ck.get("schedulers") or [ck.get("scheduler")] * len(opts)
        if len(opts) != len(self.optims) or len(scheds) != len(opts):
            raise WeightsError(f"checkpoint has {len(opts)} optimiser states, this method "
                               f"{len(self.optims)}, {path}, {hint}")
        try:
            for o, so, ss in zip(self.optims, opts, scheds):
                o.optimizer.load_state_dict(so)
                if o.scheduler is not None and ss is not None:
                    o.scheduler.load_state_dict(ss)
            set_rng_state(ck["rng"])
            step, epoch = int(ck["step"]), int(ck["epoch"])
            r = ck.get("running") or {}
            running = _Running(int(r.get("pos", 0)), {str(k): float(v) for k, v in
                                                      dict(r.get("sums", {})).items()},
                               int(r.get("count", 0)))
            history = [dict(row) for row in ck["history"]]
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError,
                IndexError) as e:
            raise WeightsError(f"checkpoint's training state is damaged "
                               f"({type(e).__name__}), {path}, {hint}") from None
        if step < 0 or epoch < 0 or running.pos < 0:
            raise WeightsError(f"checkpoint's step {step} / epoch {epoch} is negative, {path}, "
                               f"{hint}")
        self.step, self.epoch, self.running, self.history = step, epoch, running, history

    # --- steps ---------------------------------------------------------------------------
    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.ema is None:
            return
        t = self.step - 1  # updates before this one
        d = min(self.cfg.ema_decay, (1.0 + t) / (10.0 + t))
        for pe, p in zip(self.ema.parameters(), self.model.parameters()):
            pe.lerp_(p.detach(), 1.0 - d)
        for be, b in zip(self.ema.buffers(), self.model.buffers()):
            be.copy_(b)

    def _loader(self, ds, indices: list[int]) -> torch.utils.data.DataLoader:
        # A private generator: creating a loader draws its base seed from it, never from
        # the global RNG, so a resumed run's random stream is the uninterrupted one's.
        return torch.utils.data.DataLoader(
            ds, batch_size=self.cfg.batch_size, sampler=indices, num_workers=self.cfg.workers,
            collate_fn=self.collate_fn, generator=torch.Generator().manual_seed(0),
            pin_memory=self.device.type == "cuda",
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

    def _optimise(self, wrapped: nn.Module, batch: dict[str, Any]) -> dict[str, float]:
        """One batch: each optimiser's step terms, backward, clip, step, schedule."""
        gen = step_generator(self.cfg.seed, self.step)
        logged: dict[str, float] = {}
        for i, o in enumerate(self.optims):
            with torch.autocast(self.device.type, dtype=torch.bfloat16,
                                enabled=self.cfg.amp == "bf16"):
                terms = self.method.training_step(wrapped, batch, opt_index=i, generator=gen)
            vals = {k: float(v.detach()) for k, v in terms.items()}
            if not all(math.isfinite(v) for v in vals.values()):
                raise self._nan_error(vals)
            o.optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            if self.cfg.grad_clip > 0:
                params = [p for g in o.optimizer.param_groups for p in g["params"]]
                nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
            o.optimizer.step()
            if o.scheduler is not None:
                o.scheduler.step()
            prefix = f"{o.name}_" if len(self.optims) > 1 else ""
            logged.update({prefix + k: v for k, v in vals.items()})
        self.step += 1
        self._update_ema()
        return logged

    def _train_epoch(self, wrapped: nn.Module, stop_at: int | None) -> bool:
        """Continue the current epoch from ``running.pos``; False if stopped at ``stop_at``."""
        n = len(self.dataset)
        order = epoch_order(n, self.cfg.seed, self.epoch)
        w = self.info.world_size
        order = order[: n - n % w][self.info.rank :: w] if w > 1 else order
        bs = self.cfg.batch_size
        rest = order[self.running.pos * bs:].tolist()
        self.model.train()
        bar = progress_bar(self._loader(self.dataset, rest), disable=not self.progress, leave=False,
                   desc=f"epoch {self.epoch + 1}/{self.cfg.epochs}",
                   total=self.steps_per_epoch, initial=self.running.pos)
        every = self.cfg.checkpoint_every
        for batch in bar:
            self.running.pos += 1
            if not self.method.skip_batch(batch):
                vals = self._optimise(wrapped, _to(batch, self.device))
                b = len(batch["ids"])
                for k, v in vals.items():
                    self.running.sums[k] = self.running.sums.get(k, 0.0) + v * b
                self.running.count += b
                bar.set_postfix({k: f"{v:.3g}" for k, v in vals.items()}, refresh=False)
            at_end = self.running.pos * bs >= len(order)
            if not at_end and ((every and self.step % every == 0) or self.step == stop_at):
                self._save(epoch_end=False)
            if self.step == stop_at and not at_end:
                return False
        return True

    @torch.no_grad()
    def evaluate(self, ds=None, model: nn.Module | None = None) -> dict[str, float]:
        """Mean loss terms of the averaged weights (or the model) on the validation set."""
        ds = self.val_dataset if ds is None else ds
        model = self.eval_model if model is None else model
        if ds is None or len(ds) == 0:
            return {}
        was_training = model.training
        model.eval()
        sums: dict[str, float] = {}
        count = 0
        for batch in self._loader(ds, list(range(len(ds)))):
            if self.method.skip_batch(batch):
                continue
            terms = self.method.validation_step(model, _to(batch, self.device))
            b = len(batch["ids"])
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v) * b
            count += b
        model.train(was_training)
        return {k: v / max(count, 1) for k, v in sums.items()}

    # --- the loop ------------------------------------------------------------------------
    def fit(self, resume: str | Path | None = None, *, restart: bool = False,
            stop_after_steps: int | None = None) -> TrainResult:
        """Train to ``epochs``.

        ``resume``: None (refuse a folder that holds checkpoints unless ``restart``),
        ``"last"`` (the newest complete checkpoint of ``out_dir``, normally ``last.pt``),
        ``"auto"`` (the same when there is one, else a fresh start) or a checkpoint path.
        ``stop_after_steps`` ends the run after that many optimiser steps with a
        checkpoint, as an interruption would (tests; ``complete`` is then False).
        """
        t0 = time.time()
        last = self.out_dir / LAST
        if resume in ("auto", "last"):
            found = None if restart else self._newest(required=resume == "last")
            if found is not None:
                self._resume(*found)
        elif resume is not None:
            self._resume(Path(resume))
        elif last.is_file() and not restart:
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
            wrapped = DDP(self.model,
                          device_ids=[self.device.index] if self.device.type == "cuda" else None,
                          find_unused_parameters=len(self.optims) > 1)
        from tqdm.auto import tqdm

        while self.epoch < self.cfg.epochs:
            te = time.time()
            if not self._train_epoch(wrapped, stop_after_steps):
                return TrainResult(self.out_dir, last, self.history, time.time() - t0, False)
            r = self.running
            train = {k: v / max(r.count, 1) for k, v in r.sums.items()}
            val = self.evaluate()
            self.epoch += 1
            self.running = _Running()
            row: dict[str, Any] = {"epoch": self.epoch, "step": self.step}
            row.update({f"train_{k}": v for k, v in train.items()})
            row.update({f"val_{k}": v for k, v in val.items()})
            row["epoch_s"] = round(time.time() - te, 3)
            self.history.append(row)
            self._save(epoch_end=True)
            if self.progress:
                tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                    for k, v in row.items()))
            if stop_after_steps is not None and self.step >= stop_after_steps \
                    and self.epoch < self.cfg.epochs:
                return TrainResult(self.out_dir, last, self.history, time.time() - t0, False)
        return TrainResult(self.out_dir, last, self.history, time.time() - t0)
