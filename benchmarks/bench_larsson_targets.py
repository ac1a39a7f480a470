"""Larsson's training targets: full-resolution patch histograms vs the sampled pixels only.

Larsson et al. train on 128 sampled pixels per image, each with a 7 x 7 patch histogram
of hue and of chroma (K = 32 bins). The full-resolution way builds one-hot maps
(B, K, H, W) of both, averages them over the patch (``histogram_targets``) and reads the
sampled pixels; ``patch_histograms`` (what training uses) builds the histograms at the
sampled pixels only. Both are timed interleaved over ``--rounds`` rounds (median), on the
toy size (batch 16, 64 px) and the paper size (batch 8, 352 px), one thread, and checked
equal (1e-6).

    OMP_NUM_THREADS=1 python benchmarks/bench_larsson_targets.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
from psc_eval.baselines.larsson2016 import (
    histogram_targets,
    patch_histograms,
    rgb_to_hue_chroma,
)

K, PATCH, PIXELS = 32, 7, 128


def full_maps(rgb, iy, ix):
    """The old way: (B, K, H, W) maps of both histograms, read at the sampled pixels."""
    y_h, y_c, _ = histogram_targets(rgb, K, PATCH)
    flat = (iy * rgb.shape[-1] + ix)[:, None]
    return tuple(t.flatten(2).gather(2, flat.expand(-1, K, -1))[:, :, None] for t in (y_h, y_c))


def sampled(rgb, iy, ix):
    """What training does: the histograms at the sampled pixels only."""
    hue, chroma = rgb_to_hue_chroma(rgb)
    return patch_histograms(hue, iy, ix, K, PATCH), patch_histograms(chroma, iy, ix, K, PATCH)


def clock(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--small", action="store_true", help="toy size only, one round (a test)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    sizes = {"toy": (16, 64), "paper": (8, 352)}
    if a.small:
        sizes, a.rounds = {"toy": (2, 32)}, 1
    res = {}
    for name, (B, S) in sizes.items():
        g = torch.Generator().manual_seed(0)
        rgb = torch.rand(B, 3, S, S, generator=g)
        iy = torch.randint(0, S, (B, PIXELS), generator=g)
        ix = torch.randint(0, S, (B, PIXELS), generator=g)
        old, new = full_maps(rgb, iy, ix), sampled(rgb, iy, ix)
        equal = all(torch.allclose(o, n, atol=1e-6) for o, n in zip(old, new))
        t_old, t_new = [], []
        for _ in range(a.rounds):
            t_old.append(clock(full_maps, rgb, iy, ix))
            t_new.append(clock(sampled, rgb, iy, ix))
        mo, mn = statistics.median(t_old), statistics.median(t_new)
        res[name] = {"batch": B, "size": S, "full_maps_ms": 1000 * mo, "sampled_ms": 1000 * mn,
                     "speedup": mo / mn, "equal": equal}
        print(f"{name} (batch {B}, {S} px): full maps {1000 * mo:.1f} ms, sampled pixels "
              f"{1000 * mn:.1f} ms, {mo / mn:.1f}x, equal: {equal}", flush=True)
    res["threads"] = torch.get_num_threads()
    res["load_avg_1min"] = os.getloadavg()[0]
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
