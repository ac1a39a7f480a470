"""A researcher's own colorizer, first try (issue: never a stale cache, never an
overwritten result, one way of building colorizers, module:attr from the working folder).

The README's example is the module these tests run (extracted between its markers).
Commands run as subprocesses from a fresh working folder WITHOUT PYTHONPATH, as a user
would type them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    text = README.read_text()
    m = re.search(r"<!-- example: mycolor.py -->\s*```python\n(.*?)```\s*<!-- end example -->",
                  text, re.DOTALL)
    assert m, "README lost its example block"
    return m.group(1)


def run(cwd: Path, *args: str):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PSC_HOME=str(cwd / "home"), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "psc_eval.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False, timeout=300)


@pytest.fixture
def work(tmp_path):
    (tmp_path / "mycolor.py").write_text(readme_example())
    return tmp_path


def results(cwd: Path) -> dict[str, dict]:
    return {str(p.relative_to(cwd)): json.loads(p.read_text())
            for p in sorted((cwd / "reports").rglob("*.json"))}


COMMON = ("--size", "16", "--limit", "6", "--batch-size", "3", "--quiet")


@pytest.mark.slow
def test_readme_example_edit_and_rerun_is_recomputed_and_runs_never_overwrite(work):
    r = run(work, "psnr", "--colorizer", "mycolor:Sepia", *COMMON)
    assert r.returncode == 0, r.stderr
    assert "sepia: colorized 6 images, 0 from cache" in r.stdout
    first = {k: v for k, v in results(work).items() if "/sepia/" in k}
    assert len(first) == 1
    (path, res), = first.items()
    psnr_before = res["metrics"]["psnr"]

    again = run(work, "psnr", "--colorizer", "mycolor:Sepia", *COMMON)
    assert "sepia: colorized 0 images, 6 from cache" in again.stdout
    assert set(results(work)) == set(first) | {k for k in results(work) if "/sepia/" not in k}

    # the user edits the colorizer: never served from the cache
    src = (work / "mycolor.py").read_text().replace("8.0)", "30.0)")
    (work / "mycolor.py").write_text(src)
    edited = run(work, "psnr", "--colorizer", "mycolor:Sepia", *COMMON)
    assert edited.returncode == 0, edited.stderr
    assert "sepia: colorized 6 images, 0 from cache" in edited.stdout
    runs = {k: v for k, v in results(work).items() if "/sepia/" in k}
    assert len(runs) == 2 and path in runs  # the first result is kept, not replaced
    (new,) = [v for k, v in runs.items() if k != path]
    assert new["metrics"]["psnr"] != psnr_before
    assert new["provenance"]["colorizer_code_sha256"] != res["provenance"][
        "colorizer_code_sha256"]

    # another limit is another file too; gray and gt rows likewise keep theirs
    other = run(work, "psnr", "--colorizer", "mycolor:Sepia", "--size", "16", "--limit", "3",
                "--quiet")
    assert other.returncode == 0, other.stderr
    assert len([k for k in results(work) if "/sepia/" in k]) == 3
    assert len([k for k in results(work) if "/gray/" in k]) == 2


@pytest.mark.slow
def test_plain_class_in_sample_several_rows_and_protocol_errors(work):
    r = run(work, "sample", "--colorizer", "mycolor:Sepia", "--colorizer", "gt", "--size", "16",
            "--limit", "2", "--out", "grids")
    assert r.returncode == 0, r.stderr
    (png,) = (work / "grids").glob("*.png")
    # named by the row's name, as miou and the report call it (not the module:Class path)
    assert png.name == "sepia+gt-toy-grid.png"
    rows = run(work, "psnr", "--colorizer", "mycolor:Sepia,gray", *COMMON)
    assert rows.returncode == 0, rows.stderr
    table = rows.stdout.splitlines()
    assert any(line.strip().startswith("sepia") for line in table)
    (work / "bad.py").write_text(
        "import torch\nclass NoKw:\n    stochastic = False\n"
        "    def colorize(self, L):\n        return torch.zeros(L.shape[0], 1, 2, *L.shape[2:])\n")
    bad = run(work, "psnr", "--colorizer", "bad:NoKw", *COMMON)
    assert bad.returncode == 2
    want = ("psc-eval: error: colorizer 'bad:NoKw' has colorize(L), in its class, define "
            "colorize(self, L, n_samples=1, *, generator=None) returning (B, n_samples, 2, H, W)")
    assert bad.stderr.strip().splitlines() == [want]


def test_python_api_takes_colorizer_objects(tmp_path, monkeypatch):
    monkeypatch.setenv("PSC_HOME", str(tmp_path / "home"))
    ns: dict = {}
    exec(compile(readme_example(), "mycolor.py", "exec"), ns)  # noqa: S102 - the README's code
    from psc_eval.runner import run_eval

    s = run_eval("psnr", ns["Sepia"](), "toy", size=16, limit=4, batch_size=2, progress=False,
                 out=tmp_path / "out", cache=False, device="cpu")
    assert [r.colorizer for r in s.results] == ["gray", "sepia", "gt"]
    assert 5.0 < s.results[1].metrics["psnr"] < 40.0


def test_predictions_folder_scores_like_the_colorizer_that_wrote_it(tmp_path, monkeypatch,
                                                                     capsys):
    """PNGs written from the gt colorizer, scored with --predictions, give gt's numbers."""
    import numpy as np
    from PIL import Image

    from psc_eval.cli import main
    from psc_eval.color import lab_parts_to_rgb, to_uint8
    from psc_eval.data import get_dataset

    monkeypatch.setenv("PSC_HOME", str(tmp_path / "home"))
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "unit"))
    ds = get_dataset("toy", split="val", size=16)
    pred = tmp_path / "pred"
    pred.mkdir()
    for i in range(8):
        s = ds[i]
        rgb = to_uint8(lab_parts_to_rgb(s["L"][None], s["ab"][None]))[0]
        Image.fromarray(np.ascontiguousarray(rgb.permute(1, 2, 0).numpy())).save(
            pred / f"{s['id']}.png")
    common = ["--size", "16", "--limit", "6", "--segmenter", "runner_standins:ChromaJudge",
              "--quiet", "--no-cache", "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as e:
        main(["miou", "--predictions", str(pred), *common])
    assert e.value.code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "predictions-pred" in out
    runs = {p.parent.name: json.loads(p.read_text())
            for p in (tmp_path / "out").rglob("*.json")}
    a, b = runs["predictions-pred"]["metrics"], runs["gt"]["metrics"]
    for k in ("miou", "pixel_accuracy", "psnr_ab", "psnr_n_infinite", "num_images"):
        assert a[k] == b[k], k
    assert runs["predictions-pred"]["per_class_iou"] == runs["gt"]["per_class_iou"]

    # a missing id and a stray file: one line each, naming them
    (pred / f"{ds.ids[2]}.png").unlink()
    with pytest.raises(SystemExit) as e:
        main(["miou", "--predictions", str(pred), *common])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "1 missing prediction ids (toy-val-00002)" in err
    Image.new("RGB", (16, 16), "red").save(pred / f"{ds.ids[2]}.png")
    Image.new("RGB", (16, 16), "red").save(pred / "not-an-id.png")
    with pytest.raises(SystemExit) as e:
        main(["miou", "--predictions", str(pred), *common])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "1 extra prediction ids (not-an-id)" in err


def test_diversity_of_a_predictions_folder_with_two_samples(tmp_path, monkeypatch, capsys):
    """`diversity --predictions DIR` reads <id>_0 / <id>_1; identical pairs score MS-SSIM 1,
    a changed second sample scores what pytorch-msssim gives on the same pair; a folder of
    one image per id is one line, exit 2."""
    import numpy as np
    import torch
    from PIL import Image

    from psc_eval.cli import main
    from psc_eval.color import lab_parts_to_rgb, to_uint8
    from psc_eval.data import get_dataset
    from psc_eval.metrics.diversity import ms_ssim_pairs, msssim_variant
    from psc_eval.predictions import PredictionsColorizer

    monkeypatch.setenv("PSC_HOME", str(tmp_path / "home"))
    ds = get_dataset("toy", split="val", size=48)
    pred = tmp_path / "pairs"
    pred.mkdir()
    rgbs = []
    for i in range(4):
        s = ds[i]
        rgb = to_uint8(lab_parts_to_rgb(s["L"][None], s["ab"][None]))[0]
        half = to_uint8(lab_parts_to_rgb(s["L"][None], 0.5 * s["ab"][None]))[0]
        second = rgb if i % 2 == 0 else half  # images 1 and 3: a paler second sample
        rgbs.append((rgb, second))
        for k, im in enumerate((rgb, second)):
            Image.fromarray(np.ascontiguousarray(im.permute(1, 2, 0).numpy())).save(
                pred / f"{s['id']}_{k}.png")
    common = ["--size", "48", "--limit", "4", "--quiet", "--no-cache",
              "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as e:
        main(["diversity", "--predictions", str(pred), *common])
    assert e.value.code == 0, capsys.readouterr().err
    (run,) = [json.loads(p.read_text()) for p in (tmp_path / "out").rglob("*.json")]
    m = run["metrics"]
    assert m["diversity_n"] == 4 and m["diversity_msssim"] < 1.0
    assert run["histograms"]["diversity_msssim"]["counts"][-1] == 2  # the identical pairs
    assert any((tmp_path / "out" / "figures" / "diversity").iterdir())
    # the same pairs composed directly: the files' chroma with the original L, stored at
    # float16 like every sample, scored by pytorch-msssim with the recorded variant
    col = PredictionsColorizer(pred)
    L = torch.stack([ds[i]["L"] for i in range(4)])
    ab = col.colorize(L, 2, ids=ds.ids[:4]).to(torch.float16).to(L.dtype)
    rgb = [to_uint8(lab_parts_to_rgb(L, ab[:, k])) for k in range(2)]
    direct = ms_ssim_pairs(rgb[0], rgb[1], msssim_variant(48))
    assert direct[0] == 1.0 and direct[2] == 1.0 and direct[1] < 0.999
    assert m["diversity_msssim"] == pytest.approx(float(direct.mean()), abs=1e-12)
    assert run["provenance"]["msssim_variant"]["win_size"] == 3

    one = tmp_path / "single"
    one.mkdir()
    for i in range(4):
        (pred / f"{ds.ids[i]}_0.png").replace(one / f"{ds.ids[i]}.png")
    with pytest.raises(SystemExit) as e:
        main(["diversity", "--predictions", str(one), *common])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "one image per id" in err and len(err.splitlines()) == 1
