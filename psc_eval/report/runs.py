"""Which stored runs a report table is built from, and the facts every table states.

``load_runs(root, dataset)`` reads every run JSON under ``<root>/runs/<dataset>`` (or
``<root>/<dataset>``, or ``<root>`` itself); a file that is truncated or of a newer
schema is a one-line error (``load_result``), never silently skipped.

``select(runs, ...)`` keeps the runs one table may use and checks they share ONE context:
dataset, split, images (the dataset fingerprint: ids hash and size), ``--limit`` and, for
judged tables, the judge and its weights sha256. A mix is a one-line ``PscError`` naming
the two contexts and the option that picks one; runs are never averaged across contexts.

Duplicates. Within a context a method may have several runs of the same seed and
configuration (temperature, samples, colorizer weights) that differ only in code hash
(the file name's run key changes when the colorizer's source changes): the NEWEST file
by modification time is used (ties: the larger run key), and the others are listed in the
table's notes as superseded. Runs of several seeds are averaged; their seeds are stated.
Checkpoints trained with one configuration and different training seeds
(``provenance.colorizer_checkpoint.train_config_key``) are one row: the report shows the
protocol seed's run with its bootstrap interval and the mean +- sd over training seeds.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import methods
from ..errors import PscError
from ..results import RunResult, load_result, safe_name


@dataclass(frozen=True)
class Run:
    """One run JSON with the facts the report needs beside its numbers."""

    result: RunResult
    path: Path
    mtime: float

    @property
    def date(self) -> str:
        """The run's date (UTC): ``provenance.created_utc``, else the file's modification time."""
        return _dt.datetime.fromtimestamp(self.mtime, _dt.UTC).strftime("%Y-%m-%d")

    @property
    def judged(self) -> bool:
        return self.result.metrics.get("miou") is not None

    def context(self, judged: bool) -> tuple:
        r, p = self.result, self.result.provenance
        fp = p.get("dataset_fingerprint") or {}
        ctx = (r.dataset, r.split, fp.get("size"), fp.get("ids_sha256"),
               (p.get("config") or {}).get("limit"))
        return ctx + ((r.segmenter, p.get("judge_weights_sha256")) if judged else ())

    @property
    def train_seed(self) -> int | None:
        """The training seed of the checkpoint the run scored (None: no trained checkpoint,
        or one recorded before the seed was)."""
        ck = self.result.provenance.get("colorizer_checkpoint") or {}
        seed = ck.get("train_seed")
        return int(seed) if isinstance(seed, (int, float)) else None

    @property
    def config_key(self) -> tuple:
        """What makes two runs of one colorizer different rows (seeds excepted): sampling
        temperature, samples, and the weights; weights trained with the same configuration
        but another training seed (``train_config_key``) share the row."""
        from ..config import REFERENCE_ROWS

        p = self.result.provenance
        cfg = p.get("config") or {}
        key = (p.get("colorizer_checkpoint") or {}).get("train_config_key")
        weights = ("config", key) if key else p.get("colorizer_weights_sha256")
        # the gray and colour rows of a run at another temperature: not applied to them
        temp = None if self.result.colorizer in REFERENCE_ROWS else cfg.get("temperature")
        return (self.result.colorizer, temp, cfg.get("n_samples"), weights)


@dataclass
class Selection:
    """The runs of one table: method row label -> runs (one per seed), plus the context."""

    runs: dict[str, list[Run]]
    superseded: list[tuple[Run, Run]] = field(default_factory=list)  # (dropped, kept)
    judged: bool = True
    # row label -> the runs of EVERY training seed of that row (``runs`` keeps only the
    # first training seed's, so every table and figure shows one trained model per row)
    train_seeds: dict[str, list[Run]] = field(default_factory=dict)

    def colorizers(self) -> list[str]:
        return list(dict.fromkeys(rs[0].result.colorizer for rs in self.runs.values() if rs))

    def configs(self, colorizer: str) -> list[tuple[str, list[Run]]]:
        """(row label, runs) of each configuration of ``colorizer``; [] when it has none."""
        return [(k, rs) for k, rs in self.runs.items() if rs and rs[0].result.colorizer
                == colorizer]

    def all_runs(self) -> list[Run]:
        return [r for rs in self.runs.values() for r in rs]

    def facts(self) -> dict[str, Any]:
        """dataset, split, images, judge (+ sha256), seeds, run dates, git hashes."""
        runs = self.all_runs()
        if not runs:
            return {}
        first = runs[0].result
        fp = first.provenance.get("dataset_fingerprint") or {}
        limit = (first.provenance.get("config") or {}).get("limit")
        dates = sorted({r.date for r in runs})
        gits = sorted({str(r.result.provenance.get("git_hash") or "unknown")[:10] for r in runs})
        out = {
            "dataset": first.dataset, "split": first.split,
            "images": first.metrics.get("num_images", fp.get("num_images")),
            "size": fp.get("size"), "ids_sha256": fp.get("ids_sha256"), "limit": limit,
            "seeds": sorted({r.result.seed for r in runs}),
            "dates": dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}",
            "git": ", ".join(gits),
        }
        if self.judged:
            out["judge"] = first.segmenter
            out["judge_weights_sha256"] = first.provenance.get("judge_weights_sha256")
        return out


def runs_dir(root: str | Path, dataset: str) -> Path:
    """``<root>/runs/<dataset>``, ``<root>/<dataset>`` or ``<root>`` (a dataset folder)."""
    root = Path(root)
    for cand in (root / "runs" / safe_name(dataset), root / safe_name(dataset)):
        if cand.is_dir():
            return cand
    if root.is_dir() and any(root.rglob("*.json")) and root.name == safe_name(dataset):
        return root
    raise PscError(f"no runs of dataset {dataset!r} under {root}, in --runs, run psc-eval "
                   f"miou --dataset {dataset} --out {root} first (or point --runs at its --out)")


def run_roots(roots: str | Path | Sequence[str | Path]) -> list[Path]:
    """``--runs`` given once (a path) or several times (a list), without repeats."""
    items = [roots] if isinstance(roots, (str, Path)) else list(roots)
    return list(dict.fromkeys(Path(r) for r in items)) or [Path("reports")]


def load_runs(root: str | Path | Sequence[str | Path], dataset: str) -> list[Run]:
    """Every run JSON of ``dataset`` under ``root`` (one folder or several: e.g. the demo's
    output and one's own), sorted by path. Rows without a method record get the label and
    group their runs recorded (``provenance.colorizer_label`` / ``colorizer_group``)."""
    seen: dict[Path, Run] = {}  # overlapping folders (reports, reports/runs) read once
    for base in (runs_dir(r, dataset) for r in run_roots(root)):
        for r in _load_folder(base, dataset):
            seen.setdefault(r.path.resolve(), r)
    out = list(seen.values())
    for r in out:
        p = r.result.provenance
        lab, grp = p.get("colorizer_label"), p.get("colorizer_group")
        methods.describe(r.result.colorizer, lab if isinstance(lab, str) else None,
                         grp if isinstance(grp, str) else None)
    return out


def _load_folder(base: Path, dataset: str) -> list[Run]:
    out = []
    for p in sorted(base.rglob("*.json")):
        r = load_result(p)  # truncated / newer schema / not a run: one-line error
        if r.dataset != dataset:
            raise PscError(f"run of dataset {r.dataset!r} in the {dataset!r} folder, {p}, "
                           "move it under runs/<its dataset>/")
        created = r.provenance.get("created_utc")  # the run's own time; else the file's
        try:
            when = _dt.datetime.fromisoformat(created).timestamp() if created else None
        except ValueError:
            when = None
        out.append(Run(r, p, when if when is not None else p.stat().st_mtime))
    if not out:
        raise PscError(f"no run JSON files under {base}, in --runs, run psc-eval miou first")
    return out


def _describe(ctx: tuple) -> str:
    ds, split, size, ids, limit = ctx[:5]
    s = f"{ds}/{split} {size}px ids {str(ids)[:8]}" + (f" limit {limit}" if limit else "")
    if len(ctx) > 5:
        s += f" judge {ctx[5]} {str(ctx[6])[:12]}"
    return s


def select(
    runs: Iterable[Run],
    *,
    judged: bool,
    colorizers: Sequence[str] | None = None,
    split: str | None = None,
    judge: str | None = None,
    want: Any = None,
    what: str = "table",
) -> Selection:
    """The runs of one table, checked to share one context (see the module docstring).

    ``judged``: only runs with a mIoU (a judge scored them); ``colorizers``: only these;
    ``want(run) -> bool``: any further filter (e.g. has a diversity histogram).
    """
    pool = [r for r in runs
            if (not judged or r.judged)
            and (colorizers is None or r.result.colorizer in colorizers)
            and (split is None or r.result.split == split)
            and (judge is None or not judged or r.result.segmenter == judge)
            and (want is None or want(r))]
    ctxs = sorted({r.context(judged) for r in pool}, key=repr)
    if len(ctxs) > 1:
        a, b = ctxs[0], ctxs[1]
        which = ("judges" if judged and a[5:] != b[5:] else "splits" if a[1] != b[1]
                 else "image sets")
        raise PscError(
            f"runs of {len(ctxs)} different {which} in one {what} ({_describe(a)} vs "
            f"{_describe(b)}), in --runs, pick one with --split / --judge or keep one set "
            "of runs per --runs folder")
    # newest file per (configuration, seed, training seed); ties broken by run key
    best: dict[tuple, Run] = {}
    superseded: list[tuple[Run, Run]] = []
    for r in sorted(pool, key=lambda r: (r.mtime, r.path.name)):
        k = (r.config_key, r.result.seed, r.train_seed)
        code = r.result.provenance.get("colorizer_code_sha256")
        if k in best and best[k].result.provenance.get("colorizer_code_sha256") != code:
            superseded.append((best[k], r))  # same configuration, other code
        best[k] = r
    # a colorizer with several configurations: one row each, labelled by what differs
    by_col: dict[str, dict[tuple, list[Run]]] = {}
    for (cfg, _seed, _train_seed), r in sorted(best.items(), key=lambda kv: repr(kv[0])):
        by_col.setdefault(cfg[0], {}).setdefault(cfg, []).append(r)
    rows: dict[str, list[Run]] = {}
    every: dict[str, list[Run]] = {}
    for col, cfgs in by_col.items():
        for cfg, rs in cfgs.items():
            label = col if len(cfgs) == 1 else _config_label(cfg, list(cfgs))
            every[label] = sorted(rs, key=lambda r: (_seed_order(r), r.result.seed))
            first = _seed_order(every[label][0])
            rows[label] = [r for r in every[label] if _seed_order(r) == first]
    return Selection(rows, superseded, judged, every)


def _seed_order(r: Run) -> int:
    return -1 if r.train_seed is None else r.train_seed


def _config_label(cfg: tuple, all_cfgs: list[tuple]) -> str:
    col, temp, n, weights = cfg
    parts = []
    if len({c[1] for c in all_cfgs}) > 1:
        parts.append(f"T={temp}" if temp is not None else "T=default")
    if len({c[2] for c in all_cfgs}) > 1:
        parts.append(f"n={n}")
    if len({c[3] for c in all_cfgs}) > 1:
        parts.append(f"config {str(weights[1])[:8]}" if isinstance(weights, tuple) else
                     f"weights {str(weights)[:8]}")
    return f"{col} ({', '.join(parts)})"
