"""Boilerplate shared by every baseline (the diverse ``deshpande2017``, ``cao2017``,
``royer2017`` and the single-output ``zhang2016``, ``iizuka2016``, ``larsson2016``).

Config files, the datasets of a training run, the train entry around the core loop
(``psc_eval.training.Trainer``), the optimiser of a ``[train]`` table, checkpoint loading
for the colorizers and the final (B*n,2,h,w) -> (B,n,2,H,W) step. Nothing here is
specific to one method.

Configs: ``baselines/configs/<method>-<name>.toml`` for ``--config <name>`` (``toy``,
``paper``), or a path to a TOML file. Unknown keys and wrong types are a one-line
:class:`ConfigError` naming the key and the file (``psc_eval.models.config``'s checks).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from psc_eval.models.config import dataclass_from_dict, plain
from torch import Tensor

from psc_eval.checkpoint import load_checkpoint, require_keys
from psc_eval.color import AB_MAX, AB_MIN, denormalize_ab
from psc_eval.errors import ConfigError, WeightsError
from psc_eval.paths import colorizer_dir
from psc_eval.shipped import trained_or_shipped
from psc_eval.training import (
    LAST,
    LoopConfig,
    MemoryCache,
    Trainer,
    TrainMethod,
    TrainResult,
    open_train_val,
    seed_everything,
)

CONFIG_DIR = Path(__file__).parent / "configs"
# Keys a resumed run may change (more epochs, another device, worker count, interval).
RESUMABLE = frozenset({"train.epochs", "train.device", "train.workers",
                       "train.checkpoint_every"})


@dataclass
class TrainSettings:
    """The ``[train]`` table of a baseline's config (one optimiser's settings: a GAN
    uses them for both of its optimisers)."""

    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    adam_eps: float = 1e-8
    # "adam" or "adadelta" (Iizuka et al.; betas[0] is then Adadelta's rho), see make_optimizer
    optimizer: str = "adam"
    weight_decay: float = 0.0
    epochs: int = 10
    batch_size: int = 16
    seed: int = 0
    n_train: int = 0  # 0: the whole training split
    n_val: int = 0  # 0: the whole validation split
    train_split: str = ""
    val_split: str = ""
    workers: int = 0
    cache_in_memory: bool = False
    grad_clip: float = 0.0
    checkpoint_every: int = 0
    polyak: float = 0.0  # 0: no averaged weights
    amp: str = "none"
    device: str = "auto"


def config_path(method: str, name_or_path: str) -> Path:
    """``toy`` / ``paper`` -> ``configs/<method>-<name>.toml``; else a TOML path."""
    p = CONFIG_DIR / f"{method}-{name_or_path}.toml"
    if not str(name_or_path).endswith(".toml") and p.is_file():
        return p
    p = Path(name_or_path)
    if not p.is_file():
        known = ", ".join(sorted(q.stem.split("-", 1)[1]
                                 for q in CONFIG_DIR.glob(f"{method}-*.toml")))
        raise ConfigError(f"config not found, {name_or_path}, pass one of {known} "
                          "or a path to a .toml file")
    return p


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"cannot parse TOML ({e}), {path}, fix the syntax") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config is not UTF-8 text, {path}, save it as UTF-8 TOML") from None


def load_tables(raw: dict[str, Any], where: str, model_cls: type,
                overrides: dict[str, Any] | None = None) -> tuple[Any, TrainSettings]:
    """``[model]`` -> ``model_cls``, ``[train]`` -> :class:`TrainSettings`, with
    ``overrides`` {"model.input_size": 64, "train.lr": ...} (None values ignored)."""
    for k in raw:
        if k not in ("model", "train"):
            raise ConfigError(f"unknown config table {k!r}, in {where}, use [model] and [train]")
    model_d, train_d = dict(raw.get("model", {})), dict(raw.get("train", {}))
    for key, value in (overrides or {}).items():
        if value is not None:
            table, _, k = key.partition(".")
            (model_d if table == "model" else train_d)[k] = value
    model = dataclass_from_dict(model_cls, model_d, where, prefix="model.")
    train = dataclass_from_dict(TrainSettings, train_d, where, prefix="train.")
    check_train(train, where)
    return model, train


def check_train(t: TrainSettings, where: str) -> None:
    if not (math.isfinite(t.lr) and t.lr > 0):
        raise ConfigError(f"train.lr={t.lr} must be finite and > 0, in {where}, use e.g. 2e-4")
    if not all(0.0 <= b < 1.0 for b in t.betas):
        raise ConfigError(f"train.betas={list(t.betas)} outside [0, 1), in {where}, "
                          "use e.g. [0.5, 0.999]")
    if t.optimizer not in OPTIMIZERS:
        raise ConfigError(f"train.optimizer={t.optimizer!r}, in {where}, "
                          f"use one of {', '.join(OPTIMIZERS)}")
    if not (math.isfinite(t.weight_decay) and t.weight_decay >= 0):
        raise ConfigError(f"train.weight_decay={t.weight_decay} must be >= 0, in {where}, "
                          "use 0 (off) or e.g. 1e-3")
    if not 0.0 <= t.polyak < 1.0:
        raise ConfigError(f"train.polyak={t.polyak} outside [0, 1), in {where}, "
                          "use 0 (off) or e.g. 0.999")
    for k in ("n_train", "n_val"):
        if getattr(t, k) < 0:
            raise ConfigError(f"train.{k}={getattr(t, k)} is negative, in {where}, "
                              "use 0 (all) or a count")
    loop_config(t).check(where)


OPTIMIZERS = ("adam", "adadelta")


def make_optimizer(params, t: TrainSettings) -> torch.optim.Optimizer:
    """The optimiser of a ``[train]`` table: Adam (lr, betas, adam_eps, L2 weight_decay) or
    Adadelta (lr, rho = betas[0], eps = adam_eps, weight_decay)."""
    if t.optimizer == "adadelta":
        return torch.optim.Adadelta(params, lr=t.lr, rho=t.betas[0], eps=t.adam_eps,
                                    weight_decay=t.weight_decay)
    return torch.optim.Adam(params, lr=t.lr, betas=tuple(t.betas), eps=t.adam_eps,
                            weight_decay=t.weight_decay)


def loop_config(t: TrainSettings) -> LoopConfig:
    return LoopConfig(epochs=t.epochs, batch_size=t.batch_size, seed=t.seed, workers=t.workers,
                      grad_clip=t.grad_clip, amp=t.amp,
                      ema_decay=t.polyak if t.polyak > 0 else None,
                      checkpoint_every=t.checkpoint_every, device=t.device)


@dataclass
class TrainOptions:
    """The options of ``psc-eval train`` that every baseline's train entry takes (None:
    the config's value); an unknown option is a TypeError naming it."""

    root: str | None = None
    size: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    device: str | None = None
    seed: int | None = None
    n_train: int | None = None
    workers: int | None = None
    checkpoint_every: int | None = None
    resume: str | None = None
    out_dir: str | Path | None = None
    progress: bool = True

    def overrides(self) -> dict[str, Any]:
        """The options as config overrides."""
        return {"model.input_size": self.size, "train.epochs": self.epochs,
                "train.batch_size": self.batch_size, "train.lr": self.lr,
                "train.device": self.device, "train.seed": self.seed,
                "train.n_train": self.n_train, "train.workers": self.workers,
                "train.checkpoint_every": self.checkpoint_every}


def datasets(dataset: str, root: str | None, t: TrainSettings, size: int):
    """(train, val) datasets of a run, subset and (optionally) cached in memory."""
    train_ds, val_ds = open_train_val(dataset, root, size, t.train_split, t.val_split,
                                      t.n_train, t.n_val)
    meta = {"dataset": dataset, "num_classes": train_ds.num_classes,
            "train_fingerprint": train_ds.fingerprint(), "val_fingerprint": val_ds.fingerprint()}
    if t.cache_in_memory and t.workers == 0:
        train_ds, val_ds = MemoryCache(train_ds), MemoryCache(val_ds)
    return train_ds, val_ds, meta


def run_training(
    name: str, dataset: str, t: TrainSettings, config: dict[str, Any], size: int,
    build: Callable[[Any], TrainMethod], o: TrainOptions, loop: LoopConfig | None = None,
) -> TrainResult:
    """Build the datasets, seed, build the method (``build(train_ds)``: it may read the
    training set, e.g. for statistics) and run the core loop into
    ``colorizer_dir(dataset, name)`` (or ``o.out_dir``; data from ``o.root``, resume and
    progress from ``o``); ``loop`` defaults to ``loop_config(t)``."""
    out = Path(o.out_dir) if o.out_dir is not None else colorizer_dir(dataset, name)
    train_ds, val_ds, meta = datasets(dataset, o.root, t, size)
    seed_everything(t.seed)
    method = build(train_ds)
    trainer = Trainer(method, loop or loop_config(t), train_ds, val_ds, out, config=config,
                      meta={"variant": name, **meta}, progress=o.progress)
    return trainer.fit(resume=o.resume if o.resume in (None, "last") else Path(o.resume))


def load_trained(name: str, dataset: str, weights: str | Path | None,
                 config: str = "toy") -> tuple[dict[str, Any], Path]:
    """The checkpoint of a trained baseline: ``weights`` or ``colorizer_dir/last.pt``;
    checked to be a colorizer checkpoint of ``name``."""
    path = Path(weights) if weights else trained_or_shipped(colorizer_dir(dataset, name) / LAST,
                                                            dataset, "colorizer", name)
    if not path.is_file():
        raise WeightsError(f"no trained weights for {name!r} on {dataset}, {path}, run: "
                           f"psc-eval train --colorizer {name} --dataset {dataset} "
                           f"--config {config}")
    hint = f"pass a checkpoint of {name!r} (psc-eval train --colorizer {name})"
    ck = require_keys(load_checkpoint(path, hint=hint), ("kind", "config"), path, hint)
    require_keys(ck, ("ema",) if "ema" in ck else ("model",), path, hint)  # shipped: ema only
    if ck.get("kind") != "colorizer" or ck.get("variant") != name:
        raise WeightsError(f"checkpoint is of {ck.get('variant')!r} (kind {ck.get('kind')!r}), "
                           f"not {name!r}, {path}, {hint}")
    if not isinstance(ck["config"], dict):
        raise WeightsError(f"checkpoint's config is damaged, {path}, {hint}")
    return ck, path


def resize_L(L: Tensor, size: int, device: torch.device) -> Tensor:
    """L at the network's input size (bilinear, antialiased), on ``device``."""
    x = L.to(device, torch.float32)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=True).clamp(0.0, 100.0)
    return x


def finish_ab(x: Tensor, L: Tensor, n: int) -> Tensor:
    """(B*n,2,h,w) normalised chroma in [-1,1] (sample i of image b at b*n + i) ->
    (B,n,2,H,W) Lab units at L's size, on L's device (bilinear upsampling)."""
    ab = denormalize_ab(x.float().clamp(-1.0, 1.0))
    if ab.shape[-2:] != L.shape[-2:]:
        ab = F.interpolate(ab, size=L.shape[-2:], mode="bilinear", align_corners=False)
    ab = ab.clamp(AB_MIN, AB_MAX)
    return ab.view(L.shape[0], n, 2, *L.shape[-2:]).to(L.device)


def asdict_plain(obj: Any) -> dict[str, Any]:
    return plain(dataclasses.asdict(obj))


def load_config(method: str, model_cls: type, name_or_path: str,
                overrides: dict[str, Any] | None = None) -> tuple[Any, TrainSettings, str]:
    """A method's config file -> (model dataclass, TrainSettings, where)."""
    path = config_path(method, name_or_path)
    model, train = load_tables(read_toml(path), str(path), model_cls, overrides)
    return model, train, str(path)


def saved_config(model: Any, train: TrainSettings) -> dict[str, Any]:
    """The resolved config as stored in checkpoints and results."""
    return {"model": asdict_plain(model), "train": asdict_plain(train)}


class BaselineColorizer:
    """A trained (or ``weights="random"``) diverse baseline behind the Colorizer protocol.

    Subclasses set ``name`` and ``model_cls`` and define :meth:`build_net` and
    :meth:`sample`. Weights: ``weights=PATH``, by default
    ``colorizer_dir(dataset, name)/last.pt`` (the Polyak-averaged weights when the run
    kept them), or ``"random"``: the network of ``config`` (``toy`` by default)
    initialised under ``torch.manual_seed(seed)``, reported with ``weights_sha256 =
    None`` and ``config["weights"] == "random"``.
    """

    name = ""
    model_cls: type = object
    stochastic = True
    oracle = False

    def __init__(self, dataset: str = "toy", weights: str | Path | None = None,
                 device: str = "cpu", config: str = "toy", seed: int = 0, **_: Any):
        from psc_eval.checkpoint import load_state_dict_checked
        from psc_eval.colorizer import RANDOM_WEIGHTS
        from psc_eval.io import sha256_file

        self.device = torch.device(device)
        if weights == RANDOM_WEIGHTS:
            model_cfg, train, _ = load_config(self.name, self.model_cls, str(config))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                net = self.build_net(model_cfg)
            self.config = {**saved_config(model_cfg, train), "weights": RANDOM_WEIGHTS,
                           "init_seed": seed}
            self.weights_path, self.weights_sha256 = None, None
        else:
            ck, path = load_trained(self.name, dataset, weights, config)
            hint = f"pass a checkpoint of {self.name!r} (psc-eval train --colorizer {self.name})"
            try:
                model_cfg, _ = load_tables({"model": ck["config"]["model"],
                                            "train": ck["config"]["train"]}, str(path),
                                           self.model_cls)
            except (KeyError, TypeError, AttributeError):
                raise WeightsError(f"checkpoint's config is incomplete, {path}, {hint}") from None
            net = self.build_net(model_cfg)
            averaged = "ema" in ck
            load_state_dict_checked(net, ck["ema"] if averaged else ck["model"], path,
                                    f"{self.name}'s {'averaged ' if averaged else ''}weights",
                                    hint)
            self.config = ck["config"]
            self.weights_path, self.weights_sha256 = str(path), sha256_file(path)
        self.model_cfg = model_cfg
        self.net = net.to(self.device).eval()

    def build_net(self, model_cfg: Any) -> torch.nn.Module:
        raise NotImplementedError

    def sample(self, L: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
        """L (B,1,S,S) in [0,100] at the input size -> (B*n,2,h,w) in [-1,1]."""
        raise NotImplementedError

    @torch.no_grad()
    def colorize(self, L: Tensor, n_samples: int = 1, *,
                 generator: torch.Generator | None = None) -> Tensor:
        from psc_eval.colorizer import check_L, check_n_samples

        check_L(L)
        check_n_samples(self, n_samples)
        x = resize_L(L, self.model_cfg.input_size, self.device)
        return finish_ab(self.sample(x, n_samples, generator), L, n_samples)


def cpu_noise(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device,
              kind: str = "normal") -> Tensor:
    """Noise drawn on the CPU from ``generator`` (so a seeded generator gives the same
    samples on every device), then moved to ``device``."""
    if kind == "normal":
        z = torch.randn(shape, generator=generator)
    else:  # uniform in [-1, 1)
        z = torch.rand(shape, generator=generator) * 2.0 - 1.0
    return z.to(device)
