"""The paper's model and its ablations as registered colorizers (the Colorizer protocol).

``colorize(L, n)`` runs f (and h) once per image at the config's input size, samples g
``n`` times at the embedding resolution (raster order, ``psc_eval.models.sampling``),
maps the sampled chroma back to Lab units and upsamples it bilinearly to L's size; the
harness joins it with the ORIGINAL L (Sec. 3.1, chromatic subsampling). An L of another
size than the model's input is resized (bilinear, antialiased) for the network only.
The Polyak-averaged weights (checkpoint key ``"ema"``) are used.

Weights: ``weights=PATH`` or, by default, ``colorizer_dir(dataset, name)/last.pt``
(``$PSC_HOME/models/<dataset>/<name>/last.pt``). ``psc-embedding`` decodes the
``ours`` checkpoint's embedding mixture.

Random weights (the registry's contract, see ``psc_eval.colorizer.Colorizer``):
``weights="random"`` reads no file and builds the network of ``config`` (``"toy"`` by
default, ``"paper"`` or a TOML path) with ``num_classes`` classes (default: the
dataset's), initialised under ``torch.manual_seed(seed)``. It reports
``weights_sha256 = None`` and ``config["weights"] == "random"``: for tests and smoke
runs, never a trained model's result.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from psc_eval.checkpoint import (
    checkpoint_info,
    load_checkpoint,
    load_state_dict_checked,
    require_keys,
)
from psc_eval.color import AB_MAX, AB_MIN, denormalize_ab
from psc_eval.colorizer import RANDOM_WEIGHTS, check_L, check_n_samples
from psc_eval.errors import ConfigError, WeightsError
from psc_eval.io import sha256_file
from psc_eval.methods import Method
from psc_eval.paths import colorizer_dir
from psc_eval.training import LAST

from .config import CONFIGS, config_from_checkpoint, load_config, resolve_variant
from .method import PSCMethod, build_net
from .network import PSCNet, embedding_mode

SAMPLERS = ("cached", "naive")


def default_weights(dataset: str, variant: str) -> Path:
    """$PSC_HOME's trained checkpoint, else the one shipped in the repository."""
    from psc_eval.shipped import trained_or_shipped

    return trained_or_shipped(colorizer_dir(dataset, variant) / LAST, dataset, "colorizer",
                              variant)


class PSCBase:
    """Shared loading and the f/h pass; subclasses decide how ab is produced."""

    name = "ours"
    weights_variant = "ours"  # the checkpoint this colorizer reads
    checkpoint_info: dict[str, Any] | None = None  # epoch, step, val losses (run provenance)
    stochastic = True
    oracle = False

    def __init__(
        self,
        dataset: str = "toy",
        weights: str | Path | None = None,
        device: str = "cpu",
        sampler: str = "cached",
        temperature: float = 1.0,
        config: str = "toy",
        num_classes: int | None = None,
        seed: int = 0,
        **_: Any,
    ):
        if sampler not in SAMPLERS:
            raise ConfigError(f"unknown sampler {sampler!r}, in --sampler, use cached or naive")
        if not temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {temperature}, in --temperature, "
                              "use e.g. 1.0")
        self.device = torch.device(device)
        if weights == RANDOM_WEIGHTS:
            self.net, net_config, self.num_classes = self._random_net(
                dataset, config, num_classes, seed)
            self.weights_path = None
            self.weights_sha256 = None
        else:
            self.net, net_config, self.num_classes, path = self._load_net(dataset, weights)
            self.weights_path = str(path)
            self.weights_sha256 = sha256_file(path)
        self.net.to(self.device).eval()
        # sampling options belong to the colorizer's identity (results, evaluation cache keys)
        self.config = {**net_config, "sampling": {"sampler": sampler,
                                                  "temperature": float(temperature)}}
        self.sampler = sampler
        self.temperature = float(temperature)

    def _load_net(self, dataset: str, weights: str | Path | None
                  ) -> tuple[PSCNet, dict[str, Any], int, Path]:
        """The trained network: its EMA weights, stored config and number of classes."""
        path = Path(weights) if weights else default_weights(dataset, self.weights_variant)
        if not path.is_file():
            cfg = "toy" if dataset == "toy" else "paper"
            raise WeightsError(
                f"no trained weights for {self.weights_variant!r} on {dataset}, {path}, run: "
                f"psc-eval train --colorizer {self.weights_variant} --dataset {dataset} "
                f"--config {cfg}"
            )
        hint = (f"pass a checkpoint of '{self.weights_variant}' "
                f"(psc-eval train --colorizer {self.weights_variant})")
        ck = require_keys(load_checkpoint(path, hint=hint), ("kind", "config", "num_classes",
                                                             "ema"), path, hint)
        if ck.get("kind") != "colorizer" or ck.get("variant") != self.weights_variant:
            raise WeightsError(
                f"checkpoint is of {ck.get('variant')!r} (kind {ck.get('kind')!r}), not "
                f"{self.weights_variant!r}, {path}, {hint}"
            )
        if not isinstance(ck["config"], dict) or not isinstance(ck["num_classes"], int) \
                or ck["num_classes"] < 1:
            raise WeightsError(f"checkpoint's config or num_classes is damaged, {path}, {hint}")
        try:
            cfg = config_from_checkpoint(ck["config"], str(path))
        except (KeyError, TypeError, AttributeError):
            raise WeightsError(f"checkpoint's config is incomplete, {path}, {hint}") from None
        self.checkpoint_info = checkpoint_info(ck, path)
        net = build_net(self.weights_variant, cfg, ck["num_classes"])
        load_state_dict_checked(net, ck["ema"], path, f"{self.weights_variant}'s averaged "
                                "weights", hint)
        return net, ck["config"], ck["num_classes"], path

    def _random_net(self, dataset: str, config: str, num_classes: int | None, seed: int
                    ) -> tuple[PSCNet, dict[str, Any], int]:
        """``weights="random"``: the network of ``config``, seeded, no file read."""
        from psc_eval.data import DATASETS

        cfg = resolve_variant(load_config(str(config)), self.weights_variant)
        if num_classes is None:  # a dataset without classes (folder) gets one
            num_classes = max(1, int(getattr(DATASETS.get(dataset), "num_classes", 0)))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = build_net(self.weights_variant, cfg, num_classes)
        return net, {**cfg.to_dict(), "weights": RANDOM_WEIGHTS, "init_seed": seed}, num_classes

    def _embed(self, L: Tensor) -> tuple[Tensor, Tensor | None]:
        size = self.net.cfg.input_size
        x = L.to(self.device, torch.float32)
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=True).clamp(0.0, 100.0)
        return self.net.embed(x)

    def _finish(self, x: Tensor, L: Tensor, n: int) -> Tensor:
        """(B*n,2,h,w) in [-1,1] -> (B,n,2,H,W) Lab units on L's device."""
        ab = denormalize_ab(x.float())
        ab = F.interpolate(ab, size=L.shape[-2:], mode="bilinear", align_corners=False)
        ab = ab.clamp(AB_MIN, AB_MAX)  # interpolation rounding must not leave the Lab range
        B = L.shape[0]
        return ab.view(B, n, 2, *L.shape[-2:]).to(L.device)

    @torch.no_grad()
    def colorize(
        self, L: Tensor, n_samples: int = 1, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """L (B,1,H,W) in [0,100] -> ab (B,n,2,H,W) in Lab units (n raster-order samples)."""
        from .sampling import sample

        check_L(L)
        check_n_samples(self, n_samples)
        emb, logits = self._embed(L)
        cond = self.net.condition(emb, logits)  # (B,C,h,w): once per image
        cond = cond.repeat_interleave(n_samples, dim=0)  # sample i of image b at b*n + i
        x = sample(self.net.g, cond, generator=generator, temperature=self.temperature,
                   method=self.sampler)
        return self._finish(x, L, n_samples)

    @torch.no_grad()
    def colorize_parts(self, Ls: Sequence[Tensor], n_samples: int = 1, *,
                       generators: Sequence[torch.Generator]) -> list[Tensor]:
        """Several batches in ONE sampling call (whole-split batching): part i is exactly
        ``colorize(Ls[i], n_samples, generator=generators[i])`` (each part's condition is
        computed on its own batch, its noise drawn from its own generator), with one
        sequential pass over the canvas instead of one per batch."""
        from .sampling import sample

        if type(self).colorize is not PSCBase.colorize:  # a subclass decodes otherwise
            return [self.colorize(L, n_samples, generator=g) for L, g in zip(Ls, generators)]
        conds = []
        for L in Ls:
            check_L(L)
            check_n_samples(self, n_samples)
            emb, logits = self._embed(L)
            conds.append(self.net.condition(emb, logits).repeat_interleave(n_samples, dim=0))
        sizes = [c.shape[0] for c in conds]
        x = sample(self.net.g, torch.cat(conds), generator=list(generators),
                   split_sizes=sizes, temperature=self.temperature, method=self.sampler)
        return [self._finish(xi, L, n_samples) for xi, L in zip(x.split(sizes), Ls)]


class PSC(PSCBase):
    """``ours``: f + h + g, g conditioned on concat(f, softmax(h)) (Sec. 3.2.2)."""

    name = weights_variant = "ours"


class PSCPurple(PSCBase):
    """``psc-purple``: f + g (Sec. 3.1)."""

    name = weights_variant = "psc-purple"


class PSCPurpleBlue(PSCBase):
    """``psc-purple-blue``: f shares its trunk with h; g sees f only (Sec. 3.2.1)."""

    name = weights_variant = "psc-purple-blue"


class PSCFiLM(PSCBase):
    """``psc-film``: g sees f transformed by (gamma, beta) from softmax(h) (Sec. 3.2.2)."""

    name = weights_variant = "psc-film"


class PSCEmbedding(PSCBase):
    """``psc-embedding``: decode the embedding's own mixture (PIC; Figs. 4 and 6).

    No autoregression: each chroma pixel takes the mode of its most probable mixture
    component (``network.embedding_mode``), so the output is deterministic
    (``stochastic = False``). Reads the ``ours`` checkpoint.
    """

    name = "psc-embedding"
    weights_variant = "ours"
    stochastic = False

    @torch.no_grad()
    def colorize(
        self, L: Tensor, n_samples: int = 1, *, generator: torch.Generator | None = None
    ) -> Tensor:
        check_L(L)
        check_n_samples(self, n_samples)
        emb, _ = self._embed(L)
        return self._finish(embedding_mode(self.net.emb_params(emb)), L, 1)


# The method records of the paper's model and its ablations (psc_eval.methods), in the
# order of the ablation table (Sec. 3: purple, purple-blue, purple-blue-green).
_TRAIN = PSCMethod
_T1 = "PixelCNN++ sampling at temperature 1, as the paper describes the model"
METHODS = [
    Method("psc-purple", PSCPurple, "f + g, no semantics (Sec. 3.1)", trainable=_TRAIN,
           configs=CONFIGS, label="purple: f + g, no semantics (Sec. 3.1)", group="ablation",
           decoding=_T1),
    Method("psc-purple-blue", PSCPurpleBlue,
           "f shares its trunk with h; g sees f only (Sec. 3.2.1)", trainable=_TRAIN,
           configs=CONFIGS, label="purple-blue: f shares h's trunk (Sec. 3.2.1)",
           group="ablation", decoding=_T1),
    Method("ours", PSC, "paper's final model: f + h + g, concatenation (Sec. 3.2.2)",
           trainable=_TRAIN, configs=CONFIGS, label="Ours (PSC)", group="paper",
           ablation_label="purple-blue-green: f + h + g (Sec. 3.2.2, ours)",
           paper_table3=(70.3, 23.15), paper_table4=94.65,
           decoding=_T1 + "; a second row at the temperature selected on held-out TRAINING "
                          "images (psc-eval select-temperature)"),
    Method("psc-film", PSCFiLM, "f + h + g, feature-transform fusion (Sec. 3.2.2)",
           trainable=_TRAIN, configs=CONFIGS, label="purple-blue-green, FiLM fusion",
           group="ablation", decoding=_T1),
    Method("psc-embedding", PSCEmbedding, "decode f's own mixture, no autoregression "
           "(Figs. 4, 6)", label="f's embedding decoded, no g (Figs. 4, 6)", group="ablation",
           decoding="each chroma pixel at the mode of its most probable mixture component "
                    "(deterministic)"),
]
