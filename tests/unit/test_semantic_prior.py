"""The histogram law of the semantic scorer (``psc_eval.metrics.semantic.prior_tables``):
a class with too few training segments has no 95% region (with one pseudo-segment of
smoothing its region used to cover every bin, so gray passed), and a region holds 95% of
the smoothed mass up to one bin, ties included."""

from __future__ import annotations

import math

import pytest
import torch

from psc_eval.metrics.base import ScoreContext
from psc_eval.metrics.semantic import (
    HDR_MASS,
    HIST_BINS,
    MIN_TRAIN_SEGMENTS,
    SemanticScorer,
    hist_bin,
    prior_tables,
)

K = HIST_BINS * HIST_BINS
GRAY = int(hist_bin(torch.zeros(2)))
RED = int(hist_bin(torch.tensor([60.0, 40.0])))


def ctx_of(ab: torch.Tensor, mask: torch.Tensor) -> ScoreContext:
    B, _, H, W = ab.shape
    z = torch.zeros(B, 3, H, W, dtype=torch.uint8)
    return ScoreContext(ids=[f"im{i}" for i in range(B)], start=0,
                        L=torch.full((B, 1, H, W), 50.0), ab=ab.unsqueeze(1), ab_true=ab,
                        rgb_u8=z, true_u8=z, mask=mask)


def _counts() -> torch.Tensor:
    """Class 0: 10 segments, all red (rare). Class 1: 2000 segments, all red. Class 2:
    1000 segments spread evenly over 200 bins (ties everywhere), none gray."""
    c = torch.zeros(3, K, dtype=torch.float64)
    c[0, RED] = 10
    c[1, RED] = 2000
    bins = [k for k in range(K) if k != GRAY][:200]
    c[2, bins] = 5.0
    return c


def test_a_rare_class_has_no_region_and_a_frequent_one_excludes_gray():
    _, region, n = prior_tables(_counts())
    assert n.tolist() == [10, 2000, 1000]
    assert not region[0].any()  # 10 < MIN_TRAIN_SEGMENTS: undefined, nothing passes
    assert 10 < MIN_TRAIN_SEGMENTS <= 1000
    assert region[1, RED] and not region[1, GRAY] and int(region[1].sum()) == 1


def test_the_region_holds_95_percent_up_to_one_bin_with_ties():
    logp, region, _ = prior_tables(_counts())
    p = logp.exp()
    for c in (1, 2):
        mass = float(p[c][region[c]].sum())
        last = float(p[c][region[c]].min())
        assert HDR_MASS <= mass < HDR_MASS + last + 1e-12, (c, mass)
    # class 2: 200 tied bins of p = 5.005 / 1001 each; the region is the fewest of them
    # reaching 95% (190), not all 200 tied ones
    tied = (5.0 + 1.0 / K) / 1001.0
    m = int(region[2].sum())
    assert m * tied >= HDR_MASS > (m - 1) * tied
    assert int(region[2].sum()) < 200


def test_the_scorer_excludes_and_counts_undefined_classes():
    s = SemanticScorer(num_classes=3, class_names=["rare", "red", "spread"])
    s.law = "histogram"
    s.prior = {"counts": _counts(), "fingerprint": "synthetic", "fingerprint_key": "x"}
    H = W = 16
    mask = torch.zeros(1, H, W, dtype=torch.int64)
    mask[:, :, 8:] = 1  # left half the rare class, right half the frequent red class
    gray = torch.zeros(1, 2, H, W)  # a gray colorizer
    s.update(ctx_of(gray, mask))
    out = s.compute()
    # only the red class's segment is scored, and gray fails it; the rare one is counted
    assert out.metrics["semantic_segments"] == 1
    assert out.metrics["semantic_accuracy"] == 0.0
    assert out.metrics["semantic_undefined_segments"] == 1
    assert out.metrics["semantic_undefined_classes"] == 1
    assert math.isnan(out.per_class_metrics["semantic_accuracy"]["rare"])
    prov = out.provenance["semantic_convention"]
    assert prov["undefined_classes"] == ["rare"]


@pytest.mark.parametrize("n", [1, 18, MIN_TRAIN_SEGMENTS - 1])
def test_gray_never_passes_a_class_seen_only_in_red(n):
    c = torch.zeros(1, K, dtype=torch.float64)
    c[0, RED] = n
    _, region, _ = prior_tables(c)
    assert not region[0, GRAY]
