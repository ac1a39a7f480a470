"""The console summary of ``psc-eval miou`` / ``psc-eval psnr``: a Fig. 8-style table."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import REFERENCE_ROWS
from ..results import RunResult

ROW_LABELS = {"gray": "gray", "gt": "colour (gt)"}
# (metric, header, width) of the scorers beyond Table 3, shown when the run has them
EXTRA_COLUMNS = (("semantic_accuracy", "sem.acc", 9), ("semantic_loglik", "sem.ll", 8),
                 ("pollution_spread", "spread", 9), ("pollution_boundary", "bound.", 8),
                 ("pollution_bleed", "bleed", 8), ("diversity_msssim", "MS-SSIM", 9))


def _ci(m: dict[str, Any], key: str, digits: int) -> str:
    lo, hi = m.get(f"{key}_ci_low"), m.get(f"{key}_ci_high")
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return "-"
    return f"[{lo:.{digits}f}, {hi:.{digits}f}]"


@dataclass
class EvalSummary:
    """What ``run_eval`` returns: the rows' results, the files written, the dataset."""

    kind: str
    results: list[RunResult]
    paths: list[Path]
    dataset: Any

    def text(self) -> str:
        return format_summary(self)


def format_summary(s: EvalSummary) -> str:
    """Fig. 8-style table: gray / colorized / colour (gt) rows, skipped images, cache use."""
    first = s.results[0]
    fp = first.provenance["dataset_fingerprint"]
    head = (f"psc-eval {s.kind}: {first.dataset}/{first.split}, {fp['num_images']} images "
            f"at {fp['size']} px, seed {first.seed}")
    has_miou, has_psnr = "miou" in first.metrics, "psnr" in first.metrics
    if first.segmenter != "none":  # a judge scored this run
        sha = first.provenance.get("judge_weights_sha256")
        head += f", judge {first.segmenter}" + (f" (sha256 {sha[:12]})" if sha else "")
    lines = [head]
    has_ci = "miou_ci_low" in first.metrics or "psnr_ci_low" in first.metrics
    extra = [(k, h, w) for k, h, w in EXTRA_COLUMNS if k in first.metrics]
    cols = f"  {'row':<22}" + (f"{'mIoU':>8}" if has_miou else "") + \
        (f"{'[95% CI]':>18}" if has_miou and "miou_ci_low" in first.metrics else "") + \
        (f"{'PSNR RGB (dB)':>15}" if has_psnr else "") + \
        (f"{'[95% CI]':>16}" if has_psnr and "psnr_ci_low" in first.metrics else "") + \
        (f"{'PSNR ab (dB)':>14}" if has_psnr else "") + "".join(f"{h:>{w}}" for _, h, w in extra)
    lines.append(cols)
    for r in s.results:
        label = ROW_LABELS.get(r.colorizer, r.colorizer)
        line = f"  {label:<22}"
        if has_miou:
            line += f"{r.metrics['miou']:>8.4f}"
            if "miou_ci_low" in r.metrics:
                line += f"{_ci(r.metrics, 'miou', 4):>18}"
        for key, width in (("psnr", 15), ("psnr_ab", 14)) if has_psnr else ():
            v, n_inf = r.metrics[key], r.metrics[f"{key}_n_infinite"]
            # no finite image at all: every image identical, print inf, not nan
            line += f"{'inf' if math.isnan(v) and n_inf else f'{v:.2f}':>{width}}"
            if key == "psnr" and "psnr_ci_low" in r.metrics:
                line += f"{_ci(r.metrics, 'psnr', 2):>16}"
        for k, _, w in extra:
            v = r.metrics.get(k)
            line += f"{'-' if v is None or math.isnan(v) else f'{v:.3f}':>{w}}"
        if r.metrics.get("psnr_n_infinite"):
            line += f"  ({r.metrics['psnr_n_infinite']} identical images, PSNR inf, not averaged)"
        lines.append(line)
    if has_ci:
        b = first.provenance.get("bootstrap") or {}
        lines.append(f"95% intervals: bootstrap over images, {b.get('resamples')} resamples, "
                     f"seed {b.get('seed')}")
    if extra:
        lines.append("sem.acc: segments with plausible chroma for their class; spread: "
                     "within-segment chroma variance / truth's; bound.: chroma change on "
                     "true boundaries / truth's; bleed: boundary-vs-interior change / "
                     "truth's (1 = as the truth)")
    sk = first.skipped
    reasons = Counter(x["reason"] for x in sk)
    lines.append(f"skipped {len(sk)} images" + (
        " (" + "; ".join(f"{v}x {k}" for k, v in reasons.items()) + ")" if sk else ""))
    main = [r for r in s.results if r.colorizer not in REFERENCE_ROWS] or s.results
    for r in main:
        st = r.provenance["cache_stats"]
        lines.append(f"{r.colorizer}: colorized {st['images_colorized']} images, "
                     f"{st['images_from_cache']} from cache")
    if s.paths:
        lines.append(f"wrote {len(s.paths)} results: " + ", ".join(map(str, s.paths)))
    return "\n".join(lines)
