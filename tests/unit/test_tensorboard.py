"""Optional TensorBoard logging beside log.csv: every train_* / val_* value of each epoch,
against images seen; without the extra installed, one line naming it."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from torch import nn

from psc_eval.errors import ConfigError
from psc_eval.training import Optim, TrainConfig, Trainer, TrainMethod


class _Fit(TrainMethod):
    kind = "fit"

    def __init__(self):
        self.model = nn.Linear(1, 1, bias=False)

    def configure_optimizers(self, total_steps):
        return [Optim("sgd", torch.optim.SGD(self.model.parameters(), lr=0.1))]

    def training_step(self, model, batch, *, opt_index, generator):
        loss = ((model(batch["x"]) - 2.0 * batch["x"]) ** 2).mean()
        return {"mse": loss, "total": loss}


def _data(n=4):
    return [{"x": torch.tensor([1.0 + i]), "ids": str(i), "rgb": 1} for i in range(n)]


def _collate(items):
    return {"x": torch.stack([i["x"] for i in items]), "ids": [i["ids"] for i in items],
            "rgb": 1}


def _trainer(out, **kw):
    return Trainer(_Fit(), TrainConfig(epochs=2, batch_size=2, device="cpu"), _data(),
                   _data(), out, config={}, collate_fn=_collate, progress=False, **kw)


def test_scalars_per_epoch_against_images_seen(tmp_path, monkeypatch):
    calls, dirs = [], []

    class Writer:
        def __init__(self, log_dir):
            dirs.append(log_dir)

        def add_scalar(self, tag, value, step):
            calls.append((tag, value, step))

        def flush(self):
            pass

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard",
                        types.SimpleNamespace(SummaryWriter=Writer))
    res = _trainer(tmp_path, tensorboard=True).fit()
    assert dirs == [str(tmp_path / "tensorboard")]
    want = [(f"{k.split('_', 1)[0]}/{k.split('_', 1)[1]}", row[k], row["images_seen"])
            for row in res.history for k in row if k.startswith(("train_", "val_"))]
    assert sorted(calls) == sorted(want) and {s for _, _, s in calls} == {4, 8}


def test_without_the_extra_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ConfigError, match=r"TensorBoard is not installed, in --tensorboard, "
                                          r"pip install 'psc-eval\[tensorboard\]'"):
        _trainer(tmp_path, tensorboard=True)
    assert _trainer(tmp_path / "plain").fit().complete  # off by default: nothing needed
