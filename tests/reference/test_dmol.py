"""Discretized mixture of logistics against an independent float64 evaluation.

The reference below writes the PixelCNN++ formulas (Salimans et al. 2017,
``discretized_mix_logistic_loss``) directly in numpy with scipy's expit /
logsumexp, per component and per channel, reduced to the two chroma channels
with b's mean shifted by tanh(coeff) * a.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from psc_eval.models.dmol import (
    discretized_mix_logistic_nll,
    mixture_nll_bits_per_dim,
    nats_to_bits_per_dim,
    sample_discretized_mix_logistic,
)
from scipy import stats
from scipy.special import expit, log_softmax, logsumexp

NB = 256
HALF = 1.0 / (NB - 1)


def _ref_channel_logprob(x: np.ndarray, mu: np.ndarray, log_s: np.ndarray) -> np.ndarray:
    """log P(bin of x) for one logistic, PixelCNN++'s four cases, elementwise."""
    log_s = np.maximum(log_s, -7.0)
    s = np.exp(log_s)
    hi = (x - mu + HALF) / s
    lo = (x - mu - HALF) / s
    if x <= -1.0 + 1e-9:  # lowest bin: everything below its upper edge
        return -np.logaddexp(0.0, -hi)  # log expit(hi), without underflow
    if x >= 1.0 - 1e-9:  # highest bin: everything above its lower edge
        return -np.logaddexp(0.0, lo)  # log(1 - expit(lo))
    delta = expit(hi) - expit(lo)
    if delta > 1e-5:
        return np.log(delta)
    z = (x - mu) / s
    log_pdf = -z - log_s - 2.0 * np.log1p(np.exp(-z))  # logistic log density
    return log_pdf - np.log((NB - 1) / 2.0)


def _ref_nll(params: np.ndarray, x: np.ndarray) -> np.ndarray:
    B, C, H, W = params.shape
    K = C // 6
    out = np.empty((B, H, W))
    for bb in range(B):
        for i in range(H):
            for j in range(W):
                p = params[bb, :, i, j]
                xa, xb = x[bb, 0, i, j], x[bb, 1, i, j]
                logw = log_softmax(p[:K])
                terms = []
                for k in range(K):
                    mu_a, mu_b = p[K + k], p[2 * K + k]
                    ls_a, ls_b = p[3 * K + k], p[4 * K + k]
                    c = math.tanh(p[5 * K + k])
                    la = _ref_channel_logprob(xa, mu_a, ls_a)
                    lb = _ref_channel_logprob(xb, mu_b + c * xa, ls_b)
                    terms.append(logw[k] + la + lb)
                out[bb, i, j] = -logsumexp(terms)
    return out


def _grid_x(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, NB, size=shape) * (2.0 / (NB - 1)) - 1.0


def _random_params(rng: np.random.Generator, B: int, K: int, H: int, W: int) -> np.ndarray:
    p = np.empty((B, 6 * K, H, W))
    p[:, :K] = rng.normal(0, 1.5, (B, K, H, W))
    p[:, K : 3 * K] = rng.uniform(-1.1, 1.1, (B, 2 * K, H, W))
    p[:, 3 * K : 5 * K] = rng.uniform(-5.5, -0.5, (B, 2 * K, H, W))
    p[:, 5 * K :] = rng.normal(0, 1.0, (B, K, H, W))
    return p


def test_matches_reference_random_float64() -> None:
    rng = np.random.default_rng(0)
    params = _random_params(rng, 2, 3, 4, 5)
    x = _grid_x((2, 2, 4, 5), rng)
    x[0, 0, 0, :] = -1.0  # edge bins for a, b and both
    x[0, 1, 1, :] = 1.0
    x[1, :, 2, 0] = -1.0
    x[1, :, 3, 1] = 1.0
    got = discretized_mix_logistic_nll(torch.from_numpy(params), torch.from_numpy(x))
    assert got.dtype == torch.float64 and got.shape == (2, 4, 5)
    np.testing.assert_allclose(got.numpy(), _ref_nll(params, x), rtol=1e-6, atol=1e-9)


def test_tiny_scales_take_pdf_midpoint_branch() -> None:
    # log scale -9 is clamped to -7 (s ~ 9e-4 < bin width): a mean 3 bins away from
    # x leaves a bin mass far below 1e-5, so the pdf-at-midpoint branch decides
    rng = np.random.default_rng(1)
    K = 2
    params = _random_params(rng, 1, K, 2, 3)
    params[:, 3 * K : 5 * K] = -9.0
    x = _grid_x((1, 2, 2, 3), rng) * 0.5
    params[:, K : 2 * K] = x[:, :1] + 6 * 2 * HALF  # mean_a six bins above x_a
    c = np.tanh(params[:, 5 * K :])
    params[:, 2 * K : 3 * K] = x[:, 1:] - c * x[:, :1] - 8 * 2 * HALF  # mean_b eight below
    s = math.exp(-7.0)
    assert expit(-11 * HALF / s) - expit(-13 * HALF / s) < 1e-5  # the branch is really hit
    got = discretized_mix_logistic_nll(torch.from_numpy(params), torch.from_numpy(x)).numpy()
    ref = _ref_nll(params, x)
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    # the pdf branch gives large but finite NLLs, about z_a + z_b - 2*7 + 2*log(127.5) with
    # z = distance / scale; the log of the 1e-12 floor would give 2 * 27.6 = 55.3 instead
    z = (6 + 8) * 2 * HALF / s
    np.testing.assert_allclose(got, z - 14 + 2 * math.log(127.5), rtol=1e-3)


def test_coefficient_shifts_b_mean() -> None:
    # K = 1, tanh(coeff) = 0.5: b ~ Logistic(mu_b + 0.5 * x_a, s_b); independent by hand
    xa = round((0.4 + 1) / (2 * HALF)) * 2 * HALF - 1
    xb = round((0.1 + 1) / (2 * HALF)) * 2 * HALF - 1
    mu_a, mu_b, ls_a, ls_b = 0.3, -0.1, -2.0, -2.5
    p = torch.tensor([0.0, mu_a, mu_b, ls_a, ls_b, math.atanh(0.5)], dtype=torch.float64)
    x = torch.tensor([xa, xb], dtype=torch.float64).view(1, 2, 1, 1)
    got = discretized_mix_logistic_nll(p.view(1, 6, 1, 1), x).item()

    def logistic_bin(v: float, m: float, s: float) -> float:
        return stats.logistic.cdf(v + HALF, m, s) - stats.logistic.cdf(v - HALF, m, s)

    want = -math.log(logistic_bin(xa, mu_a, math.exp(ls_a)))
    want -= math.log(logistic_bin(xb, mu_b + 0.5 * xa, math.exp(ls_b)))
    assert got == pytest.approx(want, rel=1e-9)
    # and the shift matters
    p0 = p.clone()
    p0[5] = 0.0
    assert discretized_mix_logistic_nll(p0.view(1, 6, 1, 1), x).item() != pytest.approx(got)


def test_dtypes_preserved_and_float32_close() -> None:
    rng = np.random.default_rng(2)
    params = _random_params(rng, 2, 4, 3, 3)
    x = _grid_x((2, 2, 3, 3), rng)
    ref = _ref_nll(params, x)
    for dt, rtol in [(torch.float64, 1e-6), (torch.float32, 2e-4)]:
        got = discretized_mix_logistic_nll(torch.from_numpy(params).to(dt),
                                           torch.from_numpy(x).to(dt))
        assert got.dtype == dt
        np.testing.assert_allclose(got.double().numpy(), ref, rtol=rtol)


def test_pinned_values() -> None:
    # a fixed construction, no RNG: K = 2, one row of 3 pixels, including both edges
    K = 2
    params = torch.zeros(1, 6 * K, 1, 3, dtype=torch.float64)
    params[0, :K, 0] = torch.tensor([[0.5, 0.0, -1.0], [-0.5, 1.0, 2.0]])
    params[0, K : 2 * K, 0] = torch.tensor([[-0.9, 0.0, 0.8], [0.5, -0.3, 0.95]])
    params[0, 2 * K : 3 * K, 0] = torch.tensor([[0.2, -0.2, 0.0], [-0.6, 0.1, 0.4]])
    params[0, 3 * K : 5 * K, 0] = torch.tensor(
        [[-2.0, -3.0, -4.0], [-1.5, -2.5, -8.0], [-3.0, -2.0, -1.0], [-2.2, -4.4, -6.6]])
    params[0, 5 * K :, 0] = torch.tensor([[0.3, -0.7, 1.2], [-1.0, 0.0, 0.5]])
    x = torch.tensor([[[-1.0, 2 * 64 / 255 - 1, 1.0], [2 * 140 / 255 - 1, 1.0, -1.0]]],
                     dtype=torch.float64).view(1, 2, 1, 3)
    got = discretized_mix_logistic_nll(params, x)[0, 0].numpy()
    np.testing.assert_allclose(got, _ref_nll(params.numpy(), x.numpy())[0, 0], rtol=1e-9)
    np.testing.assert_allclose(got, PINNED, rtol=1e-9)


# one-off evaluation of this construction; it also equals _ref_nll above
PINNED = np.array([7.1110489059233775, 19.77998769485355, 18.73475232720473])


def test_normalised_over_all_bins() -> None:
    # sum over the 256 x 256 grid of exp(-nll) for one random mixture pixel
    rng = np.random.default_rng(3)
    K = 3
    p = _random_params(rng, 1, K, 1, 1)
    p[:, 3 * K : 5 * K] = rng.uniform(-3.5, -1.0, (1, 2 * K, 1, 1))  # away from the pdf branch
    grid = torch.linspace(-1, 1, NB, dtype=torch.float64)
    xa, xb = torch.meshgrid(grid, grid, indexing="ij")
    x = torch.stack([xa.flatten(), xb.flatten()]).T.reshape(-1, 2, 1, 1)
    params = torch.from_numpy(p).expand(x.shape[0], -1, -1, -1)
    total = torch.exp(-discretized_mix_logistic_nll(params, x)).sum().item()
    assert total == pytest.approx(1.0, abs=1e-5)


def test_bits_per_dim_formula() -> None:
    assert nats_to_bits_per_dim(2 * math.log(2.0) * 10, 10) == pytest.approx(2.0)
    rng = np.random.default_rng(4)
    params = torch.from_numpy(_random_params(rng, 2, 2, 3, 3))
    x = torch.from_numpy(_grid_x((2, 2, 3, 3), rng))
    bpd = mixture_nll_bits_per_dim(params, x).item()
    want = _ref_nll(params.numpy(), x.numpy()).sum() / (2 * 2 * 3 * 3 * math.log(2.0))
    assert bpd == pytest.approx(want, rel=1e-9)


# ---------------------------------------------------------------- sampling


def _pixel_params(seed: int, K: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = np.empty(6 * K)
    p[:K] = rng.normal(0, 1.0, K)
    p[K : 3 * K] = rng.uniform(-0.9, 0.9, 2 * K)
    p[3 * K : 5 * K] = rng.uniform(-3.5, -2.0, 2 * K)  # a few bins to tens of bins wide
    p[5 * K :] = rng.uniform(-1.5, 1.5, K)
    return p


def _bin_index(v: torch.Tensor) -> torch.Tensor:
    return torch.round((v + 1.0) * (NB - 1) / 2.0).long()


def _joint_pmf_from_nll(p: np.ndarray) -> np.ndarray:
    grid = torch.linspace(-1, 1, NB, dtype=torch.float64)
    xa, xb = torch.meshgrid(grid, grid, indexing="ij")
    x = torch.stack([xa.flatten(), xb.flatten()]).T.reshape(-1, 2, 1, 1)
    params = torch.from_numpy(p).view(1, -1, 1, 1).expand(x.shape[0], -1, -1, -1)
    return torch.exp(-discretized_mix_logistic_nll(params, x)).view(NB, NB).numpy()


def _draw(p: np.ndarray, n: int, seed: int, **kw) -> np.ndarray:
    params = torch.from_numpy(p).view(1, -1, 1, 1).expand(n, -1, -1, -1)
    g = torch.Generator().manual_seed(seed)
    s = sample_discretized_mix_logistic(params, generator=g, **kw)
    assert s.shape == (n, 2, 1, 1) and s.min() >= -1 and s.max() <= 1
    idx = _bin_index(s[:, :, 0, 0])
    counts = torch.zeros(NB * NB, dtype=torch.float64)
    counts.index_add_(0, idx[:, 0] * NB + idx[:, 1], torch.ones(n, dtype=torch.float64))
    return counts.view(NB, NB).numpy()


def _chisq_pvalue(counts: np.ndarray, pmf: np.ndarray) -> float:
    """Pearson chi-square over the cells with expected count >= 5, the rest pooled."""
    n = counts.sum()
    exp_c = pmf.flatten() * n
    obs = counts.flatten()
    big = exp_c >= 5
    e = np.append(exp_c[big], exp_c[~big].sum())
    o = np.append(obs[big], obs[~big].sum())
    e = e * o.sum() / e.sum()  # pmf sums to 1 up to ~1e-12; keep scipy's sum check happy
    return float(stats.chisquare(o, e).pvalue)


N_DRAWS = 200_000


def _min_bin_pvalue(counts: np.ndarray, pmf: np.ndarray) -> float:
    """Smallest two-sided exact binomial p-value over the bins (count ~ Bin(n, pmf))."""
    n = int(counts.sum())
    c, q = counts.flatten(), np.clip(pmf.flatten(), 0.0, 1.0)
    upper = stats.binom.sf(c - 1, n, q)  # P(X >= c)
    lower = stats.binom.cdf(c, n, q)  # P(X <= c)
    return float(np.minimum(1.0, 2 * np.minimum(upper, lower)).min())


def test_discrete_samples_follow_exp_minus_nll() -> None:
    p = _pixel_params(5)
    pmf = _joint_pmf_from_nll(p)
    counts = _draw(p, N_DRAWS, seed=0, n_bins=NB)
    # fixed seed: deterministic; a correct sampler gives p ~ U(0,1), we allow 1e-3
    assert _chisq_pvalue(counts, pmf) > 1e-3
    # every single bin: exact two-sided binomial test, Bonferroni over the bins
    assert _min_bin_pvalue(counts, pmf) * NB * NB > 1e-3
    # power: the same counts against a mixture without the a -> b coefficient fail
    q = p.copy()
    q[5 * 3 :] = 0.0
    assert _chisq_pvalue(counts, _joint_pmf_from_nll(q)) < 1e-6


def _continuous_pmf(p: np.ndarray, sub: int = 32) -> np.ndarray:
    """The joint bin pmf of the continuous (PixelCNN++) sampler by quadrature.

    a is continuous (clamped to [-1, 1]); b's mean moves with that continuous a, so
    P(i, j) = sum_k w_k int_{a in bin i} p_k(a) P_k(b in bin j | a) da, with the
    clamped tails of a as point masses at -1 and +1.
    """
    K = p.size // 6
    w = np.exp(log_softmax(p[:K]))
    edges_b = np.concatenate([[-np.inf], np.linspace(-1, 1, NB)[:-1] + HALF, [np.inf]])
    pmf = np.zeros((NB, NB))
    # quadrature nodes in (-1, 1): sub midpoints per half bin-width slice
    n_nodes = (NB - 1) * sub
    t = -1.0 + (np.arange(n_nodes) + 0.5) * (2.0 / n_nodes)
    dt = 2.0 / n_nodes
    bin_of_t = np.round((t + 1) * (NB - 1) / 2).astype(int)
    for k in range(K):
        mu_a, mu_b = p[K + k], p[2 * K + k]
        s_a, s_b = np.exp(max(p[3 * K + k], -7)), np.exp(max(p[4 * K + k], -7))
        c = np.tanh(p[5 * K + k])
        a_vals = np.concatenate([[-1.0], t, [1.0]])
        a_mass = np.concatenate([
            [expit((-1 - mu_a) / s_a)],
            stats.logistic.pdf(t, mu_a, s_a) * dt,
            [1 - expit((1 - mu_a) / s_a)],
        ])
        a_bin = np.concatenate([[0], bin_of_t, [NB - 1]])
        cdf = expit((edges_b[None, :] - (mu_b + c * a_vals)[:, None]) / s_b)  # (nodes, NB+1)
        pb = np.diff(cdf, axis=1)  # (nodes, NB)
        np.add.at(pmf, a_bin, w[k] * a_mass[:, None] * pb)
    return pmf


def test_continuous_samples_follow_quadrature() -> None:
    p = _pixel_params(6)
    pmf = _continuous_pmf(p)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-4)
    counts = _draw(p, N_DRAWS, seed=1)
    assert _chisq_pvalue(counts, pmf / pmf.sum()) > 1e-3
    # and its a-marginal is exactly the discrete one
    pa = _joint_pmf_from_nll(p).sum(axis=1)
    ca = counts.sum(axis=1)
    assert stats.chisquare(ca[pa * N_DRAWS >= 5],
                           (pa * N_DRAWS)[pa * N_DRAWS >= 5] * ca[pa * N_DRAWS >= 5].sum()
                           / (pa * N_DRAWS)[pa * N_DRAWS >= 5].sum()).pvalue > 1e-3


def test_temperature_scales_logits_and_scales() -> None:
    p = _pixel_params(7)
    K = 3
    T = 0.6
    q = p.copy()
    q[:K] = p[:K] / T
    q[3 * K : 5 * K] = p[3 * K : 5 * K] + math.log(T)
    counts = _draw(p, N_DRAWS, seed=2, n_bins=NB, temperature=T)
    assert _chisq_pvalue(counts, _joint_pmf_from_nll(q)) > 1e-3
    assert _chisq_pvalue(counts, _joint_pmf_from_nll(p)) < 1e-6


def test_temperature_zero_is_greedy() -> None:
    K = 2
    p = torch.zeros(1, 6 * K, 1, 1, dtype=torch.float64)
    p[0, :K, 0, 0] = torch.tensor([0.1, 2.0])
    p[0, K : 3 * K, 0, 0] = torch.tensor([0.9, 0.3, -0.9, -0.2])  # mean_a, mean_b
    p[0, 3 * K : 5 * K, 0, 0] = -3.0
    p[0, 5 * K :, 0, 0] = torch.tensor([0.0, math.atanh(0.5)])
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    s = sample_discretized_mix_logistic(p, generator=g, temperature=0.0)
    assert torch.equal(g.get_state(), state)  # no random numbers used
    assert s[0, :, 0, 0].tolist() == pytest.approx([0.3, -0.2 + 0.5 * 0.3])
    # and small temperatures concentrate there
    many = sample_discretized_mix_logistic(p.expand(2000, -1, -1, -1), temperature=0.01,
                                           generator=torch.Generator().manual_seed(1))
    assert (many[:, :, 0, 0] - s[0, :, 0, 0]).abs().max() < 0.05


def test_seeded_generator_reproducible() -> None:
    rng = np.random.default_rng(8)
    params = torch.from_numpy(_random_params(rng, 3, 4, 5, 6)).float()
    s1 = sample_discretized_mix_logistic(params, generator=torch.Generator().manual_seed(11))
    s2 = sample_discretized_mix_logistic(params, generator=torch.Generator().manual_seed(11))
    s3 = sample_discretized_mix_logistic(params, generator=torch.Generator().manual_seed(12))
    assert s1.dtype == torch.float32 and s1.shape == (3, 2, 5, 6)
    assert torch.equal(s1, s2)
    assert not torch.equal(s1, s3)
