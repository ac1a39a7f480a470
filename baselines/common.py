"""What the baselines' colorizers share (the diverse ``deshpande2017``, ``cao2017``,
``royer2017`` and the single-output ``zhang2016``, ``iizuka2016``, ``larsson2016``):
checkpoint loading, the network-size L and the final (B*n,2,h,w) -> (B,n,2,H,W) step.
Training needs nothing here: each baseline's ``TrainMethod`` runs on the core's one
training entry and config (``psc_eval.training``).

Configs: ``baselines/configs/<method>-<name>.toml`` for ``--config <name>`` (``toy``,
``paper``), declared in each method's record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from psc_eval.checkpoint import checkpoint_info, load_checkpoint, require_keys
from psc_eval.color import AB_MAX, AB_MIN, denormalize_ab
from psc_eval.errors import WeightsError
from psc_eval.methods import config_files
from psc_eval.paths import colorizer_dir
from psc_eval.shipped import trained_or_shipped
from psc_eval.training import LAST, TrainConfig, dataclass_from_dict, load_config

CONFIG_DIR = Path(__file__).parent / "configs"


def load_trained(name: str, dataset: str, weights: str | Path | None,
                 config: str = "toy") -> tuple[dict[str, Any], Path]:
    """The checkpoint of a trained baseline: ``weights`` or ``colorizer_dir/last.pt``;
    checked to be a colorizer checkpoint of ``name``."""
    path = Path(weights) if weights else trained_or_shipped(colorizer_dir(dataset, name) / LAST,
                                                            dataset, "colorizer", name)
    if not path.is_file():
        raise WeightsError(f"no trained weights for {name!r} on {dataset}, {path}, run: "
                           f"psc-eval train --colorizer {name} --dataset {dataset} "
                           f"--config {config}")
    hint = f"pass a checkpoint of {name!r} (psc-eval train --colorizer {name})"
    ck = require_keys(load_checkpoint(path, hint=hint), ("kind", "config"), path, hint)
    require_keys(ck, ("ema",) if "ema" in ck else ("model",), path, hint)  # shipped: ema only
    if ck.get("kind") != "colorizer" or ck.get("variant") != name:
        raise WeightsError(f"checkpoint is of {ck.get('variant')!r} (kind {ck.get('kind')!r}), "
                           f"not {name!r}, {path}, {hint}")
    if not isinstance(ck["config"], dict):
        raise WeightsError(f"checkpoint's config is damaged, {path}, {hint}")
    return ck, path


def resize_L(L: Tensor, size: int, device: torch.device) -> Tensor:
    """L at the network's input size (bilinear, antialiased), on ``device``."""
    x = L.to(device, torch.float32)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=True).clamp(0.0, 100.0)
    return x


def finish_ab(x: Tensor, L: Tensor, n: int) -> Tensor:
    """(B*n,2,h,w) normalised chroma in [-1,1] (sample i of image b at b*n + i) ->
    (B,n,2,H,W) Lab units at L's size, on L's device (bilinear upsampling)."""
    ab = denormalize_ab(x.float().clamp(-1.0, 1.0))
    if ab.shape[-2:] != L.shape[-2:]:
        ab = F.interpolate(ab, size=L.shape[-2:], mode="bilinear", align_corners=False)
    ab = ab.clamp(AB_MIN, AB_MAX)
    return ab.view(L.shape[0], n, 2, *L.shape[-2:]).to(L.device)


class BaselineColorizer:
    """A trained (or ``weights="random"``) diverse baseline behind the Colorizer protocol.

    Subclasses set ``name`` and ``model_cls`` and define :meth:`build_net` and
    :meth:`sample`. Weights: ``weights=PATH``, by default
    ``colorizer_dir(dataset, name)/last.pt`` (the Polyak-averaged weights when the run
    kept them), or ``"random"``: the network of ``config`` (``toy`` by default)
    initialised under ``torch.manual_seed(seed)``, reported with ``weights_sha256 =
    None`` and ``config["weights"] == "random"``.
    """

    name = ""
    model_cls: type = object
    train_cls: type = TrainConfig  # the [train] table of its config files
    stochastic = True
    oracle = False
    checkpoint_info: dict[str, Any] | None = None  # epoch, step, val losses (run provenance)

    def __init__(self, dataset: str = "toy", weights: str | Path | None = None,
                 device: str = "cpu", config: str = "toy", seed: int = 0, **_: Any):
        from psc_eval.checkpoint import load_state_dict_checked
        from psc_eval.colorizer import RANDOM_WEIGHTS
        from psc_eval.io import sha256_file

        self.device = torch.device(device)
        if weights == RANDOM_WEIGHTS:
            cfg = load_config(str(config), config_files(CONFIG_DIR, f"{self.name}-"),
                              self.model_cls, self.train_cls)
            model_cfg = cfg.model
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                net = self.build_net(model_cfg)
            self.config = {**cfg.to_dict(), "weights": RANDOM_WEIGHTS, "init_seed": seed}
            self.weights_path, self.weights_sha256 = None, None
        else:
            ck, path = load_trained(self.name, dataset, weights, config)
            self.checkpoint_info = checkpoint_info(ck, path)
            hint = f"pass a checkpoint of {self.name!r} (psc-eval train --colorizer {self.name})"
            try:
                model_cfg = dataclass_from_dict(self.model_cls, ck["config"]["model"], str(path),
                                                prefix="model.")
            except (KeyError, TypeError, AttributeError):
                raise WeightsError(f"checkpoint's config is incomplete, {path}, {hint}") from None
            net = self.build_net(model_cfg)
            averaged = "ema" in ck
            load_state_dict_checked(net, ck["ema"] if averaged else ck["model"], path,
                                    f"{self.name}'s {'averaged ' if averaged else ''}weights",
                                    hint)
            self.config = ck["config"]
            self.weights_path, self.weights_sha256 = str(path), sha256_file(path)
        self.model_cfg = model_cfg
        self.net = net.to(self.device).eval()

    def build_net(self, model_cfg: Any) -> torch.nn.Module:
        raise NotImplementedError

    def sample(self, L: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
        """L (B,1,S,S) in [0,100] at the input size -> (B*n,2,h,w) in [-1,1]."""
        raise NotImplementedError

    @torch.no_grad()
    def colorize(self, L: Tensor, n_samples: int = 1, *,
                 generator: torch.Generator | None = None) -> Tensor:
        from psc_eval.colorizer import check_L, check_n_samples

        check_L(L)
        check_n_samples(self, n_samples)
        x = resize_L(L, self.model_cfg.input_size, self.device)
        return finish_ab(self.sample(x, n_samples, generator), L, n_samples)


def cpu_noise(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device,
              kind: str = "normal") -> Tensor:
    """Noise drawn on the CPU from ``generator`` (so a seeded generator gives the same
    samples on every device), then moved to ``device``."""
    if kind == "normal":
        z = torch.randn(shape, generator=generator)
    else:  # uniform in [-1, 1)
        z = torch.rand(shape, generator=generator) * 2.0 - 1.0
    return z.to(device)
