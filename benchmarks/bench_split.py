"""Whole-split batching of a sampling colorizer: the colorize time of a whole evaluation
split batch by batch (``sample_batches`` 1) against several canonical batches per
sampling call (the default 16), side by side in one process, plus the bound (one
teacher-forced forward pass of g over the split, batched the same way).

    python benchmarks/bench_split.py --threads 1 --repeats 3            # toy val, ours
    python benchmarks/bench_split.py --small                            # a quick check

``ours`` with random weights (timing does not depend on them) of the toy config; process
CPU time; medians over interleaved rounds; the chroma of both ways is checked equal.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from psc_eval.allocator import keep_freed_memory


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--sample-batches", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--small", action="store_true", help="64 images, batch 16, one round")
    a = ap.parse_args(argv)
    keep_freed_memory()  # as the command line does (PSC_MALLOC=system: glibc's defaults)
    if a.small:
        a.images, a.batch_size, a.repeats = 64, 16, 1
    torch.set_num_threads(a.threads)
    from psc_eval.colorize import canonical_batches, draw_samples, draw_samples_parts
    from psc_eval.colorizer import get_colorizer
    from psc_eval.data import collate, get_dataset

    ours = get_colorizer("ours", dataset="toy", weights="random", seed=0)
    ds = get_dataset("toy", split="val")
    parts = []
    for s, e in canonical_batches(min(a.images, len(ds)), a.batch_size):
        b = collate([ds[i] for i in range(s, e)])
        parts.append((b["L"], b["ab"], s, b["ids"]))

    def one_by_one():
        return [draw_samples(ours, L, ab, 1, 0, s, "cpu", ids, "ours") for L, ab, s, ids in parts]

    def chunked():
        out = []
        for i in range(0, len(parts), a.sample_batches):
            out += draw_samples_parts(ours, parts[i:i + a.sample_batches], 1, 0, "cpu", "ours")
        return out

    def forward():  # the bound: g's teacher-forced pass over the same chunks
        with torch.inference_mode():
            for i in range(0, len(parts), a.sample_batches):
                Ls = [p[0] for p in parts[i:i + a.sample_batches]]
                conds = [ours.net.condition(*ours._embed(L)) for L in Ls]
                c = torch.cat(conds)
                x = torch.zeros(c.shape[0], 2, *c.shape[-2:])
                ours.net.g(x, c)

    times: dict[str, list[float]] = {"batch_by_batch": [], "chunked": [], "forward": []}
    same = None
    for _ in range(a.repeats):
        for key, fn in (("batch_by_batch", one_by_one), ("chunked", chunked),
                        ("forward", forward)):
            t0 = time.process_time()
            out = fn()
            times[key].append(time.process_time() - t0)
            if key == "batch_by_batch":
                ref = out
            elif key == "chunked":
                same = all(torch.equal(x, y) for x, y in zip(ref, out))
    med = {k: statistics.median(v) for k, v in times.items()}
    res = {"images": sum(len(p[3]) for p in parts), "batch_size": a.batch_size,
           "sample_batches": a.sample_batches, "threads": a.threads, "median_s": med,
           "chunked_over_batch_by_batch": med["chunked"] / med["batch_by_batch"],
           "batch_by_batch_over_forward": med["batch_by_batch"] / med["forward"],
           "chunked_over_forward": med["chunked"] / med["forward"],
           "bit_identical": same}
    print(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
