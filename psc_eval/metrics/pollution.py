"""Colour pollution (paper Fig. 1 and Sec. 4.6's discussion of the baselines): colour that
varies inside an object, or bleeds across its boundary.

Segments are the ground-truth classes of an image (all pixels of class c in image i; ignore
pixels 255 excluded). The colorized chroma is the colorizer's sample 0 (upsampled
bilinearly to the mask size, as for PSNR); the reference is the true chroma at the same
float16 precision as the colorizer's (the runner's storage precision), so ``gt`` is
compared with itself bit for bit. Per class and overall, as ratios of dataset sums (pooled:
a segment weighs by its pixels, so small noisy segments do not dominate):

* ``pollution_spread`` = sum_seg SS(colorized) / sum_seg SS(true), SS the sum over the
  segment's pixels of ||ab - mean_seg ab||^2 (within-segment variance, pixel-weighted).
  gt: 1 exactly; gray: 0 exactly; > 1: colour varies inside objects more than in truth.
* ``pollution_boundary`` = E_b(colorized) / E_b(true), E_b the chroma gradient energy
  (||ab(p) - ab(q)||^2 over 4-neighbour pairs p, q) on pairs that straddle a ground-truth
  boundary: how much of the true colour change at object borders is kept. gt 1, gray 0.
* ``pollution_bleed`` = [E_b / E_i](colorized) / [E_b / E_i](true), E_i the energy on
  pairs inside one segment: the boundary-vs-interior concentration of chroma change,
  relative to the truth's. gt 1; < 1: colour changes as much inside objects as across
  their borders (bleeding, blotches); gray: undefined (NaN: no chroma change anywhere).

Per class, a boundary pair counts for both classes it touches; overall, once.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .base import Column, ScoreContext, Scorer, Scores
from .bootstrap import canonical, image_keys
from .segments import colorized_ab, segment_index


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0),
                        np.where(num > 0, np.inf, np.nan))


class PollutionScorer(Scorer):
    """Within-segment chroma spread and cross-boundary chroma change, vs the truth."""

    needs_masks = True
    cat_keys = ("key", "rows")
    columns = (Column("pollution_spread", "spread", 9,
                      note="within-segment chroma variance / truth's"),
               Column("pollution_boundary", "bound.", 8,
                      note="chroma change on true boundaries / truth's"),
               Column("pollution_bleed", "bleed", 8,
                      note="boundary-vs-interior change / truth's (1 = as the truth)"))

    def init_state(self) -> dict[str, Tensor]:
        C = self.num_classes
        return {"key": torch.zeros(0, dtype=torch.int64),
                "rows": torch.zeros(0, 6 * C + 4, dtype=torch.float64)}

    def update(self, ctx: ScoreContext) -> None:
        assert ctx.mask is not None
        C = self.num_classes
        ab, ref = colorized_ab(ctx)
        seg = segment_index(ctx, C)
        # the truth's half is the same for every row of the batch: computed once per batch
        memo = ctx.batch.setdefault("_pollution_truth", {}) if ctx.batch is not None else {}
        if C not in memo:
            memo[C] = (seg.sum_sq_dev(ref), seg.edge_energy(ref))
        ss_t, (eb_t, ei_t, tb_t, ti_t) = memo[C]
        parts = [seg.sum_sq_dev(ab), ss_t]
        eb_c, ei_c, tb_c, ti_c = seg.edge_energy(ab)
        rows = torch.cat([*parts, eb_c, eb_t, ei_c, ei_t,
                          torch.stack([tb_c, tb_t, ti_c, ti_t], 1)], 1).cpu()
        self.state["key"] = torch.cat([self.state["key"], image_keys(ctx.ids)])
        self.state["rows"] = torch.cat([self.state["rows"], rows])

    def compute(self) -> Scores:
        C = self.num_classes
        _, rows = canonical(self.state["key"], self.state["rows"])
        s = rows.numpy().sum(0) if rows.shape[0] else np.zeros(6 * C + 4)
        ss_c, ss_t, eb_c, eb_t, ei_c, ei_t = (s[k * C:(k + 1) * C] for k in range(6))
        tb_c, tb_t, ti_c, ti_t = s[6 * C:]
        spread = _ratio(ss_c, ss_t)
        boundary = _ratio(eb_c, eb_t)
        bleed = _ratio(_ratio(eb_c, ei_c), _ratio(eb_t, ei_t))
        names = [self.class_names[k] if k < len(self.class_names) else str(k) for k in range(C)]

        def per(v: np.ndarray) -> dict[str, float]:
            return {n: float(x) for n, x in zip(names, v)}

        overall_bleed = float(_ratio(_ratio(np.array(tb_c), np.array(ti_c)),
                                     _ratio(np.array(tb_t), np.array(ti_t))))
        return Scores(
            metrics={"pollution_spread": float(_ratio(ss_c.sum(), ss_t.sum())),
                     "pollution_boundary": float(_ratio(np.array(tb_c), np.array(tb_t))),
                     "pollution_bleed": overall_bleed},
            per_class_metrics={"pollution_spread": per(spread),
                               "pollution_boundary": per(boundary),
                               "pollution_bleed": per(bleed)},
            provenance={"pollution_convention":
                        "segments = ground-truth classes per image; sample 0 upsampled to "
                        "mask size vs true ab at float16; ratios of dataset sums (pixel-"
                        "weighted); 4-neighbour chroma gradient energy; see "
                        "psc_eval/metrics/pollution.py"},
        )
