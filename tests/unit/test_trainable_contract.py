"""The contract of every trainable method of the records (psc_eval.methods), as
test_colorizer_contract.py is for every colorizer: built by the one training entry from
its toy config, it trains through the core loop, writes a checkpoint and log, and a run
killed mid-epoch and resumed reaches the very weights, history and optimiser state of
an uninterrupted run. A new method gets these checks by being registered."""

from __future__ import annotations

import pytest
import torch

from psc_eval.checkpoint import load_checkpoint
from psc_eval.training import TRAINABLE, train

TINY = {"n_train": 4, "n_val": 2, "batch_size": 2, "size": 32, "device": "cpu",
        "progress": False}


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TRAINABLE))
def test_trainable_trains_checkpoints_and_resumes_exactly(name, tmp_path, monkeypatch):
    monkeypatch.setenv("PSC_HOME", str(tmp_path / "home"))
    smoke = TRAINABLE.get(name).smoke
    full = train(name, "toy", "toy", out_dir=tmp_path / "full", epochs=2, overrides=smoke,
                 **TINY)
    assert full.complete and len(full.history) == 2
    assert (tmp_path / "full" / "log.csv").is_file()
    row = full.history[-1]
    assert row["step"] == 4 and any(k.startswith("val_") for k in row), row
    assert all(torch.isfinite(torch.tensor(v)) for k, v in row.items()
               if k.startswith(("train_", "val_")))

    # killed in the middle of epoch 2 (after step 3 of 4), then resumed from last.pt
    part = train(name, "toy", "toy", out_dir=tmp_path / "half", epochs=2, overrides=smoke,
                 stop_after_steps=3, **TINY)
    assert not part.complete and load_checkpoint(part.last)["step"] == 3
    more = train(name, "toy", "toy", out_dir=tmp_path / "half", epochs=2, resume="last",
                 overrides=smoke, **TINY)
    a, b = load_checkpoint(full.last), load_checkpoint(more.last)
    assert a["kind"] == b["kind"] and a["variant"] == name
    for key in ("model", "ema", "optimizers", "schedulers"):
        assert _equal(a.get(key), b.get(key)), f"{name}: {key} differs after resume"
    strip = [{k: v for k, v in r.items() if k != "epoch_s"} for r in a["history"]]
    assert strip == [{k: v for k, v in r.items() if k != "epoch_s"} for r in b["history"]]
