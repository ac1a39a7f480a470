"""The trainable-method protocol: what a method supplies to the core loop.

A method (in the spirit of nanoGPT's ``configure_optimizers``) supplies its model, its
optimisers with their schedules, and a step that returns the named loss terms of a batch
(``"total"`` is minimised); the loop (``psc_eval.training.loop``) calls backward and steps.
For ``psc-eval train`` a method class also declares its config classes and how it is
built from a resolved config (:meth:`TrainMethod.build`); its method record
(``psc_eval.methods``) names the class and the config files.

"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .config import Config, TrainConfig


@dataclass
class Optim:
    """One optimiser of a method and its schedule (stepped once per optimiser step)."""

    name: str
    optimizer: torch.optim.Optimizer
    scheduler: Any = None  # torch.optim.lr_scheduler.LRScheduler or None


def make_optimizer(params, t: TrainConfig, name: str = "net") -> Optim:
    """The optimiser of a ``[train]`` table: Adam (lr, betas, adam_eps, L2 weight_decay),
    Adadelta (rho = betas[0], eps = adam_eps), AdamW or SGD (momentum); with
    ``lr_decay`` < 1 the per-step exponential schedule ``lr * lr_decay ** step``."""
    if t.optimizer == "adadelta":
        opt: torch.optim.Optimizer = torch.optim.Adadelta(
            params, lr=t.lr, rho=t.betas[0], eps=t.adam_eps, weight_decay=t.weight_decay)
    elif t.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=t.lr, betas=tuple(t.betas), eps=t.adam_eps,
                                weight_decay=t.weight_decay)
    elif t.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=t.lr, betas=tuple(t.betas), eps=t.adam_eps,
                               weight_decay=t.weight_decay)
    sched = None
    if t.lr_decay != 1.0:
        decay = t.lr_decay
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: decay**step)
    return Optim(name, opt, sched)


class TrainMethod:
    """What a trainable method supplies. Subclasses set ``kind`` and ``model`` and define
    :meth:`configure_optimizers` and :meth:`training_step`; for ``psc-eval train`` also
    ``model_config`` (the ``[model]`` dataclass), ``train_config`` (TrainConfig or a
    subclass) and :meth:`build`.

    ``model`` is the one module whose weights are trained, averaged and checkpointed
    (several networks, e.g. a GAN's, live in one ``nn.Module``).
    """

    kind: str = "colorizer"  # checkpoint kind ("colorizer", "judge"); checked on resume
    model: nn.Module
    model_config: ClassVar[type | None] = None
    train_config: ClassVar[type[TrainConfig]] = TrainConfig
    # config keys (dotted) that may change on resume: more epochs, another device...
    resumable_keys: frozenset[str] = TrainConfig.RESUMABLE
    # The validation loss the plateau rule reads (psc_eval.training.plateau), as logged
    # without its "val_" prefix; a method says why its choice tracks learning.
    plateau_metric: ClassVar[str] = "total"
    # config overrides under which the method trains in two epochs of a few images (the
    # trainable contract test; a method with stages shortens its first stage here)
    smoke: ClassVar[dict[str, Any]] = {}

    # --- building (psc-eval train) --------------------------------------------------------
    @classmethod
    def check_config(cls, cfg: Config, where: str) -> None:
        """The method's own checks of a resolved config (after the shared ones)."""
        check = getattr(cfg.model, "check", None)
        if callable(check):
            check(where)

    @classmethod
    def input_size(cls, cfg: Config) -> int:
        """The square image size the training data is read at."""
        return int(cfg.model.input_size)

    @classmethod
    def prepare(cls, name: str, cfg: Config, train_ds: Any) -> None:
        """Fill config values that depend on the method's name or the data (e.g. a
        classifier's width = the dataset's class count) before it is saved."""

    @classmethod
    def build(cls, name: str, cfg: Config, train_ds: Any) -> TrainMethod:
        """The method of a resolved config, built after the seed is set (initial weights);
        it may read the training set (e.g. for statistics)."""
        raise NotImplementedError

    # --- training -------------------------------------------------------------------------
    def configure_optimizers(self, total_steps: int) -> Sequence[Optim]:
        raise NotImplementedError

    def training_step(self, model: nn.Module, batch: dict[str, Any], *, opt_index: int,
                      generator: torch.Generator) -> dict[str, Tensor]:
        """Loss terms of one batch for optimiser ``opt_index``; ``"total"`` is minimised.
        ``model`` is ``self.model`` or its DDP wrapper; ``generator`` (CPU) is for
        augmentation."""
        raise NotImplementedError

    def active_optimizers(self, step: int, epoch: int) -> Sequence[int] | None:
        """Indices of the optimisers stepped on the batch of loop step ``step`` (0-based,
        in epoch ``epoch``, 0-based); None: all. Called once before each batch's steps.
        An inactive optimiser is left alone: no step, no zero-gradient update, no
        schedule step, so its Adam moments and bias correction start fresh when its
        stage begins (a method with stages, e.g. deshpande2017's VAE then MDN, or a
        GAN's several critic steps per generator step). Must be a pure function of
        (step, epoch) and the config, so a resumed run takes the same stages."""
        return None

    def validation_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Loss terms on a validation batch (default: the first optimiser's step terms)."""
        return self.training_step(model, batch, opt_index=0,
                                  generator=torch.Generator().manual_seed(0))

    def plateau_series(self, history: Sequence[dict[str, Any]]) -> list[float]:
        """The per-epoch values the plateau rule reads (default: ``val_<plateau_metric>``
        of every epoch; a staged method may read only its last stage's epochs)."""
        key = f"val_{self.plateau_metric}"
        return [float(r[key]) for r in history if key in r]

    def skip_batch(self, batch: dict[str, Any]) -> bool:
        """True for a batch with nothing to learn from (every image skipped: no colour)."""
        return batch.get("rgb") is None
