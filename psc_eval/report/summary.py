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
    cols = f"  {'row':<22}" + (f"{'mIoU':>8}" if has_miou else "") + \
        (f"{'PSNR RGB (dB)':>15}{'PSNR ab (dB)':>14}" if has_psnr else "")
    lines.append(cols)
    for r in s.results:
        label = ROW_LABELS.get(r.colorizer, r.colorizer)
        line = f"  {label:<22}"
        if has_miou:
            line += f"{r.metrics['miou']:>8.4f}"
        for key, width in (("psnr", 15), ("psnr_ab", 14)) if has_psnr else ():
            v, n_inf = r.metrics[key], r.metrics[f"{key}_n_infinite"]
            # no finite image at all: every image identical, print inf, not nan
            line += f"{'inf' if math.isnan(v) and n_inf else f'{v:.2f}':>{width}}"
        if r.metrics.get("psnr_n_infinite"):
            line += f"  ({r.metrics['psnr_n_infinite']} identical images, PSNR inf, not averaged)"
        lines.append(line)
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
