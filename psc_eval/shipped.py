"""Trained toy checkpoints shipped in the repository (``reports/<dataset>/checkpoints``).

A new user's first ``psc-eval miou`` on toy trains nothing: when ``$PSC_HOME`` holds no
trained judge or colorizer, the shipped one is used. Each shipped file is a slim copy of
a checkpoint made by this project's own ``psc-eval train`` / ``train-judge`` (weights for
inference only, float16 where the training wrote float32), listed with its sha256, the
command that made it and its config in ``manifest.json``. A file whose sha256 differs
from the manifest is a one-line error, never used.

``psc-eval ship --dataset toy`` writes the slim copies and the manifest from the
checkpoints under ``$PSC_HOME`` (the README says how the shipped ones were made).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from .checkpoint import load_checkpoint, save_checkpoint
from .errors import PscError, WeightsError
from .io import atomic_write_json, sha256_file

MANIFEST = "manifest.json"
# What the shipped checkpoints of one dataset may weigh together: a fresh clone downloads
# them (tests/unit/test_shipped_budget.py holds the repository to it).
SHIP_BUDGET_BYTES = 40 * 1000 * 1000
# Training state that inference never reads.
TRAINING_KEYS = frozenset({"optimizers", "schedulers", "optimizer", "scheduler", "rng",
                           "running", "data_order"})


def shipped_dir(dataset: str) -> Path:
    """``reports/<dataset>/checkpoints`` of the source tree this package runs from."""
    return Path(__file__).resolve().parents[1] / "reports" / dataset / "checkpoints"


def shipped_enabled() -> bool:
    """False under ``PSC_SHIPPED=0``: nothing of the repository's is used (checkpoints,
    score shards), only what was made under $PSC_HOME."""
    return os.environ.get("PSC_SHIPPED", "1") != "0"


def shipped_scores_dir(dataset: str) -> Path:
    """``reports/<dataset>/score-cache``: the evaluation cache's score shards of the
    repository's own runs of the shipped checkpoints (``ship_scores``), one folder per
    score key. The runner reads a batch's scores there when its own cache has none and
    the key (colorizer code, weights, judge, data, seed, options) and the scorer code
    match, so ``make demo`` rebuilds every table from them without colorizing."""
    return shipped_dir(dataset).parent / "score-cache"


def shipped_scores(dataset: str) -> Path | None:
    """``shipped_scores_dir``, or None when switched off: ``PSC_SHIPPED=0`` (nothing of the
    repository's) or ``PSC_SCORE_SHARDS=0`` (the shipped checkpoints, but every image
    colorized and judged here: ``make demo FRESH=1``)."""
    if not shipped_enabled() or os.environ.get("PSC_SCORE_SHARDS", "1") == "0":
        return None
    return shipped_scores_dir(dataset)


def manifest(dataset: str) -> dict[str, Any]:
    path = shipped_dir(dataset) / MANIFEST
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise PscError(f"shipped checkpoint manifest is not valid JSON, {path}, restore it "
                       "from the repository") from None


def shipped(dataset: str, kind: str, name: str) -> Path | None:
    """The shipped checkpoint of a judge (``kind="judge"``) or colorizer, sha256-checked
    against the manifest; None when the repository ships none, or when ``PSC_SHIPPED=0``
    (use only what was trained under $PSC_HOME)."""
    if not shipped_enabled():
        return None
    entry = manifest(dataset).get("checkpoints", {}).get(f"{kind}/{name}")
    if entry is None:
        return None
    path = shipped_dir(dataset) / entry["file"]
    if not path.is_file():
        return None
    sha = sha256_file(path)
    if sha != entry["sha256"]:
        raise WeightsError(
            f"shipped checkpoint sha256 {sha[:12]}... differs from the manifest's "
            f"{entry['sha256'][:12]}..., {path}, restore the file from the repository "
            f"(git checkout -- {path.name}) or remake it with psc-eval ship"
        )
    return path


def _half(x: Any) -> Any:
    """float32 -> float16, except a tensor float16 cannot hold (a value beyond its range,
    e.g. a batch-norm running variance over 65504): it stays float32."""
    if isinstance(x, torch.Tensor):
        if x.dtype != torch.float32:
            return x
        h = x.half()
        return h if bool(torch.isfinite(h).all()) or not bool(torch.isfinite(x).all()) else x
    if isinstance(x, dict):
        return {k: _half(v) for k, v in x.items()}
    return x


def slim(ck: dict[str, Any]) -> dict[str, Any]:
    """What inference reads of a checkpoint: no optimiser / RNG / resume state, the
    averaged weights instead of the raw ones when both exist, float32 -> float16 (where
    float16 holds the values)."""
    out = {k: v for k, v in ck.items() if k not in TRAINING_KEYS}
    if "ema" in out:
        out.pop("model", None)
    for k in ("ema", "model"):
        if k in out:
            out[k] = _half(out[k])
    out["shipped"] = {"dtype": "float16", "from": "psc-eval ship"}
    return out


# check(key, path): build what ``key`` names from ``path`` through the loader evaluation
# uses (a one-line WeightsError when it cannot be used); given by a caller above this layer.
Check = Callable[[str, Path], None]


def ship(dataset: str, sources: dict[str, tuple[Path, str]], out: Path | None = None, *,
         check: Check, drop: Sequence[str] = ()) -> Path:
    """Write slim copies of ``sources`` ({"judge/<arch>" | "colorizer/<name>": (checkpoint,
    the command that made it)}) and the manifest; returns the manifest path. Every source
    and every slim copy must pass ``check`` (the shipped file is what a fresh clone's
    evaluation loads); until all pass, the shipped files and the manifest stay as they were.
    ``drop``: shipped entries to remove with their files (e.g. a judge replaced by another
    one); entries neither shipped nor dropped stay."""
    out = Path(out) if out is not None else shipped_dir(dataset)
    unknown = [k for k in drop if k not in _manifest_entries(out / MANIFEST)]
    if unknown:
        raise WeightsError(f"nothing shipped under {', '.join(unknown)}, in --drop, name a "
                           f"manifest entry of {out / MANIFEST} (e.g. judge/<arch>)")
    for key, (src, _) in sorted(sources.items()):
        check(key, Path(src))
    staged: dict[str, tuple[Path, Path, str, dict[str, Any]]] = {}
    try:
        for key, (src, made_by) in sorted(sources.items()):
            ck = load_checkpoint(src)
            file = out / (key.replace("/", "-") + ".pt")
            tmp = save_checkpoint(file.with_suffix(".pt.new"), slim(ck))
            staged[key] = (tmp, file, made_by, ck)
            check(key, tmp)  # float16 can overflow what float32 held
        entries = {}
        for key, (tmp, file, made_by, ck) in staged.items():
            os.replace(tmp, file)
            entries[key] = {"file": file.name, "sha256": sha256_file(file),
                            "source_sha256": sha256_file(sources[key][0]), "made_by": made_by,
                            "config": ck.get("config"), "bytes": file.stat().st_size}
    finally:
        for tmp, *_ in staged.values():
            tmp.unlink(missing_ok=True)
    path = out / MANIFEST
    # the entries of checkpoints not shipped this time stay (their files are untouched)
    old = _manifest_entries(path)
    kept = {k: v for k, v in old.items() if k not in entries and k not in drop
            and isinstance(v, dict) and (out / str(v.get("file"))).is_file()}
    atomic_write_json(path, {"dataset": dataset, "dtype": "float16",
                             "checkpoints": dict(sorted({**kept, **entries}.items()))})
    for k in drop:
        if k not in entries and isinstance(old.get(k), dict):
            (out / str(old[k].get("file"))).unlink(missing_ok=True)
    return path


def shipped_bytes(out: Path) -> int:
    """Bytes of every file in a shipped-checkpoint folder (the repository budget counts
    them all: ``SHIP_BUDGET_BYTES``)."""
    return sum(p.stat().st_size for p in Path(out).iterdir() if p.is_file())


def _manifest_entries(path: Path) -> dict[str, Any]:
    import json

    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    ck = old.get("checkpoints") if isinstance(old, dict) else None
    return ck if isinstance(ck, dict) else {}


def trained_or_shipped(home_path: Path, dataset: str, kind: str, name: str) -> Path:
    """``home_path`` (trained under $PSC_HOME) when it exists, else the shipped checkpoint,
    else ``home_path`` again (the caller's missing-weights error names it).
    ``PSC_SHIPPED=first`` (``reproduce --shipped``): the shipped one where both exist."""
    if os.environ.get("PSC_SHIPPED") == "first":
        found = shipped(dataset, kind, name)
        if found is not None:
            return found
    if home_path.is_file():
        return home_path
    return shipped(dataset, kind, name) or home_path


def ship_trained(dataset: str, judge: str | None, colorizers: list[str],
                 out: Path | None = None, *, check: Check, default_judge: str = "",
                 drop: Sequence[str] = ()) -> Path:
    """``psc-eval ship``: the judge and colorizers trained under $PSC_HOME, slimmed.
    ``judge`` None: the dataset's judge (``default_judge``) when it was trained under
    $PSC_HOME, else the shipped judge stays as it is."""
    from .paths import colorizer_dir, judge_weights_path

    sources: dict[str, tuple[Path, str]] = {}
    name = judge or default_judge
    jp = judge_weights_path(dataset, name) if name else None
    if jp is not None and jp.is_file():
        made_by = f"psc-eval train-judge --dataset {dataset} --arch {name}"
        sources[f"judge/{name}"] = (jp, made_by)
    elif judge is not None:
        raise WeightsError(f"no trained {judge} judge for {dataset}, {jp}, run: psc-eval "
                           f"train-judge --dataset {dataset} --arch {judge}")
    for name in colorizers:
        cp = colorizer_dir(dataset, name) / "last.pt"
        if not cp.is_file():
            raise WeightsError(f"no trained {name} for {dataset}, {cp}, run: psc-eval train "
                               f"--colorizer {name} --dataset {dataset} --config {dataset}")
        sources[f"colorizer/{name}"] = (
            cp, f"psc-eval train --colorizer {name} --dataset {dataset} --config {dataset}")
    return ship(dataset, sources, out, check=check, drop=drop)


def ship_scores(dataset: str, results: Path, cache_root: Path,
                out: Path | None = None) -> dict[str, int]:
    """``psc-eval ship-scores``: copy from the evaluation cache ``cache_root`` the score
    shards of every run JSON under ``results`` (``reports``: ``runs/`` and the experiments'
    runs) whose colorizer weights are shipped (or that has none: gray, gt), into
    ``shipped_scores_dir`` (``out``); folders of other keys there are removed. Returns
    counts: runs, keys, shard files, bytes. A run whose shards are not all in the cache
    is an error (score it again with this $PSC_HOME first)."""
    import shutil

    out = Path(out) if out is not None else shipped_scores_dir(dataset)
    ok = {None, *(e.get("sha256") for e in manifest(dataset).get("checkpoints", {}).values()
                  if isinstance(e, dict))}
    from .cache import shard_name
    from .colorize import canonical_batches

    keys: dict[str, set[str]] = {}  # score key -> the shard files of its runs
    runs = 0
    for path in sorted(Path(results).rglob("*.json")):
        try:
            res = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        prov = res.get("provenance") if isinstance(res, dict) else None
        key = ((prov or {}).get("cache_stats") or {}).get("score_key")
        if (not key or res.get("dataset") != dataset
                or prov.get("colorizer_weights_sha256") not in ok):
            continue
        runs += 1
        n = int(res["metrics"]["num_images"]) + int(res["metrics"]["num_skipped"])
        bs = int(prov.get("config", {}).get("batch_size") or 0) or n
        keys.setdefault(key, set()).update(shard_name(s, e - s)
                                           for s, e in canonical_batches(n, bs))
    tmp = out.with_name(out.name + ".new")
    shutil.rmtree(tmp, ignore_errors=True)
    files = size = 0
    for key, names in sorted(keys.items()):
        src = Path(cache_root) / "scores" / key
        missing = sorted(n for n in names if not (src / n).is_file())
        if missing or not (src / "key.json").is_file():
            shutil.rmtree(tmp, ignore_errors=True)
            raise PscError(f"the cache lacks {len(missing)} of the {len(names)} score shards "
                           f"of key {key}, in {src}, score its run again with this "
                           "$PSC_HOME first")
        (tmp / key).mkdir(parents=True)
        for f in [*(src / n for n in sorted(names)), src / "key.json"]:
            shutil.copyfile(f, tmp / key / f.name)
            files += 1
            size += f.stat().st_size
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out) if tmp.is_dir() else out.mkdir(parents=True, exist_ok=True)
    return {"runs": runs, "keys": len(keys), "files": files, "bytes": size}
