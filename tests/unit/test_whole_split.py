"""Whole-split batching (issue: the cached sampler at its bound): a PixelCNN colorizer
samples several canonical batches in one call, and every batch gets exactly the chroma
of a call of its own, so metrics, caches and resumed runs do not depend on it."""

from __future__ import annotations

import pytest
import torch

from psc_eval.colorize import draw_samples, draw_samples_parts, samples_parts
from psc_eval.colorizer import get_colorizer
from psc_eval.data import collate, get_dataset


@pytest.fixture(scope="module")
def ours():
    return get_colorizer("ours", dataset="toy", weights="random", seed=3)


def _parts(ds, starts, size):
    out = []
    for s in starts:
        b = collate([ds[i] for i in range(s, s + size)])
        out.append((b["L"], b["ab"], s, b["ids"]))
    return out


@pytest.mark.parametrize("n_samples", [1, 3])
def test_parts_equal_batch_by_batch_bit_for_bit(ours, n_samples):
    assert samples_parts(ours)
    ds = get_dataset("toy", split="val")
    parts = _parts(ds, [0, 8, 16], 8)
    together = draw_samples_parts(ours, parts, n_samples, 5, "cpu", "ours")
    for (L, ab, s, ids), got in zip(parts, together):
        alone = draw_samples(ours, L, ab, n_samples, 5, s, "cpu", ids, "ours")
        assert got.shape == alone.shape == (8, n_samples, 2, 64, 64)
        assert torch.equal(got, alone)


def test_deterministic_and_plain_colorizers_go_batch_by_batch():
    gray = get_colorizer("gray")
    assert not samples_parts(gray)
    ds = get_dataset("toy", split="val")
    parts = _parts(ds, [0, 4], 4)
    out = draw_samples_parts(gray, parts, 1, 0, "cpu", "gray")
    assert all(torch.equal(o, torch.zeros_like(o)) for o in out)


def test_miou_is_the_same_with_and_without_whole_split_batching(tmp_path, monkeypatch):
    from psc_eval.models.variants import PSCBase

    from psc_eval.runner import run_eval

    calls = []
    real = PSCBase.colorize_parts

    def spy(self, Ls, n_samples=1, *, generators):
        calls.append(len(Ls))
        return real(self, Ls, n_samples, generators=generators)

    monkeypatch.setattr(PSCBase, "colorize_parts", spy)
    res = {}
    for k in (1, 16):
        s = run_eval("miou", "ours", "toy", colorizer_weights="random", limit=80,
                     batch_size=16, sample_batches=k, cache_dir=str(tmp_path / f"c{k}"),
                     out=str(tmp_path / f"o{k}"), progress=False, segmenter=None,
                     metrics="psnr")
        r = next(x for x in s.results if x.colorizer == "ours")
        res[k] = r
    assert calls == [5]  # sample_batches=16: the five batches of 16 in one call; 1: none
    assert res[1].metrics == res[16].metrics
    assert res[1].provenance["run_key"] == res[16].provenance["run_key"]


def test_a_subclass_decoding_otherwise_gets_its_own_colorize_per_part():
    from psc_eval.models.variants import PSCEmbedding

    class Stochastic(PSCEmbedding):  # overrides colorize: parts must go through it
        stochastic = True

    c = Stochastic(dataset="toy", weights="random", seed=1)
    ds = get_dataset("toy", split="val")
    parts = _parts(ds, [0, 4], 4)
    got = c.colorize_parts([p[0] for p in parts], 1,
                           generators=[torch.Generator(), torch.Generator()])
    for (L, *_), g in zip(parts, got):
        assert torch.equal(g, c.colorize(L, 1))
