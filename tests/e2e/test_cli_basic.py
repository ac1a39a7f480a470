"""The CLI's basic commands as a user runs them."""

from __future__ import annotations

import subprocess
import sys

from PIL import Image

import psc_eval


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "psc_eval.cli", *args], capture_output=True, check=False,
                          text=True, env=env)


def test_version():
    r = run("--version")
    assert r.returncode == 0 and psc_eval.__version__ in r.stdout


def test_ls_lists_all_three_registries():
    r = run("ls")
    assert r.returncode == 0, r.stderr
    for word in ("colorizers:", "segmenters:", "datasets:", "gray", "gt", "ours", "toy", "voc",
                 "cocostuff", "folder"):
        assert word in r.stdout


def test_preview_writes_a_png(tmp_path):
    out = tmp_path / "sub" / "preview.png"
    r = run("data", "preview", "--dataset", "toy", "--out", str(out), "--n", "3")
    assert r.returncode == 0, r.stderr
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 300


def test_unknown_dataset_is_one_line_exit_2(tmp_path):
    r = run("data", "preview", "--dataset", "imagenet", "--out", str(tmp_path / "x.png"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("psc-eval: error: unknown dataset 'imagenet'")
    assert "Traceback" not in r.stderr


def test_click_usage_errors_keep_clicks_format():
    r = run("data", "preview")
    assert r.returncode == 2 and "Missing option '--out'" in r.stderr
