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
from pathlib import Path
from typing import Any

from .errors import PscError
from .identity import class_path, code_sha256, digest, jsonable
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
                             "weights", "colorizer_weights", "allow_partial", "device"})


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
                                      "colorizer_config", "judge", "judge_weights_sha256",
                                      "judge_config")}}
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
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        raise PscError(f"result file not found, {path}, run psc-eval miou/psnr first") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PscError(f"result file is not valid JSON ({e.msg if hasattr(e, 'msg') else e}), "
                       f"{path}, delete it and rerun the evaluation") from None
    if not isinstance(obj, dict) or "schema_version" not in obj:
        raise PscError(f"not a psc-eval result (no schema_version), {path}, "
                       "point at reports/runs/... files")
    if int(obj["schema_version"]) > SCHEMA_VERSION:
        raise PscError(f"result schema {obj['schema_version']} is newer than this psc-eval "
                       f"({SCHEMA_VERSION}), {path}, upgrade psc-eval")
    return RunResult.from_json(obj)


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
        except PscError:
            continue  # not a run file (e.g. some other JSON in reports/)
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
