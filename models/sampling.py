"""Raster-order sampling of the generator g: a naive reference and a cached fast sampler.

Paper Sec. 3.1: "We first sample Y_1 from p(Y_1|X^L), then sample Y_i from
p(Y_i|Y_1..Y_{i-1}, X^L) for all i". Two implementations behind one switch:

* ``naive``: one full generator pass over the whole canvas per pixel (H*W passes).
* ``cached``: the fast generation scheme of Ramachandran et al. 2017 ("Fast
  Generation for Convolutional Autoregressive Models"; PrajitR/fast-pixel-cnn),
  written for this network's single-resolution stacks. Every position is computed
  once. The conditioning projections depend on ``cond`` only: once per image. The
  vertical stack sees only the rows above, so it is computed once per ROW, all
  columns together, from per-layer buffers of the last two input rows. The
  horizontal stack is computed once per PIXEL: the part of each 2x2 kernel that
  reads the row above is done for the whole row when the row starts, and within the
  row only the kernel's last row is left, whose left tap is the previous pixel's
  input, kept from the previous step. On a CPU such per-pixel convolutions are
  dominated by call overhead, so every layer is a matrix product (per row: the
  unfolded windows times the weight viewed as a (kh*kw*C_in, C_out) matrix; per
  pixel: ``elu(cat([prev, cur])) @ W_last``), and the per-pixel weights are
  extended to give ``[y, -y]`` directly, the input concat_elu needs.

Both draw all their random numbers up front from the ``torch.Generator``, in one
order: ``draw_mixture_noise((H*W, B), K)`` (Gumbel noise for the component, then
logistic noise for a and b; the noise of raster position t for image b at [t, b]),
and both apply the same per-pixel arithmetic (``sample_rows_with_noise``), so they
return the same samples up to float rounding of the parameters. Drawing the noise
at once also takes the random-number calls out of the per-pixel loop.

Public interface (kept stable)::

    from psc_eval.models.sampling import sample
    x_ab = sample(g, cond, generator=gen, temperature=1.0, method="cached")  # (B,2,H,W) in [-1,1]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from psc_eval.progress import bar as progress_bar

from .dmol import N_CHANNELS, draw_mixture_noise, sample_rows_with_noise
from .pixelcnn import ConditionalPixelCNNpp

__all__ = ["SAMPLERS", "sample", "sample_cached", "sample_naive"]

SAMPLERS = ("cached", "naive")
# batch x nr_filters up to which the cached sampler's per-pixel products also produce
# -y (call overhead dominates below it; measured in reports/perf.md)
PM_MAX_BATCH_FILTERS = 1024


def sample(
    generator_net: ConditionalPixelCNNpp,
    cond: Tensor,
    *,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    temperature: float = 1.0,
    method: str = "cached",
    progress: bool = False,
    num_threads: int | None = 1,
    split_sizes: Sequence[int] | None = None,
) -> Tensor:
    """Sample (a, b) in raster order at the full size of ``cond``: (B, 2, H, W) in [-1, 1].

    cond: (B, cond_channels, H, W), fixed during sampling.
    generator: the source of all random numbers (seed it for reproducible samples); or
        one generator per part of the batch, with ``split_sizes`` the parts' image
        counts: each part's noise comes from its own generator exactly as if it were
        sampled alone, so many batches (a whole evaluation split) are sampled in one
        call with the samples of separate calls.
    temperature: see ``sample_discretized_mix_logistic`` (logits / T, scales * T).
    method: ``"cached"`` (fast) or ``"naive"`` (one full pass per pixel, reference).
    num_threads: torch's CPU thread count while sampling on a CPU, restored afterwards;
        None leaves it alone. Default 1: the per-pixel operations are too small to gain
        from threads, and on a busy CPU extra threads wait for each other (several
        times slower, reports/perf.md).
    The network is run in eval mode (no dropout) and its training flag is restored.
    """
    if method not in SAMPLERS:
        raise ValueError(f"unknown sampler {method!r}, use one of {', '.join(SAMPLERS)}")
    if cond.dim() != 4 or cond.shape[1] != generator_net.cond_channels:
        raise ValueError(
            f"cond must be (B, {generator_net.cond_channels}, H, W), got {tuple(cond.shape)}"
        )
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if split_sizes is not None:
        if isinstance(generator, torch.Generator) or generator is None \
                or len(generator) != len(split_sizes) or sum(split_sizes) != cond.shape[0]:
            raise ValueError(f"split_sizes {list(split_sizes)} needs one generator per part "
                             f"and must sum to the batch, {cond.shape[0]}")
    elif generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError("a sequence of generators needs split_sizes")
    fn = sample_cached if method == "cached" else sample_naive
    was_training = generator_net.training
    old_threads = torch.get_num_threads()
    if num_threads is not None and cond.device.type == "cpu":
        torch.set_num_threads(num_threads)
    generator_net.eval()
    try:
        # inference_mode: less per-op bookkeeping than no_grad, which matters for the
        # many tiny per-pixel ops; the clone gives the caller an ordinary tensor
        with torch.inference_mode():
            x = fn(generator_net, cond, generator=generator, temperature=temperature,
                   progress=progress, split_sizes=split_sizes)
        return x.clone()
    finally:
        generator_net.train(was_training)
        torch.set_num_threads(old_threads)


def sample_naive(
    net: ConditionalPixelCNNpp,
    cond: Tensor,
    *,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    temperature: float = 1.0,
    progress: bool = False,
    max_pixels: int | None = None,
    split_sizes: Sequence[int] | None = None,
) -> Tensor:
    """Reference sampler: a full forward pass per pixel (Eq. 1 taken literally).

    ``max_pixels`` stops after that many raster positions (benchmarks time the first
    rows only: every step is the same full-canvas pass).
    """
    B, _, H, W = cond.shape
    gumbel, logistic = _noise(net, cond, generator, temperature, split_sizes)
    x = torch.zeros(B, N_CHANNELS, H, W, dtype=cond.dtype, device=cond.device)
    n = H * W if max_pixels is None else min(max_pixels, H * W)
    for t in progress_bar(range(n), desc="sampling (naive)", disable=not progress, leave=False):
        i, j = divmod(t, W)
        params = net(x, cond)  # (B, 6K, H, W): the whole canvas, for one pixel
        x[:, :, i, j] = sample_rows_with_noise(
            params[:, :, i, j], gumbel[t] if gumbel is not None else None,
            logistic[t] if logistic is not None else None, temperature)
    return x


def _noise(
    net: ConditionalPixelCNNpp, cond: Tensor,
    generator: torch.Generator | Sequence[torch.Generator] | None, temperature: float,
    split_sizes: Sequence[int] | None = None,
) -> tuple[Tensor | None, Tensor | None]:
    """All the sampling noise, (H*W, B, K) and (H*W, B, 2); none at temperature 0.

    With ``split_sizes``, part p's noise is what ``generator[p]`` draws for that part
    alone, joined along the batch axis."""
    if temperature == 0:
        return None, None
    B, _, H, W = cond.shape
    K = net.cfg.nr_logistic_mix
    if split_sizes is None:
        return draw_mixture_noise((H * W, B), K, cond, generator)
    parts = [draw_mixture_noise((H * W, b), K, cond, g) for b, g in zip(split_sizes, generator)]
    return (torch.cat([p[0] for p in parts], dim=1), torch.cat([p[1] for p in parts], dim=1))


# ------------------------------------------------------------------ cached sampler


def _celu(x: Tensor) -> Tensor:
    """concat_elu along the LAST axis (the buffers are channels-last)."""
    return F.elu(torch.cat([x, -x], dim=-1))


def _wmat(conv: torch.nn.Conv2d) -> Tensor:
    """Conv weight (C_out, C_in, kh, kw) as a (kh*kw*C_in, C_out) matrix, (kh, kw, C) order."""
    return conv.weight.permute(2, 3, 1, 0).reshape(-1, conv.out_channels)


def _pm(w: Tensor) -> Tensor:
    """[w, -w] along the last axis: a product with it gives [y, -y], the input that
    concat_elu needs, in one call."""
    return torch.cat([w, -w], dim=-1)


class _Conv:
    """One shifted convolution as matrix products over a channels-last row buffer.

    A buffer holds the last ``kh`` rows of the convolution's input (oldest first),
    (B, kh, W+2, C), zero-padded by one column on each side, which covers every
    shifted kernel here (down-shifted 2x3 / 1x3: left 1, right 1; down-right-shifted
    2x2 / 2x1: left 1 or 0); before the first row the rows above are zeros, as the
    shifted convolutions pad them. The weight is split into the kernel's rows above
    and its last row (the current image row): the rows above are complete when a row
    starts, so their part is done for the whole row at once.
    """

    def __init__(self, conv: torch.nn.Conv2d) -> None:
        self.left, self.right = conv.left, conv.right
        self.kh, self.kw = conv.kernel_size
        self.w = _wmat(conv)  # (kh*kw*C, C_out)
        n_last = self.w.shape[0] // self.kh
        self.w_above, self.w_last = self.w[:-n_last], self.w[-n_last:]
        self.b = conv.bias

    def _windows(self, rows: Tensor, W: int) -> Tensor:
        """rows (B, r, W+2, C) -> unfolded windows of the W outputs, (B*W, r*kw*C)."""
        slab = rows[:, :, 1 - self.left : W + 1 + self.right]  # (B, r, W+kw-1, C)
        win = slab.unfold(2, self.kw, 1)  # (B, r, W, C, kw)
        return win.permute(0, 2, 1, 4, 3).reshape(rows.shape[0] * W, -1)

    def row(self, buf: Tensor, W: int) -> Tensor:
        """All outputs of the row whose input rows ``buf`` (B, kh, W+2, C) holds: (B, W, C_out)."""
        return torch.addmm(self.b, self._windows(buf, W), self.w).view(buf.shape[0], W, -1)

    def row_above(self, above: Tensor, W: int) -> Tensor:
        """Bias + the part of the rows above, ``above`` (B, kh-1, W+2, C): (B, W, C_out)."""
        win = self._windows(above, W)
        return torch.addmm(self.b, win, self.w_above).view(above.shape[0], W, -1)


def _push(buf: Tensor, row: Tensor) -> None:
    """Row buffer (B, r, W+2, C): drop the oldest row, append ``row`` (B, W, C)."""
    if buf.shape[1] > 1:
        buf[:, :-1] = buf[:, 1:].clone()
    buf[:, -1, 1:-1] = row


def sample_cached(
    net: ConditionalPixelCNNpp,
    cond: Tensor,
    *,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    temperature: float = 1.0,
    progress: bool = False,
    max_pixels: int | None = None,
    split_sizes: Sequence[int] | None = None,
) -> Tensor:
    """Fast sampler with per-layer caches (Ramachandran et al. 2017), see the module doc.

    Computes the network's forward (eval mode) at each new position only, reading
    only positions inside the causal receptive field. Caches: for every spatial
    convolution its last input rows (2 rows for the vertical stack, the row above for
    the horizontal stack); the horizontal stack's inputs of the current row are
    written, already through concat_elu, into a row buffer whose two slots left of
    pixel j ARE the window of its 2x2 kernel's last row (a strided view, no copy).
    ``generator`` / ``split_sizes``: see ``sample``.
    """
    B, _, H, W = cond.shape
    nf = net.cfg.nr_filters
    R = net.cfg.nr_resnet
    dev, dt = cond.device, cond.dtype
    # Few images x few filters: each per-pixel op is mostly call overhead, so the
    # per-pixel weights produce [y, -y] (concat_elu's input) in the same call, at twice
    # the multiply-adds. Otherwise the multiply-adds dominate and -y is one more call.
    pm = B * nf <= PM_MAX_BATCH_FILTERS

    def rows(r: int, c: int) -> Tensor:
        return torch.zeros(B, r, W + 2, c, device=dev, dtype=dt)

    gumbel, logistic = _noise(net, cond, generator, temperature, split_sizes)
    gumbel_t = gumbel.unbind(0) if gumbel is not None else [None] * (H * W)
    logistic_t = logistic.unbind(0) if logistic is not None else [None] * (H * W)
    # the conditioning projections of every block, once per image, as one product:
    # concat_elu(cond) (B*H*W, 2C) @ [W_u1 .. W_uR, W_ul1 .. W_ulR]; (B, H, W, nf) each
    blocks = [*net.u_blocks, *net.ul_blocks]
    w_cond = torch.cat([_wmat(b.cond_proj) for b in blocks], dim=1)
    ce = _celu(cond.permute(0, 2, 3, 1)).reshape(B * H * W, -1)
    proj = torch.mm(ce, w_cond).view(B, H, W, 2 * R, nf).unbind(3)
    cu, cul = proj[:R], proj[R:]

    u_init, ulv_init, ulh_init = _Conv(net.u_init), _Conv(net.ul_init_v), _Conv(net.ul_init_h)
    v_in = [_Conv(b.conv_in) for b in net.u_blocks]
    v_out = [_Conv(b.conv_out) for b in net.u_blocks]
    h_in = [_Conv(b.conv_in) for b in net.ul_blocks]
    h_out = [_Conv(b.conv_out) for b in net.ul_blocks]
    skip_w = [_wmat(b.skip) for b in net.ul_blocks]
    skip_b = [b.skip.bias for b in net.ul_blocks]
    out_w, out_b = _wmat(net.out), net.out.bias
    ulh_w_last = ulh_init.w_last[:N_CHANNELS]  # the 2x1 kernel's last tap, a and b
    ulh_w_ones = ulh_init.w_last[N_CHANNELS]  # ... its ones channel (1 inside the image)
    if pm:  # ul kept as [ul, -ul]; conv_out -> [A, -A, B, B], so one sigmoid and one
        # addcmul update both halves of the residual stream
        ulh_w = _pm(ulh_w_last)
        h_in_w = [_pm(c.w_last) for c in h_in]
        h_out_w = [torch.cat([_pm(c.w_last[:, :nf]), c.w_last[:, nf:], c.w_last[:, nf:]],
                             dim=1) for c in h_out]
    else:
        ulh_w = ulh_w_last
        h_in_w = [c.w_last for c in h_in]
        h_out_w = [c.w_last for c in h_out]

    xb = rows(2, N_CHANNELS + 1)  # x rows i-2, i-1 (with the ones channel)
    v_in_b = [rows(2, 2 * nf) for _ in range(R)]  # concat_elu(u_k), rows i-1, i
    v_mid_b = [rows(2, 2 * nf) for _ in range(R)]

    def hrows() -> list[Tensor]:
        # concat_elu of a horizontal layer's inputs along a row, slot 0 the zero padding
        # left of the image (elu(0) = 0); two per layer: the row above and this row
        return [torch.zeros(B, W + 1, 2 * nf, device=dev, dtype=dt) for _ in range(2)]

    h_in_r = [hrows() for _ in range(R)]
    h_mid_r = [hrows() for _ in range(R)]
    ones = torch.ones(B, W, 1, device=dev, dtype=dt)
    elu_out = torch._C._nn.elu  # elu(x, out=...): written straight into the row buffer
    n2 = 2 * nf

    out = torch.zeros(B, N_CHANNELS, H, W, device=dev, dtype=dt)
    n = H * W if max_pixels is None else min(max_pixels, H * W)
    bar = progress_bar(total=n, desc="sampling (cached)", disable=not progress, leave=False)
    for i in range(min(H, -(-n // W))):
        cur, above = i % 2, 1 - i % 2
        # ---- vertical stack, the whole row i: it depends on rows < i only
        if i == 0:  # down_shift feeds zeros (no bias) into the first row
            u = torch.zeros(B, W, nf, device=dev, dtype=dt)
            ul_row = torch.zeros(B, W, nf, device=dev, dtype=dt)
        else:
            u = u_init.row(xb, W)  # the 2x3 conv at row i-1, down-shifted
            ul_row = ulv_init.row(xb[:, 1:], W)  # the 1x3 conv at row i-1, down-shifted
        # ul at (i, j >= 1): ul_row[j] + the 2x1 conv at (i, j-1), right-shifted; all but
        # its last tap (the sample at (i, j-1)) is known now. (B, W-1, nf)
        ul_base = ul_row[:, 1:] + ulh_init.row_above(xb[:, 1:], W)[:, :-1] + ulh_w_ones
        ul_first = ul_row[:, 0]
        if pm:
            ul_base = torch.cat([ul_base, -ul_base], dim=-1)
            ul_first = torch.cat([ul_first, -ul_first], dim=-1)
        ul_base = ul_base.unbind(1)
        h_add, h_out_add = [], []  # per h-block: everything but the current row's taps
        for k in range(R):
            _push(v_in_b[k], _celu(u))
            x1 = v_in[k].row(v_in_b[k], W) + cu[k][:, i]
            _push(v_mid_b[k], _celu(x1))
            c2 = v_out[k].row(v_mid_b[k], W)
            u = u + c2[..., :nf] * torch.sigmoid(c2[..., nf:])
            skip = torch.addmm(skip_b[k], _celu(u).view(B * W, -1), skip_w[k]).view(B, W, nf)
            add = h_in[k].row_above(h_in_r[k][above][:, None], W) + skip + cul[k][:, i]
            oa = h_out[k].row_above(h_mid_r[k][above][:, None], W)
            if pm:
                add = torch.cat([add, -add], dim=-1)
                oa_a, oa_b = oa[..., :nf], oa[..., nf:]
                oa = torch.cat([oa_a, -oa_a, oa_b, oa_b], dim=-1)
            h_add.append(add.unbind(1))
            h_out_add.append(oa.unbind(1))
        # ---- horizontal stack, pixel by pixel. Only the kernels' last row is left: the
        # left tap (i, j-1) and the new tap (i, j), i.e. slots j and j+1 of the row
        # buffers, one matrix product per layer.
        e_in = [r[cur] for r in h_in_r]
        e_mid = [r[cur] for r in h_mid_r]
        f_in = [e.view(B, -1) for e in e_in]
        f_mid = [e.view(B, -1) for e in e_mid]
        row_s: list[Tensor] = []
        s = None
        for j in range(min(W, n - i * W)):
            if j == 0:  # right_shift feeds zeros into the first column
                ul = ul_first
            else:
                ul = torch.addmm(ul_base[j - 1], s, ulh_w)
            win = slice(j * n2, (j + 2) * n2)
            for k in range(R):
                if pm:  # ul is [ul, -ul]: elu of it is concat_elu(ul)
                    elu_out(ul, out=e_in[k][:, j + 1])
                    x1 = torch.addmm(h_add[k][j], f_in[k][:, win], h_in_w[k])  # [x1, -x1]
                    elu_out(x1, out=e_mid[k][:, j + 1])
                    c2 = torch.addmm(h_out_add[k][j], f_mid[k][:, win], h_out_w[k])
                    # [ul, -ul] + [A, -A] * sigmoid([B, B]): the gated residual, both halves
                    ul = torch.addcmul(ul, c2[:, :n2], torch.sigmoid(c2[:, n2:]))
                else:
                    slot = e_in[k][:, j + 1]
                    slot[:, :nf] = ul
                    torch.neg(ul, out=slot[:, nf:])
                    F.elu_(slot)
                    slot = e_mid[k][:, j + 1]
                    torch.addmm(h_add[k][j], f_in[k][:, win], h_in_w[k], out=slot[:, :nf])
                    torch.neg(slot[:, :nf], out=slot[:, nf:])
                    F.elu_(slot)
                    c2 = torch.addmm(h_out_add[k][j], f_mid[k][:, win], h_out_w[k])
                    ul = torch.addcmul(ul, c2[:, :nf], torch.sigmoid(c2[:, nf:]))
            params = torch.addmm(out_b, F.elu(ul[:, :nf] if pm else ul), out_w)  # (B, 6K)
            t = i * W + j
            s = sample_rows_with_noise(params, gumbel_t[t], logistic_t[t], temperature)
            row_s.append(s)
            bar.update(1)
        # ---- the finished row into the buffer that the next rows' vertical stack reads
        m = len(row_s)
        xs = torch.stack(row_s, dim=1)  # (B, m, 2)
        out[:, :, i, :m] = xs.permute(0, 2, 1)
        if m == W:
            _push(xb, torch.cat([xs, ones], dim=-1))
    bar.close()
    return out
