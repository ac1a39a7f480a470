"""SIGKILL in the middle of an epoch, rerun, same final weights as an uninterrupted run.

Both ``psc-eval train`` (the paper's model, resumed with ``--resume``) and ``psc-eval
train-judge`` (resumes by default) checkpoint every step here; the child process is
killed with SIGKILL as soon as a checkpoint from the middle of epoch 1 exists, so no
handler runs and nothing is flushed. The weights are compared tensor by tensor (sha256
of the tensors; the files also hold timings).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from fixtures_data import tiny_toml

TINY_TOML = tiny_toml(generator_dropout=0.5, epochs=2, batch_size=2, n_train=120, n_val=4, polyak=0.9)


def tensors_sha256(state: dict) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].contiguous().numpy().tobytes())
    return h.hexdigest()


def cli(*args, home: Path) -> list[str]:
    return [sys.executable, "-m", "psc_eval.cli", *args]


def env(home: Path) -> dict[str, str]:
    return {**os.environ, "PSC_HOME": str(home), "OMP_NUM_THREADS": "1"}


def run_ok(args, home):
    r = subprocess.run(cli(*args, home=home), env=env(home), capture_output=True, text=True,
                       check=False, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return r


def kill_mid_epoch(args, home, last: Path) -> dict:
    """Start the command, SIGKILL it once last.pt is from the middle of epoch 1."""
    p = subprocess.Popen(cli(*args, home=home), env=env(home), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    try:
        while time.time() < deadline and p.poll() is None:
            if last.is_file():
                try:
                    ck = torch.load(last, map_location="cpu", weights_only=True)
                except Exception:  # noqa: BLE001 - replaced while reading: try again
                    ck = None
                if ck is not None and ck["epoch"] == 0 and ck["running"]["pos"] >= 2:
                    p.send_signal(signal.SIGKILL)
                    break
            time.sleep(0.02)
    finally:
        p.wait(timeout=60)
    assert p.returncode == -signal.SIGKILL, f"finished before the kill: {p.stderr.read()}"
    ck = torch.load(last, map_location="cpu", weights_only=True)
    assert ck["epoch"] == 0 and ck["running"]["pos"] >= 2  # killed inside epoch 1
    return ck


@pytest.mark.slow
def test_train_killed_mid_epoch_resumes_to_the_same_weights(tmp_path):
    home = tmp_path / "home"
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY_TOML)
    base = ["train", "--colorizer", "ours", "--dataset", "toy", "--config", str(cfg),
            "--checkpoint-every", "1", "--device", "cpu"]
    run_ok([*base, "--out", str(tmp_path / "full")], home)
    killed = tmp_path / "killed"
    kill_mid_epoch([*base, "--out", str(killed)], home, killed / "last.pt")
    run_ok([*base, "--out", str(killed), "--resume"], home)
    a = torch.load(tmp_path / "full" / "last.pt", map_location="cpu", weights_only=True)
    b = torch.load(killed / "last.pt", map_location="cpu", weights_only=True)
    assert a["step"] == b["step"] == 120 and b["epoch"] == 2
    for k in ("model", "ema"):
        assert tensors_sha256(a[k]) == tensors_sha256(b[k]), k
    assert [r["train_total"] for r in a["history"]] == [r["train_total"] for r in b["history"]]


@pytest.mark.slow
def test_train_judge_killed_mid_epoch_resumes_to_the_same_weights(tmp_path):
    home = tmp_path / "home"
    base = ["train-judge", "--dataset", "toy", "--arch", "deeplabv3plus-resnet18", "--size", "32",
            "--n-train", "24", "--n-val", "8", "--epochs", "2", "--batch-size", "2", "--checkpoint-every", "1",
            "--device", "cpu", "--threads", "1"]
    run_ok([*base, "--out", str(tmp_path / "full.pt")], home)
    kill_mid_epoch([*base, "--out", str(tmp_path / "killed.pt")], home,
                   tmp_path / "killed.train" / "last.pt")
    assert not (tmp_path / "killed.pt").exists()
    run_ok([*base, "--out", str(tmp_path / "killed.pt")], home)  # resumes by default
    a = torch.load(tmp_path / "full.pt", map_location="cpu", weights_only=True)
    b = torch.load(tmp_path / "killed.pt", map_location="cpu", weights_only=True)
    assert tensors_sha256(a["model"]) == tensors_sha256(b["model"])
    assert a["val"] == b["val"]
