"""The protocol's plateau rule (a direct evaluation of its statement), and the loop
stopping on it: a run stops at the first plateaued epoch, records converged / epochs /
steps / images seen / parameters in its checkpoint, and a resumed run decides the same."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from psc_eval.checkpoint import load_checkpoint
from psc_eval.training import Optim, TrainConfig, Trainer, TrainMethod
from psc_eval.training.plateau import plateaued


def rule_by_hand(values, window, tol, min_epochs):
    n = len(values)
    w = max(1, math.ceil(window * n))
    if n < max(min_epochs, 2) or w >= n:
        return False
    return min(values[n - w:]) > (1 - tol) * min(values[: n - w])


@pytest.mark.parametrize("values, expect", [
    ([5.0, 4.0, 3.0, 2.0], False),  # still falling by a quarter an epoch
    ([5.0, 4.0, 3.0, 2.99], True),  # the last quarter (1 epoch) gained 0.3% < 1%
    ([5.0, 4.0, 3.0, 3.1, 3.05, 3.02, 3.01, 3.0], True),  # no new best in the last 2
    ([5.0, 4.0, 3.0, 3.1, 3.05, 3.02, 3.01, 2.9], False),  # 3.3% better at the end
    ([1.0], False), ([], False), ([3.0, float("nan"), 2.0, 2.0], False),
])
def test_rule_matches_its_statement(values, expect):
    assert plateaued(values) is expect
    if all(math.isfinite(v) for v in values):
        assert rule_by_hand(values, 0.25, 0.01, 0) is expect


def test_min_epochs_and_window():
    flat = [1.0] * 6
    assert plateaued(flat) and not plateaued(flat, min_epochs=7)
    assert plateaued(flat, min_epochs=6)
    assert not plateaued([4.0, 3.0, 2.9], window=0.5)  # last 2 gained 33% over 4.0
    assert plateaued([2.0, 3.0, 2.99], window=0.5)


class _Fit(TrainMethod):
    """y = w x on noiseless data: the validation loss falls geometrically, then flattens."""

    kind = "fit"
    plateau_metric = "mse"

    def __init__(self):
        self.model = nn.Linear(1, 1, bias=False)

    def configure_optimizers(self, total_steps):
        return [Optim("sgd", torch.optim.SGD(self.model.parameters(), lr=0.05))]

    def training_step(self, model, batch, *, opt_index, generator):
        x = batch["x"]
        loss = ((model(x) - 3.0 * x) ** 2).mean() + 0.1  # a floor: the loss flattens
        return {"mse": loss, "total": loss}


class _DS(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return {"x": torch.tensor([float(i % 4) / 4 + 0.5]), "ids": str(i), "rgb": 1}


def _collate(items):
    return {"x": torch.stack([it["x"] for it in items]), "ids": [it["ids"] for it in items],
            "rgb": 1}


def _trainer(tmp_path, epochs, **kw):
    torch.manual_seed(0)
    cfg = TrainConfig(epochs=epochs, batch_size=4, device="cpu", until_plateau=True, **kw)
    return Trainer(_Fit(), cfg, _DS(), _DS(), tmp_path, config={}, collate_fn=_collate,
                   progress=False)


def test_loop_stops_at_the_plateau_and_records_the_run(tmp_path):
    res = _trainer(tmp_path / "a", epochs=200, min_epochs=4).fit()
    series = [r["val_mse"] for r in res.history]
    n = len(series)
    assert 4 <= n < 200, n
    assert plateaued(series, min_epochs=4) and not any(
        plateaued(series[:k], min_epochs=4) for k in range(1, n))
    run = load_checkpoint(res.last)["run"]
    assert run["converged"] is True and run["epochs"] == n and run["steps"] == 2 * n
    assert run["images_seen"] == 8 * n and run["parameters"] == 1
    assert run["plateau"]["metric"] == "val_mse" and run["plateau"]["first_epoch"] == 1
    assert [r["images_seen"] for r in res.history] == [8 * (i + 1) for i in range(n)]

    capped = _trainer(tmp_path / "b", epochs=3).fit()
    run = load_checkpoint(capped.last)["run"]
    assert len(capped.history) == 3 and run["converged"] is False

    # killed after epoch 3, resumed: the same decision at the same epoch
    _trainer(tmp_path / "c", epochs=200, min_epochs=4).fit(stop_after_steps=6)
    again = _trainer(tmp_path / "c", epochs=200, min_epochs=4).fit(resume="last")
    assert [r["val_mse"] for r in again.history] == series


@pytest.mark.parametrize("name", ["ours", "royer2017", "cao2017", "deshpande2017",
                                  "iizuka2016", "larsson2016", "zhang2016"])
def test_every_trainable_names_a_loss_it_logs(name, tmp_path, monkeypatch):
    """The plateau rule of each method reads a validation value the method logs (two tiny
    epochs through the one training entry); Deshpande's reads its MDN epochs only."""
    from psc_eval.training import TRAINABLE, train

    monkeypatch.setenv("PSC_HOME", str(tmp_path))
    cls = TRAINABLE.get(name)
    res = train(name, "toy", "toy", out_dir=tmp_path / "run", epochs=2, n_train=4, n_val=2,
                batch_size=2, size=32, device="cpu", progress=False, overrides=cls.smoke)
    key = f"val_{cls.plateau_metric}"
    assert all(key in row for row in res.history if name != "deshpande2017")
    run = load_checkpoint(res.last)["run"]
    assert run["plateau"]["metric"] == key
    series = [r[key] for r in res.history if key in r]
    if name == "deshpande2017":  # epoch 1 is the VAE stage (smoke: vae_epochs = 1)
        series = [r[key] for r in res.history if r["epoch"] > 1]
    assert len(series) >= 1 and all(math.isfinite(v) for v in series)
    # the record says from which epoch the rule reads (the learning-curve figure's start)
    assert run["plateau"]["first_epoch"] == (2 if name == "deshpande2017" else 1)
