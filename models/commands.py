"""The bodies of ``psc-eval train`` and ``psc-eval sample`` (the CLI only parses options).

Checkpoints live under ``psc_eval.paths.colorizer_dir(dataset, colorizer)``, i.e.
``$PSC_HOME/models/<dataset>/<colorizer>/`` (``$PSC_HOME`` defaults to
``~/.cache/psc-eval``): ``epoch-NNNN.pt`` per epoch, ``last.pt`` (what the colorizers
load by default) and ``log.csv``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from psc_eval.errors import ConfigError
from psc_eval.paths import colorizer_dir
from psc_eval.training import (
    MemoryCache,
    Optim,
    Trainer,
    TrainMethod,
    TrainResult,
    open_train_val,
    seed_everything,
)

from .config import VARIANTS, Config, load_config, loop_config, resolve_variant
from .network import PSCNet


def build_net(variant: str, cfg: Config, num_classes: int) -> PSCNet:
    """The network of one trainable variant (``VARIANTS``); cfg already resolved."""
    with_seg = variant != "psc-purple"
    return PSCNet(cfg.model, num_classes, with_seg, cfg.train.loss_weights)


class PSCMethod(TrainMethod):
    """The paper's model as a method of the core loop (Sec. 4.1).

    Adam (lr 1e-3, betas 0.95 / 0.9995, eps ``adam_eps``) on all weights, an optional
    per-step exponential learning-rate decay (``lr_decay``; PIC's 0.99999, off by
    default), and the step is the network's own Eq. 6: ``PSCNet.forward(batch)``.
    """

    kind = "colorizer"
    # more epochs, another device or worker count, another checkpoint interval
    resumable_keys = frozenset({"train.epochs", "train.device", "train.workers",
                                "train.checkpoint_every"})

    def __init__(self, net: PSCNet, cfg: Config):
        self.model = net
        self.cfg = cfg.train

    def configure_optimizers(self, total_steps: int) -> list[Optim]:
        t = self.cfg
        opt = torch.optim.Adam(self.model.parameters(), lr=t.lr, betas=tuple(t.betas),
                               eps=t.adam_eps)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: t.lr_decay**step)
        return [Optim("adam", opt, sched)]

    def training_step(self, model, batch, *, opt_index, generator):
        return model(batch)

    def validation_step(self, model, batch):
        return model(batch)


def resolve_train_config(
    colorizer: str, config: str, overrides: dict[str, Any] | None = None
) -> Config:
    if colorizer not in VARIANTS:
        raise ConfigError(
            f"cannot train {colorizer!r}, in --colorizer, use one of {', '.join(VARIANTS)} "
            "(psc-embedding reuses the 'ours' weights)"
        )
    return resolve_variant(load_config(config, overrides), colorizer)


def train_colorizer(
    colorizer: str,
    dataset: str = "toy",
    config: str = "toy",
    *,
    root: str | None = None,
    size: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    device: str | None = None,
    seed: int | None = None,
    n_train: int | None = None,
    workers: int | None = None,
    checkpoint_every: int | None = None,
    resume: str | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train one variant; ``resume`` = None, ``"last"`` (out_dir/last.pt) or a path."""
    overrides = {
        "model.input_size": size, "train.epochs": epochs, "train.batch_size": batch_size,
        "train.lr": lr, "train.device": device, "train.seed": seed, "train.n_train": n_train,
        "train.workers": workers, "train.checkpoint_every": checkpoint_every,
    }
    cfg = resolve_train_config(colorizer, config, overrides)
    t = cfg.train
    out = Path(out_dir) if out_dir is not None else colorizer_dir(dataset, colorizer)
    resume_path = resume if resume in (None, "last") else Path(resume)
    train_ds, val_ds = open_train_val(dataset, root, cfg.model.input_size, t.train_split,
                                      t.val_split, t.n_train, t.n_val)
    seed_everything(t.seed)
    net = build_net(colorizer, cfg, train_ds.num_classes)
    meta = {"variant": colorizer, "dataset": dataset, "num_classes": train_ds.num_classes,
            "class_names": list(train_ds.class_names),
            "train_fingerprint": train_ds.fingerprint(), "val_fingerprint": val_ds.fingerprint()}
    wrap = (lambda d: MemoryCache(d)) if (t.cache_in_memory and t.workers == 0) else (lambda d: d)
    trainer = Trainer(PSCMethod(net, cfg), loop_config(t), wrap(train_ds), wrap(val_ds), out,
                      config=cfg.to_dict(), meta=meta, progress=progress)
    return trainer.fit(resume=resume_path)
