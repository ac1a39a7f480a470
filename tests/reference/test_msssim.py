"""Diversity's MS-SSIM equals pytorch-msssim called directly with the recorded variant."""

from __future__ import annotations

import pytest
import torch
from pytorch_msssim import ms_ssim

from psc_eval.errors import PscError
from psc_eval.metrics.base import ScoreContext
from psc_eval.metrics.diversity import WANG_WEIGHTS, DiversityScorer, ms_ssim_pairs, msssim_variant


@pytest.mark.parametrize("size,win", [(33, 3), (64, 3), (80, 5), (128, 7), (160, 9),
                                      (161, 11), (256, 11)])
def test_variant_rule(size, win):
    v = msssim_variant(size)
    assert v["win_size"] == win and v["scales"] == 5 and v["weights"] == list(WANG_WEIGHTS)
    assert size > 16 * (win - 1)  # pytorch-msssim's own size check passes


def test_too_small_is_one_line_error():
    with pytest.raises(PscError, match="too small for MS-SSIM"):
        msssim_variant(32)


@pytest.mark.parametrize("size", [64, 128])
def test_scorer_equals_pytorch_msssim_direct(size):
    g = torch.Generator().manual_seed(size)
    x = torch.randint(0, 256, (3, 3, size, size), generator=g, dtype=torch.uint8)
    noise = torch.randint(-40, 41, x.shape, generator=g)
    y = (x.to(torch.int64) + noise).clamp(0, 255).to(torch.uint8)
    v = msssim_variant(size)
    direct = ms_ssim(x.double(), y.double(), data_range=255, size_average=False,
                     win_size=v["win_size"], win_sigma=v["win_sigma"], weights=v["weights"],
                     K=v["K"])
    assert torch.equal(ms_ssim_pairs(x, y, v), direct)
    # through the scorer, as the runner feeds it (samples 0 and 1 of each image)
    L = torch.full((3, 1, size, size), 50.0)
    s = DiversityScorer(num_classes=1)
    s.variant = v
    ctx = ScoreContext(ids=["a", "b", "c"], start=0, L=L, ab=torch.zeros(3, 2, 2, size, size),
                       ab_true=torch.zeros(3, 2, size, size), rgb_u8=x, true_u8=x)
    ctx._memo["rgb", 1] = y  # sample 1's RGB, as sample_rgb_u8 caches it
    s.update(ctx)
    out = s.compute()
    from psc_eval.metrics.bootstrap import canonical, image_keys

    _, want = canonical(image_keys(["a", "b", "c"]), direct)
    assert out.per_image["diversity_msssim"] == want.tolist()
    assert out.provenance["msssim_variant"] == v
    assert out.metrics["diversity_msssim"] == pytest.approx(float(direct.mean()), abs=1e-15)


def test_identical_pairs_score_one_exactly():
    x = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    assert ms_ssim_pairs(x, x, msssim_variant(64)).tolist() == [1.0, 1.0]
