"""DeepLab v2, ResNet-101, with the module names of kazuto1011/deeplab-pytorch.

Chen et al. (TPAMI 2017): an MSRA-style ResNet-101 (stride in the first 1x1
convolution of a stage), the last two stages dilated (2, 4) so the output stride
is 8, and an ASPP head of four 3x3 convolutions with rates 6, 12, 18, 24 whose
class scores are summed. The module tree mirrors kazuto1011/deeplab-pytorch
(``libs/models/deeplabv2.py``, ``resnet.py``, ``msc.py``) so that its published
checkpoints (e.g. ``deeplabv2_resnet101_msc-vocaug-20000.pth``, the COCO-stuff
164k / 10k ones) load without any key renaming::

    base.layer1.conv1.{conv,bn}                     stem: 7x7/2 conv, BN, ReLU, 3x3/2 max pool (ceil)
    base.layer{2..5}.block{i}.{reduce,conv3x3,increase}.{conv,bn}
    base.layer{2..5}.block1.shortcut.{conv,bn}      projection shortcut, first block only
    base.aspp.c{0..3}.{weight,bias}                 ASPP, rates 6/12/18/24, summed

``base.`` is the prefix of that repository's multi-scale wrapper (MSC), which adds
no parameters of its own.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BN_EPS = 1e-5  # the Caffe-converted weights were trained with this epsilon
RESNET101_BLOCKS = (3, 4, 23, 3)
ASPP_RATES = (6, 12, 18, 24)
MSC_SCALES = (0.5, 0.75)  # plus the full-size input: max-fused as MSC does


class ConvBnReLU(nn.Sequential):
    """Conv (no bias) -> BatchNorm -> optional ReLU, named ``conv`` / ``bn``."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, pad: int, dil: int,
                 relu: bool = True):
        super().__init__()
        self.add_module("conv", nn.Conv2d(cin, cout, k, stride, pad, dil, bias=False))
        self.add_module("bn", nn.BatchNorm2d(cout, eps=BN_EPS))
        if relu:
            self.add_module("relu", nn.ReLU())


class Bottleneck(nn.Module):
    """MSRA bottleneck: the stride sits in ``reduce`` (1x1), dilation in ``conv3x3``."""

    def __init__(self, cin: int, cout: int, stride: int, dilation: int, project: bool):
        super().__init__()
        mid = cout // 4
        self.reduce = ConvBnReLU(cin, mid, 1, stride, 0, 1)
        self.conv3x3 = ConvBnReLU(mid, mid, 3, 1, dilation, dilation)
        self.increase = ConvBnReLU(mid, cout, 1, 1, 0, 1, relu=False)
        self.shortcut = ConvBnReLU(cin, cout, 1, stride, 0, 1, relu=False) if project \
            else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = self.increase(self.conv3x3(self.reduce(x)))
        return F.relu(h + self.shortcut(x))


class ResLayer(nn.Sequential):
    def __init__(self, n: int, cin: int, cout: int, stride: int, dilation: int):
        super().__init__()
        for i in range(n):
            self.add_module(
                f"block{i + 1}",
                Bottleneck(cin if i == 0 else cout, cout, stride if i == 0 else 1, dilation, i == 0),
            )


class Stem(nn.Sequential):
    def __init__(self, cout: int = 64):
        super().__init__()
        self.add_module("conv1", ConvBnReLU(3, cout, 7, 2, 3, 1))
        # ceil_mode as in the Caffe prototxt: a 513 input gives a 65x65 output map
        self.add_module("pool", nn.MaxPool2d(3, 2, 1, ceil_mode=True))


class ASPP(nn.Module):
    """Four parallel dilated 3x3 convolutions straight to class scores, summed (DeepLab v2)."""

    def __init__(self, cin: int, num_classes: int, rates: tuple[int, ...] = ASPP_RATES):
        super().__init__()
        for i, r in enumerate(rates):
            conv = nn.Conv2d(cin, num_classes, 3, 1, padding=r, dilation=r, bias=True)
            nn.init.normal_(conv.weight, mean=0.0, std=0.01)
            nn.init.zeros_(conv.bias)
            self.add_module(f"c{i}", conv)

    def forward(self, x: Tensor) -> Tensor:
        return sum(stage(x) for stage in self.children())


class DeepLabV2(nn.Sequential):
    """(B,3,H,W) preprocessed BGR -> (B,C,H',W') logits at output stride 8."""

    def __init__(self, num_classes: int, blocks: tuple[int, ...] = RESNET101_BLOCKS,
                 rates: tuple[int, ...] = ASPP_RATES):
        super().__init__()
        ch = [64 * 2**p for p in range(6)]
        self.add_module("layer1", Stem(ch[0]))
        self.add_module("layer2", ResLayer(blocks[0], ch[0], ch[2], 1, 1))
        self.add_module("layer3", ResLayer(blocks[1], ch[2], ch[3], 2, 1))
        self.add_module("layer4", ResLayer(blocks[2], ch[3], ch[4], 1, 2))
        self.add_module("layer5", ResLayer(blocks[3], ch[4], ch[5], 1, 4))
        self.add_module("aspp", ASPP(ch[5], num_classes, rates))


class MSC(nn.Module):
    """Holds the network as ``base`` (the published key prefix); optional multi-scale fusion.

    With ``multiscale`` the input is also run at 0.5x and 0.75x (bilinear,
    align_corners=False), those logits are resized to the full-scale logits' size
    and the three are fused by an element-wise max (kazuto1011 ``msc.py``, eval mode).
    """

    def __init__(self, base: nn.Module, multiscale: bool = False,
                 scales: tuple[float, ...] = MSC_SCALES):
        super().__init__()
        self.base = base
        self.multiscale = multiscale
        self.scales = scales

    def forward(self, x: Tensor) -> Tensor:
        logits = self.base(x)  # (B,C,h,w)
        if not self.multiscale:
            return logits
        outs = [logits]
        for s in self.scales:
            xs = F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)
            ls = self.base(xs)
            outs.append(F.interpolate(ls, size=logits.shape[-2:], mode="bilinear",
                                      align_corners=False))
        return torch.stack(outs).amax(dim=0)


def deeplabv2_resnet101(num_classes: int, multiscale: bool = False) -> MSC:
    return MSC(DeepLabV2(num_classes), multiscale=multiscale)
