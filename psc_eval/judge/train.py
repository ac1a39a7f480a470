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

Training runs on the core loop (``psc_eval.training``): its checkpoints (model,
optimiser, schedule, RNG states, resolved config, dataset fingerprint) go to
``<weights>.train/last.pt`` after every epoch and every ``checkpoint_every`` steps, and
a rerun resumes from it (``--no-resume`` starts over); data order and flips are pure
functions of (seed, epoch) and (seed, step), so a run killed anywhere and resumed
reaches the very same weights as an uninterrupted one. The finished judge is written
to ``<weights>`` (model weights, config, validation mIoU) with a JSON summary beside it.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from ..checkpoint import save_checkpoint
from ..color import lab_parts_to_rgb, rgb_to_lab
from ..data import collate, get_dataset
from ..dist import resolve_device
from ..errors import ConfigError
from ..io import atomic_write_json
from ..metrics import ConfusionMatrix
from ..paths import judge_weights_path
from ..progress import bar as progress_bar
from ..training import LAST, MemoryCache, Optim, TrainConfig, Trainer, TrainMethod, make_optimizer
from .segmenter import Segmenter, load_segmenter

# Datasets are cached in memory as uint8 (rgb + mask: 4 bytes a pixel) below this size.
CACHE_LIMIT_BYTES = 4 << 30


@dataclass
class JudgeTrainConfig(TrainConfig):
    """The core TrainConfig with a judge's defaults (AdamW lr 1e-3, weight decay 1e-4,
    3 epochs, no per-epoch copies) plus what a judge run adds: which segmenter, which
    data, DeepLab's poly power."""

    epochs: int = field(default=3, metadata=TrainConfig.__dataclass_fields__["epochs"].metadata)
    lr: float = field(default=1e-3, metadata=TrainConfig.__dataclass_fields__["lr"].metadata)
    optimizer: str = field(default="adamw",
                           metadata=TrainConfig.__dataclass_fields__["optimizer"].metadata)
    betas: tuple[float, float] = (0.9, 0.999)  # torch's AdamW defaults
    weight_decay: float = 1e-4
    keep_epochs: bool = False
    poly_power: float = 0.9
    dataset: str = "toy"
    arch: str | None = None  # None: the dataset's default judge
    root: str | None = None
    split: str | None = None  # None: train_aug for voc (the paper's judge), else train
    val_split: str | None = None  # None: the dataset's evaluation split
    size: int | None = None  # None: the dataset's default size
    threads: int | None = None  # torch CPU threads; None: torch's default
    out: str | None = None  # weights file; None: $PSC_HOME/judges/<dataset>/<arch>.pt
    resume: bool = True
    cache: bool | None = None  # None: cache when the split fits in CACHE_LIMIT_BYTES
    n_images: int | None = None  # toy only: images per split (tests)
    val_n_images: int | None = None

    # Keys that may differ when a checkpoint is resumed (they change no number).
    RESUMABLE: ClassVar[frozenset[str]] = frozenset(
        {"root", "val_split", "threads", "device", "workers", "checkpoint_every", "out",
         "resume", "cache", "val_n_images", "n_val"})

    def check(self, where: str = "the train-judge options") -> None:
        if not (self.poly_power >= 0 and self.poly_power < float("inf")):
            raise ConfigError(f"poly_power {self.poly_power}, in {where}, "
                              "use a finite value >= 0")
        if self.size is not None and self.size < 8:
            raise ConfigError(f"size {self.size}, in --size, use at least 8 (e.g. 64)")
        super().check(where)


class JudgeMethod(TrainMethod):
    """A segmenter trained on colour images: per-pixel cross-entropy (255 ignored),
    random horizontal flips, AdamW or SGD with DeepLab's poly schedule per iteration."""

    kind = "judge"

    def __init__(self, seg: Segmenter, cfg: JudgeTrainConfig):
        self.seg = seg
        self.model = seg.module
        self.cfg = cfg
        self.resumable_keys = JudgeTrainConfig.RESUMABLE

    def configure_optimizers(self, total_steps: int) -> list[Optim]:
        c = self.cfg
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = make_optimizer(params, c).optimizer
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda it: _poly(it, total_steps, c.poly_power))
        return [Optim(c.optimizer, opt, sched)]

    def training_step(self, model, batch, *, opt_index, generator):
        rgb, mask = batch["rgb"], batch["mask"]
        flip = (torch.rand(rgb.shape[0], generator=generator) < 0.5).to(rgb.device)
        rgb = torch.where(flip.view(-1, 1, 1, 1), rgb.flip(-1), rgb)
        mask = torch.where(flip.view(-1, 1, 1), mask.flip(-1), mask)
        loss = F.cross_entropy(self.seg.forward(rgb, module=model), mask, ignore_index=255)
        return {"loss": loss, "total": loss}

    def validation_step(self, model, batch):
        loss = F.cross_entropy(self.seg.forward(batch["rgb"], module=model), batch["mask"],
                               ignore_index=255)
        return {"loss": loss}


def _open(cfg: JudgeTrainConfig, split: str, n_images: int | None, first: int | None = None):
    kw = {"n_images": n_images} if n_images is not None else {}
    ds = get_dataset(cfg.dataset, root=cfg.root, split=split, size=cfg.size, **kw)
    if first:
        ds.subset(first)
    if not ds.has_masks:
        raise ConfigError(
            f"dataset {cfg.dataset} has no masks, in --dataset, train a judge on voc, "
            "cocostuff or toy"
        )
    cache = cfg.cache
    if cache is None:
        cache = len(ds) * ds.size * ds.size * 4 < CACHE_LIMIT_BYTES
    return ds, (MemoryCache(ds, keep=("rgb", "mask")) if cache and cfg.workers == 0 else ds)


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
    for batch in progress_bar(loader, desc=desc, unit="batch", leave=False):
        if batch["rgb"] is None:
            continue
        rgb, mask = batch["rgb"], batch["mask"]
        cms["color"].update(seg.predict(rgb).cpu(), mask)
        cms["gray"].update(seg.predict(_gray_rgb(rgb)).cpu(), mask)
    return {k: v.compute() for k, v in cms.items()}


def _poly(it: int, max_it: int, power: float) -> float:
    return (1.0 - it / max_it) ** power


def train_judge(dataset: str = "toy", arch: str | None = None, **kw: Any) -> dict[str, Any]:
    """Train ``arch`` on ``dataset`` colour images; returns the summary (also written as JSON).

    Keyword arguments are the fields of ``JudgeTrainConfig``. ``stop_after_epochs``
    (not part of the config) ends the run early as an interruption would, leaving
    the checkpoint to resume from.
    """
    from .registry import DATASET_NUM_CLASSES, default_segmenter, get_spec

    stop_after = kw.pop("stop_after_epochs", None)
    kw = {k: v for k, v in kw.items() if v is not None}  # None: the config's default
    unknown = set(kw) - {f.name for f in dataclasses.fields(JudgeTrainConfig)}
    if unknown:
        raise ConfigError(f"unknown train-judge options {sorted(unknown)}, in the call, "
                          "see JudgeTrainConfig")
    cfg = JudgeTrainConfig(dataset=dataset, arch=arch or default_segmenter(dataset), **kw)
    get_spec(cfg.arch)  # an unknown name fails before any data is read
    cfg.split = cfg.split or ("train_aug" if cfg.dataset == "voc" else "train")
    cfg.check()
    if cfg.threads:
        # on a shared CPU, fewer threads than cores avoids oversubscription stalls
        torch.set_num_threads(cfg.threads)
    t0 = time.time()
    ds, train = _open(cfg, cfg.split, cfg.n_images, cfg.n_train)
    cfg.size = ds.size
    val_ds, val = _open(cfg, cfg.val_split, cfg.val_n_images or cfg.n_images, cfg.n_val)
    cfg.val_split = val_ds.split
    num_classes = ds.num_classes or DATASET_NUM_CLASSES[cfg.dataset]
    out = Path(cfg.out) if cfg.out else judge_weights_path(cfg.dataset, cfg.arch)
    run_dir = out.with_name(out.stem + ".train")

    torch.manual_seed(cfg.seed)  # weight init
    seg = load_segmenter(cfg.arch, None, num_classes=num_classes,
                         device=resolve_device(cfg.device), dataset=cfg.dataset)
    fingerprint = ds.fingerprint()
    config = dataclasses.asdict(cfg)
    trainer = Trainer(JudgeMethod(seg, cfg), cfg, train, None, run_dir, config=config,
                      meta={"arch": cfg.arch, "num_classes": num_classes, "dataset": fingerprint},
                      identity=("arch", "num_classes"), progress=True)
    if cfg.resume and (run_dir / LAST).is_file():
        tqdm.write(f"resuming {cfg.arch} from {run_dir / LAST}")
    stop = None if stop_after is None else stop_after * trainer.steps_per_epoch
    res = trainer.fit(resume="auto" if cfg.resume else None, restart=not cfg.resume,
                      stop_after_steps=stop)
    history = [{"epoch": r["epoch"], "train_loss": r.get("train_loss", float("nan")),
                "step": r["step"]} for r in res.history]
    summary: dict[str, Any] = {
        "arch": cfg.arch, "dataset": cfg.dataset, "num_classes": num_classes,
        "epochs_done": history[-1]["epoch"] if history else 0, "epochs": cfg.epochs,
        "complete": res.complete, "checkpoint": str(res.last), "history": history,
    }
    if not res.complete:
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
        "dataset": fingerprint, "model": seg.module.state_dict(),
        "val": {"miou_color": summary["val_miou_color"], "miou_gray": summary["val_miou_gray"]},
    })
    from ..io import sha256_file

    summary["weights_sha256"] = sha256_file(out)
    atomic_write_json(out.with_suffix(".json"), summary)
    return summary
