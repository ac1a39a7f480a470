"""Benchmark: the whole ``psc-eval miou`` pipeline vs the judge's pure forward time.

Measured side by side in one process, interleaved, the median of ``--repeats`` rounds:

* **judge**: ``segmenter.logits(x)`` over the same batches (same batch size), the inputs
  pre-built in memory (the toy val images as float RGB), nothing else;
* **pipeline**: ``runner.evaluate(gt, toy val, judge, cache=False)``: rendering / loading
  the images, Lab conversion, colorizer call and output checks, recombination with L,
  Lab -> RGB, uint8 quantisation, the judge, the confusion matrix and PSNR.

Then peak RSS of the pipeline for two dataset sizes, each in a fresh process (memory
must stay flat: predictions are streamed, never held).

Uses the trained toy judge under $PSC_HOME if there is one, else random weights of the
same architecture (timing does not depend on the weights).

    python benchmarks/bench_pipeline.py                      # toy val, 500 images
    python benchmarks/bench_pipeline.py --workers 1 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

from psc_eval.data import collate, get_dataset
from psc_eval.judge import default_segmenter, load_segmenter
from psc_eval.paths import judge_weights_path
from psc_eval.runner import evaluate


def build_judge(name: str):
    path = judge_weights_path("toy", name)
    weights = path if path.is_file() else None
    return load_segmenter(name, weights=weights, num_classes=10), weights is not None


def judge_time(seg, batches) -> float:
    t0 = time.perf_counter()
    with torch.inference_mode():
        for x in batches:
            seg.logits(x)
    return time.perf_counter() - t0


def pipeline_time(seg, ds, batch_size: int, workers: int) -> float:
    t0 = time.perf_counter()
    evaluate("gt", ds, seg, batch_size=batch_size, cache=False, workers=workers, progress=False)
    return time.perf_counter() - t0


def memory_probe(n: int, batch_size: int, workers: int, judge: str) -> None:
    seg, _ = build_judge(judge)
    ds = get_dataset("toy", split="val", n_images=n)
    evaluate("gt", ds, seg, batch_size=batch_size, cache=False, workers=workers, progress=False)
    # ru_maxrss is in KiB on Linux; children (DataLoader workers) counted separately.
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"n": n, "peak_rss_mib": own, "peak_rss_children_mib": kids}))


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=500, help="toy val images (500 = the whole split)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--judge", default=default_segmenter("toy"))
    ap.add_argument("--memory-sizes", default="200,1000",
                    help="dataset sizes for the peak-RSS probe ('' to skip)")
    ap.add_argument("--memory-probe", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_probe is not None:
        memory_probe(args.memory_probe, args.batch_size, args.workers, args.judge)
        return

    seg, trained = build_judge(args.judge)
    ds = get_dataset("toy", split="val", n_images=args.n)
    batches = []
    for s in range(0, len(ds), args.batch_size):
        b = collate([ds[i] for i in range(s, min(s + args.batch_size, len(ds)))])
        batches.append(b["rgb"].contiguous())
    judge_time(seg, batches[:2])  # warm-up (allocator, oneDNN kernels)
    pipeline_time(seg, get_dataset("toy", split="val", n_images=2 * args.batch_size),
                  args.batch_size, args.workers)

    tj, tp = [], []
    for _ in range(args.repeats):
        tj.append(judge_time(seg, batches))
        tp.append(pipeline_time(seg, ds, args.batch_size, args.workers))
    mj, mp = statistics.median(tj), statistics.median(tp)
    res = {
        "images": len(ds), "size": ds.size, "batch_size": args.batch_size,
        "workers": args.workers, "torch_threads": torch.get_num_threads(),
        "judge": args.judge, "judge_weights": "trained" if trained else "random",
        "nproc": subprocess.run(["nproc"], capture_output=True, text=True,
                                check=False).stdout.strip(),
        "cpu": cpu_name(), "torch": torch.__version__,
        "judge_s": tj, "pipeline_s": tp, "judge_median_s": mj, "pipeline_median_s": mp,
        "ratio": mp / mj, "judge_img_per_s": len(ds) / mj, "pipeline_img_per_s": len(ds) / mp,
        "load_avg_1min": _loadavg(),
    }
    mem = []
    for n in [int(x) for x in args.memory_sizes.split(",") if x.strip()]:
        out = subprocess.run(
            [sys.executable, __file__, "--memory-probe", str(n), "--batch-size",
             str(args.batch_size), "--workers", str(args.workers), "--judge", args.judge],
            capture_output=True, text=True, check=True,
        ).stdout
        mem.append(json.loads(out.strip().splitlines()[-1]))
    res["memory"] = mem
    print(json.dumps(res, indent=2))


def _loadavg() -> float | None:
    try:
        return float(open("/proc/loadavg").read().split()[0])
    except OSError:
        return None


if __name__ == "__main__":
    main()
