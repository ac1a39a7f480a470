"""Old against new ``psc-eval miou`` pipeline: ``bench_pipeline.py`` run in separate
processes with the old or the new ``psc_eval`` package first on ``PYTHONPATH``,
interleaved old, new, new, old, ...; each process times the judge alone and the threaded
pipeline (``--no-inline``) and reports their ratio (medians of ``--repeats``) and the
main thread's time outside the judge's calls over the judge (the steadier figure).

    git worktree add /tmp/old <commit>
    python benchmarks/bench_pipeline_ab.py --old /tmp/old --rounds 4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def one(root: Path, repeats: int, extra: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS="1", PSC_SCORE_THREAD="1")
    out = subprocess.run([sys.executable, str(HERE / "bench_pipeline.py"), "--threads", "1",
                          "--repeats", str(repeats), "--no-inline", "--memory-sizes", "",
                          *extra], env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out[out.index("{"):])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--old", required=True, help="a checkout of the old code")
    ap.add_argument("--new", default=str(HERE.parent), help="the new code (this checkout)")
    ap.add_argument("--rounds", type=int, default=4, help="processes of each code")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--small", action="store_true", help="8 images, one round (a test)")
    args = ap.parse_args(argv)
    extra = ["--small"] if args.small else []
    rounds = 1 if args.small else args.rounds
    trees = {"old": Path(args.old).resolve(), "new": Path(args.new).resolve()}
    runs: dict[str, list[dict]] = {k: [] for k in trees}  # each process's results
    for r in range(rounds):
        for name in (["old", "new"] if r % 2 == 0 else ["new", "old"]):
            d = one(trees[name], args.repeats, extra)
            runs[name].append(d)
            print(f"{name}: judge {d['judge_median_s']:.2f} s, pipeline "
                  f"{d['pipeline_median_s']:.2f} s, ratio {d['ratio']:.3f}, outside the "
                  f"judge {d['outside_judge_over_judge']:.3f}, load {d['load_avg_1min']}",
                  flush=True)
    res = {}
    for k, ds in runs.items():
        ratios = [d["ratio"] for d in ds]
        outside = [d["outside_judge_over_judge"] for d in ds]
        res[k] = {"ratios": ratios, "median": statistics.median(ratios), "outside": outside,
                  "outside_median": statistics.median(outside)}
    print(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
