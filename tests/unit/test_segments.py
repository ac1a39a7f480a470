"""The per-segment sums behind the semantic and pollution scorers (psc_eval/metrics/
segments.py) against a direct loop over pixels and 4-neighbour pairs, and the segment
medians against numpy's sort."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from psc_eval.metrics.segments import SegmentIndex

IGN = 255
B, C, H, W = 3, 4, 7, 9


def _case(seed: int, ignore: bool, integer: bool) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = torch.randint(0, C, (B, H, W), generator=g)
    if ignore:
        mask[torch.rand(B, H, W, generator=g) < 0.2] = IGN
    mask[1] = 2  # an image that is one segment
    ab = torch.randn(B, 2, H, W, generator=g) * 30
    if integer:
        ab = ab.round()
    ab[2, :, :3] = 0.0  # ties, and zeros of both signs
    ab[2, 1, 0, :4] = -0.0
    return ab, mask


def _direct(ab: np.ndarray, mask: np.ndarray):
    """n, within-segment SS, boundary / interior energy per (image, class), per image."""
    n = np.zeros((B, C))
    s1, s2 = np.zeros((2, B, C)), np.zeros((2, B, C))
    for b, y, x in np.ndindex(B, H, W):
        c = mask[b, y, x]
        if c == IGN:
            continue
        n[b, c] += 1
        for ch in range(2):
            s1[ch, b, c] += ab[b, ch, y, x]
            s2[ch, b, c] += ab[b, ch, y, x] ** 2
    ss = sum(np.where(n > 0, s2[ch] - s1[ch] ** 2 / np.maximum(n, 1), 0.0) for ch in range(2))
    eb, ei, tb, ti = np.zeros((B, C)), np.zeros((B, C)), np.zeros(B), np.zeros(B)
    for dy, dx in ((0, 1), (1, 0)):
        for b, y, x in np.ndindex(B, H - dy, W - dx):
            c1, c2 = mask[b, y, x], mask[b, y + dy, x + dx]
            if IGN in (c1, c2):
                continue
            e = float(((ab[b, :, y + dy, x + dx] - ab[b, :, y, x]) ** 2).sum())
            if c1 != c2:
                eb[b, c1] += e
                eb[b, c2] += e
                tb[b] += e
            else:
                ei[b, c1] += e
                ti[b] += e
    return n, np.maximum(ss, 0.0), eb, ei, tb, ti


@pytest.mark.parametrize("ignore", [False, True])
@pytest.mark.parametrize("integer", [True, False])
def test_segment_sums_equal_direct_loop(ignore, integer):
    ab, mask = _case(int(ignore) + 2 * int(integer), ignore, integer)
    ab64 = ab.to(torch.float64)
    seg = SegmentIndex(mask, C)
    n, ss, eb, ei, tb, ti = _direct(ab64.numpy(), mask.numpy())
    got = [seg.n.view(B, C), seg.sum_sq_dev(ab64), *seg.edge_energy(ab64)]
    for g, want in zip(got, (n, ss, eb, ei, tb, ti)):
        g = g.numpy()
        if integer:  # integer chroma: every sum is exact, in any order
            assert np.array_equal(g, want)
        else:
            assert np.allclose(g, want, rtol=1e-12, atol=1e-9)
    assert ss[1, 2] > 0 and eb[1].sum() == 0 and ti[1] > 0  # the one-segment image


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("ignore", [False, True])
def test_segment_medians_equal_numpy_lower_median(dtype, ignore):
    ab, mask = _case(7, ignore, integer=False)
    ab = ab.to(dtype)
    if dtype == torch.float64:
        ab = ab + 1e-9  # values beyond float32: the exact float64 path
    med = SegmentIndex(mask, C).medians(ab).view(B, C, 2)
    for b, c in np.ndindex(B, C):
        sel = mask[b].numpy() == c
        for ch in range(2):
            v = np.sort(ab[b, ch].numpy()[sel].astype(np.float64))
            want = v[(len(v) - 1) // 2] if len(v) else 0.0
            assert med[b, c, ch].item() == want, (b, c, ch)
    # the float32 path keeps the sign of a zero median (bits read back from the sort key)
    z = torch.zeros(1, 2, 2, 2)
    z[0, 0] = -0.0
    m = SegmentIndex(torch.zeros(1, 2, 2, dtype=torch.int64), 1).medians(z)
    assert torch.equal(m, torch.zeros(1, 2, dtype=torch.float64))
    assert math_signbit(m[0, 0].item()) and not math_signbit(m[0, 1].item())


def math_signbit(x: float) -> bool:
    import math

    return math.copysign(1.0, x) < 0


def test_all_ignore_pixels_give_zero_sums_and_medians():
    seg = SegmentIndex(torch.full((2, 5, 6), IGN), 3)
    ab = torch.randn(2, 2, 5, 6, dtype=torch.float64)
    assert int(seg.n.sum()) == 0
    assert torch.equal(seg.medians(ab), torch.zeros(6, 2, dtype=torch.float64))
    assert torch.equal(seg.sum_sq_dev(ab), torch.zeros(2, 3, dtype=torch.float64))
    for t in seg.edge_energy(ab):
        assert not t.any()
