"""Every baseline's paper config trains as long as its reference does: the reference's
number of updates where it states one (Zhang et al. 450k, Iizuka et al. 200k, Larsson
et al.'s solver 2M, divcolor's VAE 3800), else its number of passes over the data
(COLORGAN 100, PIC 150, divcolor's MDN 5), on VOC train_aug (the paper's training set).
Iizuka's paper config used to give Places' 11 epochs: about 900 updates on VOC."""

from __future__ import annotations

import importlib
import math

import pytest

from psc_eval.training import load_config

VOC_TRAIN_AUG = 10_582
BASELINES = ("zhang2016", "iizuka2016", "larsson2016", "deshpande2017", "cao2017", "royer2017")


def _paper(name: str):
    mod = importlib.import_module(f"psc_eval.baselines.{name}")
    if name == "royer2017":
        return mod, mod.load_pic_config("paper")
    return mod, load_config("paper", mod.METHOD.configs, mod.METHOD.trainable.model_config,
                            mod.METHOD.trainable.train_config)


@pytest.mark.parametrize("name", BASELINES)
def test_paper_config_matches_the_reference_schedule(name):
    mod, cfg = _paper(name)
    per_epoch = math.ceil(VOC_TRAIN_AUG / cfg.train.batch_size)
    updates = getattr(mod, "REFERENCE_UPDATES", None)
    passes = getattr(mod, "REFERENCE_EPOCHS", None)
    assert updates or passes, f"{name} states no reference schedule"
    first = cfg.model.vae_epochs if name == "deshpande2017" else cfg.train.epochs
    if updates:  # within half an epoch of the reference's updates
        assert abs(first * per_epoch - updates) <= per_epoch / 2, (name, first * per_epoch)
    if passes:
        rest = cfg.train.epochs - (first if name == "deshpande2017" else 0)
        assert rest == passes, (name, rest)
