"""Causality of the generator g (paper Eq. 1: p(Y_i | Y_<i, ...)).

The output parameters at pixel (i, j) must not depend on the chroma input at
(i, j) or at any later pixel in raster order: their gradient w.r.t. those inputs
is exactly zero. Some earlier pixels must matter, or the test could not fail.
"""

from __future__ import annotations

import pytest
import torch
from psc_eval.models.pixelcnn import ConditionalPixelCNNpp, GeneratorConfig

H, W = 6, 7


pytestmark = pytest.mark.usefixtures("one_thread")


def _net(nr_resnet: int) -> ConditionalPixelCNNpp:
    torch.manual_seed(0)
    # out_init_scale=1 so that every block contributes visibly to the gradients
    cfg = GeneratorConfig(nr_filters=8, nr_resnet=nr_resnet, nr_logistic_mix=2,
                          out_init_scale=1.0)
    return ConditionalPixelCNNpp(cfg, cond_channels=3).double().eval()


def _input_grad(net: ConditionalPixelCNNpp, i: int, j: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(1, 2, H, W, generator=g, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    cond = torch.randn(1, 3, H, W, generator=g, dtype=torch.float64)
    params = net(x, cond)
    params[0, :, i, j].sum().backward()
    return x.grad[0].abs().sum(dim=0)  # (H, W)


@pytest.mark.parametrize("nr_resnet", [1, 3])
@pytest.mark.parametrize("i,j", [(0, 0), (0, 3), (2, W - 1), (3, 0), (H - 1, W - 1), (4, 2)])
def test_output_ignores_current_and_later_pixels(nr_resnet: int, i: int, j: int) -> None:
    grad = _input_grad(_net(nr_resnet), i, j)
    flat = grad.flatten()
    pos = i * W + j
    assert torch.all(flat[pos:] == 0), f"output at {(i, j)} depends on a later/own pixel"
    if pos > 0:
        # the pixel to the left (or the row above) is always in the receptive field
        assert flat[:pos].max() > 0
        prev = (i, j - 1) if j > 0 else (i - 1, j)
        assert grad[prev] > 0, f"output at {(i, j)} does not see {prev}"


def test_receptive_field_spans_rows_above() -> None:
    # with 3 block pairs the pixel above-right (i-1, j+1) is visible, as in PixelCNN++
    grad = _input_grad(_net(3), 3, 2)
    assert grad[2, 3] > 0 and grad[2, 1] > 0 and grad[3, 1] > 0


def test_first_pixel_depends_on_cond_only() -> None:
    net = _net(2)
    x = torch.zeros(1, 2, H, W, dtype=torch.float64)
    cond = torch.randn(1, 3, H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    p0 = net(x, cond)[0, :, 0, 0]
    p1 = net(torch.rand_like(x), cond)[0, :, 0, 0]
    assert torch.equal(p0, p1)
    cond2 = cond.clone()
    cond2[0, :, 0, 0] += 1.0
    assert not torch.allclose(net(x, cond2)[0, :, 0, 0], p0)
