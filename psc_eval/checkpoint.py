"""Checkpoints shared by every trainer (judges, the paper's model, baselines).

A checkpoint is one ``torch.save`` dict of tensors and plain Python values, written
atomically and read back with ``weights_only=True`` (no pickled code)::

    {"kind": "judge" | "colorizer" | ..., "format": 1,
     "config": {...resolved config...}, "model": state_dict, ...anything else}

RNG states are stored as tensors so a resumed run continues the same random stream.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import WeightsError
from .io import atomic_write, sha256_file

CHECKPOINT_FORMAT = 1


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    state = {"format": CHECKPOINT_FORMAT, **state}
    return atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | Path, hint: str = "", map_location: str = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict; a missing or unreadable file is a one-line WeightsError."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"checkpoint not found, {path}, {hint or 'check the path or train the model first'}"
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - corrupt, truncated, or pickled code
        raise WeightsError(
            f"cannot read checkpoint ({type(e).__name__}), {path}, "
            f"{hint or 'the file is corrupt or not a torch checkpoint; retrain or re-download it'}"
        ) from None


def weights_sha256(path: str | Path | None) -> str | None:
    return None if path is None else sha256_file(path)


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
