"""Colorized images saved by any framework, scored as a row (``--predictions DIR``)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from .color import rgb_to_lab
from .colorizer import check_L, check_n_samples
from .data.base import decode_image
from .errors import DataError, PscError
from .io import sha256_file

PREDICTION_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


class PredictionsColorizer:
    """Colorized images saved by any framework, scored as a row (``--predictions DIR``).

    ``DIR/<id>.<ext>`` per image (``DIR/<id>_<k>.<ext>``, k = 0, 1, ... for several
    samples per image), each at the evaluation size (``--size``; another size is an error,
    never resized); its chroma is joined with the ORIGINAL L, as for any colorizer. Every
    file must be read by the run (a stray extra file is an error). Files are keyed
    by content: ``weights_sha256`` is a digest of every file, so changed outputs are
    never served from the cache.
    """

    oracle = False
    by_id = True

    def __init__(self, folder: str | Path, name: str | None = None):

        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise DataError(f"predictions folder not found, {self.folder}, pass the folder "
                            "holding <id>.png files")
        self.files: dict[str, Path] = {}
        for p in sorted(self.folder.iterdir()):
            if p.suffix.lower() in PREDICTION_SUFFIXES and p.is_file():
                if p.stem in self.files:
                    raise DataError(f"two predictions for {p.stem!r} ({self.files[p.stem].name},"
                                    f" {p.name}), {self.folder}, keep one file per id")
                self.files[p.stem] = p
        if not self.files:
            raise DataError(f"no image files in the predictions folder, {self.folder}, "
                            f"save one {'/'.join(PREDICTION_SUFFIXES)} file per image id")
        per_id = {}
        for stem in self.files:
            base, _, k = stem.rpartition("_")
            if base and k.isdigit():
                per_id.setdefault(base, set()).add(int(k))
        self.n_per_id = min((len(v) for v in per_id.values()), default=1) if per_id else 1
        self.stochastic = self.n_per_id > 1
        self.name = name or f"predictions-{self.folder.name}"
        h = hashlib.sha256()

        for stem, p in self.files.items():
            h.update(f"{stem}:{sha256_file(p)}".encode())
        self.weights_sha256 = h.hexdigest()
        self.config = {"predictions": str(self.folder.resolve()), "files": len(self.files),
                       "samples_per_image": self.n_per_id}

    def _ids_of(self, image_id: str, n: int) -> list[str]:
        if n == 1 and image_id in self.files:
            return [image_id]
        return [f"{image_id}_{k}" for k in range(n)]

    def check_ids(self, ids: Sequence[str], scored: Sequence[str], n_samples: int = 1) -> None:
        """Every scored image has its file(s); no file names an image the dataset lacks."""

        missing = [i if n_samples == 1 else f for i in scored
                   for f in self._ids_of(i, n_samples) if f not in self.files]
        # every file must be one the run reads: a stray <id>_1.png beside <id>.png, or a
        # third sample of one image, would otherwise be ignored without a word
        used = {f for i in ids for f in self._ids_of(i, n_samples)}
        extra = [s for s in self.files if s not in used]
        for what, bad in (("missing", missing), ("extra", extra)):
            if bad:
                shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
                raise DataError(
                    f"{len(bad)} {what} prediction ids ({shown}), {self.folder}, name the files "
                    "<id>.png after the dataset's ids (psc-eval data preview shows them)"
                )

    def colorize(self, L: Tensor, n_samples: int = 1, *, generator: torch.Generator | None = None,
                 ids: Sequence[str] | None = None) -> Tensor:

        check_L(L)
        if n_samples > 1 and not self.stochastic:
            check_n_samples(self, n_samples)
        if ids is None or len(ids) != L.shape[0]:
            raise PscError("PredictionsColorizer needs the image ids, in colorize(), "
                           "call it through the harness")
        H, W = L.shape[-2:]
        out = []
        for image_id in ids:
            samples = []
            for stem in self._ids_of(image_id, n_samples):
                if stem not in self.files:
                    raise DataError(f"no prediction for {stem!r}, {self.folder}, "
                                    "save one file per image id")
                arr, skip = decode_image(self.files[stem])
                if arr is None:
                    raise DataError(f"prediction has no colour ({skip}), "
                                    f"{self.files[stem]}, save the colorized RGB image")
                rgb = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255.0
                if rgb.shape[-2:] != (H, W):
                    # a resize would score another image's chroma, or this one's distorted:
                    # which pixel of the file belongs to which pixel of the scored image is
                    # only certain at the scored size
                    h, w = rgb.shape[-2:]
                    raise DataError(
                        f"prediction is {w}x{h} pixels but image {image_id!r} is scored at "
                        f"{W}x{H}, {self.files[stem]}, save predictions at the evaluation "
                        f"size {W}x{H} (or pass the --size they were made at)")
                samples.append(rgb_to_lab(rgb.to(L.device, L.dtype))[0, 1:])
            out.append(torch.stack(samples))
        return torch.stack(out)  # (B,n,2,H,W)


