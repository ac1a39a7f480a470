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
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .expected import (
    DEFAULT_EXPECTED,
    DEFAULT_TOLERANCE,
    FORMAT,
    Check,
    ExpectedFileError,
    Outcome,
    bad_file,
    default_tolerance,
    load_expected,
)

REFERENCE = ("gray", "gt")


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
        bad_file(path, f"a source names no colorizer ({source!r})", "fix the entry")
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
                    bad_file(path, f"the expected file is for {k} {spec[k]!r}, got --{k} {v!r}",
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
                bad_file(path, f"row {name!r} is not in the expected file (it holds "
                     f"{', '.join(spec['rows']) or 'no rows'})",
                     f"add it with --update --colorizer {c if isinstance(c, str) else name}")
            rows.append(_Row(name, obj, src))
    else:
        for row in spec["rows"]:
            if row in REFERENCE:
                continue
            src = _source_of(sources.get(row), row)
            if src.get("object"):
                bad_file(path, f"row {row!r} was a colorizer object ({src['colorizer']})",
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
            bad_file(path, f"row {row!r} was not scored", "check its name")
        metrics = spec["rows"][row]
        if update and not metrics:
            for m in got[row]["metrics"]:
                if m in spec["tolerance"] or _is_default_metric(m):
                    metrics[m] = None
        for metric, value in metrics.items():
            if metric not in got[row]["metrics"]:
                bad_file(path, f"metric {metric!r} of row {row!r} is not produced by psc-eval "
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
