"""``larsson2016``: Learning Representations for Automatic Colorization (Larsson, Maire,
Shakhnarovich; ECCV 2016).

Network (Sec. 2, Fig. 2; gustavla/autocolorize ``train_vgg16.prototxt``): a VGG-16 trunk
on the gray image (13 3x3 convolutions in five stages 64/128/256/512/512 with max pooling,
then fc6 as a 7x7 convolution and fc7 as a 1x1 convolution, 4096 wide; BatchNorm after
each; dropout 0.5 after fc6 and after fc7, in place as the prototxt's, so fc7 and the
hypercolumn read the dropped activations: ``fc_dropout``), a **hypercolumn** per pixel (the gray value and every layer's activation,
bilinearly sampled at the pixel), one fully connected layer of 1024 (ReLU, dropout 0.5)
and two heads of K = 32 logits: a hue and a chroma histogram. Training samples 128
random pixels per image (the sparse hypercolumn extractor); inference evaluates every
pixel of a grid of stride ``dense_stride`` (the reference's dense mode: 4), upsamples the
hue and chroma histograms bilinearly to full resolution and decodes every pixel
(``res/autocolorize.prototxt.template``: a fixed bilinear deconvolution, kernel 8,
stride 4, of the softmax outputs; ``upsample_histograms``).

Colour space (Sec. 3.3, "hue/chroma"): hue is HSV hue in [0,1), chroma is
``max(RGB) - min(RGB)`` in [0,1]. Targets (``UniformToHistogram`` + sparse histogram
extractor, size 7): each pixel's bins one-hot (``floor(v K)``), averaged over the 7x7
patch around the sampled pixel.

Loss (Sec. 3.3): ``KL(y_C || p_C) + lambda_H * c * KL(y_H || p_H)``, lambda_H = 5, where
c is the ground-truth chroma at the pixel (hue is meaningless for grays), mean over the
sampled pixels. (The reference prototxt also weights the chroma term by a lightness-
dependent factor; the paper does not, nor does this port.)

Inference (``autocolorize/__main__.py``, default ``median-expectation-cf``): chroma = the
median of its histogram (centre of the first bin whose cumulative mass reaches 1/2); hue =
the circular expectation ``arg sum_k p_k exp(2 pi i h_k)``; "chromatic fading": chroma
scaled by ``min(|E exp(2 pi i h)| / hue_fade, 1)`` (the reference's 0.03 per bin, i.e.
0.96 for K = 32; 0 turns it off). The colour is rebuilt as the reference does, around the
gray value g: ``max = g + c/2``, ``min = g - c/2`` at hue h (HSV), clipped to [0,1]; g is
the sRGB value of the neutral with the input's L. Its Lab ab is returned (the harness
joins it with the original L). Deterministic.

Paper-scale settings (``configs/larsson2016-paper.toml``): the VGG-16 widths above, 352
px training crops (the reference's), K = 32, 128 pixels per image, lambda_H = 5, batch 8;
the reference fine-tunes an ImageNet-pretrained VGG-16 with SGD. Deviations: no ImageNet
pretraining (nothing is downloaded: the trunk starts random), Adam instead of SGD, and
the toy config (``larsson2016-toy.toml``) is a narrow VGG-style trunk at 64 px with a
512-wide hypercolumn layer. The histograms are upsampled by interpolation, not caffe's
deconvolution, whose zero padding leaves the border pixels' histograms summing below one.
Training targets are built at the sampled pixels
only, as the sparse histogram extractor does. The paper config makes the solver's 2M
updates on VOC train_aug (``REFERENCE_UPDATES``).

Toy config: Polyak averaging at 0.999 (weights and norm statistics), which the reference
does not do; why: docs/baselines.md, "Weight averaging (toy configs, all six)".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from psc_eval.color import lab_to_rgb, normalize_ab, normalize_L, rgb_to_lab
from psc_eval.methods import Method, config_files
from psc_eval.training import Config, TrainConfig, TrainMethod, make_optimizer

from . import common

NAME = "larsson2016"
# autocolorize train/solver_vgg16.prototxt: max_iter 2,000,000 of batch 8; the paper config
# gives the epochs that make as many updates on VOC train_aug.
REFERENCE_UPDATES = 2_000_000


@dataclass
class LarssonConfig:
    """``[model]`` of a larsson2016 config."""

    input_size: int = 352
    widths: tuple[int, ...] = (64, 128, 256, 512, 512)  # VGG-16 stages
    convs: tuple[int, ...] = (2, 2, 3, 3, 3)  # convolutions per stage
    fc_width: int = 4096  # fc6 / fc7
    fc6_kernel: int = 7
    hidden: int = 1024  # the hypercolumn's fully connected layer
    dropout: float = 0.5  # after the hypercolumn layer (colorize_fc1)
    fc_dropout: float = 0.5  # after fc6 and fc7, in place: fc7 and the hypercolumn read it
    bins: int = 32  # K
    lambda_hue: float = 5.0
    n_pixels: int = 128  # sampled per image in training
    patch: int = 7  # target histogram window
    dense_stride: int = 4
    hue_fade: float = 0.96  # chromatic fading threshold on |E exp(i h)|; 0: off
    # the template prototxt upsamples the grid's histograms to full resolution, then
    # decodes; False: decode on the grid, then upsample ab
    upsample_histograms: bool = True


def _cbr(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2), nn.BatchNorm2d(cout),
                         nn.ReLU(True))


class LarssonNet(nn.Module):
    """VGG-style trunk + hypercolumn head; ``forward(L, grid)`` gives hue and chroma
    logits at (normalised) positions."""

    def __init__(self, c: LarssonConfig):
        super().__init__()
        self.cfg = c
        layers, cin = [], 1
        for w, n in zip(c.widths, c.convs):
            for _ in range(n):
                layers.append(_cbr(cin, w))
                cin = w
        self.convs = nn.ModuleList(layers)
        self.stage_ends = [sum(c.convs[: i + 1]) - 1 for i in range(len(c.convs))]
        self.fc6 = _cbr(cin, c.fc_width, c.fc6_kernel)
        self.fc7 = _cbr(c.fc_width, c.fc_width, 1)
        dim = 1 + sum(w * n for w, n in zip(c.widths, c.convs)) + 2 * c.fc_width
        self.fc1 = nn.Conv2d(dim, c.hidden, 1)  # a fully connected layer on each hypercolumn
        self.drop = nn.Dropout(c.dropout)
        self.drop6, self.drop7 = nn.Dropout(c.fc_dropout), nn.Dropout(c.fc_dropout)
        self.hue = nn.Conv2d(c.hidden, c.bins, 1)
        self.chroma = nn.Conv2d(c.hidden, c.bins, 1)

    def features(self, L: Tensor) -> list[Tensor]:
        x = normalize_L(L)
        feats = [x]
        for i, conv in enumerate(self.convs):
            x = conv(x)
            feats.append(x)
            if i in self.stage_ends:
                x = F.max_pool2d(x, 2)
        # train_vgg16.prototxt's dropout_fc6 / dropout_fc7 are in place (top = bottom), so
        # fc7 and the hypercolumn extractor both read the dropped activations
        x = self.drop6(self.fc6(x))
        feats.append(x)
        feats.append(self.drop7(self.fc7(x)))
        return feats

    def forward(self, L: Tensor, grid: Tensor) -> tuple[Tensor, Tensor]:
        """L (B,1,S,S); grid (B,h,w,2) positions in [-1,1] (x, y; grid_sample's
        align_corners=False convention) -> hue and chroma logits (B,K,h,w)."""
        cols = [F.grid_sample(f, grid.to(f.dtype), mode="bilinear", align_corners=False)
                for f in self.features(L)]
        h = self.drop(F.relu(self.fc1(torch.cat(cols, 1))))
        return self.hue(h), self.chroma(h)


def pixel_grid(S: int, stride: int, B: int, device) -> Tensor:
    """(B,S/stride,S/stride,2) centres of stride x stride cells, normalised to [-1,1]."""
    n = S // stride
    c = ((torch.arange(n, device=device, dtype=torch.float32) + 0.5) * stride) / S * 2 - 1
    y, x = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([x, y], -1)[None].expand(B, n, n, 2)


def rgb_to_hue_chroma(rgb: Tensor) -> tuple[Tensor, Tensor]:
    """(B,3,H,W) sRGB [0,1] -> HSV hue in [0,1) and chroma max - min, each (B,H,W)."""
    r, g, b = rgb.unbind(1)
    mx, mn = rgb.amax(1), rgb.amin(1)
    c = mx - mn
    safe = torch.where(c > 0, c, torch.ones_like(c))
    h = torch.where(mx == r, ((g - b) / safe) % 6.0,
                    torch.where(mx == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0))
    h = torch.where(c > 0, h / 6.0, torch.zeros_like(h))
    return h % 1.0, c


def hue_chroma_to_rgb(h: Tensor, c: Tensor, gray: Tensor) -> Tensor:
    """Hue h in [0,1), chroma c, gray g (B,H,W) -> (B,3,H,W) sRGB with max = g + c/2,
    min = g - c/2 (the reference's V = g + c/2, S = c / V), clipped to [0,1]."""
    v = gray + c / 2.0
    out = []
    for n in (5.0, 3.0, 1.0):  # R, G, B of the HSV -> RGB formula
        k = (n + 6.0 * h) % 6.0
        out.append(v - c * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0))
    return torch.stack(out, 1).clamp(0.0, 1.0)


def histogram_targets(rgb: Tensor, K: int, patch: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per-pixel hue and chroma target histograms (B,K,H,W) (one-hot ``floor(v K)``
    averaged over a patch x patch window) and the chroma (B,H,W)."""
    h, c = rgb_to_hue_chroma(rgb)

    def hist(v: Tensor) -> Tensor:
        idx = (v * K).long().clamp(0, K - 1)
        one = F.one_hot(idx, K).permute(0, 3, 1, 2).float()
        if patch > 1:
            one = F.avg_pool2d(one, patch, stride=1, padding=patch // 2, count_include_pad=False)
        return one

    return hist(h), hist(c), c


def patch_histograms(v: Tensor, iy: Tensor, ix: Tensor, K: int, patch: int) -> Tensor:
    """:func:`histogram_targets`' histogram of ``v`` (B,H,W) in [0,1] at pixels (iy, ix)
    (B,P) only: (B,K,1,P), the one-hot bins averaged over the in-image part of the patch
    (``avg_pool2d(count_include_pad=False)``'s window), without building (B,K,H,W)."""
    B, H, W = v.shape
    bins = (v * K).long().clamp(0, K - 1).flatten(1)  # (B,H*W)
    hist = torch.zeros(B, K, iy.shape[1], device=v.device)
    count = torch.zeros(B, 1, iy.shape[1], device=v.device)
    r = patch // 2
    for dy in range(-r, patch - r):
        for dx in range(-r, patch - r):
            y, x = iy + dy, ix + dx
            ok = ((y >= 0) & (y < H) & (x >= 0) & (x < W)).float()[:, None]  # (B,1,P)
            k = bins.gather(1, (y.clamp(0, H - 1) * W + x.clamp(0, W - 1)))  # (B,P)
            hist.scatter_add_(1, k[:, None], ok)
            count += ok
    return (hist / count)[:, :, None]


def kl_div(target: Tensor, logits: Tensor) -> Tensor:
    """KL(target || softmax(logits)) over dim 1 (0 log 0 = 0)."""
    logp = F.log_softmax(logits.float(), dim=1)
    t = target.float()
    return (t * (torch.log(t.clamp_min(1e-12)) - logp)).sum(1)


def larsson_loss(hue_logits: Tensor, chroma_logits: Tensor, y_h: Tensor, y_c: Tensor,
                 chroma: Tensor, lambda_hue: float) -> dict[str, Tensor]:
    """KL(y_C || p_C) + lambda_H * chroma * KL(y_H || p_H), mean over pixels."""
    kc = kl_div(y_c, chroma_logits)
    kh = chroma * kl_div(y_h, hue_logits)
    return {"total": (kc + lambda_hue * kh).mean(), "kl_chroma": kc.mean().detach(),
            "kl_hue_weighted": kh.mean().detach()}


def decode(hue_logits: Tensor, chroma_logits: Tensor, hue_fade: float) -> tuple[Tensor, Tensor]:
    """Chroma median and hue circular expectation (with chromatic fading) -> (h, c)."""
    return decode_probs(torch.softmax(hue_logits.float(), 1),
                        torch.softmax(chroma_logits.float(), 1), hue_fade)


def decode_probs(ph: Tensor, pc: Tensor, hue_fade: float) -> tuple[Tensor, Tensor]:
    """:func:`decode` of (B,K,h,w) hue and chroma histograms."""
    K = ph.shape[1]
    centres = (torch.arange(K, device=ph.device, dtype=torch.float32) + 0.5) / K
    idx = (pc.cumsum(1) < 0.5).sum(1).clamp(max=K - 1)
    c = (idx.float() + 0.5) / K
    ang = 2 * math.pi * centres.view(1, K, 1, 1)
    re, im = (ph * torch.cos(ang)).sum(1), (ph * torch.sin(ang)).sum(1)
    h = (torch.atan2(im, re) / (2 * math.pi)) % 1.0
    if hue_fade > 0:
        c = c * (torch.sqrt(re**2 + im**2) / hue_fade).clamp(max=1.0)
    return h, c


def neutral_gray(L: Tensor) -> Tensor:
    """(B,1,H,W) L -> (B,H,W) sRGB value of the neutral grey of that lightness."""
    lab = torch.cat([L.float(), torch.zeros_like(L.float()).expand(-1, 2, -1, -1)], 1)
    return lab_to_rgb(lab)[:, 0]


class LarssonMethod(TrainMethod):
    model_config = LarssonConfig
    # plateau rule: the validation total, the KL of the hue and chroma histograms
    plateau_metric = "total"

    def __init__(self, net: LarssonNet, cfg: LarssonConfig, t: TrainConfig):
        self.model, self.cfg, self.t = net, cfg, t

    @classmethod
    def build(cls, name: str, cfg: Config, train_ds: Any) -> LarssonMethod:
        return cls(LarssonNet(cfg.model), cfg.model, cfg.train)

    def configure_optimizers(self, total_steps: int):
        return [make_optimizer(self.model.parameters(), self.t)]

    def training_step(self, model, batch, *, opt_index, generator):
        c = self.cfg
        rgb, L = batch["rgb"].float(), batch["L"]
        B, _, H, W = rgb.shape
        hue, chroma = rgb_to_hue_chroma(rgb)
        # random pixels (the loop's per-step generator), as integer positions
        iy = torch.randint(0, H, (B, c.n_pixels), generator=generator).to(rgb.device)
        ix = torch.randint(0, W, (B, c.n_pixels), generator=generator).to(rgb.device)
        grid = torch.stack([(ix + 0.5) / W * 2 - 1, (iy + 0.5) / H * 2 - 1], -1)[:, None]
        hl, cl = model(L, grid.float())
        # the targets at the sampled pixels only (the sparse histogram extractor's work),
        # equal to histogram_targets' full-resolution maps read there
        y_h = patch_histograms(hue, iy, ix, c.bins, c.patch)
        y_c = patch_histograms(chroma, iy, ix, c.bins, c.patch)
        at_c = chroma.flatten(1).gather(1, iy * W + ix)[:, None]  # (B,1,P)
        return larsson_loss(hl, cl, y_h, y_c, at_c, c.lambda_hue)


class Larsson2016(common.BaselineColorizer):
    """Larsson et al. 2016 as a colorizer (deterministic)."""

    name = NAME
    model_cls = LarssonConfig
    stochastic = False

    def build_net(self, model_cfg: LarssonConfig) -> nn.Module:
        return LarssonNet(model_cfg)

    def sample(self, L: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
        c = self.model_cfg
        S = L.shape[-1]
        hl, cl = self.net(L, pixel_grid(S, c.dense_stride, L.shape[0], L.device))
        ph, pc = torch.softmax(hl.float(), 1), torch.softmax(cl.float(), 1)
        if c.upsample_histograms:  # the template prototxt: decode at full resolution
            ph, pc = (F.interpolate(x, size=(S, S), mode="bilinear", align_corners=False)
                      for x in (ph, pc))
        h, ch = decode_probs(ph, pc, c.hue_fade)
        gray = F.interpolate(neutral_gray(L)[:, None], size=h.shape[-2:], mode="area")[:, 0]
        ab = rgb_to_lab(hue_chroma_to_rgb(h, ch, gray))[:, 1:]
        return normalize_ab(ab)


METHOD = Method(
    NAME, Larsson2016, "hypercolumns, hue/chroma histograms (Larsson et al. 2016)",
    trainable=LarssonMethod, configs=config_files(__file__, f"{NAME}-"),
    label="Larsson et al. (2016)", group="single", paper_table3=(68.8, 24.56),
    paper_table4=86.99,
    decoding="chroma median, hue circular expectation after upsampling the histograms: "
             "the reference's default (autocolorize, median-expectation)")
