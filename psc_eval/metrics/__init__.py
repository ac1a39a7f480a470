"""Metrics of the paper's evaluation: mean IoU (confusion matrix) and PSNR, and the scorers
(``SCORERS``) through which the evaluation loop accumulates them."""

from __future__ import annotations

from .base import SCORERS, ScoreContext, Scorer, Scores, build_scorers
from .confusion import ConfusionMatrix, mean_iou
from .psnr import PSNR_BIN_EDGES, PsnrMeter, psnr, psnr_ab, psnr_rgb_uint8

__all__ = ["PSNR_BIN_EDGES", "SCORERS", "ConfusionMatrix", "PsnrMeter", "ScoreContext", "Scorer",
           "Scores", "build_scorers", "mean_iou", "psnr", "psnr_ab", "psnr_rgb_uint8"]
