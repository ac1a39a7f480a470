"""One JSON file per evaluation run: the schema, atomic writing, loading, and ``collect``.

Layout::

    <out>/runs/<dataset>/<segmenter>/<colorizer>/<split>-seed<k>-<key>.json

Tables and figures (``psc-eval report``) are derived only from these files, the way
lm-evaluation-harness derives its tables from its results JSON. Numbers stay raw floats;
formatting happens in the report.

Non-finite numbers. JSON has no NaN or infinity, so every non-finite float (a class
whose IoU is undefined, an infinite PSNR) is written as ``null`` and its location is
listed under ``"nonfinite"``: a map from a dotted path (``per_class_iou.cow``,
``metrics.psnr_max``) to ``"nan"``, ``"inf"`` or ``"-inf"``. ``load_result`` puts the
exact values back, so a result round-trips; a reader that ignores ``nonfinite`` sees
``null`` and cannot mistake it for a number. Counts that matter (``psnr_n_infinite``)
are stored as plain integers besides.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import platform
import re
import subprocess
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Any

from .errors import NotARunError, PscError, ResultFileError
from .identity import class_path, code_sha256, digest, jsonable, location_free
from .io import atomic_write_json
from .methods import row_identity

# 2: provenance.colorizer_checkpoint (schema 1 files, without it, are read as they are)
SCHEMA_VERSION = 2
DEFAULT_OUT = "reports"

# Path components come from user-given names (a "module:attr" colorizer); keep them portable.
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


@dataclass
class RunResult:
    """Everything one run measured, plus where it came from.

    ``metrics`` holds raw floats / ints, e.g. ``miou``, ``pixel_accuracy``, ``mean_accuracy``,
    ``psnr`` (dB, mean over images with finite PSNR), ``psnr_n``, ``psnr_n_infinite``,
    ``psnr_ab``, ``num_images`` (scored). ``per_class_iou`` maps class name -> IoU (NaN
    where a class's union is empty). ``histograms`` maps a name to
    ``{"bin_edges": [...], "counts": [...], ...}``. ``skipped`` lists
    ``{"id", "reason"}`` of images that were never scored.
    """

    kind: str
    dataset: str
    segmenter: str
    colorizer: str
    split: str
    seed: int
    metrics: dict[str, Any] = field(default_factory=dict)
    per_class_iou: dict[str, float] = field(default_factory=dict)
    histograms: dict[str, Any] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    # metric name -> class name -> value (semantic accuracy, pollution; IoU stays above)
    per_class_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    # per-image rows for paired comparisons (psc-eval compare): "key" (sorted image keys,
    # psc_eval.metrics.bootstrap.image_key), "psnr", "psnr_ab", "miou_counts" (sparse
    # per-image confusion counts), ... in the order of "key"
    per_image: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict: non-finite floats become null, listed under ``nonfinite``."""
        nonfinite: dict[str, str] = {}
        body = _encode(asdict(self), "", nonfinite)
        body["nonfinite"] = nonfinite
        return body

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> RunResult:
        obj = dict(obj)
        nonfinite = obj.pop("nonfinite", {}) or {}
        for path, val in nonfinite.items():
            _set_path(obj, path, float(val))
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in obj.items() if k in known})


@lru_cache(maxsize=1)
def git_hash() -> str | None:
    """The source tree's commit (best effort; None outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], check=False, cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5,
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


# Conventions a scorer may record (None when no scorer of the run sets them).
CONVENTION_KEYS = ("msssim_variant", "miou_convention", "psnr_convention")


def build_provenance(
    *,
    config: dict[str, Any],
    device: str,
    world_size: int,
    seed: int,
    dataset_fingerprint: dict[str, Any],
    colorizer: Any,
    judge: Any,
    conventions: dict[str, Any],
    wall_time_s: float,
    cache_stats: dict[str, int],
) -> dict[str, Any]:
    """Where a result came from: versions, git hash, device, seeds,
    the evaluation config, the dataset fingerprint, colorizer and judge identities and
    weights hashes, the metric conventions, wall time and cache use."""
    import torch

    from . import __version__

    return {
        "psc_eval_version": __version__,
        "git_hash": git_hash(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": str(device),
        "world_size": int(world_size),
        "seeds": {"seed": int(seed), "colorizer_generator":
                  "torch.Generator per batch, seeded with sha256('psc-eval:<seed>:<start>')"},
        "config": jsonable(config),
        "dataset_fingerprint": dataset_fingerprint,
        "colorizer_class": class_path(colorizer),
        # how the report shows the row (record, else the class's label / group attributes)
        **{f"colorizer_{k}": v for k, v in row_identity(colorizer).items()},
        "colorizer_code_sha256": code_sha256(colorizer),
        "colorizer_weights_sha256": getattr(colorizer, "weights_sha256", None),
        "colorizer_config": jsonable(getattr(colorizer, "config", None)),
        # epoch, step and validation losses of the checkpoint loaded (None: no checkpoint)
        "colorizer_checkpoint": jsonable(getattr(colorizer, "checkpoint_info", None)),
        "judge": None if judge is None else getattr(judge, "name", None),
        "judge_weights_sha256": None if judge is None else getattr(judge, "weights_sha256", None),
        "judge_config": None if judge is None else jsonable(getattr(judge, "config", None)),
        **{k: conventions.get(k) for k in CONVENTION_KEYS},
        **{k: v for k, v in conventions.items() if k not in CONVENTION_KEYS},
        "wall_time_s": wall_time_s,
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "cache_stats": cache_stats,
    }


def _encode(x: Any, path: str, nonfinite: dict[str, str]) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        nonfinite[path] = "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
        return None
    if isinstance(x, dict):
        return {str(k): _encode(v, f"{path}.{k}" if path else str(k), nonfinite) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_encode(v, f"{path}[{i}]", nonfinite) for i, v in enumerate(x)]
    return x


def _set_path(obj: Any, path: str, value: float) -> None:
    # Paths are "a.b.c" with optional "[i]" list indices, as _encode writes them.
    tokens = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    cur = obj
    for i, tok in enumerate(tokens):
        last = i == len(tokens) - 1
        key: Any = int(tok[1:-1]) if tok.startswith("[") else tok
        if last:
            cur[key] = value
        else:
            cur = cur[key]


def safe_name(name: str) -> str:
    """A registry name or ``module:attr`` path as one portable path component."""
    return _UNSAFE.sub("_", str(name)).strip("._") or "_"


# Evaluation options that change no number (where output goes, how it is computed fast).
_NOT_IN_RUN_KEY = frozenset({"out", "progress", "cache", "cache_dir", "workers", "root",
                             "weights", "colorizer_weights", "allow_partial", "device",
                             "sample_batches"})


def run_key(result: RunResult) -> str:
    """A short hash of everything that changes a run's numbers: the images (ids, sizes),
    the colorizer (class, code, weights, config: temperature, sampler, ...), the judge
    (weights, config), the evaluation options (limit, samples, metrics, batch size, ...)
    and the device type. Runs that differ in any of them get different files."""
    p = result.provenance
    config = {k: v for k, v in (p.get("config") or {}).items() if k not in _NOT_IN_RUN_KEY}
    ident = {"colorizer": result.colorizer, "config": config,
             "device_type": str(p.get("device", "cpu")).split(":")[0],
             **{k: p.get(k) for k in ("dataset_fingerprint", "colorizer_class",
                                      "colorizer_code_sha256", "colorizer_weights_sha256",
                                      "colorizer_config", "judge", "judge_weights_sha256")},
             "judge_config": location_free(p.get("judge_config"))}
    return digest(ident, 10)


def result_path(
    out_dir: str | Path, dataset: str, segmenter: str, colorizer: str, split: str, seed: int,
    key: str,
) -> Path:
    """``<out>/runs/<dataset>/<segmenter>/<colorizer>/<split>-seed<k>-<key>.json``."""
    return (
        Path(out_dir) / "runs" / safe_name(dataset) / safe_name(segmenter)
        / safe_name(colorizer) / f"{safe_name(split)}-seed{int(seed)}-{key}.json"
    )


def write_result(result: RunResult, out_dir: str | Path = DEFAULT_OUT) -> Path:
    """Write atomically (temp file + fsync + rename): a reader never sees a partial file.
    The file name carries ``run_key``: the same configuration rewrites its own file (a
    resumed or repeated run), a different one never replaces it."""
    key = run_key(result)
    result.provenance["run_key"] = key
    path = result_path(out_dir, result.dataset, result.segmenter, result.colorizer,
                       result.split, result.seed, key)
    return atomic_write_json(path, result.to_json())


def load_result(path: str | Path) -> RunResult:
    """Read and validate one run JSON (``validate_result``): the one reader behind
    ``report``, ``compare``, ``collect`` and ``regress``, so none of them can show a
    number the file's schema does not allow."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        raise PscError(f"result file not found, {path}, run psc-eval miou/psnr first") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ResultFileError(f"result file is not valid JSON ({e.msg if hasattr(e, 'msg') else e}), "
                              f"{path}, delete it and rerun the evaluation") from None
    except RecursionError:
        raise ResultFileError(f"result file is nested too deeply to be a run, {path}, "
                              "delete it and rerun the evaluation") from None
    if not isinstance(obj, dict) or "schema_version" not in obj:
        raise NotARunError(f"not a psc-eval result (no schema_version), {path}, "
                           "point at reports/runs/... files")
    return validate_result(obj, path)


# --- validation on read -------------------------------------------------------------------
#
# Every value a table, a comparison or a regression check shows comes from a run file, which
# anyone can edit; the reader refuses what the writer could never have written, so a "0.5"
# string, a 5.0 mIoU or a boolean never reaches a table as a number.

# metric -> (low, high) inclusive; a metric not named here must still be a number or null.
_FRACTIONS = ("miou", "miou_ci_low", "miou_ci_high", "pixel_accuracy", "mean_accuracy",
              "semantic_accuracy")
METRIC_RANGES: dict[str, tuple[float, float]] = {
    **{k: (0.0, 1.0) for k in _FRACTIONS},
    "diversity_msssim": (-1.0, 1.0), "diversity_msssim_median": (-1.0, 1.0),
    "pollution_spread": (0.0, math.inf), "pollution_boundary": (0.0, math.inf),
    "pollution_bleed": (0.0, math.inf), "semantic_loglik": (-math.inf, 0.0),
}
# metrics that are counts: non-negative integers
COUNT_METRICS = frozenset({"num_images", "num_skipped", "num_pixels", "psnr_n",
                           "psnr_n_infinite", "psnr_ab_n_infinite", "diversity_n",
                           "semantic_segments"})
# metrics that may be infinite (an image identical to its truth has infinite PSNR)
_MAY_BE_INFINITE = frozenset({"psnr", "psnr_ab", "psnr_ci_low", "psnr_ci_high",
                              "pollution_spread", "pollution_boundary", "pollution_bleed"})
_PER_IMAGE_RANGES = {"psnr": (-math.inf, math.inf), "psnr_ab": (-math.inf, math.inf),
                     "diversity_msssim": (-1.0, 1.0)}


class _Invalid(Exception):
    pass


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _need(ok: bool, where: str, what: str) -> None:
    if not ok:
        raise _Invalid(f"{where} {what}")


def _number(x: Any, where: str, lo: float = -math.inf, hi: float = math.inf,
            infinite: bool = False, null: bool = True) -> None:
    """A float / int (never bool or str) inside [lo, hi]; NaN and +-inf only where the
    writer produces them (``null`` / ``infinite``)."""
    if x is None:
        _need(null, where, "is null")
        return
    _need(_is_num(x), where, f"is {type(x).__name__} {_short(x)}, not a number")
    v = float(x)
    if math.isnan(v):
        _need(null, where, "is NaN")
    elif math.isinf(v):
        _need(infinite, where, f"is {v}")
    else:
        _need(lo <= v <= hi, where, f"is {v:g}, outside [{lo:g}, {hi:g}]")


def _short(x: Any) -> str:
    r = repr(x)
    return r if len(r) <= 30 else r[:27] + "..."


def _dict(x: Any, where: str) -> dict:
    _need(isinstance(x, dict), where, f"is {type(x).__name__}, not an object")
    return x


def _list(x: Any, where: str) -> list:
    _need(isinstance(x, list), where, f"is {type(x).__name__}, not a list")
    return x


def _check_metrics(metrics: Any) -> None:
    for k, v in _dict(metrics, "metrics").items():
        where = f"metrics.{k}"
        if k in COUNT_METRICS:
            _need(_is_int(v) and v >= 0, where, f"is {_short(v)}, not a count (integer >= 0)")
        else:
            lo, hi = METRIC_RANGES.get(k, (-math.inf, math.inf))
            _number(v, where, lo, hi, infinite=k in _MAY_BE_INFINITE)


def _check_histograms(hists: Any) -> None:
    for name, h in _dict(hists, "histograms").items():
        where = f"histograms.{name}"
        h = _dict(h, where)
        edges = _list(h.get("bin_edges"), f"{where}.bin_edges")
        counts = _list(h.get("counts"), f"{where}.counts")
        for i, e in enumerate(edges):
            _number(e, f"{where}.bin_edges[{i}]", null=False)
        _need(all(a < b for a, b in pairwise(edges)), f"{where}.bin_edges",
              "is not increasing")
        _need(len(counts) == max(len(edges) - 1, 0), f"{where}.counts",
              f"has {len(counts)} bins for {len(edges)} edges")
        for i, c in enumerate(counts):
            _number(c, f"{where}.counts[{i}]", 0.0, null=False)


def _check_per_image(per: Any) -> None:
    per = _dict(per, "per_image")
    if not per:
        return
    # rows are in the order of "key" (a diversity run keeps its values without keys)
    keys = _list(per["key"], "per_image.key") if "key" in per else None
    for i, k in enumerate(keys or []):
        _need(_is_int(k), f"per_image.key[{i}]", f"is {_short(k)}, not an integer")
    n = len(keys) if keys is not None else 0
    for name, rows in per.items():
        if name in ("key", "miou_counts"):
            continue
        where = f"per_image.{name}"
        rows = _list(rows, where)
        _need(keys is None or len(rows) == n, where, f"has {len(rows)} values for {n} images")
        lo, hi = _PER_IMAGE_RANGES.get(name, (-math.inf, math.inf))
        for i, v in enumerate(rows):
            _number(v, f"{where}[{i}]", lo, hi, infinite=True)
    if "miou_counts" in per:
        _check_miou_counts(per["miou_counts"], n)


def _check_miou_counts(mc: Any, n: int) -> None:
    where = "per_image.miou_counts"
    mc = _dict(mc, where)
    C = mc.get("num_classes")
    _need(_is_int(C) and C > 0, f"{where}.num_classes", f"is {_short(C)}, not a class count")
    rows = _list(mc.get("rows"), f"{where}.rows")
    _need(bool(rows) or n == 0, f"{where}.rows", f"is empty for {n} images")
    for j, row in enumerate(rows):
        w = f"{where}.rows[{j}]"
        _need(isinstance(row, list) and len(row) == 5 and all(_is_int(x) for x in row), w,
              f"is {_short(row)}, not [image, class, intersection, truth, prediction] integers")
        i, c, tp, gt, pr = row
        _need(0 <= i < n, w, f"names image {i} of {n}")
        _need(0 <= c < C, w, f"names class {c} of {C}")
        _need(0 <= tp <= min(gt, pr), w,
              f"has intersection {tp} outside [0, min(truth {gt}, prediction {pr})]")


def validate_result(obj: dict[str, Any], path: str | Path) -> RunResult:
    """``obj`` (a run file's JSON) checked against the run schema, as a RunResult; any
    breach is one ``ResultFileError`` line naming the field and the file. The schema is
    stated in docs/results.md."""
    try:
        version = obj["schema_version"]
        _need(_is_int(version) and 1 <= version, "schema_version", f"is {_short(version)}")
        if version > SCHEMA_VERSION:
            raise ResultFileError(f"result schema {version} is newer than this psc-eval "
                                  f"({SCHEMA_VERSION}), {path}, upgrade psc-eval")
        for k in ("kind", "dataset", "segmenter", "colorizer", "split"):
            _need(isinstance(obj.get(k), str) and obj[k] != "", k,
                  f"is {_short(obj.get(k))}, not a name")
        _need(_is_int(obj.get("seed")), "seed", f"is {_short(obj.get('seed'))}, not an integer")
        nonfinite = _dict(obj.get("nonfinite") or {}, "nonfinite")
        for k, v in nonfinite.items():
            _need(v in ("nan", "inf", "-inf"), f"nonfinite.{k}", f"is {_short(v)}")
        try:
            result = RunResult.from_json(obj)
        except (KeyError, IndexError, TypeError, ValueError):
            raise _Invalid("nonfinite names a field the file does not have") from None
        _check_metrics(result.metrics)
        for k, v in _dict(result.per_class_iou, "per_class_iou").items():
            _number(v, f"per_class_iou.{k}", 0.0, 1.0)
        for m, per in _dict(result.per_class_metrics, "per_class_metrics").items():
            lo, hi = METRIC_RANGES.get(m, (-math.inf, math.inf))
            for k, v in _dict(per, f"per_class_metrics.{m}").items():
                _number(v, f"per_class_metrics.{m}.{k}", lo, hi, infinite=m in _MAY_BE_INFINITE)
        _check_histograms(result.histograms)
        for i, sk in enumerate(_list(result.skipped, "skipped")):
            _need(isinstance(sk, dict) and isinstance(sk.get("id"), str), f"skipped[{i}]",
                  f"is {_short(sk)}, not {{id, reason}}")
        _dict(result.provenance, "provenance")
        _check_per_image(result.per_image)
    except _Invalid as e:
        raise ResultFileError(f"run file breaks its schema: {e}, {path}, rerun the evaluation "
                              "that wrote it (run files are not edited by hand)") from None
    return result


ID_COLUMNS = ["dataset", "segmenter", "colorizer", "split", "seed", "kind"]
TAIL_COLUMNS = ["num_images", "num_skipped", "limit", "temperature", "n_samples", "run_key",
                "colorizer_weights_sha256", "colorizer_code_sha256", "judge_weights_sha256",
                "path"]


def collect(root: str | Path = DEFAULT_OUT):
    """All results under ``root`` (or ``root/runs``) as a pandas DataFrame, one row per run.

    Columns: ``ID_COLUMNS``, every registered scorer's ``columns`` (metrics
    a run lacks are NaN, a PSNR stored as infinite is inf), then ``TAIL_COLUMNS``; rows
    sorted by dataset, segmenter, colorizer, split, seed.
    """
    import pandas as pd

    root = Path(root)
    base = root / "runs" if (root / "runs").is_dir() else root
    from .metrics.base import registered_columns

    metrics = registered_columns()
    rows = []
    for p in sorted(base.rglob("*.json")) if base.is_dir() else []:
        try:
            r = load_result(p)
        except NotARunError:
            continue  # some other JSON in reports/ (a damaged run file is an error)
        m, prov = r.metrics, r.provenance
        cfg = prov.get("config") or {}
        rows.append({
            "dataset": r.dataset, "segmenter": r.segmenter, "colorizer": r.colorizer,
            "split": r.split, "seed": r.seed, "kind": r.kind,
            **{c.metric: m.get(c.metric) if c.integer else _num(m.get(c.metric))
               for c in metrics},
            "num_images": m.get("num_images"), "num_skipped": len(r.skipped),
            "limit": cfg.get("limit"), "temperature": cfg.get("temperature"),
            "n_samples": cfg.get("n_samples"), "run_key": prov.get("run_key"),
            **{k: prov.get(k) for k in ("colorizer_weights_sha256", "colorizer_code_sha256",
                                        "judge_weights_sha256")},
            "path": str(p),
        })
    df = pd.DataFrame(rows, columns=[*ID_COLUMNS, *(c.metric for c in metrics),
                                     *TAIL_COLUMNS])
    return df.sort_values(["dataset", "segmenter", "colorizer", "split", "seed"],
                          ignore_index=True)


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)
