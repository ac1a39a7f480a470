"""Metrics of the paper's evaluation: mean IoU (confusion matrix) and PSNR."""

from __future__ import annotations

from .confusion import ConfusionMatrix, mean_iou
from .psnr import PsnrMeter, psnr, psnr_ab, psnr_rgb_uint8

__all__ = ["ConfusionMatrix", "PsnrMeter", "mean_iou", "psnr", "psnr_ab", "psnr_rgb_uint8"]
