"""``psc-eval train`` / ``psc-eval sample`` and the trained colorizer wrappers, end to end."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from fixtures_data import tiny_toml
from PIL import Image

from psc_eval.colorizer import get_colorizer
from psc_eval.errors import PscError, WeightsError

TINY_TOML = tiny_toml(epochs=1, batch_size=4, n_train=8, n_val=4)


def run(*args, home):
    env = {**os.environ, "PSC_HOME": str(home), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "psc_eval.cli", *args], check=False,
                          capture_output=True,
                          text=True, env=env)


def one_line_error(r) -> str:
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("psc-eval: error: "), r.stderr
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """PSC_HOME with a tiny ``ours`` trained for one epoch through the CLI."""
    home = tmp_path_factory.mktemp("home")
    cfg = home / "tiny.toml"
    cfg.write_text(TINY_TOML)
    # a TOML path is not the protocol's config: its run goes to a folder of its own unless
    # --out names the one evaluation reads
    out = home / "models" / "toy" / "ours"
    r = run("train", "--colorizer", "ours", "--dataset", "toy", "--config", str(cfg),
            "--out", str(out), home=home)
    assert r.returncode == 0, r.stderr
    assert "trained ours on toy" in r.stdout
    return home, cfg


def test_train_writes_checkpoints_and_refuses_to_overwrite(trained):
    home, cfg = trained
    run_dir = home / "models" / "toy" / "ours"
    assert {p.name for p in run_dir.iterdir()} >= {"epoch-0001.pt", "last.pt", "log.csv"}
    before = (run_dir / "last.pt").read_bytes()
    r = run("train", "--colorizer", "ours", "--config", str(cfg), "--out", str(run_dir),
            home=home)
    assert "checkpoints already exist" in one_line_error(r)
    assert (run_dir / "last.pt").read_bytes() == before


def test_config_errors_exit_2_naming_key_and_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY_TOML.replace("n_mix = 2", "n_mixtures = 2"))
    line = one_line_error(run("train", "--colorizer", "ours", "--config", str(bad), home=tmp_path))
    assert "'model.n_mixtures'" in line and str(bad) in line
    # wrong types and a changed config on resume: tests/unit (same ConfigError path)
    assert not (tmp_path / "models").exists()


def test_colorizer_wrapper_contract(trained, monkeypatch):
    home, _ = trained
    monkeypatch.setenv("PSC_HOME", str(home))
    col = get_colorizer("ours", dataset="toy")
    assert col.stochastic and len(col.weights_sha256) == 64 and col.config["model"]["n_mix"] == 2
    L = torch.linspace(0, 100, 2 * 20 * 20).view(2, 1, 20, 20)  # not the model's 16 px
    ab = col.colorize(L, 3, generator=torch.Generator().manual_seed(0))
    assert ab.shape == (2, 3, 2, 20, 20) and torch.isfinite(ab).all()
    assert ab.min() >= -127 and ab.max() <= 128
    assert (ab[:, 0] - ab[:, 1]).abs().max() > 1.0  # diverse samples
    again = col.colorize(L, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(ab, again)
    other = col.colorize(L, 3, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(ab, other)
    with pytest.raises(PscError, match=r"\[0, 100\]"):
        col.colorize(L * 2.55)
    emb = get_colorizer("psc-embedding", dataset="toy")  # reads the 'ours' checkpoint
    assert not emb.stochastic and emb.weights_sha256 == col.weights_sha256
    e = emb.colorize(L)
    assert e.shape == (2, 1, 2, 20, 20) and torch.equal(e, emb.colorize(L))
    with pytest.raises(PscError, match="deterministic"):
        emb.colorize(L, 2)
    monkeypatch.setenv("PSC_SHIPPED", "0")  # psc-film not trained here, none shipped
    with pytest.raises(WeightsError, match="run: psc-eval train --colorizer psc-film "
                                           "--dataset toy --config toy"):
        get_colorizer("psc-film", dataset="toy")
    ours_ck = home / "models" / "toy" / "ours" / "last.pt"
    with pytest.raises(WeightsError, match="not 'psc-purple'"):
        get_colorizer("psc-purple", dataset="toy", weights=str(ours_ck))


def test_sample_writes_png_grid(trained, tmp_path):
    home, _ = trained
    r = run("sample", "--colorizer", "ours", "--dataset", "toy", "--n", "2", "--limit", "3",
            "--size", "32", "--out", str(tmp_path / "out"), home=home)
    assert r.returncode == 0, r.stderr
    png = tmp_path / "out" / "ours-toy-grid.png"
    with Image.open(png) as im:
        # gray | 2 samples | gt, tiles upscaled 4x to 128 px, a 16 px title strip on top
        assert im.format == "PNG" and im.size == ((2 + 2) * 128, 16 + 3 * 128)
