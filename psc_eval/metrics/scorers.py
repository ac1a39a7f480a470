"""The paper's Table 3 scorers: mIoU through the judge and PSNR (formulas in confusion.py
and psnr.py; these classes only hold their sum states)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from .confusion import _compute as confusion_compute
from .confusion import _update as confusion_update
from .psnr import PSNR_BIN_EDGES, psnr_ab, psnr_histogram, psnr_rgb_uint8
from .psnr import _compute as psnr_compute
from .psnr import exact_sum as psnr_exact_sum
from .scorer import ScoreContext, Scorer, Scores

IGNORE_INDEX = 255


class MiouScorer(Scorer):
    """Dataset-level confusion matrix of the judge's labels vs the masks (paper Table 3)."""

    needs_judge = True
    needs_masks = True

    def init_state(self) -> dict[str, Tensor]:
        C = self.num_classes
        return {"mat": torch.zeros(C, C, dtype=torch.int64)}  # rows = truth, cols = prediction

    def update(self, ctx: ScoreContext) -> None:
        assert ctx.pred is not None and ctx.mask is not None
        pred = ctx.pred.to(torch.int64)
        # bincount on the judge's device; the counts come back on the CPU
        self.state["mat"] += confusion_update(pred, ctx.mask.to(pred.device), self.num_classes,
                                              IGNORE_INDEX)

    def legacy_state(self, shard: Mapping[str, Any]) -> dict[str, Tensor] | None:
        mat = shard.get("mat")
        return None if mat is None else {"mat": mat.to(torch.int64)}

    def compute(self) -> Scores:
        c = confusion_compute(self.state["mat"])
        names = self.class_names
        per_class = {(names[k] if k < len(names) else str(k)): v for k, v in enumerate(c["iou"])}
        return Scores(
            metrics={"miou": c["miou"], "pixel_accuracy": c["pixel_accuracy"],
                     "mean_accuracy": c["mean_accuracy"], "num_pixels": c["num_pixels"]},
            per_class=per_class,
            provenance={"miou_convention": c["convention"]},
        )


class PsnrScorer(Scorer):
    """PSNR of the uint8 RGB image (sample 0) and of its ab, against the true colours.

    State: the per-image values (a "cat" state, +inf for identical images) and a
    histogram of the finite RGB values (``PSNR_BIN_EDGES``). The mean is an exactly
    rounded sum (``math.fsum``) of the finite values, so it does not depend on the order
    in which batches, cache shards or ranks are combined: a ``torchrun`` run equals one
    process to the last digit.
    """

    cat_keys = ("rgb_values", "ab_values")

    def init_state(self) -> dict[str, Tensor]:
        return {"rgb_values": torch.zeros(0, dtype=torch.float64),
                "ab_values": torch.zeros(0, dtype=torch.float64),
                "rgb_hist": torch.zeros(len(PSNR_BIN_EDGES) - 1, dtype=torch.int64)}

    def update(self, ctx: ScoreContext) -> None:
        ab1 = ctx.ab[:, 0]  # (B,2,H',W'): Table 3 scores one sample
        v_rgb = psnr_rgb_uint8(ctx.rgb_u8, ctx.true_u8).cpu()
        if ab1.shape[-2:] != ctx.ab_true.shape[-2:]:
            ab1 = torch.nn.functional.interpolate(ab1, size=ctx.ab_true.shape[-2:],
                                                  mode="bilinear", align_corners=False)
        self._add(v_rgb, psnr_ab(ab1, ctx.ab_true).cpu())

    def _add(self, v_rgb: Tensor, v_ab: Tensor) -> None:
        s = self.state
        if not v_rgb.numel():
            return
        for prefix, v in (("rgb", v_rgb), ("ab", v_ab)):
            v = v.detach().to(torch.float64).flatten().cpu()
            if torch.isnan(v).any():
                raise ValueError("PSNR update got NaN PSNR values")
            s[f"{prefix}_values"] = torch.cat([s[f"{prefix}_values"], v])
        s["rgb_hist"] += torch.from_numpy(psnr_histogram(v_rgb))

    def legacy_state(self, shard: Mapping[str, Any]) -> dict[str, Tensor] | None:
        if "psnr_rgb" not in shard or "psnr_ab" not in shard:
            return None
        s = self.empty()
        s._add(shard["psnr_rgb"], shard["psnr_ab"])
        return s.state

    def compute(self) -> Scores:
        s = self.state
        pm = psnr_compute(*psnr_exact_sum(s["rgb_values"]))
        pa = psnr_compute(*psnr_exact_sum(s["ab_values"]))
        hist = {"bin_edges": PSNR_BIN_EDGES, "counts": s["rgb_hist"].tolist(), "unit": "dB",
                "n_infinite": pm["n_infinite"],
                "note": "finite values outside the edges are clipped into the end bins"}
        return Scores(
            metrics={"psnr": pm["psnr_mean"], "psnr_n": pm["n"],
                     "psnr_n_infinite": pm["n_infinite"], "psnr_ab": pa["psnr_mean"],
                     "psnr_ab_n_infinite": pa["n_infinite"]},
            histograms={"psnr_rgb": hist},
            provenance={"psnr_convention": pm["convention"] + "; exactly rounded sum"},
        )
