"""``deshpande2017``: Learning Diverse Image Colorization (Deshpande, Lu, Yeh, Chong,
Forsyth; CVPR 2017).

Two stages, read against the reference code (aditya12agd5/divcolor ``vae/arch/
vae_skipconn.py``, ``vae/arch/network.py``, ``mdn/mdn.py``):

1. **VAE over the chroma field.** An encoder maps the ab field (2 x S x S) to a
   Gaussian posterior over a ``latent_dim`` code (4 stride-2 5x5 convolutions, batch
   norm, ReLU, dropout, a linear layer to mean and log-variance). The decoder is
   conditioned on the gray image through skip connections from a *conditional encoder*
   on L (4 stride-2 convolutions; features at S/2, S/4, S/8, S/16): the code, tiled to
   S/16, is multiplied by the S/16 gray features, then each stage convolves, upsamples
   by 2 (bilinear) and concatenates the gray features of that size; a last 5x5
   convolution, batch norm and tanh give ab in [-1, 1].
   Loss (paper Sec. 3.2; units: normalised ab, ``psc_eval.color``), per image and
   averaged over the batch, with e = C - C_hat and D = 2 S^2 chroma values:

   - specificity, Mahalanobis loss on the PCA of the training colour fields
     (top ``pca_components`` eigenvectors v_k with variances s_k^2; the rest of the
     error with the last kept variance s_P^2):
     ``L_mah = [sum_k (e.v_k)^2 / s_k^2 + (|e|^2 - sum_k (e.v_k)^2) / s_P^2] / D``;
   - colourfulness, a histogram-weighted L2: ``L_hist = mean_pixels w(C_i) |e_i|^2``
     with w the inverse (smoothed) frequency of the true colour's bin of
     ``hist_bin`` Lab units in the training set (w = 1 / ((1 - lambda) p + lambda / Q),
     normalised so that E_p[w] = 1; Zhang et al. 2016's rebalancing form);
   - gradient: ``L_grad = mean_pixels sum_ab [(dx C - dx C_hat)^2 + (dy C - dy C_hat)^2]``
     (forward differences);
   - KL of the posterior to N(0, I), summed over the code, divided by D, weighted by
     beta ramped linearly from 0 to ``kl_weight`` over the VAE stage (divcolor ramps
     its KL weight per epoch).
   ``vae_total = w_mah L_mah + w_hist L_hist + w_grad L_grad + beta KL / D``.
   The PCA and the histogram weights are computed from the training set when training
   starts (``stats_images`` images at most) and stored as buffers in the checkpoint.

2. **MDN from gray to the code.** A CNN on L predicts a mixture of ``n_mix`` spherical
   Gaussians with fixed sigma (``mdn_sigma`` = 0.1, divcolor's constant) over the
   code; its target is the VAE encoder's posterior mean of the true chroma. Loss
   ``mdn_loss = "closest"`` (divcolor ``compute_gmm_loss``): the component nearest to
   the target, ``|z - mu_k|^2 / (2 sigma^2) - log pi_k``; ``"nll"``: the exact mixture
   NLL ``-log sum_k pi_k N(z; mu_k, sigma^2 I)``.

The core loop trains both stages as one run with two optimisers (``vae``, ``mdn``):
the first ``vae_epochs`` epochs step only the VAE, the rest only the MDN (each
optimiser's learning rate is 0 outside its stage, through its schedule, so a resumed
run continues in the right stage; the inactive optimiser's step returns a zero loss,
logged as 0). ``log.csv`` has ``train_vae_*`` and ``train_mdn_*`` columns; validation
reports the VAE terms (posterior mean code), the MDN loss and ``mdn_ab_l1``, the mean
absolute chroma error (Lab units) of decoding the most probable component's mean.

Sampling (``colorize(L, n, generator=g)``): for each sample, a component
k ~ Categorical(pi) and z = mu_k + sigma * eps are drawn from ``g`` (on the CPU), and
the decoder turns z and the gray features into ab at S x S, upsampled to L's size.

Deviations: the MDN reads L through its own small CNN trained from scratch (divcolor
feeds it conv7 features of Zhang et al.'s pretrained colorization network, which this
offline benchmark does not ship); divcolor divides the squared distance by sigma, not
2 sigma^2 (a constant rescaling of the distance term against -log pi); samples are
drawn from the mixture (divcolor shows the means of its top components: a
deterministic set, not the stochastic protocol's draws); the released code uses the
weighted L2 and the gradient term but no Mahalanobis term, the paper's Eq. adds it:
both are here, with weights in the config (not stated for the paper's final model:
1 : 1 : 1 here); the 4x4 kernels of divcolor's last encoder / first decoder layers are
5x5 here; Adam (lr 1e-4, eps 1e-6: divcolor's epsilon) for both stages (divcolor
trains the MDN with plain SGD, lr 1e-5, batch 1). Sizes: the paper config has
divcolor's widths (128-256-512-1024 encoder, 64-d code, 8 components) at 64 px, its
resolution; the toy config is 8x narrower.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from psc_eval.color import AB_MIN, normalize_ab, normalize_L
from psc_eval.errors import ConfigError
from psc_eval.methods import Method, config_files
from psc_eval.training import Config, Optim, TrainConfig, TrainMethod

from . import common

NAME = "deshpande2017"
MDN_LOSSES = ("closest", "nll")


@dataclass
class DeshpandeModelConfig:
    input_size: int = 64
    latent_dim: int = 64
    enc_widths: tuple[int, int, int, int] = (16, 32, 64, 128)
    cond_widths: tuple[int, int, int] = (16, 32, 64)  # the 4th is latent_dim
    dec_widths: tuple[int, int, int, int] = (128, 64, 32, 16)
    dropout: float = 0.3  # divcolor keep_prob 0.7 in the encoder
    mdn_widths: tuple[int, int, int] = (16, 32, 64)
    mdn_hidden: int = 256
    mdn_dropout: float = 0.25  # divcolor keep_prob 0.75
    n_mix: int = 8
    mdn_sigma: float = 0.1
    mdn_loss: str = "closest"
    vae_epochs: int = 3
    kl_weight: float = 1e-2
    w_mah: float = 1.0
    w_hist: float = 1.0
    w_grad: float = 1.0
    pca_components: int = 20
    hist_bin: float = 10.0
    hist_lambda: float = 0.5
    stats_images: int = 2000

    def check(self, where: str) -> None:
        if self.input_size % 16:
            raise ConfigError(f"input size {self.input_size} is not a multiple of 16, in {where}, "
                              "pass --size divisible by 16 (four stride-2 stages)")
        if self.mdn_loss not in MDN_LOSSES:
            raise ConfigError(f"model.mdn_loss={self.mdn_loss!r}, in {where}, "
                              "use 'closest' (divcolor) or 'nll'")
        if not self.mdn_sigma > 0 or self.n_mix < 1 or self.latent_dim < 1:
            raise ConfigError(f"model.mdn_sigma, n_mix and latent_dim must be positive, in "
                              f"{where}, fix them")
        if not 0 < self.pca_components < 2 * self.input_size ** 2:
            raise ConfigError(f"model.pca_components={self.pca_components} out of range, in "
                              f"{where}, use e.g. 20")


# ----------------------------------------------------------------------------- losses


def mahalanobis_loss(err: Tensor, components: Tensor, variances: Tensor, resid_var: Tensor
                     ) -> Tensor:
    """Specificity. err (B,D); components (P,D) orthonormal rows; variances (P,);
    resid_var (): the variance given to the error outside the P components.
    Mean over the batch of the per-value Mahalanobis distance (divided by D)."""
    proj = err @ components.t()  # (B,P)
    inside = (proj.square() / variances).sum(1)
    resid = (err.square().sum(1) - proj.square().sum(1)).clamp(min=0.0)
    return ((inside + resid / resid_var) / err.shape[1]).mean()


def hist_bin_index(ab_norm: Tensor, n_bins: int, bin_size: float) -> Tensor:
    """(B,2,H,W) normalised ab -> (B,H,W) flat bin index on the (n_bins, n_bins) grid."""
    from psc_eval.color import denormalize_ab

    idx = ((denormalize_ab(ab_norm) - AB_MIN) / bin_size).floor().long().clamp(0, n_bins - 1)
    return idx[:, 0] * n_bins + idx[:, 1]


def hist_weighted_l2(pred: Tensor, target: Tensor, weights: Tensor, bin_size: float) -> Tensor:
    """Colourfulness: mean over pixels of w(bin of the true colour) * |pred - target|^2."""
    n_bins = weights.shape[0]
    w = weights.flatten()[hist_bin_index(target, n_bins, bin_size)]  # (B,H,W)
    return (w * (pred - target).square().sum(1)).mean()


def gradient_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean over pixels of the squared difference of forward differences (x and y)."""
    dx = (target[..., :, 1:] - target[..., :, :-1]) - (pred[..., :, 1:] - pred[..., :, :-1])
    dy = (target[..., 1:, :] - target[..., :-1, :]) - (pred[..., 1:, :] - pred[..., :-1, :])
    return dx.square().sum(1).mean() + dy.square().sum(1).mean()


def kl_standard_normal(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) summed over the code, mean over the batch."""
    return (0.5 * (mean.square() + logvar.exp() - logvar - 1.0)).sum(1).mean()


def mdn_loss(z: Tensor, mu: Tensor, logits: Tensor, sigma: float, mode: str = "nll") -> Tensor:
    """Mixture of spherical Gaussians N(mu_k, sigma^2 I) with weights softmax(logits).
    z (B,d), mu (B,K,d), logits (B,K). ``nll``: -log sum_k pi_k N(z; mu_k, sigma^2 I);
    ``closest``: |z - mu_k*|^2 / (2 sigma^2) - log pi_k* for the nearest component k*."""
    d = z.shape[-1]
    sq = (z[:, None, :] - mu).square().sum(-1)  # (B,K)
    log_pi = logits.log_softmax(-1)
    if mode == "closest":
        k = sq.argmin(1, keepdim=True)
        return (sq.gather(1, k) / (2 * sigma**2) - log_pi.gather(1, k)).mean()
    log_n = -sq / (2 * sigma**2) - d * math.log(sigma) - 0.5 * d * math.log(2 * math.pi)
    return -(log_pi + log_n).logsumexp(1).mean()


# ---------------------------------------------------------------------------- network


def _conv_bn(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 5, stride=stride, padding=2), nn.ReLU(),
                         nn.BatchNorm2d(cout))


class DeshpandeNet(nn.Module):
    """Encoder, conditional (gray) encoder, decoder, MDN, and the training statistics."""

    def __init__(self, cfg: DeshpandeModelConfig):
        super().__init__()
        self.cfg = cfg
        S, d = cfg.input_size, cfg.latent_dim
        e = cfg.enc_widths
        self.enc = nn.Sequential(_conv_bn(2, e[0], 2), _conv_bn(e[0], e[1], 2),
                                 _conv_bn(e[1], e[2], 2), _conv_bn(e[2], e[3], 2),
                                 nn.Dropout(cfg.dropout), nn.Flatten(),
                                 nn.Linear(e[3] * (S // 16) ** 2, 2 * d))
        c = (*cfg.cond_widths, d)
        self.cond = nn.ModuleList([_conv_bn(1, c[0], 2), _conv_bn(c[0], c[1], 2),
                                   _conv_bn(c[1], c[2], 2), _conv_bn(c[2], c[3], 2)])
        w = cfg.dec_widths
        self.dec = nn.ModuleList([_conv_bn(d, w[0], 1), _conv_bn(w[0] + c[2], w[1], 1),
                                  _conv_bn(w[1] + c[1], w[2], 1), _conv_bn(w[2] + c[0], w[3], 1)])
        self.dec_out = nn.Sequential(nn.Conv2d(w[3], 2, 5, padding=2), nn.BatchNorm2d(2))
        m = cfg.mdn_widths
        self.mdn = nn.Sequential(_conv_bn(1, m[0], 2), _conv_bn(m[0], m[1], 2),
                                 _conv_bn(m[1], m[2], 2), nn.Dropout(cfg.mdn_dropout),
                                 nn.Flatten(), nn.Linear(m[2] * (S // 8) ** 2, cfg.mdn_hidden),
                                 nn.Tanh(), nn.Dropout(cfg.mdn_dropout),
                                 nn.Linear(cfg.mdn_hidden, cfg.n_mix * (d + 1)))
        D, P = 2 * S * S, cfg.pca_components
        n_bins = math.ceil(256 / cfg.hist_bin)
        self.register_buffer("pca_components", torch.zeros(P, D))
        self.register_buffer("pca_var", torch.ones(P))
        self.register_buffer("resid_var", torch.ones(()))
        self.register_buffer("hist_weights", torch.ones(n_bins, n_bins))

    # --- parts
    def encode(self, x_ab: Tensor) -> tuple[Tensor, Tensor]:
        mean, logvar = self.enc(x_ab).chunk(2, dim=1)
        return mean, logvar

    def gray_features(self, x_L: Tensor) -> list[Tensor]:
        feats, h = [], x_L
        for layer in self.cond:
            h = layer(h)
            feats.append(h)
        return feats  # sizes S/2, S/4, S/8, S/16

    def decode(self, z: Tensor, feats: list[Tensor]) -> Tensor:
        g2, g4, g8, g16 = feats
        h = z[:, :, None, None] * g16  # the code tiled to S/16, scaled by the gray features
        h = self.dec[0](h)
        for layer, skip in zip(self.dec[1:], (g8, g4, g2)):
            h = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
            h = layer(torch.cat([h, skip], dim=1))
        h = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
        return torch.tanh(self.dec_out(h))

    def mixture(self, x_L: Tensor) -> tuple[Tensor, Tensor]:
        """-> mu (B,K,d), logits (B,K)."""
        K, d = self.cfg.n_mix, self.cfg.latent_dim
        out = self.mdn(x_L)
        return out[:, : K * d].view(-1, K, d), out[:, K * d:]

    # --- losses
    def vae_terms(self, x_L: Tensor, x_ab: Tensor, beta: float, noise: Tensor | None
                  ) -> dict[str, Tensor]:
        """noise None: decode the posterior mean (validation)."""
        c = self.cfg
        mean, logvar = self.encode(x_ab)
        z = mean if noise is None else mean + noise * (0.5 * logvar).exp()
        pred = self.decode(z, self.gray_features(x_L))
        err = (x_ab - pred).flatten(1)
        terms = {
            "L_mah": mahalanobis_loss(err, self.pca_components, self.pca_var, self.resid_var),
            "L_hist": hist_weighted_l2(pred, x_ab, self.hist_weights, c.hist_bin),
            "L_grad": gradient_loss(pred, x_ab),
            "KL": kl_standard_normal(mean, logvar),
        }
        terms["total"] = (c.w_mah * terms["L_mah"] + c.w_hist * terms["L_hist"]
                          + c.w_grad * terms["L_grad"] + beta * terms["KL"] / err.shape[1])
        return terms

    def mdn_terms(self, x_L: Tensor, x_ab: Tensor) -> dict[str, Tensor]:
        was = self.enc.training
        self.enc.eval()  # the frozen VAE's posterior mean is the target (no BN updates)
        with torch.no_grad():
            target, _ = self.encode(x_ab)
        self.enc.train(was)
        mu, logits = self.mixture(x_L)
        return {"total": mdn_loss(target, mu, logits, self.cfg.mdn_sigma, self.cfg.mdn_loss)}

    def forward(self, L: Tensor, ab: Tensor, stage: str, beta: float = 0.0,
                noise: Tensor | None = None) -> dict[str, Tensor]:
        x_L, x_ab = normalize_L(L), normalize_ab(ab).clamp(-1.0, 1.0)
        if stage == "vae":
            return self.vae_terms(x_L, x_ab, beta, noise)
        if stage == "mdn":
            return self.mdn_terms(x_L, x_ab)
        # an inactive optimiser's step: zero loss on its parameters (no update: lr 0 or
        # zero gradient with zero Adam state)
        params = self.mdn.parameters() if stage == "idle-mdn" else self.enc.parameters()
        return {"total": sum(p.sum() for p in params) * 0.0}

    def sample_codes(self, x_L: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
        """n codes per image from the MDN: (B*n, d), sample i of image b at b*n + i."""
        mu, logits = self.mixture(x_L)
        B, _, d = mu.shape
        pi = logits.softmax(-1).float().cpu()
        k = torch.multinomial(pi, n, replacement=True, generator=generator)  # (B,n)
        eps = torch.randn(B, n, d, generator=generator).to(mu.device)
        idx = k.to(mu.device)[..., None].expand(B, n, d)
        return (mu.gather(1, idx) + self.cfg.mdn_sigma * eps).reshape(B * n, d)


# ------------------------------------------------------------------------ statistics


@torch.no_grad()
def set_statistics(net: DeshpandeNet, dataset: Any) -> dict[str, float]:
    """PCA of the training colour fields and the colour-histogram weights (buffers)."""
    c = net.cfg
    n = min(len(dataset), c.stats_images)
    fields = []
    for i in range(n):
        s = dataset[i]
        if s.get("skip") or s.get("ab") is None or s["ab"].numel() == 0:
            continue
        fields.append(normalize_ab(s["ab"].float()).clamp(-1.0, 1.0))
    X = torch.stack(fields).double()  # (N,2,S,S)
    N = X.shape[0]
    n_bins = net.hist_weights.shape[0]
    counts = torch.bincount(hist_bin_index(X.float(), n_bins, c.hist_bin).flatten(),
                            minlength=n_bins * n_bins).double()
    p = counts / counts.sum()
    Q = int((p > 0).sum())
    w = 1.0 / ((1.0 - c.hist_lambda) * p + c.hist_lambda / Q)
    w = w / (p * w).sum()
    Xf = X.flatten(1)
    Xc = Xf - Xf.mean(0)
    P = min(c.pca_components, N - 1)
    _, S, Vh = torch.linalg.svd(Xc, full_matrices=False)
    var = (S[:P].square() / max(N - 1, 1)).clamp(min=1e-6)
    comps = torch.zeros_like(net.pca_components, dtype=torch.float64)
    comps[:P] = Vh[:P]
    variances = torch.ones(c.pca_components, dtype=torch.float64) * var[-1]
    variances[:P] = var
    net.pca_components.copy_(comps.float())
    net.pca_var.copy_(variances.float())
    net.resid_var.fill_(float(var[-1]))
    net.hist_weights.copy_(w.view(n_bins, n_bins).float())
    return {"images": N, "explained": float(var.sum() / (Xc.square().sum() / max(N - 1, 1)))}


# --------------------------------------------------------------------------- training


class DeshpandeMethod(TrainMethod):
    """Optimiser 0 (``vae``) for the first ``vae_epochs`` epochs, optimiser 1 (``mdn``) after."""

    model_config = DeshpandeModelConfig
    smoke: ClassVar[dict[str, Any]] = {"model.vae_epochs": 1, "model.stats_images": 4}

    def __init__(self, net: DeshpandeNet, t: TrainConfig):
        self.model = net
        self.t = t
        self._scheds: list[Any] = []
        self.vae_steps = 0

    @classmethod
    def check_config(cls, cfg: Config, where: str) -> None:
        cfg.model.check(where)
        if cfg.train.epochs <= cfg.model.vae_epochs:
            raise ConfigError(f"train.epochs={cfg.train.epochs} leaves no MDN epoch after "
                              f"model.vae_epochs={cfg.model.vae_epochs}, in {where}, "
                              "train for more epochs")

    @classmethod
    def build(cls, name: str, cfg: Config, train_ds: Any) -> DeshpandeMethod:
        net = DeshpandeNet(cfg.model)
        set_statistics(net, train_ds)
        return cls(net, cfg.train)

    def configure_optimizers(self, total_steps: int) -> list[Optim]:
        t, c = self.t, self.model.cfg
        self.vae_steps = c.vae_epochs * (total_steps // max(t.epochs, 1))
        vs = self.vae_steps

        def adam(params):
            return torch.optim.Adam(params, lr=t.lr, betas=tuple(t.betas), eps=t.adam_eps)

        m = self.model
        vae = adam([*m.enc.parameters(), *m.cond.parameters(), *m.dec.parameters(),
                    *m.dec_out.parameters()])
        mdn = adam(m.mdn.parameters())
        LambdaLR = torch.optim.lr_scheduler.LambdaLR
        self._scheds = [LambdaLR(vae, lambda s: 1.0 if s < vs else 0.0),
                        LambdaLR(mdn, lambda s: 0.0 if s < vs else 1.0)]
        return [Optim("vae", vae, self._scheds[0]), Optim("mdn", mdn, self._scheds[1])]

    def step_index(self, opt_index: int) -> int:
        """Optimiser steps done before this one: the schedule's own counter (restored on
        resume; each schedule is stepped right after its optimiser, so read its own)."""
        return int(self._scheds[opt_index].last_epoch) if self._scheds else 0

    def training_step(self, model, batch, *, opt_index, generator):
        s = self.step_index(opt_index)
        in_vae = s < self.vae_steps
        L, ab = batch["L"], batch["ab"]
        if opt_index == 0:
            if not in_vae:
                return model(L, ab, "idle-vae")
            beta = self.model.cfg.kl_weight * min(1.0, s / max(self.vae_steps, 1))
            noise = common.cpu_noise((L.shape[0], self.model.cfg.latent_dim), generator,
                                     L.device)
            return model(L, ab, "vae", beta, noise)
        return model(L, ab, "idle-mdn") if in_vae else model(L, ab, "mdn")

    @torch.no_grad()
    def validation_step(self, model, batch):
        L, ab = batch["L"], batch["ab"]
        v = model(L, ab, "vae", self.model.cfg.kl_weight, None)
        out = {f"vae_{k}": x for k, x in v.items()}
        out["mdn_total"] = model(L, ab, "mdn")["total"]
        net = self.model
        x_L, x_ab = normalize_L(L), normalize_ab(ab).clamp(-1.0, 1.0)
        mu, logits = net.mixture(x_L)
        z = mu.gather(1, logits.argmax(1)[:, None, None].expand(-1, 1, mu.shape[2]))[:, 0]
        pred = net.decode(z, net.gray_features(x_L))
        out["mdn_ab_l1"] = (pred - x_ab).abs().mean() * 127.5
        return out


class Deshpande2017(common.BaselineColorizer):
    """Decode codes drawn from the MDN's mixture for the gray image."""

    name = NAME
    model_cls = DeshpandeModelConfig

    def build_net(self, model_cfg: DeshpandeModelConfig) -> DeshpandeNet:
        model_cfg.check("the colorizer's config")
        return DeshpandeNet(model_cfg)

    def sample(self, L: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
        x_L = normalize_L(L)
        z = self.net.sample_codes(x_L, n, generator)  # (B*n, d)
        feats = [f.repeat_interleave(n, dim=0) for f in self.net.gray_features(x_L)]
        return self.net.decode(z, feats)


METHOD = Method(
    NAME, Deshpande2017, "diverse: chroma VAE + MDN on gray features (Deshpande et al. 2017)",
    trainable=DeshpandeMethod, configs=config_files(__file__, f"{NAME}-"),
    label="Deshpande et al. (2017)", group="diverse", paper_table4=75.30)
