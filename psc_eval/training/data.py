"""The data side of a training run: the train / val datasets, the pure data order and
augmentation streams, and an in-memory cache of decoded samples.

Data order: epoch e visits the training set in ``randperm(n, seed * 1000003 + e)``
(:func:`epoch_order`), a pure function of (seed, epoch); augmentation randomness comes
from :func:`step_generator` (seed, step): a pure function as well, so a resumed run
draws what an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data import get_dataset, train_splits


def seed_everything(seed: int) -> None:
    """Seed torch / numpy / python before the model is built (initial weights)."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    random.seed(seed)


def epoch_order(n: int, seed: int, epoch: int) -> Tensor:
    """The training-set order of one epoch: a pure function of (seed, epoch)."""
    g = torch.Generator().manual_seed(seed * 1000003 + epoch)
    return torch.randperm(n, generator=g)


def open_train_val(dataset: str, root: str | None, size: int, train_split: str = "",
                   val_split: str = "", n_train: int = 0, n_val: int = 0):
    """(train, val) datasets of a training run: the dataset's preferred training split
    (``data.TRAIN_SPLITS``; no fallback) and evaluation split unless named, cut to the
    first ``n_train`` / ``n_val`` (0: all)."""
    train = get_dataset(dataset, root=root, size=size,
                        split=train_split or train_splits(dataset)[0])
    val = get_dataset(dataset, root=root, split=val_split or None, size=size)
    if n_train:
        train.subset(n_train)
    if n_val:
        val.subset(n_val)
    return train, val


def step_generator(seed: int, step: int) -> torch.Generator:
    """The augmentation generator of optimiser step ``step``: a pure function of (seed, step)."""
    h = hashlib.sha256(f"psc-eval-train:{int(seed)}:{int(step)}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(h[:8], "little") & ((1 << 63) - 1))


class MemoryCache(torch.utils.data.Dataset):
    """Keep each loaded sample in RAM after its first load, stored compactly.

    ``rgb`` (exactly uint8 / 255 by the sample format) is kept as uint8 and the mask as
    uint8 (labels 0..255), both restored bit-exactly on access. ``keep`` names the
    fields to hold (others come back as empty tensors; a judge needs only rgb and mask).
    Only useful with ``workers=0`` (worker processes do not share the cache).
    """

    def __init__(self, base: torch.utils.data.Dataset, keep: Iterable[str] | None = None):
        self.base = base
        self.keep = None if keep is None else frozenset(keep) | {"id", "skip"}
        self.store: dict[int, dict] = {}

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict:
        if i not in self.store:
            s = dict(self.base[i])
            if self.keep is not None:
                s = {k: (v if k in self.keep else torch.zeros(0)) for k, v in s.items()}
            if isinstance(s.get("rgb"), Tensor) and s["rgb"].numel():
                s["rgb"] = torch.round(s["rgb"] * 255.0).to(torch.uint8)
            if isinstance(s.get("mask"), Tensor) and s["mask"].numel():
                s["mask"] = s["mask"].to(torch.uint8)
            self.store[i] = s
        s = dict(self.store[i])
        if isinstance(s.get("rgb"), Tensor) and s["rgb"].dtype == torch.uint8:
            s["rgb"] = s["rgb"].float() / 255.0
        if isinstance(s.get("mask"), Tensor) and s["mask"].dtype == torch.uint8:
            s["mask"] = s["mask"].to(torch.int64)
        return s


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: (v.to(device, non_blocking=True) if isinstance(v, Tensor) else v)
            for k, v in batch.items()}
