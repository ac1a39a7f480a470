"""Checkpoints shared by every trainer (judges, the paper's model, baselines).

A checkpoint is one ``torch.save`` dict of tensors and plain Python values, written
atomically and read back with ``weights_only=True`` (no pickled code)::

    {"kind": "judge" | "colorizer" | ..., "format": 1,
     "config": {...resolved config...}, "model": state_dict, ...anything else}

RNG states are stored as tensors so a resumed run continues the same random stream.
``save_checkpoint`` adds a ``"digest"`` of the content, which ``load_checkpoint`` checks
(torch.load verifies no checksum: a damaged weight would otherwise load silently).
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import WeightsError
from .identity import digest
from .io import atomic_write

CHECKPOINT_FORMAT = 1

# Config keys that move no number (where and how a run runs, how it checkpoints): they
# are not part of a training run's identity (its run folder key, its training group).
NOT_IN_RUN_KEY = frozenset({"train.device", "train.workers", "train.checkpoint_every",
                            "train.keep_epochs", "train.cache_in_memory"})


def config_numbers(config: dict[str, Any], drop: frozenset[str] = frozenset()) -> dict:
    """A resolved config without the keys that move no number (and without ``drop``)."""
    out = NOT_IN_RUN_KEY | drop
    return {sec: {k: v for k, v in vals.items() if f"{sec}.{k}" not in out}
            for sec, vals in config.items() if isinstance(vals, dict)}


def training_identity(config: Any) -> dict[str, Any]:
    """The training seed of a checkpoint and the key of its configuration WITHOUT the seed:
    checkpoints that share the key are the same method trained with other seeds (the
    report's mean +- sd over training seeds). {} for a checkpoint without a config."""
    if not isinstance(config, dict) or not isinstance(config.get("train"), dict):
        return {}
    seed = config["train"].get("seed")
    polyak = config["train"].get("polyak", 0.0)
    return {"train_seed": int(seed) if isinstance(seed, (int, float)) else None,
            "train_config_key": digest(config_numbers(config, frozenset({"train.seed"})), 12),
            # the weights evaluated: the Polyak average of this decay, or (0) the last step's
            "weights_average": float(polyak) if isinstance(polyak, (int, float)) else 0.0}


def content_digest(obj: Any) -> str:
    """sha256 over every value of a checkpoint (tensors by dtype, shape and bytes; other
    values by repr), in order. torch.load checks no checksum, so a flipped bit in a
    weight would load silently; the digest stored at save time catches it."""
    h = hashlib.sha256()

    def walk(x: Any, key: str) -> None:
        h.update(key.encode())
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous().reshape(-1)
            h.update(f"{t.dtype}{tuple(x.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{key}/{k}")
        elif isinstance(x, (list, tuple)):
            for i, v in enumerate(x):
                walk(v, f"{key}[{i}]")
        else:
            h.update(repr(x).encode())

    walk(obj, "")
    return h.hexdigest()


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    state = {"format": CHECKPOINT_FORMAT, **state}
    state["digest"] = content_digest(state)
    return atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | Path, hint: str = "", map_location: str = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict; a missing or unreadable file is a one-line WeightsError."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"checkpoint not found, {path}, {hint or 'check the path or train the model first'}"
        )
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - corrupt, truncated, or pickled code
        raise WeightsError(
            f"cannot read checkpoint ({type(e).__name__}), {path}, "
            f"{hint or 'the file is corrupt or not a torch checkpoint; retrain or re-download it'}"
        ) from None
    return verify_digest(ck, path, hint)


def verify_digest(ck: Any, path: str | Path, hint: str = "") -> Any:
    """Check (and drop) the content digest of a checkpoint written by save_checkpoint;
    files without one (published weights) pass unchanged."""
    if isinstance(ck, dict) and "digest" in ck:
        stored = ck.pop("digest")
        if stored != content_digest(ck):
            raise WeightsError(
                f"checkpoint content does not match its stored digest (the file is damaged), "
                f"{path}, {hint or 'retrain or restore the file'}"
            )
    return ck


def require_keys(ck: Any, keys: tuple[str, ...], path: str | Path, hint: str) -> dict[str, Any]:
    """A checkpoint dict holding ``keys``, or one line naming what is missing."""
    if not isinstance(ck, dict):
        raise WeightsError(f"checkpoint holds a {type(ck).__name__}, not a checkpoint dict, "
                           f"{path}, {hint}")
    missing = [k for k in keys if k not in ck]
    if missing:
        raise WeightsError(f"checkpoint has no {', '.join(map(repr, missing))}, {path}, {hint}")
    return ck


def load_state_dict_checked(module: torch.nn.Module, sd: Any, path: str | Path, what: str,
                            hint: str, num_classes: int | None = None) -> None:
    """Load ``sd`` into ``module`` or raise one WeightsError line: not a dict of tensors,
    missing / unexpected keys, shape or dtype mismatches, or non-finite values (NaN
    weights would give silently wrong numbers: they are refused where they enter)."""
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        kind = type(sd).__name__ if not isinstance(sd, dict) else "dict with non-tensor values"
        raise WeightsError(f"weights of {what} are a {kind}, not a state dict, {path}, {hint}")
    own = module.state_dict()
    # BatchNorm step counters carry no weights; published files may or may not hold them
    skip = lambda k: k.endswith("num_batches_tracked")
    missing = [k for k in own if k not in sd and not skip(k)]
    unexpected = [k for k in sd if k not in own and not skip(k)]
    shapes = [(k, tuple(sd[k].shape), tuple(own[k].shape)) for k in own
              if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    dtypes = [k for k in own if k in sd and sd[k].is_floating_point() != own[k].is_floating_point()]
    if missing or unexpected or shapes or dtypes:
        parts = [f"{len(missing)} missing keys", f"{len(unexpected)} unexpected keys"]
        if missing:
            parts.append(f"first missing {missing[0]}")
        if unexpected:
            parts.append(f"first unexpected {unexpected[0]}")
        if shapes:
            k, got, want = shapes[0]
            parts.append(f"{len(shapes)} shape mismatches, first {k} {list(got)} vs {list(want)}")
            if num_classes is not None and got and want and got[0] != want[0] \
                    and k.endswith(("weight", "bias")):
                parts.append(f"file has {got[0]} classes? asked for {num_classes}")
        if dtypes:
            parts.append(f"{len(dtypes)} dtype mismatches, first {dtypes[0]} "
                         f"{sd[dtypes[0]].dtype} vs {own[dtypes[0]].dtype}")
        raise WeightsError(f"weights do not fit {what} ({'; '.join(parts)}), {path}, {hint}")
    bad = [k for k, v in sd.items() if k in own and v.is_floating_point()
           and not bool(torch.isfinite(v).all())]
    if bad:
        raise WeightsError(f"weights of {what} hold NaN or infinite values ({len(bad)} tensors, "
                           f"first {bad[0]}), {path}, retrain or restore the file")
    module.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=False)


def checkpoint_info(ck: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """What an evaluation records of the checkpoint a colorizer loaded (its run JSON's
    ``provenance.colorizer_checkpoint``): path, source (shipped or trained), epoch, step,
    the validation losses (and steps, images seen) of that epoch and of every epoch before
    it (the checkpoint's ``history``), its training seed, seed-free config key and weight
    average (``training_identity``), and the run's protocol record (``run``: converged,
    epochs, images seen, wall time, parameters), so the report reads them from the run
    instead of searching checkpoints."""
    def num(v: Any) -> Any:
        return v.item() if isinstance(v, torch.Tensor) and v.numel() == 1 else v

    def val(row: dict[str, Any]) -> dict[str, float]:
        return {k: float(num(v)) for k, v in row.items()
                if k.startswith("val_") and isinstance(num(v), (int, float))}

    def seen(row: dict[str, Any]) -> dict[str, int]:
        v = num(row.get("images_seen"))
        return {"images_seen": int(v)} if isinstance(v, (int, float)) else {}

    history = [h for h in ck.get("history") or [] if isinstance(h, dict)]
    epoch, step = num(ck.get("epoch")), num(ck.get("step"))
    row = next((h for h in reversed(history) if num(h.get("epoch")) == epoch), {})
    run = ck.get("run")
    # a slim copy made by psc-eval ship carries "shipped"; anything else was trained here
    return {"path": str(path), "source": "shipped" if ck.get("shipped") else "trained",
            "epoch": epoch, "step": step, "val_losses": val(row),
            **training_identity(ck.get("config")),
            # the protocol's record of the run (psc_eval.training.plateau.run_summary)
            **({"run": run} if isinstance(run, dict) else {}),
            "history": [{"epoch": num(h.get("epoch")), "step": num(h.get("step")),
                         **seen(h), **val(h)} for h in history]}


def rng_state() -> dict[str, Any]:
    """Capture torch / numpy / python RNG states as checkpoint-safe values."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "python": torch.tensor(list(random.getstate()[1]), dtype=torch.int64),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    keys = state["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["numpy_pos"], 0, 0.0))
    py = tuple(int(v) for v in state["python"].tolist())
    random.setstate((3, py, None))
