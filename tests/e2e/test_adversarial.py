"""Adversarial inputs (issue 24): each case once gave a silently wrong number, a traceback
or a hang. Every case now ends in the correct number or in ONE stderr line
``psc-eval: error: ...`` with exit status 2. Cases are grouped by what is attacked and
parametrised, so the next probe adds a row instead of a test.

Commands run in-process through ``psc_eval.cli.main`` unless a case could exhaust the
machine on a regression (model sizes): those run in a subprocess under a memory limit and
a timeout. The study server is attacked on 127.0.0.1 only, with bounded connection counts.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import assert_error, cli
from PIL import Image

from psc_eval.errors import PscError
from psc_eval.judge.registry import default_segmenter

REPO = Path(__file__).resolve().parents[2]
TOY_JUDGE = default_segmenter("toy")  # the shipped toy judge
RUNS = REPO / "reports" / "runs" / "toy" / TOY_JUDGE
SHIPPED = REPO / "reports" / "toy" / "checkpoints"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PSC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return tmp_path / "home"


def _run_file(colorizer: str) -> Path:
    """The shipped run of ``colorizer`` at its own temperature (reproduce also scores ours,
    with gray and gt beside it, at the selected one)."""
    (p,) = [p for p in sorted((RUNS / colorizer).glob("*.json"))
            if json.loads(p.read_text())["provenance"]["config"].get("temperature") is None]
    return p


def _edit(src: Path, dst: Path, fn) -> Path:
    obj = json.loads(src.read_text())
    fn(obj)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(obj))
    return dst


# ------------------------------------------------ 1. a colorizer that edits its input L


class _MutatesL:
    name = "mutates"
    stochastic = False

    def colorize(self, L, n_samples=1, *, generator=None):
        L.mul_(0.0)  # the attack: the harness's L, shared with the other rows
        return torch.zeros(L.shape[0], 1, 2, *L.shape[2:])


def test_colorizer_editing_L_in_place_is_refused_and_the_cache_stays_clean(tmp_path, home):
    from psc_eval.runner import run_eval

    opts = {"size": 16, "limit": 4, "batch_size": 2, "progress": False, "device": "cpu",
                "cache_dir": tmp_path / "cache"}
    with pytest.raises(PscError, match="changed its input L in place"):
        run_eval("psnr", _MutatesL(), "toy", out=tmp_path / "bad", **opts)
    shared = run_eval("psnr", "gray", "toy", out=tmp_path / "after", **opts)
    fresh = run_eval("psnr", "gray", "toy", out=tmp_path / "fresh",
                     **{**opts, "cache_dir": tmp_path / "fresh-cache"})
    gt = {r.colorizer: r.metrics["psnr"] for r in shared.results}["gt"]
    assert gt == {r.colorizer: r.metrics["psnr"] for r in fresh.results}["gt"]


# --------------------------------------------- 2. compare: NaN differences, bad per-image rows


def _gt_all_infinite(obj):
    n = len(obj["per_image"]["psnr"])
    obj["per_image"]["psnr"] = [None] * n
    obj["nonfinite"] = {k: v for k, v in obj["nonfinite"].items()
                        if not k.startswith("per_image.psnr[")}
    obj["nonfinite"].update({f"per_image.psnr[{i}]": "inf" for i in range(n)})


def test_compare_never_calls_an_undefined_difference_significant(tmp_path, capsys):
    gt = _edit(_run_file("gt"), tmp_path / "gt.json", _gt_all_infinite)
    code, out, err = cli(capsys, "compare", gt, _run_file("gray"), "--resamples", "200")
    assert code == 0, err
    (line,) = [x for x in out.splitlines() if x.strip().startswith("psnr ")]
    assert "nan" not in line and "undefined" in line and "not significant" in line
    code, out, err = cli(capsys, "compare", gt, _run_file("gray"), "--resamples", "200",
                         "--json")
    assert code == 0, err
    c = json.loads(out, parse_constant=lambda x: pytest.fail(f"bare {x} in --json"))
    assert c["psnr"]["significant"] is False and c["psnr"]["difference"] is None
    assert c["miou"]["significant"] is True  # a defined difference is still tested


def test_compare_pairs_psnr_over_images_finite_in_both_runs(tmp_path, capsys):
    _code, out, _err = cli(capsys, "compare", _run_file("gt"), _run_file("gray"),
                         "--resamples", "200", "--json")
    c = json.loads(out)
    gt = json.loads(_run_file("gt").read_text())
    n_inf = sum(k.startswith("per_image.psnr[") for k in gt["nonfinite"])
    assert c["psnr"]["n_left_out"] == n_inf and c["psnr"]["n_images"] == 500 - n_inf


def _rows(obj):
    return obj["per_image"]["miou_counts"]["rows"]


BAD_RUN_FILES = {
    "empty miou rows": (lambda o: _rows(o).clear(), "rows is empty"),
    "negative count": (lambda o: _rows(o)[0].__setitem__(2, -1), "intersection -1"),
    "intersection over union": (lambda o: _rows(o)[0].__setitem__(2, 10**9), "intersection"),
    "null class": (lambda o: _rows(o)[0].__setitem__(1, None), "not [image, class"),
    "image out of range": (lambda o: _rows(o)[0].__setitem__(0, 10**6), "names image"),
    "short per-image psnr": (lambda o: o["per_image"]["psnr"].pop(), "values for 500 images"),
    "psnr string": (lambda o: o["per_image"]["psnr"].__setitem__(0, "x"), "not a number"),
}


@pytest.mark.parametrize("case", sorted(BAD_RUN_FILES))
def test_compare_refuses_a_broken_run_file_in_one_line(tmp_path, capsys, case):
    fn, needle = BAD_RUN_FILES[case]
    bad = _edit(_run_file("gray"), tmp_path / "gray.json", fn)
    code, _, err = cli(capsys, "compare", _run_file("gt"), bad, "--resamples", "100")
    assert_error(code, err, needle, str(bad))


def test_compare_refuses_deeply_nested_json_in_one_line(tmp_path, capsys):
    bad = tmp_path / "deep.json"
    bad.write_text("[" * 200_000 + "]" * 200_000)
    code, _, err = cli(capsys, "compare", bad, _run_file("gray"))
    assert_error(code, err, "nested too deeply", str(bad))


# ----------------------------------------------------- 3. report trusts nothing it reads

BAD_METRICS = {
    "miou string": (lambda o: o["metrics"].__setitem__("miou", "0.5"), "metrics.miou is str"),
    "miou 5.0": (lambda o: o["metrics"].__setitem__("miou", 5.0), "outside [0, 1]"),
    "miou true": (lambda o: o["metrics"].__setitem__("miou", True), "metrics.miou is bool"),
    "miou -1": (lambda o: o["metrics"].__setitem__("miou", -1), "outside [0, 1]"),
    "miou abc": (lambda o: o["metrics"].__setitem__("miou", "abc"), "metrics.miou is str"),
    "per-class string": (lambda o: o["per_class_iou"].__setitem__(
        next(iter(o["per_class_iou"])), "high"), "per_class_iou."),
    "seed string": (lambda o: o.__setitem__("seed", "zero"), "seed is"),
    "count float": (lambda o: o["metrics"].__setitem__("num_images", 2.5), "not a count"),
}


@pytest.mark.parametrize("case", sorted(BAD_METRICS))
def test_report_refuses_values_a_run_cannot_hold_and_writes_nothing(tmp_path, capsys, case):
    fn, needle = BAD_METRICS[case]
    runs = tmp_path / "runs" / "runs" / "toy" / TOY_JUDGE
    for c in ("gray", "ours"):
        shutil.copytree(RUNS / c, runs / c)
    bad = _edit(_run_file("gt"), runs / "gt" / _run_file("gt").name, fn)
    out = tmp_path / "out"
    code, _, err = cli(capsys, "report", "--runs", tmp_path / "runs", "--out", out)
    assert_error(code, err, needle, str(bad))
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("case", ["miou string", "miou 5.0"])
def test_collect_refuses_the_same_values(tmp_path, case):
    from psc_eval.results import collect

    _edit(_run_file("gt"), tmp_path / "runs" / "toy" / "gt.json", BAD_METRICS[case][0])
    with pytest.raises(PscError, match="breaks its schema"):
        collect(tmp_path)


def test_every_shipped_run_file_passes_the_schema():
    from psc_eval.results import load_result

    files = sorted((REPO / "reports" / "runs").rglob("*.json"))
    assert files
    for p in files:
        load_result(p)


# --------------------------------------------------- 4. the study tally trusts no truthiness


@pytest.fixture(scope="module")
def base_study(tmp_path_factory):
    from psc_eval.study import create_study

    out = tmp_path_factory.mktemp("adv-study") / "study"
    create_study("toy", "gray,gt", 1, 0, out, n_vigilance=4, display_size=32, progress=False)
    return out


def _answers(study_dir: Path, natural_of) -> None:
    from psc_eval.study import load_study
    from psc_eval.study.store import RESPONSES, encode_record

    st = load_study(study_dir)
    with open(study_dir / RESPONSES, "ab") as f:
        for tid in st.order_for("obs1"):
            t = st.trials[tid]
            nat = t.kind == "vigilance-real" or (t.kind == "test" and t.method == "gt")
            rec = {"observer": "obs1", "trial": tid,
                   "answer": "natural" if nat else "not_natural", "natural": nat}
            rec["natural"] = natural_of(rec)
            f.write(encode_record(rec) + b"\n")


@pytest.mark.parametrize("natural_of,needle", [
    (lambda r: "no" if r["answer"] == "not_natural" else True, "natural = 'no'"),
    (lambda r: r["answer"] != "natural", "but records natural"),
], ids=["string no", "contradicts answer"])
def test_tally_refuses_a_natural_field_that_is_not_the_answer(tmp_path, capsys, base_study,
                                                               natural_of, needle):
    study_dir = tmp_path / "study"
    shutil.copytree(base_study, study_dir)
    _answers(study_dir, natural_of)
    code, _, err = cli(capsys, "study", "tally", study_dir, "--n-boot", "100")
    assert_error(code, err, needle, "responses")


def test_tally_skips_a_deeply_nested_line_and_counts_it(tmp_path, capsys, base_study):
    from psc_eval.study.store import RESPONSES

    study_dir = tmp_path / "study"
    shutil.copytree(base_study, study_dir)
    _answers(study_dir, lambda r: r["natural"])
    with open(study_dir / RESPONSES, "ab") as f:
        f.write(b"[" * 100_000 + b"\n")
    code, _out, err = cli(capsys, "study", "tally", study_dir, "--n-boot", "100")
    assert code == 0, err
    tally = json.loads((study_dir / "tally.json").read_text())
    assert tally["responses"]["ignored_malformed_lines"] == 1
    assert tally["methods"]["gt"]["natural_rate"] == 1.0
    assert tally["methods"]["gray"]["natural_rate"] == 0.0


# ------------------------------------------- 6. ship loads every file as evaluation would


def _ship_home(home: Path, colorizer_ck) -> None:
    judge = home / "judges" / "toy" / f"{TOY_JUDGE}.pt"
    judge.parent.mkdir(parents=True)
    shutil.copy(SHIPPED / f"judge-{TOY_JUDGE}.pt", judge)
    last = home / "models" / "toy" / "ours" / "last.pt"
    last.parent.mkdir(parents=True)
    colorizer_ck(last)


def _tampered(edit):
    def write(dst: Path) -> None:
        from psc_eval.checkpoint import load_checkpoint, save_checkpoint

        ck = load_checkpoint(SHIPPED / "colorizer-ours.pt")
        save_checkpoint(dst, edit(ck))  # a fresh digest: only the loader can tell
    return write


def _first_float(ck):
    sd = ck["ema"] if "ema" in ck else ck["model"]
    return sd, next(k for k, v in sd.items() if v.is_floating_point() and v.ndim > 1)


def _nan(ck):
    sd, k = _first_float(ck)
    sd[k] = torch.full_like(sd[k], float("nan"))
    return ck


def _shape(ck):
    sd, k = _first_float(ck)
    sd[k] = sd[k][:1]
    return ck


def _int(ck):
    sd, k = _first_float(ck)
    sd[k] = sd[k].to(torch.int64)
    return ck


def _overflow(ck):  # finite in float32, infinite once shipped as float16
    sd, k = _first_float(ck)
    sd[k] = sd[k].float().fill_(1e6)
    return ck


SHIP_CASES = {
    "not a checkpoint": (_tampered(lambda ck: {"x": 1}), "checkpoint"),
    "nan weights": (_tampered(_nan), "NaN or infinite"),
    "wrong shapes": (_tampered(_shape), "shape mismatch"),
    "int tensors": (_tampered(_int), "dtype mismatch"),
    "a list": (lambda dst: torch.save([1, 2], dst), "list"),
}


@pytest.mark.parametrize("case", sorted(SHIP_CASES))
def test_ship_refuses_checkpoints_evaluation_could_not_use(tmp_path, home, capsys, case):
    write, needle = SHIP_CASES[case]
    _ship_home(home, write)
    out = tmp_path / "shipped"
    code, _, err = cli(capsys, "ship", "--colorizer", "ours", "--out", out)
    assert_error(code, err, needle)
    assert not (out / "manifest.json").exists()
    assert not list(out.glob("*.pt*")) if out.exists() else True


def test_ship_keeps_float32_where_float16_would_overflow(tmp_path, home, capsys):
    """A tensor float16 cannot hold (e.g. a batch-norm running variance over 65504, as
    zhang2016's toy model has) is shipped as float32, its values unchanged; the rest is
    float16."""
    _ship_home(home, _tampered(_overflow))
    out = tmp_path / "shipped"
    code, _, err = cli(capsys, "ship", "--colorizer", "ours", "--out", out)
    assert code == 0, err
    from psc_eval.checkpoint import load_checkpoint

    src = load_checkpoint(home / "models" / "toy" / "ours" / "last.pt")
    sd, k = _first_float(src)
    shipped = load_checkpoint(out / "colorizer-ours.pt")["ema"]
    assert shipped[k].dtype == torch.float32 and torch.equal(shipped[k], sd[k].float())
    others = [v.dtype for n, v in shipped.items() if n != k and v.is_floating_point()]
    assert others and set(others) == {torch.float16}


def test_ship_of_a_usable_checkpoint_still_works(tmp_path, home, capsys):
    _ship_home(home, lambda dst: shutil.copy(SHIPPED / "colorizer-ours.pt", dst))
    out = tmp_path / "shipped"
    code, _, err = cli(capsys, "ship", "--colorizer", "ours", "--out", out)
    assert code == 0, err
    m = json.loads((out / "manifest.json").read_text())
    assert set(m["checkpoints"]) == {f"judge/{TOY_JUDGE}", "colorizer/ours"}
    assert not list(out.glob("*.new"))


# --------------------------------------- 7. resume repairs the damaged last.pt it skipped


def test_resume_from_an_epoch_file_restores_a_damaged_last_pt(tmp_path, home, capsys):
    from psc_eval.checkpoint import load_checkpoint

    args = ("train", "--colorizer", "cao2017", "--epochs", "2", "--n-train", "4",
            "--n-val", "4", "--batch-size", "4", "--device", "cpu")
    code, _, err = cli(capsys, *args)
    assert code == 0, err
    (last,) = home.rglob("last.pt")
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])  # truncated
    code, _out, err = cli(capsys, *args, "--resume", "last")
    assert code == 0, err
    ck = load_checkpoint(last)  # whole again: an evaluation can use it
    assert int(ck["epoch"]) == 2
    assert (last.parent / "last.pt.damaged").read_bytes() == data[: len(data) // 2]


# ------------------------------------------------- 8. options and inputs that were accepted


def _predictions(tmp_path: Path, sizes: dict[str, tuple[int, int]]) -> Path:
    d = tmp_path / "preds"
    d.mkdir()
    rng = np.random.default_rng(0)
    for stem, (w, h) in sizes.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(d / f"{stem}.png")
    return d


def _toy_ids(n: int) -> list[str]:
    from psc_eval.data import get_dataset

    return get_dataset("toy", size=16).ids[:n]


@pytest.mark.parametrize("size", [(70, 50), (160, 160)])
def test_predictions_of_another_size_are_refused_not_resized(tmp_path, home, capsys, size):
    a, b = _toy_ids(2)
    d = _predictions(tmp_path, {a: (16, 16), b: size})
    code, _, err = cli(capsys, "psnr", "--predictions", d, "--size", "16", "--limit", "2",
                       "--quiet", "--out", tmp_path / "out", "--no-cache")
    assert_error(code, err, f"is {size[0]}x{size[1]} pixels", "scored at 16x16", b)


def test_a_prediction_file_the_run_would_not_read_is_refused(tmp_path, home, capsys):
    a, b = _toy_ids(2)
    d = _predictions(tmp_path, {a: (16, 16), b: (16, 16), f"{a}_1": (16, 16)})
    code, _, err = cli(capsys, "psnr", "--predictions", d, "--size", "16", "--limit", "2",
                       "--quiet", "--out", tmp_path / "out", "--no-cache")
    assert_error(code, err, "extra", f"{a}_1")


@pytest.mark.parametrize("value", ["inf", "nan", "0", "-1"])
def test_temperature_must_be_finite_and_positive(tmp_path, home, capsys, value):
    code, _, err = cli(capsys, "psnr", "--colorizer", "ours", "--temperature", value,
                       "--size", "64", "--limit", "2", "--quiet", "--out", tmp_path / "o")
    assert_error(code, err, "--temperature must be a finite number > 0")


PLUGINS = {
    "exits 0": (("def colorize(self, L, n_samples=1, *, generator=None):\n"
                "        raise SystemExit(0)\n"), "raised SystemExit"),
    "raises": (("def colorize(self, L, n_samples=1, *, generator=None):\n"
               "        raise ValueError('boom')\n"), "raised ValueError('boom') at adv_plugin.py"),
    "meta tensor": (("def colorize(self, L, n_samples=1, *, generator=None):\n"
                    "        return torch.zeros(L.shape[0], 1, 2, *L.shape[2:], device='meta')\n"),
                    "meta device"),
    "raises when built": (("def __init__(self):\n        raise RuntimeError('no GPU here')\n"
                          "    def colorize(self, L, n_samples=1, *, generator=None):\n"
                          "        return None\n"), "raised RuntimeError('no GPU here')"),
}


@pytest.mark.parametrize("case", sorted(PLUGINS))
def test_a_failing_colorizer_is_one_line_naming_it(tmp_path, home, capsys, monkeypatch, case):
    body, needle = PLUGINS[case]
    mod = tmp_path / "plug" / "adv_plugin.py"
    mod.parent.mkdir()
    mod.write_text(f"import torch\nclass Bad:\n    stochastic = False\n    {body}")
    monkeypatch.syspath_prepend(str(mod.parent))
    code, _, err = cli(capsys, "psnr", "--colorizer", "adv_plugin:Bad", "--size", "16",
                       "--limit", "2", "--quiet", "--out", tmp_path / "out", "--no-cache")
    assert_error(code, err, "adv_plugin:Bad", needle)
    sys.modules.pop("adv_plugin", None)


def test_a_full_disk_is_one_line_naming_the_folder(tmp_path, home, capsys, monkeypatch):
    from psc_eval import io as psc_io

    real = psc_io.os.fsync
    out = tmp_path / "out"

    def full(fd):
        if str(out) in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(psc_io.os, "fsync", full)
    code, _, err = cli(capsys, "psnr", "--colorizer", "gray", "--size", "16", "--limit", "2",
                       "--quiet", "--out", out, "--no-cache")
    assert_error(code, err, "no space left", str(out))
    assert not [p for p in out.rglob("*") if p.is_file()]


# TOML files; sizes that cannot fit run in a subprocess under a memory limit, so a
# regression fails the test instead of the machine.
TOML_CASES = {
    "epochs 1e17": ("[train]\nepochs = 100000000000000000\n", "over the limit"),
    "empty": ("", "config sets nothing"),
    "dropout 1.5": ("[model]\ndropout = 1.5\n", "model.dropout=1.5"),
    "widths 100000": ("[model]\nwidths = [100000, 32, 32, 48, 48]\n", "parameters"),
    "nr_resnet 100000": ("[model.generator]\nnr_resnet = 100000\n", "residual blocks"),
}


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))


@pytest.mark.parametrize("case", sorted(TOML_CASES))
def test_a_config_that_cannot_train_is_refused_before_building(tmp_path, case):
    text, needle = TOML_CASES[case]
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    env = {**os.environ, "PSC_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "psc_eval.cli", "train", "--colorizer", "ours",
                        "--config", str(cfg), "--n-train", "2", "--n-val", "2",
                        "--device", "cpu"], env=env, capture_output=True, text=True,
                       timeout=120, preexec_fn=_limit_memory, check=False)
    assert_error(r.returncode, r.stderr, needle, str(cfg))
    assert time.monotonic() - t0 < 60


# --------------------------------------------- hangs: slow clients of the study server


def test_slow_clients_cannot_starve_the_study_server(base_study, tmp_path, monkeypatch):
    import http.client

    from psc_eval.study import StudyServer
    from psc_eval.study import server as server_mod

    monkeypatch.setattr(server_mod, "REQUEST_DEADLINE", 2.0, raising=False)
    study_dir = tmp_path / "study"
    shutil.copytree(base_study, study_dir)
    n_slow, stop = 150, threading.Event()
    with StudyServer(study_dir, host="127.0.0.1", port=0) as srv:
        slow = []
        for _ in range(n_slow):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            slow.append(s)

        def trickle():  # one header line per client every 0.3 s: no read ever times out
            while not stop.wait(0.3):
                for s in slow:
                    try:
                        s.sendall(b"X-Slow: 1\r\n")
                    except OSError:
                        pass

        th = threading.Thread(target=trickle, daemon=True)
        th.start()
        try:
            time.sleep(0.6)
            for _ in range(3):  # others are served while the slow clients trickle
                t0 = time.monotonic()
                conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
                conn.request("GET", "/api/config")
                assert conn.getresponse().status == 200
                conn.close()
                assert time.monotonic() - t0 < 3.0
            # and every slow client is cut off once its deadline has passed
            time.sleep(2.5)
            assert sum(_closed_by_server(s) for s in slow) == n_slow
        finally:
            stop.set()
            th.join(5)
            for s in slow:
                s.close()


def _closed_by_server(s: socket.socket) -> bool:
    s.settimeout(3)
    try:
        while s.recv(65536):
            pass
        return True
    except TimeoutError:
        return False
    except OSError:  # reset: closed too
        return True


def _shipped_royer(tmp_path, home, **more) -> tuple:
    """A shipped folder holding royer2017 (plus the manifest entries ``more``), and a
    trained ours under $PSC_HOME to ship into it: (folder, the repository's entries)."""
    out = tmp_path / "shipped"
    out.mkdir()
    shutil.copy(SHIPPED / "colorizer-royer2017.pt", out / "colorizer-royer2017.pt")
    old = json.loads((SHIPPED / "manifest.json").read_text())["checkpoints"]
    (out / "manifest.json").write_text(json.dumps(
        {"dataset": "toy", "dtype": "float16",
         "checkpoints": {"colorizer/royer2017": old["colorizer/royer2017"], **more}}))
    _ship_home(home, lambda dst: shutil.copy(SHIPPED / "colorizer-ours.pt", dst))
    return out, old


def test_ship_keeps_the_entries_it_does_not_ship(tmp_path, home, capsys):
    """Shipping one colorizer leaves the other shipped checkpoints and their manifest
    entries as they were (it used to rewrite the manifest with only what it shipped)."""
    out, old = _shipped_royer(tmp_path, home,
                              **{"colorizer/gone": {"file": "colorizer-gone.pt"}})
    code, _, err = cli(capsys, "ship", "--colorizer", "ours", "--out", out)
    assert code == 0, err
    m = json.loads((out / "manifest.json").read_text())["checkpoints"]
    # royer's entry kept as it was; an entry whose file is gone dropped; ours added
    assert m["colorizer/royer2017"] == old["colorizer/royer2017"]
    assert "colorizer/gone" not in m and {"colorizer/ours", f"judge/{TOY_JUDGE}"} <= set(m)


def test_ship_drops_a_replaced_entry_and_reports_the_budget(tmp_path, home, capsys):
    out, _ = _shipped_royer(tmp_path, home)
    code, _, err = cli(capsys, "ship", "--colorizer", "ours", "--out", out, "--drop", "nope/x")
    assert_error(code, err, "nothing shipped under nope/x")
    code, outp, err = cli(capsys, "ship", "--colorizer", "ours", "--out", out,
                          "--drop", "colorizer/royer2017")
    assert code == 0, err
    m = json.loads((out / "manifest.json").read_text())["checkpoints"]
    assert "colorizer/royer2017" not in m and "colorizer/ours" in m
    assert not (out / "colorizer-royer2017.pt").exists()
    assert "MB shipped (budget 40 MB)" in outp
