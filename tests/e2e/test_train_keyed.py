"""A short training never clobbers the benchmark (issue 25): ``train --colorizer ours
--epochs 1 --n-train 160`` lands in a folder keyed on its configuration, so ``--colorizer
ours`` (and reproduce's train step) still use the shipped model; ``miou`` prints which
checkpoint each row scored and the run JSON records it (path, shipped or trained, epoch);
the same configuration resumes into the same folder."""

from __future__ import annotations

import json

import pytest
from cli_helpers import run_cli

from psc_eval.training.entry import resolve_config, run_folder


def test_run_folders_are_keyed_on_the_configuration(tmp_path, monkeypatch):
    monkeypatch.setenv("PSC_HOME", str(tmp_path))
    home = tmp_path / "models" / "toy" / "ours"
    _, proto = resolve_config("ours", "toy")
    assert run_folder("ours", "toy", "toy", proto) == (home, True)
    _, dev = resolve_config("ours", "toy", {"train.device": "cpu", "train.workers": 2})
    assert run_folder("ours", "toy", "toy", dev) == (home, True)  # moves no number
    _, short = resolve_config("ours", "toy", {"train.epochs": 1, "train.n_train": 160})
    folder, protocol = run_folder("ours", "toy", "toy", short)
    assert not protocol and folder.parent == home / "runs" and folder.name.startswith("toy-")
    assert run_folder("ours", "toy", "toy", short)[0] == folder  # same config, same folder
    _, other = resolve_config("ours", "toy", {"train.epochs": 1, "train.n_train": 161})
    assert run_folder("ours", "toy", "toy", other)[0] not in (folder, home)


@pytest.mark.slow
def test_a_short_training_leaves_the_shipped_model_in_use(tmp_path, monkeypatch):
    r = run_cli(tmp_path, "train", "--colorizer", "ours", "--dataset", "toy", "--epochs", "1",
            "--n-train", "160", "--n-val", "16", "--device", "cpu")
    assert "not the protocol's configuration" in r.stdout
    home = tmp_path / "home" / "models" / "toy" / "ours"
    assert not (home / "last.pt").exists()
    short = next((home / "runs").glob("toy-*/last.pt"))

    r = run_cli(tmp_path, "miou", "--colorizer", "ours", "--limit", "8", "--quiet", "--out", "o")
    line = next(x for x in r.stdout.splitlines() if x.startswith("ours: checkpoint"))
    assert "colorizer-ours.pt (shipped, epoch" in line, line
    res = json.loads(next((tmp_path / "o").rglob("ours/*.json")).read_text())
    ck = res["provenance"]["colorizer_checkpoint"]
    assert ck["source"] == "shipped" and ck["path"].endswith("colorizer-ours.pt")

    r = run_cli(tmp_path, "miou", "--colorizer", "ours", "--limit", "8", "--quiet", "--out", "o",
            "--colorizer-weights", str(short))
    assert f"ours: checkpoint {short} (trained under $PSC_HOME, epoch 1" in r.stdout

    # reproduce's train step: the protocol folder is empty, so the shipped model is used
    from psc_eval.experiments.reproduce import train_outcome

    monkeypatch.setenv("PSC_HOME", str(tmp_path / "home"))
    assert train_outcome("ours", "toy", dry_run=True) == "shipped"
