"""Training-step throughput of the paper's model (``psc-eval train``'s inner step).

    python benchmarks/bench_train.py --config toy --variant ours --batch-size 16 --steps 20
    python benchmarks/bench_train.py --config paper --device cuda --amp bf16 --channels-last

Times forward + backward + Adam step on one fixed batch of toy images (data loading
excluded), after ``--warmup`` steps, and prints steps/s and images/s. Results go to
reports/perf.md ("Training step throughput").
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from psc_eval.models.method import build_net, resolve_train_config

from psc_eval.data import collate, get_dataset


def main() -> None:
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
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = resolve_train_config(a.variant, a.config)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    net = build_net(a.variant, cfg, 10).to(dev)
    if a.channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.train.lr, betas=cfg.train.betas)
    ds = get_dataset("toy", split="train", size=cfg.model.input_size)
    batch = collate([ds[i] for i in range(a.batch_size)])
    batch = {k: v.to(dev) for k, v in batch.items() if isinstance(v, torch.Tensor)}

    def step():
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.amp == "bf16"):
            terms = net(batch)
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        opt.step()

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


if __name__ == "__main__":
    main()
