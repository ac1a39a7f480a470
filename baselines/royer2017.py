"""``royer2017``: PIC, Probabilistic Image Colorization (Royer, Kolesnikov, Lampert; BMVC 2017).

PIC is an embedding network on the gray image plus a conditional PixelCNN++ over the
chroma at a quarter of the input resolution, trained jointly; the paper under test
(Zhao et al.) builds its f and g on it. Read against the reference code
(ameroyer/PIC ``models.py``, ``main.py``, ``imagenet.sh``), PIC **is** the
``psc-purple`` variant of ``psc_eval.models`` (f + g, no segmentation branch):

- embedding: ``EmbeddingImagenet`` = a 3x3 conv (64) and gated residual blocks in
  five stages of widths 64/128/256/512/512 with 2/2/2/3/3 blocks, strides 1/2/2/1/1,
  dilations 1/1/1/2/4, then a 3x3 conv to 160 channels: exactly Table 1 of Zhao et al.,
  i.e. ``PSCNet``'s f with ``emb_channels = 160``;
- decoder: ``PIColorization`` = PixelCNN++ vertical / horizontal stacks of ``l = 4``
  gated blocks, 160 filters, the embedding entering every block (``a=embedding`` and
  ``a=concat(u, embedding)``): ``ConditionalPixelCNNpp`` (``cond_proj`` of the
  embedding in every block, a 1x1 skip from u into ul: the same function class);
- loss: ``bits_per_dim + bits_per_dim_embedding``, the decoder's mixture NLL plus the
  embedding's first channels read as a per-pixel mixture (no autoregression), weight
  1 : 1; ``psc-purple``'s Eq. 6 without L_seg is the same sum (``L_gen_bpd`` +
  ``L_emb_bpd``, bits per chroma value);
- resolution: 128 px input, chroma downsampled by 4 (``--downsample 4``) to 32x32;
  sampling in raster order, upsampled and joined with the original L.

So this module builds the network from ``psc_eval.models`` (no second PixelCNN) and
implements only what differs in PIC's published settings (``configs/royer2017-paper.toml``,
from ``imagenet.sh`` and ``main.py``'s defaults):

- Adam epsilon 1e-6 (psc: 1e-8), per-step learning-rate decay 0.99999 (psc: constant),
  learning rate 1.6e-4 with batch 16 per GPU on 4 GPUs (psc: 1e-3, batch 32), Polyak
  decay 0.999 (psc: 0.9995), dropout 0.5 in every gated block of the embedding and
  the decoder (psc: none), 150 epochs (``main.py`` default; ``imagenet.sh`` sets none);
- augmentation: a random horizontal flip of the whole batch with probability 1/2
  (``main.py``: one coin per batch), drawn here from the loop's per-step generator;
  ``psc-purple`` has no augmentation.

Deviations from PIC, each inherited from ``psc_eval.models`` (see ``models/network.py``):
the mixture uses the 6K layout (one a -> b coefficient) instead of PIC's 8K Lab layout
with extra, unused coefficient channels (the same distribution); no weight
normalisation or data-dependent initialisation (PyTorch default init, gated blocks'
output conv scaled by 0.1); the gray input gets no channel of ones before the first
embedding convolution (PIC pads it; zero padding of normalised L is distinguishable
enough); Lab normalisation is the project's one (``psc_eval.color``), not PIC's.
The target chroma is area-downsampled by 4 (from ``psc_eval.models``); PIC's
``utils.py`` ``downsample_tf`` calls TF1's ``resize_bilinear``, which without half-pixel
centres reads pixel (4i, 4j) at a factor of 4: a point sample. Kept: royer2017 stays
psc-purple with PIC's settings (the ablation the paper compares), and the area mean does
not alias (docs/baselines.md). The toy config (``royer2017-toy.toml``) is ``psc-purple``'s toy size with PIC's
optimiser settings and flips, learning rate 1e-3 and no dropout: a 5-epoch CPU run
at PIC's 1.6e-4 and dropout 0.5 learns almost nothing.

Sampling: ``colorize(L, n, generator=g)`` embeds each image once and draws ``n``
raster-order samples with the cached sampler (``psc_eval.models.sampling``), all
random numbers from ``g``; evaluation uses the Polyak-averaged weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from psc_eval.models.config import ModelConfig, PSCTrainConfig, check_config, config_from_checkpoint
from psc_eval.models.method import PSCMethod
from psc_eval.models.network import PSCNet
from psc_eval.models.variants import PSCBase

from psc_eval.checkpoint import checkpoint_info, load_state_dict_checked, require_keys
from psc_eval.colorizer import RANDOM_WEIGHTS
from psc_eval.errors import ConfigError, WeightsError
from psc_eval.methods import Method, config_files
from psc_eval.training import Config, load_config

from . import common

NAME = "royer2017"
# PIC main.py: 150 epochs (-n) over ImageNet, kept as passes (imagenet.sh sets no count).
REFERENCE_EPOCHS = 150


@dataclass
class PICTrainConfig(PSCTrainConfig):
    """psc-purple's ``[train]`` table plus what PIC's training adds."""

    hflip: bool = True  # main.py: flip the whole batch left-right with probability 1/2


CONFIGS = config_files(__file__, f"{NAME}-")


def check_pic_config(cfg: Config, where: str) -> None:
    check_config(cfg, where)
    if cfg.model.fusion != "none":
        raise ConfigError(f"royer2017 has no segmentation branch, in {where}, "
                          "remove model.fusion")


def load_pic_config(name_or_path: str, overrides: dict[str, Any] | None = None) -> Config:
    """``toy`` / ``paper`` (baselines/configs/royer2017-*.toml) or a TOML path: the
    ``[model]``, ``[model.generator]`` and ``[train]`` tables of ``psc_eval.models``'
    configs (``[train]`` with PIC's ``hflip``)."""
    return load_config(name_or_path, CONFIGS, ModelConfig, PICTrainConfig, overrides,
                       check_pic_config)


def build_pic_net(cfg: Config) -> PSCNet:
    """f + g, no h (``psc-purple``'s network); L_emb and L_gen weighted 1 : 1."""
    w_emb, _, w_gen = cfg.train.loss_weights
    return PSCNet(cfg.model, num_classes=1, with_seg=False, loss_weights=(w_emb, 0.0, w_gen))


class PICMethod(PSCMethod):
    """PSCMethod (Adam with PIC's epsilon and per-step decay, Polyak averaging) plus
    PIC's random horizontal flip of the batch."""

    train_config = PICTrainConfig

    @classmethod
    def check_config(cls, cfg: Config, where: str) -> None:
        check_pic_config(cfg, where)

    @classmethod
    def prepare(cls, name: str, cfg: Config, train_ds: Any) -> None:
        pass  # no variant to resolve: f + g

    @classmethod
    def build(cls, name: str, cfg: Config, train_ds: Any) -> PICMethod:
        return cls(build_pic_net(cfg), cfg)

    def training_step(self, model, batch, *, opt_index, generator):
        if self.cfg.hflip and bool(torch.rand((), generator=generator) < 0.5):
            batch = {**batch, "L": batch["L"].flip(-1), "ab": batch["ab"].flip(-1)}
        return model(batch)


class Royer2017(PSCBase):
    """PIC as a colorizer: the psc-purple network, loaded from a royer2017 checkpoint."""

    name = weights_variant = NAME

    def _load_net(self, dataset: str, weights: str | Path | None):
        ck, path = common.load_trained(NAME, dataset, weights)
        hint = f"pass a checkpoint of {NAME!r} (psc-eval train --colorizer {NAME})"
        require_keys(ck, ("ema",), path, hint)
        try:
            cfg = config_from_checkpoint(ck["config"], str(path))
        except (KeyError, TypeError, AttributeError):
            raise WeightsError(f"checkpoint's config is incomplete, {path}, {hint}") from None
        net = build_pic_net(cfg)
        load_state_dict_checked(net, ck["ema"], path, f"{NAME}'s averaged weights", hint)
        self.checkpoint_info = checkpoint_info(ck, path)
        return net, ck["config"], int(ck.get("num_classes", 1)), path

    def _random_net(self, dataset: str, config: str, num_classes: int | None, seed: int):
        cfg = load_pic_config(str(config))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = build_pic_net(cfg)
        return net, {**cfg.to_dict(), "weights": RANDOM_WEIGHTS, "init_seed": seed}, 1


METHOD = Method(
    NAME, Royer2017, "diverse: PIC, gray embedding + conditional PixelCNN++ (Royer et al. 2017)",
    trainable=PICMethod, configs=CONFIGS, label="Royer et al. (2017)", group="diverse",
    paper_table4=89.89,
    decoding="PixelCNN++ sampling at temperature 1: the reference's (ameroyer/PIC)")
