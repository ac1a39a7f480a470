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
   Loss: divcolor's code (``vae/arch/vae_skipconn.py`` ``loss``), per image and averaged
   over the batch, ab normalised by ``psc_eval.color`` (divcolor: (v - 128) / 128 of
   OpenCV's 8-bit Lab, the same scale within 0.4%), e = C - C_hat:

   - colourfulness: ``L_hist = sqrt(sum_{pixels, ab} w(C_i) e_i^2)``, w = 1 / p of the true
     colour's bin (the nearest centre of the 10-unit ab grid of Zhang et al.'s bins) on the
     training set (divcolor: ``1 / prior_probs`` of Zhang et al.'s ImageNet prior, not
     normalised, no lambda; ``hist_lambda`` > 0 mixes in the uniform as Zhang's Eq. 4);
   - gradient: ``L_grad = sqrt(sum (dv C - dv C_hat)^2 + (dh C - dh C_hat)^2)`` over the
     (H-1) x (W-1) corner, weight ``w_grad`` = 1e-3;
   - KL of the posterior to N(0, I), summed over the code, weight beta rising per epoch,
     ``kl_weight * epoch / vae_epochs`` (divcolor ``network.py``: 1e-2 x epoch / epochs).
     divcolor sums the KL over its batch of 32 against batch means of the other terms;
     per image that is ``kl_weight`` = 32 x 1e-2 = 0.32 (Adam is invariant to the
     overall scale, so this is divcolor's balance at any batch size);
   - optional (``w_mah`` > 0, default 0): the paper's Mahalanobis term on the PCA of the
     training colour fields (``pca_components``), per value; divcolor's code has none.
   ``vae_total = L_hist + w_grad L_grad + beta KL [+ w_mah L_mah]``.
   The PCA and the histogram weights (their log: 1 / p overflows float16) are computed
   from the training set when training starts (``stats_images`` images at most) and
   stored as buffers in the checkpoint.

2. **MDN from gray to the code.** A CNN on L predicts a mixture of ``n_mix`` spherical
   Gaussians with fixed sigma (``mdn_sigma`` = 0.1, divcolor's constant) over the
   code; its target is a sample of the frozen encoder's posterior, ``mean + eps * sd``
   with a fresh eps per step (divcolor ``zhangfeats_loader.py``; the encoder in eval
   mode, as divcolor stores its test-mode mean and sd). Loss ``mdn_loss = "closest"``
   (divcolor ``compute_gmm_loss``): the component nearest to the target,
   ``|z - mu_k|^2 / (2 sigma) - log pi_k`` (divcolor divides by sigma, not sigma^2);
   ``"nll"``: the exact mixture NLL ``-log sum_k pi_k N(z; mu_k, sigma^2 I)``.

The core loop trains both stages as one run with two optimisers (``vae``, ``mdn``) and
stages (``active_optimizers``): the first ``vae_epochs`` epochs step only the VAE, the
rest only the MDN; the idle optimiser is never stepped, so the MDN's Adam starts fresh.
``log.csv`` has ``train_vae_*`` columns in the VAE epochs and ``train_mdn_*`` after;
validation reports the VAE terms (posterior mean code, full KL weight), the MDN loss
(posterior mean target) and ``mdn_ab_l1``, the mean absolute chroma error (Lab units) of
decoding the most probable component's mean.

Sampling (``colorize(L, n, generator=g)``): for each sample, a component
k ~ Categorical(pi) and z = mu_k + sigma * eps are drawn from ``g`` (on the CPU), and
the decoder turns z and the gray features into ab at S x S, upsampled to L's size.

Remaining deviations (docs/baselines.md has the table): the MDN reads L through its own
small CNN trained from scratch (divcolor feeds it conv7 features of Zhang et al.'s
pretrained network, which this offline benchmark does not ship) and is trained with
Adam at the VAE's settings on batches (divcolor: plain SGD, lr 1e-5, batch 1); samples
are drawn from the mixture (divcolor shows the means of its top components: a
deterministic set, not the stochastic protocol's draws); the weights of the colourfulness
term come from the training set's own histogram (divcolor: Zhang et al.'s ImageNet
prior); a bin the training set never reaches gets the rarest seen bin's weight; the 4x4
kernels of divcolor's last encoder / first decoder layers are 5x5 here; PyTorch's
default initialisation (divcolor: N(0, 1e-3) weights, biases 1e-3) and so the VAE's
learning rate is not divcolor's 1e-6 (paper config 1e-4, toy 1e-3: divcolor's rate is
sized to its tiny initial weights). Sizes: the paper config has divcolor's widths
(128-256-512-1024 encoder, 64-d code, 8 components) at 64 px, its resolution, and its
schedule (``REFERENCE_UPDATES``); the toy config is 8x narrower.

Toy config: Polyak averaging at 0.999 (weights and norm statistics), which the reference
does not do; why: docs/baselines.md, "Weight averaging (toy configs, all six)".
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
# divcolor on LFW: the VAE 10 epochs x 380 updates of batch 32 (vae/train.py), the MDN 5
# passes over the data (mdn.py, batch 1: passes, not updates, carry over to batch 32).
REFERENCE_UPDATES = 3_800  # the VAE stage
REFERENCE_EPOCHS = 5  # the MDN stage
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
    # KL weight per image against the per-image reconstruction terms: divcolor's 1e-2 on
    # the KL summed over its batch of 32 (vae_skipconn.py loss) = 0.32 per image
    kl_weight: float = 0.32
    w_mah: float = 0.0  # the paper's Mahalanobis term; divcolor's code has none
    w_grad: float = 1e-3  # vae_skipconn.py: recon_loss + 1e-3 * grad_loss
    pca_components: int = 20
    hist_bin: float = 10.0  # the 10-unit ab grid of Zhang et al.'s bins (divcolor's weights)
    hist_lambda: float = 0.0  # 0: divcolor's 1 / p; > 0: Zhang et al.'s mixture with uniform
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


def hist_grid(bin_size: float) -> int:
    """Bins per ab axis: centres at the multiples of ``bin_size`` covering [-128, 128]."""
    return 2 * math.ceil(-AB_MIN / bin_size) + 1


def hist_bin_index(ab_norm: Tensor, n_bins: int, bin_size: float) -> Tensor:
    """(B,2,H,W) normalised ab -> (B,H,W) flat index of the nearest grid centre (multiples
    of ``bin_size`` Lab units: divcolor reads its weights at the nearest of Zhang et al.'s
    bin centres, ``lab_imageloader.py`` ``__get_lossweights``)."""
    from psc_eval.color import denormalize_ab

    half = n_bins // 2
    idx = torch.round(denormalize_ab(ab_norm) / bin_size).long().clamp(-half, half) + half
    return idx[:, 0] * n_bins + idx[:, 1]


def hist_weighted_l2(pred: Tensor, target: Tensor, weights: Tensor, bin_size: float) -> Tensor:
    """Colourfulness (divcolor ``vae_skipconn.py`` ``recon_loss``): per image
    ``sqrt(sum_{pixels, ab} w(bin of the true colour) * (pred - target)^2)``, batch mean."""
    n_bins = weights.shape[0]
    w = weights.flatten()[hist_bin_index(target, n_bins, bin_size)]  # (B,H,W)
    return (w[:, None] * (pred - target).square()).flatten(1).sum(1).sqrt().mean()


def gradient_loss(pred: Tensor, target: Tensor) -> Tensor:
    """divcolor's ``grad_loss``: forward differences on the common (H-1) x (W-1) corner,
    per image ``sqrt(sum (dv C - dv C_hat)^2 + (dh C - dh C_hat)^2)``, batch mean."""
    t, p = target, pred
    dv = ((t[..., 1:, :-1] - t[..., :-1, :-1]) - (p[..., 1:, :-1] - p[..., :-1, :-1])).square()
    dh = ((t[..., :-1, 1:] - t[..., :-1, :-1]) - (p[..., :-1, 1:] - p[..., :-1, :-1])).square()
    return (dv + dh).flatten(1).sum(1).sqrt().mean()


def kl_standard_normal(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) summed over the code, mean over the batch."""
    return (0.5 * (mean.square() + logvar.exp() - logvar - 1.0)).sum(1).mean()


def mdn_loss(z: Tensor, mu: Tensor, logits: Tensor, sigma: float, mode: str = "nll") -> Tensor:
    """Mixture of spherical Gaussians N(mu_k, sigma^2 I) with weights softmax(logits).
    z (B,d), mu (B,K,d), logits (B,K). ``nll``: -log sum_k pi_k N(z; mu_k, sigma^2 I);
    ``closest`` (divcolor ``mdn.py`` ``compute_gmm_loss``, its division by sigma, not
    sigma^2, kept): ``|z - mu_k*|^2 / (2 sigma) - log pi_k*`` for the nearest k*."""
    d = z.shape[-1]
    sq = (z[:, None, :] - mu).square().sum(-1)  # (B,K)
    log_pi = logits.log_softmax(-1)
    if mode == "closest":
        k = sq.argmin(1, keepdim=True)
        return (sq.gather(1, k) / (2 * sigma) - log_pi.gather(1, k)).mean()
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
        n_bins = hist_grid(cfg.hist_bin)
        self.register_buffer("pca_components", torch.zeros(P, D))
        self.register_buffer("pca_var", torch.ones(P))
        self.register_buffer("resid_var", torch.ones(()))
        # log of the weights: 1 / p reaches 1e6 for a colour seen once, beyond float16
        self.register_buffer("hist_log_weights", torch.zeros(n_bins, n_bins))

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
        terms = {
            "L_hist": hist_weighted_l2(pred, x_ab, self.hist_log_weights.exp(),
                                       c.hist_bin),
            "L_grad": gradient_loss(pred, x_ab),
            "KL": kl_standard_normal(mean, logvar),
        }
        total = terms["L_hist"] + c.w_grad * terms["L_grad"] + beta * terms["KL"]
        if c.w_mah > 0:
            err = (x_ab - pred).flatten(1)
            terms["L_mah"] = mahalanobis_loss(err, self.pca_components, self.pca_var,
                                              self.resid_var)
            total = total + c.w_mah * terms["L_mah"]
        terms["total"] = total
        return terms

    def mdn_terms(self, x_L: Tensor, x_ab: Tensor, noise: Tensor | None) -> dict[str, Tensor]:
        """The MDN's loss against the frozen encoder's posterior: a sample ``mean + noise *
        sd`` (divcolor ``zhangfeats_loader.py``: a fresh draw per batch); noise None: the
        mean (validation)."""
        was = self.enc.training
        self.enc.eval()  # divcolor stores the test-mode encoder's (mean, sd); no BN updates
        with torch.no_grad():
            mean, logvar = self.encode(x_ab)
        self.enc.train(was)
        target = mean if noise is None else mean + noise * (0.5 * logvar).exp()
        mu, logits = self.mixture(x_L)
        return {"total": mdn_loss(target, mu, logits, self.cfg.mdn_sigma, self.cfg.mdn_loss)}

    def forward(self, L: Tensor, ab: Tensor, stage: str, beta: float = 0.0,
                noise: Tensor | None = None) -> dict[str, Tensor]:
        x_L, x_ab = normalize_L(L), normalize_ab(ab).clamp(-1.0, 1.0)
        if stage == "vae":
            return self.vae_terms(x_L, x_ab, beta, noise)
        return self.mdn_terms(x_L, x_ab, noise)

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
    n_bins = net.hist_log_weights.shape[0]
    counts = torch.bincount(hist_bin_index(X.float(), n_bins, c.hist_bin).flatten(),
                            minlength=n_bins * n_bins).double()
    w = histogram_weights(counts, c.hist_lambda)
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
    net.hist_log_weights.copy_(w.log().view(n_bins, n_bins).float())
    return {"images": N, "explained": float(var.sum() / (Xc.square().sum() / max(N - 1, 1)))}


def histogram_weights(counts: Tensor, lam: float) -> Tensor:
    """divcolor's colourfulness weights (``lab_imageloader.py``: ``1 / prior_probs``, not
    normalised) with ``lam`` = 0; ``lam`` > 0 mixes the prior with the uniform as Zhang et
    al.'s Eq. 4. A bin the training set never reaches (divcolor's ImageNet prior has none)
    gets the weight of the rarest bin seen, so an unseen validation colour stays finite."""
    p = counts.double() / counts.sum()
    seen = p > 0
    Q = int(seen.sum())
    w = torch.zeros_like(p)
    w[seen] = 1.0 / ((1.0 - lam) * p[seen] + lam / Q)
    w[~seen] = w[seen].max()
    return w


# --------------------------------------------------------------------------- training


class DeshpandeMethod(TrainMethod):
    """Optimiser 0 (``vae``) for the first ``vae_epochs`` epochs, optimiser 1 (``mdn``) after."""

    model_config = DeshpandeModelConfig
    smoke: ClassVar[dict[str, Any]] = {"model.vae_epochs": 1, "model.stats_images": 4}
    # plateau rule: the MDN's validation loss over the MDN epochs only (the VAE stage
    # has its fixed length, vae_epochs; the MDN is what samples are drawn from)
    plateau_metric = "mdn_total"

    def plateau_series(self, history):
        vae = self.model.cfg.vae_epochs
        return [float(r["val_mdn_total"]) for r in history
                if int(r.get("epoch", 0)) > vae and "val_mdn_total" in r]

    def __init__(self, net: DeshpandeNet, t: TrainConfig):
        self.model = net
        self.t = t
        self.epoch = 0  # the current epoch, set by the loop through active_optimizers

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
        t, m = self.t, self.model

        def adam(params):
            return torch.optim.Adam(params, lr=t.lr, betas=tuple(t.betas), eps=t.adam_eps)

        vae = adam([*m.enc.parameters(), *m.cond.parameters(), *m.dec.parameters(),
                    *m.dec_out.parameters()])
        return [Optim("vae", vae), Optim("mdn", adam(m.mdn.parameters()))]

    def active_optimizers(self, step: int, epoch: int) -> list[int]:
        """The VAE for the first ``vae_epochs`` epochs, then the MDN alone (divcolor trains
        them as two programs; the idle one is never stepped)."""
        self.epoch = epoch
        return [0] if epoch < self.model.cfg.vae_epochs else [1]

    def beta(self, epoch: int) -> float:
        """divcolor ``network.py``: the KL weight rises per epoch, ``w * epoch / E``."""
        c = self.model.cfg
        return c.kl_weight * min(epoch, c.vae_epochs) / max(c.vae_epochs, 1)

    def training_step(self, model, batch, *, opt_index, generator):
        L, ab = batch["L"], batch["ab"]
        noise = common.cpu_noise((L.shape[0], self.model.cfg.latent_dim), generator, L.device)
        if opt_index == 0:
            return model(L, ab, "vae", self.beta(self.epoch), noise)
        return model(L, ab, "mdn", 0.0, noise)

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
    label="Deshpande et al. (2017)", group="diverse", paper_table4=75.30,
    decoding="a mixture component drawn by its weight, then a code from it, decoded: the "
             "reference's sampling (divcolor)")
