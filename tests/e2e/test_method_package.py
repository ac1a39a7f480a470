"""A complete method as a package outside the repository (the README's "Add a method"
files, extracted as written): installed with pip into a folder of its own, registered
through the psc_eval.methods entry point, it is listed, trains through ``psc-eval train``,
is scored by ``psc-eval miou`` and appears under its label in ``psc-eval report``'s
Table 3, with no edit to psc-eval."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import readme_block

README = Path(__file__).resolve().parents[2] / "README.md"
FILES = ("tinycolor/pyproject.toml", "tinycolor/tinycolor/toy.toml",
         "tinycolor/tinycolor/__init__.py")


def readme_files() -> dict[str, str]:
    return {name: readme_block(name) for name in FILES}


@pytest.mark.slow
def test_a_method_package_trains_scores_and_gets_its_table3_row(tmp_path):
    for name, body in readme_files().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    site = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                          "--no-build-isolation", "--no-index", "--target", str(site),
                          str(tmp_path / "tinycolor")], check=False, capture_output=True,
                         text=True)
    assert pip.returncode == 0, pip.stderr
    assert list(site.glob("tinycolor-*.dist-info/entry_points.txt"))

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(site), PSC_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1")

    def run(*args: str) -> subprocess.CompletedProcess:
        r = subprocess.run([sys.executable, "-m", "psc_eval.cli", *args], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=600, check=False)
        assert r.returncode == 0, r.stderr
        return r

    assert re.search(r"^\s+tinycolor\s+example: a three-layer CNN", run("ls").stdout,
                     re.MULTILINE)
    assert "tinycolor" in run("train", "--help").stdout
    r = run("train", "--colorizer", "tinycolor", "--dataset", "toy", "--config", "toy",
            "--epochs", "1", "--n-train", "64", "--n-val", "16")
    # a shortened run lands in a folder keyed on its config, never where the protocol's is
    assert not (tmp_path / "home" / "models" / "toy" / "tinycolor" / "last.pt").exists()
    ck = next((tmp_path / "home" / "models" / "toy" / "tinycolor" / "runs").glob("toy-*"))
    assert str(ck / "last.pt") in r.stdout
    r = run("miou", "--colorizer", "tinycolor", "--dataset", "toy", "--limit", "24",
            "--out", "reports", "--colorizer-weights", str(ck / "last.pt"))
    runs = sorted((tmp_path / "reports").rglob("tinycolor/*.json"))
    assert len(runs) == 1
    miou = json.loads(runs[0].read_text())["metrics"]["miou"]
    assert 0.0 < miou < 1.0

    run("report", "--dataset", "toy", "--runs", "reports", "--out", "rep")
    with open(tmp_path / "rep" / "table3.csv") as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    assert "Tiny CNN (example)" in rows, list(rows)
    assert float(rows["Tiny CNN (example)"]["miou"]) == pytest.approx(miou, abs=1e-12)
    order = list(rows)
    # own rows: after gray and the single-output baselines, before ours and gt
    assert order.index("Tiny CNN (example)") < order.index("Ours (PSC)") < \
        order.index("Ground truth (colour)")
    assert order.index("Iizuka et al. (2016)") < order.index("Tiny CNN (example)")
