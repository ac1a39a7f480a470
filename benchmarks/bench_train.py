"""Training-step throughput of the paper's model (``psc-eval train``'s inner step).

    python benchmarks/bench_train.py --config toy --variant ours --batch-size 16 --steps 20
    python benchmarks/bench_train.py --config paper --device cuda --amp bf16 --channels-last

Times forward + backward + Adam step on one fixed batch of toy images (data loading
excluded), after ``--warmup`` steps, and prints steps/s and images/s. Results go to
reports/perf.md ("Training step throughput").

``--profile``: where the time of a ``psc-eval train`` step goes (toy data through the
loop's loader and in-memory cache, f / h / g forward, the mixture losses, backward,
Adam, the Polyak average), per phase, medians over ``--steps``; the step's FLOPs
(``torch.utils.flop_counter``) against a measured matmul rate give its bound.

    python benchmarks/bench_train.py --profile --threads 1 --steps 10
    python benchmarks/bench_train.py --small          # seconds; tests/e2e/test_benchmarks.py

``--trajectory N``: the losses of N steps on successive batches, compared with another run
(``--against``), e.g. the drift that 2 threads instead of 1 cause alone:

    python benchmarks/bench_train.py --threads 1 --trajectory 50 --out /tmp/t1.json
    python benchmarks/bench_train.py --threads 2 --trajectory 50 --against /tmp/t1.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
from psc_eval.models.method import build_net, resolve_train_config

from psc_eval.allocator import keep_freed_memory
from psc_eval.data import collate, get_dataset


def matmul_rate(n: int = 512, repeats: int = 20) -> float:
    """Measured FLOP/s of an n x n float32 matrix product (best of ``repeats``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def profile(a, cfg) -> dict:
    """Per-phase wall ms of the loop's training step of ``ours``, toy data, one thread."""
    from psc_eval.models.dmol import mixture_nll_bits_per_dim
    from psc_eval.models.losses import chroma_target, mask_target, seg_loss, weighted_total
    from torch.utils.flop_counter import FlopCounterMode

    from psc_eval.color import normalize_L
    from psc_eval.training.data import MemoryCache
    from psc_eval.training.loop import Trainer

    torch.manual_seed(0)
    net = build_net(a.variant, cfg, 10)
    ds = MemoryCache(get_dataset("toy", split="train", size=cfg.model.input_size))
    loop_cfg = cfg.train
    loop_cfg.batch_size = a.batch_size
    method = _method(net, cfg)
    trainer = Trainer(method, loop_cfg, ds, None, "/nonexistent", config={}, progress=False)
    opt = trainer.optims[0].optimizer
    n_batches = a.steps + a.warmup
    order = list(range(n_batches * a.batch_size))
    for i in order:  # the cache filled, as from the second epoch on
        ds[i]
    phases: dict[str, list[float]] = {}
    loader = iter(trainer._loader(ds, order))
    net.train()
    for step in range(n_batches):
        t = {}
        c = time.perf_counter()

        def lap(name, t=t):
            nonlocal c
            now = time.perf_counter()
            t[name] = now - c
            c = now

        batch = next(loader)
        batch = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
        lap("data (cached samples, collate)")
        f = net.cfg.factor
        x = chroma_target(batch["ab"], f)
        tr = net.trunk(normalize_L(batch["L"]))
        lap("f, h shared rows (trunk)")
        emb = net.f_top(tr)
        lap("f top rows")
        logits = net.aspp(net.h_top(tr))
        lap("h top rows + ASPP")
        params = net.g(x, net.condition(emb, logits))
        lap("g forward (teacher forcing)")
        terms = {"L_emb_bpd": mixture_nll_bits_per_dim(net.emb_params(emb), x),
                 "L_gen_bpd": mixture_nll_bits_per_dim(params, x),
                 "L_seg": seg_loss(logits, mask_target(batch["mask"], f))}
        total = weighted_total(terms, net.loss_weights)
        float(total.detach())
        lap("losses (2 mixture NLLs + CE)")
        opt.zero_grad(set_to_none=True)
        total.backward()
        lap("backward")
        opt.step()
        lap("Adam step")
        trainer.step += 1
        trainer._update_ema()
        lap("Polyak average (EMA)")
        if step >= a.warmup:
            for k, v in t.items():
                phases.setdefault(k, []).append(v * 1e3)
    med = {k: statistics.median(v) for k, v in phases.items()}
    total_ms = sum(med.values())
    batch = collate([ds[i] for i in range(a.batch_size)])
    batch = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
    with FlopCounterMode(display=False) as fc:
        net(batch)["total"].backward()
    flops = fc.get_total_flops()
    rate = matmul_rate()
    res = {"phases_ms": med, "step_ms": total_ms, "flops_per_step": flops,
           "matmul_flops_per_s": rate, "bound_ms": flops / rate * 1e3,
           "load_avg_1min": os.getloadavg()[0], "threads": torch.get_num_threads()}
    for k, v in med.items():
        print(f"{k:34s} {v:8.1f} ms  {100 * v / total_ms:5.1f}%")
    print(f"step {total_ms:.0f} ms; {flops / 1e9:.1f} GFLOP (convolutions, forward + backward) "
          f"at the measured matmul rate {rate / 1e9:.0f} GFLOP/s = {res['bound_ms']:.0f} ms")
    return res


def _method(net, cfg):
    from psc_eval.models.method import PSCMethod

    return PSCMethod(net, cfg)


def main(argv: list[str] | None = None) -> dict | None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="toy")
    ap.add_argument("--variant", default="ours")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--amp", choices=["none", "bf16"], default="none")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--profile", action="store_true", help="per-phase profile of the step")
    ap.add_argument("--trajectory", type=int, default=0, metavar="N",
                    help="N steps on successive batches from seed 0; print the losses")
    ap.add_argument("--against", help="with --trajectory: compare with this --out file")
    ap.add_argument("--out", help="with --trajectory: write the losses here (JSON)")
    ap.add_argument("--small", action="store_true", help="2 images, 1 step (a test runs this)")
    a = ap.parse_args(argv)
    a.kept_malloc = keep_freed_memory()  # as the command line does (PSC_MALLOC=system: off)
    if a.small:
        a.batch_size, a.steps, a.warmup = 2, 1, 1
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = resolve_train_config(a.variant, a.config)
    if a.profile or (a.small and not a.trajectory):
        return profile(a, cfg)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    net = build_net(a.variant, cfg, 10).to(dev)
    if a.channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.train.lr, betas=cfg.train.betas)
    ds = get_dataset("toy", split="train", size=cfg.model.input_size)
    if a.trajectory:
        return trajectory(a, net, opt, ds, dev)
    batch = _batch(ds, range(a.batch_size), dev, False)

    def step():
        _step(net, opt, batch, dev, a.amp)

    for _ in range(a.warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    n_params = sum(p.numel() for p in net.parameters())
    print(f"config={a.config} variant={a.variant} params={n_params} batch={a.batch_size} "
          f"device={a.device} threads={torch.get_num_threads()} amp={a.amp} "
          f"channels_last={a.channels_last} load1={os.getloadavg()[0]:.1f}")
    print(f"{a.steps / dt:.3f} steps/s, {a.steps * a.batch_size / dt:.1f} images/s, "
          f"{1000 * dt / a.steps:.0f} ms/step")
    return None


def _batch(ds, indices, dev, channels_last: bool) -> dict:
    batch = collate([ds[i] for i in indices])
    batch = {k: v.to(dev) for k, v in batch.items() if isinstance(v, torch.Tensor)}
    if channels_last:
        batch = {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v
                 for k, v in batch.items()}
    return batch


def _step(net, opt, batch, dev, amp: str) -> torch.Tensor:
    """One training step (forward with the Eq. 6 losses, backward, Adam); the total loss."""
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
        terms = net(batch)
    opt.zero_grad(set_to_none=True)
    terms["total"].backward()
    opt.step()
    return terms["total"].detach()


def trajectory(a, net, opt, ds, dev) -> dict:
    """``--trajectory N``: N steps from seed 0 on successive toy batches (step i trains on
    images [i*B, (i+1)*B)), the total loss of each; ``--against FILE`` compares them with an
    earlier run's ``--out`` file: the largest relative difference over the N steps, the
    first step that differs, whether all are bit-identical. This is how "the same losses to
    float tolerance over 50 steps" is measured (reports/perf.md, issue 23 goal 1)."""
    losses, times = [], []
    for i in range(a.trajectory):
        batch = _batch(ds, range(i * a.batch_size, (i + 1) * a.batch_size), dev,
                       a.channels_last)
        t0 = time.perf_counter()
        losses.append(float(_step(net, opt, batch, dev, a.amp)))
        times.append(time.perf_counter() - t0)
    settings = {"variant": a.variant, "config": a.config, "batch": a.batch_size,
                "threads": torch.get_num_threads(), "amp": a.amp,
                "channels_last": a.channels_last,
                "malloc": "kept" if a.kept_malloc else "system"}
    res = {"settings": settings, "losses": losses,
           "step_ms_median": 1e3 * statistics.median(times[min(3, len(times) - 1):])}
    print(f"{settings}: {len(losses)} steps, loss {losses[0]:.5f} -> {losses[-1]:.5f}, "
          f"median step {res['step_ms_median']:.0f} ms")
    if a.against:
        with open(a.against) as f:
            ref = json.load(f)["losses"]
        n = min(len(ref), len(losses))
        diff = [abs(x - y) / abs(y) for x, y in zip(losses[:n], ref[:n])]
        first = next((i + 1 for i in range(n) if losses[i] != ref[i]), None)
        res["against"] = {"file": a.against, "steps": n, "max_relative_difference": max(diff),
                          "first_differing_step": first, "bit_identical": first is None,
                          "last": [losses[n - 1], ref[n - 1]]}
        print(f"against {a.against}: max relative difference {max(diff):.2e} over {n} steps, "
              f"first differing step {first}, last {losses[n - 1]:.5f} vs {ref[n - 1]:.5f}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f)
    return res

if __name__ == "__main__":
    main()
