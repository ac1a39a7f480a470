"""Benchmark: cached vs naive raster-order sampling of the generator g on the CPU.

Per generated pixel (one raster position for the whole batch):

* **naive**: one full generator pass per pixel. Every step is the same full-canvas
  pass, so it is timed over the first ``--naive-pixels`` positions only;
* **cached**: the whole canvas (per-row vertical stack + per-pixel horizontal stack).

Both run interleaved in one process, ``--repeats`` rounds, medians reported (the
machine may be shared: a round's time includes other processes' load). Then one full
naive run on the same generator and seed gives the max abs difference of the two
samplers' outputs (``--no-check`` skips it: it costs H*W full passes).

The generator has random weights (seeded; timing does not depend on the weights),
the size of the ``[model.generator]`` section of the named config, and conditions on
``emb_channels + #classes`` channels (the final model ``ours``: f concatenated with h).

    python benchmarks/bench_sampling.py                      # toy config, batch 16, 16x16
    python benchmarks/bench_sampling.py --config paper --naive-pixels 2 --no-check
    python benchmarks/bench_sampling.py --threads 1 --json out.json

``--bound``: the cached sampler against its bound, one teacher-forced forward pass of
the same generator on the same batch (every position is computed once either way), at
each of ``--batches``, interleaved rounds, process CPU time; with ``--old DIR`` (a
checkout of the code before a change, e.g. ``git worktree add DIR <commit>``) the old
cached sampler runs in the same rounds and its samples are compared with the new ones.

    python benchmarks/bench_sampling.py --bound --threads 1 --batches 16,500 --old /tmp/old
    python benchmarks/bench_sampling.py --small     # seconds; tests/e2e/test_benchmarks.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch
from machine import cpu_name  # benchmarks/machine.py
from psc_eval.models.config import generator_config, load_config
from psc_eval.models.pixelcnn import ConditionalPixelCNNpp, GeneratorConfig
from psc_eval.models.sampling import sample, sample_cached, sample_naive

from psc_eval.allocator import keep_freed_memory

NUM_CLASSES = {"toy": None, "paper": 21}  # paper: VOC 2012, 20 objects + background


def build(config: str, nr_filters: int | None, nr_resnet: int | None, seed: int):
    cfg = load_config(config)
    gcfg = generator_config(cfg.model)
    if nr_filters or nr_resnet:
        gcfg = GeneratorConfig(**{**gcfg.to_dict(),
                                  **({"nr_filters": nr_filters} if nr_filters else {}),
                                  **({"nr_resnet": nr_resnet} if nr_resnet else {})})
    n_cls = NUM_CLASSES.get(config)
    if n_cls is None:
        from psc_eval.data.toy import CLASS_NAMES

        n_cls = len(CLASS_NAMES)
    cond_ch = cfg.model.emb_channels + n_cls
    size = cfg.model.input_size // 4  # the embedding / generator resolution (Table 1)
    torch.manual_seed(seed)
    net = ConditionalPixelCNNpp(gcfg, cond_ch).eval()
    return net, gcfg, cond_ch, size


def bound(a, net, gcfg, cond_ch: int, size: int) -> dict:
    """Cached sampling (new, and old with --old) vs one forward pass, per batch size."""
    old = None
    if a.old:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from oldcode import load_old

        old = load_old(a.old, "sampling")
    out = {}
    for B in [int(b) for b in a.batches.split(",")]:
        g = torch.Generator().manual_seed(a.seed + 1)
        cond = torch.randn(B, cond_ch, size, size, generator=g)
        x = torch.rand(B, 2, size, size, generator=g) * 2 - 1
        fns = {"forward": lambda x=x, cond=cond: net(x, cond),
               "cached": lambda cond=cond: sample_cached(
                   net, cond, generator=torch.Generator().manual_seed(0))}
        if old is not None:
            fns["cached_old"] = lambda cond=cond: old.sample_cached(
                net, cond, generator=torch.Generator().manual_seed(0))
        times = {k: [] for k in fns}
        res = {}
        with torch.inference_mode():
            for f in fns.values():  # warm-up
                res[f] = f()
            for _ in range(a.repeats):
                for k, f in fns.items():
                    c = time.process_time()
                    f()
                    times[k].append(time.process_time() - c)
        med = {k: statistics.median(v) for k, v in times.items()}
        row = {f"{k}_s": med[k] for k in fns} | {f"{k}_all_s": times[k] for k in fns}
        row["cached_over_forward"] = med["cached"] / med["forward"]
        if old is not None:
            row["old_over_forward"] = med["cached_old"] / med["forward"]
            row["speedup_vs_old"] = med["cached_old"] / med["cached"]
            row["bit_identical_to_old"] = bool(torch.equal(res[fns["cached"]],
                                                           res[fns["cached_old"]]))
        out[str(B)] = row
        print(f"batch {B}: forward {med['forward'] * 1e3:.1f} ms, cached "
              f"{med['cached'] * 1e3:.1f} ms = {row['cached_over_forward']:.2f}x the forward"
              + (f"; old cached {med['cached_old'] * 1e3:.1f} ms = "
                 f"{row['old_over_forward']:.2f}x, same samples: {row['bit_identical_to_old']}"
                 if old is not None else ""), flush=True)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="toy")
    ap.add_argument("--nr-filters", type=int, default=None, help="override the config's size")
    ap.add_argument("--nr-resnet", type=int, default=None)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--naive-pixels", type=int, default=None, help="default: one row")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cached-runs", type=int, default=3, help="cached canvases per round")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-check", action="store_true", help="skip the full naive run")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--bound", action="store_true",
                    help="cached sampling vs one forward pass at each of --batches")
    ap.add_argument("--batches", default="16,500")
    ap.add_argument("--old", default=None, help="a checkout of the old code (see --bound)")
    ap.add_argument("--small", action="store_true",
                    help="a tiny generator and batch, one round (a test runs this)")
    a = ap.parse_args(argv)
    keep_freed_memory()  # as the command line does (PSC_MALLOC=system: glibc's defaults)
    if a.small:
        a.nr_filters, a.nr_resnet, a.batch, a.batches = 8, 1, 2, "2,3"
        a.repeats, a.cached_runs, a.naive_pixels, a.no_check = 1, 1, 2, True
    if a.threads:
        torch.set_num_threads(a.threads)

    net, gcfg, cond_ch, size = build(a.config, a.nr_filters, a.nr_resnet, a.seed)
    if a.bound:
        res = {"config": a.config, "generator": gcfg.to_dict(), "canvas": size,
               "threads": torch.get_num_threads(), "cpu_model": cpu_name(),
               "load_avg_1min": os.getloadavg()[0], "torch": torch.__version__,
               "repeats": a.repeats, "batches": bound(a, net, gcfg, cond_ch, size)}
        if a.json:
            with open(a.json, "w") as f:
                json.dump(res, f, indent=2)
        return res
    g = torch.Generator().manual_seed(a.seed + 1)
    cond = torch.randn(a.batch, cond_ch, size, size, generator=g)
    n_naive = a.naive_pixels or size
    n_params = sum(p.numel() for p in net.parameters())
    print(f"generator {gcfg} cond_channels={cond_ch} canvas {size}x{size} batch {a.batch} "
          f"params {n_params / 1e6:.2f}M; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {cpu_name()}")

    # wall time and this process's CPU time (less sensitive to other processes' load
    # when running on one thread); medians and minima over the rounds
    t_naive = {"wall": [], "cpu": []}
    t_cached = {"wall": [], "cpu": []}
    with torch.inference_mode():
        for r in range(a.repeats):
            w, c = time.perf_counter(), time.process_time()
            sample_naive(net, cond, generator=torch.Generator().manual_seed(a.seed),
                         max_pixels=n_naive)
            t_naive["wall"].append((time.perf_counter() - w) / n_naive)
            t_naive["cpu"].append((time.process_time() - c) / n_naive)
            # the cached canvas takes a fraction of a second: time --cached-runs of them
            w, c = time.perf_counter(), time.process_time()
            for _ in range(a.cached_runs):
                sample_cached(net, cond, generator=torch.Generator().manual_seed(a.seed))
            t_cached["wall"].append((time.perf_counter() - w) / (size * size * a.cached_runs))
            t_cached["cpu"].append((time.process_time() - c) / (size * size * a.cached_runs))
            print(f"round {r}: naive {t_naive['wall'][-1] * 1e3:.2f} ms/pixel "
                  f"(cpu {t_naive['cpu'][-1] * 1e3:.2f}), cached {t_cached['wall'][-1] * 1e3:.3f} "
                  f"ms/pixel (cpu {t_cached['cpu'][-1] * 1e3:.3f})")
    res = {
        "config": a.config, "generator": gcfg.to_dict(), "cond_channels": cond_ch,
        "canvas": size, "batch": a.batch, "threads": torch.get_num_threads(),
        "cpu_model": cpu_name(), "nproc": os.cpu_count(), "torch": torch.__version__,
        "repeats": a.repeats, "cached_runs": a.cached_runs, "naive_pixels_timed": n_naive,
    }
    for clock in ("wall", "cpu"):
        tn, tc = statistics.median(t_naive[clock]), statistics.median(t_cached[clock])
        mn, mc = min(t_naive[clock]), min(t_cached[clock])
        res[clock] = {
            "naive_ms_per_pixel": tn * 1e3, "cached_ms_per_pixel": tc * 1e3,
            "speedup_median": tn / tc, "speedup_min": mn / mc,
            "naive_ms_per_pixel_all": [v * 1e3 for v in t_naive[clock]],
            "cached_ms_per_pixel_all": [v * 1e3 for v in t_cached[clock]],
        }
        print(f"{clock} median: naive {tn * 1e3:.2f} ms/pixel, cached {tc * 1e3:.3f} ms/pixel, "
              f"speedup {tn / tc:.0f}x (of the minima: {mn / mc:.0f}x); full canvas: cached "
              f"{tc * size * size:.2f} s, naive ~{tn * size * size:.0f} s")
    if not a.no_check:
        t = time.perf_counter()
        xn = sample(net, cond, generator=torch.Generator().manual_seed(a.seed), method="naive")
        t_full = time.perf_counter() - t
        xc = sample(net, cond, generator=torch.Generator().manual_seed(a.seed), method="cached")
        diff = (xn - xc).abs().max().item()
        res.update(max_abs_diff=diff, naive_full_canvas_s=t_full)
        print(f"full naive run {t_full:.1f} s; max |naive - cached| = {diff:.3g} "
              f"({xn.dtype}, {xn.numel()} values)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)
    return res


if __name__ == "__main__":
    main()
