"""Configs of the paper's model and its training: dataclasses loaded from TOML.

``models/configs/paper.toml`` is the full size of Tables 1-2 (128 px input,
64/128/256/512 channels, 160-channel embedding at 32x32); ``toy.toml`` is scaled down
in width and depth for a CPU (64 px input, 16x16 embedding and generator: the same
factor of 4). A TOML file has three tables, ``[model]``, ``[model.generator]`` (the
fields of :class:`psc_eval.models.pixelcnn.GeneratorConfig`) and ``[train]``. Unknown
keys and wrong types are a one-line :class:`ConfigError` naming the key and the file.

Choices the paper leaves open (DESIGN.md "Paper notes") are config values:
``shared_rows`` (rows of Tables 1-2 shared by f and h; 6 by default, 8 is the other
reading), the loss weights (Eq. 6, 1:100:1) and the Polyak decay (0.9995, PIC's value).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psc_eval.errors import ConfigError
from psc_eval.training import LoopConfig

CONFIG_DIR = Path(__file__).parent / "configs"

# Variant name (colorizer registry) -> how g is conditioned (Sec. 3.1-3.2.2).
VARIANTS: dict[str, str] = {
    "psc-purple": "none",  # f + g, no h
    "psc-purple-blue": "none",  # f and h share a trunk; g sees f only
    "ours": "concat",  # g sees concat(f, softmax(h))
    "psc-film": "film",  # g sees f scaled and shifted by convs of softmax(h)
}
TRAINABLE_VARIANTS = tuple(VARIANTS)


@dataclass
class ModelConfig:
    """Network sizes (Tables 1-2). Stage i = one convolution row + one residual-block row.

    A row index counts Table 1's rows from 1: stage i holds rows 2i-1 (the 3x3
    convolution, stride ``strides[i]``) and 2i (``blocks[i]`` gated residual blocks with
    dilation ``dilations[i]``). The first ``shared_rows`` rows are shared by f and h;
    h's own copy of the remaining stages uses ``seg_dilations``.
    """

    widths: tuple[int, ...] = (64, 128, 256, 512, 512)
    blocks: tuple[int, ...] = (2, 2, 2, 3, 3)
    strides: tuple[int, ...] = (1, 2, 2, 1, 1)
    dilations: tuple[int, ...] = (1, 1, 1, 2, 4)  # f (Table 1)
    seg_dilations: tuple[int, ...] = (1, 1, 1, 2, 2)  # h (Table 2)
    aspp_dilations: tuple[int, ...] = (6, 12, 18)
    emb_channels: int = 160
    shared_rows: int = 6
    n_mix: int = 10
    input_size: int = 128
    # FiLM / SFT hidden width (psc-film only).
    film_hidden: int = 64
    dropout: float = 0.0
    # Set from the variant when the config is resolved (VARIANTS); not read from TOML.
    fusion: str = "none"
    generator: dict[str, Any] = field(default_factory=dict)

    @property
    def factor(self) -> int:
        f = 1
        for s in self.strides:
            f *= s
        return f

    @property
    def emb_size(self) -> int:
        return self.input_size // self.factor


@dataclass
class TrainConfig:
    """Optimisation (Sec. 4.1): Adam lr 1e-3, betas (0.95, 0.9995), Polyak averaging."""

    lr: float = 1e-3
    betas: tuple[float, float] = (0.95, 0.9995)
    adam_eps: float = 1e-8  # not in the paper; torch's and TensorFlow-PIC's default scale
    # Per-step exponential decay of the learning rate, lr * lr_decay ** step. The paper
    # states only "initial learning rate 0.001"; PIC decays by 0.99999 per step. 1.0: off.
    lr_decay: float = 1.0
    polyak: float = 0.9995
    # Eq. 6: lambda_1 : lambda_2 : lambda_3 = 1 : 100 : 1 (emb, seg, gen).
    loss_weights: tuple[float, float, float] = (1.0, 100.0, 1.0)
    epochs: int = 10
    batch_size: int = 16
    seed: int = 0
    n_train: int = 0  # 0: the whole training split
    n_val: int = 0  # 0: the whole validation split
    train_split: str = ""  # "": the dataset's training split (train / train_aug)
    val_split: str = ""  # "": the dataset's evaluation split
    workers: int = 0
    cache_in_memory: bool = False  # keep decoded samples in RAM after the first epoch
    grad_clip: float = 0.0  # 0: off
    checkpoint_every: int = 0  # optimiser steps between mid-epoch checkpoints; 0: per epoch
    # "bf16": autocast the forward pass to bfloat16 (the mixture losses stay fp32).
    amp: str = "none"
    device: str = "auto"  # auto: CUDA when available, else the CPU


@dataclass
class Config:
    model: ModelConfig
    train: TrainConfig
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"model": plain(dataclasses.asdict(self.model)),
                "train": plain(dataclasses.asdict(self.train))}


def plain(v: Any) -> Any:
    """Dataclass dicts with tuples -> JSON-like values (lists), as checkpoints store them."""
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v


def _check_value(value: Any, tp: Any, key: str, where: str) -> Any:
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
            return tuple(_check_value(v, args[0], key, where) for v in value)
        if len(value) != len(args):
            raise ConfigError(
                f"config key {key!r} needs {len(args)} values, got {len(value)}, in {where}, "
                "fix the list"
            )
        return tuple(_check_value(v, a, key, where) for v, a in zip(value, args))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise bad
        return dict(value)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        for a in typing.get_args(tp):
            if a is type(None) and value is None:
                return None
            try:
                return _check_value(value, a, key, where)
            except ConfigError:
                pass
        raise bad
    return value


def dataclass_from_dict(cls: type, d: dict[str, Any], where: str, prefix: str = "") -> Any:
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
        kw[k] = _check_value(v, hints[k], prefix + k, where)
    return cls(**kw)


def generator_config(model: ModelConfig, where: str = "the model config") -> Any:
    """The GeneratorConfig of the conditional PixelCNN++ g (fields validated like TOML keys)."""
    from .pixelcnn import GeneratorConfig

    d = dict(model.generator)
    # The mixture size is one value for f's L_emb head and g (Sec. 3.3: 10 logistics).
    if d.setdefault("nr_logistic_mix", model.n_mix) != model.n_mix:
        raise ConfigError(
            f"model.generator.nr_logistic_mix={d['nr_logistic_mix']} differs from "
            f"model.n_mix={model.n_mix}, in {where}, set only model.n_mix"
        )
    try:
        return dataclass_from_dict(GeneratorConfig, d, where, prefix="model.generator.")
    except ValueError as e:
        raise ConfigError(f"bad generator config ({e}), in {where}, fix [model.generator]") from None


def _validate(cfg: Config, where: str) -> None:
    m, t = cfg.model, cfg.train
    n = len(m.widths)
    for k in ("blocks", "strides", "dilations", "seg_dilations"):
        if len(getattr(m, k)) != n:
            raise ConfigError(
                f"model.{k} has {len(getattr(m, k))} values but model.widths has {n}, in {where}, "
                "give one value per stage"
            )
    if not 0 <= m.shared_rows <= 2 * n:
        raise ConfigError(
            f"model.shared_rows={m.shared_rows} outside 0..{2 * n}, in {where}, "
            "count rows of Table 1 (6: up to 256 channels; 8: also the first 512 block row)"
        )
    if m.emb_channels < 6 * m.n_mix:
        raise ConfigError(
            f"model.emb_channels={m.emb_channels} < 6*n_mix={6 * m.n_mix}, in {where}, "
            "the embedding's first 6K channels are its own mixture (L_emb)"
        )
    if m.input_size % m.factor:
        raise ConfigError(
            f"input size {m.input_size} is not a multiple of the stride product {m.factor}, "
            f"in {where}, pass --size divisible by {m.factor}"
        )
    if not 0.0 <= t.polyak < 1.0:
        raise ConfigError(f"train.polyak={t.polyak} outside [0, 1), in {where}, use e.g. 0.9995")
    if not (math.isfinite(t.lr) and t.lr > 0):
        raise ConfigError(f"train.lr={t.lr} must be finite and > 0, in {where}, use e.g. 1e-3")
    if not 0.0 < t.lr_decay <= 1.0:
        raise ConfigError(f"train.lr_decay={t.lr_decay} outside (0, 1], in {where}, "
                          "use 1.0 (constant) or e.g. 0.99999 (PIC)")
    if not (math.isfinite(t.adam_eps) and t.adam_eps > 0):
        raise ConfigError(f"train.adam_eps={t.adam_eps} must be > 0, in {where}, use 1e-8")
    if not all(0.0 <= b < 1.0 for b in t.betas):
        raise ConfigError(f"train.betas={list(t.betas)} outside [0, 1), in {where}, "
                          "use e.g. [0.95, 0.9995]")
    if m.input_size < 8:
        raise ConfigError(f"input size {m.input_size} is too small, in {where}, "
                          f"pass --size of at least 8 and divisible by {m.factor}")
    for k in ("n_train", "n_val"):
        if getattr(t, k) < 0:
            raise ConfigError(f"train.{k}={getattr(t, k)} is negative, in {where}, "
                              "use 0 (all) or a count")
    loop_config(t).check(where)
    generator_config(m, where)


def loop_config(t: TrainConfig) -> LoopConfig:
    """What the core training loop takes of this config (Polyak averaging always on)."""
    return LoopConfig(epochs=t.epochs, batch_size=t.batch_size, seed=t.seed, workers=t.workers,
                      grad_clip=t.grad_clip, amp=t.amp, ema_decay=t.polyak,
                      checkpoint_every=t.checkpoint_every, keep_epochs=True, device=t.device)


def load_config(name_or_path: str, overrides: dict[str, Any] | None = None) -> Config:
    """``toy`` / ``paper`` (models/configs) or a TOML path; ``overrides`` {"train.lr": ...}."""
    p = Path(name_or_path)
    if not name_or_path.endswith(".toml") and (CONFIG_DIR / f"{name_or_path}.toml").is_file():
        p = CONFIG_DIR / f"{name_or_path}.toml"
    if not p.is_file():
        known = ", ".join(sorted(q.stem for q in CONFIG_DIR.glob("*.toml")))
        raise ConfigError(
            f"config not found, {name_or_path}, pass one of {known} or a path to a .toml file"
        )
    where = str(p)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"cannot parse TOML ({e}), {where}, fix the syntax") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config is not UTF-8 text, {where}, save it as UTF-8 TOML") from None
    return config_from_dict(raw, where, overrides)


def config_from_dict(
    raw: dict[str, Any], where: str, overrides: dict[str, Any] | None = None
) -> Config:
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for k in raw:
        if k not in ("model", "train"):
            raise ConfigError(f"unknown config table {k!r}, in {where}, use [model] and [train]")
    model_d = dict(raw.get("model", {}))
    train_d = dict(raw.get("train", {}))
    if "fusion" in model_d:
        raise ConfigError(
            f"config key 'model.fusion' is set by the variant, in {where}, "
            "choose --colorizer ours (concat) or psc-film (film) instead"
        )
    for key, value in (overrides or {}).items():
        table, _, k = key.partition(".")
        if value is None:
            continue
        (model_d if table == "model" else train_d)[k] = value
    model = dataclass_from_dict(ModelConfig, model_d, where, prefix="model.")
    train = dataclass_from_dict(TrainConfig, train_d, where, prefix="train.")
    cfg = Config(model=model, train=train, source=where)
    _validate(cfg, where)
    return cfg


def resolve_variant(cfg: Config, variant: str) -> Config:
    """Set the fusion of g's conditioning from the variant name."""
    if variant not in VARIANTS:
        raise ConfigError(
            f"unknown trainable variant {variant!r}, in --colorizer, "
            f"use one of {', '.join(TRAINABLE_VARIANTS)}"
        )
    cfg.model.fusion = VARIANTS[variant]
    return cfg


def config_from_checkpoint(d: dict[str, Any], where: str) -> Config:
    """Rebuild the resolved config stored in a checkpoint (fusion included)."""
    model_d = dict(d["model"])
    fusion = model_d.pop("fusion", "none")
    cfg = config_from_dict({"model": model_d, "train": d["train"]}, where)
    cfg.model.fusion = fusion
    return cfg
