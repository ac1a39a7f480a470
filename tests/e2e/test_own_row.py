"""One's own row in Table 3 beside the shipped methods (issue 25): the README's three
commands (with ``--limit 16`` added to keep the test short), a module colorizer whose
class declares a label and a group, two ``--runs`` folders; ``sample`` names the row as
``miou`` does; a ``--predictions NAME=DIR`` row is named NAME."""

from __future__ import annotations

import csv
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def example(name: str, lang: str) -> str:
    m = re.search(rf"<!-- example: {re.escape(name)} -->\s*```{lang}\n(.*?)```\s*"
                  r"<!-- end example -->", (ROOT / "README.md").read_text(), re.DOTALL)
    assert m, f"README lost its example {name}"
    return m.group(1)


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PSC_HOME=str(cwd / "home"), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "psc_eval.cli", *args], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stderr
    return r


@pytest.mark.slow
def test_readme_own_row_commands_give_a_labelled_row_in_its_group(tmp_path):
    (tmp_path / "mycolor.py").write_text(example("mycolor.py", "python"))
    for line in example("own-row.sh", "bash").strip().splitlines():
        args = shlex.split(line)
        assert args[0] == "psc-eval"
        if args[1] == "miou":
            args += ["--limit", "16", "--quiet"]
        cli(tmp_path, *args[1:])
    with open(tmp_path / "table" / "table3.csv") as f:
        order = [r["method"] for r in csv.DictReader(f)]
    assert "Sepia tone (example)" in order, order
    # group "single": after gray, before the paper's model and the colour row
    i = order.index("Sepia tone (example)")
    assert order.index("Gray input") < i < order.index("Ours (PSC)") < order.index(
        "Ground truth (colour)")
    md = (tmp_path / "table" / "table3.md").read_text()
    assert "sepia" not in md.split("Run files")[0].replace("Sepia", "")  # only its label

    # the report's options override the class's label; sample calls it by its name
    cli(tmp_path, "report", "--dataset", "toy", "--runs", "out/demo", "--runs", "mine",
        "--out", "t2", "--label", "sepia=Mine", "--group", "sepia=diverse")
    with open(tmp_path / "t2" / "table3.csv") as f:
        order = [r["method"] for r in csv.DictReader(f)]
    assert "Mine" in order and order.index("Mine") > order.index("Gray input")
    r = cli(tmp_path, "sample", "--colorizer", "mycolor:Sepia", "--limit", "2", "--out", "s")
    assert (tmp_path / "s" / "sepia-toy-grid.png").is_file(), r.stdout


@pytest.mark.slow
def test_a_predictions_row_can_be_named(tmp_path):
    from PIL import Image

    from psc_eval.data import get_dataset

    ds = get_dataset("toy", split="val", size=64)
    (tmp_path / "preds").mkdir()
    for i in range(4):
        s = ds[i]
        u8 = (s["rgb"].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(u8).save(tmp_path / "preds" / f"{s['id']}.png")
    r = cli(tmp_path, "psnr", "--predictions", "theirs=preds", "--limit", "4", "--out", "o")
    assert "theirs" in r.stdout
    assert list((tmp_path / "o").rglob("theirs/*.json"))
