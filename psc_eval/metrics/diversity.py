"""Sample diversity (paper Sec. 4.5, Fig. 10): MS-SSIM between two samples of one gray input.

Following Guadarrama et al. (2017), two colorizations of the same gray image are compared
with multi-scale SSIM (Wang, Simoncelli & Bovik 2003) on their uint8 RGB images, through
``pytorch_msssim.ms_ssim`` itself (``data_range=255``, per image, mean over channels).

The variant (``msssim_variant(size)``). pytorch-msssim's defaults (11-px Gaussian window,
sigma 1.5, 5 scales, Wang et al.'s weights) require ``min side > 16 * (win - 1)``, i.e.
more than 160 px, and the library checks this bound for any number of scales (it hard-codes
the 4 downsamplings of 5 scales). The rule keeps everything at the library's default and
shrinks only the window: ``win`` = the largest odd size <= 11 with ``side > 16 * (win - 1)``
(the library's own check), 5 scales, weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333),
sigma 1.5, K = (0.01, 0.03). So: 3 px at 64 px (toy), 7 px at 128 px (the paper's input),
11 px from 161 px. Below 33 px no window passes and diversity is refused. The variant is
recorded in every result (``provenance.msssim_variant``) and in the score cache key.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from .base import Column, ScoreContext, Scorer, Scores
from .bootstrap import canonical, image_keys

WANG_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, Table/Eq. 7
# Fig. 10's axis: SSIM from 0 to 1; bins of 0.05 (its mass lies in 0.8-0.95).
DIVERSITY_BIN_EDGES = [round(0.05 * i, 2) for i in range(21)]
MIN_MSSSIM_SIZE = 33


def msssim_variant(size: int) -> dict[str, Any]:
    """The MS-SSIM variant valid at images of ``size`` px (min side); see the module doc."""
    from ..errors import PscError

    size = int(size)
    wins = [w for w in range(11, 1, -2) if size > 16 * (w - 1)]
    if not wins:
        raise PscError(f"images of {size} px are too small for MS-SSIM (5 scales need more "
                       f"than 32 px), in --size, use --size {MIN_MSSSIM_SIZE} or more")
    return {"implementation": "pytorch_msssim.ms_ssim", "image_size": size,
            "win_size": wins[0], "win_sigma": 1.5, "scales": len(WANG_WEIGHTS),
            "weights": list(WANG_WEIGHTS), "K": [0.01, 0.03], "data_range": 255,
            "input": "uint8 RGB of the two samples (original L), float64",
            "rule": "largest odd window <= 11 with side > 16*(win-1) (pytorch-msssim's "
                    "check); library defaults otherwise"}


def ms_ssim_pairs(x_u8: Tensor, y_u8: Tensor, variant: dict[str, Any]) -> Tensor:
    """(B,) float64 MS-SSIM of two (B,3,H,W) uint8 batches with ``variant``."""
    from pytorch_msssim import ms_ssim

    x = x_u8.to(torch.float64)
    y = y_u8.to(torch.float64)
    return ms_ssim(x, y, data_range=variant["data_range"], size_average=False,
                   win_size=variant["win_size"], win_sigma=variant["win_sigma"],
                   weights=list(variant["weights"]), K=tuple(variant["K"])).to(torch.float64)


def diversity_histogram(values: np.ndarray) -> list[int]:
    v = np.clip(np.asarray(values, np.float64), 0.0, 1.0)
    return np.histogram(v, bins=DIVERSITY_BIN_EDGES)[0].astype(int).tolist()


class DiversityScorer(Scorer):
    """MS-SSIM between samples 0 and 1 of every image (Fig. 10). A deterministic colorizer
    gives one sample, repeated: MS-SSIM 1 for every image (gray, gt)."""

    n_samples = 2
    cat_keys = ("key", "msssim")
    columns = (Column("diversity_msssim", "MS-SSIM", 9,
                      note="MS-SSIM of two samples of one gray input (1 = identical)"),)

    variant: dict[str, Any] | None = None

    def setup(self, dataset: Any, cfg: Any = None) -> None:
        self.variant = msssim_variant(int(getattr(dataset, "size", 0)))

    def options(self) -> dict[str, Any]:
        return {"msssim_variant": self.variant}

    def init_state(self) -> dict[str, Tensor]:
        return {"key": torch.zeros(0, dtype=torch.int64),
                "msssim": torch.zeros(0, dtype=torch.float64)}

    def update(self, ctx: ScoreContext) -> None:
        if self.variant is None:
            self.variant = msssim_variant(min(ctx.rgb_u8.shape[-2:]))
        v = ms_ssim_pairs(ctx.sample_rgb_u8(0), ctx.sample_rgb_u8(1), self.variant).cpu()
        self.state["key"] = torch.cat([self.state["key"], image_keys(ctx.ids)])
        self.state["msssim"] = torch.cat([self.state["msssim"], v])

    def compute(self) -> Scores:
        _, v = canonical(self.state["key"], self.state["msssim"])
        v = v.numpy()
        mean = float(np.mean(v)) if v.size else float("nan")
        return Scores(
            metrics={"diversity_msssim": mean,
                     "diversity_msssim_median": float(np.median(v)) if v.size else float("nan"),
                     "diversity_n": int(v.size)},
            histograms={"diversity_msssim": {
                "bin_edges": DIVERSITY_BIN_EDGES, "counts": diversity_histogram(v),
                "unit": "MS-SSIM", "note": "Fig. 10: two samples per gray input; values "
                                          "clipped into [0, 1]"}},
            per_image={"diversity_msssim": v.tolist()},
            provenance={"msssim_variant": self.variant},
        )
