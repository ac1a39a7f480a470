"""One's own row in Table 3 beside the shipped methods (issue 25): the README's three
commands (with ``--limit 16`` added to keep the test short), a module colorizer whose
class declares a label and a group, two ``--runs`` folders; ``sample`` names the row as
``miou`` does; a ``--predictions NAME=DIR`` row is named NAME."""

from __future__ import annotations

import csv
import shlex
from pathlib import Path

import pytest
from cli_helpers import readme_block, run_cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_readme_own_row_commands_give_a_labelled_row_in_its_group(tmp_path):
    (tmp_path / "mycolor.py").write_text(readme_block("mycolor.py"))
    for line in readme_block("own-row.sh").strip().splitlines():
        args = shlex.split(line)
        assert args[0] == "psc-eval"
        if args[1] == "miou":
            args += ["--limit", "16", "--quiet"]
        run_cli(tmp_path, *args[1:])
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
    run_cli(tmp_path, "report", "--dataset", "toy", "--runs", "out/demo", "--runs", "mine",
        "--out", "t2", "--label", "sepia=Mine", "--group", "sepia=diverse")
    with open(tmp_path / "t2" / "table3.csv") as f:
        order = [r["method"] for r in csv.DictReader(f)]
    assert "Mine" in order and order.index("Mine") > order.index("Gray input")
    r = run_cli(tmp_path, "sample", "--colorizer", "mycolor:Sepia", "--limit", "2", "--out", "s")
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
    r = run_cli(tmp_path, "psnr", "--predictions", "theirs=preds", "--limit", "4", "--out", "o")
    assert "theirs" in r.stdout
    assert list((tmp_path / "o").rglob("theirs/*.json"))
