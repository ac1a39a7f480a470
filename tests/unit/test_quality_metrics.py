"""Semantic colour accuracy, colour pollution and diversity on inputs whose values are known
by hand; the reference rows (gray, gt) take their known values; a 2-rank gloo run of all
scorers equals one process to the last digit (per-image rows included)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fixtures_data import run_ranks

from psc_eval.data.toy import CAR, CHROMA, CLASS_NAMES, COW, SKY
from psc_eval.metrics.base import ScoreContext
from psc_eval.metrics.pollution import PollutionScorer
from psc_eval.metrics.semantic import HIST_BINS, TOY_THRESHOLD, SemanticScorer, hist_bin

HERE = Path(__file__).resolve().parent


def ctx_of(ab: torch.Tensor, ab_true: torch.Tensor, mask: torch.Tensor, ids=None):
    """A ScoreContext of one sample per image: ab (B,2,H,W), true ab (B,2,H,W), mask (B,H,W)."""
    B, _, H, W = ab_true.shape
    z = torch.zeros(B, 3, H, W, dtype=torch.uint8)
    return ScoreContext(ids=ids or [f"im{i}" for i in range(B)], start=0,
                        L=torch.full((B, 1, H, W), 50.0), ab=ab.unsqueeze(1), ab_true=ab_true,
                        rgb_u8=z, true_u8=z, mask=mask)


# ----------------------------------------------------------------------------- pollution


def _line():
    """1 x 4 image, classes [0, 0, 1, 1]; true a = [0, 1, 11, 12]; colorized: a ramp."""
    mask = torch.tensor([[[0, 0, 1, 1]]])
    true = torch.zeros(1, 2, 1, 4)
    true[0, 0, 0] = torch.tensor([0.0, 1.0, 11.0, 12.0])
    ramp = torch.zeros(1, 2, 1, 4)
    ramp[0, 0, 0] = torch.tensor([0.0, 4.0, 8.0, 12.0])
    return mask, true, ramp


def test_pollution_hand_values():
    mask, true, ramp = _line()
    s = PollutionScorer(num_classes=2, class_names=["left", "right"])
    s.update(ctx_of(ramp, true, mask))
    out = s.compute()
    # spread: segments [0,4], [8,12] -> SS 8 + 8 = 16; truth [0,1], [11,12] -> 0.5 + 0.5
    assert out.metrics["pollution_spread"] == 16.0
    # boundary pair (1,2): colorized delta 4 -> 16, truth delta 10 -> 100
    assert out.metrics["pollution_boundary"] == 0.16
    # bleed: (16 / (16 + 16)) / (100 / (1 + 1)) = 0.5 / 50
    assert out.metrics["pollution_bleed"] == pytest.approx(0.01, abs=1e-15)
    pc = out.per_class_metrics
    assert pc["pollution_spread"] == {"left": 16.0, "right": 16.0}
    assert pc["pollution_boundary"] == {"left": 0.16, "right": 0.16}  # both sides count
    assert pc["pollution_bleed"]["left"] == pytest.approx((16 / 16) / (100 / 1), abs=1e-15)


def test_pollution_scaled_and_flat_and_reference_rows():
    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(2, 8, 8, dtype=torch.int64)
    mask[:, :, 4:] = 1
    mask[1, :2] = 255  # ignored pixels take no part
    true = torch.randn(2, 2, 8, 8, generator=g) * 3 + 20 * mask.clamp(max=1).unsqueeze(1)
    true = true.to(torch.float16).float()  # what the runner stores

    def run(ab):
        s = PollutionScorer(num_classes=2)
        s.update(ctx_of(ab, true, mask))
        return s.compute().metrics

    gt = run(true)
    assert (gt["pollution_spread"], gt["pollution_boundary"], gt["pollution_bleed"]) == (1.0, 1.0, 1.0)
    gray = run(torch.zeros_like(true))
    assert gray["pollution_spread"] == 0.0 and gray["pollution_boundary"] == 0.0
    assert math.isnan(gray["pollution_bleed"])  # no chroma change anywhere: undefined
    twice = run(2 * true)  # every deviation and difference doubled: energies x4, ratio 1
    assert twice["pollution_spread"] == pytest.approx(4.0, rel=1e-12)
    assert twice["pollution_boundary"] == pytest.approx(4.0, rel=1e-12)
    assert twice["pollution_bleed"] == pytest.approx(1.0, rel=1e-12)


# ----------------------------------------------------------------------------- semantic


def _toy_scorer():
    s = SemanticScorer(num_classes=len(CLASS_NAMES), class_names=CLASS_NAMES)
    s.law = "toy"
    return s


def test_semantic_toy_law_hand_values():
    """Left half sky coloured as sky, right half cow coloured sky-blue: rate 1/2."""
    H = W = 16
    mask = torch.full((1, H, W), SKY, dtype=torch.int64)
    mask[:, :, 8:] = COW
    ab = torch.zeros(1, 2, H, W)
    ab[0, 0], ab[0, 1] = CHROMA[SKY][0], CHROMA[SKY][2]  # blue everywhere: a blue cow
    s = _toy_scorer()
    s.update(ctx_of(ab, ab.clone(), mask))
    out = s.compute()
    assert out.metrics["semantic_accuracy"] == 0.5 and out.metrics["semantic_segments"] == 2
    pc = out.per_class_metrics["semantic_accuracy"]
    assert pc["sky"] == 1.0 and pc["cow"] == 0.0 and math.isnan(pc["grass"])


def test_semantic_toy_threshold_and_car_wheels():
    ma, sa, mb, _ = CHROMA[SKY]
    edge = math.sqrt(TOY_THRESHOLD) * sa
    H = W = 16
    mask = torch.full((3, H, W), SKY, dtype=torch.int64)
    ab = torch.zeros(3, 2, H, W)
    ab[:, 1] = mb
    ab[0, 0] = ma + edge - 1e-3  # just inside the 99.9% ellipse
    ab[1, 0] = ma + edge + 1e-3  # just outside
    # image 2: a car whose quarter of dark neutral "wheel" pixels does not move the median
    mask[2] = CAR
    ab[2, 0], ab[2, 1] = 55.0, 40.0
    ab[2, :, :4, :] = 0.0
    s = _toy_scorer()
    s.update(ctx_of(ab, ab.clone(), mask))
    pc = s.compute().per_class_metrics["semantic_accuracy"]
    assert pc["sky"] == 0.5 and pc["car"] == 1.0


def test_semantic_histogram_law_hand_values():
    """A prior whose class 0 segments all fell in one bin: that bin is plausible with
    log-probability log((n + 1/K) / (n + 1)), any other is not."""
    K = HIST_BINS ** 2
    counts = torch.zeros(2, K, dtype=torch.float64)
    here = torch.tensor([[10.0, -20.0]])
    b0 = int(hist_bin(here)[0])
    counts[0, b0] = 99
    counts[1, b0] = 99
    s = SemanticScorer(num_classes=2, class_names=["a", "b"])
    s.law = "histogram"
    s.prior = {"counts": counts, "fingerprint": {"name": "hand"}, "fingerprint_key": "hand"}
    mask = torch.zeros(1, 16, 16, dtype=torch.int64)
    mask[:, :, 8:] = 1
    ab = torch.zeros(1, 2, 16, 16)
    ab[0, 0, :, :8], ab[0, 1, :, :8] = 10.0, -20.0  # class a: in the bin
    ab[0, 0, :, 8:], ab[0, 1, :, 8:] = -60.0, 60.0  # class b: elsewhere
    s.update(ctx_of(ab, ab.clone(), mask))
    out = s.compute()
    lp_in, lp_out = math.log((99 + 1 / K) / 100), math.log((1 / K) / 100)
    assert out.metrics["semantic_accuracy"] == 0.5
    assert out.metrics["semantic_loglik"] == pytest.approx((lp_in + lp_out) / 2, rel=1e-12)
    assert out.per_class_metrics["semantic_loglik"]["a"] == pytest.approx(lp_in, rel=1e-12)


def test_semantic_prior_estimate_counts_segments(tmp_path, monkeypatch):
    from psc_eval.data import get_dataset
    from psc_eval.metrics.semantic import estimate_prior

    ds = get_dataset("toy", split="train", size=32, n_images=6)
    prior = estimate_prior(ds)
    n = 0
    for i in range(len(ds)):
        m = ds[i]["mask"]
        n += sum(int((m == c).sum()) >= 4 for c in range(10))  # 1/256 of 32 x 32
    assert float(prior["counts"].sum()) == n


def test_semantic_prior_is_cached_per_dataset_and_estimate_code(tmp_path, monkeypatch):
    """The per-class prior of a dataset with masks is estimated once, read back after, and
    estimated again when the code that estimates it changes."""
    import fixtures_data as fd

    from psc_eval.metrics import semantic

    monkeypatch.setenv("PSC_HOME", str(tmp_path / "home"))
    root = fd.build_voc(tmp_path / "d", hw=(40, 56)).devkit
    calls = []
    real = semantic.estimate_prior
    monkeypatch.setattr(semantic, "estimate_prior",
                        lambda ds, progress=False: calls.append(ds.split) or real(ds))
    semantic._load_prior.cache_clear()
    first = semantic._load_prior("voc", str(root), 32)
    semantic._load_prior.cache_clear()
    again = semantic._load_prior("voc", str(root), 32)
    assert calls == ["train"] and torch.equal(first["counts"], again["counts"])
    assert float(first["counts"].sum()) > 0
    monkeypatch.setattr(semantic, "scorer_code", lambda s: "edited" + "0" * 58)
    semantic._load_prior.cache_clear()
    semantic._load_prior("voc", str(root), 32)
    assert calls == ["train", "train"]
    assert len(list((tmp_path / "home").rglob("chroma_prior/*.pt"))) == 2
    semantic._load_prior.cache_clear()


# ----------------------------------------------------------------------------- gloo


def test_all_scorers_two_process_gloo_equals_one_process(tmp_path):
    args = ["miou", "--colorizer", "runner_standins:NoisyColorizer", "--segmenter",
            "runner_standins:ChromaJudge", "--limit", "5", "--batch-size", "2", "--size", "40",
            "--metrics", "miou,psnr,semantic,pollution,diversity", "--bootstrap", "200",
            "--no-cache", "--quiet"]
    ranks = run_ranks([*args, "--out", str(tmp_path / "two")], tmp_path / "home",
                      pythonpath=HERE)
    assert [rc for rc, _, _ in ranks] == [0, 0], ranks
    env = {**os.environ, "PSC_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    one = subprocess.run([sys.executable, "-m", "psc_eval.cli", *args, "--out",
                          str(tmp_path / "one")], env=env, capture_output=True, check=False,
                         text=True, timeout=180)
    assert one.returncode == 0, one.stderr
    files = sorted((tmp_path / "one").rglob("*.json"))
    assert len(files) == 3
    for f in files:
        a = json.loads(f.read_text())
        b = json.loads((tmp_path / "two" / f.relative_to(tmp_path / "one")).read_text())
        assert b["provenance"]["world_size"] == 2
        for part in ("metrics", "per_class_iou", "per_class_metrics", "histograms",
                     "per_image", "nonfinite"):
            assert a[part] == b[part], (f.name, part)
        assert "miou_ci_low" in a["metrics"] and "diversity_msssim" in a["metrics"]
        assert a["provenance"]["msssim_variant"]["win_size"] == 3
