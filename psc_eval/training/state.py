"""The checkpoint state of a training run: what is saved, where, and how a run resumes.

``out_dir/last.pt`` after every epoch AND every ``checkpoint_every`` optimiser steps
(mid-epoch: the position in the epoch, the epoch's running sums and the RNG states are
stored), ``out_dir/epoch-NNNN.pt`` after every epoch (``keep_epochs``), and
``out_dir/log.csv`` with one row per epoch of every loss term (``train_*``, ``val_*``).
Resuming refuses a checkpoint of another kind or method, or with a changed config
(other than the keys the method declares resumable). :class:`CheckpointState` is the
half of :class:`psc_eval.training.loop.Trainer` that does this.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..checkpoint import (
    load_checkpoint,
    load_state_dict_checked,
    require_keys,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from ..errors import ConfigError, WeightsError
from ..io import atomic_write
from .config import config_diff

LAST = "last.pt"
LOG = "log.csv"


@dataclass
class Running:
    """The current epoch's running sums (checkpointed mid-epoch)."""

    pos: int = 0  # batches of this rank's epoch order already consumed
    sums: dict[str, float] = field(default_factory=dict)
    count: int = 0

    def state(self) -> dict[str, Any]:
        return {"pos": self.pos, "sums": dict(self.sums), "count": self.count}



class CheckpointState:
    """Saving and resuming the state of a :class:`~psc_eval.training.loop.Trainer` (its
    attributes: method, model, ema, optims, cfg, config, meta, identity, out_dir, info,
    step, epoch, running, history)."""

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
            why = "is damaged" if errors else ("is missing" if not last.is_file()
                                               else "is older")
            tqdm.write(f"psc-eval: {last} {why}; resuming from {p}")
            self._last_fallback = why
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
            running = Running(int(r.get("pos", 0)), {str(k): float(v) for k, v in
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
        why = getattr(self, "_last_fallback", None)
        if why is not None and self.info.is_main:
            # A run already at its last epoch trains no further, so nothing else would
            # rewrite last.pt: restore it now from the state just resumed, keeping a
            # damaged file beside it for inspection.
            self._last_fallback = None
            last = self.out_dir / LAST
            if why == "is damaged" and last.is_file():
                last.replace(last.with_name(LAST + ".damaged"))
            self._save(epoch_end=False)
            tqdm.write(f"psc-eval: {last} restored from {path}")

