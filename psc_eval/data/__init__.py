"""Datasets: one sample format (see ``base``), a lazy registry, and the data rules."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ..errors import UnknownNameError
from .base import DEFAULT_SIZE, IGNORE_INDEX, Sample, SegDataset, collate

_DATASETS: dict[str, tuple[str, str]] = {
    "toy": ("psc_eval.data.toy:ToyDataset", "procedural scenes, 10 classes, no files (default)"),
    "voc": ("psc_eval.data.voc:VOCDataset", "Pascal VOC 2012 (+ SBD train_aug), --root VOCdevkit"),
    "cocostuff": (
        "psc_eval.data.cocostuff:CocoStuffDataset",
        "COCO-stuff 10k (.mat) or 164k (PNG maps), 182 classes, --root",
    ),
    "folder": ("psc_eval.data.folder:FolderDataset", "any image folder, no masks (psnr; not miou)"),
}


def list_datasets() -> dict[str, str]:
    return {k: v[1] for k, v in _DATASETS.items()}


def get_dataset(
    name: str,
    root: str | Path | None = None,
    split: str | None = None,
    size: int | None = None,
    **kwargs: Any,
) -> SegDataset:
    """Build a dataset by name.

    ``split=None`` takes the dataset's evaluation split, ``size=None`` its default size
    (128, the paper's input, for real datasets; 64 for ``toy``, so that the whole toy
    benchmark trains on a laptop CPU with the paper's factor of 4 to the 16x16 generator).
    """
    if name not in _DATASETS:
        raise UnknownNameError(
            f"unknown dataset {name!r}, known: {', '.join(_DATASETS)}, run 'psc-eval ls'"
        )
    mod, _, attr = _DATASETS[name][0].partition(":")
    cls = getattr(importlib.import_module(mod), attr)
    return cls(root=root, split=split or cls.default_split, size=size or cls.default_size, **kwargs)


__all__ = [
    "DEFAULT_SIZE",
    "IGNORE_INDEX",
    "Sample",
    "SegDataset",
    "collate",
    "get_dataset",
    "list_datasets",
]
