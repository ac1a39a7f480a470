"""``voc``: Pascal VOC 2012 segmentation (+ the SBD ``train_aug`` set) from a local VOCdevkit.

``--root`` is either ``VOCdevkit`` or ``VOCdevkit/VOC2012`` (both are detected)::

    VOCdevkit/VOC2012/
      JPEGImages/<id>.jpg
      SegmentationClass/<id>.png           palette PNG, index 0..20, 255 = boundary/ignore
      ImageSets/Segmentation/{train,val,trainval}.txt   one id per line
      SegmentationClassAug/<id>.png        (train_aug only) SBD + VOC masks, 0..20, 255
      ImageSets/SegmentationAug/train_aug.txt            (train_aug only) list, see below

Splits and their official counts (a different count is a ``DataError`` unless
``allow_partial=True`` / ``--allow-partial``): ``train`` 1464, ``val`` 1449 (the
evaluation split, default), ``trainval`` 2913, ``train_aug`` 10582 (SBD train+val
plus VOC train, minus VOC val: the set DeepLab's judge is trained on),
``trainval_aug`` 12031.

The ``*_aug`` masks folder ``SegmentationClassAug`` is looked for inside VOC2012 and
next to it; the list file in the places the common distributions put it
(``ImageSets/SegmentationAug/``, ``ImageSets/Segmentation/``, ``list/``). Both list
formats are read: DeepLab's two paths per line
(``/JPEGImages/2007_000032.jpg /SegmentationClassAug/2007_000032.png``) and one id per
line. Only the id is taken from a line; files are then read from ``JPEGImages`` and
the detected mask folder.

Loading is lazy: ``__init__`` checks the folders and the list, ``load(i)`` decodes one
image and its mask (validated for values and size before the square resize).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from .base import (
    DEFAULT_SIZE,
    Sample,
    SegDataset,
    decode_image,
    decode_mask,
    make_sample,
    resize_image,
    resize_mask,
    skipped_sample,
)

CLASS_NAMES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)
OFFICIAL_COUNTS = {
    "train": 1464, "val": 1449, "trainval": 2913, "train_aug": 10582, "trainval_aug": 12031,
}
AUG_SPLITS = ("train_aug", "trainval_aug")
# Extensions stripped from a list entry to get its id (DeepLab lists name files).
_LIST_EXTS = {".jpg", ".jpeg", ".png", ".mat", ".bmp", ".tif", ".tiff", ".webp"}


def read_id_list(path: Path, what: str) -> list[str]:
    """Ids from a list file: one id per line, or ``image_path [mask_path]`` per line.

    The id is the file name of the first field without its image extension. Blank
    lines are ignored; a line with more than two fields, a duplicate id or a list
    without ids is a ``DataError`` naming the file.
    """
    if not path.is_file():
        raise DataError(
            f"{what} list file not found, {path}, restore it from the dataset's download"
        )
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")  # a BOM is not part of an id
    except OSError as e:
        raise DataError(f"cannot read list file ({e.strerror}), {path}, check its permissions")
    ids: list[str] = []
    seen: set[str] = set()
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) > 2:
            raise DataError(
                f"list line {n} has {len(parts)} fields, {path}, "
                "use one id or 'image_path mask_path' per line"
            )
        name = parts[0].replace("\\", "/").rsplit("/", 1)[-1]
        stem, dot, ext = name.rpartition(".")
        if dot and f".{ext.lower()}" in _LIST_EXTS:
            name = stem
        if not name:
            raise DataError(f"list line {n} names no file, {path}, fix or remove the line")
        if name in seen:
            raise DataError(f"id {name!r} is listed twice (line {n}), {path}, remove the duplicate")
        seen.add(name)
        ids.append(name)
    if not ids:
        raise DataError(f"{what} list is empty, {path}, restore the list from the download")
    return ids


def check_count(
    n: int, split: str, expected: int | None, where: Path, allow_partial: bool, dataset: str
) -> None:
    """Refuse a split whose size is not the official one, unless partial data is allowed."""
    if expected is None or n == expected or allow_partial:
        return
    raise DataError(
        f"{dataset} split {split!r} has {n} images, the official count is {expected}, "
        f"in {where}, complete the download or pass --allow-partial"
    )


def require_root(root: str | Path | None, dataset: str, hint: str) -> Path:
    if root is None:
        raise DataError(f"dataset {dataset!r} needs a folder, in --root, pass {hint}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"dataset folder not found, {root}, pass {hint} in --root")
    return root


def find_voc2012(root: Path) -> Path:
    """The VOC2012 folder from ``--root`` = VOCdevkit/VOC2012, VOCdevkit, or VOCdevkit's parent."""
    for cand in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (cand / "JPEGImages").is_dir():
            return cand
    raise DataError(
        f"no VOC2012/JPEGImages folder found, in {root}, "
        "pass --root VOCdevkit or VOCdevkit/VOC2012 of an extracted VOCtrainval_11-May-2012.tar"
    )


def _first_dir(cands: list[Path]) -> Path | None:
    return next((c for c in cands if c.is_dir()), None)


def _first_file(cands: list[Path]) -> Path | None:
    return next((c for c in cands if c.is_file()), None)


class VOCDataset(SegDataset):
    """Pascal VOC 2012, 21 classes (0 = background), 255 = boundary / ignore."""

    name = "voc"
    num_classes = len(CLASS_NAMES)
    class_names = CLASS_NAMES
    default_split = "val"
    default_size = DEFAULT_SIZE
    class_convention = "voc: 21 classes 0..20 (0 = background) as stored, 255 = boundary/ignore"

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "val",
        size: int = DEFAULT_SIZE,
        allow_partial: bool = False,
        **_: object,
    ):
        if split not in OFFICIAL_COUNTS:
            raise DataError(
                f"unknown voc split {split!r}, in --split, use one of {', '.join(OFFICIAL_COUNTS)}"
            )
        super().__init__(require_root(root, "voc", "VOCdevkit or VOCdevkit/VOC2012"), split, size)
        base = find_voc2012(self.root)
        self.base = base
        self.image_dir = base / "JPEGImages"
        if split in AUG_SPLITS:
            self.mask_dir, self.list_file = self._find_aug(base, split)
        else:
            self.mask_dir = base / "SegmentationClass"
            if not self.mask_dir.is_dir():
                raise DataError(
                    f"mask folder not found, {self.mask_dir}, "
                    "extract the full VOC2012 trainval archive (it holds SegmentationClass/)"
                )
            self.list_file = base / "ImageSets" / "Segmentation" / f"{split}.txt"
        self.ids = read_id_list(self.list_file, f"voc {split}")
        check_count(len(self.ids), split, OFFICIAL_COUNTS[split], self.list_file,
                    allow_partial, "voc")

    def _find_aug(self, base: Path, split: str) -> tuple[Path, Path]:
        roots = [base, base.parent]
        if self.root not in roots:
            roots.append(self.root)
        mask_dir = _first_dir([r / "SegmentationClassAug" for r in roots])
        if mask_dir is None:
            raise DataError(
                f"SegmentationClassAug folder not found, in {base} or {base.parent}, "
                f"put the SBD-augmented masks at {base / 'SegmentationClassAug'} for {split}"
            )
        cands: list[Path] = []
        for r in roots + [mask_dir.parent]:
            cands += [
                r / "ImageSets" / "SegmentationAug" / f"{split}.txt",
                r / "ImageSets" / "Segmentation" / f"{split}.txt",
                r / "list" / f"{split}.txt",
                r / f"{split}.txt",
            ]
        cands = list(dict.fromkeys(cands))
        list_file = _first_file(cands)
        if list_file is None:
            raise DataError(
                f"{split} list file not found, looked for {cands[0]} and "
                f"{len(cands) - 1} other places, put {split}.txt (one id or "
                "'/JPEGImages/x.jpg /SegmentationClassAug/x.png' per line) there"
            )
        return mask_dir, list_file

    def load(self, index: int) -> Sample:
        sid = self.ids[index]
        rgb, reason = decode_image(self.image_dir / f"{sid}.jpg")
        if rgb is None:
            s = skipped_sample(sid, reason or "no colour", self.size)
        else:
            mask = decode_mask(self.mask_dir / f"{sid}.png", self.num_classes, rgb.shape[:2])
            s = make_sample(sid, resize_image(rgb, self.size), resize_mask(mask, self.size))
        s["class_convention"] = self.class_convention
        return s

    def fingerprint(self) -> dict:
        fp = super().fingerprint()
        fp["list_file"] = str(self.list_file.resolve())
        fp["mask_dir"] = str(self.mask_dir.resolve())
        return fp
