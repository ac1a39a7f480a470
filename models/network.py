"""The paper's network: colour embedding f (Table 1), segmentation branch h (Table 2),
generator g (conditional PixelCNN++, ``pixelcnn.py``) and the variants' wiring.

Variants (Fig. 2, Sec. 3.1-3.2.2), selected by ``ModelConfig.fusion`` and ``with_seg``:

=================  =====  ==========================================================
variant            h      generator conditioning
=================  =====  ==========================================================
psc-purple         no     f(L)                                          (Sec. 3.1)
psc-purple-blue    yes    f(L); f shares its bottom rows with h        (Sec. 3.2.1)
ours               yes    concat(f(L), softmax(h(L)))                  (Sec. 3.2.2)
psc-film           yes    f(L) * (1 + gamma) + beta, (gamma, beta) = convs(softmax(h))
=================  =====  ==========================================================

In ``ours`` the probabilities are not detached: L_gen's gradient reaches h (the three
losses are trained jointly, Eq. 5). The embedding's first 6K channels double as f's own
mixture of logistics per chroma pixel, without autoregression, as in PIC (Royer et al.
2017): that is L_emb, and ``embedding_mode`` decodes it (the psc-embedding colorizer).

Choices the paper leaves open, and what the code does (each a config value where it
can matter; the resolved config is saved in every checkpoint and result):

- Shared rows of Tables 1-2 (gray in the paper, lost in text): ``model.shared_rows``
  = 6 (the three stages up to 256 channels at 32x32); 8 is the other reading.
- What g sees of h: softmax probabilities, not detached (``ours``); FiLM variant.
- Optimiser: Adam, lr 1e-3, betas (0.95, 0.9995) (Sec. 4.1); epsilon ``train.adam_eps``
  = 1e-8 (not stated); learning-rate schedule ``train.lr_decay`` = 1.0 (constant: the
  paper states only the initial rate; PIC decays by 0.99999 per step).
- Polyak averaging ``train.polyak`` = 0.9995 (PIC's value), with TensorFlow's
  warm-up; evaluation and the colorizers use the averaged weights.
- Loss units and weights: L_emb and L_gen in bits per chroma value, L_seg in nats per
  pixel, weighted 1 : 100 : 1 (Eq. 6), each logged separately.
- Augmentation: none (the paper names none); the data order is seeded per epoch.
- Initialisation and weight normalisation: PyTorch's default initialisation, no weight
  normalisation and no data-dependent init (PixelCNN++ uses both); the gated blocks'
  output convolution of g is scaled by ``model.generator.out_init_scale`` = 0.1, the
  scale PixelCNN++ gives that layer.
- Dropout: ``model.dropout`` (f, h) and ``model.generator.dropout`` (g), 0 by default
  (PixelCNN++ uses 0.5 on CIFAR-10; the paper states none).
- Mixture layout: 6K channels per pixel for two chroma channels, ``[logits, mu_a, mu_b,
  log_s_a, log_s_b, coeff]`` with one coefficient (b depends linearly on a), K = 10
  (``model.n_mix``). PIC's code keeps an 8K layout with extra, unused coefficient
  channels; the distribution it can express is the same.
- Resolution: 128 px input, f, h and g at 32x32; the target ab is area-downsampled and
  the sampled ab bilinearly upsampled and joined with the original L.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from psc_eval.color import normalize_L

from .config import ModelConfig, generator_config
from .dmol import mixture_nll_bits_per_dim
from .losses import chroma_target, mask_target, seg_loss, weighted_total
from .pixelcnn import ConditionalPixelCNNpp


def concat_elu(x: Tensor) -> Tensor:
    """PixelCNN++ nn.py concat_elu: elu of [x, -x] along channels (doubles channels)."""
    return F.elu(torch.cat([x, -x], dim=1))


class GatedResBlock(nn.Module):
    """Non-causal gated_resnet of PixelCNN++ (nn.py): two 3x3 convs, a gate, a skip.

    ``x + a * sigmoid(b)`` with ``[a, b] = conv2(concat_elu(conv1(concat_elu(x))))``.
    """

    def __init__(self, ch: int, dilation: int = 1, dropout: float = 0.0):
        super().__init__()
        d = dilation
        self.conv1 = nn.Conv2d(2 * ch, ch, 3, padding=d, dilation=d)
        self.conv2 = nn.Conv2d(2 * ch, 2 * ch, 3, padding=d, dilation=d)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        c = concat_elu(self.conv1(concat_elu(x)))
        a, b = self.conv2(self.dropout(c)).chunk(2, dim=1)
        return x + a * torch.sigmoid(b)


def build_rows(cfg: ModelConfig, dilations: tuple[int, ...], first: int, in_ch: int) -> list:
    """Rows ``first+1 ..`` of Table 1/2 (1-based): conv rows and residual-block rows."""
    rows: list[nn.Module] = []
    ch = in_ch
    for i, (w, n, s, d) in enumerate(zip(cfg.widths, cfg.blocks, cfg.strides, dilations)):
        conv_row, block_row = 2 * i, 2 * i + 1  # 0-based
        if conv_row >= first:
            # A stride-2 3x3 conv with padding 1 halves an even size exactly (128 -> 64).
            rows.append(nn.Conv2d(ch, w, 3, stride=s, padding=1))
        if block_row >= first:
            rows.append(nn.Sequential(*[GatedResBlock(w, d, cfg.dropout) for _ in range(n)]))
        ch = w
    return rows


def row_channels(cfg: ModelConfig, n_rows: int) -> int:
    """Channels after the first ``n_rows`` rows (1 = the L input for 0 rows)."""
    return 1 if n_rows == 0 else cfg.widths[(n_rows - 1) // 2]


class ASPP(nn.Module):
    """Parallel 3x3 heads with dilations 6/12/18, summed (Table 2; Chen et al. 2018)."""

    def __init__(self, in_ch: int, num_classes: int, dilations: tuple[int, ...]):
        super().__init__()
        self.heads = nn.ModuleList(
            nn.Conv2d(in_ch, num_classes, 3, padding=d, dilation=d) for d in dilations
        )

    def forward(self, x: Tensor) -> Tensor:
        x = F.elu(x)
        return sum(h(x) for h in self.heads)


class FiLM(nn.Module):
    """Feature transform (Perez et al. 2018 FiLM / Wang et al. 2018 SFT, Sec. 3.2.2).

    Two 3x3 convs map softmax(h) to a per-pixel, per-channel (gamma, beta); the embedding
    becomes ``emb * (1 + gamma) + beta``. The last conv starts at zero, so training starts
    from the identity transform (the purple-blue conditioning), as SFT-GAN initialises.
    """

    def __init__(self, num_classes: int, emb_channels: int, hidden: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(num_classes, hidden, 3, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(hidden, 2 * emb_channels, 3, padding=1),
        )
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, emb: Tensor, probs: Tensor) -> Tensor:
        gamma, beta = self.body(probs).chunk(2, dim=1)
        return emb * (1.0 + gamma) + beta


class PSCNet(nn.Module):
    """f, h (optional) and g for one variant; ``forward(batch)`` returns the loss terms."""

    def __init__(
        self, cfg: ModelConfig, num_classes: int, with_seg: bool,
        loss_weights: tuple[float, float, float] = (1.0, 100.0, 1.0),
    ):
        super().__init__()
        if cfg.fusion != "none" and not with_seg:
            raise ValueError(f"fusion {cfg.fusion!r} needs the segmentation branch")
        self.cfg = cfg
        self.num_classes = num_classes
        self.with_seg = with_seg
        self.loss_weights = tuple(loss_weights)
        k = cfg.shared_rows
        top_ch = cfg.widths[-1]
        # Rows 1..k: shared by f and h (Tables 1-2, gray rows).
        self.trunk = nn.Sequential(*build_rows(cfg, cfg.dilations, 0, 1)[:k])
        self.f_top = nn.Sequential(
            *build_rows(cfg, cfg.dilations, k, row_channels(cfg, k)),
            nn.ELU(), nn.Conv2d(top_ch, cfg.emb_channels, 3, padding=1),
        )
        if with_seg:
            self.h_top = nn.Sequential(*build_rows(cfg, cfg.seg_dilations, k, row_channels(cfg, k)))
            self.aspp = ASPP(top_ch, num_classes, cfg.aspp_dilations)
        cond_ch = cfg.emb_channels + (num_classes if cfg.fusion == "concat" else 0)
        self.film = FiLM(num_classes, cfg.emb_channels, cfg.film_hidden) if cfg.fusion == "film" else None
        self.g = ConditionalPixelCNNpp(generator_config(cfg), cond_ch)

    # --- f and h -------------------------------------------------------------------------
    def embed(self, L: Tensor) -> tuple[Tensor, Tensor | None]:
        """L (B,1,H,W) in [0,100] -> emb (B,E,H/4,W/4), seg logits (B,C,H/4,W/4) or None."""
        t = self.trunk(normalize_L(L))
        emb = self.f_top(t)
        logits = self.aspp(self.h_top(t)) if self.with_seg else None
        return emb, logits

    def condition(self, emb: Tensor, logits: Tensor | None) -> Tensor:
        """What g sees (Eq. 2 / Eq. 4)."""
        if self.cfg.fusion == "concat":
            return torch.cat([emb, logits.softmax(dim=1)], dim=1)
        if self.cfg.fusion == "film":
            return self.film(emb, logits.softmax(dim=1))
        return emb

    def emb_params(self, emb: Tensor) -> Tensor:
        """The embedding's own mixture: its first 6K channels (PIC; L_emb)."""
        return emb[:, : 6 * self.cfg.n_mix]

    # --- training ------------------------------------------------------------------------
    def forward(self, batch: dict) -> dict[str, Tensor]:
        """Loss terms of Eq. 6 (see losses.py for units) plus ``total``."""
        L, ab = batch["L"], batch["ab"]
        f = self.cfg.factor
        x = chroma_target(ab, f)  # (B,2,h,w) in [-1,1]
        emb, logits = self.embed(L)
        cond = self.condition(emb, logits)
        params = self.g(x, cond)  # (B,6K,h,w), teacher forcing: all pixels in parallel
        # The mixture losses in fp32 even under autocast (bin masses underflow in bf16).
        terms = {
            "L_emb_bpd": mixture_nll_bits_per_dim(self.emb_params(emb).float(), x.float()),
            "L_gen_bpd": mixture_nll_bits_per_dim(params.float(), x.float()),
        }
        if self.with_seg:
            terms["L_seg"] = seg_loss(logits, mask_target(batch["mask"], f))
        terms["total"] = weighted_total(terms, self.loss_weights)
        return terms


def embedding_mode(params: Tensor) -> Tensor:
    """Decode a per-pixel mixture without sampling -> (B,2,H,W) in [-1,1].

    Takes the most probable component (largest logit) and its mode: a = mu_a,
    b = mu_b + tanh(coeff) * a (the linear a -> b dependency of PixelCNN++'s mixture layout).
    This is the mode of the most probable component, not the exact mixture mode, and it
    is deterministic.
    """
    K = params.shape[1] // 6
    logits, mu_a, mu_b, _, _, coeff = params.split(K, dim=1)
    k = logits.argmax(dim=1, keepdim=True)
    a = mu_a.gather(1, k)
    b = mu_b.gather(1, k) + torch.tanh(coeff.gather(1, k)) * a
    return torch.cat([a, b], dim=1).clamp(-1.0, 1.0)
