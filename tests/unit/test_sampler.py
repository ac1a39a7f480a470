"""Raster-order samplers of the generator g: the cached sampler (Ramachandran et al.
2017) must give the same samples as the naive full-pass reference for the same
generator, and every sampled pixel must be the draw from the network's mixture at
that pixel given the pixels sampled before it.
"""

from __future__ import annotations

import pytest
import torch
from psc_eval.models.dmol import draw_mixture_noise, sample_rows_with_noise
from psc_eval.models.pixelcnn import ConditionalPixelCNNpp, GeneratorConfig
from psc_eval.models.sampling import sample, sample_cached

pytestmark = pytest.mark.usefixtures("one_thread")


def _net(nf: int = 8, R: int = 2, K: int = 3, cond_ch: int = 5, dropout: float = 0.0,
         dtype: torch.dtype = torch.float32) -> ConditionalPixelCNNpp:
    torch.manual_seed(0)
    # out_init_scale=1: every block changes the output visibly, so a cache bug shows
    cfg = GeneratorConfig(nr_filters=nf, nr_resnet=R, nr_logistic_mix=K, dropout=dropout,
                          out_init_scale=1.0)
    net = ConditionalPixelCNNpp(cfg, cond_ch).to(dtype)
    with torch.no_grad():  # moderate scales, so the samples are not all clamped to +-1
        net.out.bias[3 * K : 5 * K] -= 2.0
    return net


def _cond(B: int, C: int, H: int, W: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(B, C, H, W, generator=torch.Generator().manual_seed(7), dtype=dtype)


def _both(net, cond, seed=0, **kw):
    a = sample(net, cond, generator=torch.Generator().manual_seed(seed), method="naive", **kw)
    b = sample(net, cond, generator=torch.Generator().manual_seed(seed), method="cached", **kw)
    return a, b


@pytest.mark.parametrize(
    "nf,R,K,B,H,W",
    [(8, 2, 3, 3, 6, 7), (4, 1, 1, 2, 5, 1), (6, 3, 2, 2, 1, 6), (5, 2, 10, 1, 8, 8)],
)
def test_cached_equals_naive_float32(nf, R, K, B, H, W) -> None:
    net = _net(nf, R, K)
    cond = _cond(B, 5, H, W)
    a, b = _both(net, cond)
    assert a.shape == b.shape == (B, 2, H, W)
    assert (a - b).abs().max().item() <= 1e-5
    assert a.min() >= -1 and a.max() <= 1
    assert a.abs().lt(1).float().mean() > 0.5  # real values, not only the clamped edges


def test_cached_equals_naive_float64_and_temperature() -> None:
    net = _net(dtype=torch.float64)
    cond = _cond(2, 5, 5, 6, dtype=torch.float64)
    for T in (1.0, 0.6, 0.0):
        a, b = _both(net, cond, temperature=T)
        assert a.dtype == torch.float64
        assert (a - b).abs().max().item() <= 1e-12, T


def test_dropout_net_is_sampled_in_eval_mode_and_flag_restored() -> None:
    net = _net(dropout=0.5).train()
    cond = _cond(2, 5, 4, 5)
    a, b = _both(net, cond)
    assert (a - b).abs().max().item() <= 1e-5
    assert net.training


def test_each_pixel_is_the_draw_from_its_conditional() -> None:
    # Teacher-forced check, independent of the naive sampler: one forward pass on the
    # final sample gives, at every pixel, the mixture given the pixels before it
    # (causality); with the same noise it must reproduce the sampled value.
    net = _net().eval()
    B, H, W = 3, 5, 6
    cond = _cond(B, 5, H, W)
    x = sample(net, cond, generator=torch.Generator().manual_seed(3), method="cached")
    gumbel, logistic = draw_mixture_noise((H * W, B), 3, cond, torch.Generator().manual_seed(3))
    with torch.no_grad():
        params = net(x, cond)
    for t in range(H * W):
        i, j = divmod(t, W)
        redraw = sample_rows_with_noise(params[:, :, i, j], gumbel[t], logistic[t])
        torch.testing.assert_close(redraw, x[:, :, i, j], atol=1e-5, rtol=0)


def test_seeds() -> None:
    net = _net()
    cond = _cond(2, 5, 4, 4)
    s1 = sample(net, cond, generator=torch.Generator().manual_seed(1))
    s2 = sample(net, cond, generator=torch.Generator().manual_seed(1))
    s3 = sample(net, cond, generator=torch.Generator().manual_seed(2))
    assert torch.equal(s1, s2)
    assert (s1 - s3).abs().max() > 0.1


def test_temperature_to_zero() -> None:
    net = _net(dtype=torch.float64)
    cond = _cond(2, 5, 4, 5, dtype=torch.float64)
    g0 = torch.Generator().manual_seed(0)
    greedy = sample(net, cond, generator=g0, temperature=0.0)
    # no randomness at T = 0: any generator (or none) gives the same canvas
    assert torch.equal(greedy, sample(net, cond, temperature=0.0))
    cold = sample(net, cond, generator=torch.Generator().manual_seed(5), temperature=1e-6)
    assert (cold - greedy).abs().max() < 1e-3
    warm = sample(net, cond, generator=torch.Generator().manual_seed(5), temperature=1.0)
    assert (warm - greedy).abs().max() > 0.1


def test_partial_canvas_matches_prefix() -> None:
    net = _net().eval()
    cond = _cond(2, 5, 4, 5)
    full = sample(net, cond, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        part = sample_cached(net, cond, generator=torch.Generator().manual_seed(4),
                             max_pixels=8)
    flat_full, flat_part = full.flatten(2), part.flatten(2)
    torch.testing.assert_close(flat_part[..., :8], flat_full[..., :8], atol=1e-6, rtol=0)
    assert torch.all(flat_part[..., 8:] == 0)


def test_thread_setting_restored() -> None:
    net = _net()
    before = torch.get_num_threads()
    sample(net, _cond(1, 5, 2, 2), num_threads=2)
    assert torch.get_num_threads() == before


def test_bad_arguments() -> None:
    net = _net()
    with pytest.raises(ValueError, match="sampler"):
        sample(net, _cond(1, 5, 2, 2), method="fast")
    with pytest.raises(ValueError, match="cond"):
        sample(net, _cond(1, 4, 2, 2))
    with pytest.raises(ValueError, match="temperature"):
        sample(net, _cond(1, 5, 2, 2), temperature=-1.0)


@pytest.mark.parametrize("pm_max", [0, 10**9])
def test_both_per_pixel_layouts_equal_naive(monkeypatch, pm_max) -> None:
    # the cached sampler keeps [y, -y] from one product for small batch x filters and
    # negates in a second call otherwise: both must be the naive sampler's draws
    from psc_eval.models import sampling

    monkeypatch.setattr(sampling, "PM_MAX_BATCH_FILTERS", pm_max)
    net = _net(8, 2, 3)
    a, b = _both(net, _cond(3, 5, 5, 6))
    assert (a - b).abs().max().item() <= 1e-5


@pytest.mark.parametrize("method", ["cached", "naive"])
def test_split_batch_equals_separate_calls(method) -> None:
    # a whole split in one call, each part with its own generator, gives each part the
    # samples of a call of its own
    net = _net(8, 2, 3)
    cond = _cond(5, 5, 4, 5)
    sizes = [3, 2]
    gens = [torch.Generator().manual_seed(11), torch.Generator().manual_seed(12)]
    whole = sample(net, cond, generator=gens, split_sizes=sizes, method=method)
    parts = [sample(net, c, generator=torch.Generator().manual_seed(s), method=method)
             for c, s in zip(cond.split(sizes), (11, 12))]
    torch.testing.assert_close(whole, torch.cat(parts), atol=1e-6, rtol=0)


def test_split_sizes_checked() -> None:
    net = _net()
    cond = _cond(3, 5, 2, 2)
    g = torch.Generator()
    with pytest.raises(ValueError, match="split_sizes"):
        sample(net, cond, generator=[g, g], split_sizes=[1, 1])
    with pytest.raises(ValueError, match="split_sizes"):
        sample(net, cond, generator=[g, g])
