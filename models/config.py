"""Configs of the paper's model and its training: dataclasses loaded from TOML.

``models/configs/paper.toml`` is the full size of Tables 1-2 (128 px input,
64/128/256/512 channels, 160-channel embedding at 32x32); ``toy.toml`` is scaled down
in width and depth for a CPU (64 px input, 16x16 embedding and generator: the same
factor of 4). A TOML file has three tables, ``[model]``, ``[model.generator]`` (the
fields of :class:`psc_eval.models.pixelcnn.GeneratorConfig`) and ``[train]``. Unknown
keys and wrong types are a one-line :class:`ConfigError` naming the key and the file.

Choices the paper leaves open (docs/paper-notes.md) are config values:
``shared_rows`` (rows of Tables 1-2 shared by f and h; 6 by default, 8 is the other
reading), the loss weights (Eq. 6, 1:100:1) and the Polyak decay (0.9995, PIC's value).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psc_eval.errors import ConfigError
from psc_eval.methods import config_files
from psc_eval.training.config import (
    Config,
    TrainConfig,
    config_from_tables,
    dataclass_from_dict,
)
from psc_eval.training.config import load_config as load_method_config

CONFIG_DIR = Path(__file__).parent / "configs"
CONFIGS = config_files(CONFIG_DIR)  # toy, paper

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
class PSCTrainConfig(TrainConfig):
    """Optimisation (Sec. 4.1): Adam lr 1e-3, betas (0.95, 0.9995), Polyak averaging
    0.9995 (PIC's value); the loss weights of Eq. 6. The rest is the core's TrainConfig."""

    lr: float = 1e-3
    betas: tuple[float, float] = (0.95, 0.9995)
    adam_eps: float = 1e-8  # not in the paper; torch's and TensorFlow-PIC's default scale
    # The paper states only "initial learning rate 0.001"; PIC decays by 0.99999 per step.
    lr_decay: float = 1.0
    polyak: float = 0.9995
    # Eq. 6: lambda_1 : lambda_2 : lambda_3 = 1 : 100 : 1 (emb, seg, gen).
    loss_weights: tuple[float, float, float] = (1.0, 100.0, 1.0)


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


# Sizes refused before anything is built: a typo such as widths = [100000, ...] or
# nr_resnet = 100000 would otherwise allocate until the machine runs out of memory, or build
# modules for minutes without a word. The paper's model has about 1.9e8 parameters.
MAX_PARAMETERS = 1_000_000_000  # float32 weights + gradients + Adam's moments: 16 GB
MAX_BLOCKS = 1024  # residual blocks of f, h and g together


def estimate_parameters(m: ModelConfig, num_classes: int = 256) -> int:
    """Parameters of f, h and g from the config alone, without building the network
    (``num_classes`` an upper bound of the datasets': the ASPP heads and g's condition).
    Exact for f and h (the layer formulas of network.py); g's count is linear in
    nr_resnet and read from one- and two-block copies built on the meta device."""
    import torch

    from .pixelcnn import ConditionalPixelCNNpp

    def stage(w_in: int, w: int, n: int, rows: set[int], i: int) -> int:
        conv = (9 * w_in * w + w) if 2 * i in rows else 0
        block = n * (9 * 2 * w * w + w + 9 * 2 * w * 2 * w + 2 * w) if 2 * i + 1 in rows else 0
        return conv + block

    total, ch = 0, 1
    all_rows = set(range(2 * len(m.widths)))
    own = {r for r in all_rows if r >= m.shared_rows}
    for i, (w, n) in enumerate(zip(m.widths, m.blocks)):
        total += stage(ch, w, n, all_rows, i) + stage(ch, w, n, own, i)  # f (+trunk), h
        ch = w
    total += 9 * ch * m.emb_channels + m.emb_channels
    total += len(m.aspp_dilations) * (9 * ch * num_classes + num_classes)
    total += 9 * num_classes * m.film_hidden + 9 * m.film_hidden * 2 * m.emb_channels
    g = generator_config(m)
    cond = m.emb_channels + num_classes

    def g_params(n: int) -> int:
        with torch.device("meta"):
            net = ConditionalPixelCNNpp(type(g)(**{**g.to_dict(), "nr_resnet": n}), cond)
        return sum(p.numel() for p in net.parameters())

    one, two = g_params(1), g_params(2)
    return total + one + (g.nr_resnet - 1) * (two - one)


def check_config(cfg: Config, where: str) -> None:
    """The paper model's own checks of a resolved config (after the shared ones)."""
    m = cfg.model
    n = len(m.widths)
    for k in ("widths", "blocks", "strides", "dilations", "seg_dilations", "aspp_dilations"):
        low = 0 if k == "blocks" else 1
        bad = [v for v in getattr(m, k) if v < low]
        if bad or not getattr(m, k):
            raise ConfigError(f"model.{k}={list(getattr(m, k))} needs values >= {low}, in "
                              f"{where}, see models/configs/toy.toml")
    for k in ("emb_channels", "n_mix", "film_hidden"):
        if getattr(m, k) < 1:
            raise ConfigError(f"model.{k}={getattr(m, k)} must be >= 1, in {where}, "
                              "see models/configs/toy.toml")
    if not 0.0 <= m.dropout < 1.0:
        raise ConfigError(f"model.dropout={m.dropout} outside [0, 1), in {where}, "
                          "use 0 (off) or e.g. 0.1")
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
    if m.input_size < 8:
        raise ConfigError(f"input size {m.input_size} is too small, in {where}, "
                          f"pass --size of at least 8 and divisible by {m.factor}")
    g = generator_config(m, where)
    blocks = 2 * sum(m.blocks) + g.nr_resnet * 2
    if blocks > MAX_BLOCKS:
        raise ConfigError(f"the model would have {blocks} residual blocks (model.blocks, "
                          f"model.generator.nr_resnet), over the limit of {MAX_BLOCKS}, in "
                          f"{where}, use sizes like models/configs/paper.toml's")
    params = estimate_parameters(m)
    if params > MAX_PARAMETERS:
        raise ConfigError(f"the model would have about {params:.3g} parameters "
                          f"({16 * params / 2**30:.0f} GiB to train), over the limit of "
                          f"{MAX_PARAMETERS:.0e}, in {where}, use widths and filters like "
                          "models/configs/paper.toml's")


def load_config(name_or_path: str, overrides: dict[str, Any] | None = None,
                train_cls: type = PSCTrainConfig) -> Config:
    """``toy`` / ``paper`` (models/configs) or a TOML path; ``overrides`` {"train.lr": ...}."""
    return load_method_config(name_or_path, CONFIGS, ModelConfig, train_cls, overrides,
                              check_config)


def config_from_dict(raw: dict[str, Any], where: str, overrides: dict[str, Any] | None = None,
                     train_cls: type = PSCTrainConfig) -> Config:
    model = raw.get("model", {})
    if isinstance(model, dict) and "fusion" in model:
        raise ConfigError(
            f"config key 'model.fusion' is set by the variant, in {where}, "
            "choose --colorizer ours (concat) or psc-film (film) instead"
        )
    return config_from_tables(raw, where, ModelConfig, train_cls, overrides, check_config)


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
    train_d = {k: v for k, v in dict(d["train"]).items() if k != "hflip"}
    cfg = config_from_dict({"model": model_d, "train": train_d}, where)
    cfg.model.fusion = fusion
    return cfg
