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
    ap.add_argument("--repeats", type=int, default=3)
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

    naive_px, cached_px = [], []
    with torch.no_grad():
        for r in range(a.repeats):
            t = time.perf_counter()
            sample_naive(net, cond, generator=torch.Generator().manual_seed(a.seed),
                         max_pixels=n_naive)
            naive_px.append((time.perf_counter() - t) / n_naive)
            t = time.perf_counter()
            sample_cached(net, cond, generator=torch.Generator().manual_seed(a.seed))
            cached_px.append((time.perf_counter() - t) / (size * size))
            print(f"round {r}: naive {naive_px[-1] * 1e3:.2f} ms/pixel, "
                  f"cached {cached_px[-1] * 1e3:.3f} ms/pixel")
    tn, tc = statistics.median(naive_px), statistics.median(cached_px)
    res = {
        "config": a.config, "generator": gcfg.to_dict(), "cond_channels": cond_ch,
        "canvas": size, "batch": a.batch, "threads": torch.get_num_threads(),
        "cpu": _cpu_name(), "torch": torch.__version__, "repeats": a.repeats,
        "naive_pixels_timed": n_naive,
        "naive_ms_per_pixel": tn * 1e3, "cached_ms_per_pixel": tc * 1e3,
        "naive_ms_per_pixel_all": [v * 1e3 for v in naive_px],
        "cached_ms_per_pixel_all": [v * 1e3 for v in cached_px],
        "speedup": tn / tc,
        "cached_s_per_canvas": tc * size * size,
        "naive_s_per_canvas_est": tn * size * size,
    }
    print(f"median: naive {tn * 1e3:.2f} ms/pixel, cached {tc * 1e3:.3f} ms/pixel, "
          f"speedup {tn / tc:.0f}x; full canvas: cached {tc * size * size:.2f} s, "
          f"naive ~{tn * size * size:.0f} s")
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
