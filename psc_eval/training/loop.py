"""THE training loop of psc-eval: the paper's model, the judges and every baseline use it.

A trainable method supplies its parts (:class:`TrainMethod`, in the spirit of nanoGPT's
``configure_optimizers``): the model, its optimisers with their learning-rate schedules,
and a step that returns the named loss terms of a batch (``"total"`` is minimised). With
several optimisers (a GAN's discriminator and generator) the step is called once per
optimiser in turn, with ``opt_index``. The loop, not the method, calls backward and steps
the optimisers and schedulers; it owns everything else:

- Stages: ``method.active_optimizers(step, epoch)`` names the optimisers stepped on a
  batch (default all); an inactive one is not stepped at all (no zero-gradient step, no
  schedule step), so Adam's moments and step count start fresh when its stage begins.
  Each optimiser's logged terms are averaged over the images it stepped on.

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
  not dominated by the initial weights. Normalisation layers' running statistics
  (``running_mean`` / ``running_var`` of batch and instance norms) are averaged the same
  way, as timm's ModelEmaV2 and TensorFlow's EfficientNet average their moving
  statistics: averaged weights read with the live model's statistics are mismatched (a
  toy Zhang at its last epoch: validation loss 1.726 that way, 1.554 for the live
  weights, 1.521 for the averaged weights with statistics recomputed on training images).
  Every other buffer is copied. Validation uses the averaged weights.
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
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..data.base import collate
from ..dist import dist_info, resolve_device
from ..errors import ConfigError, PscError
from ..io import ensure_dir
from ..progress import bar as progress_bar
from .config import TrainConfig
from .data import epoch_order, step_generator, to_device
from .method import TrainMethod
from .plateau import plateaued, run_summary
from .state import LAST, CheckpointState, Running

COUNT_PREFIX = "#images:"  # running-sum key of the images one optimiser stepped on


def epoch_means(r: Running, names: Sequence[str]) -> dict[str, float]:
    """The epoch's mean loss terms: each optimiser's terms over the images it stepped on
    (``COUNT_PREFIX`` sums; checkpoints without them: every image of the epoch)."""
    counts = {n: r.sums.get(COUNT_PREFIX + n, float(r.count)) for n in names}
    out = {}
    for k, v in r.sums.items():
        if k.startswith(COUNT_PREFIX):
            continue
        owner = next((n for n in names if len(names) > 1 and k.startswith(n + "_")), None)
        out[k] = v / max(counts[owner] if owner else r.count, 1)
    return out


def open_tensorboard(out_dir: Path) -> Any:
    """A SummaryWriter for ``out_dir/tensorboard`` (the optional ``tensorboard`` extra)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("TensorBoard is not installed, in --tensorboard, "
                          "pip install 'psc-eval[tensorboard]' or drop the option") from None
    return SummaryWriter(log_dir=str(Path(out_dir) / "tensorboard"))


@dataclass
class TrainResult:
    out_dir: Path
    last: Path
    history: list[dict[str, Any]]
    wall_s: float
    complete: bool = True


def ema_buffer_pairs(ema: nn.Module, model: nn.Module,
                     ) -> list[tuple[torch.Tensor, torch.Tensor, bool]]:
    """(averaged copy's buffer, live buffer, whether it is averaged) for every buffer: the
    running mean and variance of normalisation layers are averaged, the rest copied."""
    pairs = []
    for (_, m_e), m in zip(ema.named_modules(), model.modules()):
        stats = isinstance(m, nn.modules.batchnorm._NormBase)
        for (bname, be), b in zip(m_e.named_buffers(recurse=False), m.buffers(recurse=False)):
            pairs.append((be, b, stats and bname in ("running_mean", "running_var")))
    return pairs


class Trainer(CheckpointState):
    """Train ``method.model`` on ``dataset`` into ``out_dir``; see the module docstring.

    ``config``: the method's resolved config (saved in every checkpoint; a resume with a
    different one, other than ``method.resumable_keys``, is refused). ``meta``: plain
    values stored in every checkpoint; those named in ``identity`` must match on resume.
    """

    def __init__(
        self,
        method: TrainMethod,
        loop: TrainConfig,
        dataset: torch.utils.data.Dataset,
        val_dataset: torch.utils.data.Dataset | None,
        out_dir: str | Path,
        *,
        config: dict[str, Any],
        meta: dict[str, Any] | None = None,
        identity: Sequence[str] = ("variant", "dataset", "num_classes"),
        collate_fn: Callable = collate,
        progress: bool = True,
        tensorboard: bool = False,
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
        self.parameters = sum(p.numel() for p in self.model.parameters())
        self.identity = tuple(identity)
        self.collate_fn = collate_fn
        self.progress = progress and self.info.is_main
        # optional TensorBoard event files beside log.csv (out_dir/tensorboard), rank 0
        self.tb = open_tensorboard(self.out_dir) if tensorboard and self.info.is_main else None
        self.ema: nn.Module | None = None
        if loop.ema_decay is not None:
            self.ema = copy.deepcopy(self.model).eval()
            for p in self.ema.parameters():
                p.requires_grad_(False)
            self._ema_buffers = ema_buffer_pairs(self.ema, self.model)
        n = len(dataset)
        w = self.info.world_size
        self.steps_per_epoch = -(-(n - n % w if w > 1 else n) // w // loop.batch_size)
        self.optims = list(method.configure_optimizers(self.steps_per_epoch * loop.epochs))
        if not self.optims:
            raise ConfigError(f"method {type(method).__name__} configured no optimiser, in "
                              "configure_optimizers(), return at least one Optim")
        self.step = 0  # optimiser steps done (one per batch, all optimisers)
        self.epoch = 0  # epochs completed
        self.running = Running()
        self.history: list[dict[str, Any]] = []

    def converged(self) -> bool:
        """Whether the run has plateaued by the protocol's rule (``until_plateau`` runs)."""
        c = self.cfg
        return c.until_plateau and plateaued(self.method.plateau_series(self.history),
                                             c.plateau_window, c.plateau_tol, c.min_epochs)

    def summary(self) -> dict[str, Any]:
        """The run so far (epochs, steps, images seen, wall time, parameters, converged)."""
        c = self.cfg
        converged = None  # undecided: no plateau rule, or still training below the cap
        if c.until_plateau:
            plateau = self.converged()
            converged = plateau if plateau or self.epoch >= c.epochs else None
        read = len(self.method.plateau_series(self.history))  # the last epochs' values
        return run_summary(self.history, self.parameters, until_plateau=c.until_plateau,
                           converged=converged,
                           metric=f"val_{self.method.plateau_metric}", window=c.plateau_window,
                           tol=c.plateau_tol, min_epochs=c.min_epochs, cap=c.epochs,
                           first_epoch=len(self.history) - read + 1 if read else 1)

    @property
    def eval_model(self) -> nn.Module:
        return self.ema if self.ema is not None else self.model

    # --- steps ---------------------------------------------------------------------------
    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.ema is None:
            return
        t = self.step - 1  # updates before this one
        d = min(self.cfg.ema_decay, (1.0 + t) / (10.0 + t))
        for pe, p in zip(self.ema.parameters(), self.model.parameters()):
            pe.lerp_(p.detach(), 1.0 - d)
        for be, b, average in self._ema_buffers:
            if average:
                be.lerp_(b, 1.0 - d)
            else:
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
        active = self.method.active_optimizers(self.step, self.epoch)
        for i, o in enumerate(self.optims):
            if active is not None and i not in active:
                continue  # its stage is inactive: not stepped, its schedule not advanced
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
            if len(self.optims) > 1:
                # images this optimiser saw this epoch: the mean of its terms (a stage may
                # skip batches) divides by it, not by every batch's images
                logged[COUNT_PREFIX + o.name] = 1.0
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
                vals = self._optimise(wrapped, to_device(batch, self.device))
                b = len(batch["ids"])
                for k, v in vals.items():
                    self.running.sums[k] = self.running.sums.get(k, 0.0) + v * b
                self.running.count += b
                bar.set_postfix({k: f"{v:.3g}" for k, v in vals.items()
                                 if not k.startswith(COUNT_PREFIX)}, refresh=False)
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
            terms = self.method.validation_step(model, to_device(batch, self.device))
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
        while self.epoch < self.cfg.epochs and not self.converged():
            te = time.time()
            if not self._train_epoch(wrapped, stop_after_steps):
                return TrainResult(self.out_dir, last, self.history, time.time() - t0, False)
            train = epoch_means(self.running, [o.name for o in self.optims])
            images = self.running.count
            images_seen = int(self.history[-1].get("images_seen", 0)) if self.history else 0
            val = self.evaluate()
            self.epoch += 1
            self.running = Running()
            row: dict[str, Any] = {"epoch": self.epoch, "step": self.step}
            row.update({f"train_{k}": v for k, v in train.items()})
            row.update({f"val_{k}": v for k, v in val.items()})
            row["images_seen"] = images_seen + images
            row["epoch_s"] = round(time.time() - te, 3)
            self.history.append(row)
            self.meta["run"] = self.summary()
            self._save(epoch_end=True)
            if self.tb is not None:
                for k, v in row.items():
                    if k.startswith(("train_", "val_")) and isinstance(v, float):
                        self.tb.add_scalar(k.replace("_", "/", 1), v, row["images_seen"])
                self.tb.flush()
            if self.progress:
                tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                    for k, v in row.items()))
            if stop_after_steps is not None and self.step >= stop_after_steps \
                    and self.epoch < self.cfg.epochs:
                return TrainResult(self.out_dir, last, self.history, time.time() - t0, False)
        return TrainResult(self.out_dir, last, self.history, time.time() - t0)
