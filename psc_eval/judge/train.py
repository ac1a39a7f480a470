"""``psc-eval train-judge``: train a segmenter on COLOUR images only.

The paper's judge (Section 4.3) is a DeepLab-ResNet101 trained on colour VOC
train_aug and then applied, frozen, to colorized images. Here any registered
segmenter can be trained the same way on any dataset with masks; the toy judge
trains in minutes on a CPU.

Choices, recorded in the checkpoint's config:
- optimiser: AdamW (lr 1e-3, weight decay 1e-4) by default, because judges here
  start from random weights (nothing is downloaded) and Adam gets there in far
  fewer steps than SGD; ``optimizer="sgd"`` gives DeepLab's SGD (momentum 0.9).
- poly learning rate, ``lr * (1 - it / max_it) ** 0.9`` per iteration (DeepLab v2).
- augmentation: random horizontal flips only (drawn from the seeded generator).
- loss: per-pixel cross-entropy, 255 ignored.

A checkpoint is written after every epoch (model, optimiser, step, epoch, RNG
states, resolved config, dataset fingerprint) and a rerun resumes from it; the
epoch's shuffling is seeded from (seed, epoch), so a resumed run reaches the very
same weights as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from ..checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from ..color import lab_parts_to_rgb, rgb_to_lab
from ..data import collate, get_dataset
from ..errors import ConfigError
from ..io import atomic_write_json
from ..metrics import ConfusionMatrix
from ..paths import judge_weights_path
from .segmenter import Segmenter, load_segmenter

# Datasets are cached in memory as uint8 (rgb + mask: 4 bytes a pixel) below this size.
CACHE_LIMIT_BYTES = 4 << 30


@dataclass
class JudgeTrainConfig:
    dataset: str = "toy"
    arch: str | None = None  # None: the dataset's default judge
    root: str | None = None
    split: str | None = None  # None: train_aug for voc (the paper's judge), else train
    val_split: str | None = None  # None: the dataset's evaluation split
    size: int | None = None  # None: the dataset's default size
    epochs: int = 3
    batch_size: int = 16
    lr: float = 1e-3
    optimizer: str = "adamw"  # adamw | sgd
    weight_decay: float = 1e-4
    momentum: float = 0.9  # sgd only
    poly_power: float = 0.9
    seed: int = 0
    workers: int = 0
    threads: int | None = None  # torch CPU threads; None: torch's default
    device: str = "cpu"
    out: str | None = None  # weights file; None: $PSC_HOME/judges/<dataset>/<arch>.pt
    resume: bool = True
    cache: bool | None = None  # None: cache when the split fits in CACHE_LIMIT_BYTES
    n_images: int | None = None  # toy only: images per split (tests)
    val_n_images: int | None = None

    # Keys that must match for a checkpoint to be resumed.
    IDENTITY = ("dataset", "arch", "root", "split", "size", "epochs", "batch_size", "lr",
                "optimizer", "weight_decay", "momentum", "poly_power", "seed", "n_images")


class _Cached(torch.utils.data.Dataset):
    """A dataset's samples held as uint8 rgb + mask (training needs nothing else)."""

    def __init__(self, ds, desc: str):
        self.ids, self.rgb, self.mask, self.skip = [], [], [], []
        for i in tqdm(range(len(ds)), desc=desc, unit="img", leave=False):
            s = ds[i]
            self.ids.append(s["id"])
            self.rgb.append(torch.round(s["rgb"] * 255).to(torch.uint8))
            self.mask.append(s["mask"].to(torch.uint8))
            self.skip.append(s["skip"])

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        empty = torch.zeros(0)
        return {"id": self.ids[i], "rgb": self.rgb[i].float() / 255.0,
                "mask": self.mask[i].long(), "L": empty, "ab": empty, "skip": self.skip[i]}


def _open(cfg: JudgeTrainConfig, split: str, n_images: int | None):
    kw = {"n_images": n_images} if n_images is not None else {}
    ds = get_dataset(cfg.dataset, root=cfg.root, split=split, size=cfg.size, **kw)
    if not ds.has_masks:
        raise ConfigError(
            f"dataset {cfg.dataset} has no masks, in --dataset, train a judge on voc, "
            "cocostuff or toy"
        )
    cache = cfg.cache
    if cache is None:
        cache = len(ds) * ds.size * ds.size * 4 < CACHE_LIMIT_BYTES
    return ds, (_Cached(ds, f"loading {split}") if cache else ds)


def _gray_rgb(rgb: Tensor) -> Tensor:
    """The gray input of Fig. 8: the image's own L with zero chroma, back to RGB."""
    L = rgb_to_lab(rgb)[:, :1]
    return lab_parts_to_rgb(L, torch.zeros_like(rgb[:, :2]))


@torch.no_grad()
def evaluate_judge(seg: Segmenter, data, batch_size: int = 32, workers: int = 0,
                   desc: str = "val") -> dict[str, dict[str, Any]]:
    """Val mIoU of a judge on colour inputs and on gray inputs (L only)."""
    cms = {"color": ConfusionMatrix(seg.num_classes), "gray": ConfusionMatrix(seg.num_classes)}
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False,
                                         num_workers=workers, collate_fn=collate)
    for batch in tqdm(loader, desc=desc, unit="batch", leave=False):
        if batch["rgb"] is None:
            continue
        rgb, mask = batch["rgb"], batch["mask"]
        cms["color"].update(seg.predict(rgb).cpu(), mask)
        cms["gray"].update(seg.predict(_gray_rgb(rgb)).cpu(), mask)
    return {k: v.compute() for k, v in cms.items()}


def _poly(it: int, max_it: int, power: float) -> float:
    return (1.0 - it / max_it) ** power


def _config_dict(cfg: JudgeTrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def train_judge(dataset: str = "toy", arch: str | None = None, **kw: Any) -> dict[str, Any]:
    """Train ``arch`` on ``dataset`` colour images; returns the summary (also written as JSON).

    Keyword arguments are the fields of ``JudgeTrainConfig``. ``stop_after_epochs``
    (not part of the config) ends the run early as an interruption would, leaving
    the checkpoint to resume from.
    """
    from .registry import DATASET_NUM_CLASSES, default_segmenter, get_spec

    stop_after = kw.pop("stop_after_epochs", None)
    unknown = set(kw) - {f.name for f in dataclasses.fields(JudgeTrainConfig)}
    if unknown:
        raise ConfigError(f"unknown train-judge options {sorted(unknown)}, in the call, "
                          "see JudgeTrainConfig")
    cfg = JudgeTrainConfig(dataset=dataset, arch=arch or default_segmenter(dataset), **kw)
    get_spec(cfg.arch)  # an unknown name fails before any data is read
    cfg.split = cfg.split or ("train_aug" if cfg.dataset == "voc" else "train")
    if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.lr <= 0:
        raise ConfigError(f"epochs {cfg.epochs}, batch size {cfg.batch_size}, lr {cfg.lr}, "
                          "in the train-judge options, use positive values")
    if cfg.optimizer not in ("adamw", "sgd"):
        raise ConfigError(f"unknown optimizer {cfg.optimizer!r}, in --optimizer, use adamw or sgd")
    if cfg.threads:
        # on a shared CPU, fewer threads than cores avoids oversubscription stalls
        torch.set_num_threads(cfg.threads)
    t0 = time.time()
    ds, train = _open(cfg, cfg.split, cfg.n_images)
    cfg.size = ds.size
    val_ds, val = _open(cfg, cfg.val_split, cfg.val_n_images or cfg.n_images)
    cfg.val_split = val_ds.split
    num_classes = ds.num_classes or DATASET_NUM_CLASSES[cfg.dataset]
    out = Path(cfg.out) if cfg.out else judge_weights_path(cfg.dataset, cfg.arch)
    ckpt_path = out.with_name(out.stem + ".train.pt")

    torch.manual_seed(cfg.seed)  # weight init
    seg = load_segmenter(cfg.arch, None, num_classes=num_classes, device=cfg.device,
                         dataset=cfg.dataset)
    model = seg.module
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                              weight_decay=cfg.weight_decay)
    steps_per_epoch = -(-len(train) // cfg.batch_size)
    max_it = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: _poly(it, max_it, cfg.poly_power))
    fingerprint = ds.fingerprint()
    config = _config_dict(cfg)

    start_epoch, history = 0, []
    if cfg.resume and ckpt_path.is_file():
        ck = load_checkpoint(ckpt_path, hint="delete it or pass --no-resume")
        old = ck.get("config", {})
        diff = [k for k in JudgeTrainConfig.IDENTITY if old.get(k) != config.get(k)]
        if diff:
            raise ConfigError(
                f"checkpoint was trained with other options ({', '.join(diff)}), {ckpt_path}, "
                "pass the same options or --no-resume to start over"
            )
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        set_rng_state(ck["rng"])
        start_epoch, history = int(ck["epoch"]), list(ck.get("history", []))
        tqdm.write(f"resuming {cfg.arch} from epoch {start_epoch} ({ckpt_path})")

    for epoch in range(start_epoch, cfg.epochs):
        if stop_after is not None and epoch >= stop_after:
            break
        g = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        loader = torch.utils.data.DataLoader(
            train, batch_size=cfg.batch_size, shuffle=True, generator=g,
            num_workers=cfg.workers, collate_fn=collate, drop_last=False,
        )
        model.train()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch")
        total, n = 0.0, 0
        for batch in bar:
            if batch["rgb"] is None:
                continue
            rgb, mask = batch["rgb"], batch["mask"].to(seg.device)
            flip = torch.rand(rgb.shape[0], generator=g) < 0.5
            rgb = torch.where(flip.view(-1, 1, 1, 1), rgb.flip(-1), rgb)
            mask = torch.where(flip.view(-1, 1, 1).to(mask.device), mask.flip(-1), mask)
            loss = F.cross_entropy(seg.forward(rgb), mask, ignore_index=255)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total, n = total + loss.item(), n + 1
            bar.set_postfix(loss=f"{total / n:.3f}", lr=f"{sched.get_last_lr()[0]:.2e}")
        history.append({"epoch": epoch + 1, "train_loss": total / max(n, 1),
                        "wall_s": time.time() - t0})
        save_checkpoint(ckpt_path, {
            "kind": "judge", "arch": cfg.arch, "num_classes": num_classes, "config": config,
            "dataset": fingerprint, "model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "step": int(sched.last_epoch), "epoch": epoch + 1,
            "rng": rng_state(), "history": history,
        })

    done = bool(history) and history[-1]["epoch"] >= cfg.epochs
    summary: dict[str, Any] = {
        "arch": cfg.arch, "dataset": cfg.dataset, "num_classes": num_classes,
        "epochs_done": history[-1]["epoch"] if history else 0, "epochs": cfg.epochs,
        "complete": done, "checkpoint": str(ckpt_path), "history": history,
    }
    if not done:
        summary["wall_s"] = time.time() - t0
        return summary

    scores = evaluate_judge(seg, val, batch_size=max(cfg.batch_size, 32), workers=cfg.workers)
    summary.update({
        "val_split": cfg.val_split, "val_images": len(val),
        "val_miou_color": scores["color"]["miou"], "val_miou_gray": scores["gray"]["miou"],
        "val_iou_color": scores["color"]["iou"], "val_iou_gray": scores["gray"]["iou"],
        "miou_convention": scores["color"]["convention"],
        "train_images": len(train), "wall_s": time.time() - t0, "weights": str(out),
        "config": config,
    })
    save_checkpoint(out, {
        "kind": "judge", "arch": cfg.arch, "num_classes": num_classes, "config": config,
        "dataset": fingerprint, "model": model.state_dict(),
        "val": {"miou_color": summary["val_miou_color"], "miou_gray": summary["val_miou_gray"]},
    })
    from ..io import sha256_file

    summary["weights_sha256"] = sha256_file(out)
    atomic_write_json(out.with_suffix(".json"), summary)
    return summary
