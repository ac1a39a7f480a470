"""Targets and the three losses of Eq. 6: L = w1 * L_emb + w2 * L_seg + w3 * L_gen.

Units (so the 1:100:1 balance of Sec. 4.1 can be checked in the logs):

- ``L_emb_bpd`` and ``L_gen_bpd``: discretized-mixture-of-logistics NLL (Salimans et al.
  2017) in **bits per chroma value**: the NLL in nats summed over a and b and all pixels,
  divided by (2 * B * H * W * ln 2) (``dmol.mixture_nll_bits_per_dim``).
- ``L_seg``: softmax cross-entropy in **nats per pixel** (Chen et al. 2018), averaged
  over the pixels whose label is not 255.

The chroma target is the input's ab area-downsampled by the stride product (avg pool
4x4 for 128 -> 32; Sec. 3.1 "produce color images with low resolution"), normalised
with :func:`psc_eval.color.normalize_ab` and rounded to the 256-bin grid (one Lab unit
per bin). The segmentation target is nearest-downsampled to the embedding resolution:
the label at offset ``factor // 2`` of each block, i.e. the pixel nearest to the block
centre, as PIL's NEAREST resize picks it (``psc_eval.data.base.resize_mask``).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from psc_eval.color import AB_MAX, AB_MIN, normalize_ab
from psc_eval.data.base import IGNORE_INDEX


def chroma_target(ab: Tensor, factor: int) -> Tensor:
    """ab (B,2,H,W) in Lab units -> (B,2,H/f,W/f) in [-1,1] on the 256-bin grid."""
    if factor > 1:
        ab = F.avg_pool2d(ab, factor)
    ab = ab.round().clamp(AB_MIN, AB_MAX)
    return normalize_ab(ab)


def mask_target(mask: Tensor, factor: int) -> Tensor:
    """mask (B,H,W) -> (B,H/f,W/f): the label nearest to each block's centre."""
    if factor == 1:
        return mask
    o = factor // 2
    return mask[:, o::factor, o::factor]


def seg_loss(logits: Tensor, mask: Tensor) -> Tensor:
    """Mean softmax cross-entropy (nats) over labelled pixels; 0 when none is labelled."""
    valid = mask != IGNORE_INDEX
    if not bool(valid.any()):
        return logits.sum() * 0.0  # keeps the graph; an all-ignore batch teaches nothing
    return F.cross_entropy(logits.float(), mask, ignore_index=IGNORE_INDEX)


def weighted_total(terms: dict[str, Tensor], weights: tuple[float, float, float]) -> Tensor:
    """Eq. 6 over the terms present (psc-purple has no L_seg)."""
    w_emb, w_seg, w_gen = weights
    total = terms["L_emb_bpd"] * w_emb + terms["L_gen_bpd"] * w_gen
    if "L_seg" in terms:
        total = total + terms["L_seg"] * w_seg
    return total
