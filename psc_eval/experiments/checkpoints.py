"""The judge's mIoU at a few epoch checkpoints of one training run: does mIoU still move
when the validation loss the plateau rule reads has flattened?

``checkpoint_miou(name, dataset)`` scores the per-epoch copies (``epoch-NNNN.pt``, written
by every training run that keeps them) of the protocol run of ``name`` under $PSC_HOME at
``n_points`` epochs spread over the run (the last included), on the same val images as
Table 3, and stores ``<out>/experiments/<dataset>/checkpoint-miou-<name>.json``: one point
per epoch with its images seen, the plateau rule's validation value and the mIoU with its
bootstrap interval. The per-epoch runs go to a scratch folder of their own, never to the
runs Table 3 reads (they are other weights of the same configuration and seed).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

N_POINTS = 4


def pick_epochs(epochs: list[int], n: int = N_POINTS) -> list[int]:
    """``n`` epochs spread evenly over ``epochs`` (sorted), the first and last included."""
    epochs = sorted(set(epochs))
    if len(epochs) <= n:
        return epochs
    idx = {round(i * (len(epochs) - 1) / (n - 1)) for i in range(n)}
    return [epochs[i] for i in sorted(idx)]


def epoch_checkpoints(folder: Path) -> dict[int, Path]:
    """epoch -> its ``epoch-NNNN.pt`` in a run folder."""
    out = {}
    for p in folder.glob("epoch-*.pt"):
        m = re.fullmatch(r"epoch-(\d+)\.pt", p.name)
        if m:
            out[int(m.group(1))] = p
    return out


def checkpoint_miou(name: str, dataset: str = "toy", *, out: str | Path = "reports",
                    n_points: int = N_POINTS, device: str = "cpu", progress: bool = True,
                    **eval_fields: Any) -> dict[str, Any] | None:
    """Score ``n_points`` epoch checkpoints of the protocol run of ``name``; None when that
    run has no per-epoch copies here (e.g. only the shipped model is present).
    ``eval_fields``: further EvalConfig fields (``limit`` in tests)."""
    from ..checkpoint import load_checkpoint
    from ..io import atomic_write_json
    from ..paths import colorizer_dir
    from ..runner import run_eval

    found = epoch_checkpoints(colorizer_dir(dataset, name))
    if not found:
        return None
    scratch = Path(out) / "experiments" / dataset / "checkpoint-runs"
    points = []
    for epoch in pick_epochs(list(found), n_points):
        path = found[epoch]
        ck = load_checkpoint(path)
        metric = ((ck.get("run") or {}).get("plateau") or {}).get("metric")
        row = next((h for h in ck.get("history") or [] if h.get("epoch") == epoch), {})
        s = run_eval("miou", name, dataset, colorizer_weights=str(path), device=device,
                     out=str(scratch), progress=progress, **eval_fields)
        res = next(r for r in s.results if r.colorizer == name)
        m = res.metrics
        points.append({"epoch": epoch, "images_seen": _num(row.get("images_seen")),
                       "plateau_metric": metric, "plateau_value": _num(row.get(metric)),
                       "miou": m.get("miou"),
                       "miou_ci": [m.get("miou_ci_low"), m.get("miou_ci_high")]})
    result = {"experiment": "checkpoint-miou", "colorizer": name, "dataset": dataset,
              "split": "val", "points": points,
              "judge": res.segmenter,
              "judge_weights_sha256": res.provenance.get("judge_weights_sha256")}
    path = Path(out) / "experiments" / dataset / f"checkpoint-miou-{name}.json"
    atomic_write_json(path, result)
    result["path"] = str(path)
    return result


def _num(v: Any) -> float | int | None:
    if hasattr(v, "item"):
        v = v.item()
    return v if isinstance(v, (int, float)) else None
