"""The expected-metrics file of ``psc-eval regress``: its format, its checks on read, the
default tolerances with their reasons, and one run's outcome with its renderings (console
table, JUnit XML, Markdown summary). Scoring is ``psc_eval.experiments.regress``."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from ..errors import PscError

FORMAT = 2
REQUIRED = ("dataset", "split", "size", "limit", "seed", "batch_size", "judge", "rows",
            "tolerance")
DEFAULT_EXPECTED = Path(__file__).resolve().parents[2] / "reports" / "toy" / "expected.json"

# Measured run-to-run spread (this 2-core CPU, toy val, first 96 images, the 10 rows of
# reports/toy/expected.json, 90 metrics): three runs with one torch thread and one with
# two threads repeat every metric to the last bit, except the bootstrap bounds, which
# differ by at most 1.1e-16 (numpy's summation of resampled means). The spread on ONE
# machine is therefore 0; the tolerances below are the margin for another CPU or BLAS
# (a few judged pixels changing label, a few uint8 levels), each far below the smallest
# change the report shows (0.1 mIoU point, 0.01 dB). A GPU or another CPU was not
# available to measure that margin; widen a tolerance in the file, with its reason, if
# your CI machine shows more.
SPREAD = "measured run-to-run spread 0 (3 runs, 1 and 2 threads)"
DEFAULT_TOLERANCE: dict[str, dict[str, Any]] = {
    "miou": {"abs": 1e-4, "why": f"{SPREAD}; 1e-4 admits a few of the judged pixels "
             "changing label on another CPU or BLAS, while any change visible in Table 3 "
             "(1e-3) fails"},
    "pixel_accuracy": {"abs": 1e-4, "why": f"{SPREAD}; as mIoU: a few pixels of another "
                       "CPU's rounding"},
    "mean_accuracy": {"abs": 1e-4, "why": "as mIoU: a few pixels of another CPU's rounding"},
    "psnr": {"abs": 1e-3, "why": f"{SPREAD}; PSNR of uint8 images: a one-level change of "
             "a few pixels moves it by ~1e-4 dB; 1e-3 dB is far below any real change"},
    "psnr_ab": {"abs": 1e-3, "why": f"{SPREAD}; as psnr, on the chroma alone"},
    "miou_ci_low": {"abs": 1e-3, "why": "measured run-to-run spread 1.1e-16; bootstrap "
                    "bounds with a fixed seed move with mIoU and with per-image counts"},
    "miou_ci_high": {"abs": 1e-3, "why": "as miou_ci_low"},
    "semantic_accuracy": {"abs": 1e-3, "why": f"{SPREAD}; a rate over ~1000 segments: "
                          "one segment is 1e-3"},
    "pollution_spread": {"abs": 1e-3, "why": f"{SPREAD}; ratio of dataset sums in "
                         "float64: only rounding on another CPU"},
    "pollution_boundary": {"abs": 1e-3, "why": "as pollution_spread"},
}
FALLBACK_TOLERANCE = {"abs": 1e-3, "why": "no measured spread for this metric: psc-eval's "
                      "metrics repeat exactly on one machine; 1e-3 admits another CPU's "
                      "rounding. Widen it (with the reason) if your metric is noisier"}
# The widest tolerance a file may state: 5 points of a rate in [0, 1], 1 dB, 1 unit of an
# unbounded ratio. Wider ones would let a broken method pass.
MAX_TOLERANCE: dict[str, float] = {"psnr": 1.0, "psnr_ab": 1.0, "pollution_spread": 1.0}
MAX_RATE_TOLERANCE = 0.05


def max_tolerance(metric: str) -> float:
    return MAX_TOLERANCE.get(metric, MAX_RATE_TOLERANCE)


def default_tolerance(metric: str) -> dict[str, Any]:
    return dict(DEFAULT_TOLERANCE.get(metric, FALLBACK_TOLERANCE))


class ExpectedFileError(PscError):
    """The expected-metrics file is missing, malformed or for another setup."""


def bad_file(path: Path, what: str, fix: str = "restore it or rewrite it with --update") -> None:
    raise ExpectedFileError(f"{what}, {path}, {fix}")


def is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def load_expected(path: Path, *, allow_empty: bool = False) -> dict[str, Any]:
    """Read and check an expected file: every field of the right type, at least one metric
    (``allow_empty``: rows may list none yet, for ``--update``), tolerances finite and at
    most :func:`max_tolerance`."""
    if not path.is_file():
        bad_file(path, "expected-metrics file not found",
             "pass --expected FILE or create it with --update")
    try:
        spec = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        bad_file(path, f"expected-metrics file is not valid JSON ({str(e)[:80]})")
    if not isinstance(spec, dict):
        bad_file(path, "expected-metrics file is not a JSON object")
    missing = [k for k in REQUIRED if k not in spec]
    if missing:
        bad_file(path, f"expected-metrics file lacks {', '.join(missing)}")
    for k in ("dataset", "split", "judge"):
        if not isinstance(spec[k], str) or not spec[k]:
            bad_file(path, f"{k} must be a name, got {spec[k]!r}", "fix the entry")
    for k, lo in (("size", 8), ("limit", 1), ("seed", 0), ("batch_size", 1)):
        if not is_int(spec[k]) or spec[k] < lo:
            bad_file(path, f"{k} must be an integer >= {lo}, got {spec[k]!r}", "fix the entry")
    tols, rows = spec["tolerance"], spec["rows"]
    if not isinstance(tols, dict):
        bad_file(path, "tolerance must map metric -> {\"abs\": number, \"why\": text}",
             "fix the entry")
    for metric, tol in tols.items():
        if not (isinstance(tol, dict) and is_num(tol.get("abs")) and isinstance(tol.get("why"), str)
                and math.isfinite(tol["abs"]) and tol["abs"] >= 0):
            bad_file(path, f"tolerance of {metric!r} must be {{\"abs\": number >= 0, \"why\": text}}",
                 "fix the entry")
        if tol["abs"] > max_tolerance(metric):
            bad_file(path, f"tolerance of {metric!r} is {tol['abs']:g}, above the most psc-eval "
                 f"accepts ({max_tolerance(metric):g})", "narrow it: a wider one passes a "
                 "broken method")
    if not isinstance(rows, dict) or not all(isinstance(m, dict) for m in rows.values()):
        bad_file(path, "rows must map row -> {metric: value}", "fix the entry")
    for row, metrics in rows.items():
        unknown = [m for m in metrics if m not in tols]
        if unknown:
            bad_file(path, f"row {row!r} has metrics without a tolerance ({', '.join(unknown)})",
                 "add their tolerances")
        bad = [m for m, v in metrics.items() if v is not None and not is_num(v)]
        if bad:
            bad_file(path, f"row {row!r} has non-numeric values ({', '.join(bad)})", "fix them")
    if not allow_empty:
        empty = [r for r, m in rows.items() if not m]
        if not rows or empty:
            what = "no rows" if not rows else f"row {empty[0]!r} lists no metric"
            bad_file(path, f"expected-metrics file checks nothing ({what})",
                 "name the rows' metrics, e.g. psc-eval regress --update --colorizer NAME")
    sources = spec.get("sources", {})
    if not isinstance(sources, dict) or not all(isinstance(s, dict) for s in sources.values()):
        bad_file(path, "sources must map row -> {\"colorizer\": NAME} or {\"predictions\": DIR}",
             "fix the entry")
    return spec


@dataclass
class Check:
    row: str
    metric: str
    expected: float | None
    got: float | None
    tol: float
    cause: str = ""  # what changed besides the method, when it moved

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

    @property
    def diff(self) -> float:
        a, b = self.expected, self.got
        if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
            return float("nan")
        return b - a


@dataclass
class Outcome:
    """One regress run: the checks, what changed around them, and its renderings."""

    path: Path
    spec: dict[str, Any]
    checks: list[Check]
    changes: list[str] = field(default_factory=list)  # context lines ("judge changed ...")
    updated: bool = False
    moved_before_update: int = 0

    @property
    def moved(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def ok(self) -> bool:
        return self.updated or not self.moved

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def head(self) -> str:
        s = self.spec
        return (f"psc-eval regress: {s['dataset']}/{s['split']}, first {s['limit']} images at "
                f"{s['size']} px, seed {s['seed']}, judge {s['judge']}, {self.path}")

    def text(self) -> str:
        cols = (f"  {'row':<18}{'metric':<22}{'expected':>16}{'got':>16}{'diff':>12}"
                f"{'tolerance':>11}  status")
        lines = [self.head(), cols]
        for c in self.checks:
            lines.append(f"  {c.row:<18}{c.metric:<22}{_fmt(c.expected):>16}{_fmt(c.got):>16}"
                         f"{_fmt(c.diff):>12}{c.tol:>11.2g}  {'ok' if c.ok else 'MOVED'}")
        lines += [f"changed since the expected file: {x}" for x in self.changes]
        n = len(self.checks)
        if self.updated:
            lines.append(f"updated {self.path}: {self.moved_before_update} of {n} values "
                         "changed")
        else:
            moved = self.moved
            lines.append(f"{n - len(moved)} of {n} metrics within tolerance"
                         + (f"; MOVED: {', '.join(f'{c.row}.{c.metric}' for c in moved)}"
                            if moved else ""))
        return "\n".join(lines)

    def junit_xml(self) -> str:
        """JUnit XML: one test case per (row, metric), failed when it moved."""
        cases = []
        for c in self.checks:
            head = f'    <testcase classname={quoteattr("regress." + c.row)} ' \
                   f'name={quoteattr(c.metric)} time="0">'
            if c.ok or self.updated:
                cases.append(head + "</testcase>")
                continue
            msg = (f"{c.row}.{c.metric}: expected {_fmt(c.expected)}, got {_fmt(c.got)}, "
                   f"diff {_fmt(c.diff)} > tolerance {c.tol:g}"
                   + (f" ({c.cause})" if c.cause else ""))
            cases.append(f"{head}\n      <failure message={quoteattr(msg)} type=\"drift\">"
                         f"</failure>\n    </testcase>")
        fails = 0 if self.updated else len(self.moved)
        return ("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<testsuites>\n"
                f"  <testsuite name=\"psc-eval regress\" tests=\"{len(self.checks)}\" "
                f"failures=\"{fails}\" errors=\"0\" skipped=\"0\">\n"
                + "\n".join(cases) + "\n  </testsuite>\n</testsuites>\n")

    def summary_md(self) -> str:
        """A Markdown summary for a CI job page: the verdict, what changed, what moved."""
        s, moved = self.spec, self.moved
        verdict = ("updated" if self.updated else "**passed**" if not moved
                   else f"**failed**: {len(moved)} of {len(self.checks)} metrics moved")
        where = (f"{s['dataset']}/{s['split']}, first {s['limit']} images at {s['size']} px, "
                 f"seed {s['seed']}, judge {s['judge']}; expected file `{self.path}`.")
        lines = [f"### psc-eval regress: {verdict}", "", where, ""]
        lines += [f"- changed since the expected file: {x}" for x in self.changes]
        if self.changes:
            lines.append("")
        show = moved if moved and not self.updated else self.checks
        lines += ["| row | metric | expected | got | diff | tolerance | status |",
                  "|:--|:--|--:|--:|--:|--:|:--|"]
        lines += [f"| {c.row} | {c.metric} | {_fmt(c.expected)} | {_fmt(c.got)} | "
                  f"{_fmt(c.diff)} | {c.tol:g} | {'ok' if c.ok else 'MOVED'} |" for c in show]
        return "\n".join(lines) + "\n"


def _fmt(x: float | None) -> str:
    if x is None:
        return "none"
    return f"{x:.10g}"
