"""Benchmark: the whole ``psc-eval miou`` pipeline vs the judge's pure forward time.

Measured side by side in one process, interleaved, the median of ``--repeats`` rounds:

* **judge**: ``segmenter.logits(x)`` over the same batches (same batch size), the inputs
  pre-built in memory (the toy val images as float RGB), nothing else;
* **pipeline**: ``runner.evaluate(gt, toy val, judge, cache=False)``: rendering / loading
  the images, Lab conversion, colorizer call and output checks, recombination with L,
  Lab -> RGB, uint8 quantisation, the judge and the default scorers (mIoU, PSNR, semantic
  colour accuracy, pollution), with the scorers on their own thread (``pipeline``,
  ``PSC_SCORE_THREAD=1``) and inline (``pipeline_inline``, ``PSC_SCORE_THREAD=0``).

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
import os
import resource
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager

import torch
from machine import cpu_name  # benchmarks/machine.py

from psc_eval.allocator import keep_freed_memory
from psc_eval.data import collate, get_dataset
from psc_eval.judge import default_segmenter, load_segmenter
from psc_eval.paths import judge_weights_path
from psc_eval.runner import evaluate


def build_judge(name: str):
    path = judge_weights_path("toy", name)
    weights = path if path.is_file() else None
    return load_segmenter(name, weights=weights, num_classes=10), weights is not None


def judge_time(seg, batches) -> tuple[float, float]:
    """(wall, process CPU) seconds of the judge alone over pre-built batches."""
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        for x in batches:
            seg.logits(x)
    return time.perf_counter() - t0, time.process_time() - c0


def pipeline_time(seg, ds, batch_size: int, workers: int,
                  thread: str | None = None) -> tuple[float, float, float]:
    """(wall, process CPU, wall inside the judge's calls) seconds of the whole runner
    (workers' CPU is not included); ``thread``: PSC_SCORE_THREAD for the run ("0" inline
    scoring, "1" a scoring thread, None the runner's choice). Wall minus the judge's calls
    is what the main thread spent outside the judge: setup, waiting for the first batch,
    the last batch's scoring, the end of the run."""
    before = os.environ.get("PSC_SCORE_THREAD")
    if thread is not None:
        os.environ["PSC_SCORE_THREAD"] = thread
    inside = [0.0]
    real = seg.predict

    def timed(x):
        t = time.perf_counter()
        try:
            return real(x)
        finally:
            inside[0] += time.perf_counter() - t

    seg.predict = timed
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        evaluate("gt", ds, seg, batch_size=batch_size, cache=False, workers=workers,
                 progress=False, device="cpu")
        return time.perf_counter() - t0, time.process_time() - c0, inside[0]
    finally:
        del seg.predict
        if before is None:
            os.environ.pop("PSC_SCORE_THREAD", None)
        else:
            os.environ["PSC_SCORE_THREAD"] = before


def breakdown(ds, batch_size: int, n_batches: int = 4) -> dict[str, float]:
    """CPU ms per image of each non-judge stage of the pipeline, on the main thread."""
    from psc_eval.color import lab_parts_to_rgb, to_uint8
    from psc_eval.metrics import ConfusionMatrix, psnr_ab, psnr_rgb_uint8
    from psc_eval.runner import check_ab

    stages: dict[str, float] = {}

    @contextmanager
    def clock(name):
        c0 = time.process_time()
        yield
        stages[name] = stages.get(name, 0.0) + time.process_time() - c0

    n = 0
    for k in range(n_batches + 1):
        if k == 1:
            stages.clear()  # the first batch warms up
            n = 0
        idx = range(k * batch_size, min((k + 1) * batch_size, len(ds)))
        if not idx:
            break
        with clock("load (render/decode + Lab)"):
            b = collate([ds[i] for i in idx])
        with clock("colorize gt + output checks + float16"):
            ab = check_ab(b["ab"][:, None].clone(), b["ids"], 1, "gt").to(torch.float16)
        with clock("L + ab -> RGB -> uint8"):
            rgb = to_uint8(lab_parts_to_rgb(b["L"], ab[:, 0].float()))
        with clock("PSNR (RGB uint8 + ab)"):
            psnr_rgb_uint8(rgb, to_uint8(b["rgb"]))
            psnr_ab(ab[:, 0].float(), b["ab"])
        with clock("confusion matrix"):
            ConfusionMatrix(10).update(b["mask"], b["mask"])
        n += len(idx)
    return {k: round(v / n * 1000, 3) for k, v in stages.items()}


def memory_probe(n: int, batch_size: int, workers: int, judge: str) -> None:
    seg, _ = build_judge(judge)
    ds = get_dataset("toy", split="val", n_images=n)
    evaluate("gt", ds, seg, batch_size=batch_size, cache=False, workers=workers, progress=False,
             device="cpu")
    # ru_maxrss is in KiB on Linux. DataLoader workers are forked children: their figure
    # includes the pages they share with this process, so it is an upper bound.
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"n": n, "peak_rss_mib": round(own, 1)}
    if workers:
        out["peak_rss_largest_worker_mib"] = round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    print(json.dumps(out))


def main(argv: list[str] | None = None) -> dict | None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=500, help="toy val images (500 = the whole split)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--judge", default=default_segmenter("toy"))
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (default: torch's, = cores)")
    ap.add_argument("--no-inline", action="store_true",
                    help="skip the inline-scoring pipeline (judge and threaded pipeline only)")
    ap.add_argument("--memory-sizes", default="200,1000",
                    help="dataset sizes for the peak-RSS probe ('' to skip)")
    ap.add_argument("--memory-probe", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--small", action="store_true",
                    help="8 images, one round, no memory probe (a test runs this)")
    args = ap.parse_args(argv)
    keep_freed_memory()  # as the command line does (PSC_MALLOC=system: glibc's defaults)
    if args.small:
        args.n, args.batch_size, args.repeats, args.memory_sizes = 8, 4, 1, ""
    if args.threads:
        torch.set_num_threads(args.threads)
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

    tj, tp, cj, cp, ti, ci, jin = [], [], [], [], [], [], []
    for _ in range(args.repeats):
        w, c = judge_time(seg, batches)
        tj.append(w)
        cj.append(c)
        w, c, inside = pipeline_time(seg, ds, args.batch_size, args.workers, thread="1")
        tp.append(w)
        cp.append(c)
        jin.append(inside)
        if not args.no_inline:
            w, c, _ = pipeline_time(seg, ds, args.batch_size, args.workers, thread="0")
            ti.append(w)
            ci.append(c)
    nan = float("nan")
    mj, mp = statistics.median(tj), statistics.median(tp)
    mi = statistics.median(ti) if ti else nan
    res = {
        "images": len(ds), "size": ds.size, "batch_size": args.batch_size,
        "workers": args.workers, "torch_threads": torch.get_num_threads(),
        "judge": args.judge, "judge_weights": "trained" if trained else "random",
        "nproc": subprocess.run(["nproc"], capture_output=True, text=True,
                                check=False).stdout.strip(),
        "cpu": cpu_name(), "torch": torch.__version__,
        "judge_s": tj, "pipeline_s": tp, "judge_median_s": mj, "pipeline_median_s": mp,
        "ratio": mp / mj, "ratio_of_minima": min(tp) / min(tj),
        # the threaded pipeline's wall split: inside the judge's calls / outside them
        "pipeline_judge_calls_s": jin,
        "outside_judge_over_judge": statistics.median(
            (p - j) / a for p, j, a in zip(tp, jin, tj)),
        "judge_img_per_s": len(ds) / mj, "pipeline_img_per_s": len(ds) / mp,
        "judge_cpu_s": cj, "pipeline_cpu_s": cp,
        "cpu_ratio": statistics.median(cp) / statistics.median(cj),
        # the same pipeline with the scorers inline (PSC_SCORE_THREAD=0: one thread)
        "pipeline_inline_s": ti, "pipeline_inline_median_s": mi, "ratio_inline": mi / mj,
        "pipeline_inline_cpu_s": ci,
        "cpu_ratio_inline": statistics.median(ci) / statistics.median(cj) if ci else nan,
        "judge_cpu_ms_per_img": statistics.median(cj) / len(ds) * 1000,
        "breakdown_cpu_ms_per_img": breakdown(ds, args.batch_size),
        "load_avg_1min": _loadavg(),
    }
    mem = []
    for n in [int(x) for x in args.memory_sizes.split(",") if x.strip()]:
        out = subprocess.run(
            [sys.executable, __file__, "--memory-probe", str(n), "--batch-size",
             str(args.batch_size), "--workers", str(args.workers), "--judge", args.judge,
             "--threads", str(torch.get_num_threads())],
            capture_output=True, text=True, check=True,
        ).stdout
        mem.append(json.loads(out.strip().splitlines()[-1]))
    res["memory"] = mem
    print(json.dumps(res, indent=2))
    return res


def _loadavg() -> float | None:
    try:
        return float(open("/proc/loadavg").read().split()[0])
    except OSError:
        return None


if __name__ == "__main__":
    main()
