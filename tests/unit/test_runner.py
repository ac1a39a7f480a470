"""The evaluation runner against an independent numpy / skimage computation, its cache,
resume, validation of colorizer output, and a 2-process gloo run."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.color import lab2rgb
from skimage.metrics import peak_signal_noise_ratio

from psc_eval.data import get_dataset
from psc_eval.errors import ColorizerOutputError, PscError
from psc_eval.runner import batch_seed, check_ab, draw_samples, evaluate, evaluate_rows

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
from fixtures_data import run_ranks
from runner_standins import (
    BadColorizer,
    ChromaJudge,
    NoisyColorizer,
    TiltColorizer,
    chroma_judge_numpy,
)

N, SIZE = 7, 32


@pytest.fixture(autouse=True)
def psc_home(tmp_path, monkeypatch):
    monkeypatch.setenv("PSC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PSC_TEST_COUNTER", raising=False)
    monkeypatch.delenv("PSC_TEST_SLEEP", raising=False)
    monkeypatch.delenv("PSC_TEST_BAD", raising=False)
    return tmp_path / "home"


def toy(n=N):
    return get_dataset("toy", split="val", size=SIZE, n_images=n)


def reference(ds, ab_fn):
    """Independent pipeline: skimage lab2rgb (float64), uint8 rounding, numpy bincount mIoU,
    skimage PSNR. ``ab_fn(sample) -> (2,H,W)`` float32 chroma as the colorizer returns it."""
    C = ds.num_classes
    conf = np.zeros((C, C), np.int64)
    psnrs = []
    for i in range(len(ds)):
        s = ds[i]
        ab = ab_fn(s).astype(np.float16).astype(np.float64)  # the runner's documented precision
        lab = np.concatenate([s["L"].numpy().astype(np.float64), ab], 0).transpose(1, 2, 0)
        rgb = np.round(np.clip(lab2rgb(lab), 0, 1) * 255).astype(np.uint8)
        true = np.round(s["rgb"].numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
        pred = chroma_judge_numpy(rgb[None])[0]
        t = s["mask"].numpy()
        conf += np.bincount(t.ravel() * C + pred.ravel(), minlength=C * C).reshape(C, C)
        with np.errstate(divide="ignore"):  # identical images: inf, as intended
            psnrs.append(peak_signal_noise_ratio(true, rgb, data_range=255))
    tp = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - tp
    iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
    psnrs = np.array(psnrs)
    fin = np.isfinite(psnrs)
    return {"miou": float(np.nanmean(iou)), "iou": iou, "psnr": float(psnrs[fin].mean())
            if fin.any() else float("nan"), "n_inf": int((~fin).sum()),
            "pixel_accuracy": float(tp.sum() / conf.sum())}


@pytest.fixture(params=["0", "1"], ids=["scoring inline", "scoring thread"])
def scoring(request, monkeypatch):
    """Both ways of running the scorers (inline, or on a thread beside the judge)."""
    monkeypatch.setenv("PSC_SCORE_THREAD", request.param)
    return request.param


def test_rows_match_independent_numpy_pipeline(scoring):
    ds = toy()
    gray, tilt, gt = evaluate_rows(["gray", TiltColorizer(), "gt"], ds, ChromaJudge(),
                                   batch_size=3, progress=False)
    refs = {
        "gray": reference(ds, lambda s: np.zeros((2, SIZE, SIZE), np.float32)),
        "tilt": reference(ds, lambda s: np.concatenate(
            [0.4 * (s["L"].numpy() - 50.0), np.full((1, SIZE, SIZE), 20.0)]).astype(np.float32)),
        "gt": reference(ds, lambda s: s["ab"].numpy()),
    }
    for r in (gray, tilt, gt):
        ref = refs[r.colorizer]
        assert r.metrics["miou"] == pytest.approx(ref["miou"], abs=1e-12)
        assert r.metrics["pixel_accuracy"] == pytest.approx(ref["pixel_accuracy"], abs=1e-12)
        iou = np.array(list(r.per_class_iou.values()), dtype=float)
        np.testing.assert_allclose(iou, ref["iou"], atol=1e-12, equal_nan=True)
        assert r.metrics["psnr_n_infinite"] == ref["n_inf"]
        if np.isfinite(ref["psnr"]):
            # float32 (ours) vs float64 (skimage) Lab -> RGB: one value of these 7 x 3 x 32 x 32
            # sits at 117.50002 and rounds to the other uint8 level, worth ~1e-5 dB.
            assert r.metrics["psnr"] == pytest.approx(ref["psnr"], abs=1e-4)
        assert r.metrics["num_images"] == N and r.skipped == []
    # gt reproduces the dataset's uint8 images exactly (PSNR inf on every image), and the
    # judge of colour images beats the one of gray images on this data.
    assert gt.metrics["psnr_n_infinite"] == N
    assert gt.metrics["miou"] > gray.metrics["miou"] + 0.2
    assert list(gt.per_class_iou)[:3] == ["sky", "grass", "sand"]
    prov = gt.provenance
    assert prov["dataset_fingerprint"] == ds.fingerprint()
    assert prov["miou_convention"].startswith("dataset-level confusion matrix")
    assert gt.histograms["psnr_rgb"]["n_infinite"] == N
    assert sum(tilt.histograms["psnr_rgb"]["counts"]) == N


def test_scoring_thread_gives_the_inline_numbers_bit_for_bit(monkeypatch):
    """The default miou scorers (mIoU, PSNR, semantic accuracy, pollution) and a diversity
    scorer, a deterministic and a stochastic row: the scoring thread adds every batch in
    the same order as inline scoring, so every number is identical; and it is used."""
    import threading

    from psc_eval import runner

    ds = toy()
    names = []
    real = runner._score_and_store

    def spy(*a):
        names.append(threading.current_thread().name)
        return real(*a)

    monkeypatch.setattr(runner, "_score_and_store", spy)
    got = {}
    for mode in ("0", "1"):
        monkeypatch.setenv("PSC_SCORE_THREAD", mode)
        names.clear()
        got[mode] = [r.to_json()["metrics"] for r in evaluate_rows(
            [TiltColorizer(), NoisyColorizer()], ds, ChromaJudge(), batch_size=2,
            progress=False, cache=False)]
        assert len(names) == 8  # 4 batches x 2 rows
        assert all(n.startswith("psc-score") == (mode == "1") for n in names), names
    assert got["0"] == got["1"]
    assert {"miou", "psnr", "semantic_accuracy", "pollution_spread"} <= set(got["1"][0])


def test_prefetch_keeps_items_and_order_raises_in_place_and_stops_early():
    """The loading thread beside the judge: the same items in the same order, made on a
    thread of its own; an error of the source at its place (after the items before it);
    a consumer that stops early stops the thread (the source is not drained)."""
    import threading

    from psc_eval.runner import _prefetch

    made_on = []

    def source(n, fail_at=None):
        for i in range(n):
            if i == fail_at:
                raise ValueError(f"broken item {i}")
            made_on.append(threading.current_thread().name)
            yield i

    assert list(_prefetch(source(7))) == list(range(7))
    assert set(made_on) == {"psc-load"}
    got = []
    with pytest.raises(ValueError, match="broken item 3"):
        for x in _prefetch(source(9, fail_at=3)):
            got.append(x)  # noqa: PERF402 - the items before the error, one by one
    assert got == [0, 1, 2]
    made_on.clear()
    it = _prefetch(source(1000), depth=2)
    assert [next(it), next(it)] == [0, 1]
    it.close()  # joins the thread
    assert len(made_on) <= 2 + 2 + 1  # taken, queued, one blocked on a full queue
    assert not any(t.name == "psc-load" for t in threading.enumerate())


def test_threaded_run_loads_beside_the_judge(monkeypatch):
    """With the scoring thread on (and no loader workers) the batches are rendered on the
    loading thread, and the numbers are the inline run's."""
    import threading

    from psc_eval.data import base

    where = set()
    real = base.collate

    def spy(samples):
        where.add(threading.current_thread().name)
        return real(samples)

    monkeypatch.setattr(base, "collate", spy)
    import psc_eval.data as data_pkg
    monkeypatch.setattr(data_pkg, "collate", spy)
    got = {}
    for mode in ("0", "1"):
        monkeypatch.setenv("PSC_SCORE_THREAD", mode)
        where.clear()
        got[mode] = evaluate_rows([TiltColorizer()], toy(), ChromaJudge(), batch_size=2,
                                  progress=False, cache=False)[0].to_json()["metrics"]
        assert where == ({"psc-load"} if mode == "1" else {threading.main_thread().name})
    assert got["0"] == got["1"]


def test_cache_repeat_is_free_and_equal_and_no_cache_equal(psc_home):
    ds = toy()
    judge = ChromaJudge()
    first = evaluate_rows(["gray", TiltColorizer(), "gt"], ds, judge, batch_size=3,
                          progress=False)
    calls = judge.calls
    again = evaluate_rows(["gray", TiltColorizer(), "gt"], ds, judge, batch_size=3,
                          progress=False)
    assert judge.calls == calls  # nothing segmented again
    fresh = evaluate_rows(["gray", TiltColorizer(), "gt"], ds, ChromaJudge(), batch_size=3,
                          progress=False, cache=False)
    for a, b, c in zip(first, again, fresh):
        # JSON form: a NaN (gray's pollution_bleed) compares equal to itself there
        assert a.to_json()["metrics"] == b.to_json()["metrics"] == c.to_json()["metrics"]
        assert b.provenance["cache_stats"] == {"images_colorized": 0, "images_from_cache": N}
    assert first[1].provenance["cache_stats"]["images_colorized"] == N
    ab_dirs = list((psc_home / "cache" / "eval" / "ab").iterdir())
    assert len(ab_dirs) == 1  # only the tilt row stores chroma; gray / gt are recomputed
    assert len(list(ab_dirs[0].glob("*.pt"))) == 3  # one shard per batch (7 images, batch 3)


def test_interrupted_run_resumes_with_identical_result(tmp_path, monkeypatch, scoring):
    ds = toy()
    counter = tmp_path / "count.txt"
    monkeypatch.setenv("PSC_TEST_COUNTER", str(counter))

    class Interrupting(TiltColorizer):
        name = "tilt"  # same cache key as TiltColorizer... except the class path
        calls = 0

        def colorize(self, L, n_samples=1, *, generator=None):
            Interrupting.calls += 1
            if Interrupting.calls == 3:
                raise KeyboardInterrupt
            return super().colorize(L, n_samples, generator=generator)

    with pytest.raises(KeyboardInterrupt):
        evaluate(Interrupting(), ds, ChromaJudge(), batch_size=2, progress=False)
    done = sum(map(int, counter.read_text().split()))
    assert done == 4  # two batches of 2 finished and were cached
    counter.write_text("")
    r = evaluate(Interrupting(), ds, ChromaJudge(), batch_size=2, progress=False)
    assert sum(map(int, counter.read_text().split())) == N - 4
    assert r.provenance["cache_stats"] == {"images_colorized": N - 4, "images_from_cache": 4}
    full = evaluate(TiltColorizer(), ds, ChromaJudge(), batch_size=2, progress=False,
                    cache=False)
    assert r.metrics == full.metrics


def test_limit_runs_share_cached_batches_with_longer_runs():
    ds = toy()
    evaluate(TiltColorizer(), ds, ChromaJudge(), batch_size=2, limit=5, progress=False)
    r = evaluate(TiltColorizer(), ds, ChromaJudge(), batch_size=2, progress=False)
    # batches [0,2) and [2,4) are shared; [4,5) of the short run is not the batch [4,6)
    assert r.provenance["cache_stats"] == {"images_colorized": N - 4, "images_from_cache": 4}
    full = evaluate(TiltColorizer(), ds, ChromaJudge(), batch_size=2, progress=False,
                    cache=False)
    assert r.metrics == full.metrics


def test_code_identity_follows_the_modules_a_colorizer_imports(tmp_path, monkeypatch):
    """Editing a module the colorizer's file imports (here inside a method, as lazy
    imports are) gives a new code identity, so a new cache key; an unrelated module of the
    same package does not."""
    import importlib

    from psc_eval.identity import code_sha256, imported_modules

    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "helper.py").write_text("SCALE = 8.0\n")
    (pkg / "unrelated.py").write_text("X = 1\n")
    (pkg / "col.py").write_text(
        "class Col:\n"
        "    def colorize(self, L, n_samples=1, *, generator=None):\n"
        "        from .helper import SCALE\n"
        "        return SCALE\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    col = importlib.import_module("mypkg.col").Col
    assert set(imported_modules(str(pkg / "col.py"), "mypkg.col")) == {"mypkg",
                                                                         "mypkg.helper"}
    before = code_sha256(col)
    (pkg / "unrelated.py").write_text("X = 22\n")
    assert code_sha256(col) == before
    (pkg / "helper.py").write_text("SCALE = 30.0\n")
    assert code_sha256(col) != before
    # A script outside any package (README's mycolor.py): the modules of its folder count.
    (tmp_path / "solonet.py").write_text("W = 1\n")
    (tmp_path / "solo.py").write_text("import torch\nimport solonet\n\n\nclass Solo:\n"
                                      "    pass\n")
    solo = importlib.import_module("solo").Solo
    assert set(imported_modules(str(tmp_path / "solo.py"), "solo")) == {"solonet"}
    before = code_sha256(solo)
    (tmp_path / "solonet.py").write_text("W = 22\n")
    assert code_sha256(solo) != before
    # The paper's model: its sampler and network are part of its identity, the harness's
    # training loop is not.
    from psc_eval.colorizer import resolve_colorizer_class

    ours = resolve_colorizer_class("ours")
    mods = imported_modules(sys.modules[ours.__module__].__file__, ours.__module__)
    assert {"psc_eval.models.sampling", "psc_eval.models.network", "psc_eval.models.dmol",
            "psc_eval.models.pixelcnn"} <= set(mods)
    assert not any(m.startswith("psc_eval.") and not m.startswith("psc_eval.models")
                   for m in mods)


def test_stochastic_seeding_per_batch_and_resume():
    ds = toy(5)
    a = evaluate(NoisyColorizer(), ds, metrics=("psnr",), batch_size=2, seed=3, progress=False,
                 cache=False)
    b = evaluate(NoisyColorizer(), ds, metrics=("psnr",), batch_size=2, seed=3, progress=False)
    c = evaluate(NoisyColorizer(), ds, metrics=("psnr",), batch_size=2, seed=4, progress=False,
                 cache=False)
    assert a.metrics == b.metrics and a.metrics["psnr"] != c.metrics["psnr"]
    assert a.segmenter == "none" and a.kind == "psnr" and "miou" not in a.metrics
    assert batch_seed(3, 0) != batch_seed(3, 2) and batch_seed(3, 2) == batch_seed(3, 2)


def test_sample_zero_is_the_same_with_or_without_diversity():
    """Asking for a second sample (diversity) leaves sample 0, and every metric scored on
    it, bit-identical; the second sample comes from its own stream."""
    ds = get_dataset("toy", split="val", size=64, n_images=5)  # MS-SSIM needs > 32 px
    one = evaluate(NoisyColorizer(), ds, ChromaJudge(), metrics=("miou", "psnr"), batch_size=2,
                   seed=3, progress=False, cache=False)
    two = evaluate(NoisyColorizer(), ds, ChromaJudge(), metrics=("miou", "psnr", "diversity"),
                   batch_size=2, seed=3, progress=False)
    for k in ("miou", "psnr", "psnr_ab", "pixel_accuracy"):
        assert two.metrics[k] == one.metrics[k], k
    assert two.metrics["diversity_msssim"] < 0.9  # two different draws, not sample 0 twice
    # What draw_samples returns: sample 0 = the one-sample draw, sample 1 = stream 1's draw.
    L = torch.zeros(2, 1, 8, 8)
    got = draw_samples(NoisyColorizer(), L, torch.zeros(2, 2, 8, 8), 2, 3, 4, "cpu",
                       ["a", "b"], "noisy")
    g0 = torch.Generator().manual_seed(batch_seed(3, 4))
    g1 = torch.Generator().manual_seed(batch_seed(3, 4, stream=1))
    assert torch.equal(got[:, :1], NoisyColorizer().colorize(L, 1, generator=g0))
    assert torch.equal(got[:, 1:], NoisyColorizer().colorize(L, 1, generator=g1))
    assert batch_seed(3, 4, stream=1) != batch_seed(3, 4) == batch_seed(3, 4, stream=0)


@pytest.mark.parametrize("mode,word", [("nan", "NaN or infinite"), ("range", "out-of-range")])
def test_bad_colorizer_output_names_image_and_keeps_cache(mode, word, monkeypatch, psc_home,
                                                          scoring):
    monkeypatch.setenv("PSC_TEST_BAD", mode)
    ds = toy()
    with pytest.raises(ColorizerOutputError) as e:
        evaluate(BadColorizer(), ds, ChromaJudge(), batch_size=2, progress=False)
    msg = e.value.one_line()
    assert "'toy-val-00003'" in msg and word in msg and "\n" not in str(e.value)
    # The first batch's chroma and scores stay cached; nothing of the bad batch was written.
    ab = list((psc_home / "cache" / "eval" / "ab").glob("*/*.pt"))
    assert [p.name for p in ab] == ["00000000-00002.pt"]
    scores = list((psc_home / "cache" / "eval" / "scores").glob("*/*.pt"))
    assert [p.name for p in scores] == ["00000000-00002.pt"]


def test_scorers_without_the_judge_run_beside_it_and_see_no_labels(monkeypatch):
    """The loop runs the scorers that do not read the judge before it (on the scoring
    thread, beside the judge call of the same batch), with ``pred=None``; the mIoU
    scorer runs after it, with the labels. The judge below waits for the early scoring
    of its own batch, which only finishes if it was started before the judge."""
    import threading

    from psc_eval import runner

    seen = []
    early_done: dict[int, threading.Event] = {}
    real = runner._score

    def spy(r, ctx, judged):
        out = real(r, ctx, judged)
        seen.append((judged, sorted(out), ctx.pred is None))
        if not judged:
            early_done.setdefault(ctx.start, threading.Event()).set()
        return out

    class WaitingJudge(ChromaJudge):
        def predict(self, rgb):
            start = self.calls * 2  # batch size 2: the batch's first index
            waited.append(early_done.setdefault(start, threading.Event()).wait(10))
            return super().predict(rgb)

    monkeypatch.setattr(runner, "_score", spy)
    monkeypatch.setenv("PSC_SCORE_THREAD", "1")
    waited: list[bool] = []
    res = evaluate(TiltColorizer(), toy(), WaitingJudge(), batch_size=2, progress=False,
                   cache=False)
    assert waited == [True] * 4  # every batch's early scoring ran before its judge returned
    assert ([x for x in seen if not x[0]] ==
            [(False, ["pollution", "psnr", "semantic"], True)] * 4)
    assert [x for x in seen if x[0]] == [(True, ["miou"], False)] * 4
    monkeypatch.setenv("PSC_SCORE_THREAD", "0")
    inline = evaluate(TiltColorizer(), toy(), ChromaJudge(), batch_size=2, progress=False,
                      cache=False)
    assert res.to_json()["metrics"] == inline.to_json()["metrics"]


def test_a_failed_draw_of_the_next_chunk_keeps_the_judged_batches(monkeypatch, psc_home,
                                                                 scoring):
    """Whole-split batching draws the next chunk's samples while the last batch of this
    chunk waits for its judge: a colorizer error there is raised only after that batch is
    judged, scored and stored (nothing computed is lost)."""
    class PartsColorizer(NoisyColorizer):
        name = "parts"

        def __init__(self):
            self.part_calls = 0

        def colorize_parts(self, Ls, n_samples=1, *, generators):
            self.part_calls += 1
            if self.part_calls == 2:
                raise RuntimeError("out of memory")
            return [self.colorize(L, n_samples, generator=g) for L, g in zip(Ls, generators)]

    with pytest.raises(ColorizerOutputError, match="out of memory"):
        evaluate(PartsColorizer(), toy(), ChromaJudge(), batch_size=2, sample_batches=2,
                 progress=False)
    scores = sorted(p.name for p in (psc_home / "cache" / "eval" / "scores").glob("*/*.pt"))
    assert scores == ["00000000-00002.pt", "00000002-00002.pt"]  # the whole first chunk


def test_check_ab_shapes_and_slack():
    ids = ["a", "b"]
    ok = torch.zeros(2, 1, 2, 4, 4)
    assert check_ab(ok, ids, 1, "x") is ok
    ok[0, 0, 0, 0, 0] = 129.9  # inside the documented 2-unit slack over 128
    check_ab(ok, ids, 1, "x")
    for bad in (torch.zeros(2, 2, 4, 4), torch.zeros(2, 1, 3, 4, 4), torch.zeros(1, 1, 2, 4, 4),
                torch.zeros(2, 1, 2, 4, 4, dtype=torch.int64)):
        with pytest.raises(ColorizerOutputError, match="'a'"):
            check_ab(bad, ids, 1, "x")
    low = torch.zeros(2, 1, 2, 4, 4)
    low[1, 0, 1, 2, 2] = -129.5
    with pytest.raises(ColorizerOutputError, match="'b'"):
        check_ab(low, ids, 1, "x")


def test_limit_masks_and_class_mismatch_errors(tmp_path):
    ds = toy()
    with pytest.raises(PscError, match="--limit must be >= 1"):
        evaluate("gray", ds, ChromaJudge(), limit=0, progress=False)
    r = evaluate("gray", ds, ChromaJudge(), limit=2, progress=False)
    assert r.metrics["num_images"] == 2 and len(ds) == N  # the caller's dataset is untouched
    judge = ChromaJudge()
    judge.num_classes = 21
    with pytest.raises(PscError, match="predicts 21 classes"):
        evaluate("gray", ds, judge, progress=False)


def test_two_process_gloo_equals_one_process(tmp_path):
    """A 2-rank gloo run of the CLI (5 images: not divisible by 2) equals 1 process."""
    args = ["miou", "--colorizer", "runner_standins:TiltColorizer", "--segmenter",
            "runner_standins:ChromaJudge", "--limit", "5", "--batch-size", "2", "--size",
            str(SIZE), "--no-cache", "--quiet"]
    ranks = run_ranks([*args, "--out", str(tmp_path / "two")], tmp_path / "home",
                      pythonpath=HERE, timeout=120)
    assert [rc for rc, _, _ in ranks] == [0, 0], ranks
    assert "colorized" in ranks[0][1] and ranks[1][1] == ""  # only rank 0 reports

    from psc_eval.cli import main

    with pytest.raises(SystemExit) as e:
        main([*args, "--out", str(tmp_path / "one")])
    assert e.value.code == 0
    files = sorted((tmp_path / "one").rglob("*.json"))
    assert len(files) == 3
    for f in files:
        one = json.loads(f.read_text())
        two = json.loads((tmp_path / "two" / f.relative_to(tmp_path / "one")).read_text())
        assert two["provenance"]["world_size"] == 2 and one["provenance"]["world_size"] == 1
        assert one["metrics"].keys() == two["metrics"].keys()
        for k, v in one["metrics"].items():  # every metric to the last digit
            w = two["metrics"][k]
            assert w == v or (math.isnan(v) and math.isnan(w)), k
        assert one["per_class_iou"] == two["per_class_iou"]
        assert one["histograms"] == two["histograms"]


def test_a_bad_image_on_one_rank_ends_both_ranks_with_one_line(tmp_path):
    """A corrupt image in rank 1's shard: both ranks end within seconds, one error line."""
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(
            folder / f"im{i}.png")
    (folder / "im1.png").write_bytes(b"not a png")  # batch 1 (batch size 1): rank 1
    args = ["psnr", "--colorizer", "gray", "--dataset", "folder", "--root", str(folder),
            "--batch-size", "1", "--no-cache", "--quiet", "--out", str(tmp_path / "out")]
    t0 = time.time()
    ranks = run_ranks(args, tmp_path / "home", timeout=60)
    assert time.time() - t0 < 30
    assert [rc for rc, _, _ in ranks] == [2, 2], ranks
    outs = [(o, e) for _, o, e in ranks]
    errs = [line for _, err in outs for line in err.strip().splitlines()]
    assert len(errs) == 1 and errs[0].startswith("psc-eval: error: cannot decode image"), outs
    assert "im1.png" in errs[0] and "Traceback" not in "".join(e for _, e in outs)
    assert not list((tmp_path / "out").rglob("*.json"))
