"""What the judge rewards on toy: its mIoU on controlled recolourings of the val images.

Toy paints every object with ONE chroma drawn from its class's law (``data.toy.CHROMA``:
a narrow Gaussian per class; the car one of four distant modes) plus pixel noise of sd
1.5 Lab units. So a colorizer can be right in three ways that the paper's argument keeps
apart: the exact colour of the object, a plausible colour for its class, or the class's
typical colour. ``colour_probe`` scores, with the benchmark's judge and the ORIGINAL L,
ground-truth-mask recolourings that separate them (no colorizer is involved):

* ``truth``: the true chroma (the gt row);
* ``segment median``: each segment flat at its own true median chroma (no pixel noise);
* ``class mean``: each segment at its class's mean chroma (the car: the mean of its mode
  means; what a regressor trained with an L2 loss converges to);
* ``class sample``: each segment at a chroma drawn from its class's law (the car: a random
  mode), the draw of a perfectly calibrated diverse colorizer;
* ``truth + noise s``: the true chroma plus independent per-pixel Gaussian noise of sd s
  Lab units on a and b, clamped to the Lab range (speckle of sampled pixels);
* ``wrong class``: each segment at the mean chroma of another class (a fixed cyclic
  shift), a control that must fall toward gray;
* ``gray``: ab = 0.

The result (mIoU per variant, with the toy law it used) is stored at
``<out>/experiments/<dataset>/colour-probe.json``; the report lists it. Only toy has a
known colour law, so only toy is probed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

NOISE_SDS = (5.0, 10.0, 20.0, 40.0)


def _law(C: int) -> tuple[torch.Tensor, list[torch.Tensor], list[float]]:
    """(C,2) class means, per class the (M,2) mode means, per class the (a, b) sd."""
    from ..data.toy import CAR, CAR_MODE_SD, CAR_MODES, CHROMA

    means, modes, sds = torch.zeros(C, 2, dtype=torch.float64), [], []
    for c in range(C):
        if c == CAR:
            m = torch.tensor(CAR_MODES, dtype=torch.float64)
            sds.append((CAR_MODE_SD, CAR_MODE_SD))
        else:
            ma, sa, mb, sb = CHROMA[c]
            m = torch.tensor([[ma, mb]], dtype=torch.float64)
            sds.append((sa, sb))
        modes.append(m)
        means[c] = m.mean(0)
    return means, modes, sds


def _paint(mask: torch.Tensor, per_segment: torch.Tensor, C: int) -> torch.Tensor:
    """(B,H,W) labels, (B*C,2) chroma per (image, class) -> (B,2,H,W) flat segments (0 on
    ignore pixels)."""
    B = mask.shape[0]
    idx = torch.arange(B).view(B, 1, 1) * C + mask.clamp(0, C - 1)
    ab = per_segment[idx.reshape(-1)].view(B, *mask.shape[1:], 2).permute(0, 3, 1, 2)
    keep = (mask >= 0) & (mask < C)
    return torch.where(keep.unsqueeze(1), ab, torch.zeros_like(ab)).float()


def variants(L: torch.Tensor, ab: torch.Tensor, mask: torch.Tensor, C: int,
             gen: torch.Generator, noise_sds=NOISE_SDS) -> dict[str, torch.Tensor]:
    """Every recolouring of one batch: name -> (B,2,H,W) chroma in Lab units."""
    from ..color import AB_MAX, AB_MIN
    from ..metrics.segments import SegmentIndex

    means, modes, sds = _law(C)
    B = mask.shape[0]
    out = {"truth": ab.float(), "gray": torch.zeros_like(ab, dtype=torch.float32)}
    out["segment median"] = _paint(mask, SegmentIndex(mask, C).medians(ab), C)
    out["class mean"] = _paint(mask, means.repeat(B, 1), C)
    sample = torch.zeros(B * C, 2, dtype=torch.float64)
    for g in range(B * C):
        c = g % C
        m = modes[c][int(torch.randint(len(modes[c]), (1,), generator=gen))]
        z = torch.randn(2, generator=gen, dtype=torch.float64)
        sample[g] = m + z * torch.tensor(sds[c], dtype=torch.float64)
    out["class sample"] = _paint(mask, sample, C)
    out["wrong class"] = _paint(mask, means.roll(1, 0).repeat(B, 1), C)
    for s in noise_sds:
        noise = torch.randn(ab.shape, generator=gen) * s
        out[f"truth + noise {s:g}"] = (ab.float() + noise).clamp(AB_MIN, AB_MAX)
    return out


def colour_probe(dataset: str = "toy", *, segmenter: str | None = None,
                 weights: str | None = None, out: str | Path = "reports", device: str = "cpu",
                 seed: int = 0, limit: int | None = None, progress: bool = True
                 ) -> dict[str, Any]:
    """mIoU of the judge on every recolouring of the val split (see the module docstring)."""
    from ..colorize import to_rgb_u8
    from ..data import collate, get_dataset
    from ..data.base import IGNORE_INDEX
    from ..errors import PscError
    from ..io import atomic_write_json
    from ..judge import default_segmenter
    from ..judge.build import build_segmenter
    from ..metrics.confusion import ConfusionMatrix
    from ..progress import bar

    if dataset != "toy":
        raise PscError(f"the colour probe needs a dataset with a known colour law, got "
                       f"{dataset!r}, in --dataset, use toy")
    ds = get_dataset(dataset, split="val")
    if limit is not None:
        ds.ids = ds.ids[:limit]
    C = int(ds.num_classes)
    name = segmenter or default_segmenter(dataset)
    seg = build_segmenter(name, weights, C, device, dataset)
    gen = torch.Generator().manual_seed(seed)
    mats: dict[str, ConfusionMatrix] = {}
    loader = torch.utils.data.DataLoader(ds, batch_size=32, collate_fn=collate)
    with bar(total=len(ds), unit="img", disable=not progress, desc="colour probe") as pbar:
        for batch in loader:
            if not batch["ids"]:
                continue
            L, mask = batch["L"], batch["mask"]
            for key, ab in variants(L, batch["ab"], mask, C, gen).items():
                with torch.inference_mode():
                    rgb = to_rgb_u8(L.to(device), ab.to(device)).to(torch.float32) / 255.0
                    pred = seg.predict(rgb).cpu()
                mats.setdefault(key, ConfusionMatrix(C, IGNORE_INDEX)).update(pred, mask)
            pbar.update(len(batch["ids"]))
    rows = {k: float(m.compute()["miou"]) for k, m in mats.items()}
    result = {"experiment": "colour-probe", "dataset": dataset, "split": "val",
              "images": len(ds), "judge": name,
              "judge_weights_sha256": getattr(seg, "weights_sha256", None), "seed": seed,
              "miou": rows, "noise_sds": list(NOISE_SDS),
              "law": "psc_eval.data.toy.CHROMA / CAR_MODES / CAR_MODE_SD"}
    path = Path(out) / "experiments" / dataset / "colour-probe.json"
    atomic_write_json(path, result)
    result["path"] = str(path)
    return result
