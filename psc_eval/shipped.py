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
    if os.environ.get("PSC_SHIPPED", "1") == "0":
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
