"""The Fig. 9 experiment: does colorization help semantic segmentation?

The paper (Sec. 4.4, Fig. 9) compares the validation segmentation loss of the branch h
trained three ways. Here, on the core loop, with the network of ``ours``:

- ``scratch``: h (its shared bottom rows, its own rows and ASPP) from random weights,
  trained with L_seg alone;
- ``pretrained``: the same, but the shared bottom rows start from a trained colorizer
  that never saw a label (``psc-purple``: f + g, Sec. 3.1), then L_seg alone;
- ``joint``: h trained together with f and g (Eq. 6), read from the training history
  of the ``ours`` checkpoint (its ``val_L_seg`` per epoch): no extra run.

Same seed, data order, optimiser (the config's Adam) and epochs for the two new runs:
``FIG9_EPOCHS`` (or the config's cap when smaller), a fixed length (the plateau rule is
off), so the figure compares how fast h learns from each start over the same first epochs
of the protocol's data, the joint curve cut to the same epochs;
L_seg is the mean cross-entropy per pixel at the embedding resolution, as in Eq. 6, so
the three curves share units. The result is one JSON,
``<out>/experiments/<dataset>/fig9-seg-curves-<config>.json`` (the curves, configs and the
sha256 of every checkpoint used) with the curves also as ``.csv`` beside it, and
``psc-eval report`` draws it. The two runs live under ``$PSC_HOME/models/<dataset>/``
(``fig9-scratch``, ``fig9-pretrained-<trunk sha256[:12]>``) and resume there; a new
``psc-purple`` checkpoint gets a pretrained run of its own. The JSON's ``identity`` (the
checkpoints' sha256, config, data fingerprints, code) lets a rerun, or ``make demo`` with
the shipped checkpoints, take the curves without training (``experiments.committed``).
"""

from __future__ import annotations

# The experiment is about the paper's network: it imports psc_eval.models (a layer below
# the experiments, above the core's protocols) inside the functions that run it, so the
# core never imports the models at import time.
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from psc_eval.checkpoint import load_checkpoint
from psc_eval.color import normalize_L
from psc_eval.errors import WeightsError
from psc_eval.experiments.committed import reuse
from psc_eval.identity import code_sha256
from psc_eval.io import atomic_write, atomic_write_json, sha256_file
from psc_eval.paths import colorizer_dir
from psc_eval.shipped import trained_or_shipped
from psc_eval.training import (
    LAST,
    MemoryCache,
    Optim,
    Trainer,
    TrainMethod,
    open_train_val,
    seed_everything,
)


class SegNet(nn.Module):
    """h of the paper's network alone: shared rows, h's rows, ASPP -> (B,C,H/4,W/4)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.trunk, self.h_top, self.aspp = net.trunk, net.h_top, net.aspp
        self.factor = net.cfg.factor

    def forward(self, L: Tensor) -> Tensor:
        return self.aspp(self.h_top(self.trunk(normalize_L(L))))


class SegMethod(TrainMethod):
    """L_seg alone, with the config's Adam (Sec. 4.1)."""

    kind = "segmentation"

    def __init__(self, model: SegNet, train_cfg: Any):
        self.model = model
        self.cfg = train_cfg

    def configure_optimizers(self, total_steps: int) -> list[Optim]:
        t = self.cfg
        return [Optim("adam", torch.optim.Adam(self.model.parameters(), lr=t.lr,
                                               betas=tuple(t.betas), eps=t.adam_eps))]

    def training_step(self, model, batch, *, opt_index, generator):
        from psc_eval.models.losses import mask_target, seg_loss

        loss = seg_loss(model(batch["L"]), mask_target(batch["mask"], self.model.factor))
        return {"L_seg": loss, "total": loss}

    def validation_step(self, model, batch):
        return {"L_seg": self.training_step(model, batch, opt_index=0, generator=None)["L_seg"]}


def _checkpoint(dataset: str, name: str) -> tuple[dict[str, Any], Path]:
    path = trained_or_shipped(colorizer_dir(dataset, name) / LAST, dataset, "colorizer", name)
    if not path.is_file():
        raise WeightsError(f"no trained {name} for {dataset}, {path}, run: psc-eval train "
                           f"--colorizer {name} --dataset {dataset} --config {dataset}")
    return load_checkpoint(path), path


# The epochs of Fig. 9's two runs (the paper's figure shows the early training curves).
FIG9_EPOCHS = 5


def seg_curves(dataset: str = "toy", config: str = "toy", *, out: str | Path = "reports",
               epochs: int | None = None, device: str = "cpu", progress: bool = True
               ) -> Path:
    """Run (or resume) the scratch and pretrained trainings; write the curves JSON."""
    from psc_eval.models.method import build_net, resolve_train_config

    if epochs is None:
        epochs = min(FIG9_EPOCHS, resolve_train_config("ours", config, {}).train.epochs)
    cfg = resolve_train_config("ours", config, {"train.epochs": epochs, "train.device": device,
                                                "train.until_plateau": False})
    t = cfg.train
    size = cfg.model.input_size
    train_ds, val_ds = open_train_val(dataset, None, size, t.train_split, t.val_split,
                                      t.n_train, t.n_val)
    wrap = (lambda d: MemoryCache(d, keep=("L", "mask"))) if t.cache_in_memory else (
        lambda d: d)
    train_c, val_c = wrap(train_ds), wrap(val_ds)
    joint_ck, joint_path = _checkpoint(dataset, "ours")
    pre_ck, pre_path = _checkpoint(dataset, "psc-purple")
    pre_sha = sha256_file(pre_path)
    sources = {"joint": {"checkpoint": joint_path.name, "sha256": sha256_file(joint_path)},
               "pretrained_trunk": {"checkpoint": pre_path.name, "sha256": pre_sha}}
    # everything the curves depend on: a result of the same identity is not recomputed
    identity = {"sources": {k: v["sha256"] for k, v in sources.items()},
                "config": cfg.to_dict(), "train_fingerprint": train_ds.fingerprint(),
                "val_fingerprint": val_ds.fingerprint(), "code_sha256": code_sha256(SegMethod),
                "train_code_sha256": code_sha256(Trainer)}  # the loop, another package
    path = Path(out) / "experiments" / dataset / f"fig9-seg-curves-{Path(config).stem}.json"
    where = reuse(path, dataset, identity, companions=(".csv",))
    if where is not None:
        if progress:
            tqdm.write(f"Fig. 9: {path} has these inputs' curves (from {where}): no training")
        return path
    curves: dict[str, Any] = {}
    for mode in ("scratch", "pretrained"):
        seed_everything(t.seed)  # the same initial h for both runs
        seg = SegNet(build_net("ours", cfg, train_ds.num_classes))
        if mode == "pretrained":
            trunk = {k[len("trunk."):]: v.float() for k, v in pre_ck["ema"].items()
                     if k.startswith("trunk.")}
            seg.trunk.load_state_dict(trunk)  # the colorizer's bottom rows (Tables 1-2)
        # The pretrained run belongs to the trunk it started from: another psc-purple
        # checkpoint trains its own run (a finished run of the old trunk is never reused).
        trunk = {"pretrained_trunk_sha256": pre_sha} if mode == "pretrained" else {}
        run_dir = colorizer_dir(dataset, f"fig9-{mode}" + (f"-{pre_sha[:12]}" if trunk else ""))
        trainer = Trainer(SegMethod(seg, t), t, train_c, val_c, run_dir,
                          config={**cfg.to_dict(), "fig9": mode, **trunk},
                          meta={"variant": f"fig9-{mode}", "dataset": dataset,
                                "num_classes": train_ds.num_classes}, progress=progress)
        res = trainer.fit(resume="auto")
        curves[mode] = [r["val_L_seg"] for r in res.history]
    curves["joint"] = [r["val_L_seg"] for r in joint_ck.get("history", [])
                       if "val_L_seg" in r][: t.epochs]
    result = {
        "experiment": "fig9", "dataset": dataset, "val_split": val_ds.split,
        "val_images": len(val_ds), "epochs": t.epochs, "steps_per_epoch":
            -(-len(train_ds) // t.batch_size), "curves": curves,
        "units": "val L_seg, mean cross-entropy per pixel (nats) at the embedding size",
        "sources": sources, "config": cfg.to_dict(), "identity": identity,
    }
    atomic_write_json(path, result)
    n = max(len(v) for v in curves.values())
    rows = ["epoch,scratch,pretrained,joint"] + [
        f"{e + 1}," + ",".join(repr(curves[k][e]) if e < len(curves[k]) else ""
                              for k in ("scratch", "pretrained", "joint")) for e in range(n)]
    atomic_write(path.with_suffix(".csv"), lambda f: f.write(("\n".join(rows) + "\n").encode()))
    return path
