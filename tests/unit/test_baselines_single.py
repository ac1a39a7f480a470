"""The single-output baselines (zhang2016, iizuka2016, larsson2016): losses on cases
checkable by hand, Zhang's published-layout weights against an independent functional
re-implementation of the released network, one-line errors for bad published files, and
one tiny epoch of each through ``psc-eval train`` plus its resume. One thread."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from PIL import Image

from psc_eval.color import rgb_to_lab
from psc_eval.colorizer import build_colorizer, get_colorizer
from psc_eval.errors import WeightsError

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- zhang2016


def test_bins_are_the_grid_cells_the_srgb_gamut_reaches():
    from psc_eval.baselines.zhang2016 import gamut_bins

    bins = gamut_bins()
    assert bins.shape == (262, 2)  # what sRGB D65 reaches; the paper's 313 is not (docstring)
    assert torch.equal(bins, torch.round(bins / 10) * 10)
    assert len(torch.unique(bins, dim=0)) == len(bins)
    # independent check on random colours: every colour's cell is a bin, every bin has a colour
    g = torch.Generator().manual_seed(0)
    rgb = torch.rand(1, 3, 1, 200_000, generator=g, dtype=torch.float64)
    corners = torch.tensor([[float(i), float(j), float(k)] for i in (0, 1) for j in (0, 1)
                            for k in (0, 1)], dtype=torch.float64).T[None, :, None]
    ab = rgb_to_lab(torch.cat([rgb, corners], -1))[0, 1:].reshape(2, -1).T.float()
    cells = torch.unique(torch.round(ab / 10) * 10, dim=0)
    assert set(map(tuple, cells.tolist())) <= set(map(tuple, bins.tolist()))
    d = torch.cdist(bins.double(), ab.double(), p=float("inf")).amin(1)
    assert float(d.max()) <= 5.0 + 1.0  # each bin's cell (half-width 5) is reached, +sampling


def test_soft_encoding_sums_to_one_and_peaks_at_the_nearest_bin():
    from psc_eval.baselines.zhang2016 import gamut_bins, soft_encode

    bins = gamut_bins()
    ab = torch.tensor([[0.0, 0.0], [23.0, -41.0], [-3.0, 7.0]]).T.reshape(1, 2, 1, 3)
    z = soft_encode(ab, bins, k=5, sigma=5.0)  # (1,Q,1,3)
    assert torch.allclose(z.sum(1), torch.ones(1, 1, 3))
    assert ((z > 0).sum(1) == 5).all()
    nearest = torch.cdist(ab[0, :, 0].T, bins).argmin(1)
    assert torch.equal(z[0, :, 0].argmax(0), nearest)
    # at a bin centre: itself (distance 0) and its 4 grid neighbours (distance 10)
    w0 = 1.0 / (1.0 + 4.0 * math.exp(-100.0 / 50.0))
    assert float(z[0, :, 0, 0].max()) == pytest.approx(w0, rel=1e-5)


def test_rebalancing_weights_by_hand_and_expectation_one():
    from psc_eval.baselines.zhang2016 import rebalance_weights

    w = rebalance_weights(torch.tensor([0.5, 0.25, 0.25]), 0.5)
    a, b = 1 / (0.25 + 1 / 6), 1 / (0.125 + 1 / 6)
    e = 0.5 * a + 0.5 * b
    assert torch.allclose(w, torch.tensor([a / e, b / e, b / e]), atol=1e-6)
    p = torch.softmax(torch.randn(262, generator=torch.Generator().manual_seed(1)), 0)
    assert float((p * rebalance_weights(p, 0.5)).sum()) == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(rebalance_weights(torch.full((10,), 0.1), 0.5), torch.ones(10))


def test_prior_and_annealed_mean():
    from psc_eval.baselines.zhang2016 import annealed_mean, smoothed_prior

    bins = torch.tensor([[0.0, 0.0], [10.0, 0.0], [100.0, 100.0]])
    p = smoothed_prior(torch.tensor([3.0, 1.0, 0.0]), bins, sigma=5.0)
    assert float(p.sum()) == pytest.approx(1.0) and p[0] > p[1] > p[2] >= 0
    logits = torch.tensor([2.0, 1.0, -50.0]).view(1, 3, 1, 1)
    ab1 = annealed_mean(logits, bins, T=1.0)  # plain mean
    q = torch.softmax(torch.tensor([2.0, 1.0, -50.0]), 0)
    assert float(ab1[0, 0]) == pytest.approx(10.0 * float(q[1]), rel=1e-5)
    assert float(annealed_mean(logits, bins, T=0.01)[0, 0]) == pytest.approx(0.0, abs=1e-6)
    # T = 0.38: exp(log z / T) renormalised
    zt = q ** (1 / 0.38) / (q ** (1 / 0.38)).sum()
    assert float(annealed_mean(logits, bins, T=0.38)[0, 0]) == pytest.approx(10 * float(zt[1]),
                                                                           rel=1e-4)


def _published_state_dict(seed: int = 0) -> dict:
    """The released ECCV16 key layout with seeded random weights (He-scaled so the 24
    layers keep their activations' scale and the softmax is far from uniform)."""
    from psc_eval.baselines.zhang2016 import ECCVNet

    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, v in ECCVNet().state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue  # as in the release file
        if k.endswith("running_var") or (k.endswith("weight") and v.dim() == 1):
            sd[k] = 0.5 + torch.rand(v.shape, generator=g)
        elif v.dim() == 4:
            fan_in = v.shape[1] * v.shape[2] * v.shape[3] if "model8.0" not in k else \
                v.shape[0] * 4
            sd[k] = torch.randn(v.shape, generator=g) * math.sqrt(2.0 / fan_in)
        else:
            sd[k] = 0.05 * torch.randn(v.shape, generator=g)
    sd["model8.6.weight"] *= 30.0  # peaked distributions over the 313 bins
    sd["model_out.weight"] = torch.randn(2, 313, 1, 1, generator=g) * 0.5
    return sd


def _release_forward(sd: dict, L: torch.Tensor) -> torch.Tensor:
    """colorization_release_v2's inference, written from the release's layer list
    (eccv16.py) with functional ops, and its resize done by PIL as util.py does."""
    H, W = L.shape[-2:]
    # util.resize_img: PIL bicubic (resample=3) to 256x256 (of the image; here of L)
    small = Image.fromarray(L[0, 0].numpy().astype(np.float32), mode="F").resize(
        (256, 256), resample=Image.BICUBIC)
    x = (torch.from_numpy(np.array(small, dtype=np.float32)).clamp(0, 100)[None, None] - 50) / 100

    def conv(x, p, stride=1, dil=1):
        return F.relu(F.conv2d(x, sd[f"{p}.weight"], sd[f"{p}.bias"], stride, dil, dil))

    def bn(x, p):
        return F.batch_norm(x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"],
                            sd[f"{p}.weight"], sd[f"{p}.bias"], False, 0.0, 1e-5)

    # (block, conv indices, stride of the last conv, dilation, index of the BatchNorm)
    for blk, idx, s, d, b in ((1, (0, 2), 2, 1, 4), (2, (0, 2), 2, 1, 4), (3, (0, 2, 4), 2, 1, 6),
                              (4, (0, 2, 4), 1, 1, 6), (5, (0, 2, 4), 1, 2, 6),
                              (6, (0, 2, 4), 1, 2, 6), (7, (0, 2, 4), 1, 1, 6)):
        for i in idx:
            x = conv(x, f"model{blk}.{i}", s if i == idx[-1] else 1, d)
        x = bn(x, f"model{blk}.{b}")
    x = F.relu(F.conv_transpose2d(x, sd["model8.0.weight"], sd["model8.0.bias"], 2, 1))
    x = conv(conv(x, "model8.2"), "model8.4")
    x = F.conv2d(x, sd["model8.6.weight"], sd["model8.6.bias"])
    ab = F.conv2d(torch.softmax(x, 1), sd["model_out.weight"]) * 110.0
    ab = F.interpolate(ab, scale_factor=4, mode="bilinear", align_corners=False)
    return F.interpolate(ab, size=(H, W), mode="bilinear", align_corners=False)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    sd = _published_state_dict()
    path = tmp_path_factory.mktemp("release") / "colorization_release_v2.pth"
    torch.save(sd, path)
    return sd, path


def test_published_layout_loads_and_matches_the_release_forward(published):
    sd, path = published
    c = get_colorizer("zhang2016", weights=str(path))
    assert c.published and c.weights_sha256 and not c.stochastic
    g = torch.Generator().manual_seed(3)
    for H, W in ((120, 200), (96, 96)):  # non-square; square but not 256
        L = F.avg_pool2d(torch.rand(1, 1, H, W, generator=g) * 100, 5, 1, 2)  # smooth-ish
        ab = c.colorize(L)
        assert ab.shape == (1, 1, 2, H, W)
        ref = _release_forward(sd, L)
        # the only difference: torch's antialiased bicubic vs PIL's on the 256 resize
        assert float(ref.std()) > 5.0  # the comparison is not between two constants
        assert torch.allclose(ab[:, 0], ref, atol=0.01), float((ab[:, 0] - ref).abs().max())


@pytest.mark.parametrize("damage", ["missing", "shape", "list", "not-torch"])
def test_a_bad_published_file_is_one_line_naming_it(published, tmp_path, damage):
    sd, _ = published
    path = tmp_path / f"{damage}.pth"
    if damage == "missing":
        torch.save({k: v for k, v in sd.items() if k != "model3.2.weight"}, path)
    elif damage == "shape":
        torch.save({**sd, "model_out.weight": torch.zeros(2, 300, 1, 1)}, path)
    elif damage == "list":
        torch.save([1, 2, 3], path)
    else:
        path.write_bytes(b"not a torch file")
    with pytest.raises(WeightsError) as e:
        get_colorizer("zhang2016", weights=str(path))
    msg = str(e.value)
    assert str(path) in msg and "\n" not in msg
    if damage == "missing":
        assert "model3.2.weight" in msg
    if damage == "shape":
        assert "model_out.weight" in msg


def test_zhang_loss_is_the_weighted_cross_entropy():
    from psc_eval.baselines.zhang2016 import ZhangConfig, ZhangModel, rebalance_weights, soft_encode

    torch.manual_seed(0)
    m = ZhangModel(ZhangConfig(input_size=16, widths=(4,) * 8))
    counts = torch.arange(len(m.bins), dtype=torch.float64)
    m.set_prior(counts)
    L, ab = torch.rand(2, 1, 16, 16) * 100, (torch.rand(2, 2, 16, 16) - 0.5) * 100
    terms = m(L, ab)
    logits = m.net(L)
    z = soft_encode(ab[..., ::4, ::4], m.bins)  # the prototxt's stride-4 point sample
    w = rebalance_weights(m.prior)[z.argmax(1)]
    want = (w * -(z * F.log_softmax(logits, 1)).sum(1)).mean()
    assert float(terms["total"].detach()) == pytest.approx(float(want.detach()), rel=1e-5)
    # NonGrayMaskLayer: an image whose sampled target has no |a| or |b| above 5 weighs 0
    # (the pixels between the samples do not count: they are not read)
    ab[1] = 4.0
    ab[1, :, 1::4, 1::4] = 60.0
    w[1] = 0.0
    z = soft_encode(ab[..., ::4, ::4], m.bins)
    want = (w * -(z * F.log_softmax(logits, 1)).sum(1)).mean()
    assert float(m(L, ab)["total"].detach()) == pytest.approx(float(want.detach()), rel=1e-5)


def test_zhang_learning_rate_drops_as_the_paper():
    from psc_eval.baselines.zhang2016 import METHOD, ZhangMethod

    from psc_eval.training import load_config

    cfg = load_config("paper", METHOD.configs, ZhangMethod.model_config,
                      ZhangMethod.train_config)
    m = ZhangMethod.__new__(ZhangMethod)
    m.t = cfg.train
    got = [m.lr_factor(s) * cfg.train.lr for s in (0, 199_999, 200_000, 374_999, 375_000)]
    assert got == pytest.approx([3e-5, 3e-5, 1e-5, 1e-5, 3e-6])


# ---------------------------------------------------------------------------- iizuka2016


def test_iizuka_labels_and_loss_by_hand():
    from psc_eval.baselines.iizuka2016 import iizuka_loss, present_classes

    mask = torch.tensor([[[0, 3], [255, 3]], [[1, 1], [1, 1]]])
    assert present_classes(mask, 5).tolist() == [[1, 0, 0, 1, 0], [0, 1, 0, 0, 0]]
    ab = torch.zeros(2, 2, 2, 2)
    pred = torch.full((2, 2, 1, 1), 0.5)  # (0 + 128) / 256: exact chroma
    t = iizuka_loss(pred, torch.zeros(2, 5), ab, mask, alpha=1 / 300)
    assert float(t["mse"]) == 0.0
    assert float(t["cls"]) == pytest.approx(5 * math.log(2), rel=1e-6)  # per image, summed
    assert float(t["total"]) == pytest.approx(5 * math.log(2) / 300, rel=1e-6)
    t = iizuka_loss(torch.full((2, 2, 1, 1), 0.75), torch.zeros(2, 5), ab, mask, 0.0)
    assert float(t["mse"]) == pytest.approx(0.0625)


# --------------------------------------------------------------------------- larsson2016


def test_hue_chroma_targets_and_roundtrip():
    from psc_eval.baselines.larsson2016 import (
        histogram_targets,
        hue_chroma_to_rgb,
        rgb_to_hue_chroma,
    )

    rgb = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0.5], [1, 1, 0.5]],
                       dtype=torch.float32).T.reshape(1, 3, 1, 5)
    h, c = rgb_to_hue_chroma(rgb)
    assert torch.allclose(h[0, 0], torch.tensor([0, 1 / 3, 2 / 3, 0, 1 / 6]), atol=1e-6)
    assert torch.allclose(c[0, 0], torch.tensor([1, 1, 1, 0, 0.5]))
    yh, yc, _ = histogram_targets(rgb, 32, patch=1)
    assert yh[0, :, 0].argmax(0).tolist() == [0, 10, 21, 0, 5]  # floor(h * 32)
    assert yc[0, :, 0].argmax(0).tolist() == [31, 31, 31, 0, 16]
    assert torch.equal(yh.sum(1), torch.ones(1, 1, 5))
    # a uniform patch keeps the one-hot histogram
    flat = torch.tensor([0.2, 0.6, 0.4]).view(1, 3, 1, 1).expand(1, 3, 9, 9)
    yh7, _, _ = histogram_targets(flat, 32, patch=7)
    assert torch.allclose(yh7, histogram_targets(flat, 32, patch=1)[0])
    x = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    h, c = rgb_to_hue_chroma(x)
    gray = (x.amax(1) + x.amin(1)) / 2
    assert torch.allclose(hue_chroma_to_rgb(h, c, gray), x, atol=1e-5)


def test_larsson_dropout_after_fc6_and_fc7_reaches_the_hypercolumn():
    """train_vgg16.prototxt's dropout_fc6 / dropout_fc7 are in place: fc7 and the
    hypercolumn read the dropped activations; evaluation is unaffected."""
    from psc_eval.baselines.larsson2016 import LarssonConfig, LarssonNet

    torch.manual_seed(0)
    cfg = LarssonConfig(input_size=32, widths=(4,) * 5, convs=(1,) * 5, fc_width=8,
                        fc6_kernel=1, hidden=8, fc_dropout=1.0)
    net = LarssonNet(cfg)
    L = torch.rand(2, 1, 32, 32) * 100
    fc6, fc7 = net.train().features(L)[-2:]
    assert not fc6.any() and not fc7.any()
    fc6, fc7 = net.eval().features(L)[-2:]
    assert fc6.any() and fc7.any()


def test_larsson_decodes_after_upsampling_the_histograms():
    """The template prototxt decodes full-resolution histograms: a hue histogram that
    turns from red to blue between two grid cells gives, between them, the hue of the
    blended histogram, not a blend of the two decoded hues."""
    from psc_eval.baselines.larsson2016 import decode_probs

    K = 4
    ph = torch.zeros(1, K, 1, 2)
    ph[0, 0, 0, 0] = ph[0, 2, 0, 1] = 1.0  # hue 0.125 and 0.625
    pc = torch.zeros(1, K, 1, 2)
    pc[0, 3] = 1.0
    up = F.interpolate(ph, size=(1, 8), mode="bilinear", align_corners=False)
    _, c = decode_probs(up, F.interpolate(pc, size=(1, 8), mode="bilinear",
                                          align_corners=False), hue_fade=0.96)
    # the middle pixels hold an even mix of opposite hues: no dominant hue, so chromatic
    # fading greys them, where decoding first would have given a saturated colour
    assert float(c[0, 0, 3]) < 0.3 and float(c[0, 0, 0]) == pytest.approx(0.875)


def test_larsson_loss_and_decoding_by_hand():
    from psc_eval.baselines.larsson2016 import decode, kl_div, larsson_loss

    K = 32
    y = F.one_hot(torch.tensor([[[3]]]), K).permute(0, 3, 1, 2).float()  # (1,K,1,1)
    uniform = torch.zeros(1, K, 1, 1)
    assert float(kl_div(y, uniform)) == pytest.approx(math.log(K), rel=1e-6)
    soft = torch.softmax(torch.randn(1, K, 1, 1), 1)
    assert float(kl_div(soft, soft.log() + 7.0)) == pytest.approx(0.0, abs=1e-5)
    t = larsson_loss(uniform, uniform, y, y, torch.tensor([[[0.4]]]), 5.0)
    assert float(t["total"]) == pytest.approx(math.log(K) * (1 + 5 * 0.4), rel=1e-6)
    peaked = y * 60.0  # all mass on bin 3
    h, c = decode(peaked, peaked, hue_fade=0.96)
    assert float(h) == pytest.approx(3.5 / K, abs=1e-5)
    assert float(c) == pytest.approx(3.5 / K, abs=1e-5)  # median, no fading when peaked
    # median: mass 0.4 on bin 2 and 0.6 on bin 9 -> bin 9; uniform hue -> faded to 0
    pc = torch.full((1, K, 1, 1), 1e-9)
    pc[0, 2], pc[0, 9] = 0.4, 0.6
    h, c = decode(uniform, pc.log(), hue_fade=0.96)
    assert float(c) == pytest.approx(0.0, abs=1e-4)
    _, c = decode(uniform, pc.log(), hue_fade=0.0)
    assert float(c) == pytest.approx(9.5 / K, abs=1e-6)


# ------------------------------------------------------------------------------ training

TINY = {
    "zhang2016": "[model]\ninput_size = 16\nwidths = [4, 4, 4, 4, 4, 4, 4, 4]\n",
    "iizuka2016": ("[model]\ninput_size = 32\nlow = [4, 4, 4, 4, 4, 4]\nmid = [4, 4]\n"
                   "glob_conv = [4, 4, 4, 4]\nglob_fc = [8, 8, 4]\nclass_hidden = 4\n"
                   "fusion = 4\ncolor = [4, 4, 4, 4]\n"),
    "larsson2016": ("[model]\ninput_size = 32\nwidths = [4, 4, 4, 4, 4]\nconvs = [1, 1, 1, 1, 1]"
                    "\nfc_width = 4\nfc6_kernel = 1\nhidden = 8\nn_pixels = 8\n"
                    "dense_stride = 2\n"),
}
TRAIN = "[train]\nepochs = 1\nbatch_size = 4\nn_train = 8\nn_val = 4\nlr = 1e-3\n"


@pytest.mark.parametrize("name", sorted(TINY))
def test_trains_one_tiny_epoch_through_the_cli_and_resumes(tmp_path, name):
    from psc_eval.checkpoint import load_checkpoint
    from psc_eval.cli import cli

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY[name] + TRAIN)
    out = tmp_path / "run"
    args = ["train", "--colorizer", name, "--dataset", "toy", "--config", str(cfg),
            "--out", str(out), "--device", "cpu"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, args + ["--epochs", "2", "--resume"])
    assert r.exit_code == 0, r.output
    with open(out / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert all(math.isfinite(float(row["val_total"])) for row in rows)
    ck = load_checkpoint(out / "last.pt")
    assert ck["variant"] == name and ck["step"] == 4
    c = build_colorizer(name, "toy", weights=str(out / "last.pt"), device="cpu")
    ab = c.colorize(torch.full((1, 1, 24, 40), 50.0))
    assert ab.shape == (1, 1, 2, 24, 40) and torch.isfinite(ab).all()
    if name == "zhang2016":  # the training-set prior is in the checkpoint
        prior = ck["model"]["prior"]
        assert float(prior.sum()) == pytest.approx(1.0, abs=1e-5)
        assert float(prior.max() / prior.min()) > 2.0


def test_larsson_targets_at_sampled_pixels_equal_the_full_resolution_maps():
    """Training builds the 7 x 7 patch histograms at the 128 sampled pixels only; they equal
    the full-resolution maps of histogram_targets read at those pixels (image edges
    included, where the window is cut)."""
    from psc_eval.baselines.larsson2016 import (
        histogram_targets,
        patch_histograms,
        rgb_to_hue_chroma,
    )

    g = torch.Generator().manual_seed(0)
    rgb = torch.rand(3, 3, 20, 17, generator=g)
    rgb[:, :, 5:9] = rgb[:, :, 5:6]  # flat rows: many equal bins
    y_h, y_c, _ = histogram_targets(rgb, 32, 7)
    hue, chroma = rgb_to_hue_chroma(rgb)
    iy = torch.randint(0, 20, (3, 50), generator=g)
    ix = torch.randint(0, 17, (3, 50), generator=g)
    iy[:, :4], ix[:, :4] = torch.tensor([0, 19, 0, 19]), torch.tensor([0, 16, 16, 0])
    flat = iy * 17 + ix

    def at(t):
        return t.flatten(2).gather(2, flat[:, None].expand(-1, t.shape[1], -1))[:, :, None]

    assert torch.allclose(patch_histograms(hue, iy, ix, 32, 7), at(y_h), atol=1e-6)
    assert torch.allclose(patch_histograms(chroma, iy, ix, 32, 7), at(y_c), atol=1e-6)


def test_zhang_prior_is_counted_once_and_weights_cached():
    """The prior is counted at the first step and stored (a resumed run reads it); the
    rebalancing weights are computed once per prior, equal to Eq. 4's."""
    from psc_eval.baselines.zhang2016 import (
        ZhangConfig,
        ZhangMethod,
        ZhangTrainConfig,
        rebalance_weights,
    )

    from psc_eval.training import Config

    cfg = Config(ZhangConfig(input_size=16, widths=(4,) * 8), ZhangTrainConfig())
    calls = []

    class DS(list):
        def __getitem__(self, i):
            calls.append(i)
            return super().__getitem__(i)

    g = torch.Generator().manual_seed(0)
    ds = DS([{"ab": torch.randn(2, 16, 16, generator=g) * 30} for _ in range(3)])
    m = ZhangMethod.build("zhang2016", cfg, ds)
    assert not calls  # nothing counted at build (a resume would load the prior)
    batch = {"L": torch.full((2, 1, 16, 16), 50.0), "ab": torch.stack([ds[0]["ab"]] * 2)}
    calls.clear()
    m.training_step(m.model, batch, opt_index=0, generator=g)
    assert calls == [0, 1, 2] and bool(m.model.prior_ready)
    m.training_step(m.model, batch, opt_index=0, generator=g)
    assert calls == [0, 1, 2]  # not counted again
    w = m.model.class_weights()
    assert w is m.model.class_weights()
    assert torch.equal(w, rebalance_weights(m.model.prior, 0.5))
    fresh = ZhangMethod.build("zhang2016", cfg, ds).model
    fresh.load_state_dict(m.model.state_dict())
    assert bool(fresh.prior_ready) and torch.equal(fresh.class_weights(), w)
