"""A researcher's own CI regression (issue 25): a module colorizer from the working folder
-> ``regress --update`` -> ``regress`` passes -> its chroma is edited -> ``regress`` exits
1 naming the metrics that moved, and the JUnit file has failing cases for them; a
truncated expected file is one line, exit 2. The README's pytest example and the
commands of docs/ci.md are run as written (extracted between their markers)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def block(path: Path, marker: str, lang: str) -> str:
    m = re.search(rf"<!-- {marker} -->\s*```{lang}\n(.*?)```\s*<!-- end \w+ -->",
                  path.read_text(), re.DOTALL)
    assert m, f"{path.name} lost its block {marker!r}"
    return m.group(1)


def sepia() -> str:
    return block(ROOT / "README.md", "example: mycolor.py", "python")


def env_for(cwd: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PSC_HOME=str(cwd / "home"), OMP_NUM_THREADS="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    return env


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "psc_eval.cli", *args], cwd=cwd,
                          env=env_for(cwd), capture_output=True, text=True, timeout=600,
                          check=False)


@pytest.mark.slow
def test_own_colorizer_update_pass_drift_junit_and_truncated_file(tmp_path):
    (tmp_path / "mycolor.py").write_text(sepia())
    exp = "expected.json"
    r = cli(tmp_path, "regress", "--update", "--colorizer", "mycolor:Sepia", "--limit", "16",
            "--expected", exp)
    assert r.returncode == 0, r.stderr
    spec = json.loads((tmp_path / exp).read_text())
    assert set(spec["rows"]) == {"gray", "sepia", "gt"}
    assert spec["sources"]["sepia"]["colorizer"] == "mycolor:Sepia"
    for k in ("judge_weights_sha256", "images", "metric_code", "psc_eval_version"):
        assert spec[k], k
    assert all(t["why"] and 0 < t["abs"] < 1 for t in spec["tolerance"].values())

    r = cli(tmp_path, "regress", "--expected", exp, "--junit-xml", "ok.xml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "MOVED" not in r.stdout
    ok = ET.parse(tmp_path / "ok.xml").getroot().find("testsuite")
    assert ok.get("failures") == "0" and int(ok.get("tests")) == 3 * len(spec["rows"]["sepia"])

    # what an edit of one's own method looks like: other chroma
    src = (tmp_path / "mycolor.py").read_text()
    (tmp_path / "mycolor.py").write_text(src.replace("8.0)", "20.0)"))
    r = cli(tmp_path, "regress", "--expected", exp, "--junit-xml", "drift.xml",
            "--summary", "drift.md")
    assert r.returncode == 1, r.stdout + r.stderr
    last = r.stdout.strip().splitlines()[-1]
    moved = re.findall(r"(\w+)\.(\w+)", last.split("MOVED:")[1])
    assert moved and {row for row, _ in moved} == {"sepia"}
    assert "sepia's code" in r.stdout  # named as a change of the method, not of psc-eval
    cases = ET.parse(tmp_path / "drift.xml").getroot().iter("testcase")
    failed = {(c.get("classname"), c.get("name")) for c in cases if c.find("failure") is not None}
    assert failed == {(f"regress.{row}", m) for row, m in moved}
    assert "**failed**" in (tmp_path / "drift.md").read_text()

    (tmp_path / "short.json").write_text((tmp_path / exp).read_text()[:200])
    r = cli(tmp_path, "regress", "--expected", "short.json")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "not valid JSON" in lines[0], r.stderr


@pytest.mark.slow
def test_readme_pytest_example_passes_then_fails_readably(tmp_path):
    (tmp_path / "mycolor.py").write_text(sepia())
    (tmp_path / "test_sepia_metrics.py").write_text(
        block(ROOT / "README.md", "example: test_sepia_metrics.py", "python"))

    def pytest_run():
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "--rootdir", str(tmp_path), "test_sepia_metrics.py"],
                              cwd=tmp_path, env={**env_for(tmp_path), "PYTHONPATH": str(tmp_path)},
                              capture_output=True, text=True, timeout=600, check=False)

    first = pytest_run()  # writes expected-sepia.json
    assert first.returncode == 0, first.stdout + first.stderr
    assert (tmp_path / "expected-sepia.json").is_file()
    again = pytest_run()
    assert again.returncode == 0, again.stdout + again.stderr
    src = (tmp_path / "mycolor.py").read_text()
    (tmp_path / "mycolor.py").write_text(src.replace("0.3 * (L", "0.6 * (L"))
    failed = pytest_run()
    assert failed.returncode == 1
    assert "metrics moved beyond their tolerance" in failed.stdout
    assert "sepia.psnr" in failed.stdout and "sepia's code changed" in failed.stdout


@pytest.mark.slow
def test_docs_ci_recipe_from_scratch(tmp_path):
    """docs/ci.md's commands, as written, in an empty folder holding only mycolor.py."""
    doc = ROOT / "docs" / "ci.md"
    (tmp_path / "mycolor.py").write_text(sepia())
    for marker in ("recipe: update", "recipe: check"):
        script = block(doc, marker, "bash")
        r = subprocess.run(["bash", "-euc", script], cwd=tmp_path, env=env_for(tmp_path),
                           capture_output=True, text=True, timeout=600, check=False)
        assert r.returncode == 0, f"{marker}: {r.stdout}\n{r.stderr}"
    assert (tmp_path / "ci" / "expected-sepia.json").is_file()
    root = ET.parse(tmp_path / "ci" / "regress.xml").getroot()
    assert root.find("testsuite").get("failures") == "0"
    assert "**passed**" in (tmp_path / "ci" / "regress.md").read_text()
