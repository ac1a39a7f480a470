"""Mean IoU from a dataset-level confusion matrix (paper Table 3, Fig. 8).

Counts are accumulated over the whole dataset in one int64 (C, C) matrix, rows =
ground truth, columns = prediction, and IoU is computed once at the end, as
mmsegmentation's ``total_intersect_and_union`` and kazuto1011/deeplab-pytorch's
``scores()`` do. It is never an average of per-image or per-batch mIoU (those
differ: small images with few classes would weigh as much as large ones).

Convention (recorded in every result as ``convention``): ``iou[c]`` is NaN where
the union of class c is empty (absent from both the ground truth and the
prediction), and ``miou`` is the nanmean over classes, so a class predicted but
absent from the ground truth counts with IoU 0 (mmsegmentation). kazuto1011's
``scores()`` instead averages over classes present in the ground truth only; the two
agree when every class occurs in the ground truth (full VOC val). torchmetrics'
``MulticlassJaccardIndex`` reports 0 instead of NaN for an empty union with
``average=None``; its ``macro`` average drops those classes, so it equals ``miou``.

The functional pair ``confusion_counts`` / ``confusion_scores`` is reused by
``ConfusionMatrix`` and the mIoU scorer (torchmetrics style); the matrix is a plain sum, so
ranks reduce it with ``all_reduce(SUM)`` on ``.mat``. ``iou_from_counts`` is THE IoU
formula: the point estimate and the bootstrap (``bootstrap.miou_from_counts``, many
resampled count vectors at once) both call it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

CONVENTION = (
    "dataset-level confusion matrix; iou NaN where union empty; "
    "miou = nanmean over classes with non-empty union (predicted-but-absent class counts 0)"
)


def _check(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
    if pred.is_floating_point() or target.is_floating_point():
        raise ValueError("pred and target must be integer label maps, got floating point")
    if pred.numel():
        lo, hi = int(pred.min()), int(pred.max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(f"predictions outside [0, {num_classes}): min {lo}, max {hi}")
    bad = (target != ignore_index) & ((target < 0) | (target >= num_classes))
    if bool(bad.any()):
        vals = sorted(set(torch.unique(target[bad]).tolist()))[:5]
        raise ValueError(
            f"targets {vals} outside {{0..{num_classes - 1}, {ignore_index}}}"
        )


def confusion_counts(
    pred: Tensor, target: Tensor, num_classes: int, ignore_index: int = 255
) -> Tensor:
    """(B,H,W) label maps -> int64 (C, C) counts, rows = target, columns = prediction."""
    _check(pred, target, num_classes, ignore_index)
    keep = target != ignore_index
    t = target[keep].to(torch.int64)
    p = pred[keep].to(torch.int64)
    counts = torch.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).cpu()


def iou_from_counts(tp: np.ndarray, gt: np.ndarray, pr: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Per-class IoU (..., C) and mIoU (...) from float64 counts (..., C) of intersection,
    ground-truth and predicted pixels: IoU NaN where the union is empty, mIoU the mean over
    the other classes (NaN when none).

    Vectorised over the leading dimensions, and each mIoU is ``iou[valid].mean()`` of its
    own row to the last bit (rows are grouped by their set of valid classes and averaged
    over exactly those columns), so a bootstrap resample and the point estimate of the same
    counts agree exactly."""
    union = gt + pr - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
    C = iou.shape[-1]
    rows = iou.reshape(-1, C)
    valid = ~np.isnan(rows)
    miou = np.full(rows.shape[0], np.nan)
    patterns, which = np.unique(valid, axis=0, return_inverse=True)
    for k, cols in enumerate(patterns):
        if cols.any():
            sel = which.reshape(-1) == k
            miou[sel] = rows[sel][:, cols].mean(axis=1)
    return iou, miou.reshape(iou.shape[:-1])


def confusion_scores(mat: Tensor | np.ndarray) -> dict[str, Any]:
    """IoU, accuracies from a (C, C) count matrix, in float64."""
    m = torch.as_tensor(mat).to(torch.float64).cpu().numpy()
    tp = np.diag(m)
    gt = m.sum(axis=1)  # pixels of each class in the ground truth
    pr = m.sum(axis=0)  # pixels predicted as each class
    iou, miou = iou_from_counts(tp, gt, pr)
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = np.where(gt > 0, tp / gt, np.nan)
    total = m.sum()
    return {
        "miou": float(miou),
        "iou": iou.tolist(),
        "pixel_accuracy": float(tp.sum() / total) if total > 0 else float("nan"),
        "mean_accuracy": float(np.nanmean(acc)) if (gt > 0).any() else float("nan"),
        "num_pixels": int(total),
        "convention": CONVENTION,
    }


class ConfusionMatrix:
    """Stateful accumulator: ``update`` per batch, ``compute`` once per dataset."""

    def __init__(self, num_classes: int, ignore_index: int = 255):
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.mat = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred: Tensor, target: Tensor) -> ConfusionMatrix:
        self.mat += confusion_counts(pred, target, self.num_classes, self.ignore_index)
        return self

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge {other.num_classes} classes into {self.num_classes}")
        self.mat += other.mat.to(self.mat.device)
        return self

    def reset(self) -> None:
        self.mat.zero_()

    def compute(self) -> dict[str, Any]:
        return confusion_scores(self.mat)


def mean_iou(
    pred: Tensor, target: Tensor, num_classes: int, ignore_index: int = 255
) -> dict[str, Any]:
    """Functional form of ``ConfusionMatrix``: one update, one compute."""
    return confusion_scores(confusion_counts(pred, target, num_classes, ignore_index))
