"""Training-step throughput of the single-output baselines beside the paper's model.

    OMP_NUM_THREADS=1 python benchmarks/bench_train_baselines.py --threads 1

Each method's own ``TrainMethod`` (zhang2016, iizuka2016, larsson2016 with their toy
configs; ``ours`` with models/configs/toy.toml) runs forward + loss + backward + optimiser
step on one fixed batch of toy images (data loading excluded), methods interleaved over
``--rounds`` rounds so a load change on a shared CPU hits all of them alike; the median
round is printed as steps/s and images/s. Results go to reports/perf.md ("Training step
throughput of the single-output baselines").
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from machine import cpu_name  # benchmarks/machine.py

from psc_eval.allocator import keep_freed_memory
from psc_eval.data import collate, get_dataset
from psc_eval.training import step_generator


def build(name: str):
    """(method, input size) of a toy-config method built as psc-eval train builds it
    (record -> config -> prepare -> build), seeded; statistics (Zhang's prior) from 64
    training images."""
    from psc_eval.training.entry import resolve_config

    cls, cfg = resolve_config(name, "toy")
    ds = get_dataset("toy", split="train", size=cls.input_size(cfg)).subset(64)
    cls.prepare(name, cfg, ds)
    torch.manual_seed(0)
    return cls.build(name, cfg, ds), cls.input_size(cfg)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="ours,zhang2016,iizuka2016,larsson2016")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5, help="steps per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    keep_freed_memory()  # as the command line does (PSC_MALLOC=system: glibc's defaults)
    torch.set_num_threads(a.threads)
    runs = {}
    for name in a.methods.split(","):
        method, size = build(name)
        method.model.train()
        opt = method.configure_optimizers(1000)[0].optimizer
        ds = get_dataset("toy", split="train", size=size)
        batch = collate([ds[i] for i in range(a.batch_size)])
        runs[name] = (method, opt, batch)

    def step(name: str, i: int) -> None:
        method, opt, batch = runs[name]
        terms = method.training_step(method.model, batch, opt_index=0,
                                     generator=step_generator(0, i))
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        opt.step()

    for name in runs:  # warm-up
        step(name, 0)
    times: dict[str, list[float]] = {n: [] for n in runs}
    for r in range(a.rounds):
        for name in runs:
            t0 = time.perf_counter()
            for i in range(a.steps):
                step(name, 1 + r * a.steps + i)
            times[name].append((time.perf_counter() - t0) / a.steps)
    print(f"nproc={os.cpu_count()} cpu={cpu_name()} torch={torch.__version__} "
          f"threads={torch.get_num_threads()} batch={a.batch_size} load1={os.getloadavg()[0]:.1f}")
    print("| method | parameters | steps/s | images/s | ms/step |")
    print("|---|---|---|---|---|")
    for name, ts in times.items():
        dt = statistics.median(ts)
        n = sum(p.numel() for p in runs[name][0].model.parameters() if p.requires_grad)
        print(f"| {name} | {n:,} | {1 / dt:.3f} | {a.batch_size / dt:.1f} | {1000 * dt:.0f} |")


if __name__ == "__main__":
    main()
