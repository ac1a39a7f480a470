"""Colorizer protocol and registry; contract tests for every colorizer buildable without weights."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import psc_eval
from psc_eval.colorize import run_colorizer
from psc_eval.colorizer import (
    Colorizer,
    GrayColorizer,
    check_L,
    list_colorizers,
    register_colorizer,
)
from psc_eval.data import get_dataset
from psc_eval.errors import PscError, UnknownNameError

REFERENCE = ["gray", "gt"]


@pytest.fixture(scope="module")
def batch():
    ds = get_dataset("toy", split="val", n_images=2)
    s = [ds[i] for i in range(2)]
    return torch.stack([x["L"] for x in s]), torch.stack([x["ab"] for x in s])


@pytest.mark.parametrize("name", REFERENCE)
def test_reference_contract(name, batch):
    L, ab = batch
    c = psc_eval.get_colorizer(name)
    assert isinstance(c, Colorizer) and c.name == name and c.stochastic is False
    out = run_colorizer(c, L, ab)
    assert out.shape == (2, 1, 2, 64, 64) and out.dtype == L.dtype
    assert torch.isfinite(out).all()
    with pytest.raises(PscError, match="deterministic"):
        run_colorizer(c, L, ab, n_samples=2)


def test_gray_is_zero_and_gt_is_the_true_chroma(batch):
    L, ab = batch
    assert torch.equal(run_colorizer(psc_eval.get_colorizer("gray"), L, ab),
                       torch.zeros(2, 1, 2, 64, 64))
    assert torch.equal(run_colorizer(psc_eval.get_colorizer("gt"), L, ab)[:, 0], ab)
    with pytest.raises(PscError, match="target_ab"):
        psc_eval.get_colorizer("gt").colorize(L)


def test_L_is_checked():
    with pytest.raises(PscError, match=r"\(B,1,H,W\)"):
        check_L(torch.zeros(1, 3, 4, 4))
    with pytest.raises(PscError, match=r"\[0, 100\]"):
        check_L(torch.full((1, 1, 4, 4), 255.0))
    with pytest.raises(PscError):
        GrayColorizer().colorize(torch.full((1, 1, 4, 4), -5.0))


def test_unknown_names_and_paths():
    with pytest.raises(UnknownNameError, match="unknown colorizer 'nope'.*psc-eval ls"):
        psc_eval.get_colorizer("nope")
    with pytest.raises(UnknownNameError, match="cannot import"):
        psc_eval.get_colorizer("no_such_module_xyz:Thing")
    with pytest.raises(UnknownNameError, match="no attribute 'Missing'"):
        psc_eval.get_colorizer("psc_eval.colorizer:Missing")
    # a user's own colorizer as module:attr
    c = psc_eval.get_colorizer("psc_eval.colorizer:GrayColorizer")
    assert c.name == "gray"


def test_register_decorator():
    @register_colorizer("test-const", description="constant chroma")
    class Const:
        name = "test-const"
        stochastic = False

        def colorize(self, L, n_samples=1, *, generator=None):
            return torch.full((L.shape[0], n_samples, 2, *L.shape[-2:]), 7.0)

    assert "test-const" in list_colorizers()
    out = psc_eval.get_colorizer("test-const").colorize(torch.zeros(1, 1, 2, 2))
    assert float(out.unique()) == 7.0


def test_importing_imports_no_model_code_and_listing_no_segmenter():
    """``import psc_eval`` (and the command line's start) imports no model or baseline: the
    method records are read when a registry is first used. Listing then imports the
    records' modules (they are declared beside their code) but no segmenter library."""
    code = (
        "import sys, psc_eval, psc_eval.cli\n"
        "plug = ('psc_eval.models', 'psc_eval.baselines')\n"
        "print([m for m in sys.modules if m.startswith(plug)])\n"
        "from psc_eval.colorizer import list_colorizers\n"
        "names = list_colorizers()\n"
        "assert 'ours' in names and 'psc-purple' in names\n"
        "print([m for m in sys.modules if m.startswith(('segmentation_models_pytorch',"
        " 'torchvision'))])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "[]"]
