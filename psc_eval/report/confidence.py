"""Confidence across rows and seeds, from run JSON files only.

* ``compare_runs(a, b)``: the paired difference a - b of two rows scored on the same
  images (``psc-eval compare A.json B.json``): mIoU recomputed from the per-image
  confusion counts each run keeps, PSNR from the per-image values; a paired-bootstrap 95%
  interval and a sign-flip permutation p-value (``psc_eval.metrics.bootstrap.paired_test``).
* ``aggregate_seeds(results)``: runs that differ only in ``--seed`` -> mean, sample
  standard deviation (ddof 1) and the seeds, per metric.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PscError
from ..metrics.bootstrap import mean_finite, miou_from_counts, paired_test
from ..results import RunResult, load_result

SEED_METRICS = ("miou", "psnr", "psnr_ab", "semantic_accuracy", "semantic_loglik",
                "pollution_spread", "pollution_boundary", "pollution_bleed", "diversity_msssim")


def _as_result(x: RunResult | str | Path) -> RunResult:
    return x if isinstance(x, RunResult) else load_result(x)


def miou_rows(r: RunResult) -> np.ndarray | None:
    """(N, 3C) dense per-image counts, in the order of ``per_image['key']``."""
    mc = r.per_image.get("miou_counts")
    if not mc:
        return None
    C, N = int(mc["num_classes"]), len(r.per_image["key"])
    out = np.zeros((N, 3, C), np.float64)
    for i, c, tp, gt, pr in mc["rows"]:
        out[i, :, c] = (tp, gt, pr)
    return out.reshape(N, 3 * C)


def _finite_rows(v: Sequence[float]) -> np.ndarray:
    a = np.array([np.nan if x is None else x for x in v], np.float64)
    f = np.isfinite(a)
    return np.stack([np.where(f, a, 0.0), f.astype(np.float64)], -1)


def compare_runs(a: RunResult | str | Path, b: RunResult | str | Path,
                 resamples: int = 10000, seed: int = 0) -> dict[str, Any]:
    """metric -> paired test of a - b (``difference``, ``low``, ``high``, ``p_value``...)."""
    ra, rb = _as_result(a), _as_result(b)
    where = f"{getattr(a, 'name', ra.colorizer)} vs {getattr(b, 'name', rb.colorizer)}"
    ka, kb = ra.per_image.get("key"), rb.per_image.get("key")
    if not ka or not kb:
        raise PscError(f"a run without per-image rows, in {where}, rerun it with this "
                       "psc-eval (older result files keep no per-image values)")
    if ka != kb:
        raise PscError(f"the two runs scored different images ({len(ka)} vs {len(kb)}), in "
                       f"{where}, compare rows of the same dataset, split and --limit")
    out: dict[str, Any] = {"a": ra.colorizer, "b": rb.colorizer, "n_images": len(ka)}
    ma, mb = miou_rows(ra), miou_rows(rb)
    if ma is not None and mb is not None:
        if ma.shape != mb.shape:
            raise PscError(f"the two runs have different class counts, in {where}, "
                           "compare runs of one judge")
        out["miou"] = paired_test(ma, mb, miou_from_counts, resamples, seed)
    for key in ("psnr", "psnr_ab"):
        if key in ra.per_image and key in rb.per_image:
            out[key] = _paired_psnr(ra.per_image[key], rb.per_image[key], resamples, seed)
    for t in out.values():
        if isinstance(t, dict):
            _settle(t)
    return out


def _paired_psnr(va: Sequence[float | None], vb: Sequence[float | None], resamples: int,
                 seed: int) -> dict[str, Any]:
    """PSNR convention of the paired test: an image whose PSNR is infinite (identical to
    its truth) or missing in EITHER run is left out of both, so the difference is a mean
    over the same images; how many were left out is part of the result."""
    a = np.array([np.nan if x is None else x for x in va], np.float64)
    b = np.array([np.nan if x is None else x for x in vb], np.float64)
    both = np.isfinite(a) & np.isfinite(b)
    if not both.any():
        t = {"difference": math.nan, "low": math.nan, "high": math.nan, "p_value": None,
             "resamples": int(resamples), "seed": int(seed), "level": 0.95,
             "significant": False}
    else:
        t = paired_test(_finite_rows(a[both]), _finite_rows(b[both]), mean_finite,
                        resamples, seed)
    t["n_images"], t["n_left_out"] = int(both.sum()), int((~both).sum())
    return t


def _settle(t: dict[str, Any]) -> None:
    """A difference or interval that is not a finite number is undefined: never
    significant, and its p-value means nothing."""
    nums = (t.get("difference"), t.get("low"), t.get("high"))
    t["defined"] = all(isinstance(x, float) and math.isfinite(x) for x in nums)
    if not t["defined"]:
        t["significant"] = False
        t["p_value"] = None


def comparison_json(c: dict[str, Any]) -> str:
    """``compare --json``: valid JSON (a NaN or infinity becomes null)."""
    def clean(x: Any) -> Any:
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        return [clean(v) for v in x] if isinstance(x, (list, tuple)) else x

    return json.dumps(clean(c), indent=1, allow_nan=False)


def format_comparison(c: dict[str, Any]) -> str:
    lines = [f"psc-eval compare: {c['a']} - {c['b']}, paired over {c['n_images']} images"]
    for key in ("miou", "psnr", "psnr_ab"):
        t = c.get(key)
        if t is None:
            continue
        d = 4 if key == "miou" else 2
        left = (f"  ({t['n_left_out']} images with an infinite PSNR in either run left out)"
                if t.get("n_left_out") else "")
        if not t.get("defined", True):
            lines.append(f"  {key:<8} undefined (no image scored in both runs){left}; "
                         "not significant")
            continue
        lines.append(f"  {key:<8} {t['difference']:+.{d}f}  95% CI [{t['low']:+.{d}f}, "
                     f"{t['high']:+.{d}f}]  p = {t['p_value']:.4f}  "
                     f"{'significant' if t['significant'] else 'not significant'}{left}")
    t = next((c[k] for k in ("miou", "psnr") if k in c), None)
    if t is not None:
        lines.append(f"paired bootstrap ({t['resamples']} resamples, seed {t['seed']}); "
                     "p: sign-flip permutation test; significant: p < 0.05 and 0 outside "
                     "the interval")
    return "\n".join(lines)


def aggregate_seeds(results: Iterable[RunResult | str | Path],
                    metrics: Sequence[str] = SEED_METRICS) -> list[dict[str, Any]]:
    """Group runs by (dataset, split, segmenter, colorizer, kind) and give each metric's
    mean, sample standard deviation (ddof 1; NaN for one seed) and the seeds."""
    groups: dict[tuple, list[RunResult]] = {}
    for x in results:
        r = _as_result(x)
        groups.setdefault((r.dataset, r.split, r.segmenter, r.colorizer, r.kind), []).append(r)
    out = []
    for (ds, split, seg, col, kind), rs in groups.items():
        row: dict[str, Any] = {"dataset": ds, "split": split, "segmenter": seg,
                               "colorizer": col, "kind": kind,
                               "seeds": sorted(r.seed for r in rs), "n_seeds": len(rs)}
        for m in metrics:
            v = np.array([float(r.metrics[m]) for r in rs
                          if r.metrics.get(m) is not None], np.float64)
            v = v[np.isfinite(v)]
            if not v.size:
                continue
            row[f"{m}_mean"] = float(v.mean())
            row[f"{m}_std"] = float(v.std(ddof=1)) if v.size > 1 else math.nan
        out.append(row)
    return out
