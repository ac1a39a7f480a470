"""The paper's Table 3 scorers: mIoU through the judge and PSNR (formulas in confusion.py
and psnr.py; these classes only hold their sum states)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..data.base import IGNORE_INDEX
from .bootstrap import METHOD as BOOTSTRAP_METHOD
from .bootstrap import RESAMPLES, bootstrap_mean, bootstrap_miou, canonical, image_keys
from .confusion import _compute as confusion_compute
from .confusion import _update as confusion_update
from .psnr import PSNR_BIN_EDGES, psnr_ab, psnr_histogram, psnr_rgb_uint8
from .psnr import _compute as psnr_compute
from .psnr import exact_sum as psnr_exact_sum
from .scorer import ScoreContext, Scorer, Scores


class _Bootstrapped:
    """Bootstrap options read from the run's config (``bootstrap``, ``bootstrap_seed``)."""

    resamples: int = RESAMPLES
    boot_seed: int = 0

    def setup(self, dataset: Any, cfg: Any = None) -> None:
        if cfg is not None:
            self.resamples = int(getattr(cfg, "bootstrap", RESAMPLES))
            self.boot_seed = int(getattr(cfg, "bootstrap_seed", 0))

    def boot_record(self) -> dict[str, Any]:
        return {"resamples": self.resamples, "seed": self.boot_seed, "level": 0.95,
                "method": BOOTSTRAP_METHOD}


def per_image_counts(pred: Tensor, mask: Tensor, C: int) -> Tensor:
    """(B, 3C) int32 per-image [intersection | truth pixels | predicted pixels] per class
    (ignore pixels excluded): the rows mIoU's bootstrap resamples."""
    B = pred.shape[0]
    keep = (mask != IGNORE_INDEX).reshape(B, -1)
    t = mask.reshape(B, -1).clamp(0, C - 1)
    p = pred.reshape(B, -1).clamp(0, C - 1)
    img = torch.arange(B, device=pred.device).view(B, 1).expand_as(t)
    out = torch.zeros(3, B * C, dtype=torch.int64, device=pred.device)
    for k, (cls, sel) in enumerate(((t, keep & (t == p)), (t, keep), (p, keep))):
        out[k] = torch.bincount((img * C + cls)[sel], minlength=B * C)
    return out.view(3, B, C).permute(1, 0, 2).reshape(B, 3 * C).to(torch.int32).cpu()


class MiouScorer(_Bootstrapped, Scorer):
    """Dataset-level confusion matrix of the judge's labels vs the masks (paper Table 3),
    and per-image confusion counts (a "cat" state, 3C int32 per image: intersection, truth
    and predicted pixels per class) from which the bootstrap interval resamples images."""

    needs_judge = True
    needs_masks = True
    cat_keys = ("key", "img_counts")

    def init_state(self) -> dict[str, Tensor]:
        C = self.num_classes
        return {"mat": torch.zeros(C, C, dtype=torch.int64),  # rows = truth, cols = prediction
                "key": torch.zeros(0, dtype=torch.int64),
                "img_counts": torch.zeros(0, 3 * C, dtype=torch.int32)}

    def update(self, ctx: ScoreContext) -> None:
        assert ctx.pred is not None and ctx.mask is not None
        pred = ctx.pred.to(torch.int64)
        mask = ctx.mask.to(pred.device)
        # bincount on the judge's device; the counts come back on the CPU
        self.state["mat"] += confusion_update(pred, mask, self.num_classes, IGNORE_INDEX)
        s = self.state
        s["key"] = torch.cat([s["key"], image_keys(ctx.ids)])
        s["img_counts"] = torch.cat([s["img_counts"],
                                     per_image_counts(pred, mask, self.num_classes)])

    def compute(self) -> Scores:
        c = confusion_compute(self.state["mat"])
        names = self.class_names
        per_class = {(names[k] if k < len(names) else str(k)): v for k, v in enumerate(c["iou"])}
        keys, rows = canonical(self.state["key"], self.state["img_counts"])
        ci = bootstrap_miou(rows, self.resamples, self.boot_seed)
        C = self.num_classes
        r = rows.view(-1, 3, C).to(torch.int64)
        nz = torch.nonzero(r[:, 1] + r[:, 2])  # (image, class) with pixels
        sparse = torch.cat([nz, r[nz[:, 0], :, nz[:, 1]]], 1).tolist() if len(nz) else []
        return Scores(
            metrics={"miou": c["miou"], "miou_ci_low": ci["low"], "miou_ci_high": ci["high"],
                     "pixel_accuracy": c["pixel_accuracy"],
                     "mean_accuracy": c["mean_accuracy"], "num_pixels": c["num_pixels"]},
            per_class=per_class,
            per_image={"key": keys.tolist(), "miou_counts": {
                "num_classes": C, "columns": ["image", "class", "intersection", "truth",
                                              "predicted"], "rows": sparse}},
            provenance={"miou_convention": c["convention"], "bootstrap": self.boot_record()},
        )


class PsnrScorer(_Bootstrapped, Scorer):
    """PSNR of the uint8 RGB image (sample 0) and of its ab, against the true colours.

    State: the per-image values (a "cat" state, +inf for identical images) and a
    histogram of the finite RGB values (``PSNR_BIN_EDGES``). The mean is an exactly
    rounded sum (``math.fsum``) of the finite values, so it does not depend on the order
    in which batches, cache shards or ranks are combined: a ``torchrun`` run equals one
    process to the last digit.
    """

    cat_keys = ("key", "rgb_values", "ab_values")

    def init_state(self) -> dict[str, Tensor]:
        return {"key": torch.zeros(0, dtype=torch.int64),
                "rgb_values": torch.zeros(0, dtype=torch.float64),
                "ab_values": torch.zeros(0, dtype=torch.float64),
                "rgb_hist": torch.zeros(len(PSNR_BIN_EDGES) - 1, dtype=torch.int64)}

    def update(self, ctx: ScoreContext) -> None:
        ab1 = ctx.ab[:, 0]  # (B,2,H',W'): Table 3 scores one sample
        v_rgb = psnr_rgb_uint8(ctx.rgb_u8, ctx.true_u8).cpu()
        if ab1.shape[-2:] != ctx.ab_true.shape[-2:]:
            ab1 = torch.nn.functional.interpolate(ab1, size=ctx.ab_true.shape[-2:],
                                                  mode="bilinear", align_corners=False)
        self._add(v_rgb, psnr_ab(ab1, ctx.ab_true).cpu(), ctx.ids)

    def _add(self, v_rgb: Tensor, v_ab: Tensor, ids: list[str]) -> None:
        s = self.state
        if not v_rgb.numel():
            return
        s["key"] = torch.cat([s["key"], image_keys(ids)])
        for prefix, v in (("rgb", v_rgb), ("ab", v_ab)):
            v = v.detach().to(torch.float64).flatten().cpu()
            if torch.isnan(v).any():
                raise ValueError("PSNR update got NaN PSNR values")
            s[f"{prefix}_values"] = torch.cat([s[f"{prefix}_values"], v])
        s["rgb_hist"] += torch.from_numpy(psnr_histogram(v_rgb))

    def compute(self) -> Scores:
        s = self.state
        pm = psnr_compute(*psnr_exact_sum(s["rgb_values"]))
        pa = psnr_compute(*psnr_exact_sum(s["ab_values"]))
        hist = {"bin_edges": PSNR_BIN_EDGES, "counts": s["rgb_hist"].tolist(), "unit": "dB",
                "n_infinite": pm["n_infinite"],
                "note": "finite values outside the edges are clipped into the end bins"}
        keys, rgb, ab = canonical(s["key"], s["rgb_values"], s["ab_values"])
        ci = bootstrap_mean(rgb, self.resamples, self.boot_seed)
        return Scores(
            metrics={"psnr": pm["psnr_mean"], "psnr_ci_low": ci["low"],
                     "psnr_ci_high": ci["high"], "psnr_n": pm["n"],
                     "psnr_n_infinite": pm["n_infinite"], "psnr_ab": pa["psnr_mean"],
                     "psnr_ab_n_infinite": pa["n_infinite"]},
            histograms={"psnr_rgb": hist},
            per_image={"key": keys.tolist(), "psnr": rgb.tolist(), "psnr_ab": ab.tolist()},
            provenance={"psnr_convention": pm["convention"] + "; exactly rounded sum",
                        "bootstrap": self.boot_record()},
        )
