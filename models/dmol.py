"""Discretized mixture of logistics over the two chroma channels (a, b).

The output distribution of the generator g and of the embedding's own head
(paper Sec. 3.3: "a mixture of 10 logistic distributions"; Salimans et al. 2017,
PixelCNN++ ``discretized_mix_logistic_loss`` / ``sample_from_discretized_mix_logistic``),
reduced from PixelCNN++'s three colour channels to two: a is modelled first, b's
mean is shifted linearly by the value of a.

Parameter layout, (B, 6K, H, W), K = number of mixture components::

    [logits K | mean_a K | mean_b K | log_scale_a K | log_scale_b K | coeff K]

``coeff`` goes through tanh; log scales are clamped below at -7; the mean of b
is ``mean_b + tanh(coeff) * x_a``. Values live on the grid of ``n_bins`` points
spanning [-1, 1] (``psc_eval.color.normalize_ab``: 256 bins of one Lab unit), so a
bin has half-width ``1 / (n_bins - 1)``; the edge bins -1 and +1 take the whole
tail of the logistic.

Public interface (kept stable)::

    from psc_eval.models.dmol import (
        discretized_mix_logistic_nll, sample_discretized_mix_logistic,
        nats_to_bits_per_dim, mixture_nll_bits_per_dim)

For samplers: ``draw_mixture_noise`` (all random numbers of many draws at once) and
``sample_rows_with_noise`` (the draw itself, on (N, 6K) rows).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "LOG_SCALE_MIN",
    "N_CHANNELS",
    "discretized_mix_logistic_nll",
    "draw_mixture_noise",
    "mixture_nll_bits_per_dim",
    "nats_to_bits_per_dim",
    "num_params",
    "sample_discretized_mix_logistic",
    "sample_rows_with_noise",
    "split_params",
]

LOG_SCALE_MIN = -7.0  # PixelCNN++ clamps log scales here (utils.py)
N_CHANNELS = 2  # a, b
_PDF_BRANCH_MIN_DELTA = 1e-5  # PixelCNN++: below this bin mass use the pdf at the midpoint
_CDF_DELTA_FLOOR = 1e-12  # PixelCNN++'s guard inside log(max(cdf_delta, 1e-12))
_UNIFORM_EPS = 1e-5  # PixelCNN++ samples uniforms in (1e-5, 1 - 1e-5)


def num_params(n_mix: int) -> int:
    """Channels of the parameter tensor for ``n_mix`` components: 6K."""
    return 6 * n_mix


def split_params(params: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Split (B, 6K, H, W) into logits (B,K,H,W), means (B,2,K,H,W),
    clamped log scales (B,2,K,H,W) and tanh(coeff) (B,K,H,W)."""
    if params.dim() != 4 or params.shape[1] % 6 != 0:
        raise ValueError(f"params must be (B, 6K, H, W), got {tuple(params.shape)}")
    B, C, H, W = params.shape
    K = C // 6
    logits = params[:, :K]
    means = params[:, K : 3 * K].reshape(B, 2, K, H, W)
    log_scales = params[:, 3 * K : 5 * K].reshape(B, 2, K, H, W).clamp(min=LOG_SCALE_MIN)
    coeff = torch.tanh(params[:, 5 * K : 6 * K])
    return logits, means, log_scales, coeff


def discretized_mix_logistic_nll(params: Tensor, x: Tensor, n_bins: int = 256) -> Tensor:
    """Negative log-likelihood in nats per pixel, summed over a and b: (B, H, W).

    params: (B, 6K, H, W) in the layout of the module docstring.
    x: (B, 2, H, W) in [-1, 1], on the ``n_bins`` grid.

    Follows PixelCNN++ ``discretized_mix_logistic_loss``: bin mass
    ``sigmoid((x + h - mu)/s) - sigmoid((x - h - mu)/s)`` with h = 1/(n_bins-1); the
    lowest bin takes ``log sigmoid`` of its upper edge, the highest ``log(1 - sigmoid)``
    of its lower edge; where the bin mass is below 1e-5 the log pdf at the bin
    midpoint minus ``log((n_bins-1)/2)`` is used instead (numerical stability for
    tiny scales). Computed in the dtype of the inputs.
    """
    if x.dim() != 4 or x.shape[1] != N_CHANNELS:
        raise ValueError(f"x must be (B, 2, H, W), got {tuple(x.shape)}")
    if params.shape[0] != x.shape[0] or params.shape[2:] != x.shape[2:]:
        raise ValueError(
            f"params {tuple(params.shape)} and x {tuple(x.shape)} differ in batch or size"
        )
    x = x.to(params.dtype)
    logits, means, log_scales, coeff = split_params(params)
    # (B, 2, 1, H, W) against (B, 2, K, H, W)
    xk = x.unsqueeze(2)
    # b's mean depends linearly on a (PixelCNN++: means[..., 1] += coeffs[..., 0] * x[..., 0])
    mean_b = means[:, 1] + coeff * xk[:, 0]
    means = torch.stack([means[:, 0], mean_b], dim=1)

    half = 1.0 / (n_bins - 1)
    centered = xk - means
    inv_s = torch.exp(-log_scales)
    plus_in = inv_s * (centered + half)
    min_in = inv_s * (centered - half)
    cdf_delta = torch.sigmoid(plus_in) - torch.sigmoid(min_in)
    log_cdf_plus = plus_in - F.softplus(plus_in)  # log sigmoid(plus_in): lowest bin
    log_one_minus_cdf_min = -F.softplus(min_in)  # log(1 - sigmoid(min_in)): highest bin
    mid_in = inv_s * centered
    log_pdf_mid = mid_in - log_scales - 2.0 * F.softplus(mid_in)

    inner = torch.where(
        cdf_delta > _PDF_BRANCH_MIN_DELTA,
        torch.log(cdf_delta.clamp(min=_CDF_DELTA_FLOOR)),
        log_pdf_mid - math.log((n_bins - 1) / 2.0),
    )
    # The edge tests sit half a bin inside the edges, so any grid point other than
    # the extreme ones is an interior bin (PixelCNN++ uses +-0.999 for 256 bins).
    edge = 1.0 - half
    log_probs = torch.where(
        xk < -edge, log_cdf_plus, torch.where(xk > edge, log_one_minus_cdf_min, inner)
    )
    log_probs = log_probs.sum(dim=1) + torch.log_softmax(logits, dim=1)  # (B, K, H, W)
    return -torch.logsumexp(log_probs, dim=1)


def nats_to_bits_per_dim(nll_nats: Tensor | float, dims: int) -> Tensor | float:
    """Convert a total NLL in nats over ``dims`` values into bits per dimension.

    The one home of this formula: ``nats / (dims * ln 2)``; for an (a, b) image of
    H x W pixels ``dims = 2 * H * W``.
    """
    return nll_nats / (dims * math.log(2.0))


def mixture_nll_bits_per_dim(params: Tensor, x: Tensor, n_bins: int = 256) -> Tensor:
    """Mean NLL over the batch in bits per chroma value, 0-dim tensor.

    ``sum(nll) / (B * 2 * H * W * ln 2)``: the unit PixelCNN++ reports.
    """
    nll = discretized_mix_logistic_nll(params, x, n_bins=n_bins)  # (B, H, W)
    return nats_to_bits_per_dim(nll.sum(), nll.numel() * N_CHANNELS)


def _uniform(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Uniforms in (1e-5, 1 - 1e-5), PixelCNN++'s guard against log(0).

    Drawn on the generator's device and moved to ``like``'s, so a CPU generator gives
    the same noise whatever device the model runs on.
    """
    dev = generator.device if generator is not None else like.device
    u = torch.empty(shape, device=dev, dtype=like.dtype)
    u.uniform_(_UNIFORM_EPS, 1.0 - _UNIFORM_EPS, generator=generator)
    return u.to(like.device)


def draw_mixture_noise(
    lead: tuple[int, ...], n_mix: int, like: Tensor, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """The random numbers of a mixture draw: Gumbel (*lead, K) and logistic (*lead, 2).

    Drawn from ``generator`` as uniforms of shape (*lead, K) first, then (*lead, 2),
    and mapped through ``-log(-log u)`` and ``log(u / (1 - u))``. A sampler that draws
    the noise of all its pixels at once (``lead = (H*W, B)``) needs no random-number
    call per pixel.
    """
    gumbel = -torch.log(-torch.log(_uniform((*lead, n_mix), like, generator)))
    logistic = torch.logit(_uniform((*lead, N_CHANNELS), like, generator))
    return gumbel, logistic


def sample_rows_with_noise(
    p: Tensor,
    gumbel: Tensor | None,
    logistic: Tensor | None,
    temperature: float = 1.0,
    n_bins: int | None = None,
) -> Tensor:
    """The sampling arithmetic on rows: p (N, 6K), gumbel (N, K), logistic (N, 2) -> (N, 2).

    The one implementation of the draw, used by ``sample_discretized_mix_logistic``
    (on permuted rows) and by the samplers' per-pixel step, so equal parameters and
    noise give bit-identical draws. The noise may be None for temperature 0.
    """
    K = p.shape[1] // 6
    logits = p[:, :K]
    if temperature == 0:
        k = logits.argmax(dim=1, keepdim=True)
    else:
        # Gumbel-max: argmax(logits / T + G) is a draw from softmax(logits / T)
        z = logits if temperature == 1 else logits / temperature
        k = (z + gumbel).argmax(dim=1, keepdim=True)  # (N, 1)
    # the chosen component's [logit, mean_a, mean_b, log_scale_a, log_scale_b, coeff]
    sel = p.gather(1, k + _offsets(K, p.device))  # (N, 6)
    if temperature == 0:
        x = sel[:, 1:3].clone()
    else:
        log_s = sel[:, 3:5].clamp(min=LOG_SCALE_MIN)
        if temperature != 1:
            log_s = log_s + math.log(temperature)
        x = torch.addcmul(sel[:, 1:3], torch.exp(log_s), logistic)  # inverse logistic cdf
    a = x[:, :1].clamp_(-1.0, 1.0)
    if n_bins is not None:
        _snap_(a, n_bins)
    b = x[:, 1:].addcmul_(torch.tanh(sel[:, 5:6]), a).clamp_(-1.0, 1.0)  # mean_b + c * a
    if n_bins is not None:
        _snap_(b, n_bins)
    return x


_OFFSETS: dict[tuple[int, torch.device], Tensor] = {}


def _offsets(K: int, device: torch.device) -> Tensor:
    """[0, K, 2K, .., 5K]: column offsets of a component's six parameters (memoised)."""
    key = (K, device)
    if key not in _OFFSETS:
        with torch.inference_mode(False):  # an ordinary tensor, usable in any mode
            _OFFSETS[key] = torch.arange(0, 6 * K, K, device=device)
    return _OFFSETS[key]


def _snap_(v: Tensor, n_bins: int) -> None:
    """In place: the nearest of the n_bins grid points spanning [-1, 1]."""
    step = 2.0 / (n_bins - 1)
    v.add_(1.0).div_(step).round_().mul_(step).sub_(1.0)


def sample_discretized_mix_logistic(
    params: Tensor,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
    n_bins: int | None = None,
) -> Tensor:
    """Draw (a, b) per pixel from the mixture: (B, 2, H, W) in [-1, 1].

    As PixelCNN++ ``sample_from_discretized_mix_logistic``: the component by the
    Gumbel-max trick, then a ~ Logistic(mu_a, s_a) clamped to [-1, 1], then
    b ~ Logistic(mu_b + tanh(coeff) * a, s_b) clamped, using the sampled a.

    Random numbers are drawn from ``generator`` in a fixed order and shape
    (``draw_mixture_noise((B, H, W), K)``: uniforms (B, H, W, K) for the component,
    then (B, H, W, 2) for the logistic noise of a and b), so a seeded generator
    reproduces the samples. The arithmetic is ``sample_rows_with_noise``.

    temperature T: logits are divided by T and the logistic scales multiplied by
    T (log_scale + log T, applied after the -7 clamp). T = 0 is greedy: the
    component with the largest logit and its mean (with b's mean shifted by the
    chosen a); no random numbers are drawn.

    n_bins: None (default) returns continuous values, as PixelCNN++ does. With
    ``n_bins`` (e.g. 256) a is snapped to the nearest grid point BEFORE b's mean
    is shifted and b is snapped too, so the draws follow exactly the discrete
    distribution that ``discretized_mix_logistic_nll`` scores.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if params.dim() != 4 or params.shape[1] % 6 != 0:
        raise ValueError(f"params must be (B, 6K, H, W), got {tuple(params.shape)}")
    B, C, H, W = params.shape
    K = C // 6
    rows = params.permute(0, 2, 3, 1).reshape(B * H * W, C)
    if temperature == 0:
        out = sample_rows_with_noise(rows, None, None, 0.0, n_bins)
    else:
        gumbel, logistic = draw_mixture_noise((B, H, W), K, params, generator)
        out = sample_rows_with_noise(rows, gumbel.view(-1, K), logistic.view(-1, N_CHANNELS),
                                     temperature, n_bins)
    return out.view(B, H, W, 2).permute(0, 3, 1, 2).contiguous()
