"""``cao2017``: Unsupervised Diverse Colorization via Generative Adversarial Networks
(Cao, Zhou, Zhang, Yu; ECML-PKDD 2017).

A conditional GAN that follows Cao et al.'s code (ccyyatnet/COLORGAN ``wgan/model_wgan.py``,
``wgan/main_wgan.py``, ``wgan/ops_new.py``, ``wgan/train_lsun_wgan.sh``) by default:

- **generator** (``generator_colorization``): fully convolutional at stride 1, no
  down-sampling; a 100-d uniform z is projected by a linear layer to one image-sized
  channel (batch norm, ReLU) that enters layer 0 only; the gray input (normalised L) is
  concatenated to the input of every layer, the output layer included; 7x7 then 5x5
  convolutions 128-64-64-64-32 (``model.g_widths``, ``model.g_kernels``), each with batch
  norm and ReLU, then a 5x5 convolution to the two chroma channels and tanh;
- **critic** (``discriminator_wgan``): sees the gray image and the chroma concatenated;
  5x5 stride-2 convolutions 64-128-256-512 with LeakyReLU(0.2), batch norm on all but
  the first, then two linear layers (64, then 1) and no sigmoid;
- **initialisation** (``ops_new.py``): convolutions truncated normal, std 0.02, linear
  layers normal, std 0.02, biases 0;
- **objective** (``train.objective = "wgan"``): the WGAN losses of ``model_wgan.py``,
  batch means of the critic's scores::

      L_D = mean D(L, G(L, z)) - mean D(L, ab_real)      L_G = -mean D(L, G(L, z))

  after every D step all of D's parameters (batch-norm scale and offset included, as
  COLORGAN's ``d_vars``) are clipped to [-0.01, 0.01] (``train.clip_value``);
- **schedule** (``K_for_Dtrain = 5``, ``K_for_Gtrain = 1``): five D steps then one G step,
  each on a fresh batch (``train.d_steps``; the core loop's stages,
  ``active_optimizers``: batch ``s`` steps D when ``s mod 6 < 5``, else G);
- **optimiser** (``train.gan_optimizer = "rmsprop"``): RMSProp with TF1's settings,
  decay 0.9, epsilon 1e-10, the mean square starting at 1 (TF1's slot initialiser, so
  the first hundred or so updates are small); D at ``train.lr`` 2e-4, G at
  ``train.g_lr`` 1e-4.

Options: ``train.objective = "wgan-gp"`` is COLORGAN's ``--improved_wgan`` (gradient
penalty ``train.gp_lambda`` = 10 at random interpolates of real and fake, no clipping;
``train_lsun_improved_wgan.sh`` pairs it with ``gan_optimizer = "adam"``, beta1 0.5);
``"gan"`` is the standard non-saturating GAN (``L_D = -log s(d_real) - log(1 -
s(d_fake))``, ``L_G = -log s(d_fake)``, ``s = sigmoid``), with ``d_steps = 0`` (D then G
on every batch, DCGAN's schedule) the objective this module trained before.
``model.noise_kind = "global"`` / ``"spatial"`` with several ``model.noise_layers``
concatenates ``model.noise_dim`` noise channels (a tiled vector per image, or a value per
pixel) to each listed layer: the multi-layer noise the paper's text describes.

The CSV log holds per epoch ``D_total`` (with ``D_real`` / ``D_fake``: the critic's mean
scores for the WGAN objectives, the two BCE terms for ``"gan"``; ``D_gp`` for
``"wgan-gp"``) and ``G_total``, each averaged over the batches its optimiser stepped on.
Validation reports both losses at fixed noise and ``ab_l1``, the mean absolute chroma
error of one sample (Lab units; a monitor only, not trained on).

Sampling: ``colorize(L, n, generator=g)`` draws ``n`` noise sets from ``g`` (on the
CPU, so the same generator gives the same samples on any device) and runs G in eval
mode (batch-norm running statistics).

Differences from COLORGAN that remain (docs/baselines.md):

- colour space: Lab (normalised L in, ab out, ``psc_eval.color``), not YUV: the harness
  takes ab and joins it with the original L;
- batch norm at sampling: running statistics; COLORGAN keeps ``is_training=True`` at
  test time (batch statistics), which would make a sample depend on the other images of
  its batch;
- RMSProp: PyTorch adds epsilon outside the square root (TF1 inside); with 1e-10 the two
  differ only where the mean square is below ~1e-9;
- padding: the stride-2 5x5 convolutions pad 2 on each side; TF's ``SAME`` pads 1 before
  and 2 after (same output size, the grid shifted by one input pixel);
- gradient penalty (option only): one interpolation weight per image and the gradient's
  norm over the whole input (Gulrajani et al.); COLORGAN's ``alpha`` of shape
  (batch, 1) broadcasts along the image width and its norm runs over the height only;
- input size: 128 px in the paper config (the benchmark's size; COLORGAN trains LSUN at
  64), so z is projected to 128 x 128;
- toy config (toy only): the reference's widths divided by 4 (G 32-16-16-16-8, D
  16-32-64-128) at 64 px, trained by the toy protocol's plateau rule on the validation
  ab L1 (the shipped run: 12 epochs, 2256 batches, each cycle five critic batches then
  one generator batch; val ab L1 18.6 Lab units; the checkpoint's run record).

The paper config trains COLORGAN's 100 passes (``REFERENCE_EPOCHS``) at its batch of 64.

Toy config: Polyak averaging at 0.999 (weights and norm statistics), which the reference
does not do; why: docs/baselines.md, "Weight averaging (toy configs, all six)".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

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
NOISE_KINDS = ("projected", "global", "spatial")
OBJECTIVES = ("wgan", "wgan-gp", "gan")
GAN_OPTIMIZERS = ("rmsprop", "adam")
# TF1's RMSPropOptimizer, as main_wgan.py builds it (decay=0.9, its default epsilon)
RMS_DECAY, RMS_EPS = 0.9, 1e-10


@dataclass
class CaoModelConfig:
    input_size: int = 64
    g_widths: tuple[int, ...] = (128, 64, 64, 64, 32)
    g_kernels: tuple[int, ...] = (7, 5, 5, 5, 5, 5)  # one per layer, then the output conv
    noise_kind: str = "projected"  # "projected": z -> linear -> one image-sized channel
    noise_layers: tuple[int, ...] = (0,)  # generator layers that get noise
    noise_dim: int = 100  # z per noised layer ("projected"), else noise channels
    d_widths: tuple[int, ...] = (64, 128, 256, 512)  # stride-2 convolutions of D
    d_kernel: int = 5
    d_hidden: int = 64  # D's linear layer before the score; 0: the score directly
    bn_momentum: float = 0.1  # TF's decay 0.9

    def check(self, where: str) -> None:
        if not self.g_widths:
            raise ConfigError(f"model.g_widths is empty, in {where}, give one width per layer")
        if len(self.g_kernels) != len(self.g_widths) + 1:
            raise ConfigError(f"model.g_kernels has {len(self.g_kernels)} values for "
                              f"{len(self.g_widths)} layers, in {where}, give one per layer "
                              "and one for the output convolution")
        bad = [i for i in self.noise_layers if not 0 <= i < len(self.g_widths)]
        if bad:
            raise ConfigError(f"model.noise_layers {bad} outside 0..{len(self.g_widths) - 1}, "
                              f"in {where}, name generator layers by index")
        if self.noise_kind not in NOISE_KINDS:
            raise ConfigError(f"model.noise_kind={self.noise_kind!r}, in {where}, "
                              f"use one of {', '.join(NOISE_KINDS)}")
        if any(k % 2 != 1 for k in (*self.g_kernels, self.d_kernel)):
            raise ConfigError(f"model.g_kernels / d_kernel hold an even size, in {where}, "
                              "use odd sizes (7, 5, 3)")
        if not self.d_widths:
            raise ConfigError(f"model.d_widths is empty, in {where}, give D's widths")
        if self.input_size < 2 ** len(self.d_widths):
            raise ConfigError(f"input size {self.input_size} < 2**len(d_widths), in {where}, "
                              "pass a larger --size or fewer model.d_widths")


@dataclass
class CaoTrainConfig(TrainConfig):
    """COLORGAN's training (main_wgan.py); ``lr`` is D's rate, ``g_lr`` G's."""

    objective: str = "wgan"
    gan_optimizer: str = "rmsprop"  # replaces train.optimizer for both networks
    lr: float = 2e-4  # d_learning_rate
    g_lr: float = 1e-4  # g_learning_rate
    d_steps: int = 5  # K_for_Dtrain: D steps (fresh batches) per G step; 0: both per batch
    clip_value: float = 0.01  # "wgan": D's parameters clipped to [-c, c] after each D step
    gp_lambda: float = 10.0  # "wgan-gp"

    def check(self, where: str) -> None:
        super().check(where)
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"train.objective={self.objective!r}, in {where}, "
                              f"use one of {', '.join(OBJECTIVES)}")
        if self.gan_optimizer not in GAN_OPTIMIZERS:
            raise ConfigError(f"train.gan_optimizer={self.gan_optimizer!r}, in {where}, "
                              f"use one of {', '.join(GAN_OPTIMIZERS)}")
        if self.d_steps < 0:
            raise ConfigError(f"train.d_steps={self.d_steps} is negative, in {where}, "
                              "use 5 (COLORGAN) or 0 (D and G on every batch)")
        for k in ("g_lr", "clip_value", "gp_lambda"):
            v = getattr(self, k)
            if not (v > 0 and v < float("inf")):
                raise ConfigError(f"train.{k}={v} must be finite and > 0, in {where}, "
                                  "use the reference's value")


def _init_tf(m: nn.Module) -> None:
    """COLORGAN's ops_new.py initialisers: conv truncated normal (2 std), linear normal,
    std 0.02, biases 0."""
    if isinstance(m, nn.Conv2d):
        nn.init.trunc_normal_(m.weight, std=0.02, a=-0.04, b=0.04)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, std=0.02)
        nn.init.zeros_(m.bias)


class Generator(nn.Module):
    """Stride-1 convolutions at full resolution; gray input at every layer, noise at
    ``noise_layers``. ``forward(x_L, noises) -> (B,2,H,W)`` in [-1,1]."""

    def __init__(self, cfg: CaoModelConfig):
        super().__init__()
        self.cfg = cfg
        S, mom = cfg.input_size, cfg.bn_momentum
        per_noise = 1 if cfg.noise_kind == "projected" else cfg.noise_dim
        self.project = nn.ModuleList(
            nn.Linear(cfg.noise_dim, S * S) for _ in cfg.noise_layers
        ) if cfg.noise_kind == "projected" else nn.ModuleList()
        self.project_bn = nn.ModuleList(
            nn.BatchNorm2d(1, momentum=mom) for _ in self.project)
        layers = []
        ch = 0
        for i, (w, k) in enumerate(zip(cfg.g_widths, cfg.g_kernels)):
            cin = ch + 1 + (per_noise if i in cfg.noise_layers else 0)
            layers.append(nn.Sequential(nn.Conv2d(cin, w, k, padding=k // 2),
                                        nn.BatchNorm2d(w, momentum=mom), nn.ReLU()))
            ch = w
        self.layers = nn.ModuleList(layers)
        k = cfg.g_kernels[-1]
        self.out = nn.Conv2d(ch + 1, 2, k, padding=k // 2)
        self.apply(_init_tf)

    def noise_shapes(self, B: int, H: int, W: int) -> list[tuple[int, ...]]:
        c = self.cfg
        per = {"projected": (B, c.noise_dim), "global": (B, c.noise_dim, 1, 1),
               "spatial": (B, c.noise_dim, H, W)}[c.noise_kind]
        return [per for _ in c.noise_layers]

    def noise_map(self, j: int, z: Tensor, B: int, H: int, W: int) -> Tensor:
        """The ``j``-th noised layer's noise channels at (H, W)."""
        if self.cfg.noise_kind != "projected":
            return z.expand(B, -1, H, W)
        h = self.project[j](z).view(B, 1, self.cfg.input_size, self.cfg.input_size)
        return F.relu(self.project_bn[j](h))

    def forward(self, x_L: Tensor, noises: list[Tensor]) -> Tensor:
        B, _, H, W = x_L.shape
        h = None
        j = 0
        for i, layer in enumerate(self.layers):
            parts = [x_L] if h is None else [x_L, h]
            if i in self.cfg.noise_layers:
                parts.append(self.noise_map(j, noises[j], B, H, W))
                j += 1
            h = layer(torch.cat(parts, dim=1))
        return torch.tanh(self.out(torch.cat([x_L, h], dim=1)))


class Discriminator(nn.Module):
    """The critic on concat(L, ab): stride-2 convolutions, then linear layers to one
    score per image (no sigmoid)."""

    def __init__(self, cfg: CaoModelConfig):
        super().__init__()
        layers: list[nn.Module] = []
        cin, k, s = 3, cfg.d_kernel, cfg.input_size
        for i, w in enumerate(cfg.d_widths):
            layers.append(nn.Conv2d(cin, w, k, stride=2, padding=k // 2))
            if i > 0:  # no batch norm on the first layer (COLORGAN, DCGAN)
                layers.append(nn.BatchNorm2d(w, momentum=cfg.bn_momentum))
            layers.append(nn.LeakyReLU(0.2))
            cin, s = w, -(-s // 2)
        self.body = nn.Sequential(*layers)
        flat = cin * s * s
        # COLORGAN: linear to 64 and linear to 1 with nothing between them
        self.head = (nn.Sequential(nn.Linear(flat, cfg.d_hidden), nn.Linear(cfg.d_hidden, 1))
                     if cfg.d_hidden else nn.Linear(flat, 1))
        self.apply(_init_tf)

    def score(self, x: Tensor) -> Tensor:
        """(B,3,H,W) concat(L, ab) -> (B,)."""
        return self.head(self.body(x).flatten(1)).squeeze(1)

    def forward(self, x_L: Tensor, x_ab: Tensor) -> Tensor:
        return self.score(torch.cat([x_L, x_ab], dim=1))


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


def wgan_losses(real_scores: Tensor | None, fake_scores: Tensor, for_d: bool
                ) -> dict[str, Tensor]:
    """model_wgan.py: D ``mean fake - mean real`` (its ``real`` / ``fake`` are the mean
    scores); G ``-mean fake``."""
    if for_d:
        real, fake = real_scores.mean(), fake_scores.mean()
        return {"real": real, "fake": fake, "total": fake - real}
    return {"total": -fake_scores.mean()}


def gradient_penalty(critic, real: Tensor, fake: Tensor, alpha: Tensor) -> Tensor:
    """``mean (|grad critic(x_hat)| - 1)^2`` at ``x_hat = real + alpha (fake - real)``,
    the norm over each image's whole input, ``alpha`` (B,1,1,1)."""
    x_hat = (real + alpha * (fake - real)).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1.0).square().mean()


class CaoNet(nn.Module):
    """G and D in one module; ``forward`` runs one optimiser's step terms (so a DDP
    wrapper sees every call)."""

    def __init__(self, cfg: CaoModelConfig, objective: str = "wgan", gp_lambda: float = 10.0):
        super().__init__()
        self.cfg = cfg
        self.objective = objective
        self.gp_lambda = gp_lambda
        self.G = Generator(cfg)
        self.D = Discriminator(cfg)

    def draw_noise(self, B: int, generator: torch.Generator | None,
                   device: torch.device) -> list[Tensor]:
        S = self.cfg.input_size
        return [common.cpu_noise(s, generator, device, "uniform")
                for s in self.G.noise_shapes(B, S, S)]

    def forward(self, L: Tensor, ab: Tensor, noises: list[Tensor], step: str,
                alpha: Tensor | None = None) -> dict[str, Tensor]:
        x_L = normalize_L(L)
        real = normalize_ab(ab).clamp(-1.0, 1.0)
        losses = gan_losses if self.objective == "gan" else wgan_losses
        if step == "D":
            with torch.no_grad():
                fake = self.G(x_L, noises)
            t = losses(self.D(x_L, real), self.D(x_L, fake), for_d=True)
            if self.objective == "wgan-gp" and alpha is not None:
                gp = gradient_penalty(self.D.score, torch.cat([x_L, real], dim=1),
                                      torch.cat([x_L, fake], dim=1), alpha)
                t = {**t, "gp": gp, "total": t["total"] + self.gp_lambda * gp}
            return t
        fake = self.G(x_L, noises)
        t = losses(None, self.D(x_L, fake), for_d=False)
        # a monitor in Lab units (mean |ab| error of this sample), not a loss term
        ab_l1 = (fake.detach() - real).abs().mean() * 127.5
        return {"total": t["total"], "ab_l1": ab_l1}


def tf_rmsprop(params, lr: float) -> torch.optim.RMSprop:
    """PyTorch's RMSprop set as TF1's RMSPropOptimizer: decay 0.9, epsilon 1e-10, and the
    mean square starting at 1 (TF1's ones initialiser; PyTorch starts at 0, which makes
    the first updates lr * sign(g) * 3.2 instead of about lr * g)."""
    params = list(params)
    opt = torch.optim.RMSprop(params, lr=lr, alpha=RMS_DECAY, eps=RMS_EPS)
    scalar = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
    for p in params:  # filled before the first step, so RMSprop keeps it
        opt.state[p] = {"step": torch.zeros((), dtype=scalar),
                        "square_avg": torch.ones_like(p, memory_format=torch.preserve_format)}
    return opt


class CaoMethod(TrainMethod):
    """Two optimisers, D (index 0) then G (index 1); ``d_steps`` D batches per G batch."""

    model_config = CaoModelConfig
    train_config = CaoTrainConfig
    # plateau rule: the generator's L1 to the true chroma. The critic's and the generator's
    # WGAN losses estimate a distance that need not fall monotonically as G improves.
    plateau_metric = "ab_l1"
    STEPS = ("D", "G")
    # the contract's four steps: D, G, D, G
    smoke: ClassVar[dict[str, Any]] = {"train.d_steps": 1}

    def __init__(self, net: CaoNet, t: CaoTrainConfig):
        self.model = net
        self.t = t

    @classmethod
    def check_config(cls, cfg: Config, where: str) -> None:
        cfg.model.check(where)
        if cfg.train.optimizer != "adam":
            raise ConfigError(f"train.optimizer={cfg.train.optimizer!r} is not read by "
                              f"{NAME}, in {where}, set train.gan_optimizer (rmsprop, adam)")

    @classmethod
    def build(cls, name: str, cfg: Config, train_ds: Any) -> CaoMethod:
        t = cfg.train
        return cls(CaoNet(cfg.model, t.objective, t.gp_lambda), t)

    def configure_optimizers(self, total_steps: int) -> list[Optim]:
        t = self.t
        out = []
        for name, lr in (("D", t.lr), ("G", t.g_lr)):
            params = getattr(self.model, name).parameters()
            opt = (tf_rmsprop(params, lr) if t.gan_optimizer == "rmsprop" else
                   torch.optim.Adam(params, lr=lr, betas=tuple(t.betas), eps=t.adam_eps))
            out.append(Optim(name, opt))
        if t.objective == "wgan":
            out[0].optimizer.register_step_post_hook(self._clip_d)
        return out

    @torch.no_grad()
    def _clip_d(self, optimizer, args, kwargs) -> None:
        """main_wgan.py's clip_d_vars_op, run after every D update."""
        c = self.t.clip_value
        for p in self.model.D.parameters():
            p.clamp_(-c, c)

    def active_optimizers(self, step: int, epoch: int) -> list[int] | None:
        """COLORGAN's loop: ``d_steps`` D updates, then one G update, each on its own
        batch; ``d_steps = 0``: both on every batch."""
        k = self.t.d_steps
        if k == 0:
            return None
        return [0] if step % (k + 1) < k else [1]

    def training_step(self, model, batch, *, opt_index, generator):
        L = batch["L"]
        noises = self.model.draw_noise(L.shape[0], generator, L.device)
        alpha = None
        if opt_index == 0 and self.t.objective == "wgan-gp":
            alpha = torch.rand((L.shape[0], 1, 1, 1), generator=generator).to(L.device)
        return model(L, batch["ab"], noises, self.STEPS[opt_index], alpha)

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
    train_cls = CaoTrainConfig

    def build_net(self, model_cfg: CaoModelConfig) -> CaoNet:
        model_cfg.check("the colorizer's config")
        return CaoNet(model_cfg)

    def sample(self, L: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
        x_L = normalize_L(L).repeat_interleave(n, dim=0)  # sample i of image b at b*n + i
        noises = self.net.draw_noise(x_L.shape[0], generator, self.device)
        return self.net.G(x_L, noises)


METHOD = Method(
    NAME, Cao2017, "diverse: conditional WGAN, noise projected at the first layer "
    "(Cao et al. 2017)",
    trainable=CaoMethod, configs=config_files(__file__, f"{NAME}-"), label="Cao et al. (2017)",
    group="diverse", paper_table4=80.00,
    decoding="one 100-d uniform noise draw per sample, G with batch-norm running "
             "statistics: the reference's sampling (COLORGAN)")
