"""mIoU and PSNR against independent references (numpy bincount, torchmetrics, skimage)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio
from torchmetrics.classification import MulticlassJaccardIndex

from psc_eval.metrics import ConfusionMatrix, PsnrMeter, mean_iou, psnr
from psc_eval.metrics.psnr import psnr_ab, psnr_rgb_uint8

C = 6


def _random_labels(seed: int, shape=(3, 17, 23)):
    """Random labels with ignored pixels, class 4 absent from GT, class 5 absent everywhere."""
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, 4, shape, generator=g)
    target[torch.rand(shape, generator=g) < 0.15] = 255
    pred = torch.randint(0, 5, shape, generator=g)  # predicts 4, never 5
    return pred, target


def _numpy_iou(pred: np.ndarray, target: np.ndarray, n: int, ignore: int = 255):
    """Independent reference: per-class intersection and union by direct counting."""
    keep = target != ignore
    p, t = pred[keep], target[keep]
    iou = np.full(n, np.nan)
    for c in range(n):
        inter = np.sum((p == c) & (t == c))
        union = np.sum((p == c) | (t == c))
        if union:
            iou[c] = inter / union
    return iou, np.sum(p == t) / p.size


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_miou_matches_numpy_reference(seed):
    pred, target = _random_labels(seed)
    out = mean_iou(pred, target, C)
    ref_iou, ref_acc = _numpy_iou(pred.numpy(), target.numpy(), C)
    np.testing.assert_allclose(out["iou"], ref_iou, rtol=0, atol=1e-15)
    assert math.isnan(out["iou"][5]) and out["iou"][4] == 0.0  # absent: NaN; predicted-only: 0
    assert out["miou"] == pytest.approx(np.nanmean(ref_iou), abs=1e-15)
    assert out["pixel_accuracy"] == pytest.approx(ref_acc, abs=1e-15)


@pytest.mark.parametrize("seed", [0, 3])
def test_miou_matches_torchmetrics(seed):
    """torchmetrics gives 0 (not NaN) for an empty union with average=None, and its macro
    average drops classes with empty union: the same set ours averages over."""
    pred, target = _random_labels(seed)
    out = mean_iou(pred, target, C)
    per = MulticlassJaccardIndex(C, average=None, ignore_index=255)(pred, target).double()
    ours = torch.tensor(out["iou"], dtype=torch.float64)
    empty = torch.isnan(ours)
    assert empty.tolist() == [False] * 5 + [True]
    assert per[empty].eq(0).all()
    torch.testing.assert_close(ours[~empty], per[~empty], rtol=0, atol=1e-6)
    macro = MulticlassJaccardIndex(C, average="macro", ignore_index=255)(pred, target)
    assert out["miou"] == pytest.approx(float(macro), abs=1e-6)


def test_accumulation_is_dataset_level_not_mean_of_images():
    """Image A all class 0 (perfect); image B class 1 with one pixel called 0.

    Per image: A -> 1.0, B -> (0 + 3/4)/2 = 0.375, mean 0.6875.
    Dataset counts: class 0 IoU 4/5, class 1 IoU 3/4 -> 0.775.
    """
    tA, pA = torch.zeros(1, 1, 4, dtype=torch.long), torch.zeros(1, 1, 4, dtype=torch.long)
    tB = torch.ones(1, 1, 4, dtype=torch.long)
    pB = torch.tensor([[[0, 1, 1, 1]]])
    cm = ConfusionMatrix(2)
    cm.update(pA, tA).update(pB, tB)
    per_image = (mean_iou(pA, tA, 2)["miou"] + mean_iou(pB, tB, 2)["miou"]) / 2
    assert per_image == pytest.approx(0.6875, abs=1e-15)
    assert cm.compute()["miou"] == pytest.approx(0.775, abs=1e-15)
    assert cm.compute()["iou"] == pytest.approx([0.8, 0.75], abs=1e-15)
    assert cm.mat.tolist() == [[4, 0], [1, 3]]


def test_pinned_small_example_with_ignore():
    pred = torch.tensor([[[0, 1], [1, 1]]])
    target = torch.tensor([[[0, 1], [255, 0]]])
    out = mean_iou(pred, target, 3)
    assert out["iou"][:2] == [0.5, 0.5] and math.isnan(out["iou"][2])
    assert out["miou"] == 0.5
    assert out["pixel_accuracy"] == pytest.approx(2 / 3, abs=1e-15)
    assert out["mean_accuracy"] == pytest.approx(0.75, abs=1e-15)
    assert out["num_pixels"] == 3
    assert "nanmean" in out["convention"]


def test_predicted_but_absent_class_counts_zero():
    """mmsegmentation's convention: 0.375. kazuto1011's scores() would give 0.75 here
    (it averages over classes present in the ground truth only)."""
    target = torch.zeros(1, 1, 4, dtype=torch.long)
    pred = torch.tensor([[[0, 0, 0, 1]]])
    out = mean_iou(pred, target, 3)
    assert out["iou"][:2] == [0.75, 0.0]
    assert out["miou"] == 0.375


def test_batches_merge_and_reset_equal_one_pass():
    pred, target = _random_labels(5, (6, 9, 11))
    whole = mean_iou(pred, target, C)
    a, b = ConfusionMatrix(C), ConfusionMatrix(C)
    for i in range(3):
        a.update(pred[i : i + 1], target[i : i + 1])
    b.update(pred[3:], target[3:])
    merged = a.merge(b).compute()
    np.testing.assert_array_equal(np.array(merged["iou"]), np.array(whole["iou"]))
    assert merged["miou"] == whole["miou"]
    assert a.mat.dtype == torch.int64 and int(a.mat.sum()) == int((target != 255).sum())
    a.reset()
    assert int(a.mat.sum()) == 0


def test_bad_labels_raise():
    t = torch.zeros(1, 2, 2, dtype=torch.long)
    with pytest.raises(ValueError, match="predictions outside"):
        mean_iou(torch.full_like(t, 3), t, 3)
    with pytest.raises(ValueError, match="predictions outside"):
        mean_iou(torch.full_like(t, -1), t, 3)
    with pytest.raises(ValueError, match=r"targets \[7\]"):
        mean_iou(t, torch.full_like(t, 7), 3)
    with pytest.raises(ValueError, match="shape"):
        mean_iou(t, t[:, :1], 3)
    # 255 is ignored, so an all-ignore batch is fine and yields no pixels
    assert mean_iou(t, torch.full_like(t, 255), 3)["num_pixels"] == 0


# ---------------------------------------------------------------- PSNR


def test_psnr_uint8_matches_skimage():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (4, 3, 16, 12), generator=g, dtype=torch.uint8)
    y = (x.int() + torch.randint(-20, 21, x.shape, generator=g, dtype=torch.int32)).clamp(0, 255)
    y = y.to(torch.uint8)
    ours = psnr_rgb_uint8(y, x)
    assert ours.shape == (4,) and ours.dtype == torch.float64
    for i in range(4):
        ref = peak_signal_noise_ratio(x[i].numpy(), y[i].numpy())  # uint8 -> data_range 255
        assert float(ours[i]) == pytest.approx(ref, abs=1e-10)


def test_psnr_float_matches_skimage():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 3, 8, 8, generator=g, dtype=torch.float64)
    y = (x + 0.05 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    ours = psnr(y, x, data_range=1.0)
    for i in range(3):
        ref = peak_signal_noise_ratio(x[i].numpy(), y[i].numpy(), data_range=1.0)
        assert float(ours[i]) == pytest.approx(ref, abs=1e-10)


def test_psnr_pinned_values_and_infinity():
    x = torch.zeros(1, 1, 2, 2, dtype=torch.uint8)
    y = x.clone()
    y[0, 0, 0, 0] = 16  # MSE = 256 / 4 = 64
    assert float(psnr_rgb_uint8(y, x)[0]) == pytest.approx(30.0690039, abs=1e-6)
    full = torch.full_like(x, 255)
    assert float(psnr_rgb_uint8(full, x)[0]) == 0.0  # no uint8 wrap-around
    assert math.isinf(float(psnr_rgb_uint8(x, x)[0]))
    with pytest.raises(ValueError, match="uint8"):
        psnr_rgb_uint8(x.float(), x.float())


def test_psnr_ab_uses_range_255():
    ab = torch.zeros(2, 2, 4, 4)
    other = ab + 12.75  # MSE 162.5625 -> 10 log10(255^2 / 12.75^2) = 20 log10(20)
    out = psnr_ab(other, ab)
    assert out.tolist() == pytest.approx([20 * math.log10(20)] * 2, abs=1e-12)


def test_psnr_meter_counts_infinite_apart():
    m = PsnrMeter()
    m.update(torch.tensor([10.0, float("inf")]))
    other = PsnrMeter().update(torch.tensor([20.0, 30.0]))
    out = m.merge(other).compute()
    assert out["psnr_mean"] == pytest.approx(20.0)
    assert (out["n"], out["n_finite"], out["n_infinite"]) == (4, 3, 1)
    empty = PsnrMeter().update(torch.tensor([float("inf")])).compute()
    assert empty["psnr_mean"] == math.inf and empty["n_infinite"] == 1  # all identical: inf
    assert math.isnan(PsnrMeter().compute()["psnr_mean"])  # no image at all: NaN
    with pytest.raises(ValueError):
        PsnrMeter().update(torch.tensor([float("nan")]))
