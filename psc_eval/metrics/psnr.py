"""PSNR against the ground-truth colours (paper Table 3).

``PSNR = 10 log10(data_range^2 / MSE)`` per image, the MSE taken in float64 over
all channels and pixels of that image (as ``skimage.metrics.peak_signal_noise_ratio``
does for one image). Identical images have MSE 0 and PSNR +inf; a dataset mean
over such values would be meaningless, so ``PsnrMeter`` averages the finite values
and reports how many were infinite instead of folding them in.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor


def psnr(x: Tensor, y: Tensor, data_range: float = 255.0) -> Tensor:
    """Per-image PSNR in dB, (B,) float64; x, y (B, ...) on the same scale as ``data_range``."""
    if x.shape != y.shape:
        raise ValueError(f"psnr: shapes differ, {tuple(x.shape)} vs {tuple(y.shape)}")
    if x.ndim < 2:
        raise ValueError(f"psnr expects a batch (B, ...), got shape {tuple(x.shape)}")
    d = x.to(torch.float64) - y.to(torch.float64)
    mse = d.pow(2).flatten(1).mean(dim=1)  # (B,)
    # 10 log10(R^2 / 0) = +inf, which torch gives directly (log10 of inf).
    return 10.0 * torch.log10(float(data_range) ** 2 / mse)


def psnr_rgb_uint8(rgb_pred_u8: Tensor, rgb_true_u8: Tensor) -> Tensor:
    """PSNR of uint8 RGB images (B,3,H,W), data range 255: the figure the paper's Table 3 reports."""
    if rgb_pred_u8.dtype != torch.uint8 or rgb_true_u8.dtype != torch.uint8:
        raise ValueError(
            f"psnr_rgb_uint8 expects uint8 images, got {rgb_pred_u8.dtype} and {rgb_true_u8.dtype}"
        )
    return psnr(rgb_pred_u8, rgb_true_u8, data_range=255.0)


def psnr_ab(ab_pred: Tensor, ab_true: Tensor) -> Tensor:
    """PSNR on the chroma alone, ab (B,2,H,W) in Lab units.

    The data range is 255, the width of the ab range [-127, 128] the paper states
    (``psc_eval.color.AB_MIN``/``AB_MAX``); L is left out, since the harness always
    reuses the original L and it would only inflate the figure.
    """
    from ..color import AB_MAX, AB_MIN

    return psnr(ab_pred, ab_true, data_range=AB_MAX - AB_MIN)


class PsnrMeter:
    """Running mean of per-image PSNR over the finite values; infinite ones are counted apart.

    State is three sums (``total``, ``count``, ``n_infinite``), so ranks reduce it by sum.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total = 0.0
        self.count = 0
        self.n_infinite = 0

    def update(self, values: Tensor) -> PsnrMeter:
        v = values.detach().to(torch.float64).flatten().cpu()
        if torch.isnan(v).any():
            raise ValueError("PsnrMeter.update got NaN PSNR values")
        fin = torch.isfinite(v)
        self.total += float(v[fin].sum())
        self.count += int(fin.sum())
        self.n_infinite += int((~fin).sum())
        return self

    def merge(self, other: PsnrMeter) -> PsnrMeter:
        self.total += other.total
        self.count += other.count
        self.n_infinite += other.n_infinite
        return self

    def compute(self) -> dict[str, Any]:
        mean = self.total / self.count if self.count else math.nan
        return {
            "psnr_mean": mean,
            "n": self.count + self.n_infinite,
            "n_finite": self.count,
            "n_infinite": self.n_infinite,
            "convention": "mean over images with finite PSNR; identical images (inf) counted apart",
        }
