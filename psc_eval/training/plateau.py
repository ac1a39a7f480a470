"""THE plateau rule of the benchmark's training protocol, and a training run's summary.

A run trained ``until_plateau`` stops after the first epoch at which its validation loss
has plateaued, or at ``epochs`` (the cap) with ``converged: no``. Plateaued, after epoch
n >= ``min_epochs``: the best value of the last ``window`` fraction of the epochs
(ceil(window * n), at least one) improved on the best value of the epochs before them by
less than ``tol`` of it (relative). So with the defaults, 0.25 and 1%, a run of 20 epochs
has converged when its last 5 epochs brought less than a 1% improvement. The rule reads
one series per method (``TrainMethod.plateau_series``: the loss that says whether the
model still learns, e.g. the paper's model's L_gen and not its total, which 100 x L_seg
dominates) and is a pure function of the per-epoch history, so a resumed run decides
exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

RULE = ("stop at the first epoch n >= min_epochs whose last ceil(window * n) epochs improved "
        "the best validation value of the epochs before them by less than tol (relative); "
        "else stop at the cap (converged: no)")


def window_size(n: int, window: float = 0.25) -> int:
    """The rule's window: the last ceil(window * n) of n epochs, at least one."""
    return max(1, math.ceil(window * n))


def window_gain(values: Sequence[float], window: float = 0.25) -> float | None:
    """The relative improvement the last ceil(window * n) epochs brought on the best value of
    the epochs before them ((best before - best recent) / |best before|); None when the
    series is too short or not finite."""
    n = len(values)
    if n < 2:
        return None
    w = window_size(n, window)
    vals = [float(v) for v in values]
    if w >= n or not all(math.isfinite(v) for v in vals):
        return None
    before, recent = min(vals[: n - w]), min(vals[n - w:])
    return (before - recent) / abs(before) if before else None


def plateaued(values: Sequence[float], window: float = 0.25, tol: float = 0.01,
              min_epochs: int = 0) -> bool:
    """Whether a per-epoch validation series (lower is better) has plateaued (``RULE``)."""
    if len(values) < max(min_epochs, 2):
        return False
    gain = window_gain(values, window)
    return gain is not None and gain < tol


def run_summary(history: Sequence[dict[str, Any]], parameters: int, *, until_plateau: bool,
                converged: bool | None, metric: str, window: float, tol: float,
                min_epochs: int, cap: int, first_epoch: int = 1) -> dict[str, Any]:
    """What a checkpoint says of its run (recorded in every run JSON that scores it).
    ``first_epoch``: the first epoch whose validation value the rule reads (a method may
    skip a fixed first stage: Deshpande's VAE epochs)."""
    last = history[-1] if history else {}
    return {
        "epochs": int(last.get("epoch", 0)),
        "steps": int(last.get("step", 0)),
        "images_seen": int(last.get("images_seen", 0)),
        "wall_s": round(sum(float(r.get("epoch_s", 0.0)) for r in history), 3),
        "parameters": int(parameters),
        "until_plateau": bool(until_plateau),
        "converged": converged,
        "plateau": {"metric": metric, "window": window, "tol": tol,
                    "min_epochs": min_epochs, "cap": cap, "first_epoch": int(first_epoch),
                    "rule": RULE},
    }
