"""A naturalness PROXY for Table 4 while no human observer has answered.

Per method, a small CNN critic learns real-vs-colorized: real = held-out training
images (never used to train any toy model: indices from ``HELD_OUT_START`` of the train
split), fake = the method's colorizations (original L + its chroma, one sample) of other
held-out training images. Every colorization is sample 0 of the method's canonical
evaluation draw for the seed (``psc_eval.colorize``): on the validation images, the very
sample their mIoU and PSNR were scored on. The critic is trained on the core loop
(``TrainMethod``, seeded, one epoch order), then applied to the method's colorizations of the validation
images: the proxy is the fraction judged real (probability > 0.5), with a Wilson 95%
interval, next to the rate at which the same critic calls the real validation images
real (its calibration). It is a machine's judgement of one method's typical artefacts,
NOT a human study: a low rate says the critic found that method's tell-tale signs.
Results: ``<out>/experiments/<dataset>/naturalness-proxy.json`` (drawn by the report as
Table 4, labelled a proxy).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

# toy train split: the benchmark protocol trains models on the first 3000 images and
# selects decoding knobs on [3000, 3200) (experiments.decoding); the critics use the rest
HELD_OUT_START = 3200
N_TRAIN_EACH = 400  # real and fake images for each critic
EPOCHS = 4
BATCH = 32


class Critic(nn.Module):
    """Four strided 3x3 convolutions, global average pool, one logit (real)."""

    def __init__(self, width: int = 32):
        super().__init__()
        chans = [3, width, width * 2, width * 4, width * 4]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(chans):
            layers += [nn.Conv2d(a, b, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1], 1)

    def forward(self, rgb: Tensor) -> Tensor:
        return self.head(self.body(rgb * 2.0 - 1.0).mean(dim=(2, 3))).squeeze(1)


class _Pairs(torch.utils.data.Dataset):
    def __init__(self, real: Tensor, fake: Tensor):
        self.x = torch.cat([real, fake])  # (N,3,H,W) float in [0,1]
        self.y = torch.cat([torch.ones(len(real)), torch.zeros(len(fake))])

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"id": str(i), "rgb": self.x[i], "label": self.y[i], "skip": None}


def _collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    return {"ids": [s["id"] for s in samples], "rgb": torch.stack([s["rgb"] for s in samples]),
            "label": torch.stack([s["label"] for s in samples])}


def _critic_method(model: Critic):
    from ..training import Optim, TrainMethod

    class CriticMethod(TrainMethod):
        kind = "naturalness-critic"

        def __init__(self):
            self.model = model

        def configure_optimizers(self, total_steps: int) -> list[Optim]:
            return [Optim("adam", torch.optim.Adam(self.model.parameters(), lr=1e-3))]

        def training_step(self, m, batch, *, opt_index, generator):
            rgb = batch["rgb"]
            flip = (torch.rand(rgb.shape[0], generator=generator) < 0.5).to(rgb.device)
            rgb = torch.where(flip.view(-1, 1, 1, 1), rgb.flip(-1), rgb)
            loss = F.binary_cross_entropy_with_logits(m(rgb), batch["label"])
            return {"bce": loss, "total": loss}

    return CriticMethod()


def _images(colorizer: Any, ds: Any, idx: Sequence[int], seed: int, device: str) -> Tensor:
    """(N,3,H,W) in [0,1]: the uint8 RGB of sample 0 of each image, the very colorization
    the evaluation loop scores for ``seed`` (``psc_eval.colorize``)."""
    from ..colorize import colorize_indices

    got = colorize_indices(colorizer, ds, idx, seed=seed, device=device)
    return got.rgb_u8(0).cpu().float() / 255.0


def naturalness_proxy(colorizers: Sequence[str], dataset: str = "toy", *,
                      out: str | Path = "reports", seed: int = 0, device: str = "cpu",
                      limit: int | None = None, progress: bool = True) -> Path:
    """Train one critic per method and write the proxy table's JSON; returns its path."""
    from ..colorizer import build_colorizer
    from ..data import get_dataset
    from ..errors import PscError
    from ..identity import code_sha256
    from ..io import atomic_write_json
    from ..paths import colorizer_dir
    from ..study.tally import wilson_interval
    from ..training import TrainConfig, Trainer, seed_everything
    from .committed import reuse

    train = get_dataset(dataset, split="train")
    val = get_dataset(dataset, split=None)
    if limit:
        val.subset(limit)
    need = HELD_OUT_START + 2 * N_TRAIN_EACH
    if len(train) < need:
        raise PscError(f"the {dataset} train split has {len(train)} images, the proxy needs "
                       f"{need} (held-out real and fake sets), in --dataset, use toy")
    real_idx = list(range(HELD_OUT_START, HELD_OUT_START + N_TRAIN_EACH))
    fake_idx = list(range(HELD_OUT_START + N_TRAIN_EACH, need))
    path = Path(out) / "experiments" / dataset / "naturalness-proxy.json"
    names = list(dict.fromkeys(["gray", *colorizers, "gt"]))
    cols = {n: build_colorizer(n, dataset, None, device) for n in names}
    ident = {n: getattr(c, "weights_sha256", None) for n, c in cols.items()}
    # the same methods, weights, seed, images and code: nothing to redo
    identity = {"weights_sha256": ident, "seed": seed, "params": _params(),
                "train_fingerprint": train.fingerprint(), "val_fingerprint": val.fingerprint(),
                "code_sha256": code_sha256(Critic), "train_code_sha256": code_sha256(Trainer)}
    where = reuse(path, dataset, identity)
    if where is not None:
        if progress:
            tqdm.write(f"naturalness proxy: {path} has these inputs' result (from {where}): "
                       "no training")
        return path
    real = torch.stack([train[i]["rgb"] for i in real_idx])
    val_real = torch.stack([val[i]["rgb"] for i in range(len(val))])
    rows: dict[str, Any] = {}
    for name, col in cols.items():
        fake = _images(col, train, fake_idx, seed, device)
        seed_everything(seed)
        critic = Critic()
        trainer = Trainer(_critic_method(critic),
                          TrainConfig(epochs=EPOCHS, batch_size=BATCH, seed=seed, device=device),
                          _Pairs(real, fake), None, colorizer_dir(dataset, f"critic-{name}"),
                          config={"critic": "4 conv", "real": [real_idx[0], real_idx[-1]],
                                  "fake": [fake_idx[0], fake_idx[-1]], "epochs": EPOCHS,
                                  "seed": seed, "colorizer": name},
                          meta={"variant": f"critic-{name}"}, collate_fn=_collate,
                          progress=False)  # its per-epoch lines would not name the method
        fit = trainer.fit(restart=True)
        bce = fit.history[-1].get("train_bce") if fit.history else None
        # a critic still at chance (ln 2 nats) separates nothing: its rate means nothing
        learned = bce is not None and bce < LEARNED_BCE
        critic.eval()
        with torch.no_grad():
            p_fake = torch.sigmoid(critic(_images(col, val, range(len(val)), seed,
                                                  device).to(trainer.device))).cpu()
            p_real = torch.sigmoid(critic(val_real.to(trainer.device))).cpu()
        k, n = int((p_fake > 0.5).sum()), len(p_fake)
        kr = int((p_real > 0.5).sum())
        rows[name] = {"judged_real": k / n, "n": n, "wilson95": list(wilson_interval(k, n)),
                      "real_images_judged_real": kr / n,
                      "real_wilson95": list(wilson_interval(kr, n)),
                      "critic_final_train_bce": bce, "critic_learned": learned}
        if progress:
            tqdm.write(f"naturalness proxy: critic of {name}: {len(fit.history)} epochs, "
                       f"final train bce {bce if bce is None else round(bce, 4)}"
                       f"{'' if learned else ' (DID NOT LEARN: at chance, ln 2 = 0.693)'}, "
                       f"{k / n:.1%} of its colorizations judged real")
    result = {"experiment": "naturalness-proxy", "dataset": dataset, "val_split": val.split,
              "val_images": len(val), "seed": seed, "rows": rows, "weights_sha256": ident,
              "params": _params(), "identity": identity,
              "definition": __doc__.split("\n\n")[1].replace("\n", " "),
              "label": "PROXY (a CNN critic), not human judgement"}
    atomic_write_json(path, result)
    return path


# Below 0.9 ln 2 nats of final training BCE a critic tells real from colorized better than
# chance; at or above it, it learned nothing (every output near 0.5) and is flagged.
LEARNED_BCE = 0.9 * math.log(2.0)


def _params() -> dict[str, Any]:
    # "colorize" names the draw: a proxy of the older per-call seeding is never reused
    return {"held_out_start": HELD_OUT_START, "n_train_each": N_TRAIN_EACH, "epochs": EPOCHS,
            "batch": BATCH, "colorize": "psc_eval.colorizer sample 0"}
