"""``iizuka2016``: Let there be Color! (Iizuka, Simo-Serra, Ishikawa; SIGGRAPH 2016).

Network (Sec. 3, Fig. 2, Table 1): four parts sharing the low-level features.

- low-level features: six 3x3 convolutions, widths 64/128/128/256/256/512, strides
  2/1/2/1/2/1 (1/8 of the input);
- mid-level features: two 3x3 convolutions, 512 and 256;
- global features: four 3x3 convolutions of 512 (strides 2/1/2/1) and three fully
  connected layers 1024/512/256; the classification network reads the 512 layer
  (fully connected 256, then one logit per class);
- fusion layer: the 256-vector of the global features copied to every position of the
  mid-level map, concatenated, and a 1x1 convolution to 256 (Eq. 1);
- colorization network: convolutions 128, x2 nearest upsampling, 64, 64, x2, 32, then a
  sigmoid convolution to ab in [0,1] (``(ab + 128) / 256`` here), at half the input
  resolution, upsampled bilinearly to the input size.

Every convolution but the output is followed by BatchNorm and ReLU (the paper's "batch
normalization" after each layer). The paper feeds the global path a 224x224 rescaled copy
and the local path the full image; this port rescales every input to ``input_size``
(224 at paper scale, the paper's training size), where both paths share one pass.

Loss (Eq. 2): ``||ab - ab*||^2`` (mean squared error on the normalised chroma, at the
output's half resolution against the area-downsampled target) plus ``alpha`` times the
classification loss, ``alpha = 1/300``. Deviation (documented choice): the paper trains the
classifier on Places scene labels (one class per image, cross-entropy); the datasets here
have segmentation masks, so the labels are the classes PRESENT in the mask (ignore label
255 excluded, background included), a multi-label target trained with binary
cross-entropy summed over classes (mean over images).

Inference: one forward pass; the sigmoid output mapped back to Lab ab. Deterministic.

Paper-scale settings (``configs/iizuka2016-paper.toml``): 224x224 input, the widths
above, Adadelta (rho 0.95, lr 1.0), batch 128, about 200k iterations on Places (2.3M
images). Deviations: no Places data or pretraining (nothing is downloaded), labels from
masks as above, and the toy config (``iizuka2016-toy.toml``) divides the widths by 8 and
uses a 64 px input with Adam (Adadelta at lr 1 learns too slowly in a few CPU epochs).
Against ``colorize.lua`` (satoshiiizuka/siggraph2016_colorization): the network reads
Y of YUV in [0, 1] and maps its sigmoid output to ab in [-100, 100]; here L normalised
by ``psc_eval.color`` and [-128, 128] (the harness's Lab; docs/baselines.md). The paper
config makes the paper's ~200k updates on VOC train_aug (``REFERENCE_UPDATES``).

Toy config: Polyak averaging at 0.999 (weights and norm statistics), which the reference
does not do; why: docs/baselines.md, "Weight averaging (toy configs, all six)".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from psc_eval.color import normalize_ab, normalize_L
from psc_eval.data.base import IGNORE_INDEX
from psc_eval.methods import Method, config_files
from psc_eval.training import Config, TrainConfig, TrainMethod, make_optimizer

from . import common

NAME = "iizuka2016"
# Sec. 3.4: about 200k iterations of batch 128 (11 epochs of Places' 2.3M images); the
# paper config gives the epochs that make as many updates on VOC train_aug.
REFERENCE_UPDATES = 200_000
AB_OFFSET, AB_RANGE = 128.0, 256.0  # chroma to the sigmoid's [0,1]


@dataclass
class IizukaConfig:
    """``[model]`` of an iizuka2016 config (widths of Table 1)."""

    input_size: int = 224
    low: tuple[int, ...] = (64, 128, 128, 256, 256, 512)
    mid: tuple[int, int] = (512, 256)
    glob_conv: tuple[int, ...] = (512, 512, 512, 512)
    glob_fc: tuple[int, int, int] = (1024, 512, 256)
    class_hidden: int = 256
    fusion: int = 256
    color: tuple[int, int, int, int] = (128, 64, 64, 32)
    num_classes: int = 21  # overwritten by the dataset's class count when training
    alpha: float = 1.0 / 300.0  # weight of the classification loss (Eq. 2)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1),
                         nn.BatchNorm2d(cout), nn.ReLU(True))


class IizukaNet(nn.Module):
    """L (B,1,S,S) in [0,100] -> (ab in [0,1] at S/2, class logits)."""

    def __init__(self, c: IizukaConfig):
        super().__init__()
        strides = (2, 1, 2, 1, 2, 1)
        chans = (1, *c.low)
        self.low = nn.Sequential(*[_conv(chans[i], chans[i + 1], strides[i]) for i in range(6)])
        self.mid = nn.Sequential(_conv(c.low[-1], c.mid[0]), _conv(c.mid[0], c.mid[1]))
        g = (c.low[-1], *c.glob_conv)
        self.glob_conv = nn.Sequential(*[_conv(g[i], g[i + 1], (2, 1, 2, 1)[i]) for i in range(4)])
        side = -(-c.input_size // 32)  # 5 stride-2 layers
        f1, f2, f3 = c.glob_fc
        self.glob_fc1 = nn.Sequential(nn.Linear(c.glob_conv[-1] * side * side, f1), nn.ReLU(True))
        self.glob_fc2 = nn.Sequential(nn.Linear(f1, f2), nn.ReLU(True))
        self.glob_fc3 = nn.Sequential(nn.Linear(f2, f3), nn.ReLU(True))
        self.classifier = nn.Sequential(nn.Linear(f2, c.class_hidden), nn.ReLU(True),
                                        nn.Linear(c.class_hidden, c.num_classes))
        self.fusion = nn.Sequential(nn.Conv2d(c.mid[1] + f3, c.fusion, 1), nn.ReLU(True))
        a, b, d, e = c.color
        self.color1 = _conv(c.fusion, a)
        self.color2 = nn.Sequential(_conv(a, b), _conv(b, d))
        self.color3 = _conv(d, e)
        self.out = nn.Conv2d(e, 2, 3, padding=1)

    def forward(self, L: Tensor) -> tuple[Tensor, Tensor]:
        low = self.low(normalize_L(L))  # (B,512,S/8,S/8)
        mid = self.mid(low)  # (B,256,S/8,S/8)
        g = self.glob_fc2(self.glob_fc1(self.glob_conv(low).flatten(1)))  # (B,512)
        logits = self.classifier(g)
        g = self.glob_fc3(g)  # (B,256)
        fused = self.fusion(torch.cat([mid, g[:, :, None, None].expand(-1, -1, *mid.shape[-2:])],
                                      1))
        x = F.interpolate(self.color1(fused), scale_factor=2, mode="nearest")
        x = F.interpolate(self.color2(x), scale_factor=2, mode="nearest")
        return torch.sigmoid(self.out(self.color3(x))), logits  # (B,2,S/2,S/2), (B,C)


def present_classes(mask: Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX
                    ) -> Tensor:
    """(B,H,W) masks -> (B,C) float multi-hot labels of the classes present."""
    B = mask.shape[0]
    m = mask.reshape(B, -1)
    valid = (m != ignore_index) & (m >= 0) & (m < num_classes)
    y = torch.zeros(B, num_classes, device=mask.device)
    rows = torch.arange(B, device=mask.device)[:, None].expand_as(m)
    y[rows[valid], m[valid]] = 1.0
    return y


def iizuka_loss(pred: Tensor, logits: Tensor, ab: Tensor, mask: Tensor | None,
                alpha: float) -> dict[str, Tensor]:
    """Eq. 2: MSE of the [0,1] chroma + alpha * multi-label BCE of the present classes."""
    target = (F.adaptive_avg_pool2d(ab.float(), pred.shape[-2:]) + AB_OFFSET) / AB_RANGE
    mse = F.mse_loss(pred.float(), target)
    terms = {"mse": mse}
    if mask is not None and mask.numel():
        y = present_classes(mask, logits.shape[1])
        cls = F.binary_cross_entropy_with_logits(logits.float(), y, reduction="sum") / len(y)
        terms["cls"] = cls
        terms["total"] = mse + alpha * cls
    else:
        terms["total"] = mse
    return terms


class IizukaMethod(TrainMethod):
    model_config = IizukaConfig
    # plateau rule: the validation total, Eq. 2 (the colour MSE dominates: alpha = 1/300)
    plateau_metric = "total"

    def __init__(self, net: IizukaNet, cfg: IizukaConfig, t: TrainConfig):
        self.model, self.cfg, self.t = net, cfg, t

    @classmethod
    def prepare(cls, name: str, cfg: Config, train_ds: Any) -> None:
        # the classifier's width (saved in the config) is the dataset's class count
        cfg.model.num_classes = int(train_ds.num_classes)

    @classmethod
    def build(cls, name: str, cfg: Config, train_ds: Any) -> IizukaMethod:
        return cls(IizukaNet(cfg.model), cfg.model, cfg.train)

    def configure_optimizers(self, total_steps: int):
        return [make_optimizer(self.model.parameters(), self.t)]

    def training_step(self, model, batch, *, opt_index, generator):
        pred, logits = model(batch["L"])
        return iizuka_loss(pred, logits, batch["ab"], batch.get("mask"), self.cfg.alpha)


class Iizuka2016(common.BaselineColorizer):
    """Iizuka et al. 2016 as a colorizer (deterministic)."""

    name = NAME
    model_cls = IizukaConfig
    stochastic = False

    def build_net(self, model_cfg: IizukaConfig) -> nn.Module:
        return IizukaNet(model_cfg)

    def sample(self, L: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
        pred, _ = self.net(L)
        return normalize_ab(pred * AB_RANGE - AB_OFFSET)


METHOD = Method(
    NAME, Iizuka2016, "global + local features fused, MSE + classification (Iizuka et al. 2016)",
    trainable=IizukaMethod, configs=config_files(__file__, f"{NAME}-"),
    label="Iizuka et al. (2016)", group="single", paper_table3=(67.6, 24.20), paper_table4=88.61)
