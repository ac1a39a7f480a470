"""psc-eval regress: passes on the shipped checkpoints, fails readably on drift, refuses a
bad expected file or a tampered shipped checkpoint in one line."""

from __future__ import annotations

import json
import shutil

import pytest

from psc_eval.cli import main
from psc_eval.experiments.regress import DEFAULT_EXPECTED
from psc_eval.judge.registry import default_segmenter


def run(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    out, err = capsys.readouterr()
    return e.value.code, out, err


@pytest.fixture
def small(tmp_path, monkeypatch, capsys):
    """A copy of the expected file on a smaller subset (gray, ours, gt; 32 images)."""
    monkeypatch.setenv("PSC_HOME", str(tmp_path / "home"))  # nothing trained: shipped only
    spec = json.loads(DEFAULT_EXPECTED.read_text())
    spec["limit"] = 32
    spec["rows"] = {"gray": {}, "ours": {}, "gt": {}}
    path = tmp_path / "expected.json"
    path.write_text(json.dumps(spec))
    rc, out, err = run(["regress", "--expected", str(path), "--update"], capsys)
    assert rc == 0, err
    assert "updated" in out
    return path


@pytest.mark.slow
def test_regress_passes_then_fails_with_a_table_when_a_value_is_edited(small, capsys):
    rc, out, _ = run(["regress", "--expected", str(small)], capsys)
    assert rc == 0 and "metrics within tolerance" in out and "MOVED" not in out
    spec = json.loads(small.read_text())
    spec["rows"]["ours"]["miou"] += 0.01  # what a code change that moves mIoU looks like
    small.write_text(json.dumps(spec))
    rc, out, _ = run(["regress", "--expected", str(small)], capsys)
    assert rc == 1
    moved = [line for line in out.splitlines() if line.rstrip().endswith("MOVED")]
    assert len(moved) == 1 and moved[0].split()[:2] == ["ours", "miou"]
    assert "MOVED: ours.miou" in out.splitlines()[-1]


@pytest.mark.parametrize("edit, expect", [
    (lambda s: s["tolerance"].pop("psnr"), "has metrics without a tolerance (psnr)"),
    (lambda s: s["tolerance"].__setitem__("miou", {"abs": "x"}), "tolerance of 'miou' must be"),
    (lambda s: s.pop("judge"), "expected-metrics file lacks judge"),
    (lambda s: s.__setitem__("dataset", "voc"), f"no shipped {default_segmenter('toy')} judge for voc"),
])
def test_bad_expected_files_are_one_line(edit, expect, tmp_path, capsys):
    spec = json.loads(DEFAULT_EXPECTED.read_text())
    edit(spec)
    path = tmp_path / "expected.json"
    path.write_text(json.dumps(spec))
    rc, _, err = run(["regress", "--expected", str(path)], capsys)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and expect in lines[0], err


def test_a_tampered_shipped_checkpoint_is_refused(tmp_path, monkeypatch, capsys):
    from psc_eval import shipped

    src = shipped.shipped_dir("toy")
    copy = tmp_path / "reports" / "toy" / "checkpoints"
    shutil.copytree(src, copy)
    data = bytearray((copy / "colorizer-ours.pt").read_bytes())
    data[-100] ^= 1
    (copy / "colorizer-ours.pt").write_bytes(bytes(data))
    monkeypatch.setattr(shipped, "shipped_dir", lambda dataset: copy)
    monkeypatch.setenv("PSC_HOME", str(tmp_path / "home"))
    rc, _, err = run(["psnr", "--colorizer", "ours", "--limit", "2", "--quiet", "--out",
                      str(tmp_path / "out")], capsys)
    assert rc == 2 and "differs from the manifest's" in err and "colorizer-ours.pt" in err
