"""``psc-eval miou`` / ``psc-eval psnr`` end to end: interrupt and resume, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from psc_eval.cli import main

STANDINS = Path(__file__).resolve().parents[1] / "unit"
JUDGE = "runner_standins:ChromaJudge"
TILT = "runner_standins:TiltColorizer"


@pytest.fixture(autouse=True)
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("PSC_HOME", str(tmp_path / "home"))
    monkeypatch.syspath_prepend(str(STANDINS))
    for k in ("PSC_TEST_COUNTER", "PSC_TEST_SLEEP", "PSC_TEST_BAD"):
        monkeypatch.delenv(k, raising=False)


def run(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    out, err = capsys.readouterr()
    return e.value.code, out, err


def metrics_of(root: Path) -> dict[str, dict]:
    return {str(p.relative_to(root)): json.loads(p.read_text())["metrics"]
            for p in sorted(root.rglob("*.json"))}


def test_interrupted_run_resumes_and_equals_uninterrupted(tmp_path, capsys, monkeypatch):
    args = ["miou", "--colorizer", TILT, "--segmenter", JUDGE, "--size", "32", "--limit", "8",
            "--batch-size", "2", "--quiet"]
    counter = tmp_path / "count.txt"
    env = {**os.environ, "PSC_TEST_COUNTER": str(counter), "PSC_TEST_SLEEP": "0.4",
           "PYTHONPATH": os.pathsep.join([str(STANDINS), os.environ.get("PYTHONPATH", "")])}
    # A suite started in the background (nohup, a CI runner) inherits an ignored SIGINT,
    # which Python then keeps ignoring: the child turns it back into KeyboardInterrupt.
    child = ("import runpy, signal, sys; signal.signal(signal.SIGINT, "
             "signal.default_int_handler); sys.argv = ['psc-eval', *sys.argv[1:]]; "
             "runpy.run_module('psc_eval.cli', run_name='__main__')")
    p = subprocess.Popen([sys.executable, "-c", child, *args, "--out", str(tmp_path / "a")],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    shards = tmp_path / "home" / "cache" / "eval" / "ab"
    deadline = time.time() + 60
    while not list(shards.glob("*/*.pt")) and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "rerun the command to resume" in err
    first = sum(map(int, counter.read_text().split()))
    assert 2 <= first < 8
    assert not (tmp_path / "a" / "runs").exists()  # no result from an unfinished run

    counter.write_text("")
    monkeypatch.setenv("PSC_TEST_COUNTER", str(counter))
    rc, out, err = run([*args, "--out", str(tmp_path / "a")], capsys)
    assert rc == 0, err
    resumed = sum(map(int, counter.read_text().split()))
    assert resumed <= 8 - 2 and resumed + first >= 8  # picked up where it stopped
    assert f"tilt: colorized {resumed} images, {8 - resumed} from cache" in out

    rc, _, err = run([*args, "--out", str(tmp_path / "b"), "--no-cache"], capsys)
    assert rc == 0, err
    a, b = metrics_of(tmp_path / "a"), metrics_of(tmp_path / "b")
    assert len(a) == 3 and a == b


def test_summary_reads_like_fig8_and_writes_three_results(tmp_path, capsys):
    rc, out, err = run(["miou", "--colorizer", TILT, "--segmenter", JUDGE, "--size", "32",
                        "--limit", "3", "--quiet", "--out", str(tmp_path / "o")], capsys)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("psc-eval miou: toy/val, 3 images at 32 px")
    rows = [ln.split()[0] for ln in lines[2:5]]
    assert rows == ["gray", "tilt", "colour"]  # the colorizer's own name
    assert "skipped 0 images" in out
    files = sorted((tmp_path / "o" / "runs" / "toy" / "chroma-judge").rglob("*.json"))
    assert [f.parent.name for f in files] == ["gray", "gt", "tilt"]
    gt = json.loads(files[1].read_text())
    assert gt["metrics"]["psnr"] is None and gt["nonfinite"]["metrics.psnr"] == "inf"
    assert gt["metrics"]["psnr_n_infinite"] == 3


@pytest.mark.parametrize("mode", ["nan", "range"])
def test_bad_colorizer_exit_2_names_image_cache_kept(tmp_path, capsys, monkeypatch, mode):
    monkeypatch.setenv("PSC_TEST_BAD", mode)
    rc, _, err = run(["miou", "--colorizer", "runner_standins:BadColorizer", "--segmenter",
                        JUDGE, "--size", "32", "--limit", "6", "--batch-size", "2", "--quiet",
                        "--out", str(tmp_path / "o")], capsys)
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("psc-eval: error: ")
    assert "'toy-val-00003'" in err
    assert [p.name for p in (tmp_path / "home").rglob("ab/*/*.pt")] == ["00000000-00002.pt"]
    assert not (tmp_path / "o" / "runs").exists()


@pytest.mark.parametrize("argv,needle", [
    (["--limit", "0"], "--limit must be >= 1"),
    (["--colorizer", "nosuch"], "unknown colorizer 'nosuch'"),
    (["--dataset", "nosuch"], "unknown dataset 'nosuch'"),
    (["--segmenter", "no_such_module:Judge"], "cannot import segmenter module"),
    (["--segmenter", "runner_standins:Missing"], "has no attribute 'Missing'"),
])
def test_bad_options_one_line_exit_2(tmp_path, capsys, argv, needle):
    base = {"--colorizer": "gray", "--segmenter": JUDGE, "--size": "32", "--limit": "2",
            "--out": str(tmp_path / "o")}
    base.update(dict(zip(argv[::2], argv[1::2])))
    rc, _, err = run(["miou", "--quiet", *[x for kv in base.items() for x in kv]], capsys)
    assert rc == 2 and err.count("\n") == 1 and needle in err, err
    assert not list((tmp_path / "home").rglob("*.pt"))  # failed before any work


def test_registry_judges_unknown_untrained_and_real(tmp_path, capsys):
    common = ["--colorizer", "gray", "--size", "32", "--limit", "3", "--quiet",
              "--out", str(tmp_path / "o")]
    rc, _, err = run(["miou", "--segmenter", "nosuch-judge", *common], capsys)
    assert rc == 2 and err.count("\n") == 1 and "unknown segmenter 'nosuch-judge'" in err, err
    # No trained toy judge under $PSC_HOME (and the shipped ones switched off): the message
    # gives the exact command.
    os.environ["PSC_SHIPPED"] = "0"
    try:
        rc, _, err = run(["miou", *common], capsys)
    finally:
        del os.environ["PSC_SHIPPED"]
    assert rc == 2 and err.count("\n") == 1, err
    from psc_eval.judge.registry import default_segmenter

    toy_judge = default_segmenter("toy")
    assert f"psc-eval train-judge --dataset toy --arch {toy_judge}" in err
    # A real (randomly initialised) registry judge runs through the whole pipeline.
    import torch

    from psc_eval.judge import load_segmenter
    from psc_eval.paths import judge_weights_path

    seg = load_segmenter(toy_judge, num_classes=10)
    path = judge_weights_path("toy", toy_judge)
    path.parent.mkdir(parents=True)
    torch.save(seg.module.state_dict(), path)
    rc, _, err = run(["miou", *common], capsys)
    assert rc == 0, err
    (found,) = (tmp_path / "o/runs/toy" / toy_judge / "gray").glob("val-seed0-*.json")
    res = json.loads(found.read_text())
    from psc_eval.io import sha256_file

    assert res["provenance"]["judge_weights_sha256"] == sha256_file(path)
    assert res["provenance"]["judge_config"]["name"] == toy_judge
    assert 0.0 <= res["metrics"]["miou"] <= 1.0


def test_unwritable_out_fails_before_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, _, err = run(["miou", "--colorizer", TILT, "--segmenter", JUDGE, "--size", "32",
                      "--limit", "2", "--quiet", "--out", str(blocker / "sub")], capsys)
    assert rc == 2 and err.count("\n") == 1 and str(blocker / "sub") in err
    assert not (tmp_path / "home" / "cache" / "eval").exists()


def test_folder_psnr_works_miou_needs_masks(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / f"c{i}.png")
    Image.fromarray(np.full((20, 24), 90, np.uint8), mode="L").save(folder / "gray.png")
    common = ["--dataset", "folder", "--root", str(folder), "--size", "16", "--quiet",
              "--out", str(tmp_path / "o")]
    rc, _, err = run(["miou", "--colorizer", "gray", *common], capsys)
    assert rc == 2 and "needs segmentation masks" in err and err.count("\n") == 1
    rc, out, err = run(["psnr", "--colorizer", TILT, *common], capsys)
    assert rc == 0, err
    assert "skipped 1 images (1x grayscale source (PIL mode L))" in out
    files = sorted((tmp_path / "o" / "runs" / "folder" / "none").rglob("*.json"))
    assert len(files) == 3
    res = json.loads(files[0].read_text())
    assert res["kind"] == "psnr" and res["skipped"] == [
        {"id": "gray.png", "reason": "grayscale source (PIL mode L)"}]
    assert res["metrics"]["num_images"] == 2 and np.isfinite(res["metrics"]["psnr"])


def test_plain_user_colorizer_class(tmp_path, capsys):
    common = ["--colorizer", "runner_standins:PlainColorizer", "--size", "32", "--limit", "2",
              "--quiet", "--out", str(tmp_path / "o")]
    rc, out, err = run(["psnr", *common], capsys)
    assert rc == 0 and "plain" in out, err
    rc, _, err = run(["psnr", *common, "--colorizer-weights", str(tmp_path / "w.pt")], capsys)
    assert rc == 2 and "takes no weights" in err and err.count("\n") == 1


def test_temperature_reaches_the_colorizer_and_keys_the_cache(tmp_path, capsys):
    base = ["psnr", "--colorizer", "runner_standins:WarmColorizer", "--size", "32",
            "--limit", "4", "--quiet"]
    psnr_ab = {}
    for t in ("0.5", "2.0", "0.5"):
        rc, _, err = run([*base, "--temperature", t, "--out", str(tmp_path / t)], capsys)
        assert rc == 0, err
        res = json.loads(next((tmp_path / t).rglob("warm/*.json")).read_text())
        psnr_ab.setdefault(t, []).append(res["metrics"]["psnr_ab"])
    assert psnr_ab["0.5"][0] == psnr_ab["0.5"][1]  # the cached rerun equals the first run
    assert psnr_ab["0.5"][0] != psnr_ab["2.0"][0]  # another temperature is not served from cache
    rc, _, err = run(["psnr", "--colorizer", "runner_standins:PlainColorizer", "--size", "32",
                      "--limit", "2", "--temperature", "0.5", "--out", str(tmp_path / "x")],
                     capsys)
    assert rc == 2 and "takes no temperature" in err
