"""The console summary of ``psc-eval miou`` / ``psc-eval psnr``: a Fig. 8-style table.

It sits beside the runner (which returns it), below ``report/``: a run prints its summary
without importing the report."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import REFERENCE_ROWS
from .metrics.base import registered_columns
from .results import RunResult

ROW_LABELS = {"gray": "gray", "gt": "colour (gt)"}


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
    if first.segmenter != "none":  # a judge scored this run
        sha = first.provenance.get("judge_weights_sha256")
        head += f", judge {first.segmenter}" + (f" (sha256 {sha[:12]})" if sha else "")
    lines = [head]
    # the columns the run's scorers declare (psc_eval.metrics.base.Column)
    cols = [c for c in registered_columns() if c.summary and c.metric in first.metrics]
    has_ci = [c for c in cols if c.ci_width and f"{c.metric}_ci_low" in first.metrics]
    lines.append(f"  {'row':<22}" + "".join(
        f"{c.header:>{c.width}}" + (f"{'[95% CI]':>{c.ci_width}}" if c in has_ci else "")
        for c in cols))
    for r in s.results:
        label = ROW_LABELS.get(r.colorizer, r.colorizer)
        line = f"  {label:<22}"
        for c in cols:
            v = r.metrics.get(c.metric)
            if v is None or math.isnan(v):
                # no finite image at all: every image identical, print inf, not nan
                text = "inf" if r.metrics.get(f"{c.metric}_n_infinite") else "-"
            else:
                text = f"{v:.{c.digits}f}"
            line += f"{text:>{c.width}}"
            if c in has_ci:
                line += f"{_ci(r.metrics, c.metric, c.digits):>{c.ci_width}}"
        if r.metrics.get("psnr_n_infinite"):
            line += f"  ({r.metrics['psnr_n_infinite']} identical images, PSNR inf, not averaged)"
        lines.append(line)
    if has_ci:
        b = first.provenance.get("bootstrap") or {}
        lines.append(f"95% intervals: bootstrap over images, {b.get('resamples')} resamples, "
                     f"seed {b.get('seed')}")
    notes = [f"{c.header}: {c.note}" for c in cols if c.note]
    if notes:
        lines.append("; ".join(notes))
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
