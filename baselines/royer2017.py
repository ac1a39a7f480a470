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
The toy config (``royer2017-toy.toml``) is ``psc-purple``'s toy size with PIC's
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
from psc_eval.models.colorizer import _PSCBase
from psc_eval.models.commands import PSCMethod
from psc_eval.models.config import Config, config_from_checkpoint, config_from_dict
from psc_eval.models.config import dataclass_from_dict as _from_dict
from psc_eval.models.network import PSCNet

from psc_eval.checkpoint import load_state_dict_checked, require_keys
from psc_eval.colorizer import RANDOM_WEIGHTS
from psc_eval.errors import ConfigError, WeightsError
from psc_eval.training import TrainResult

from . import common

NAME = "royer2017"


@dataclass
class PICOptions:
    """The ``[pic]`` table: what PIC's training adds to psc-purple's."""

    hflip: bool = True  # main.py: flip the whole batch left-right with probability 1/2


def load_pic_config(name_or_path: str, overrides: dict[str, Any] | None = None
                    ) -> tuple[Config, PICOptions]:
    """``toy`` / ``paper`` (baselines/configs/royer2017-*.toml) or a TOML path: the
    ``[model]``, ``[model.generator]`` and ``[train]`` tables of ``psc_eval.models``'
    configs plus ``[pic]``."""
    path = common.config_path(NAME, name_or_path)
    raw = common.read_toml(path)
    pic = _from_dict(PICOptions, dict(raw.pop("pic", {})), str(path), prefix="pic.")
    cfg = config_from_dict(raw, str(path), overrides)
    if cfg.model.fusion != "none":
        raise ConfigError(f"royer2017 has no segmentation branch, in {path}, remove model.fusion")
    return cfg, pic


def build_pic_net(cfg: Config) -> PSCNet:
    """f + g, no h (``psc-purple``'s network); L_emb and L_gen weighted 1 : 1."""
    w_emb, _, w_gen = cfg.train.loss_weights
    return PSCNet(cfg.model, num_classes=1, with_seg=False, loss_weights=(w_emb, 0.0, w_gen))


class PICMethod(PSCMethod):
    """PSCMethod (Adam with PIC's epsilon and per-step decay, Polyak averaging) plus
    PIC's random horizontal flip of the batch."""

    def __init__(self, net: PSCNet, cfg: Config, pic: PICOptions):
        super().__init__(net, cfg)
        self.pic = pic

    def training_step(self, model, batch, *, opt_index, generator):
        if self.pic.hflip and bool(torch.rand((), generator=generator) < 0.5):
            batch = {**batch, "L": batch["L"].flip(-1), "ab": batch["ab"].flip(-1)}
        return model(batch)


def train_royer2017(
    colorizer: str = NAME, dataset: str = "toy", config: str = "toy", **options: Any,
) -> TrainResult:
    """``psc-eval train --colorizer royer2017``: the core loop on f + g with PIC's settings."""
    o = common.TrainOptions(**options)
    overrides = o.overrides()
    cfg, pic = load_pic_config(config, overrides)
    t = cfg.train
    # models' TrainConfig has the same dataset / loop fields as TrainSettings
    ts = common.TrainSettings(epochs=t.epochs, batch_size=t.batch_size, seed=t.seed,
                              n_train=t.n_train, n_val=t.n_val, train_split=t.train_split,
                              val_split=t.val_split, workers=t.workers,
                              cache_in_memory=t.cache_in_memory)
    from psc_eval.models.config import loop_config

    saved = {**cfg.to_dict(), "pic": common.asdict_plain(pic)}
    return common.run_training(
        NAME, dataset, ts, saved, cfg.model.input_size,
        lambda _train_ds: PICMethod(build_pic_net(cfg), cfg, pic), o, loop=loop_config(t))


class Royer2017(_PSCBase):
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
        return net, ck["config"], int(ck.get("num_classes", 1)), path

    def _random_net(self, dataset: str, config: str, num_classes: int | None, seed: int):
        cfg, pic = load_pic_config(str(config))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = build_pic_net(cfg)
        saved = {**cfg.to_dict(), "pic": common.asdict_plain(pic)}
        return net, {**saved, "weights": RANDOM_WEIGHTS, "init_seed": seed}, 1


__all__ = ["PICMethod", "PICOptions", "Royer2017", "build_pic_net", "load_pic_config",
           "train_royer2017"]
