"""Training: one loop for the paper's model, its ablations, the baselines and the judges.

Rooms: ``config`` (the one ``[train]`` config and TOML reader), ``method`` (what a
trainable supplies), ``data`` (datasets, data order, augmentation streams, memory cache),
``state`` (checkpoints and resume), ``loop`` (the Trainer), ``entry`` (``psc-eval train``
for any method record).
"""

from __future__ import annotations

from .config import Config, TrainConfig, config_diff, dataclass_from_dict, load_config, plain
from .data import MemoryCache, epoch_order, open_train_val, seed_everything, step_generator

# after the rest: the entry reads the method records
from .entry import TRAINABLE, train
from .loop import Trainer, TrainResult
from .method import Optim, TrainMethod, make_optimizer
from .state import LAST, LOG

__all__ = [
           "LAST",
           "LOG",
           "TRAINABLE",
           "Config",
           "MemoryCache",
           "Optim",
           "TrainConfig",
           "TrainMethod",
           "TrainResult",
           "Trainer",
           "config_diff",
           "dataclass_from_dict",
           "epoch_order",
           "load_config",
           "make_optimizer",
           "open_train_val",
           "plain",
           "seed_everything",
           "step_generator",
           "train",
]
