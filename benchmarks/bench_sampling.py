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
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time

import torch
from psc_eval.models.config import generator_config, load_config
from psc_eval.models.pixelcnn import ConditionalPixelCNNpp, GeneratorConfig
from psc_eval.models.sampling import sample, sample_cached, sample_naive

NUM_CLASSES = {"toy": None, "paper": 21}  # paper: VOC 2012, 20 objects + background


def _cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


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


def main() -> None:
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
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)

    net, gcfg, cond_ch, size = build(a.config, a.nr_filters, a.nr_resnet, a.seed)
    g = torch.Generator().manual_seed(a.seed + 1)
    cond = torch.randn(a.batch, cond_ch, size, size, generator=g)
    n_naive = a.naive_pixels or size
    n_params = sum(p.numel() for p in net.parameters())
    print(f"generator {gcfg} cond_channels={cond_ch} canvas {size}x{size} batch {a.batch} "
          f"params {n_params / 1e6:.2f}M; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {_cpu_name()}")

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
        "cpu_model": _cpu_name(), "nproc": os.cpu_count(), "torch": torch.__version__,
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


if __name__ == "__main__":
    main()
