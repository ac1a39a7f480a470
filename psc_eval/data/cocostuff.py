"""``cocostuff``: COCO-stuff 10k (``.mat`` labels) or 164k (PNG label maps), 182 classes.

Class convention (recorded in ``class_convention``, in every sample's
``class_convention`` and in the run's dataset fingerprint): class index = COCO-stuff
label id - 1, so indices 0..181 follow the official ``labels.txt`` (0 person ... 90
hair brush, 91 banner ... 181 wood; eleven thing ids are unused by the annotations);
255 = unlabeled.

- **10k** (``--root`` holds ``images/``, ``annotations/``, ``imageLists/``)::

      images/<id>.jpg
      annotations/<id>.mat       field ``S``: HxW label ids 1..182, 0 = unlabeled
      imageLists/train.txt       9000 ids      imageLists/test.txt   1000 ids
      imageLists/all.txt         10000 ids (optional)

  ``S`` is read with ``scipy.io.loadmat``; ``S - 1`` gives the class index and the
  unlabeled 0 becomes 255 (the conversion kazuto1011/deeplab-pytorch's cocostuff10k
  loader makes).

- **164k** (``--root`` holds ``images/`` and ``stuffthingmaps/``; ``annotations/``
  holding PNGs is accepted in place of ``stuffthingmaps/``)::

      images/{train2017,val2017}/<id>.jpg
      stuffthingmaps/{train2017,val2017}/<id>.png   values 0..181 (already id - 1), 255

  There are no list files: the ids are the image files in ``images/<split>/``, sorted.
  Official counts: 118287 train2017, 5000 val2017.

Splits are the names on disk: ``train`` / ``test`` / ``all`` select 10k, ``train2017`` /
``val2017`` select 164k. The default split is ``test`` (10k's evaluation split). When the
root holds only the 164k layout, ``test`` means ``val2017`` and ``train`` means
``train2017`` (COCO 2017's test images carry no stuff labels), and the dataset records
the real split name. A count different from the official one is a ``DataError`` unless
``allow_partial=True`` / ``--allow-partial``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import (
    DEFAULT_SIZE,
    IGNORE_INDEX,
    Sample,
    SegDataset,
    check_mask,
    decode_image,
    decode_mask,
    make_sample,
    resize_image,
    resize_mask,
    skipped_sample,
)
from .voc import check_count, read_id_list, require_root

# COCO-stuff labels.txt, label ids 1..182 in order (index = id - 1).
CLASS_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "street sign", "stop sign", "parking meter", "bench",
    "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe",
    "hat", "backpack", "umbrella", "shoe", "eye glasses", "handbag", "tie", "suitcase",
    "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
    "skateboard", "surfboard", "tennis racket", "bottle", "plate", "wine glass", "cup", "fork",
    "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot",
    "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "mirror",
    "dining table", "window", "desk", "toilet", "door", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "blender",
    "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush", "hair brush",
    "banner", "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage",
    "cardboard", "carpet", "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds",
    "counter", "cupboard", "curtain", "desk-stuff", "dirt", "door-stuff", "fence",
    "floor-marble", "floor-other", "floor-stone", "floor-tile", "floor-wood", "flower", "fog",
    "food-other", "fruit", "furniture-other", "grass", "gravel", "ground-other", "hill",
    "house", "leaves", "light", "mat", "metal", "mirror-stuff", "moss", "mountain", "mud",
    "napkin", "net", "paper", "pavement", "pillow", "plant-other", "plastic", "platform",
    "playingfield", "railing", "railroad", "river", "road", "rock", "roof", "rug", "salad",
    "sand", "sea", "shelf", "sky-other", "skyscraper", "snow", "solid-other", "stairs",
    "stone", "straw", "structural-other", "table", "tent", "textile-other", "towel", "tree",
    "vegetable", "wall-brick", "wall-concrete", "wall-other", "wall-panel", "wall-stone",
    "wall-tile", "wall-wood", "water-other", "waterdrops", "window-blind", "window-other",
    "wood",
)
assert len(CLASS_NAMES) == 182

COUNTS_10K = {"train": 9000, "test": 1000, "all": 10000}
COUNTS_164K = {"train2017": 118287, "val2017": 5000}
# Without the 10k layout, 10k split names stand for the 164k split that plays their role.
ALIASES_164K = {"train": "train2017", "test": "val2017"}
_IMAGE_EXTS = {".jpg", ".jpeg", ".png"}

CONVENTION_10K = (
    "cocostuff: 182 classes, index = COCO-stuff label id - 1; "
    "10k .mat field S (1..182, 0 = unlabeled) -> S - 1, unlabeled -> 255"
)
CONVENTION_164K = (
    "cocostuff: 182 classes, index = COCO-stuff label id - 1; "
    "164k stuffthingmaps PNG values used as stored (0..181, 255 = unlabeled)"
)


def mat_to_mask(S: np.ndarray, where: object) -> np.ndarray:
    """COCO-stuff 10k ``S`` (label ids 1..182, 0 = unlabeled) -> class index, 255 = unlabeled."""
    if S.ndim != 2 or not np.issubdtype(S.dtype, np.number):
        raise DataError(
            f"field S has shape {S.shape} and dtype {S.dtype}, {where}, "
            "expected a 2-D array of label ids"
        )
    S = S.astype(np.int64)
    bad = (S < 0) | (S > len(CLASS_NAMES))
    if bad.any():
        vals = sorted(set(np.unique(S[bad]).tolist()))[:5]
        raise DataError(
            f"field S holds label ids {vals} outside 0..{len(CLASS_NAMES)}, {where}, "
            "store COCO-stuff label ids (0 = unlabeled)"
        )
    m = S - 1
    m[m < 0] = IGNORE_INDEX
    return m


def load_mat_mask(path: Path, image_hw: tuple[int, int] | None) -> np.ndarray:
    """Read a 10k ``.mat`` annotation -> int64 HxW class indices, checked against the image size."""
    from scipy.io import loadmat  # scipy is heavy; only 10k needs it
    from scipy.io.matlab import MatReadError

    if not path.is_file():
        raise DataError(f"annotation file not found, {path}, check the annotations/ folder")
    try:
        mat = loadmat(str(path))
    except NotImplementedError:  # MATLAB v7.3 files are HDF5, which loadmat does not read
        raise DataError(
            f".mat annotation is a MATLAB v7.3 (HDF5) file, {path}, "
            "use the COCO-stuff 10k release's v5 .mat files or re-save with -v7"
        ) from None
    except (MatReadError, OSError, ValueError, TypeError, EOFError, KeyError) as e:
        raise DataError(
            f"cannot read .mat annotation ({type(e).__name__}), {path}, replace the corrupt file"
        ) from None
    if "S" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise DataError(
            f".mat annotation has no field 'S' (fields: {keys}), {path}, "
            "use COCO-stuff 10k annotations"
        )
    m = mat_to_mask(np.asarray(mat["S"]), path)
    return check_mask(m, len(CLASS_NAMES), image_hw, path)


def _list_images(folder: Path) -> list[str]:
    with os.scandir(folder) as it:
        names = [
            e.name for e in it
            if e.is_file() and not e.name.startswith(".")
            and os.path.splitext(e.name)[1].lower() in _IMAGE_EXTS
        ]
    return sorted(names)


class CocoStuffDataset(SegDataset):
    """COCO-stuff, 182 classes (label id - 1), 10k or 164k detected from split and folders."""

    name = "cocostuff"
    num_classes = len(CLASS_NAMES)
    class_names = CLASS_NAMES
    default_split = "test"
    default_size = DEFAULT_SIZE
    class_convention = CONVENTION_10K

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "test",
        size: int = DEFAULT_SIZE,
        allow_partial: bool = False,
        **_: object,
    ):
        known = list(COUNTS_10K) + list(COUNTS_164K)
        if split not in known:
            raise DataError(
                f"unknown cocostuff split {split!r}, in --split, use one of {', '.join(known)}"
            )
        root_p = require_root(root, "cocostuff", "the folder holding images/ and annotations/")
        has_10k = (root_p / "imageLists").is_dir() or (
            (root_p / "annotations").is_dir()
            and any(p.suffix == ".mat" for p in _first_entries(root_p / "annotations"))
        )
        if (
            split in ALIASES_164K
            and not has_10k
            and self._maps_root(root_p, ALIASES_164K[split]) is not None
        ):
            split = ALIASES_164K[split]
        super().__init__(root_p, split, size)
        if split in COUNTS_164K:
            self._init_164k(root_p, split, allow_partial)
        else:
            self._init_10k(root_p, split, allow_partial)

    @staticmethod
    def _maps_root(root: Path, split: str) -> Path | None:
        for name in ("stuffthingmaps", "annotations"):
            d = root / name / split
            if d.is_dir():
                return d
        return None

    def _init_10k(self, root: Path, split: str, allow_partial: bool) -> None:
        self.variant = "10k"
        self.class_convention = CONVENTION_10K
        self.image_dir = root / "images"
        self.mask_dir = root / "annotations"
        for d, what in ((self.image_dir, "images"), (self.mask_dir, "annotations")):
            if not d.is_dir():
                raise DataError(
                    f"COCO-stuff 10k {what} folder not found, {d}, "
                    "pass --root the folder holding images/, annotations/ and imageLists/"
                )
        self.list_file = root / "imageLists" / f"{split}.txt"
        self.ids = read_id_list(self.list_file, f"cocostuff 10k {split}")
        check_count(len(self.ids), split, COUNTS_10K[split], self.list_file, allow_partial,
                    "cocostuff 10k")

    def _init_164k(self, root: Path, split: str, allow_partial: bool) -> None:
        self.variant = "164k"
        self.class_convention = CONVENTION_164K
        self.image_dir = root / "images" / split
        if not self.image_dir.is_dir():
            raise DataError(
                f"COCO-stuff 164k image folder not found, {self.image_dir}, "
                f"extract COCO {split}.zip into {root / 'images'}"
            )
        maps = self._maps_root(root, split)
        if maps is None:
            raise DataError(
                f"COCO-stuff 164k label maps not found, {root / 'stuffthingmaps' / split}, "
                f"extract stuffthingmaps_trainval2017.zip into {root / 'stuffthingmaps'}"
            )
        self.mask_dir = maps
        self.list_file = None
        self._files = _list_images(self.image_dir)
        if not self._files:
            raise DataError(
                f"no images in the folder, {self.image_dir}, extract COCO {split}.zip there"
            )
        self.ids = [os.path.splitext(f)[0] for f in self._files]
        check_count(len(self.ids), split, COUNTS_164K[split], self.image_dir, allow_partial,
                    "cocostuff 164k")

    def load(self, index: int) -> Sample:
        sid = self.ids[index]
        if self.variant == "10k":
            rgb, reason = decode_image(self.image_dir / f"{sid}.jpg")
        else:
            rgb, reason = decode_image(self.image_dir / self._files[index])
        if rgb is None:
            s = skipped_sample(sid, reason or "no colour", self.size)
        else:
            hw = rgb.shape[:2]
            if self.variant == "10k":
                mask = load_mat_mask(self.mask_dir / f"{sid}.mat", hw)
            else:
                mask = decode_mask(self.mask_dir / f"{sid}.png", self.num_classes, hw)
            s = make_sample(sid, resize_image(rgb, self.size), resize_mask(mask, self.size))
        s["class_convention"] = self.class_convention
        return s

    def subset(self, limit: int | None) -> CocoStuffDataset:
        super().subset(limit)
        if self.variant == "164k":
            self._files = self._files[: len(self.ids)]
        return self

    def fingerprint(self) -> dict:
        fp = super().fingerprint()
        fp["variant"] = self.variant
        return fp


def _first_entries(folder: Path, n: int = 16) -> list[Path]:
    """A few entries of a folder (enough to tell .mat annotations from PNG folders)."""
    out: list[Path] = []
    with os.scandir(folder) as it:
        for e in it:
            out.append(Path(e.path))
            if len(out) >= n:
                break
    return out
