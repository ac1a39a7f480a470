"""Randomly corrupted checkpoints fed to every command that reads one: one line, exit 2.

Corruptions (drawn from a seeded RNG): bit flips in the file, a dropped key, a tensor of
the wrong shape, of the wrong dtype, holding NaN or inf, a bare tensor or a list instead
of the checkpoint dict, a non-dict config. Every command must answer each with the
one-line ``psc-eval: error: ...`` and exit status 2: never a traceback, never a result.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from fixtures_data import tiny_toml

from psc_eval.cli import main

STANDINS = Path(__file__).resolve().parents[1] / "unit"
JUDGE = "deeplabv3plus-resnet18"
TINY_TOML = tiny_toml(epochs=1, batch_size=4, n_train=4, n_val=2)
KINDS = ("bitflip", "drop", "shape", "dtype", "nan", "inf", "bare", "list", "config")


def corrupt(src: Path, dst: Path, kind: str, rng: random.Random, state_keys: tuple[str, ...]):
    if kind == "bitflip":
        data = bytearray(src.read_bytes())
        for _ in range(8):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        dst.write_bytes(bytes(data))
        return
    ck = torch.load(src, map_location="cpu", weights_only=True)
    if kind == "bare":
        obj = torch.zeros(3)
    elif kind == "list":
        obj = [1, 2, 3]
    else:
        obj = dict(ck)
        if kind == "drop":
            del obj[rng.choice([k for k in ("config", "num_classes", "kind", *state_keys)
                                if k in obj])]
        elif kind == "config":
            obj["config"] = "not a dict"
        else:
            sk = rng.choice([k for k in state_keys if k in obj])
            sd = dict(obj[sk])
            name = rng.choice([k for k, v in sd.items() if v.is_floating_point() and v.numel()])
            t = sd[name].clone()
            if kind == "shape":
                t = torch.zeros(*[s + 1 for s in t.shape])
            elif kind == "dtype":
                t = t.to(torch.int64)
            else:
                t.view(-1)[rng.randrange(t.numel())] = float("nan" if kind == "nan" else "inf")
            sd[name] = t
            obj[sk] = sd
    torch.save(obj, dst)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A tiny trained ``ours`` checkpoint and a (random) judge checkpoint."""
    import os

    home = tmp_path_factory.mktemp("home")
    old = os.environ.get("PSC_HOME")
    os.environ["PSC_HOME"] = str(home)
    try:
        from psc_eval.checkpoint import save_checkpoint
        from psc_eval.judge import load_segmenter
        from psc_eval.training import train

        cfg = home / "tiny.toml"
        cfg.write_text(TINY_TOML)
        res = train("ours", "toy", str(cfg), out_dir=home / "ours", progress=False,
                              device="cpu")
        seg = load_segmenter(JUDGE, None, num_classes=10)
        judge = home / "judge.pt"
        save_checkpoint(judge, {"kind": "judge", "arch": JUDGE, "num_classes": 10,
                                "config": {}, "model": seg.module.state_dict()})
    finally:
        if old is None:
            os.environ.pop("PSC_HOME", None)
        else:
            os.environ["PSC_HOME"] = old
    return home, cfg, res.last, judge


def one_line_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert e.value.code == 2, (argv, err[-3000:])
    assert len(lines) == 1 and lines[0].startswith("psc-eval: error: "), (argv, err[-3000:])
    assert "Traceback" not in err
    return lines[0]


COMMANDS = ("miou-colorizer", "sample", "train-resume", "study-create", "miou-judge",
            "train-judge-resume")


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_refuses_corrupt_checkpoints_in_one_line(command, made, tmp_path,
                                                               capsys, monkeypatch):
    _, cfg, ours, judge = made
    monkeypatch.setenv("PSC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.syspath_prepend(str(STANDINS))
    rng = random.Random(f"corrupt:{command}")
    is_judge = command.startswith(("miou-judge", "train-judge"))
    src = judge if is_judge else ours
    state_keys = ("model",) if is_judge else ("ema", "model")
    common = ["--dataset", "toy", "--size", "16"]
    for i, kind in enumerate(KINDS):
        bad = tmp_path / f"bad-{i}.pt"
        corrupt(src, bad, kind, rng, state_keys)
        if command == "miou-colorizer":
            argv = ["miou", "--colorizer", "ours", "--colorizer-weights", str(bad),
                    "--segmenter", "runner_standins:ChromaJudge", "--limit", "2", "--quiet",
                    "--no-cache", "--out", str(tmp_path / "runs"), *common]
        elif command == "sample":
            argv = ["sample", "--colorizer", "ours", "--weights", str(bad), "--limit", "2",
                    "--out", str(tmp_path / "samples"), *common]
        elif command == "train-resume":
            run = tmp_path / f"run-{i}"
            run.mkdir()
            bad.rename(run / "last.pt")
            argv = ["train", "--colorizer", "ours", "--config", str(cfg), "--out", str(run),
                    "--resume", "--device", "cpu"]
        elif command == "study-create":
            argv = ["study", "create", "--methods", "gray,ours", "--images", "2",
                    "--weights", f"ours={bad}", "--out", str(tmp_path / f"study-{i}"), *common]
        elif command == "miou-judge":
            argv = ["miou", "--colorizer", "gray", "--segmenter", JUDGE, "--weights", str(bad),
                    "--limit", "2", "--quiet", "--no-cache", "--out", str(tmp_path / "runs"),
                    *common]
        else:
            out = tmp_path / f"judge-{i}.pt"
            run = tmp_path / f"judge-{i}.train"
            run.mkdir()
            bad.rename(run / "last.pt")
            argv = ["train-judge", "--arch", JUDGE, "--dataset", "toy", "--size", "32",
                    "--n-train", "4", "--n-val", "2", "--epochs", "1", "--out", str(out),
                    "--device", "cpu"]
        line = one_line_exit_2(argv, capsys)
        assert kind == "bitflip" or "checkpoint" in line or "weights" in line, (kind, line)
    assert not list((tmp_path / "runs").rglob("*.json"))
