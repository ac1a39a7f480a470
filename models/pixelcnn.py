"""The generator g: a conditional PixelCNN++ over the two chroma channels.

Paper Sec. 3.1 (Eq. 1-2) and 3.3: g models p(Y_i | Y_<i, f(X^L) [, h(X^L)]) in
raster order with gated residual blocks and a discretized mixture of logistics
(``psc_eval.models.dmol``). The layers follow PixelCNN++ (Salimans et al. 2017,
``down_shifted_conv2d``, ``down_right_shifted_conv2d``, ``gated_resnet`` with
``concat_elu``) and the decoder of PIC (Royer et al. 2017), which this paper builds on:

* the input (B, 2, H, W) gets a channel of ones appended, so that the zero padding
  of the shifted convolutions is distinguishable from a chroma value of 0;
* a vertical stack ``u`` (down-shifted 2x3 convolutions: sees the rows above) and a
  horizontal stack ``ul`` (down-right-shifted 2x2 convolutions: sees the rows above
  and the pixels to the left in the current row), the first layers shifted by one
  row / one column so that no output sees its own pixel;
* ``nr_resnet`` pairs of gated residual blocks
  ``x + A * sigmoid(B)``, ``[A, B] = conv_out(concat_elu(conv_in(concat_elu(x)) + skip + cond))``
  where ``skip`` is a 1x1 projection of the vertical stack (horizontal blocks only)
  and ``cond`` a 1x1 projection of ``concat_elu(cond)``: the conditioning on the
  embedding enters every block, as PIC passes its embedding as ``a`` to every
  ``gated_resnet``;
* output ``nin(elu(ul))`` -> (B, 6K, H, W) in the ``dmol`` layout.

Single resolution, no down/up-sampling U-net: PIC's decoder is a single-resolution
stack of a few gated blocks as well (its ImageNet model: 160 filters, 4 blocks),
because the embedding already carries the long-range context; it also keeps the
cached sampler (``psc_eval.models.sampling``) a plain per-row / per-pixel cache.

Public interface (kept stable)::

    from psc_eval.models.pixelcnn import GeneratorConfig, ConditionalPixelCNNpp
    g = ConditionalPixelCNNpp(GeneratorConfig(nr_filters=64, nr_resnet=4), cond_channels=160)
    params = g(x_ab, cond)  # x_ab (B,2,H,W) in [-1,1], cond (B,cond_channels,H,W) -> (B,6K,H,W)
    nll = discretized_mix_logistic_nll(params, x_ab)  # (B,H,W) nats
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .dmol import N_CHANNELS, num_params

__all__ = [
    "ConditionalPixelCNNpp",
    "DownRightShiftedConv2d",
    "DownShiftedConv2d",
    "GatedResBlock",
    "GeneratorConfig",
    "concat_elu",
    "down_shift",
    "right_shift",
]


@dataclass
class GeneratorConfig:
    """Size of the generator g.

    nr_filters: channels of both stacks (PIC ImageNet: 160; toy: 64).
    nr_resnet: number of (vertical, horizontal) gated block pairs (PIC: 4).
    nr_logistic_mix: mixture components K (paper Sec. 3.3: 10).
    dropout: dropout inside the gated blocks during training (PixelCNN++: 0.5;
        identity in eval mode and while sampling).
    out_init_scale: the second convolution of each gated block is initialised
        scaled by this factor, so every block starts close to the identity
        (PixelCNN++ uses ``init_scale=0.1`` there through data-dependent init).
    """

    nr_filters: int = 160
    nr_resnet: int = 4
    nr_logistic_mix: int = 10
    dropout: float = 0.0
    out_init_scale: float = 0.1

    def __post_init__(self) -> None:
        for name in ("nr_filters", "nr_resnet", "nr_logistic_mix"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"GeneratorConfig.{name} must be a positive int, got {v!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"GeneratorConfig.dropout must be in [0, 1), got {self.dropout!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def concat_elu(x: Tensor) -> Tensor:
    """PixelCNN++ ``concat_elu``: elu([x, -x]) along channels (doubles them)."""
    return F.elu(torch.cat([x, -x], dim=1))


def down_shift(x: Tensor) -> Tensor:
    """Shift down by one row, zeros enter at the top (PixelCNN++ ``down_shift``)."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1, :]


def right_shift(x: Tensor) -> Tensor:
    """Shift right by one column, zeros enter at the left (PixelCNN++ ``right_shift``)."""
    return F.pad(x, (1, 0, 0, 0))[:, :, :, :-1]


class DownShiftedConv2d(nn.Conv2d):
    """Output (i, j) sees input rows i-kh+1..i, columns j-(kw-1)/2..j+(kw-1)/2.

    The extents are kept as attributes (``top``, ``left``, ``right``) so the cached
    sampler can cut exactly the same windows.
    """

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int] = (2, 3)) -> None:
        kh, kw = kernel
        if kw % 2 != 1:
            raise ValueError(f"down-shifted kernel width must be odd, got {kernel}")
        super().__init__(cin, cout, kernel, padding=0)
        self.top, self.left, self.right = kh - 1, (kw - 1) // 2, (kw - 1) // 2

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.pad(x, (self.left, self.right, self.top, 0)))


class DownRightShiftedConv2d(nn.Conv2d):
    """Output (i, j) sees input rows i-kh+1..i, columns j-kw+1..j."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int] = (2, 2)) -> None:
        kh, kw = kernel
        super().__init__(cin, cout, kernel, padding=0)
        self.top, self.left, self.right = kh - 1, kw - 1, 0

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.pad(x, (self.left, self.right, self.top, 0)))


class GatedResBlock(nn.Module):
    """PixelCNN++ ``gated_resnet`` with a conditioning term (PIC's use of ``a``).

    ``x1 = conv_in(concat_elu(x)) [+ skip(concat_elu(a))] + cond_proj(concat_elu(cond))``
    ``A, B = conv_out(dropout(concat_elu(x1)))``; returns ``x + A * sigmoid(B)``.
    """

    def __init__(
        self,
        nf: int,
        conv: type[DownShiftedConv2d | DownRightShiftedConv2d],
        kernel: tuple[int, int],
        cond_channels: int,
        skip_channels: int = 0,
        dropout: float = 0.0,
        out_init_scale: float = 0.1,
    ) -> None:
        super().__init__()
        self.conv_in = conv(2 * nf, nf, kernel)
        self.skip = nn.Conv2d(2 * skip_channels, nf, 1) if skip_channels else None
        self.cond_proj = nn.Conv2d(2 * cond_channels, nf, 1, bias=False)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.conv_out = conv(2 * nf, 2 * nf, kernel)
        with torch.no_grad():
            self.conv_out.weight.mul_(out_init_scale)

    def forward(self, x: Tensor, cond_term: Tensor, a: Tensor | None = None) -> Tensor:
        """cond_term: ``self.cond_proj(concat_elu(cond))``, (B, nf, H, W)."""
        x1 = self.conv_in(concat_elu(x)) + cond_term
        if self.skip is not None:
            if a is None:
                raise ValueError("this block needs the vertical stack as `a`")
            x1 = x1 + self.skip(concat_elu(a))
        c2 = self.conv_out(self.dropout(concat_elu(x1)))
        gate_a, gate_b = c2.chunk(2, dim=1)
        return x + gate_a * torch.sigmoid(gate_b)


class ConditionalPixelCNNpp(nn.Module):
    """Conditional PixelCNN++ over (a, b): ``forward(x_ab, cond) -> params``.

    x_ab: (B, 2, H, W) in [-1, 1] (``psc_eval.color.normalize_ab``), the target
        chroma during training (teacher forcing); only pixels before (i, j) in
        raster order influence the output at (i, j).
    cond: (B, cond_channels, H, W), the embedding f(X^L) (and h's prediction for
        the final model), same H, W as x_ab.
    returns: (B, 6K, H, W) mixture parameters in the ``dmol`` layout.
    """

    def __init__(self, cfg: GeneratorConfig, cond_channels: int) -> None:
        super().__init__()
        if cond_channels < 1:
            raise ValueError(f"cond_channels must be >= 1, got {cond_channels}")
        self.cfg = cfg
        self.cond_channels = cond_channels
        nf = cfg.nr_filters
        cin = N_CHANNELS + 1  # + the channel of ones
        # first layers, shifted so that no output sees its own pixel (PixelCNN++ model.py)
        self.u_init = DownShiftedConv2d(cin, nf, (2, 3))
        self.ul_init_v = DownShiftedConv2d(cin, nf, (1, 3))
        self.ul_init_h = DownRightShiftedConv2d(cin, nf, (2, 1))
        blk = {"cond_channels": cond_channels, "dropout": cfg.dropout,
               "out_init_scale": cfg.out_init_scale}
        self.u_blocks = nn.ModuleList(
            GatedResBlock(nf, DownShiftedConv2d, (2, 3), **blk) for _ in range(cfg.nr_resnet)
        )
        self.ul_blocks = nn.ModuleList(
            GatedResBlock(nf, DownRightShiftedConv2d, (2, 2), skip_channels=nf, **blk)
            for _ in range(cfg.nr_resnet)
        )
        self.out = nn.Conv2d(nf, num_params(cfg.nr_logistic_mix), 1)

    @staticmethod
    def add_ones(x_ab: Tensor) -> Tensor:
        """Append the channel of ones (PixelCNN++ / PIC ``x_pad``)."""
        ones = torch.ones_like(x_ab[:, :1])
        return torch.cat([x_ab, ones], dim=1)

    def cond_terms(self, cond: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """The per-block conditioning projections, (B, nf, H, W) each.

        They depend on cond only, so a sampler computes them once per image.
        """
        ce = concat_elu(cond)
        return [b.cond_proj(ce) for b in self.u_blocks], [b.cond_proj(ce) for b in self.ul_blocks]

    def _check(self, x_ab: Tensor, cond: Tensor) -> None:
        if x_ab.dim() != 4 or x_ab.shape[1] != N_CHANNELS:
            raise ValueError(f"x_ab must be (B, 2, H, W), got {tuple(x_ab.shape)}")
        if cond.dim() != 4 or cond.shape[1] != self.cond_channels:
            raise ValueError(
                f"cond must be (B, {self.cond_channels}, H, W), got {tuple(cond.shape)}"
            )
        if cond.shape[0] != x_ab.shape[0] or cond.shape[2:] != x_ab.shape[2:]:
            raise ValueError(
                f"cond {tuple(cond.shape)} and x_ab {tuple(x_ab.shape)} differ in batch or size"
            )

    def forward(self, x_ab: Tensor, cond: Tensor) -> Tensor:
        self._check(x_ab, cond)
        x = self.add_ones(x_ab)  # (B, 3, H, W)
        cu, cul = self.cond_terms(cond)
        u = down_shift(self.u_init(x))  # (B, nf, H, W): rows above only
        ul = down_shift(self.ul_init_v(x)) + right_shift(self.ul_init_h(x))
        for k in range(self.cfg.nr_resnet):
            u = self.u_blocks[k](u, cu[k])
            ul = self.ul_blocks[k](ul, cul[k], a=u)
        return self.out(F.elu(ul))  # (B, 6K, H, W)
