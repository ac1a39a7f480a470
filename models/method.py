"""The paper's model as a trainable method of the core loop (``psc-eval train``).

Checkpoints live under ``psc_eval.paths.colorizer_dir(dataset, colorizer)``, i.e.
``$PSC_HOME/models/<dataset>/<colorizer>/`` (``$PSC_HOME`` defaults to
``~/.cache/psc-eval``): ``epoch-NNNN.pt`` per epoch, ``last.pt`` (what the colorizers
load by default) and ``log.csv``. The train entry itself is the core's
(``psc_eval.training.entry.train``); the method records are in ``variants.py``.
"""

from __future__ import annotations

from typing import Any

from psc_eval.errors import ConfigError
from psc_eval.training import Config, Optim, TrainMethod, make_optimizer

from .config import (
    VARIANTS,
    ModelConfig,
    PSCTrainConfig,
    check_config,
    load_config,
    resolve_variant,
)
from .network import PSCNet


def build_net(variant: str, cfg: Config, num_classes: int) -> PSCNet:
    """The network of one trainable variant (``VARIANTS``); cfg already resolved."""
    with_seg = variant != "psc-purple"
    return PSCNet(cfg.model, num_classes, with_seg, cfg.train.loss_weights)


class PSCMethod(TrainMethod):
    """The paper's model as a method of the core loop (Sec. 4.1).

    Adam (lr 1e-3, betas 0.95 / 0.9995, eps ``adam_eps``) on all weights, an optional
    per-step exponential learning-rate decay (``lr_decay``; PIC's 0.99999, off by
    default), Polyak averaging, and the step is the network's own Eq. 6:
    ``PSCNet.forward(batch)``.
    """

    kind = "colorizer"
    model_config = ModelConfig
    train_config = PSCTrainConfig
    # The plateau rule reads L_gen, the colorization likelihood: the validation total is
    # dominated by 100 x L_seg, which starts to overfit while L_gen still falls (and the
    # judge's mIoU still rises) in a 16-epoch toy probe.
    plateau_metric = "L_gen_bpd"

    def __init__(self, net: PSCNet, cfg: Config):
        self.model = net
        self.cfg = cfg.train

    @classmethod
    def check_config(cls, cfg: Config, where: str) -> None:
        check_config(cfg, where)

    @classmethod
    def prepare(cls, name: str, cfg: Config, train_ds: Any) -> None:
        resolve_variant(cfg, name)

    @classmethod
    def build(cls, name: str, cfg: Config, train_ds: Any) -> PSCMethod:
        return cls(build_net(name, cfg, train_ds.num_classes), cfg)

    def configure_optimizers(self, total_steps: int) -> list[Optim]:
        return [make_optimizer(self.model.parameters(), self.cfg, "adam")]

    def training_step(self, model, batch, *, opt_index, generator):
        return model(batch)

    def validation_step(self, model, batch):
        return model(batch)


def resolve_train_config(
    colorizer: str, config: str, overrides: dict[str, Any] | None = None
) -> Config:
    """The resolved config of a trainable variant (``VARIANTS``)."""
    if colorizer not in VARIANTS:
        raise ConfigError(
            f"cannot train {colorizer!r}, in --colorizer, use one of {', '.join(VARIANTS)} "
            "(psc-embedding reuses the 'ours' weights)"
        )
    return resolve_variant(load_config(config, overrides), colorizer)
