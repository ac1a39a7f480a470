"""THE training configuration: one base ``[train]`` table for every trainable (the paper's
model, its ablations, the baselines, the judges), each method adding only its ``[model]``
dataclass (and, where it needs them, a few ``[train]`` fields of its own by subclassing
:class:`TrainConfig`); and the one TOML reader.

A config file has two tables, ``[model]`` (the method's model dataclass) and ``[train]``
(:class:`TrainConfig` or the method's subclass). Unknown keys, wrong types and values out
of range are one-line :class:`ConfigError` naming the key and the file. The resolved
config (:class:`Config`) is stored in every checkpoint and run JSON (``to_dict``).

The options of ``psc-eval train`` and ``psc-eval train-judge`` are generated from the
fields marked ``cli`` here (as the evaluation options are from ``EvalConfig``).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

AMP_MODES = ("none", "bf16")
# Upper bounds no real run reaches (the paper trains for tens of epochs); beyond them a
# typo such as epochs = 100000000000000000 would train forever.
MAX_COUNTS = {"epochs": 100_000, "batch_size": 65_536}
OPTIMIZERS = ("adam", "adadelta", "adamw", "sgd")


def _cli(help: str, **extra: Any) -> dict[str, Any]:
    return {"cli": True, "help": help, **extra}


@dataclass
class TrainConfig:
    """The loop's, the data's and the optimiser's settings of one training run.

    A method changes a default by subclassing (``lr: float = 1e-3``) and adds its own
    ``[train]`` keys the same way; everything else is shared.
    """

    epochs: int = field(default=10, metadata=_cli("Epochs (a resumed run may raise it)."))
    batch_size: int = field(default=16, metadata=_cli("Images per optimiser step."))
    lr: float = field(default=2e-4, metadata=_cli("Learning rate."))
    optimizer: str = field(default="adam", metadata=_cli("Optimiser.", choices=OPTIMIZERS))
    betas: tuple[float, float] = (0.5, 0.999)  # Adam's betas; Adadelta's rho = betas[0]
    adam_eps: float = 1e-8
    weight_decay: float = 0.0  # L2 (Adam, Adadelta, SGD) or decoupled (AdamW)
    momentum: float = 0.9  # SGD only
    # Per-step exponential learning-rate decay, lr * lr_decay ** step (PIC: 0.99999); 1: off
    lr_decay: float = 1.0
    # Polyak averaging of the weights (validation and evaluation use them); 0: off
    polyak: float = 0.0
    grad_clip: float = 0.0  # global gradient norm per optimiser; 0: off
    amp: str = "none"  # "bf16": autocast the step's forward
    seed: int = field(default=0, metadata=_cli("Seed of weights, data order and augmentation."))
    n_train: int = field(default=0, metadata=_cli("Train on the first N images only (0: all)."))
    n_val: int = field(default=0, metadata=_cli("Validate on the first N images only (0: all)."))
    train_split: str = ""  # "": the dataset's training split (train / train_aug)
    val_split: str = ""  # "": the dataset's evaluation split
    workers: int = field(default=0, metadata=_cli("DataLoader worker processes."))
    cache_in_memory: bool = False  # keep decoded samples in RAM after their first load
    checkpoint_every: int = field(default=0, metadata=_cli(
        "Also checkpoint every N optimiser steps (0: after every epoch only)."))
    keep_epochs: bool = True  # also write epoch-NNNN.pt after every epoch
    # The benchmark protocol (psc_eval.training.plateau): train until the method's
    # validation loss plateaus, ``epochs`` being the cap; off: exactly ``epochs``.
    until_plateau: bool = False
    plateau_window: float = 0.25  # the last quarter of the epochs ...
    plateau_tol: float = 0.01  # ... improved the best before them by less than 1%
    min_epochs: int = 0
    device: str = field(default="auto", metadata=_cli(
        "auto (CUDA when available, else CPU), cpu, cuda or cuda:N."))

    # Keys a resumed run may change: they move no number (more epochs, another device...).
    RESUMABLE: typing.ClassVar[frozenset[str]] = frozenset(
        {"train.epochs", "train.device", "train.workers", "train.checkpoint_every"})

    @property
    def ema_decay(self) -> float | None:
        return self.polyak if self.polyak > 0 else None

    def check(self, where: str) -> None:
        """Range checks of the shared fields (one line naming key, value and file)."""
        for k in ("epochs", "batch_size"):
            if getattr(self, k) < 1:
                raise ConfigError(f"train.{k}={getattr(self, k)} must be >= 1, in {where}, "
                                  "use a positive value")
            if getattr(self, k) > MAX_COUNTS[k]:
                raise ConfigError(f"train.{k}={getattr(self, k)} is over the limit of "
                                  f"{MAX_COUNTS[k]}, in {where}, use a value a run can finish")
        for k in ("workers", "checkpoint_every", "n_train", "n_val"):
            if getattr(self, k) < 0:
                raise ConfigError(f"train.{k}={getattr(self, k)} is negative, in {where}, "
                                  "use 0 or more")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"train.lr={self.lr} must be finite and > 0, in {where}, "
                              "use e.g. 1e-3")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"train.optimizer={self.optimizer!r}, in {where}, "
                              f"use one of {', '.join(OPTIMIZERS)}")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"train.betas={list(self.betas)} outside [0, 1), in {where}, "
                              "use e.g. [0.5, 0.999]")
        if not (math.isfinite(self.adam_eps) and self.adam_eps > 0):
            raise ConfigError(f"train.adam_eps={self.adam_eps} must be > 0, in {where}, "
                              "use 1e-8")
        for k in ("weight_decay", "momentum"):
            v = getattr(self, k)
            if not (math.isfinite(v) and v >= 0):
                raise ConfigError(f"train.{k}={v} must be finite and >= 0, in {where}, "
                                  "use 0 (off) or a small positive value")
        if not 0.0 < self.lr_decay <= 1.0:
            raise ConfigError(f"train.lr_decay={self.lr_decay} outside (0, 1], in {where}, "
                              "use 1.0 (constant) or e.g. 0.99999 (PIC)")
        if not 0.0 <= self.polyak < 1.0:
            raise ConfigError(f"train.polyak={self.polyak} outside [0, 1), in {where}, "
                              "use 0 (off) or e.g. 0.9995")
        if not (math.isfinite(self.grad_clip) and self.grad_clip >= 0):
            raise ConfigError(f"train.grad_clip={self.grad_clip} must be finite and >= 0, "
                              f"in {where}, use 0 (off) or a positive norm")
        if not (0.0 < self.plateau_window < 1.0 and math.isfinite(self.plateau_tol)
                and self.plateau_tol >= 0.0 and self.min_epochs >= 0):
            raise ConfigError(f"train.plateau_window={self.plateau_window} (in (0, 1)), "
                              f"plateau_tol={self.plateau_tol} (>= 0), min_epochs="
                              f"{self.min_epochs} (>= 0), in {where}, use e.g. 0.25, 0.01, 8")
        if self.amp not in AMP_MODES:
            raise ConfigError(f"train.amp={self.amp!r}, in {where}, use 'none' or 'bf16'")


@dataclass
class Config:
    """A resolved method config: its ``[model]`` dataclass and its ``[train]`` table."""

    model: Any
    train: TrainConfig
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"model": plain(dataclasses.asdict(self.model)),
                "train": plain({f.name: getattr(self.train, f.name)
                                for f in dataclasses.fields(self.train)})}


def plain(v: Any) -> Any:
    """Dataclass dicts with tuples -> JSON-like values (lists), as checkpoints store them."""
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v


def check_value(value: Any, tp: Any, key: str, where: str) -> Any:
    """Coerce a TOML value to the annotated type or raise a one-line ConfigError."""
    origin = typing.get_origin(tp)
    bad = ConfigError(
        f"config key {key!r} has the wrong type ({type(value).__name__} "
        f"{value!r:.40}, expected {getattr(tp, '__name__', str(tp))}), in {where}, fix the value"
    )
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise bad
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(check_value(v, args[0], key, where) for v in value)
        if len(value) != len(args):
            raise ConfigError(
                f"config key {key!r} needs {len(args)} values, got {len(value)}, in {where}, "
                "fix the list"
            )
        return tuple(check_value(v, a, key, where) for v, a in zip(value, args))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise bad
        return dict(value)
    if origin in (typing.Union, types.UnionType):
        for a in typing.get_args(tp):
            if a is type(None) and value is None:
                return None
            try:
                return check_value(value, a, key, where)
            except ConfigError:
                pass
        raise bad
    return value


def dataclass_from_dict(cls: type, d: Mapping[str, Any], where: str, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from ``d``; unknown keys / wrong types -> ConfigError."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kw = {}
    for k, v in d.items():
        if k not in names:
            raise ConfigError(
                f"unknown config key {prefix + k!r}, in {where}, "
                f"known keys: {', '.join(sorted(names))}"
            )
        kw[k] = check_value(v, hints[k], prefix + k, where)
    return cls(**kw)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"cannot parse TOML ({e}), {path}, fix the syntax") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config is not UTF-8 text, {path}, save it as UTF-8 TOML") from None
    except OSError as e:
        raise ConfigError(f"cannot read config ({e.strerror}), {path}, "
                          "check the path and its permissions") from None


def config_file(name_or_path: str, known: Mapping[str, str | Path]) -> Path:
    """A config name the method declares (``toy``, ``paper``) -> its file; else a path."""
    name_or_path = str(name_or_path)
    if not name_or_path.endswith(".toml") and name_or_path in known:
        return Path(known[name_or_path])
    p = Path(name_or_path)
    if not p.is_file():
        raise ConfigError(f"config not found, {name_or_path}, pass one of "
                          f"{', '.join(sorted(known)) or '(none declared)'} "
                          "or a path to a .toml file")
    return p


def config_from_tables(raw: Mapping[str, Any], where: str, model_cls: type,
                       train_cls: type = TrainConfig,
                       overrides: Mapping[str, Any] | None = None,
                       check: Callable[[Config, str], None] | None = None) -> Config:
    """``[model]`` -> ``model_cls``, ``[train]`` -> ``train_cls``, with ``overrides``
    {"model.input_size": 64, "train.lr": ...} (None values ignored); ``check(cfg, where)``
    adds the method's own checks after the shared ones."""
    for k in raw:
        if k not in ("model", "train"):
            raise ConfigError(f"unknown config table {k!r}, in {where}, use [model] and [train]")
    if not raw:  # an empty or truncated file would train with every default, unannounced
        raise ConfigError(f"config sets nothing (no [model] or [train] key), in {where}, "
                          "give its values or pass a declared config (--config toy)")
    model_d, train_d = dict(raw.get("model", {})), dict(raw.get("train", {}))
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        table, _, k = key.partition(".")
        if table not in ("model", "train") or not k:
            raise ConfigError(f"override {key!r} names no config key, in the options, "
                              "write it as model.KEY or train.KEY")
        (model_d if table == "model" else train_d)[k] = value
    model = dataclass_from_dict(model_cls, model_d, where, prefix="model.")
    train = dataclass_from_dict(train_cls, train_d, where, prefix="train.")
    cfg = Config(model=model, train=train, source=where)
    train.check(where)
    if check is not None:
        check(cfg, where)
    return cfg


def load_config(name_or_path: str, known: Mapping[str, str | Path], model_cls: type,
                train_cls: type = TrainConfig, overrides: Mapping[str, Any] | None = None,
                check: Callable[[Config, str], None] | None = None) -> Config:
    """THE TOML reader: a declared config name or a path -> the checked :class:`Config`."""
    path = config_file(name_or_path, known)
    return config_from_tables(read_toml(path), str(path), model_cls, train_cls, overrides,
                              check)


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Keys whose values differ between two resolved configs (lists == tuples)."""
    a, b = flatten(old), flatten(new)

    def norm(v):
        return list(v) if isinstance(v, (list, tuple)) else v

    return sorted(k for k in set(a) | set(b) if norm(a.get(k)) != norm(b.get(k)))


def cli_fields(cls: type = TrainConfig) -> list[dataclasses.Field]:
    """The fields of ``cls`` that the train commands expose as options."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("cli")]
