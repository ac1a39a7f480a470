"""The one sample format, image / mask decoding rules and the dataset base class.

A sample is a dict::

    {"id": str,
     "rgb":  (3,H,W) float32 in [0,1]   (the resized uint8 image / 255)
     "L":    (1,H,W) float32 Lab L in [0,100]
     "ab":   (2,H,W) float32 Lab a, b
     "mask": (H,W) int64, class index or 255 = ignore (all 255 when the dataset has no masks)
     "skip": None, or a reason string (the image has no colour: never scored)}

Resizing is a square resize to ``size`` (default 128, the paper's input size):
antialiased bilinear for images (PIL's BILINEAR filter, which widens its support
when it shrinks, so it averages instead of aliasing), nearest for masks (labels
must never be blended). Masks are validated BEFORE any resize.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..color import rgb_to_lab
from ..errors import DataError

IGNORE_INDEX = 255
DEFAULT_SIZE = 128
# An RGB image whose channels differ by at most this many levels everywhere has no colour.
GRAY_TOLERANCE = 2

Sample = dict[str, Any]

_GRAY_MODES = {"L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "1", "F"}


# Largest image decoded (pixels): a header claiming more is refused before any pixel is
# allocated (PIL's own bomb check fires only at 2x its 89M-pixel warning limit).
MAX_IMAGE_PIXELS = 64_000_000


def _too_large(path: Path, what: str, size: str = "") -> DataError:
    return DataError(
        f"{what} header claims {size or 'more'} pixels, over the limit of "
        f"{MAX_IMAGE_PIXELS:,} (psc_eval.data.base.MAX_IMAGE_PIXELS), {path}, "
        "downscale or remove the file"
    )


def _check_pixels(im: Image.Image, path: Path, what: str) -> None:
    if im.width * im.height > MAX_IMAGE_PIXELS:
        raise _too_large(path, what, f"{im.width}x{im.height}")


def decode_image(path: str | Path) -> tuple[np.ndarray | None, str | None]:
    """Decode an image file by content -> (uint8 HxWx3 RGB, None) or (None, skip reason).

    EXIF orientation is ignored (masks follow the stored pixels); alpha is dropped;
    palette, CMYK and 16-bit colour images become 8-bit RGB. A source without colour
    returns a skip reason instead of an array.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file not found, {path}, check the dataset root and list files")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                _check_pixels(im, path, "image")
                im.load()
                mode = im.mode
                if mode in _GRAY_MODES:
                    return None, f"grayscale source (PIL mode {mode})"
                if mode == "P":
                    im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                if mode in ("RGBA", "LA", "PA", "RGBa"):
                    im = im.convert("RGBA").convert("RGB")
                elif im.mode != "RGB":
                    im = im.convert("RGB")
                arr = np.asarray(im, dtype=np.uint8).copy()
    except Image.DecompressionBombError:  # PIL's own check, at open, for huge headers
        raise _too_large(path, "image") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(
            f"cannot decode image ({type(e).__name__}: {e}), {path}, "
            "replace or remove the corrupt file"
        ) from None
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise DataError(f"image decoded to shape {arr.shape}, {path}, convert it to RGB")
    a = arr.astype(np.int16)
    spread = np.maximum(np.abs(a[..., 0] - a[..., 1]), np.abs(a[..., 1] - a[..., 2]))
    spread = np.maximum(spread, np.abs(a[..., 0] - a[..., 2]))
    if int(spread.max()) <= GRAY_TOLERANCE:
        return None, f"grayscale content (RGB channels differ by <= {GRAY_TOLERANCE} levels)"
    return arr, None


def decode_mask(
    path: str | Path, num_classes: int, image_hw: tuple[int, int] | None
) -> np.ndarray:
    """Read a palette-index (P) or L mask -> int64 HxW, checked for values and size."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"mask file not found, {path}, check the dataset's mask folder")
    try:
        with Image.open(path) as im:
            _check_pixels(im, path, "mask")
            im.load()
            if im.mode not in ("P", "L"):
                raise DataError(
                    f"mask has PIL mode {im.mode} (an RGB colour visualisation?), {path}, "
                    "use palette-index (P) or L masks holding class indices"
                )
            m = np.asarray(im, dtype=np.uint8).astype(np.int64)
    except Image.DecompressionBombError:
        raise _too_large(path, "mask") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DataError(
            f"cannot decode mask ({type(e).__name__}), {path}, replace the corrupt file"
        ) from None
    return check_mask(m, num_classes, image_hw, path)


def check_mask(
    m: np.ndarray, num_classes: int, image_hw: tuple[int, int] | None, where: Any
) -> np.ndarray:
    if image_hw is not None and tuple(m.shape) != tuple(image_hw):
        raise DataError(
            f"mask size {m.shape[1]}x{m.shape[0]} differs from its image "
            f"{image_hw[1]}x{image_hw[0]}, {where}, regenerate the mask at the image's size"
        )
    bad = (m >= num_classes) & (m != IGNORE_INDEX) | (m < 0)
    if bad.any():
        vals = sorted(set(np.unique(m[bad]).tolist()))[:5]
        raise DataError(
            f"mask holds values {vals} outside {{0..{num_classes - 1}, {IGNORE_INDEX}}}, "
            f"{where}, store class indices (255 = ignore)"
        )
    return m


def resize_image(arr: np.ndarray, size: int) -> np.ndarray:
    if arr.shape[0] == size and arr.shape[1] == size:
        return arr
    # np.array (a copy): torch.from_numpy warns on the read-only view np.asarray gives.
    return np.array(Image.fromarray(arr).resize((size, size), Image.BILINEAR))


def resize_mask(m: np.ndarray, size: int) -> np.ndarray:
    if m.shape[0] == size and m.shape[1] == size:
        return m
    im = Image.fromarray(m.astype(np.uint8), mode="L")
    return np.asarray(im.resize((size, size), Image.NEAREST)).astype(np.int64)


def make_sample(
    sample_id: str, rgb_u8: np.ndarray, mask: np.ndarray | None, lab: np.ndarray | None = None
) -> Sample:
    """uint8 HxWx3 (+ optional HxW mask) -> the sample dict (Lab computed once here, or
    taken from ``lab`` (3,H,W) float32 when a cache already holds ``rgb_to_lab`` of it)."""
    rgb = torch.from_numpy(np.ascontiguousarray(rgb_u8)).permute(2, 0, 1).float() / 255.0
    lab = rgb_to_lab(rgb.unsqueeze(0))[0] if lab is None else torch.from_numpy(np.array(lab))
    H, W = rgb.shape[1:]
    if mask is None:
        m = torch.full((H, W), IGNORE_INDEX, dtype=torch.int64)
    else:
        m = torch.from_numpy(np.ascontiguousarray(mask)).to(torch.int64)
    return {"id": sample_id, "rgb": rgb, "L": lab[:1], "ab": lab[1:], "mask": m, "skip": None}


def skipped_sample(sample_id: str, reason: str, size: int) -> Sample:
    z = torch.zeros
    return {
        "id": sample_id,
        "rgb": z(3, size, size),
        "L": z(1, size, size),
        "ab": z(2, size, size),
        "mask": torch.full((size, size), IGNORE_INDEX, dtype=torch.int64),
        "skip": reason,
    }


def collate(samples: list[Sample]) -> dict[str, Any]:
    """Batch samples, setting aside the skipped ones (listed under ``skipped``)."""
    kept = [s for s in samples if s["skip"] is None]
    out: dict[str, Any] = {
        "ids": [s["id"] for s in kept],
        "skipped": [{"id": s["id"], "reason": s["skip"]} for s in samples if s["skip"]],
    }
    for k in ("rgb", "L", "ab", "mask"):
        out[k] = torch.stack([s[k] for s in kept]) if kept else None
    return out


class SegDataset(torch.utils.data.Dataset):
    """Base class: a list of ids, a loader for one id, and the dataset fingerprint."""

    name: str = "?"
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    has_masks: bool = True
    # How class indices relate to the source's labels (recorded in results).
    class_convention: str = ""
    default_split: str = "val"
    default_size: int = DEFAULT_SIZE

    def __init__(self, root: str | Path | None, split: str, size: int = DEFAULT_SIZE):
        if size < 8:
            raise DataError(f"image size must be >= 8, got {size}, in --size, use e.g. 128")
        self.root = None if root is None else Path(root)
        self.split = split
        self.size = int(size)
        self.ids: list[str] = []

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int) -> Sample:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, index: int) -> Sample:
        return self.load(index)

    def subset(self, limit: int | None) -> SegDataset:
        """The first ``limit`` ids (the same object when no limit)."""
        if limit is None:
            return self
        if limit < 1:
            raise DataError(f"--limit must be >= 1, got {limit}, in the options, drop it or pass 1+")
        self.ids = self.ids[:limit]
        return self

    def fingerprint(self) -> dict[str, Any]:
        """Identity of what is evaluated: name, root, split, size and a hash of the ids."""
        h = hashlib.sha256(json.dumps(self.ids).encode()).hexdigest()
        return {
            "name": self.name,
            "root": None if self.root is None else str(self.root.resolve()),
            "split": self.split,
            "size": self.size,
            "num_images": len(self.ids),
            "ids_sha256": h,
            "class_convention": self.class_convention,
        }

    def fingerprint_key(self) -> str:
        return hashlib.sha256(
            json.dumps(self.fingerprint(), sort_keys=True).encode()
        ).hexdigest()[:16]
