"""``zhang2016``: Colorful Image Colorization (Zhang, Isola, Efros; ECCV 2016).

Network (Sec. 2, Fig. 2; richzhang/colorization ``colorizers/eccv16.py``): eight blocks
of 3x3 convolutions with ReLU, a BatchNorm closing blocks 1-7 (conv1: 2 convs, the
second stride 2; conv2: 2, stride 2; conv3: 3, stride 2; conv4: 3; conv5, conv6: 3 with
dilation 2; conv7: 3; conv8: a 4x4 transposed convolution (x2) and 2 convs, then a 1x1
convolution to Q bin logits), so the logits are at 1/4 of the input. Module names follow
the release (``model1`` .. ``model8``, ``model_out``), so the published state dict loads.

Output space (Sec. 2.1): ab quantised on a grid of 10 Lab units; the bins are the grid
cells the sRGB gamut reaches, computed here (:func:`gamut_bins`: every 8-bit-like sRGB
colour of a dense cube, converted with ``psc_eval.color``, rounded to the nearest grid
point). Note: for sRGB D65 the 96-level cube used here gives **Q = 262** cells; the full
8-bit cube (256^3 colours) gives 261: the 96-level cube holds colours between 8-bit
levels that reach one more cell (measured; both far from the paper's 313). The released
``pts_in_hull.npy`` is not reproducible from the gamut alone, so it is not used. The published weights keep their
313-channel output (their ``model_out`` holds the centres, see below).

Loss (Eq. 2-4): multinomial cross-entropy against soft-encoded targets: each ground-truth
ab at the logits' size (the pixel at (4i, 4j), as the train prototxt's ``data_ab_ss``, a
1x1 stride-4 convolution of weight 1; ``model.target = "area"`` takes 4x4 means instead)
is spread over its 5 nearest bins with Gaussian weights (sigma 5), and each pixel is
weighted by class rebalancing
``w = ((1 - lambda) p~ + lambda / Q)^-1``, normalised so ``E_p~[w] = 1``, with
``lambda = 0.5`` and ``p~`` the empirical bin distribution of the TRAINING SET smoothed by
a Gaussian (sigma 5), read at the bin of the pixel's strongest target weight; the
weights of an image whose sampled target has no |a| or |b| above 5 are 0
(``NonGrayMaskLayer``, ``model.nongray_thresh``). The prior (counted on the sampled
targets the loss sees) is computed once before training (one pass over the training split) and saved in the
checkpoint (buffer ``prior``). The loss is the weighted mean over pixels (the paper sums).

Inference (Eq. 5): the annealed mean of the predicted distribution, ``T = 0.38``:
``ab = sum_q c_q softmax(log z / T)_q``, upsampled bilinearly to the input size.

Published weights: ``get_colorizer("zhang2016", weights=PATH)`` / ``--weights PATH``
also accepts the released PyTorch state dict (``colorization_release_v2``, keys
``model1.*`` .. ``model8.*``, ``model_out.weight``, 313 logits), with that release's
inference exactly (``colorizers/util.py``, ``eccv16.py``): L resized to 256x256 (the
release resizes the RGB image with PIL bicubic before taking L; here L itself is resized,
bicubic with antialiasing), normalised ``(L - 50) / 100``, softmax, the 1x1
``model_out`` times 110 (the caffe deploy prototxt's ``Scale 2.606`` on the logits, the
annealed mean's 1 / T, is not in the PyTorch release, so it is not applied here either), ``upsample4`` (bilinear, align_corners False) to 256x256 and a
second bilinear resize to the input size when it differs.

Paper-scale settings (``configs/zhang2016-paper.toml``): 256x256 input (ImageNet crops
are 176 in training; the release evaluates at 256), widths 64/128/256/512/512/512/512/256,
Adam lr 3e-5 with betas (0.9, 0.99) and weight decay 1e-3, batch 40, about 450k
iterations, the rate dropped to 1e-5 at 200k and 3e-6 at 375k updates (the paper's
Sec. 3; ``train.lr_drops``; the repository's ``train/solver.prototxt`` instead steps x0.1
at 225k of 500k). Deviations: no ImageNet data or pretraining (nothing is downloaded:
trained on the dataset given to ``psc-eval train``), the prior comes from that training
set, and the toy config (``zhang2016-toy.toml``) narrows the widths, uses a 64 px input,
Adam at 1e-3 without weight decay and no rate drops (its 750 updates end long before the
first). Against the caffe training layers (``resources/caffe_traininglayers.py``): 5
soft-encoding neighbours (the paper's; the code's NNEncLayer uses 10, ``neighbours``).
The table with the reasons is docs/baselines.md.

Toy config: Polyak averaging at 0.999 (weights and norm statistics), which the reference
does not do; why: docs/baselines.md, "Weight averaging (toy configs, all six)".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from psc_eval.checkpoint import load_checkpoint, load_state_dict_checked
from psc_eval.color import AB_MAX, AB_MIN, normalize_ab, rgb_to_lab
from psc_eval.colorizer import RANDOM_WEIGHTS
from psc_eval.errors import ConfigError, WeightsError
from psc_eval.methods import Method, config_files
from psc_eval.training import Config, TrainConfig, TrainMethod, make_optimizer

from . import common

NAME = "zhang2016"
# The paper's schedule in updates (Sec. 3: ~450k iterations of batch 40); the paper config
# gives the epochs that make as many on VOC train_aug (tests/unit/test_paper_schedules.py).
REFERENCE_UPDATES = 450_000
GRID = 10.0  # Lab units between bin centres (Sec. 2.1)
PUBLISHED_BINS = 313  # output channels of the released network
RELEASE_SIZE = 256  # the release's input resize
L_CENT, L_NORM, AB_NORM = 50.0, 100.0, 110.0  # colorizers/base_color.py
TARGETS = ("point", "area")


@dataclass
class ZhangConfig:
    """``[model]`` of a zhang2016 config."""

    input_size: int = 256
    # output widths of blocks 1..8 (the paper's 64/128/256/512/512/512/512/256)
    widths: tuple[int, ...] = (64, 128, 256, 512, 512, 512, 512, 256)
    sigma: float = 5.0  # soft-encoding Gaussian (Lab units)
    neighbours: int = 5  # soft-encoding nearest bins
    rebalance_lambda: float = 0.5
    prior_sigma: float = 5.0  # smoothing of the empirical prior
    temperature: float = 0.38  # annealed mean
    # the target at the logits' resolution: "point" reads pixel (4i, 4j) as the train
    # prototxt's data_ab_ss (a 1x1 stride-4 convolution of weight 1); "area": 4x4 means
    target: str = "point"
    # NonGrayMaskLayer: an image whose target has no |a| or |b| above this gets weight 0
    # (0: off)
    nongray_thresh: float = 5.0

    def check(self, where: str) -> None:
        if self.target not in TARGETS:
            raise ConfigError(f"model.target={self.target!r}, in {where}, "
                              f"use one of {', '.join(TARGETS)}")


@dataclass
class ZhangTrainConfig(TrainConfig):
    """The paper's rate drops (Sec. 3: 3e-5, then 1e-5 and 3e-6 at about 200k and 375k
    iterations): at update ``lr_drops[i]`` the rate becomes ``lr_drop_values[i]``."""

    lr_drops: tuple[int, ...] = ()
    lr_drop_values: tuple[float, ...] = ()

    def check(self, where: str) -> None:
        super().check(where)
        if len(self.lr_drops) != len(self.lr_drop_values) or list(self.lr_drops) != sorted(
                set(self.lr_drops)):
            raise ConfigError(f"train.lr_drops={list(self.lr_drops)} / lr_drop_values="
                              f"{list(self.lr_drop_values)}, in {where}, give increasing "
                              "updates and one rate for each")


def downsample_target(ab: Tensor, size: tuple[int, int], how: str = "point") -> Tensor:
    """ab (B,2,H,W) -> (B,2,h,w) at the logits' size: the pixel at the top left of each
    block (the prototxt's stride-4 sample) or the block's mean."""
    if how == "area":
        return F.adaptive_avg_pool2d(ab.float(), size)
    f = ab.shape[-2] // size[0], ab.shape[-1] // size[1]
    return ab.float()[..., ::f[0], ::f[1]][..., :size[0], :size[1]]


def nongray_mask(ab_small: Tensor, thresh: float) -> Tensor:
    """(B,) 1 for an image with some |a| or |b| above ``thresh`` (NonGrayMaskLayer)."""
    if thresh <= 0:
        return ab_small.new_ones(ab_small.shape[0])
    return (ab_small.abs() > thresh).flatten(1).any(1).to(ab_small.dtype)


@lru_cache(maxsize=1)
def gamut_bins(n: int = 96) -> Tensor:
    """(Q,2) ab centres of the 10-unit grid cells the sRGB gamut reaches (float32).

    Every colour of an n^3 sRGB cube is converted to Lab and rounded to its grid cell; a
    cell is kept when at least one colour falls in it. n = 96 already finds all cells
    that 256^3 finds (the gamut's ab projection is sampled far below the 10-unit grid)."""
    v = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    r, g, b = torch.meshgrid(v, v, v, indexing="ij")
    ab = rgb_to_lab(torch.stack([r, g, b]).reshape(1, 3, n, n * n))[0, 1:].reshape(2, -1)
    q = torch.round(ab / GRID).long()
    cells = torch.unique(q.T, dim=0)  # sorted by a, then b
    return (cells.to(torch.float32) * GRID).contiguous()


def soft_encode(ab: Tensor, bins: Tensor, k: int = 5, sigma: float = 5.0) -> Tensor:
    """ab (B,2,H,W) Lab -> (B,Q,H,W) target distributions: Gaussian weights (sigma) on the
    k nearest bins, normalised to sum to one (Sec. 2.1, "soft-encoding")."""
    B, _, H, W = ab.shape
    x = ab.permute(0, 2, 3, 1).reshape(-1, 2).float()
    d2 = torch.cdist(x, bins.to(x)).square()  # (N,Q)
    near, idx = d2.topk(k, dim=1, largest=False)
    w = torch.softmax(-near / (2.0 * sigma**2), dim=1)  # normalised Gaussian weights
    z = torch.zeros_like(d2).scatter_(1, idx, w)
    return z.view(B, H, W, -1).permute(0, 3, 1, 2)


def smoothed_prior(counts: Tensor, bins: Tensor, sigma: float = 5.0) -> Tensor:
    """Empirical bin distribution smoothed by a Gaussian over the ab plane (Sec. 2.2)."""
    p = counts.double() / counts.sum().clamp_min(1)
    d2 = torch.cdist(bins.double(), bins.double()).square()
    p = torch.exp(-d2 / (2.0 * sigma**2)) @ p
    return (p / p.sum()).float()


def rebalance_weights(prior: Tensor, lam: float = 0.5) -> Tensor:
    """Eq. 4: w proportional to ((1 - lambda) p~ + lambda / Q)^-1 with E_p~[w] = 1."""
    w = 1.0 / ((1.0 - lam) * prior.double() + lam / prior.numel())
    return (w / (prior.double() * w).sum()).float()


def annealed_mean(logits: Tensor, bins: Tensor, T: float = 0.38) -> Tensor:
    """Eq. 5: (B,Q,H,W) logits -> (B,2,H,W) ab: the mean of softmax(log z / T) = softmax(
    logits / T) (log z = logits - logsumexp, whose shift cancels)."""
    p = torch.softmax(logits.float() / T, dim=1)
    return torch.einsum("bqhw,qc->bchw", p, bins.to(p))


def _block(cin: int, cout: int, n: int, stride_last: int = 1, dilation: int = 1,
           norm: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(n):
        s = stride_last if i == n - 1 else 1
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, stride=s, padding=dilation,
                             dilation=dilation), nn.ReLU(True)]
    return layers + ([nn.BatchNorm2d(cout)] if norm else [])


class ECCVNet(nn.Module):
    """The ECCV16 network (module names as the release's ``ECCVGenerator``). ``forward``
    takes L in [0,100] and returns (B,Q,H/4,W/4) logits; ``model_out`` (no bias) is the
    release's 1x1 projection of the probabilities onto ab / 110, used only by the
    published-weights inference (:meth:`release_ab`); trained here it is unused."""

    def __init__(self, widths: tuple[int, ...] = ZhangConfig.widths, n_bins: int = PUBLISHED_BINS):
        super().__init__()
        w = widths
        self.model1 = nn.Sequential(*_block(1, w[0], 2, stride_last=2))
        self.model2 = nn.Sequential(*_block(w[0], w[1], 2, stride_last=2))
        self.model3 = nn.Sequential(*_block(w[1], w[2], 3, stride_last=2))
        self.model4 = nn.Sequential(*_block(w[2], w[3], 3))
        self.model5 = nn.Sequential(*_block(w[3], w[4], 3, dilation=2))
        self.model6 = nn.Sequential(*_block(w[4], w[5], 3, dilation=2))
        self.model7 = nn.Sequential(*_block(w[5], w[6], 3))
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(w[6], w[7], 4, stride=2, padding=1), nn.ReLU(True),
            *_block(w[7], w[7], 2, norm=False), nn.Conv2d(w[7], n_bins, 1))
        self.model_out = nn.Conv2d(n_bins, 2, 1, bias=False)

    def forward(self, L: Tensor) -> Tensor:
        x = (L - L_CENT) / L_NORM
        for m in (self.model1, self.model2, self.model3, self.model4, self.model5,
                  self.model6, self.model7, self.model8):
            x = m(x)
        return x  # (B,Q,H/4,W/4)

    def release_ab(self, L: Tensor) -> Tensor:
        """The release's inference: L (B,1,H,W) -> ab (B,2,H,W) (module docstring)."""
        H, W = L.shape[-2:]
        x = F.interpolate(L.float(), size=(RELEASE_SIZE, RELEASE_SIZE), mode="bicubic",
                          align_corners=False, antialias=True).clamp(0.0, 100.0)
        ab = self.model_out(torch.softmax(self(x), dim=1)) * AB_NORM
        ab = F.interpolate(ab, scale_factor=4, mode="bilinear", align_corners=False)
        if ab.shape[-2:] != (H, W):
            ab = F.interpolate(ab, size=(H, W), mode="bilinear", align_corners=False)
        return ab


class ZhangModel(nn.Module):
    """What is trained and checkpointed: the network (Q = computed bins) and the smoothed
    training-set prior (buffer ``prior``; uniform until :meth:`set_prior`)."""

    def __init__(self, cfg: ZhangConfig):
        super().__init__()
        self.cfg = cfg
        bins = gamut_bins()
        self.register_buffer("bins", bins.clone(), persistent=False)
        self.register_buffer("prior", torch.full((len(bins),), 1.0 / len(bins)))
        # 1 once the training-set prior is counted (stored, so a resumed run skips the pass)
        self.register_buffer("prior_ready", torch.zeros((), dtype=torch.bool))
        self._weights: Tensor | None = None  # rebalance_weights(prior), cached
        self.net = ECCVNet(tuple(cfg.widths), len(bins))
        self.net.model_out.weight.data.copy_((bins / AB_NORM).T[:, :, None, None])
        self.net.model_out.requires_grad_(False)

    def set_prior(self, counts: Tensor) -> None:
        self.prior.copy_(smoothed_prior(counts.to(self.bins.device), self.bins,
                                        self.cfg.prior_sigma))
        self.prior_ready.fill_(True)
        self._weights = None

    def _load_from_state_dict(self, *args, **kwargs):
        self._weights = None  # a loaded prior invalidates the cached weights
        super()._load_from_state_dict(*args, **kwargs)

    def class_weights(self) -> Tensor:
        """Eq. 4's per-bin weights of the current prior, computed once per prior."""
        if self._weights is None or self._weights.device != self.prior.device:
            self._weights = rebalance_weights(self.prior, self.cfg.rebalance_lambda)
        return self._weights

    def forward(self, L: Tensor, ab: Tensor) -> dict[str, Tensor]:
        """The training loss terms (Eq. 2) of a batch."""
        logits = self.net(L)
        ab_small = downsample_target(ab, logits.shape[-2:], self.cfg.target)
        z = soft_encode(ab_small, self.bins, self.cfg.neighbours, self.cfg.sigma)
        w = self.class_weights()[z.argmax(1)]  # (B,h,w)
        w = w * nongray_mask(ab_small, self.cfg.nongray_thresh)[:, None, None]
        ce = -(z * F.log_softmax(logits.float(), dim=1)).sum(1)  # (B,h,w)
        return {"total": (w * ce).mean(), "ce": ce.mean().detach()}

    def colorize_ab(self, L: Tensor) -> Tensor:
        return annealed_mean(self.net(L), self.bins, self.cfg.temperature)


def bin_counts(ds, bins: Tensor, factor: int = 4, limit: int = 0, how: str = "point"
               ) -> Tensor:
    """Histogram of the training set's ab (downsampled by ``factor`` as the loss sees
    them, ``how``) over the nearest bins; images without colour are skipped."""
    counts = torch.zeros(len(bins), dtype=torch.float64)
    n = len(ds) if not limit else min(limit, len(ds))
    for i in range(n):
        s = ds[i]
        if s.get("skip") or s.get("ab") is None or not s["ab"].numel():
            continue
        H, W = s["ab"].shape[-2:]
        ab = downsample_target(s["ab"][None], (H // factor, W // factor), how)
        d2 = torch.cdist(ab.permute(0, 2, 3, 1).reshape(-1, 2), bins)
        counts += torch.bincount(d2.argmin(1), minlength=len(bins)).double()
    return counts


class ZhangMethod(TrainMethod):
    model_config = ZhangConfig
    train_config = ZhangTrainConfig
    # plateau rule: the validation total, the rebalanced cross-entropy the method minimises
    plateau_metric = "total"

    def __init__(self, model: ZhangModel, t: ZhangTrainConfig, train_ds: Any = None):
        self.model, self.t, self.train_ds = model, t, train_ds

    @classmethod
    def build(cls, name: str, cfg: Config, train_ds: Any) -> ZhangMethod:
        """The prior is counted on the training set at the first step (a resumed run
        reads it from its checkpoint instead of counting it again)."""
        return cls(build_model(cfg.model), cfg.train, train_ds)

    def configure_optimizers(self, total_steps: int):
        params = [p for p in self.model.parameters() if p.requires_grad]
        o = make_optimizer(params, self.t)
        if self.t.lr_drops:
            if o.scheduler is not None:
                raise ConfigError("train.lr_drops and train.lr_decay both set, in the "
                                  f"{NAME} config, use one schedule")
            o.scheduler = torch.optim.lr_scheduler.LambdaLR(o.optimizer, self.lr_factor)
        return [o]

    def lr_factor(self, step: int) -> float:
        """The rate at update ``step`` over the base rate (the paper's drops)."""
        t, lr = self.t, self.t.lr
        for at, value in zip(t.lr_drops, t.lr_drop_values):
            if step >= at:
                lr = value
        return lr / t.lr

    def training_step(self, model, batch, *, opt_index, generator):
        if not bool(self.model.prior_ready):
            self.model.set_prior(bin_counts(self.train_ds, self.model.bins.cpu(),
                                            how=self.model.cfg.target))
        return model(batch["L"], batch["ab"])


def build_model(cfg: ZhangConfig) -> ZhangModel:
    return ZhangModel(cfg)


class Zhang2016(common.BaselineColorizer):
    """Zhang et al. 2016 as a colorizer: a checkpoint trained here (annealed mean), the
    released state dict (``weights=PATH`` of ``colorization_release_v2``, the release's
    inference) or ``weights="random"``."""

    name = NAME
    model_cls = ZhangConfig
    train_cls = ZhangTrainConfig
    stochastic = False

    def __init__(self, dataset: str = "toy", weights: str | Path | None = None,
                 device: str = "cpu", config: str = "toy", seed: int = 0, **kw: Any):
        self.published = False
        if weights not in (None, RANDOM_WEIGHTS):
            path = Path(weights)
            hint = ("pass the released colorization_release_v2 state dict or a checkpoint of "
                    f"{NAME!r} (psc-eval train --colorizer {NAME})")
            ck = load_checkpoint(path, hint=hint)
            if not isinstance(ck, dict):
                raise WeightsError(f"weights file holds a {type(ck).__name__}, not a state "
                                   f"dict, {path}, {hint}")
            if "kind" not in ck:  # the release: a bare state dict
                self._load_published(ck, path, device, hint)
                return
        super().__init__(dataset, weights, device, config, seed, **kw)

    def _load_published(self, sd: dict, path: Path, device: str, hint: str) -> None:
        from psc_eval.io import sha256_file

        net = ECCVNet()
        load_state_dict_checked(net, sd, path, "the released ECCV16 network", hint)
        self.published = True
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.model_cfg = None
        self.config = {"weights": "published colorization_release_v2",
                       "inference": "release: softmax, model_out x 110, upsample4"}
        self.weights_path, self.weights_sha256 = str(path), sha256_file(path)

    def build_net(self, model_cfg: ZhangConfig) -> nn.Module:
        return build_model(model_cfg)

    def sample(self, L: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
        return normalize_ab(self.net.colorize_ab(L))

    @torch.no_grad()
    def colorize(self, L: Tensor, n_samples: int = 1, *,
                 generator: torch.Generator | None = None) -> Tensor:
        if not self.published:
            return super().colorize(L, n_samples, generator=generator)
        from psc_eval.colorizer import check_L, check_n_samples

        check_L(L)
        check_n_samples(self, n_samples)
        ab = self.net.release_ab(L.to(self.device, torch.float32)).clamp(AB_MIN, AB_MAX)
        return ab[:, None].to(L.device)


METHOD = Method(
    NAME, Zhang2016, "ab classification, rebalanced, annealed mean; loads the released "
    "weights (Zhang et al. 2016)", trainable=ZhangMethod,
    configs=config_files(__file__, f"{NAME}-"), label="Zhang et al. (2016)", group="single",
    paper_table3=(68.1, 22.81), paper_table4=88.66,
    decoding="annealed mean, T = 0.38: the reference's (richzhang/colorization)")
