"""Per-segment sums shared by the semantic and pollution scorers.

A segment is one ground-truth class of one image: group ``b*C + class`` of every labelled
pixel (ignore pixels excluded). Everything that depends on the mask alone (group of each
pixel, pixel counts, median positions, the bin keys of 4-neighbour pairs) is built once
per batch (``SegmentIndex``, memoised in the batch dict) and shared by every row and by
both scorers; per row only the colorized chroma enters.

Sums go through ``torch.bincount`` with weights, which on the CPU accumulates serially in
input order, so each group's sum adds its numbers in the order of a loop over the pixels
(a test compares with a direct loop). Pixels are laid out image-fastest, (H, W, B): every
group lies in one image, so this keeps each group's order (its sums are those of a (B, H,
W) loop, bit for bit) while consecutive additions go to different groups and do not wait
for each other (a sorted-key bincount is bound by the latency of its add chain, about 3x
slower).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.base import IGNORE_INDEX


class SegmentIndex:
    """Mask-only bookkeeping of a batch of (B,H,W) labels with ``C`` classes."""

    def __init__(self, mask: Tensor, C: int) -> None:
        B = mask.shape[0]
        dev = mask.device
        self.B, self.C, self.G = B, C, B * C
        keep = mask != IGNORE_INDEX
        grp = torch.arange(B, device=dev).view(B, 1, 1) * C + mask.clamp(0, C - 1)
        self.keep: Tensor | None = None if bool(keep.all()) else _flat(keep)
        self.g = self.pixels(grp)  # (P,) group of every labelled pixel
        self.n = torch.bincount(self.g, minlength=self.G)  # (G,) pixels per group
        self._g2 = torch.cat([self.g, self.g + self.G])  # both chroma channels
        # position of each group's lower median in a (group, value)-sorted list
        starts = torch.cumsum(self.n, 0) - self.n
        self.mid = (starts + (self.n - 1).clamp(min=0) // 2).clamp(
            max=max(int(self.g.numel()) - 1, 0))
        self._gkey = self._g2 * (1 << 32)  # the group part of the median sort keys
        self._mask = mask

    @cached_property
    def _edges(self) -> tuple[Tensor, list[Tensor]]:
        """Bin keys of the 4-neighbour pairs, horizontal then vertical, and the boundary
        pairs of each direction (built on the first ``edge_energy``). Per direction three
        passes into disjoint bins: [boundary energy by the first pixel's class | interior
        energy], [per-image boundary | per-image interior], [boundary energy by the second
        pixel's class: boundary pairs only]; pairs touching an ignore pixel go to the dump
        bin ``2G + 2B``."""
        mask, B, C, G = self._mask, self.B, self.C, self.G
        img = torch.arange(B, device=mask.device).view(B, 1, 1)
        keys: list[Tensor] = []
        at_list: list[Tensor] = []
        for dim in (2, 1):
            n = mask.shape[dim]
            m1, m2 = mask.narrow(dim, 0, n - 1), mask.narrow(dim, 1, n - 1)
            valid = (m1 != IGNORE_INDEX) & (m2 != IGNORE_INDEX)
            bnd, inn = valid & (m1 != m2), valid & (m1 == m2)
            im = img.expand_as(m1)
            c1 = im * C + m1.clamp(0, C - 1)
            dump = torch.full_like(c1, self._dump)
            at = _flat(bnd).nonzero().squeeze(1)
            keys += [_flat(torch.where(bnd, c1, torch.where(inn, c1 + G, dump))),
                     _flat(torch.where(bnd, 2 * G + im, torch.where(inn, 2 * G + B + im,
                                                                    dump))),
                     _flat(im * C + m2.clamp(0, C - 1))[at]]
            at_list.append(at)
        return torch.cat(keys), at_list

    @property
    def _dump(self) -> int:
        return 2 * self.G + 2 * self.B

    def pixels(self, x: Tensor) -> Tensor:
        """(B,H,W) -> (P,) values of the labelled pixels, in the order of ``g``."""
        x = _flat(x)
        return x if self.keep is None else x[self.keep]

    def _chroma(self, ab: Tensor) -> Tensor:
        """(B,2,H,W) -> (2P,) channel a's labelled pixels, then channel b's."""
        x = ab.permute(1, 2, 3, 0).reshape(2, -1)
        return (x if self.keep is None else x[:, self.keep]).reshape(-1)

    def sum_sq_dev(self, ab: Tensor) -> Tensor:
        """(B,C) within-segment sum of squared deviations of float64 ab (both channels)."""
        G = self.G
        x = self._chroma(ab)
        s1 = torch.bincount(self._g2, weights=x, minlength=2 * G)
        s2 = torch.bincount(self._g2, weights=x * x, minlength=2 * G)
        n = self.n.to(torch.float64)
        out = torch.zeros(G, dtype=torch.float64, device=ab.device)
        for c in range(2):
            a1, a2 = s1[c * G:(c + 1) * G], s2[c * G:(c + 1) * G]
            out += torch.where(n > 0, a2 - a1 * a1 / n.clamp(min=1), torch.zeros_like(a2))
        return out.clamp(min=0).view(self.B, self.C)

    def edge_energy(self, ab: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Chroma gradient energy ||ab(p) - ab(q)||^2 over 4-neighbour pairs of float64 ab:
        per image and class, boundary (B,C) (a pair counts for both classes it touches) and
        interior (B,C); per image, boundary (B,) and interior (B,) (each pair once)."""
        keys, at_list = self._edges
        ws = []
        for dim, at in zip((3, 2), at_list):  # horizontal, vertical: the key order
            n = ab.shape[dim]
            e = _flat((ab.narrow(dim, 1, n - 1) - ab.narrow(dim, 0, n - 1)).pow(2).sum(1))
            ws += [e, e, e[at]]
        s = torch.bincount(keys, weights=torch.cat(ws), minlength=self._dump + 1)
        B, C, G = self.B, self.C, self.G
        return (s[:G].view(B, C), s[G:2 * G].view(B, C), s[2 * G:2 * G + B],
                s[2 * G + B:self._dump])

    def medians(self, ab: Tensor) -> Tensor:
        """(G,2) per-channel lower median of ab in each group (0 where the group is empty)."""
        out = torch.zeros(self.G, 2, dtype=torch.float64, device=ab.device)
        P = int(self.g.numel())
        if P == 0:
            return out
        v = self._chroma(ab)
        v32 = v.to(torch.float32)
        if torch.equal(v32.to(v.dtype), v):
            vals = _sorted_by_group_float32(self._gkey, v32).to(torch.float64)
        else:  # values beyond float32: exact float64 keys, slower
            key = self._g2.to(torch.float64) * 1024.0 + (v.to(torch.float64) + 512.0)
            vals = v.to(torch.float64)[torch.argsort(key)]
        out[:, 0] = vals[self.mid]
        out[:, 1] = vals[P + self.mid]
        return out.masked_fill_((self.n == 0).unsqueeze(1), 0.0)


def _flat(x: Tensor) -> Tensor:
    """(B,H,W) -> (H*W*B,) image-fastest (see the module docstring)."""
    return x.permute(1, 2, 0).reshape(-1)


def _sorted_by_group_float32(gkey: Tensor, v: Tensor) -> Tensor:
    """float32 values ``v`` sorted by (group, value), ``gkey`` = group << 32: one int64
    sort of ``gkey + order-preserving signed bits of v`` (in [-2^31, 2^31), so groups stay
    apart), the values read back from the sorted keys."""
    bits = v.view(torch.int32)
    # negative floats: flip all bits but the sign, so signed-integer order is float order
    # (an involution: the same expression maps back)
    ordered = bits ^ ((bits >> 31) & 0x7FFFFFFF)
    key = gkey + ordered.to(torch.int64)
    if key.device.type == "cpu":  # numpy's vectorised sort: several times torch's
        srt = torch.from_numpy(np.sort(key.numpy()))
    else:
        srt = torch.sort(key).values
    low = (((srt + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)).to(torch.int32)
    return (low ^ ((low >> 31) & 0x7FFFFFFF)).view(torch.float32)


def segment_index(ctx: Any, C: int) -> SegmentIndex:
    """The batch's ``SegmentIndex`` (built once per batch and class count)."""
    memo = ctx.batch.setdefault("_segment_index", {}) if ctx.batch is not None else {}
    if C not in memo:
        memo[C] = SegmentIndex(ctx.mask.to(ctx.ab_true.device), C)
    return memo[C]


def colorized_ab(ctx: Any) -> tuple[Tensor, Tensor]:
    """(B,2,H,W) float64 chroma of sample 0 at mask size (upsampled bilinearly, as for
    PSNR), and the true chroma at the same float16 precision as the colorizer's (the
    runner's storage precision), so ``gt`` is compared with itself bit for bit. Computed
    once per row and batch."""
    memo = ctx._memo
    if "colorized_ab" not in memo:
        ab = ctx.ab[:, 0]
        if ab.shape[-2:] != ctx.ab_true.shape[-2:]:
            ab = torch.nn.functional.interpolate(ab.float(), size=ctx.ab_true.shape[-2:],
                                                 mode="bilinear", align_corners=False)
        ref = ctx.ab_true.to(torch.float16)
        memo["colorized_ab"] = (ab.to(torch.float64), ref.to(torch.float64))
    return memo["colorized_ab"]
