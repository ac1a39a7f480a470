"""PSNR against the ground-truth colours (paper Table 3).

``PSNR = 10 log10(data_range^2 / MSE)`` per image, the MSE taken in float64 over
all channels and pixels of that image (as ``skimage.metrics.peak_signal_noise_ratio``
does for one image). Identical images have MSE 0 and PSNR +inf; a dataset mean
over such values would be meaningless, so ``PsnrMeter`` and ``PsnrScorer`` (the
evaluation loop's scorer) average the finite values and report how many were infinite
instead of folding them in.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .base import Column, ScoreContext, Scorer, Scores
from .bootstrap import Bootstrapped, bootstrap_mean, canonical, image_keys


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


# Histogram of per-image PSNR (dB) kept with every run; finite values beyond are clipped in.
PSNR_BIN_EDGES = [float(x) for x in range(61)]
CONVENTION = ("mean over images with finite PSNR; identical images (inf) counted apart; "
              "inf when every image is identical")


def exact_sum(values: Tensor) -> tuple[float, int, int]:
    """Per-image PSNR values -> (exactly rounded sum of the finite ones, their count, count
    of infinite ones): ``math.fsum`` is independent of the order of the values."""
    v = values.detach().to(torch.float64).flatten().cpu()
    if torch.isnan(v).any():
        raise ValueError("PSNR got NaN values")
    fin = torch.isfinite(v)
    return math.fsum(v[fin].tolist()), int(fin.sum()), int((~fin).sum())


def psnr_summary(total: float, count: int, n_infinite: int) -> dict[str, Any]:
    """The dataset mean over finite values, with the counts."""
    # no finite value: NaN for no images at all, +inf when every image is identical
    mean = total / count if count else (math.inf if n_infinite else math.nan)
    return {"psnr_mean": mean, "n": count + n_infinite, "n_finite": count,
            "n_infinite": n_infinite, "convention": CONVENTION}


def psnr_histogram(values: Tensor, bin_edges: list[float] = PSNR_BIN_EDGES) -> np.ndarray:
    """int64 counts of the finite per-image values, clipped into the end bins."""
    v = values.detach().to(torch.float64).flatten().cpu()
    fin = v[torch.isfinite(v)].numpy()
    return np.histogram(np.clip(fin, bin_edges[0], bin_edges[-1]), bins=bin_edges)[0].astype(
        np.int64)


class PsnrMeter:
    """Mean of per-image PSNR over the finite values; infinite ones are counted apart.

    Keeps the per-image values (one float each) and sums them exactly (``exact_sum``),
    so the order of updates and merges never changes a digit.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.values = torch.zeros(0, dtype=torch.float64)

    def update(self, values: Tensor) -> PsnrMeter:
        v = values.detach().to(torch.float64).flatten().cpu()
        if torch.isnan(v).any():
            raise ValueError("PSNR update got NaN PSNR values")
        self.values = torch.cat([self.values, v])
        return self

    def merge(self, other: PsnrMeter) -> PsnrMeter:
        self.values = torch.cat([self.values, other.values])
        return self

    def compute(self) -> dict[str, Any]:
        return psnr_summary(*exact_sum(self.values))


class PsnrScorer(Bootstrapped, Scorer):
    """PSNR of the uint8 RGB image (sample 0) and of its ab, against the true colours.

    State: the per-image values (a "cat" state, +inf for identical images) and a
    histogram of the finite RGB values (``PSNR_BIN_EDGES``). The mean is an exactly
    rounded sum (``math.fsum``) of the finite values, so it does not depend on the order
    in which batches, cache shards or ranks are combined: a ``torchrun`` run equals one
    process to the last digit.
    """

    cat_keys = ("key", "rgb_values", "ab_values")
    columns = (Column("psnr", "PSNR RGB (dB)", 15, 2, ci_width=16),
               Column("psnr_ab", "PSNR ab (dB)", 14, 2),
               Column("psnr_n_infinite", summary=False, integer=True),
               *(Column(k, summary=False) for k in ("psnr_ci_low", "psnr_ci_high")))

    def options(self) -> dict[str, Any]:
        return {"bins": PSNR_BIN_EDGES}

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
        pm = psnr_summary(*exact_sum(s["rgb_values"]))
        pa = psnr_summary(*exact_sum(s["ab_values"]))
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
