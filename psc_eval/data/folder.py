"""``folder``: any folder of colour images, no masks (for ``psnr``; ``miou`` needs masks).

The folder is searched recursively; hidden files and folders (names starting with
``.``) are left out, and so are files whose extension is not an image extension
(``.jpg .jpeg .png .bmp .gif .tif .tiff .webp .ppm .pgm .pnm``, any case), so a README
or a ``.json`` next to the images does no harm. Ids are the POSIX paths relative
to the folder, sorted. A file with an image extension that does not decode is a
``DataError`` naming it when it is loaded; an image without colour is skipped.

``split`` ``all`` (the default) takes the whole folder; any other split names a
sub-folder (``--root photos --split val`` reads ``photos/val/``).

No masks: ``has_masks`` is False, ``num_classes`` 0 and every mask is all 255.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError
from .base import (
    DEFAULT_SIZE,
    Sample,
    SegDataset,
    decode_image,
    make_sample,
    resize_image,
    skipped_sample,
)
from .voc import require_root

IMAGE_EXTS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm"}
)


def list_image_files(folder: Path) -> list[str]:
    """Relative POSIX paths of the image files under ``folder`` (recursive, sorted)."""
    out: list[str] = []
    seen: set[str] = set()
    # Symlinked sub-folders are followed (datasets are often linked in), each real folder once.
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = Path(dirpath).relative_to(folder)
        for f in filenames:
            if f.startswith(".") or os.path.splitext(f)[1].lower() not in IMAGE_EXTS:
                continue
            out.append((rel / f).as_posix())
    return sorted(out)


class FolderDataset(SegDataset):
    """Images from a folder (recursive), colour only: no masks."""

    name = "folder"
    num_classes = 0
    class_names = ()
    has_masks = False
    default_split = "all"
    default_size = DEFAULT_SIZE
    class_convention = "folder: no masks (all 255)"

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "all",
        size: int = DEFAULT_SIZE,
        **_: object,
    ):
        root_p = require_root(root, "folder", "a folder of images")
        super().__init__(root_p, split, size)
        self.image_dir = root_p if split == "all" else root_p / split
        if not self.image_dir.is_dir():
            raise DataError(
                f"split folder not found, {self.image_dir}, "
                "use --split all (the whole folder) or the name of a sub-folder"
            )
        self.ids = list_image_files(self.image_dir)
        if not self.ids:
            exts = " ".join(sorted(IMAGE_EXTS))
            raise DataError(
                f"no image files found, in {self.image_dir}, "
                f"add images with one of the extensions {exts}"
            )

    def load(self, index: int) -> Sample:
        sid = self.ids[index]
        rgb, reason = decode_image(self.image_dir / sid)
        if rgb is None:
            s = skipped_sample(sid, reason or "no colour", self.size)
        else:
            s = make_sample(sid, resize_image(rgb, self.size), None)
        s["class_convention"] = self.class_convention
        return s
