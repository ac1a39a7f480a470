"""THE colorize path: draw samples with the seeding scheme, check, recombine with the original L.

Every command that shows or scores a colorization goes through here (the evaluation loop,
sample grids, the naturalness study's stimuli, the naturalness proxy), so a (seed, image,
sample) gets the same chroma everywhere.

Seeding. The evaluation loop colorizes the dataset in canonical batches: consecutive runs
of ``batch_size`` dataset indices from index 0 (the last one shorter). The generator of the
batch starting at index ``start`` is seeded with ``batch_seed(seed, start)``, so a batch's
samples do not depend on which batches ran before it (resume and ``torchrun`` sharding give
the same samples). Sample 0 comes alone from that generator (the very draw of a one-sample
run); samples 1.. come together from a second one (``batch_seed(seed, start, stream=1)``),
so sample 0, and every metric scored on it, is the same whether or not more samples were
asked (``draw_samples``). A stochastic colorizer's draw for an image depends on the other
images of its batch, so ``colorize_indices`` always colorizes whole canonical batches and
keeps the images asked for: image i then gets exactly the chroma the loop scored for it.

Precision. Chroma is rounded to float16 (``AB_DTYPE``, the score cache's storage precision:
0.06 Lab units at |ab| = 128, well under one uint8 level) whether or not a cache is used, so
cached, resumed, uncached and displayed colorizations are bit-identical.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .color import lab_parts_to_rgb, to_uint8
from .colorizer import check_ab, run_colorizer
from .config import EvalConfig
from .data import collate
from .errors import PscError

AB_DTYPE = torch.float16
# The evaluation loop's default batch size: the canonical batches of every other command.
BATCH_SIZE = EvalConfig.batch_size


def batch_seed(seed: int, start: int, stream: int = 0) -> int:
    """The colorizer generator's seed for the batch starting at dataset index ``start``
    (``stream`` 0: sample 0; 1: the further samples of ``draw_samples``)."""
    tail = f":{int(stream)}" if stream else ""
    h = hashlib.sha256(f"psc-eval:{int(seed)}:{int(start)}{tail}".encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def asked_samples(colorizer: Any, n_samples: int) -> int:
    """Samples asked of a colorizer: a deterministic one gives one (repeated if more)."""
    return n_samples if getattr(colorizer, "stochastic", False) else 1


def draw_samples(colorizer: Any, L: Tensor, ab_true: Tensor, n_samples: int, seed: int,
                 start: int, device: str, ids: Sequence[str], name: str) -> Tensor:
    """One batch's checked chroma, (B, asked, 2, H', W'), asked = ``n_samples`` of a
    stochastic colorizer and 1 of a deterministic one.

    Sample 0 comes alone from the generator of ``batch_seed(seed, start)``, the very draw
    of a one-sample run; samples 1.. come together from stream 1. A colorizer reading
    stored samples by image id is asked once for all of them."""
    asked = asked_samples(colorizer, n_samples)
    if asked == 1 or getattr(colorizer, "by_id", False):
        parts = [(asked, 0)]
    else:
        parts = [(1, 0), (asked - 1, 1)]
    out = []
    for k, stream in parts:
        gen = torch.Generator(device=torch.device(device)).manual_seed(
            batch_seed(seed, start, stream))
        with torch.inference_mode():
            raw = run_colorizer(colorizer, L, ab_true, n_samples=k, generator=gen, ids=ids)
        out.append(check_ab(raw, ids, k, name))
    return out[0] if len(out) == 1 else torch.cat(out, dim=1)


def canonical_batches(n: int, batch_size: int = BATCH_SIZE) -> list[tuple[int, int]]:
    """(start, end) of the evaluation loop's batches over ``n`` dataset indices."""
    return [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]


def to_rgb_u8(L: Tensor, ab: Tensor) -> Tensor:
    """(B,3,H,W) uint8 RGB of one sample's chroma (B,2,H',W') with the ORIGINAL L, as an
    image file would hold it (a lower-resolution ab is resized to L's size)."""
    with torch.inference_mode():
        return to_uint8(lab_parts_to_rgb(L, ab.to(device=L.device, dtype=L.dtype)))


@dataclass
class Colorized:
    """The colorizations of some dataset images (skipped, colourless images left out)."""

    ids: list[str]
    index: list[int]  # dataset index of each image
    L: Tensor  # (N,1,H,W) original L
    ab_true: Tensor  # (N,2,H,W)
    ab: Tensor  # (N,n,2,H',W') float16-rounded chroma, in L's dtype

    def rgb_u8(self, k: int = 0) -> Tensor:
        """(N,3,H,W) uint8 RGB of sample ``k``."""
        return to_rgb_u8(self.L, self.ab[:, k])


def colorize_indices(colorizer: Any, ds: Any, indices: Iterable[int], *, n_samples: int = 1,
                     seed: int = 0, device: str = "cpu", batch_size: int = BATCH_SIZE,
                     name: str | None = None) -> Colorized:
    """Colorize the dataset images at ``indices`` (in that order; colourless ones left out)
    exactly as the evaluation loop does for ``seed`` and ``batch_size`` over the whole of
    ``ds``: sample 0 of image i is the chroma its mIoU / PSNR were scored on, samples 0 and
    1 its diversity pair. A deterministic colorizer's one sample is repeated."""
    order = list(dict.fromkeys(int(i) for i in indices))
    name = name or str(getattr(colorizer, "name", "?"))
    got: dict[int, tuple[str, Tensor, Tensor, Tensor]] = {}
    for s, e in canonical_batches(len(ds), batch_size):
        if not any(s <= i < e for i in order):
            continue
        batch = collate([ds[i] for i in range(s, e)])
        if not batch["ids"]:
            continue
        L, ab_true = batch["L"].to(device), batch["ab"].to(device)
        ab = draw_samples(colorizer, L, ab_true, n_samples, seed, s, device, batch["ids"],
                          name).detach().to(AB_DTYPE).to(L.dtype)
        row = {img_id: k for k, img_id in enumerate(batch["ids"])}
        for i in order:
            k = row.get(ds.ids[i]) if s <= i < e else None
            if k is not None:
                got[i] = (batch["ids"][k], L[k], ab_true[k], ab[k])
    keep = [i for i in order if i in got]
    if not keep:
        raise PscError(f"none of the {len(order)} images asked of {ds.name}/{ds.split} has "
                       "colour (all skipped), in --dataset, choose images with colour")
    ab = torch.stack([got[i][3] for i in keep])
    return Colorized(ids=[got[i][0] for i in keep], index=keep,
                     L=torch.stack([got[i][1] for i in keep]),
                     ab_true=torch.stack([got[i][2] for i in keep]),
                     ab=ab.expand(-1, n_samples, -1, -1, -1) if ab.shape[1] < n_samples else ab)
