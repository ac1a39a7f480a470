"""The GPU path, measured in one run: judge, miou pipeline, sampler, training step.

Builds what it needs (random weights: timing does not depend on them; a VOC-layout
folder of synthetic images and masks written by the tests' own fixture code), then
prints one JSON object with, side by side:

- judge alone: smp DeepLabV3-ResNet101 at 128 px, images/s in fp32, bf16 +
  channels-last, and compiled (peak memory of each);
- the ``psc-eval miou`` pipeline (colorizer ``gray``) over the VOC-layout folder, as a
  ratio of its time to the judge alone on the same images;
- the paper's generator: naive vs cached sampling of a 32x32 canvas per image;
- a training step of the paper config (``ours``, bf16): images/s and TFLOP/s.

    python benchmarks/gpu.py                    # on a GPU: the full sizes (1,449 images)
    python benchmarks/gpu.py --small --device cpu   # a minute on a CPU (a test runs this)
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

TESTS = Path(__file__).resolve().parents[1] / "tests"


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _peak_reset(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)


def _peak_mib(dev: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None


def timed(fn, dev: torch.device, repeats: int) -> float:
    """Median wall seconds of ``fn()`` over ``repeats`` runs (after one warm-up)."""
    fn()
    _sync(dev)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(dev)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def bench_judge(a, dev: torch.device, n: int) -> dict:
    from psc_eval.judge import load_segmenter

    out = {}
    x = torch.rand(a.judge_batch, 3, a.size, a.size, device=dev)
    for mode, kw in (("fp32", {}), ("bf16_channels_last", {"precision": "bf16",
                                                            "channels_last": True}),
                     ("bf16_channels_last_compiled", {"precision": "bf16",
                                                      "channels_last": True, "compile": True})):
        if kw.get("compile") and a.no_compile:
            continue
        seg = load_segmenter(a.judge, None, num_classes=21, device=dev)
        if kw:
            seg.configure(**kw)
        _peak_reset(dev)
        s = timed(lambda seg=seg: seg.predict(x), dev, a.repeats)
        out[mode] = {"images_per_s": a.judge_batch / s, "peak_mib": _peak_mib(dev)}
    return out


def bench_pipeline(a, dev: torch.device, n: int, judge_ips: float) -> dict:
    sys.path.insert(0, str(TESTS))
    import fixtures_data

    from psc_eval.checkpoint import save_checkpoint
    from psc_eval.data import get_dataset
    from psc_eval.judge import load_segmenter
    from psc_eval.runner import run_eval

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        tree = fixtures_data.build_voc(d, train=[], val=fixtures_data.voc_ids(n, start=0),
                                       hw=(375, 500), image_format="JPEG")
        seg = load_segmenter(a.judge, None, num_classes=21)
        weights = d / "judge.pt"
        save_checkpoint(weights, {"kind": "judge", "arch": a.judge, "num_classes": 21,
                                  "config": {}, "model": seg.module.state_dict()})
        ds = get_dataset("voc", root=tree.devkit, split="val", size=a.size, allow_partial=True)
        kw = {"segmenter": a.judge, "weights": str(weights), "batch_size": a.judge_batch,
              "device": str(dev), "workers": a.workers, "cache": False, "progress": False,
              "out": d / "out", "metrics": "miou",
              "precision": "bf16" if dev.type == "cuda" else "fp32",
              "channels_last": dev.type == "cuda"}
        run_eval("miou", "gray", ds, **kw)  # warm-up: decoding caches, cudnn autotune
        t0 = time.perf_counter()
        run_eval("miou", "gray", ds, **kw)
        wall = time.perf_counter() - t0
    rows = 2  # the colorizer is gray itself: the rows are gray and gt, each judged
    return {"images": n, "wall_s": wall, "images_per_s_per_row": n * rows / wall,
            "ratio_to_judge_alone": wall / (n * rows / judge_ips)}


def bench_sampler(a, dev: torch.device, n: int) -> dict:
    from psc_eval.models.config import generator_config, load_config
    from psc_eval.models.pixelcnn import ConditionalPixelCNNpp
    from psc_eval.models.sampling import sample

    cfg = load_config(a.config)
    gcfg = generator_config(cfg.model)
    cond_ch = cfg.model.emb_channels + 21
    g = ConditionalPixelCNNpp(gcfg, cond_ch).to(dev).eval()
    hw = cfg.model.emb_size
    cond = torch.randn(n, cond_ch, hw, hw, device=dev)
    gen = torch.Generator(device=dev).manual_seed(0)
    out = {"images": n, "canvas": hw}
    for method in ("cached", "naive"):
        if method == "naive" and a.no_naive:
            continue
        _peak_reset(dev)
        t0 = time.perf_counter()
        with torch.no_grad():
            sample(g, cond, generator=gen, method=method, num_threads=None)
        _sync(dev)
        out[method] = {"wall_s": time.perf_counter() - t0, "peak_mib": _peak_mib(dev)}
    return out


def bench_train(a, dev: torch.device) -> dict:
    from psc_eval.models.config import load_config, resolve_variant
    from psc_eval.models.method import build_net
    from torch.utils.flop_counter import FlopCounterMode

    cfg = resolve_variant(load_config(a.config), "ours")
    net = build_net("ours", cfg, 21).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.95, 0.9995))
    s = cfg.model.input_size
    L = torch.rand(a.train_batch, 1, s, s, device=dev) * 100
    batch = {"L": L, "ab": torch.rand(a.train_batch, 2, s, s, device=dev) * 100 - 50,
             "mask": torch.randint(0, 21, (a.train_batch, s, s), device=dev)}

    def step():
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            terms = net(batch)
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        opt.step()

    with FlopCounterMode(display=False) as fc:
        step()
    flops = fc.get_total_flops()
    _peak_reset(dev)
    sec = timed(step, dev, a.repeats)
    return {"batch": a.train_batch, "images_per_s": a.train_batch / sec,
            "tflops": flops / sec / 1e12, "flops_per_step": flops,
            "params_m": sum(p.numel() for p in net.parameters()) / 1e6,
            "peak_mib": _peak_mib(dev)}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--small", action="store_true", help="tiny sizes: a CPU smoke run")
    p.add_argument("--json", default=None, help="also write the result here")
    a = p.parse_args(argv)
    from psc_eval.dist import resolve_device

    dev = torch.device(resolve_device(a.device))
    a.judge = "deeplabv3-resnet18" if a.small else "deeplabv3-resnet101"
    a.config = "toy" if a.small else "paper"
    a.size = 32 if a.small else 128
    a.judge_batch = 4 if a.small else 256
    a.train_batch = 2 if a.small else 32
    a.repeats = 1 if a.small else 5
    a.workers = 0 if a.small else 8
    a.no_compile = a.small or dev.type != "cuda"
    a.no_naive = False
    n_voc = 4 if a.small else 1449
    n_sample = 2 if a.small else 1449
    res = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda"
           else platform.processor() or platform.machine(),
           "torch": torch.__version__, "small": a.small}
    res["judge"] = bench_judge(a, dev, n_voc)
    best = max(v["images_per_s"] for v in res["judge"].values())
    res["pipeline"] = bench_pipeline(a, dev, n_voc, best)
    res["sampler"] = bench_sampler(a, dev, n_sample)
    res["train_step"] = bench_train(a, dev)
    print(json.dumps(res, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
