"""Benchmark: a ``psc-eval miou`` run on toy with mIoU + PSNR alone vs with the quality
scorers (semantic colour accuracy, colour pollution; bootstrap intervals in both), side
by side in one process, interleaved, the median of ``--repeats`` rounds, cache off.

Rows: gray, ``--colorizer`` (default gt: no model cost, so the ratio isolates the scoring
overhead on top of the judge; pass ``ours`` for a full run) and gt. Diversity is timed too
(``+diversity``), though it is not a default of ``miou``: it asks stochastic colorizers for
a second sample, whose cost belongs to the colorizer.

    python benchmarks/bench_metrics.py --limit 200 --repeats 7 --threads 1 [--colorizer ours]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time

import torch
from machine import cpu_name  # benchmarks/machine.py

from psc_eval.colorizer import get_colorizer
from psc_eval.data import get_dataset
from psc_eval.judge.build import build_segmenter, default_segmenter_name
from psc_eval.runner import evaluate_rows

SETS = {"miou+psnr": ("miou", "psnr"),
        "all (default miou)": ("miou", "psnr", "semantic", "pollution"),
        "+diversity": ("miou", "psnr", "semantic", "pollution", "diversity")}


def timed_updates(names) -> dict[str, float]:
    """Wrap each scorer class's ``update`` to add its seconds to the returned dict."""
    from psc_eval.metrics.base import SCORERS

    acc: dict[str, float] = {}
    for n in names:
        cls = SCORERS.get(n)
        acc[n] = 0.0

        def timed(self, ctx, _f=cls.update, _n=n):
            t0 = time.perf_counter()
            try:
                return _f(self, ctx)
            finally:
                acc[_n] += time.perf_counter() - t0

        cls.update = timed
    return acc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--colorizer", default="gt")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ds = get_dataset("toy", split="val")
    seg = build_segmenter(default_segmenter_name("toy"), None, ds.num_classes, "cpu", "toy", None)
    cols = [get_colorizer("gray"), get_colorizer(a.colorizer)] if a.colorizer != "gt" else \
        [get_colorizer("gray")]
    cols.append(get_colorizer("gt"))
    times: dict[str, list[float]] = {k: [] for k in SETS}
    update_s = timed_updates(SETS["+diversity"])
    per_round: dict[str, list[float]] = {k: [] for k in update_s}
    for _ in range(a.repeats):
        for name, metrics in SETS.items():
            for k in update_s:
                update_s[k] = 0.0
            t0 = time.perf_counter()
            evaluate_rows(cols, ds, seg, limit=a.limit, metrics=metrics, cache=False,
                          progress=False)
            times[name].append(time.perf_counter() - t0)
            if name == "+diversity":
                for k, v in update_s.items():
                    per_round[k].append(v)
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["miou+psnr"]
    out = {"machine": {"nproc": os.cpu_count(), "cpu": cpu_name(), "threads": a.threads,
                       "nproc_cmd": subprocess.run(["nproc"], capture_output=True,
                                                   text=True, check=False).stdout.strip()},
           "images": a.limit, "rows": [getattr(c, "name", "?") for c in cols],
           "repeats": a.repeats, "median_s": med,
           "ratio_vs_miou_psnr": {k: v / base for k, v in med.items()}, "all_s": times,
           # each scorer's own update() time in a run of all of them (less noisy than the
           # wall-clock ratio: the judge and colorizer cost is not in it)
           "scorer_update_median_s": {k: statistics.median(v) for k, v in per_round.items()}}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
