"""The paper's Table 3 mIoU through the judge, as a scorer (the formula is confusion.py's;
this class only holds its sum state and the per-image counts its bootstrap resamples)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..data.base import IGNORE_INDEX
from .base import Column, ScoreContext, Scorer, Scores
from .bootstrap import Bootstrapped, bootstrap_miou, canonical, image_keys
from .confusion import confusion_counts, confusion_scores


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


class MiouScorer(Bootstrapped, Scorer):
    """Dataset-level confusion matrix of the judge's labels vs the masks (paper Table 3),
    and per-image confusion counts (a "cat" state, 3C int32 per image: intersection, truth
    and predicted pixels per class) from which the bootstrap interval resamples images."""

    needs_judge = True
    needs_masks = True
    columns = (Column("miou", "mIoU", 8, 4, ci_width=18),
               *(Column(k, summary=False) for k in ("pixel_accuracy", "mean_accuracy",
                                                    "miou_ci_low", "miou_ci_high")))
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
        self.state["mat"] += confusion_counts(pred, mask, self.num_classes, IGNORE_INDEX)
        s = self.state
        s["key"] = torch.cat([s["key"], image_keys(ctx.ids)])
        s["img_counts"] = torch.cat([s["img_counts"],
                                     per_image_counts(pred, mask, self.num_classes)])

    def compute(self) -> Scores:
        c = confusion_scores(self.state["mat"])
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
