"""The benchmark's protocol trainings, run side by side: every trainable's protocol run
(training seed 0) and the training-seed spread (``SEED_SPREAD``), each in its
own folder under $PSC_HOME, resumed when interrupted, skipped when finished.

``train_protocol(dataset, jobs=N)`` runs the pending ones in N worker processes, each on
``cpus // N`` torch threads (at least one): two one-thread trainings on a 2-core CPU
finish about twice as fast as one after the other, while two two-thread ones would be
several times slower (oversubscribed threads). Bigger models are started first so the
lanes end together. A failed job is reported and the others go on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

# The protocol's training-seed spread: ours and the strongest baselines of the toy table,
# each trained with these seeds besides its config's own (0). The two strongest at seed 0
# (T = 1, the toy judge, 500 val images), with every baseline trained by the protocol and
# Polyak-averaged: Iizuka 71.6 and PIC (royer2017) 67.5. Zhang (65.4), chosen when it was
# second (before PIC was trained by the protocol and the five were averaged), stays: its
# seeds cost 50 CPU-min and show a classification baseline's spread.
SEED_SPREAD = {"ours": (1, 2), "iizuka2016": (1, 2), "royer2017": (1, 2),
               "zhang2016": (1, 2)}
# Started first (they take longest): the PixelCNN-sized models, then the rest.
SLOW = ("ours", "psc-film", "psc-purple-blue", "psc-purple", "royer2017")


@dataclass(frozen=True)
class Job:
    name: str
    seed: int

    def __str__(self) -> str:
        return f"{self.name} seed {self.seed}"


def _order(j: Job) -> tuple:
    return (j.seed != 0, j.name not in SLOW, SLOW.index(j.name) if j.name in SLOW else 0)


def protocol_jobs(names: Sequence[str], spread: dict[str, Sequence[int]]) -> list[Job]:
    """Seed 0 of every name, then the spread's seeds, slow models first within each."""
    jobs = [Job(n, 0) for n in names]
    jobs += [Job(n, s) for n, seeds in spread.items() if n in names for s in seeds]
    return sorted(jobs, key=_order)


def job_state(job: Job, dataset: str) -> tuple[str, Path]:
    """("absent" | "partial" | "finished", last.pt) of a protocol run."""
    from ..checkpoint import load_checkpoint
    last = seed_checkpoint(job.name, dataset, job.seed)
    if not last.is_file():
        return "absent", last
    ck = load_checkpoint(last)
    run = ck.get("run") or {}
    cap = int(((ck.get("config") or {}).get("train") or {}).get("epochs") or 0)
    done = bool(run.get("converged")) or (cap > 0 and int(ck.get("epoch") or 0) >= cap)
    return ("finished" if done else "partial"), last


def seed_checkpoint(name: str, dataset: str, seed: int) -> Path:
    """Where the protocol config of ``name`` trained with training seed ``seed`` lives."""
    from ..training.entry import resolve_config, run_folder

    cfg = resolve_config(name, dataset, {"train.seed": seed})[1]
    return run_folder(name, dataset, dataset, cfg)[0] / "last.pt"


def protocol_status(dataset: str, names: Sequence[str]) -> list[dict[str, Any]]:
    """One row per protocol run (every trainable's seed 0, then the seed spread): its state
    (absent / partial / finished), epochs, images seen, wall time and converged, from the
    checkpoint's run record; where it lives."""
    from ..checkpoint import load_checkpoint

    rows = []
    for j in protocol_jobs(names, SEED_SPREAD):
        state, last = job_state(j, dataset)
        row: dict[str, Any] = {"run": str(j), "state": state, "path": str(last)}
        if state != "absent":
            rec = load_checkpoint(last).get("run") or {}
            row.update({k: rec.get(k) for k in ("epochs", "images_seen", "wall_s",
                                                "converged")})
        rows.append(row)
    return rows


def _train_one(job: Job, dataset: str, device: str, threads: int,
               overrides: dict[str, Any] | None) -> str:
    """One worker's job (a top-level function: it runs in a spawned process)."""
    import torch

    from ..allocator import keep_freed_memory
    from ..training.entry import train
    keep_freed_memory()  # a spawned process: the command line's setting is not inherited
    torch.set_num_threads(threads)
    last = seed_checkpoint(job.name, dataset, job.seed) if not overrides else None
    res = train(job.name, dataset, dataset, device=device, seed=job.seed,
                resume="last" if last is not None and last.is_file() else None,
                progress=False, overrides=overrides)
    rec = (res.history[-1] if res.history else {})
    return f"{len(res.history)} epochs, {res.wall_s:.0f} s, images seen " \
           f"{rec.get('images_seen', '?')}"


def train_protocol(dataset: str, jobs: Sequence[Job], *, workers: int = 1,
                   device: str = "cpu", echo: Callable[[str], None] = print,
                   overrides: dict[str, Any] | None = None) -> dict[str, str]:
    """Train every job not yet finished, ``workers`` at a time; job -> outcome.
    ``overrides`` (tests): config values applied to every job (its folder is then keyed on
    them, never the protocol's)."""
    pending = []
    out: dict[str, str] = {}
    for j in sorted(jobs, key=_order):
        state, _ = job_state(j, dataset) if not overrides else ("absent", None)
        if state == "finished":
            out[str(j)] = "finished before"
        else:
            pending.append(j)
    if not pending:
        return out
    workers = max(1, min(workers, len(pending)))
    threads = max(1, (os.cpu_count() or 1) // workers)
    echo(f"training {len(pending)} protocol runs, {workers} at a time, {threads} thread(s) "
         "each: " + ", ".join(map(str, pending)))
    if workers == 1:
        for j in pending:
            t0 = time.perf_counter()
            out[str(j)] = _run(j, dataset, device, threads, overrides)
            echo(f"  {j}: {out[str(j)]} ({time.perf_counter() - t0:.0f} s)")
        return out
    before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(threads)  # read by torch when a worker starts
    try:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            running = {pool.submit(_run, j, dataset, device, threads, overrides): j
                       for j in pending}
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for f in done:
                    j = running.pop(f)
                    try:
                        out[str(j)] = f.result()
                    except BrokenProcessPool:  # a worker killed (out of memory, a signal)
                        out[str(j)] = ("FAILED: its worker process died (out of memory or "
                                       "killed); rerun to resume it")
                    echo(f"  {j}: {out[str(j)]}")
    finally:
        if before is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = before
    return out


def _run(job: Job, dataset: str, device: str, threads: int,
         overrides: dict[str, Any] | None) -> str:
    try:
        return "trained: " + _train_one(job, dataset, device, threads, overrides)
    except Exception as e:  # noqa: BLE001 -- one failed job never stops the others
        from ..errors import PscError

        why = e.one_line() if isinstance(e, PscError) else f"{type(e).__name__}: {e}"
        return f"FAILED: {why}"
