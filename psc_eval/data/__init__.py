"""Datasets: one sample format (see ``base``), a lazy registry, and the data rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import DataError
from ..registry import Registry
from .base import DEFAULT_SIZE, IGNORE_INDEX, Sample, SegDataset, collate

# name -> "module:attr" of the dataset class (imported when the dataset is opened).
DATASETS = Registry("dataset")
DATASETS.add("toy", "psc_eval.data.toy:ToyDataset",
             "procedural scenes, 10 classes, no files (default)")
DATASETS.add("voc", "psc_eval.data.voc:VOCDataset",
             "Pascal VOC 2012 (+ SBD train_aug), --root VOCdevkit")
DATASETS.add("cocostuff", "psc_eval.data.cocostuff:CocoStuffDataset",
             "COCO-stuff 10k (.mat) or 164k (PNG maps), 182 classes, --root")
DATASETS.add("folder", "psc_eval.data.folder:FolderDataset",
             "any image folder, no masks (psnr; not miou)")

# Training splits per dataset, in order of preference (Sec. 4.1: VOC train_aug, 10,582
# images; plain VOC train, 1,464, is the fallback of estimates that need only some
# training data, e.g. the semantic scorer's chroma prior). Others: ("train",).
TRAIN_SPLITS = {"voc": ("train_aug", "train"), "cocostuff": ("train",)}


def train_splits(name: str) -> tuple[str, ...]:
    """The training splits of dataset ``name``, preferred first."""
    return TRAIN_SPLITS.get(name, ("train",))


def list_datasets() -> dict[str, str]:
    """name -> one-line description (imports no dataset module)."""
    return DATASETS.list()


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
    cls = DATASETS.get(name)
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 8):
        raise DataError(f"image size must be an integer >= 8, got {size!r}, in --size, "
                        "use e.g. 128 (real data) or 64 (toy)")
    return cls(root=root, split=split or cls.default_split,
               size=cls.default_size if size is None else size, **kwargs)


__all__ = [
    "DATASETS",
    "DEFAULT_SIZE",
    "IGNORE_INDEX",
    "TRAIN_SPLITS",
    "Sample",
    "SegDataset",
    "collate",
    "get_dataset",
    "list_datasets",
    "train_splits",
]
