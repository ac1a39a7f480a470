"""Benchmark: glibc's default malloc against ``psc_eval.allocator.keep_freed_memory()``
(what the command line sets), on the work users wait for, in fresh processes.

    python benchmarks/bench_allocator.py                    # all workloads, 4 rounds
    python benchmarks/bench_allocator.py --workloads train-ours --rounds 6
    python benchmarks/bench_allocator.py --small            # seconds; a test runs this

Each round runs every workload twice, in two new processes (``PSC_MALLOC=system``, then
the kept setting; the order alternates between rounds), one torch thread. A process
warms up, then times ``--steps`` repetitions; it reports the median wall time, the
minor page faults per repetition, its peak RSS, and a digest of what the work computed
(the loss after every step, the samples, the logits), so the two settings are checked
bit-identical.
Workloads (toy sizes):

* ``train-ours``: the training step of ``ours`` (batch 16: forward, the Eq. 6 losses,
  backward, Adam), one fixed batch;
* ``train-zhang2016``: the same for zhang2016 (built as ``psc-eval train`` builds it);
* ``sample-16`` / ``sample-128``: the cached PixelCNN++ sampler over a 16x16 canvas,
  random generator weights, batch 16 / 128;
* ``judge``: the toy judge's (DeepLabv3+ MobileNetV2, random weights) logits for 32
  images of 64x64.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

from machine import cpu_name  # benchmarks/machine.py

WORKLOADS = ("train-ours", "train-zhang2016", "sample-16", "sample-128", "judge")


def _setup(name: str, small: bool):
    """The work of one workload: a function that returns a tensor (what it computed)."""
    import torch

    from psc_eval.data import collate, get_dataset

    batch_size = 2 if small else 16
    if name.startswith("train-"):
        from bench_train_baselines import build

        from psc_eval.training import step_generator

        method, size = build(name[len("train-"):])
        ds = get_dataset("toy", split="train", size=size)
        method.model.train()
        opt = method.configure_optimizers(1000)[0].optimizer
        batch = collate([ds[i] for i in range(batch_size)])
        step = [0]

        def work():
            terms = method.training_step(method.model, batch, opt_index=0,
                                         generator=step_generator(0, step[0]))
            opt.zero_grad(set_to_none=True)
            terms["total"].backward()
            opt.step()
            step[0] += 1
            return terms["total"].detach()
        return work
    if name.startswith("sample-"):
        from psc_eval.models.config import generator_config, load_config
        from psc_eval.models.pixelcnn import ConditionalPixelCNNpp
        from psc_eval.models.sampling import sample

        cfg = load_config("toy")
        n = 2 if small else int(name[len("sample-"):])
        cond_ch = cfg.model.emb_channels + 10
        size = cfg.model.input_size // 4
        torch.manual_seed(0)
        net = ConditionalPixelCNNpp(generator_config(cfg.model), cond_ch).eval()
        cond = torch.randn(n, cond_ch, size, size, generator=torch.Generator().manual_seed(1))

        def work():
            with torch.inference_mode():
                return sample(net, cond, generator=torch.Generator().manual_seed(0))
        return work
    if name == "judge":
        from psc_eval.judge import load_segmenter

        torch.manual_seed(0)
        seg = load_segmenter("deeplabv3plus-mobilenetv2", weights=None, num_classes=10)
        ds = get_dataset("toy", split="val", size=64)
        x = collate([ds[i] for i in range(2 if small else 32)])["rgb"].float()

        def work():
            with torch.inference_mode():
                return seg.logits(x)
        return work
    raise SystemExit(f"bench_allocator: unknown workload {name!r}; use one of {WORKLOADS}")


def worker(name: str, steps: int, warmup: int, small: bool) -> dict:
    """Run in the child process: time one workload under the allocator it was started with."""
    import torch

    from psc_eval.allocator import keep_freed_memory

    kept = keep_freed_memory()
    torch.set_num_threads(1)
    work = _setup(name, small)
    h = hashlib.sha256()
    for _ in range(warmup):
        h.update(work().numpy().tobytes())
    times, faults = [], []
    for _ in range(steps):
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        out = work()
        times.append(time.perf_counter() - t0)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
        h.update(out.numpy().tobytes())
    return {"kept": kept, "ms": 1e3 * statistics.median(times), "faults": statistics.median(faults),
            "digest": h.hexdigest()[:16],
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _child(name: str, setting: str, a) -> dict:
    env = {**os.environ, "PSC_MALLOC": setting, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", name,
           "--steps", str(a.steps), "--warmup", str(a.warmup)] + (["--small"] if a.small else [])
    out = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"bench_allocator: the {name} worker failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=6, help="timed repetitions per process")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--small", action="store_true", help="tiny inputs, 1 round (a test)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.small:
        a.rounds, a.steps, a.warmup = 1, 2, 1
    if a.worker:
        res = worker(a.worker, a.steps, a.warmup, a.small)
        print(json.dumps(res))
        return res
    names = [w for w in a.workloads.split(",") if w]
    runs: dict[str, dict[str, list[dict]]] = {n: {"system": [], "kept": []} for n in names}
    for r in range(a.rounds):
        for n in names:
            for setting in (("system", "kept") if r % 2 == 0 else ("kept", "system")):
                runs[n][setting].append(_child(n, setting, a))
    out = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                      f"{cpu_name()}", "load_avg_1min": os.getloadavg()[0], "workloads": {}}
    print(f"{out['machine']}; one torch thread; {a.rounds} rounds x {a.steps} repetitions; "
          f"load {out['load_avg_1min']:.1f}")
    print("| workload | system malloc ms | kept ms | system / kept | faults per rep. "
          "(system, kept) | peak RSS MB (system, kept) | same results |")
    print("|---|---|---|---|---|---|---|")
    for n, by in runs.items():
        ms = {s: statistics.median(x["ms"] for x in v) for s, v in by.items()}
        faults = {s: statistics.median(x["faults"] for x in v) for s, v in by.items()}
        rss = {s: max(x["max_rss_mb"] for x in v) for s, v in by.items()}
        same = len({x["digest"] for v in by.values() for x in v}) == 1
        row = {"system_ms": ms["system"], "kept_ms": ms["kept"],
               "ratio": ms["system"] / ms["kept"], "faults_system": faults["system"],
               "faults_kept": faults["kept"], "max_rss_mb_system": rss["system"],
               "max_rss_mb_kept": rss["kept"], "bit_identical": same,
               "kept_took_effect": all(x["kept"] for x in by["kept"]),
               "per_process_ms": {s: [round(x["ms"], 1) for x in v] for s, v in by.items()}}
        out["workloads"][n] = row
        print(f"| {n} | {ms['system']:.1f} | {ms['kept']:.1f} | {row['ratio']:.2f} | "
              f"{faults['system']:.0f}, {faults['kept']:.0f} | {rss['system']:.0f}, "
              f"{rss['kept']:.0f} | {same} |")
    return out


if __name__ == "__main__":
    main()
