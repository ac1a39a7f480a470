"""Decoding knobs chosen on held-out TRAINING images, never on the validation images.

The benchmark protocol: where a method has a sampling or decoding knob (the PixelCNN
temperature of ``ours``, its ablations and ``royer2017``), the reported value is either
the reference's or the one selected here, on training images that no toy model trains on
(toy train indices ``SELECTION``: the protocol's configs train on the first 3000, the
naturalness proxy's critics use the images from 3200) and never on val. For each
candidate the judge's mIoU on those images is measured (with its bootstrap interval);
the selected value is the candidate with the highest mIoU. The whole curve is stored,
``<out>/experiments/<dataset>/decoding-<colorizer>.json``, and the report draws it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SELECTION = (3000, 3200)  # toy train images [3000, 3200)
TEMPERATURES = (0.3, 0.5, 0.7, 0.85, 1.0)


def select_temperature(colorizer: str, dataset: str = "toy", *,
                       temperatures: Sequence[float] = TEMPERATURES,
                       images: tuple[int, int] = SELECTION, out: str | Path = "reports",
                       seed: int = 0, device: str = "cpu", progress: bool = True
                       ) -> dict[str, Any]:
    """Score ``colorizer`` at each temperature on the held-out training images; write and
    return the curve and the selected temperature."""
    from ..config import check_temperature
    from ..data import get_dataset
    from ..errors import PscError
    from ..io import atomic_write_json
    from ..runner import run_eval

    if not temperatures:
        raise PscError("no temperature to try, in --temperatures, give e.g. 0.5,0.7,1.0")
    for t in temperatures:
        check_temperature(t)
    start, stop = images
    train = get_dataset(dataset, split="train")
    if not 0 <= start < stop <= len(train):
        raise PscError(f"held-out images [{start}, {stop}) outside the {dataset} train split "
                       f"({len(train)} images), in the selection range, use toy")
    train.ids = train.ids[start:stop]
    scratch = Path(out) / "experiments" / dataset / "decoding-runs"
    curve = []
    for t in temperatures:
        summary = run_eval("miou", colorizer, train, temperature=float(t), seed=seed,
                           device=device, out=str(scratch), progress=progress)
        res = next(r for r in summary.results if r.colorizer not in ("gray", "gt"))
        m = res.metrics
        curve.append({"temperature": float(t), "miou": m.get("miou"),
                      "miou_ci": [m.get("miou_ci_low"), m.get("miou_ci_high")],
                      "psnr": m.get("psnr")})
    finite = [c for c in curve if isinstance(c["miou"], float) and math.isfinite(c["miou"])]
    if not finite:
        raise PscError(f"no temperature gave a finite mIoU for {colorizer}, in the selection, "
                       "check the colorizer's outputs")
    best = max(finite, key=lambda c: (c["miou"], -abs(c["temperature"] - 1.0)))
    result = {
        "experiment": "decoding", "knob": "temperature", "colorizer": colorizer,
        "dataset": dataset, "split": "train", "images": list(images),
        "criterion": "highest judge mIoU on held-out training images (never val); "
                     "ties: the value nearest 1",
        "curve": curve, "selected": best["temperature"], "seed": seed,
        "weights_sha256": res.provenance.get("colorizer_weights_sha256"),
    }
    path = Path(out) / "experiments" / dataset / f"decoding-{colorizer}.json"
    atomic_write_json(path, result)
    result["path"] = str(path)
    return result
