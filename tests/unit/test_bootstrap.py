"""Bootstrap intervals (mIoU from per-image confusion counts, PSNR), paired comparison,
seed aggregation: the interval holds the point estimate, shrinks with more images, is
pinned on a fixed seed, and does not depend on the order of the rows."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from psc_eval.metrics.bootstrap import (
    bootstrap_mean,
    bootstrap_miou,
    canonical,
    image_keys,
    mean_finite,
    miou_from_counts,
    paired_test,
)
from psc_eval.metrics.confusion import confusion_scores
from psc_eval.metrics.miou import per_image_counts


def counts(n: int, seed: int, C: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    gt = rng.integers(50, 150, size=(n, C))
    tp = (gt * rng.uniform(0.4, 0.9, size=(n, C))).astype(int)
    pr = tp + rng.integers(0, 40, size=(n, C))
    return np.concatenate([tp, gt, pr], 1)


def test_per_image_counts_sum_to_the_confusion_matrix():
    g = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 4, (5, 9, 7), generator=g)
    mask = torch.randint(0, 4, (5, 9, 7), generator=g)
    mask[0, :3] = 255
    rows = per_image_counts(pred, mask, 4).to(torch.int64)  # (5, 12)
    from psc_eval.metrics.confusion import confusion_counts

    mat = confusion_counts(pred, mask, 4)
    s = rows.sum(0)
    assert torch.equal(s[:4], mat.diag()) and torch.equal(s[4:8], mat.sum(1))
    assert torch.equal(s[8:], mat.sum(0))
    assert float(miou_from_counts(s.numpy().astype(float))) == confusion_scores(mat)["miou"]


def test_interval_holds_point_and_shrinks():
    small, large = counts(30, 1), counts(1200, 1)
    for rows in (small, large):
        ci = bootstrap_miou(rows, 1000, 0)
        point = float(miou_from_counts(rows.sum(0).astype(float)))
        assert ci["low"] < point < ci["high"]
    w_small = np.subtract(*reversed(list(bootstrap_miou(small, 1000, 0).values())))
    w_large = np.subtract(*reversed(list(bootstrap_miou(large, 1000, 0).values())))
    assert w_large < w_small / 3  # ~ 1/sqrt(40) of the width
    v = np.random.default_rng(2).normal(20, 3, 2000)
    a, b = bootstrap_mean(v[:40], 1000, 0), bootstrap_mean(v, 1000, 0)
    assert a["low"] < v[:40].mean() < a["high"] and b["low"] < v.mean() < b["high"]
    assert b["high"] - b["low"] < (a["high"] - a["low"]) / 3


def test_pinned_on_fixed_seed():
    assert bootstrap_miou(counts(40, 1), 500, 0) == {"low": 0.5167236623689998,
                                                     "high": 0.5573212079317896}
    v = np.random.default_rng(2).normal(20, 3, 40)
    assert bootstrap_mean(v, 500, 0) == {"low": 19.17384583519464, "high": 20.807312248757103}
    assert bootstrap_miou(counts(40, 1), 500, 1) != bootstrap_miou(counts(40, 1), 500, 0)


def test_infinite_values_are_not_averaged():
    v = np.array([10.0, 12.0, math.inf, 14.0])
    ci = bootstrap_mean(v, 400, 0)
    assert 10.0 <= ci["low"] <= 12.0 <= ci["high"] <= 14.0
    assert all(math.isnan(x) for x in bootstrap_mean(np.full(5, math.inf), 100, 0).values())


def test_canonical_order_makes_rows_order_free():
    ids = [f"im{i}" for i in range(30)]
    rows = torch.from_numpy(counts(30, 3))
    perm = torch.randperm(30, generator=torch.Generator().manual_seed(1))
    k1, r1 = canonical(image_keys(ids), rows)
    k2, r2 = canonical(image_keys([ids[i] for i in perm]), rows[perm])
    assert torch.equal(k1, k2) and torch.equal(r1, r2)
    assert bootstrap_miou(r1, 300, 0) == bootstrap_miou(r2, 300, 0)


def test_paired_test():
    a = counts(200, 4)
    same = paired_test(a, a, miou_from_counts, 500, 0)
    assert same["difference"] == 0.0 and same["p_value"] == 1.0 and not same["significant"]
    b = a.copy()
    C = 3
    b[:, :C] = (b[:, :C] * 0.8).astype(int)  # B loses a fifth of its intersections
    t = paired_test(a, b, miou_from_counts, 500, 0)
    assert t["difference"] > 0 and t["low"] > 0 and t["p_value"] == 1 / 501 and t["significant"]
    assert t["low"] < t["difference"] < t["high"]
    # PSNR-like values: a one-image shift is not significant
    x = np.random.default_rng(0).normal(20, 3, 50)
    rows = lambda v: np.stack([v, np.ones_like(v)], -1)
    y = x.copy()
    y[0] += 1
    t = paired_test(rows(x), rows(y), mean_finite, 500, 0)
    assert t["difference"] == pytest.approx(-1 / 50) and not t["significant"]


def test_compare_and_seed_aggregation_from_run_files(tmp_path):
    """Run JSONs of two rows: compare reads their per-image rows; seeds aggregate."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from runner_standins import ChromaJudge, TiltColorizer

    from psc_eval.colorizer import get_colorizer
    from psc_eval.data import get_dataset
    from psc_eval.report.confidence import aggregate_seeds, compare_runs, format_comparison
    from psc_eval.results import load_result, write_result
    from psc_eval.runner import evaluate_rows

    ds = get_dataset("toy", split="val", size=16, n_images=12)
    paths = []
    for seed in (0, 1):
        res = evaluate_rows([get_colorizer("gray"), TiltColorizer(), get_colorizer("gt")], ds,
                            ChromaJudge(), seed=seed, cache=False, progress=False,
                            metrics=("miou", "psnr"), bootstrap=200)
        paths.append([write_result(r, tmp_path) for r in res])
    c = compare_runs(paths[0][2], paths[0][0], resamples=500)
    assert c["n_images"] == 12 and c["miou"]["difference"] > 0
    gt, gray = load_result(paths[0][2]), load_result(paths[0][0])
    assert c["miou"]["difference"] == pytest.approx(gt.metrics["miou"] - gray.metrics["miou"],
                                                    abs=1e-12)
    assert "miou" in format_comparison(c)
    agg = {r["colorizer"]: r for r in aggregate_seeds([p for ps in paths for p in ps])}
    assert agg["tilt"]["seeds"] == [0, 1] and agg["tilt"]["n_seeds"] == 2
    assert agg["gray"]["miou_std"] == 0.0  # gray does not depend on the seed


def test_resample_counts_are_drawn_once_and_read_only():
    """The memoised resamples: the direct numpy draw, the same object for every interval
    of a run, and read-only (an interval cannot alter the next one's resamples)."""
    from psc_eval.metrics.bootstrap import resample_counts

    w = resample_counts(37, 200, 5)
    ref = np.random.default_rng(5).multinomial(37, np.full(37, 1 / 37), size=200)
    np.testing.assert_array_equal(w, ref)
    assert w.dtype == np.float64 and (w.sum(1) == 37).all()
    assert resample_counts(37, 200, 5) is w
    with pytest.raises(ValueError, match="read-only"):
        w[0, 0] = 3.0
