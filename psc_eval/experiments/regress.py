"""``psc-eval regress``: re-evaluate a fixed toy subset and compare with expected metrics.

The expected file (``reports/toy/expected.json``) names the subset (dataset, split, size,
first ``limit`` images, seed, batch size), the judge and the rows, all scored with the
checkpoints shipped in the repository (``psc_eval.shipped``), one CPU thread, no cache;
each metric has an absolute tolerance with the reason for it. Every metric is compared;
the table shows what moved; exit status 1 on drift (2 for a bad expected file).
``--update`` rewrites the expected values (tolerances kept) and prints the differences.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import PscError

REQUIRED = ("dataset", "split", "size", "limit", "seed", "batch_size", "judge", "rows",
            "tolerance")
DEFAULT_EXPECTED = Path(__file__).resolve().parents[2] / "reports" / "toy" / "expected.json"


class ExpectedFileError(PscError):
    """The expected-metrics file is missing, malformed or for another setup."""


def load_expected(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ExpectedFileError(f"expected-metrics file not found, {path}, pass --expected "
                                "FILE or create it with --update")
    try:
        spec = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ExpectedFileError(f"expected-metrics file is not valid JSON ({e}), {path}, "
                                "restore it or rewrite it with --update") from None
    missing = [k for k in REQUIRED if k not in spec]
    if missing:
        raise ExpectedFileError(f"expected-metrics file lacks {', '.join(missing)}, {path}, "
                                "restore it or rewrite it with --update")
    for metric, tol in spec["tolerance"].items():
        if not (isinstance(tol, dict) and isinstance(tol.get("abs"), (int, float))
                and tol["abs"] >= 0 and isinstance(tol.get("why"), str)):
            raise ExpectedFileError(
                f"tolerance of {metric!r} must be {{\"abs\": number >= 0, \"why\": text}}, "
                f"{path}, fix the entry")
    for row, metrics in spec["rows"].items():
        unknown = [m for m in metrics if m not in spec["tolerance"]]
        if unknown:
            raise ExpectedFileError(f"row {row!r} has metrics without a tolerance "
                                    f"({', '.join(unknown)}), {path}, add their tolerances")
    return spec


@dataclass
class Check:
    row: str
    metric: str
    expected: float | None
    got: float | None
    tol: float

    @property
    def ok(self) -> bool:
        a, b = self.expected, self.got
        if a is None or b is None:
            return a is b
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        if math.isinf(a) or math.isinf(b):
            return a == b
        return abs(a - b) <= self.tol


def _evaluate(spec: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Score the spec's rows with the shipped checkpoints; row -> metric -> value."""
    from ..colorizer import build_colorizer, resolve_colorizer_class
    from ..data import get_dataset
    from ..runner import run_eval
    from ..shipped import shipped

    ds_name = spec["dataset"]
    judge = shipped(ds_name, "judge", spec["judge"])
    if judge is None:
        raise ExpectedFileError(f"no shipped {spec['judge']} judge for {ds_name}, "
                                f"reports/{ds_name}/checkpoints, run psc-eval ship first")
    rows = []
    for name in spec["rows"]:
        if name in ("gray", "gt"):
            continue
        # a colorizer may read another's checkpoint (psc-embedding reads ours)
        variant = getattr(resolve_colorizer_class(name), "weights_variant", name)
        weights = shipped(ds_name, "colorizer", variant)
        if weights is None:
            raise ExpectedFileError(f"no shipped checkpoint of {name!r} for {ds_name}, "
                                    f"reports/{ds_name}/checkpoints, ship it or drop the row")
        rows.append(build_colorizer(name, ds_name, weights, "cpu"))
    ds = get_dataset(ds_name, split=spec["split"], size=spec["size"])
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same summation order on every run
    try:
        with tempfile.TemporaryDirectory() as out:
            summary = run_eval("miou", rows or ["gray"], ds, segmenter=spec["judge"],
                               weights=str(judge), limit=spec["limit"], seed=spec["seed"],
                               batch_size=spec["batch_size"], device="cpu", cache=False,
                               progress=False, out=out)
    finally:
        torch.set_num_threads(old)
    return {r.colorizer: dict(r.metrics) for r in summary.results}


def _num(x: Any) -> float | None:
    return None if x is None else float(x)


def regress(expected: str | Path | None = None, update: bool = False) -> tuple[str, bool]:
    """-> (the table, whether every metric is within its tolerance)."""
    path = Path(expected) if expected is not None else DEFAULT_EXPECTED
    spec = load_expected(path)
    got = _evaluate(spec)
    checks = []
    if update:  # a row listed without metrics gets every metric that has a tolerance
        for row, metrics in spec["rows"].items():
            if not metrics:
                metrics.update({m: None for m in spec["tolerance"] if m in got.get(row, {})})
    for row, metrics in spec["rows"].items():
        if row not in got:
            raise ExpectedFileError(f"row {row!r} was not scored, {path}, check its name")
        for metric, value in metrics.items():
            if metric not in got[row]:
                raise ExpectedFileError(f"metric {metric!r} of row {row!r} is not produced "
                                        f"by psc-eval miou, {path}, drop it or rename it")
            checks.append(Check(row, metric, _num(value), _num(got[row][metric]),
                                float(spec["tolerance"][metric]["abs"])))
    head = (f"psc-eval regress: {spec['dataset']}/{spec['split']}, first {spec['limit']} "
            f"images at {spec['size']} px, seed {spec['seed']}, judge {spec['judge']} "
            f"(shipped), {path}")
    cols = (f"  {'row':<18}{'metric':<22}{'expected':>16}{'got':>16}{'diff':>12}"
            f"{'tolerance':>11}  status")
    lines = [head, cols]
    for c in checks:
        finite = None not in (c.got, c.expected) and math.isfinite(c.got) \
            and math.isfinite(c.expected)
        diff = c.got - c.expected if finite else float("nan")
        lines.append(f"  {c.row:<18}{c.metric:<22}{_fmt(c.expected):>16}{_fmt(c.got):>16}"
                     f"{_fmt(diff):>12}{c.tol:>11.2g}  {'ok' if c.ok else 'MOVED'}")
    moved = [c for c in checks if not c.ok]
    ok = not moved
    if update:
        for c in checks:
            spec["rows"][c.row][c.metric] = c.got
        from ..io import atomic_write_json

        atomic_write_json(path, spec)
        lines.append(f"updated {path}: {len(moved)} of {len(checks)} values changed")
        ok = True
    else:
        lines.append(f"{len(checks) - len(moved)} of {len(checks)} metrics within tolerance"
                     + (f"; MOVED: {', '.join(f'{c.row}.{c.metric}' for c in moved)}"
                        if moved else ""))
    return "\n".join(lines), ok


def _fmt(x: float | None) -> str:
    if x is None:
        return "none"
    return f"{x:.10g}"
