"""``psc-eval regress``: re-score a fixed subset and compare every metric with an expected file.

The expected file (default ``reports/toy/expected.json``) names the subset (dataset, split,
size, the first ``limit`` images, seed, batch size), the judge and the rows; each metric
has an absolute tolerance with the reason for it. A plain run re-scores the rows (one CPU
thread, no cache), prints a table, and the verdict is an exit status:

* 0: every metric within its tolerance;
* 1: a metric moved (drift); the lines before the verdict say whether the judge, the image
  subset, the metric code or the row's own weights / code changed since the file was
  written, so a changed context is reported as such, not as drift of the method;
* 2: bad input (a missing, truncated or malformed expected file, a row it does not hold,
  an unknown colorizer): one line, ``psc-eval: error: ...``.

Rows: the registered methods (scored with the checkpoints shipped in the repository when
it ships one, so a fresh clone needs no training), a user's ``module:Class`` and
``--predictions [NAME=]DIR`` folders; the file's ``sources`` says how each row was built,
so a plain ``psc-eval regress --expected FILE`` re-scores the same rows. ``--update``
writes the current values (tolerances kept; new files get :data:`DEFAULT_TOLERANCE`) with
the identities they depend on: images, judge weights, metric code, each row's weights and
code, psc-eval's version.

A file that checks nothing is refused: it must name at least one metric, and every
tolerance is finite and at most :data:`MAX_TOLERANCE` of its metric (a tolerance of
Infinity, or one as wide as the metric's range, would pass anything).
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import torch

from ..errors import PscError

FORMAT = 2
REQUIRED = ("dataset", "split", "size", "limit", "seed", "batch_size", "judge", "rows",
            "tolerance")
DEFAULT_EXPECTED = Path(__file__).resolve().parents[2] / "reports" / "toy" / "expected.json"
REFERENCE = ("gray", "gt")

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


def _bad(path: Path, what: str, fix: str = "restore it or rewrite it with --update") -> None:
    raise ExpectedFileError(f"{what}, {path}, {fix}")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def load_expected(path: Path, *, allow_empty: bool = False) -> dict[str, Any]:
    """Read and check an expected file: every field of the right type, at least one metric
    (``allow_empty``: rows may list none yet, for ``--update``), tolerances finite and at
    most :func:`max_tolerance`."""
    if not path.is_file():
        _bad(path, "expected-metrics file not found",
             "pass --expected FILE or create it with --update")
    try:
        spec = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        _bad(path, f"expected-metrics file is not valid JSON ({str(e)[:80]})")
    if not isinstance(spec, dict):
        _bad(path, "expected-metrics file is not a JSON object")
    missing = [k for k in REQUIRED if k not in spec]
    if missing:
        _bad(path, f"expected-metrics file lacks {', '.join(missing)}")
    for k in ("dataset", "split", "judge"):
        if not isinstance(spec[k], str) or not spec[k]:
            _bad(path, f"{k} must be a name, got {spec[k]!r}", "fix the entry")
    for k, lo in (("size", 8), ("limit", 1), ("seed", 0), ("batch_size", 1)):
        if not _is_int(spec[k]) or spec[k] < lo:
            _bad(path, f"{k} must be an integer >= {lo}, got {spec[k]!r}", "fix the entry")
    tols, rows = spec["tolerance"], spec["rows"]
    if not isinstance(tols, dict):
        _bad(path, "tolerance must map metric -> {\"abs\": number, \"why\": text}",
             "fix the entry")
    for metric, tol in tols.items():
        if not (isinstance(tol, dict) and _is_num(tol.get("abs")) and isinstance(tol.get("why"), str)
                and math.isfinite(tol["abs"]) and tol["abs"] >= 0):
            _bad(path, f"tolerance of {metric!r} must be {{\"abs\": number >= 0, \"why\": text}}",
                 "fix the entry")
        if tol["abs"] > max_tolerance(metric):
            _bad(path, f"tolerance of {metric!r} is {tol['abs']:g}, above the most psc-eval "
                 f"accepts ({max_tolerance(metric):g})", "narrow it: a wider one passes a "
                 "broken method")
    if not isinstance(rows, dict) or not all(isinstance(m, dict) for m in rows.values()):
        _bad(path, "rows must map row -> {metric: value}", "fix the entry")
    for row, metrics in rows.items():
        unknown = [m for m in metrics if m not in tols]
        if unknown:
            _bad(path, f"row {row!r} has metrics without a tolerance ({', '.join(unknown)})",
                 "add their tolerances")
        bad = [m for m, v in metrics.items() if v is not None and not _is_num(v)]
        if bad:
            _bad(path, f"row {row!r} has non-numeric values ({', '.join(bad)})", "fix them")
    if not allow_empty:
        empty = [r for r, m in rows.items() if not m]
        if not rows or empty:
            what = "no rows" if not rows else f"row {empty[0]!r} lists no metric"
            _bad(path, f"expected-metrics file checks nothing ({what})",
                 "name the rows' metrics, e.g. psc-eval regress --update --colorizer NAME")
    sources = spec.get("sources", {})
    if not isinstance(sources, dict) or not all(isinstance(s, dict) for s in sources.values()):
        _bad(path, "sources must map row -> {\"colorizer\": NAME} or {\"predictions\": DIR}",
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


# ----------------------------------------------------------------------------- scoring


@dataclass
class _Row:
    name: str  # the row's name in results (a colorizer's ``name``)
    obj: Any  # the built colorizer
    source: dict[str, Any]  # how to build it again (written to the file's ``sources``)


def _source_of(spec_source: dict[str, Any] | None, row: str) -> dict[str, Any]:
    # files without ``sources`` (format 1) hold registered names scored with shipped weights
    return dict(spec_source) if spec_source else {"colorizer": row, "weights": "shipped"}


def _build(source: dict[str, Any], dataset: str, path: Path) -> Any:
    from ..colorizer import build_colorizer, resolve_colorizer_class
    from ..predictions import PredictionsColorizer
    from ..shipped import shipped

    if "predictions" in source:
        return PredictionsColorizer(source["predictions"], name=source.get("name"))
    name = source.get("colorizer")
    if not isinstance(name, str):
        _bad(path, f"a source names no colorizer ({source!r})", "fix the entry")
    weights = None
    if source.get("weights") == "shipped":
        # a colorizer may read another's checkpoint (psc-embedding reads ours)
        variant = getattr(resolve_colorizer_class(name), "weights_variant", name)
        weights = shipped(dataset, "colorizer", variant)
        if weights is None:
            raise ExpectedFileError(
                f"no shipped checkpoint of {name!r} for {dataset}, "
                f"reports/{dataset}/checkpoints, ship it, or rewrite the row with --update "
                "to score the checkpoint psc-eval finds by default")
    return build_colorizer(name, dataset, weights, "cpu")


def _new_source(c: Any, dataset: str) -> tuple[Any, dict[str, Any]]:
    """A row given on the command line or as an object -> (object, its source)."""
    from ..colorizer import resolve_colorizer_class
    from ..identity import class_path
    from ..methods import get_method
    from ..shipped import shipped

    if not isinstance(c, str):
        src = ({"predictions": str(c.folder), "name": c.name} if hasattr(c, "check_ids")
               else {"colorizer": class_path(c), "object": True})
        return c, src
    registered = get_method(c) is not None
    variant = getattr(resolve_colorizer_class(c), "weights_variant", c)
    use_shipped = registered and shipped(dataset, "colorizer", variant) is not None
    src = {"colorizer": c, "weights": "shipped" if use_shipped else "default"}
    return _build(src, dataset, Path("--colorizer")), src


def _scored_ids(ds: Any, limit: int) -> dict[str, Any]:
    fp = {k: v for k, v in ds.fingerprint().items() if k != "root"}
    ids = list(ds.ids[:limit])
    return {**fp, "scored": len(ids),
            "scored_ids_sha256": hashlib.sha256(json.dumps(ids).encode()).hexdigest()}


def judge_weights(spec: dict[str, Any]) -> Path:
    """The file's judge: the shipped one (a fresh clone trains nothing), else the one
    trained under $PSC_HOME."""
    from ..paths import judge_weights_path
    from ..shipped import shipped

    ds_name = spec["dataset"]
    judge = shipped(ds_name, "judge", spec["judge"])
    if judge is None:
        judge = judge_weights_path(ds_name, spec["judge"])
        if not judge.is_file():
            raise ExpectedFileError(
                f"no shipped {spec['judge']} judge for {ds_name}, "
                f"reports/{ds_name}/checkpoints, run psc-eval ship first or train one: "
                f"psc-eval train-judge --dataset {ds_name} --arch {spec['judge']}")
    return judge


def _evaluate(spec: dict[str, Any], rows: list[_Row]) -> tuple[dict[str, dict], dict]:
    """Score ``rows`` on the spec's subset -> (row -> {"metrics", "weights_sha256",
    "code_sha256"}, the context: images, judge weights sha256, metric code)."""
    from ..data import get_dataset
    from ..identity import scorer_code
    from ..metrics.base import scorer_classes
    from ..results import load_result
    from ..runner import run_eval

    ds_name = spec["dataset"]
    judge = judge_weights(spec)
    ds = get_dataset(ds_name, split=spec["split"], size=spec["size"])
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same summation order on every run
    try:
        with tempfile.TemporaryDirectory() as out:
            summary = run_eval("miou", [r.obj for r in rows] or ["gray"], ds,
                               segmenter=spec["judge"], weights=str(judge),
                               limit=spec["limit"], seed=spec["seed"],
                               batch_size=spec["batch_size"], device="cpu", cache=False,
                               progress=False, out=out)
            # read back through the one validated reader: a value the run-JSON schema
            # does not allow is an error here too, never a pass
            results = [load_result(p) for p in summary.paths] or list(summary.results)
    finally:
        torch.set_num_threads(old)
    got = {}
    for r in results:
        p = r.provenance
        got[r.colorizer] = {"metrics": dict(r.metrics),
                            "weights_sha256": p.get("colorizer_weights_sha256"),
                            "code_sha256": p.get("colorizer_code_sha256")}
    names = (results[0].provenance.get("config") or {}).get("metrics") or ()
    context = {
        "psc_eval_version": results[0].provenance.get("psc_eval_version"),
        "images": _scored_ids(ds, spec["limit"]),
        "judge_weights_sha256": results[0].provenance.get("judge_weights_sha256"),
        "metric_code": {n: scorer_code(c) for n, c in scorer_classes(tuple(names)).items()},
    }
    return got, context


def _changes(spec: dict[str, Any], context: dict[str, Any], got: dict[str, dict]
             ) -> tuple[list[str], dict[str, str]]:
    """What differs from the identities the file recorded -> (lines, row -> cause)."""
    lines: list[str] = []
    everyone: list[str] = []
    old_img, new_img = spec.get("images"), context["images"]
    if isinstance(old_img, dict) and old_img != new_img:
        keys = sorted(k for k in set(old_img) | set(new_img) if old_img.get(k) != new_img.get(k))
        lines.append(f"the image subset ({', '.join(keys)}): the rows are scored on other "
                     "images, not a drift of the methods")
        everyone.append("image subset changed")
    old_j = spec.get("judge_weights_sha256")
    if old_j and old_j != context["judge_weights_sha256"]:
        lines.append(f"the judge's weights (sha256 {str(old_j)[:12]} -> "
                     f"{str(context['judge_weights_sha256'])[:12]}): every row is judged by "
                     "another network, not a drift of the methods")
        everyone.append("judge changed")
    old_code = spec.get("metric_code")
    if isinstance(old_code, dict):
        changed = sorted(n for n, h in context["metric_code"].items()
                         if n in old_code and old_code[n] != h)
        if changed:
            lines.append(f"the metric code ({', '.join(changed)}: psc_eval/metrics or "
                         "psc_eval/color.py): values may move with the formulas, not with "
                         "the methods")
            everyone.append("metric code changed")
    per_row: dict[str, str] = {}
    for row, src in (spec.get("sources") or {}).items():
        if row not in got:
            continue
        what = [f"{k.split('_')[0]} (sha256 {str(src[k])[:12]} -> {str(got[row][k])[:12]})"
                for k in ("weights_sha256", "code_sha256")
                if src.get(k) and got[row][k] and src[k] != got[row][k]]
        if what:
            lines.append(f"{row}'s {' and '.join(what)}: the method itself changed")
            per_row[row] = f"{row}'s {' and '.join(w.split()[0] for w in what)} changed"
    causes = {row: "; ".join(everyone + ([per_row[row]] if row in per_row else []))
              for row in got}
    return lines, causes


def run_regress(expected: str | Path | None = None, *, colorizers: list[Any] | None = None,
                dataset: str | None = None, limit: int | None = None, split: str | None = None,
                size: int | None = None, update: bool = False) -> Outcome:
    """Score the rows of ``expected`` (or ``colorizers``: names, ``module:Class`` paths,
    colorizer objects or :class:`PredictionsColorizer`) and compare them with it.

    ``update`` writes the file (a new one when it does not exist: ``dataset`` / ``limit`` /
    ``split`` / ``size`` set its subset, default tolerances); a plain run refuses options
    that contradict the file (it would compare other images)."""
    from ..io import atomic_write_json

    path = Path(expected) if expected is not None else DEFAULT_EXPECTED
    colorizers = list(colorizers or [])
    asked = {"dataset": dataset, "limit": limit, "split": split, "size": size}
    if update and not path.exists():
        spec = _new_spec(dataset or "toy", limit, split, size)
    else:
        spec = load_expected(path, allow_empty=update)
        for k, v in asked.items():
            if v is not None and v != spec[k]:
                if not update:
                    _bad(path, f"the expected file is for {k} {spec[k]!r}, got --{k} {v!r}",
                         f"drop --{k}, or rewrite the file with --update --{k} {v}")
                spec[k] = v
    ds_name = spec["dataset"]
    judge_weights(spec)  # before any row is built: the cheapest check first
    sources = spec.get("sources") or {}
    rows: list[_Row] = []
    if colorizers:
        for c in colorizers:
            obj, src = _new_source(c, ds_name)
            name = getattr(obj, "name", str(c))
            if not update and name not in spec["rows"]:
                _bad(path, f"row {name!r} is not in the expected file (it holds "
                     f"{', '.join(spec['rows']) or 'no rows'})",
                     f"add it with --update --colorizer {c if isinstance(c, str) else name}")
            rows.append(_Row(name, obj, src))
    else:
        for row in spec["rows"]:
            if row in REFERENCE:
                continue
            src = _source_of(sources.get(row), row)
            if src.get("object"):
                _bad(path, f"row {row!r} was a colorizer object ({src['colorizer']})",
                     "pass it again: assert_metrics(colorizer, ...) or --colorizer")
            rows.append(_Row(row, _build(src, ds_name, path), src))
    if update:  # a new row gets every metric that has a tolerance
        for r in rows + [_Row(n, None, {}) for n in REFERENCE]:
            spec["rows"].setdefault(r.name, {})
    got, context = _evaluate(spec, rows)
    changes, causes = ([], {}) if update else _changes(spec, context, got)
    wanted = [r.name for r in rows] if colorizers and not update else list(spec["rows"])
    checks = []
    for row in wanted:
        if row not in got:
            _bad(path, f"row {row!r} was not scored", "check its name")
        metrics = spec["rows"][row]
        if update and not metrics:
            for m in got[row]["metrics"]:
                if m in spec["tolerance"] or _is_default_metric(m):
                    metrics[m] = None
        for metric, value in metrics.items():
            if metric not in got[row]["metrics"]:
                _bad(path, f"metric {metric!r} of row {row!r} is not produced by psc-eval "
                     "miou", "drop it or rename it")
            value_got = got[row]["metrics"][metric]
            c = Check(row, metric, _num(value), _num(value_got),
                      float(spec["tolerance"].get(metric, default_tolerance(metric))["abs"]))
            if not c.ok:
                c.cause = causes.get(row, "")
            checks.append(c)
    out = Outcome(path, spec, checks, changes)
    if update:
        out.moved_before_update = len(out.moved)
        for c in checks:
            spec["rows"][c.row][c.metric] = c.got
            spec["tolerance"].setdefault(c.metric, default_tolerance(c.metric))
        spec.update(context)
        spec["format"] = FORMAT
        src_out = dict(sources)
        for r in rows:
            src_out[r.name] = {**r.source, "weights_sha256": got[r.name]["weights_sha256"],
                               "code_sha256": got[r.name]["code_sha256"]}
        spec["sources"] = src_out
        atomic_write_json(path, _ordered(spec))
        load_expected(path)  # what we wrote must pass the checks a plain run makes
        out.updated = True
    return out


def _is_default_metric(m: str) -> bool:
    return m in DEFAULT_TOLERANCE


def _new_spec(dataset: str, limit: int | None, split: str | None, size: int | None
              ) -> dict[str, Any]:
    from ..data import get_dataset
    from ..judge.build import default_segmenter_name

    ds = get_dataset(dataset, split=split, size=size)
    return {"about": "psc-eval regress: the subset below is re-scored (one CPU thread, no "
                     "cache) and every metric is compared with its value here under its "
                     "tolerance. Rewrite with: psc-eval regress --update --expected FILE",
            "dataset": dataset, "split": ds.split, "size": ds.size,
            "limit": limit or min(96, len(ds)), "seed": 0, "batch_size": 32,
            "judge": default_segmenter_name(dataset), "rows": {}, "tolerance": {}}


_ORDER = ("about", "format", "psc_eval_version", "dataset", "split", "size", "limit", "seed",
          "batch_size", "judge", "judge_weights_sha256", "images", "metric_code", "rows",
          "sources", "tolerance")


def _ordered(spec: dict[str, Any]) -> dict[str, Any]:
    return {**{k: spec[k] for k in _ORDER if k in spec},
            **{k: v for k, v in spec.items() if k not in _ORDER}}


def _num(x: Any) -> float | None:
    return None if x is None else float(x)


def regress(expected: str | Path | None = None, update: bool = False) -> tuple[str, bool]:
    """-> (the table, whether every metric is within its tolerance)."""
    out = run_regress(expected, update=update)
    return out.text(), out.ok
