"""Registry-wide colorizer contract (timm-style): every name in ``list_colorizers()``.

Each registered colorizer is built with ``weights="random"`` (no file on disk, the
convention of ``psc_eval.colorizer.Colorizer``) and must return (B, n, 2, H, W) float ab
inside [AB_LOW, AB_HIGH], leave L untouched, reproduce its output from a seeded
generator, vary with the generator when stochastic and refuse ``n_samples > 1`` when not.
A colorizer registered later is covered without editing this file; one that needs
options to be small enough here (its size config) adds them to ``SMALL``, keyed by the
module of its class.
"""

from __future__ import annotations

import pytest
import torch
from fixtures_data import tiny_toml

from psc_eval.colorize import check_ab, run_colorizer
from psc_eval.colorizer import (
    AB_HIGH,
    AB_LOW,
    RANDOM_WEIGHTS,
    Colorizer,
    build_colorizer,
    list_colorizers,
    resolve_colorizer_class,
)
from psc_eval.errors import PscError

B, H, W = 2, 16, 16
IDS = [f"img{i}" for i in range(B)]

TINY_TOML = tiny_toml()


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    p = tmp_path_factory.mktemp("contract") / "tiny.toml"
    p.write_text(TINY_TOML)
    return str(p)


def small_options(name: str, tiny_config: str) -> dict:
    """Options that make a colorizer small, by the module of its class."""
    SMALL = {"psc_eval.models.variants": {"config": tiny_config},
             # PIC reads psc_eval.models' config tables: the same tiny network
             "psc_eval.baselines.royer2017": {"config": tiny_config}}
    return SMALL.get(getattr(resolve_colorizer_class(name), "__module__", ""), {})


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(123)
    L = torch.rand(B, 1, H, W, generator=g) * 100.0
    ab = (torch.rand(B, 2, H, W, generator=g) * 2 - 1) * 100.0
    return L, ab


@pytest.fixture(scope="module", params=sorted(list_colorizers()))
def colorizer(request, tiny_config):
    name = request.param
    return name, build_colorizer(name, "toy", weights=RANDOM_WEIGHTS, device="cpu",
                                 options=small_options(name, tiny_config))


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_builds_with_random_weights_and_says_so(colorizer):
    name, c = colorizer
    assert isinstance(c, Colorizer) and c.name == name
    assert isinstance(c.stochastic, bool)
    # never mistaken for a trained model: no weights hash, "weights": "random" in its config
    assert getattr(c, "weights_sha256", None) is None
    config = getattr(c, "config", None)
    if config is not None:
        assert config["weights"] == RANDOM_WEIGHTS


def test_output_shape_dtype_and_gamut(colorizer, inputs):
    name, c = colorizer
    L, ab = inputs
    n = 2 if c.stochastic else 1
    out = run_colorizer(c, L, ab, n_samples=n, generator=gen(0))
    assert out.shape == (B, n, 2, H, W)
    assert out.is_floating_point()
    assert torch.isfinite(out).all()
    assert float(out.min()) >= AB_LOW and float(out.max()) <= AB_HIGH
    check_ab(out, IDS, n, name)  # the harness's own check agrees


def test_L_is_never_altered(colorizer, inputs):
    _, c = colorizer
    L, ab = inputs
    L_in, ab_in = L.clone(), ab.clone()
    run_colorizer(c, L_in, ab_in, generator=gen(0))
    assert torch.equal(L_in, L) and torch.equal(ab_in, ab)


def test_seeded_generator_reproduces(colorizer, inputs):
    _, c = colorizer
    L, ab = inputs
    a = run_colorizer(c, L, ab, generator=gen(7))
    b = run_colorizer(c, L, ab, generator=gen(7))
    assert torch.equal(a, b)


def test_generator_matters_only_when_stochastic(colorizer, inputs):
    name, c = colorizer
    L, ab = inputs
    a = run_colorizer(c, L, ab, generator=gen(0))
    b = run_colorizer(c, L, ab, generator=gen(1))
    if c.stochastic:
        assert not torch.equal(a, b), f"{name} is stochastic but ignores its generator"
    else:
        assert torch.equal(a, b)
        with pytest.raises(PscError, match="deterministic"):
            run_colorizer(c, L, ab, n_samples=2, generator=gen(0))


def test_random_weights_are_seeded(tiny_config, inputs):
    """Two random builds with one seed are the same network; another seed is another."""
    L, _ = inputs
    opts = {"config": tiny_config}
    c0, c1, c2 = (build_colorizer("ours", "toy", weights=RANDOM_WEIGHTS,
                                  options={**opts, "seed": s}) for s in (0, 0, 1))
    out = [c.colorize(L, generator=gen(0)) for c in (c0, c1, c2)]
    assert torch.equal(out[0], out[1]) and not torch.equal(out[0], out[2])
    assert c0.config["init_seed"] == 0 and c0.num_classes == 10
