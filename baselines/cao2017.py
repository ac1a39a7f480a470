"""``cao2017``: Unsupervised Diverse Colorization via Generative Adversarial Networks
(Cao, Zhou, Zhang, Yu; ECML-PKDD 2017).

A conditional GAN. What the paper names as its design, and what this module does:

- **fully convolutional generator with stride 1** ("to keep spatial information"): no
  down-sampling; every layer is a 3x3 convolution at the input resolution
  (``model.g_widths``), batch norm and ReLU, then a 3x3 convolution to the two chroma
  channels and tanh;
- **multi-layer condition concatenation**: the gray input (normalised L) is
  concatenated to the input of every generator layer, the output layer included;
- **multi-layer noise**: a noise input is concatenated to the layers listed in
  ``model.noise_layers`` (all by default), so the generator cannot learn to ignore one
  noise input; diverse samples come from different noise;
- **discriminator**: sees the gray image and the chroma concatenated (a conditional
  D), DCGAN-style 4x4 stride-2 convolutions with batch norm and LeakyReLU(0.2), a last
  3x3 convolution to one logit map averaged over positions (one logit per image).

Losses (the standard GAN objective, non-saturating generator loss; Goodfellow et al.
2014 / DCGAN), with ``s = sigmoid`` and D's logits::

    L_D = BCE(D(L, ab_real), 1) + BCE(D(L, G(L, z)), 0)  = -log s(d_real) - log(1 - s(d_fake))
    L_G = BCE(D(L, G(L, z)), 1)                           = -log s(d_fake)

(batch means; ``gan_losses`` below). Training alternates one D step and one G step per
batch with their own Adam optimisers (``D`` then ``G``, the core loop's several-
optimiser mode), fresh noise for each; the CSV log holds ``D_total`` (with its
``D_real`` / ``D_fake`` parts) and ``G_total`` per epoch, so the stability of training
is visible; a non-finite loss stops with the loop's one-line error and a resumable
checkpoint. Validation reports both losses at fixed noise and ``ab_l1``, the mean
absolute chroma error of one sample (Lab units; a monitor only, not trained on: the
method is unsupervised in the sense of having no regression loss to the true colours).

Sampling: ``colorize(L, n, generator=g)`` draws ``n`` noise sets from ``g`` (on the
CPU, so the same generator gives the same samples on any device) and runs G in eval
mode (batch-norm running statistics).

Deviations and choices (config values where they could matter):

- colour space: Lab ab normalised by ``psc_eval.color`` instead of the paper's YUV
  (UV): the harness takes ab and joins it with the original L;
- noise shape: a ``model.noise_dim`` vector per image and layer, uniform in [-1, 1],
  tiled over the image (``model.noise_kind = "global"``); ``"spatial"`` draws an
  independent value per pixel instead. The text copy we read does not fix the noise's
  spatial shape;
- sizes (widths, depth, D's width) are not stated in the text we read: the paper
  config uses 128-channel layers, 5 noised layers, a 64-channel D, 128 px input (the
  benchmark's size); the toy config 32 channels and 64 px;
- optimiser: Adam lr 2e-4, betas (0.5, 0.999), DCGAN's settings (not stated);
- no pretraining, no label smoothing, no gradient penalty.

Against Cao et al.'s code (ccyyatnet/COLORGAN ``wgan/model_wgan.py``, ``main_wgan.py``,
``train_lsun_wgan.sh``), not yet followed (docs/baselines.md): COLORGAN trains a WGAN
(no sigmoid, D weights clipped to 0.01, or a gradient penalty of 10 with Adam; five D
steps per G step; RMSProp, D 2e-4, G 1e-4); its G projects a 100-d uniform z to one
image-sized channel at layer 0 only (the paper's text describes noise at several layers,
as here), with 7x7 then 5x5 convolutions 128-64-64-64-32; its D is four 5x5 stride-2
convolutions 64-128-256-512 and two linear layers; YUV, not Lab. The paper config trains
COLORGAN's 100 passes (``REFERENCE_EPOCHS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from psc_eval.color import normalize_ab, normalize_L
from psc_eval.errors import ConfigError
from psc_eval.methods import Method, config_files
from psc_eval.training import Config, Optim, TrainConfig, TrainMethod

from . import common

NAME = "cao2017"
# COLORGAN main_wgan.py: 100 passes over LSUN bedroom (3M images); in updates that would be
# ~28k passes over VOC, so the paper config keeps the passes (dataset-size scaling stated).
REFERENCE_EPOCHS = 100
NOISE_KINDS = ("global", "spatial")


@dataclass
class CaoModelConfig:
    input_size: int = 64
    g_widths: tuple[int, ...] = (32, 32, 32, 32)
    kernel: int = 3
    noise_layers: tuple[int, ...] = (0, 1, 2, 3)  # generator layers that get noise
    noise_dim: int = 8  # noise channels per noised layer
    noise_kind: str = "global"  # "global": a tiled vector per image; "spatial": per pixel
    d_width: int = 32
    d_layers: int = 3  # stride-2 convolutions of D
    bn_momentum: float = 0.1

    def check(self, where: str) -> None:
        if not self.g_widths:
            raise ConfigError(f"model.g_widths is empty, in {where}, give one width per layer")
        bad = [i for i in self.noise_layers if not 0 <= i < len(self.g_widths)]
        if bad:
            raise ConfigError(f"model.noise_layers {bad} outside 0..{len(self.g_widths) - 1}, "
                              f"in {where}, name generator layers by index")
        if self.noise_kind not in NOISE_KINDS:
            raise ConfigError(f"model.noise_kind={self.noise_kind!r}, in {where}, "
                              "use 'global' or 'spatial'")
        if self.kernel % 2 != 1:
            raise ConfigError(f"model.kernel={self.kernel} is even, in {where}, use 3 or 5")
        if self.input_size < 2 ** self.d_layers:
            raise ConfigError(f"input size {self.input_size} < 2**d_layers, in {where}, "
                              "pass a larger --size or fewer model.d_layers")


class Generator(nn.Module):
    """Stride-1 convolutions at full resolution; gray input at every layer, noise at
    ``noise_layers``. ``forward(x_L, noises) -> (B,2,H,W)`` in [-1,1]."""

    def __init__(self, cfg: CaoModelConfig):
        super().__init__()
        self.cfg = cfg
        k, p = cfg.kernel, cfg.kernel // 2
        layers = []
        ch = 0
        for i, w in enumerate(cfg.g_widths):
            cin = ch + 1 + (cfg.noise_dim if i in cfg.noise_layers else 0)
            layers.append(nn.Sequential(nn.Conv2d(cin, w, k, padding=p),
                                        nn.BatchNorm2d(w, momentum=cfg.bn_momentum), nn.ReLU()))
            ch = w
        self.layers = nn.ModuleList(layers)
        self.out = nn.Conv2d(ch + 1, 2, k, padding=p)

    def noise_shapes(self, B: int, H: int, W: int) -> list[tuple[int, ...]]:
        c = self.cfg
        per = (B, c.noise_dim, 1, 1) if c.noise_kind == "global" else (B, c.noise_dim, H, W)
        return [per for _ in c.noise_layers]

    def forward(self, x_L: Tensor, noises: list[Tensor]) -> Tensor:
        B, _, H, W = x_L.shape
        h = None
        it = iter(noises)
        for i, layer in enumerate(self.layers):
            parts = [x_L] if h is None else [h, x_L]
            if i in self.cfg.noise_layers:
                parts.append(next(it).expand(B, -1, H, W))
            h = layer(torch.cat(parts, dim=1))
        return torch.tanh(self.out(torch.cat([h, x_L], dim=1)))


class Discriminator(nn.Module):
    """Conditional D on concat(L, ab): 4x4 stride-2 convs, one logit per image."""

    def __init__(self, cfg: CaoModelConfig):
        super().__init__()
        layers: list[nn.Module] = []
        cin, w = 3, cfg.d_width
        for i in range(cfg.d_layers):
            layers.append(nn.Conv2d(cin, w, 4, stride=2, padding=1))
            if i > 0:  # DCGAN: no batch norm on D's first layer
                layers.append(nn.BatchNorm2d(w, momentum=cfg.bn_momentum))
            layers.append(nn.LeakyReLU(0.2))
            cin, w = w, w * 2
        layers.append(nn.Conv2d(cin, 1, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x_L: Tensor, x_ab: Tensor) -> Tensor:
        return self.body(torch.cat([x_L, x_ab], dim=1)).mean(dim=(1, 2, 3))  # (B,)


def gan_losses(real_logits: Tensor | None, fake_logits: Tensor, for_d: bool
               ) -> dict[str, Tensor]:
    """D: ``-log s(real) - log(1 - s(fake))`` (batch means, two terms); G (non-saturating):
    ``-log s(fake)``. Logits 0 give 2 ln 2 and ln 2."""
    if for_d:
        real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
        fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        return {"real": real, "fake": fake, "total": real + fake}
    g = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    return {"total": g}


class CaoNet(nn.Module):
    """G and D in one module; ``forward`` runs one optimiser's step terms (so a DDP
    wrapper sees every call)."""

    def __init__(self, cfg: CaoModelConfig):
        super().__init__()
        self.cfg = cfg
        self.G = Generator(cfg)
        self.D = Discriminator(cfg)

    def draw_noise(self, B: int, generator: torch.Generator | None,
                   device: torch.device) -> list[Tensor]:
        S = self.cfg.input_size
        return [common.cpu_noise(s, generator, device, "uniform")
                for s in self.G.noise_shapes(B, S, S)]

    def forward(self, L: Tensor, ab: Tensor, noises: list[Tensor], step: str) -> dict[str, Tensor]:
        x_L = normalize_L(L)
        real = normalize_ab(ab).clamp(-1.0, 1.0)
        if step == "D":
            with torch.no_grad():
                fake = self.G(x_L, noises)
            t = gan_losses(self.D(x_L, real), self.D(x_L, fake), for_d=True)
            return {"real": t["real"], "fake": t["fake"], "total": t["total"]}
        fake = self.G(x_L, noises)
        t = gan_losses(None, self.D(x_L, fake), for_d=False)
        # a monitor in Lab units (mean |ab| error of this sample), not a loss term
        ab_l1 = (fake.detach() - real).abs().mean() * 127.5
        return {"total": t["total"], "ab_l1": ab_l1}


class CaoMethod(TrainMethod):
    """Two optimisers, D (index 0) then G (index 1), each Adam with the config's settings."""

    model_config = CaoModelConfig
    STEPS = ("D", "G")

    def __init__(self, net: CaoNet, t: TrainConfig):
        self.model = net
        self.t = t

    @classmethod
    def build(cls, name: str, cfg: Config, train_ds: Any) -> CaoMethod:
        return cls(CaoNet(cfg.model), cfg.train)

    def configure_optimizers(self, total_steps: int) -> list[Optim]:
        t = self.t
        return [Optim(name, torch.optim.Adam(getattr(self.model, name).parameters(), lr=t.lr,
                                             betas=tuple(t.betas), eps=t.adam_eps))
                for name in self.STEPS]

    def training_step(self, model, batch, *, opt_index, generator):
        L = batch["L"]
        noises = self.model.draw_noise(L.shape[0], generator, L.device)
        return model(L, batch["ab"], noises, self.STEPS[opt_index])

    def validation_step(self, model, batch):
        L = batch["L"]
        g = torch.Generator().manual_seed(0)
        noises = self.model.draw_noise(L.shape[0], g, L.device)
        d = model(L, batch["ab"], noises, "D")
        gt = model(L, batch["ab"], noises, "G")
        return {"D_total": d["total"], "D_real": d["real"], "D_fake": d["fake"],
                "G_total": gt["total"], "ab_l1": gt["ab_l1"]}


class Cao2017(common.BaselineColorizer):
    """The generator of a trained cao2017 run; samples differ by their noise."""

    name = NAME
    model_cls = CaoModelConfig

    def build_net(self, model_cfg: CaoModelConfig) -> CaoNet:
        model_cfg.check("the colorizer's config")
        return CaoNet(model_cfg)

    def sample(self, L: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
        x_L = normalize_L(L).repeat_interleave(n, dim=0)  # sample i of image b at b*n + i
        noises = self.net.draw_noise(x_L.shape[0], generator, self.device)
        return self.net.G(x_L, noises)


METHOD = Method(
    NAME, Cao2017, "diverse: conditional GAN with multi-layer noise (Cao et al. 2017)",
    trainable=CaoMethod, configs=config_files(__file__, f"{NAME}-"), label="Cao et al. (2017)",
    group="diverse", paper_table4=80.00)
