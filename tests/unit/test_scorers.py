"""The scorer protocol: sum states that merge (cache shards, ranks), pinned against numpy;
a scorer registered from outside is run by the loop; n_samples reaches the colorizer."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from psc_eval.data import get_dataset
from psc_eval.dist import DistInfo
from psc_eval.metrics import PSNR_BIN_EDGES, SCORERS, ScoreContext, Scorer, Scores, build_scorers
from psc_eval.runner import evaluate, evaluate_rows

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runner_standins import ChromaJudge, NoisyColorizer, TiltColorizer

C, B, H, W = 5, 6, 8, 8


@pytest.fixture(autouse=True)
def psc_home(tmp_path, monkeypatch):
    monkeypatch.setenv("PSC_HOME", str(tmp_path / "home"))
    for k in ("PSC_TEST_COUNTER", "PSC_TEST_SLEEP", "PSC_TEST_BAD"):
        monkeypatch.delenv(k, raising=False)


@pytest.fixture
def registry(monkeypatch):
    """SCORERS with entries a test may add (the module's registry is restored after)."""
    monkeypatch.setattr(SCORERS, "_own", dict(SCORERS._entries))
    return SCORERS


def batch(seed: int = 0) -> dict:
    """A synthetic batch: random images and labels; image 2 is reproduced exactly (PSNR inf)."""
    g = torch.Generator().manual_seed(seed)
    true_u8 = torch.randint(0, 256, (B, 3, H, W), generator=g, dtype=torch.uint8)
    rgb_u8 = torch.randint(0, 256, (B, 3, H, W), generator=g, dtype=torch.uint8)
    rgb_u8[2] = true_u8[2]
    ab_true = torch.rand(B, 2, H, W, generator=g) * 200 - 100
    ab = (torch.rand(B, 1, 2, H, W, generator=g) * 200 - 100).to(torch.float16).float()
    ab[2, 0] = ab_true[2]
    mask = torch.randint(0, C, (B, H, W), generator=g)
    mask[:, 0, :3] = 255  # ignored pixels
    pred = torch.randint(0, C, (B, H, W), generator=g)
    return {"ids": [f"im{i}" for i in range(B)], "L": torch.rand(B, 1, H, W, generator=g) * 100,
            "ab": ab, "ab_true": ab_true, "rgb_u8": rgb_u8, "true_u8": true_u8, "mask": mask,
            "pred": pred}


def ctx_of(b: dict, sl: slice = slice(None)) -> ScoreContext:
    ids = b["ids"][sl]
    return ScoreContext(ids=ids, start=0, L=b["L"][sl], ab=b["ab"][sl], ab_true=b["ab_true"][sl],
                        rgb_u8=b["rgb_u8"][sl], true_u8=b["true_u8"][sl], mask=b["mask"][sl],
                        pred=b["pred"][sl])


def numpy_reference(b: dict) -> dict:
    t, p = b["mask"].numpy().ravel(), b["pred"].numpy().ravel()
    keep = t != 255
    mat = np.bincount(t[keep] * C + p[keep], minlength=C * C).reshape(C, C)

    def psnr(x, y, r):
        mse = ((x.astype(np.float64) - y.astype(np.float64)) ** 2).reshape(len(x), -1).mean(1)
        with np.errstate(divide="ignore"):
            return 10 * np.log10(r ** 2 / mse)

    v_rgb = psnr(b["rgb_u8"].numpy(), b["true_u8"].numpy(), 255.0)
    v_ab = psnr(b["ab"][:, 0].numpy(), b["ab_true"].numpy(), 255.0)
    fr, fa = np.isfinite(v_rgb), np.isfinite(v_ab)
    hist = np.histogram(np.clip(v_rgb[fr], 0, 60), bins=PSNR_BIN_EDGES)[0]
    # per-image rows of mIoU's bootstrap: intersection, truth, prediction per class
    tb, pb = b["mask"].numpy().reshape(len(t) // (H * W), -1), b["pred"].numpy().reshape(-1, H * W)
    rows = []
    for ti, pi in zip(tb, pb):
        k = ti != 255
        rows.append(np.concatenate([np.bincount(ti[k][ti[k] == pi[k]], minlength=C),
                                    np.bincount(ti[k], minlength=C),
                                    np.bincount(pi[k], minlength=C)]))
    from psc_eval.metrics.bootstrap import image_key

    return {"mat": mat, "rgb_values": v_rgb, "ab_values": v_ab, "rgb_hist": hist,
            "key": np.array([image_key(i) for i in b["ids"]]), "img_counts": np.array(rows),
            "v_rgb": v_rgb, "v_ab": v_ab, "fr": fr, "fa": fa}


@pytest.mark.parametrize("split", [1, 3, 5])
def test_merge_of_two_halves_equals_the_whole_and_numpy(split):
    b = batch()
    whole = build_scorers(["miou", "psnr"], C, [f"c{k}" for k in range(C)])
    halves = [build_scorers(["miou", "psnr"], C, [f"c{k}" for k in range(C)]) for _ in range(2)]
    for name, s in whole.items():
        s.update(ctx_of(b))
        halves[0][name].update(ctx_of(b, slice(0, split)))
        halves[1][name].update(ctx_of(b, slice(split, None)))
    ref = numpy_reference(b)
    for name, s in whole.items():
        merged = halves[0][name].empty().merge(halves[0][name]).merge(halves[1][name].state_dict())
        merged.all_reduce(DistInfo())  # one process: a no-op
        assert merged.state.keys() == s.state.keys()
        for k, v in s.state.items():
            assert torch.equal(merged.state[k], v), k  # cat states in order, sums exact
            if v.is_floating_point():
                np.testing.assert_allclose(v.numpy(), ref[k], rtol=1e-12)
            else:
                np.testing.assert_array_equal(v.numpy(), ref[k])
        # merged in the other order: the exactly rounded mean does not move a digit
        other = halves[1][name].empty().merge(halves[1][name]).merge(halves[0][name])
        assert other.compute().metrics == s.compute().metrics
    assert int(torch.isinf(whole["psnr"].state["rgb_values"]).sum()) == 1
    miou = whole["miou"].compute()
    tp = np.diag(ref["mat"])
    iou = tp / (ref["mat"].sum(0) + ref["mat"].sum(1) - tp)
    assert miou.metrics["miou"] == pytest.approx(float(iou.mean()), abs=1e-15)
    assert list(miou.per_class) == [f"c{k}" for k in range(C)]
    ps = whole["psnr"].compute()
    fin = np.isfinite(ref["v_rgb"])
    assert ps.metrics["psnr"] == pytest.approx(float(ref["v_rgb"][fin].mean()), rel=1e-14)
    assert ps.metrics["psnr"] == math.fsum(ref["v_rgb"][fin].tolist()) / int(fin.sum())
    fa = ref["fa"]
    va = whole["psnr"].state["ab_values"]
    assert ps.metrics["psnr_ab"] == math.fsum(va[torch.isfinite(va)].tolist()) / int(fa.sum())
    assert ps.metrics["psnr_ab"] == pytest.approx(float(ref["v_ab"][fa].mean()), rel=1e-12)
    assert ps.metrics["psnr_n_infinite"] == 1 and ps.metrics["psnr_n"] == B
    assert ps.histograms["psnr_rgb"]["counts"] == ref["rgb_hist"].tolist()


def test_merge_refuses_a_foreign_state():
    a, = build_scorers(["miou"], C).values()
    with pytest.raises(ValueError, match="shape"):
        a.merge({**a.state_dict(), "mat": torch.zeros(C + 1, C + 1, dtype=torch.int64)})
    with pytest.raises(ValueError, match="cannot merge"):
        a.merge({"other": torch.zeros(())})


def test_score_shards_serve_only_the_scorer_code_that_wrote_them(tmp_path, monkeypatch):
    """A cached batch state is merged only when every scorer's stored code identity is the
    current one: an edited formula (another identity) or a shard without identities (older
    cache) is recomputed, never merged."""
    import psc_eval.identity as identity_mod
    from psc_eval.cache import RowCache, scorer_code, shard_name

    b = batch(1)
    scorers = build_scorers(["miou", "psnr"], C)
    for sc in scorers.values():
        sc.update(ctx_of(b))
    rc = RowCache.open(tmp_path, ("ab", "score", {"ab": {}}), store_ab=False, enabled=True)
    fname = shard_name(0, len(b["ids"]))
    shard = {"all_ids": b["ids"], "ids": b["ids"], "skipped": [],
             "states": {n: sc.state_dict() for n, sc in scorers.items()},
             "code": {n: scorer_code(sc) for n, sc in scorers.items()}}
    rc.save_scores(fname, shard)
    rc.score_names.add(fname)
    assert rc.load_scores(fname, b["ids"], scorers) is not None
    # the identity follows the metrics sources: another digest for an edited file
    real = identity_mod._file_sha256
    monkeypatch.setattr(identity_mod, "_file_sha256",
                        lambda p: "edited" if p.endswith("psnr.py") else real(p))
    assert scorer_code(scorers["psnr"]) != shard["code"]["psnr"]
    assert rc.load_scores(fname, b["ids"], scorers) is None
    monkeypatch.undo()
    assert rc.load_scores(fname, b["ids"], scorers) is not None
    rc.save_scores(fname, {k: v for k, v in shard.items() if k != "code"})
    assert rc.load_scores(fname, b["ids"], scorers) is None


class CountScorer(Scorer):
    """A toy third metric: images seen and the mean of their L, plus which samples came."""

    seen: ClassVar[list] = []

    def init_state(self):
        return {"n": torch.zeros((), dtype=torch.int64),
                "L_sum": torch.zeros((), dtype=torch.float64)}

    def update(self, ctx):
        CountScorer.seen.append((ctx.colorizer, tuple(ctx.ab.shape)))
        self.state["n"] += len(ctx.ids)
        self.state["L_sum"] += ctx.L.to(torch.float64).mean(dim=(1, 2, 3)).sum().cpu()

    def compute(self):
        n = int(self.state["n"])
        return Scores(metrics={"count": n, "mean_L": float(self.state["L_sum"]) / max(n, 1)},
                      provenance={"count_convention": "images scored"})


def toy(n=5):
    return get_dataset("toy", split="val", size=16, n_images=n)


def test_a_registered_scorer_is_run_by_the_loop_and_cached(registry):
    registry.add("count", CountScorer, "toy: images scored")
    ds = toy()
    CountScorer.seen.clear()
    first = evaluate_rows(["gray", TiltColorizer()], ds, ChromaJudge(),
                          metrics=("miou", "psnr", "count"), batch_size=2, progress=False)
    assert [c for c, _ in CountScorer.seen] == ["gray", "tilt"] * 3  # 3 batches, 2 rows
    ref_L = float(np.mean([ds[i]["L"].double().mean() for i in range(len(ds))]))
    for r in first:
        assert r.metrics["count"] == 5 and r.metrics["mean_L"] == pytest.approx(ref_L, rel=1e-12)
        assert "miou" in r.metrics and "psnr" in r.metrics
        assert r.provenance["count_convention"] == "images scored"
        assert r.provenance["config"]["metrics"] == ["miou", "psnr", "count"]
    CountScorer.seen.clear()
    again = evaluate_rows(["gray", TiltColorizer()], ds, ChromaJudge(),
                          metrics=("miou", "psnr", "count"), batch_size=2, progress=False)
    assert CountScorer.seen == []  # every batch served from the score cache
    assert [r.metrics for r in again] == [r.metrics for r in first]
    # A run with fewer scorers is served by the same shards.
    fewer = evaluate(TiltColorizer(), ds, ChromaJudge(), metrics=("miou", "psnr"), batch_size=2,
                     progress=False)
    assert fewer.provenance["cache_stats"]["images_colorized"] == 0
    assert "count" not in fewer.metrics and fewer.metrics["miou"] == first[1].metrics["miou"]


class PairScorer(CountScorer):
    """Asks for two samples per image (as a diversity scorer does)."""

    n_samples = 2

    def update(self, ctx):
        super().update(ctx)
        assert ctx.n_samples == 2
        assert ctx.sample_rgb_u8(1).shape == ctx.rgb_u8.shape


class RecordingNoisy(NoisyColorizer):
    asked: ClassVar[list] = []

    def colorize(self, L, n_samples=1, *, generator=None):
        RecordingNoisy.asked.append(n_samples)
        return super().colorize(L, n_samples, generator=generator)


class RecordingTilt(TiltColorizer):
    asked: ClassVar[list] = []

    def colorize(self, L, n_samples=1, *, generator=None):
        RecordingTilt.asked.append(n_samples)
        return super().colorize(L, n_samples, generator=generator)


def test_a_scorer_asking_two_samples_makes_the_loop_ask_two(registry):
    registry.add("pair", PairScorer, "toy: needs 2 samples")
    ds = toy(4)
    RecordingNoisy.asked.clear()
    RecordingTilt.asked.clear()
    CountScorer.seen.clear()
    noisy, tilt = evaluate_rows([RecordingNoisy(), RecordingTilt()], ds,
                                metrics=("psnr", "pair"), batch_size=2, progress=False,
                                cache=False)
    # the stochastic colorizer gives two samples a batch: sample 0 alone, then sample 1
    assert RecordingNoisy.asked == [1, 1, 1, 1]
    assert RecordingTilt.asked == [1, 1]  # a deterministic one is asked once, repeated
    assert {shape[1] for _, shape in CountScorer.seen} == {2}
    assert noisy.provenance["config"]["n_samples"] == 2
    assert noisy.metrics["num_images"] == tilt.metrics["num_images"] == 4
    RecordingNoisy.asked.clear()  # without the pair scorer: one sample
    evaluate(RecordingNoisy(), ds, metrics=("psnr",), batch_size=2, progress=False, cache=False)
    assert RecordingNoisy.asked == [1, 1]


def test_unknown_scorer_is_one_line_error():
    from psc_eval.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="unknown scorer 'nosuch'.*--metrics"):
        evaluate("gray", toy(2), metrics=("nosuch",), progress=False)


# ----------------------------------------------------------------------------- contract
# Every registered scorer (a new one is covered without editing this file): merging the
# states of cache shards equals one pass over the batches, and the two-rank reduction
# (ranks hold round-robin batches; sums add, "cat" rows concatenate in rank order, which
# is what Scorer.all_reduce does) equals one process.

CC, CS = 10, 40  # toy's classes (the semantic scorer's toy law); MS-SSIM needs > 32 px


def contract_batch(seed: int) -> dict:
    from psc_eval.colorize import to_rgb_u8

    g = torch.Generator().manual_seed(100 + seed)
    n = 3 + seed % 3
    L = torch.rand(n, 1, CS, CS, generator=g) * 100
    ab_true = torch.rand(n, 2, CS, CS, generator=g) * 160 - 80
    ab = (torch.rand(n, 2, 2, CS, CS, generator=g) * 160 - 80).to(torch.float16).float()
    mask = torch.randint(0, CC, (n, 1, 1), generator=g).expand(n, CS, CS).clone()
    mask[:, CS // 2:, :] = torch.randint(0, CC, (n, 1, 1), generator=g)
    mask[:, :2, :5] = 255
    pred = torch.randint(0, CC, (n, CS, CS), generator=g)
    return {"ids": [f"b{seed}-{i}" for i in range(n)], "L": L, "ab": ab, "ab_true": ab_true,
            "rgb_u8": to_rgb_u8(L, ab[:, 0]), "true_u8": to_rgb_u8(L, ab_true), "mask": mask,
            "pred": pred}


def contract_ctx(b: dict) -> ScoreContext:
    # a fresh batch dict per context, as the loop has one per loaded batch
    return ScoreContext(ids=b["ids"], start=0, L=b["L"], ab=b["ab"], ab_true=b["ab_true"],
                        rgb_u8=b["rgb_u8"], true_u8=b["true_u8"], mask=b["mask"],
                        pred=b["pred"], batch={})


def contract_scorer(name: str) -> Scorer:
    from types import SimpleNamespace

    s = SCORERS.get(name)(num_classes=CC, class_names=[f"c{k}" for k in range(CC)])
    s.setup(SimpleNamespace(name="toy", size=CS, root=None), None)
    return s


def assert_same(a, b, where: str = "") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        if math.isnan(a) or math.isinf(a):
            assert (math.isnan(a) and math.isnan(b)) or a == b, where
        else:
            assert b == pytest.approx(a, rel=1e-12, abs=1e-12), where
    else:
        assert a == b, where


def assert_same_scores(a: Scores, b: Scores) -> None:
    for part in ("metrics", "histograms", "per_class", "per_class_metrics", "per_image",
                 "provenance"):
        assert_same(getattr(a, part), getattr(b, part), part)


@pytest.mark.parametrize("name", SCORERS.names())
def test_every_scorer_merges_shards_and_ranks_into_one_pass(name):
    batches = [contract_batch(k) for k in range(5)]
    one = contract_scorer(name)
    for b in batches:
        one.update(contract_ctx(b))
    want = one.compute()

    # cache shards: one state per batch, merged (as a resumed run does)
    shards = []
    for b in batches:
        s = contract_scorer(name).empty()
        s.update(contract_ctx(b))
        shards.append(s.state_dict())
    merged = contract_scorer(name).empty()
    for st in shards:
        merged.merge(st)
    for k, v in one.state.items():
        if v.is_floating_point():
            torch.testing.assert_close(merged.state[k], v, rtol=1e-12, atol=1e-12)
        else:
            assert torch.equal(merged.state[k], v), k
    assert_same_scores(want, merged.compute())
    # shards merged in another order: the same numbers
    backwards = contract_scorer(name).empty()
    for st in reversed(shards):
        backwards.merge(st)
    assert_same_scores(want, backwards.compute())

    # two ranks: batch i on rank i mod 2, each reduced on its own, then summed / gathered
    ranks = [contract_scorer(name), contract_scorer(name)]
    for i, b in enumerate(batches):
        ranks[i % 2].update(contract_ctx(b))
    for r in ranks:
        r.all_reduce(DistInfo())  # one process each: a no-op
    reduced = ranks[0].empty().merge(ranks[0]).merge(ranks[1])
    assert_same_scores(want, reduced.compute())
