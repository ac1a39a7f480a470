"""THE colorize path every command goes through (the evaluation loop, sample grids, the
naturalness study's stimuli and proxy, diversity): call a colorizer the way the harness
does, check its output, draw samples with the seeding scheme, sample several batches at
once, recombine with the original L.

"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .color import lab_parts_to_rgb, to_uint8
from .colorizer import AB_HIGH, AB_LOW, describe_exception
from .config import EvalConfig
from .data import collate
from .errors import ColorizerOutputError, PscError


def run_colorizer(
    colorizer: Any,
    L: Tensor,
    ab_true: Tensor | None = None,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
    ids: Sequence[str] | None = None,
) -> Tensor:
    """Call ``colorize`` the way the harness does (oracles get the true ab, colorizers that
    read stored outputs get the image ids)."""
    if getattr(colorizer, "oracle", False):
        return colorizer.colorize(L, n_samples, generator=generator, target_ab=ab_true)
    if getattr(colorizer, "by_id", False):
        return colorizer.colorize(L, n_samples, generator=generator, ids=ids)
    return colorizer.colorize(L, n_samples, generator=generator)


def call_colorizer(colorizer: Any, L: Tensor, ab_true: Tensor | None, n_samples: int,
                   generator: torch.Generator | None, ids: Sequence[str], name: str) -> Tensor:
    """``run_colorizer`` on copies of the harness's tensors, for the evaluation loop and
    every other command that colorizes. The batch's L and true ab are shared by every row
    of a run (and scored into the cache), so a colorizer that edits its input in place
    would change the other rows' numbers: it is refused, as is one that raises or exits."""
    L_in = L.clone()
    ab_in = None if ab_true is None else ab_true.clone()
    where = f"colorizer {name!r} on images {ids[0]!r}..{ids[-1]!r}" if ids else \
        f"colorizer {name!r}"
    try:
        out = run_colorizer(colorizer, L_in, ab_in, n_samples=n_samples, generator=generator,
                            ids=ids)
    except PscError:
        raise
    except (Exception, SystemExit) as e:  # noqa: BLE001 - any failure of a plug-in's code
        raise ColorizerOutputError(
            f"{where} raised {describe_exception(e)}, in its colorize(), fix the colorizer "
            "and rerun (earlier batches stay cached)") from None
    if not torch.equal(L_in, L) or (ab_in is not None and not torch.equal(ab_in, ab_true)):
        raise ColorizerOutputError(
            f"{where} changed its input L in place, in its colorize(), work on a copy "
            "(e.g. L = L.clone()); nothing of this batch was used")
    return out


def check_ab(out: Any, ids: Sequence[str], n_samples: int, name: str) -> Tensor:
    """Refuse colorizer output that is not (B, n, 2, H', W'), finite and in range."""
    B = len(ids)
    where = f"colorizer {name!r}"
    if not isinstance(out, Tensor) or out.ndim != 5 or out.shape[0] != B \
            or out.shape[1] != n_samples or out.shape[2] != 2:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ColorizerOutputError(
            f"{where} returned shape {shape} for images {ids[0]!r}..{ids[-1]!r}, expected "
            f"({B}, {n_samples}, 2, H, W), fix colorize() to return (B, n_samples, 2, H, W) ab"
        )
    if out.device.type == "meta":
        raise ColorizerOutputError(
            f"{where} returned a tensor on the meta device (no values) for image {ids[0]!r}, "
            "return ab computed on the CPU or the evaluation device")
    if not out.is_floating_point():
        raise ColorizerOutputError(
            f"{where} returned {out.dtype} chroma for image {ids[0]!r}, "
            "return float ab in Lab units"
        )
    flat = out.detach().reshape(B, -1)
    nonfinite = ~torch.isfinite(flat)
    outside = (flat < AB_LOW) | (flat > AB_HIGH)
    for what, bad in (("NaN or infinite", nonfinite), ("out-of-range", outside & ~nonfinite)):
        per_image = bad.any(dim=1)
        if bool(per_image.any()):
            i = int(per_image.nonzero()[0, 0])
            vals = flat[i][bad[i]]
            shown = f"{float(vals[0]):.4g}" if what != "NaN or infinite" else str(float(vals[0]))
            raise ColorizerOutputError(
                f"{where} returned {what} chroma for image {ids[i]!r} ({int(bad[i].sum())} values,"
                f" e.g. {shown}; allowed [{AB_LOW:g}, {AB_HIGH:g}] Lab units), nothing of this"
                " batch was used (earlier batches stay cached), fix the colorizer and rerun"
            )
    return out


# --- THE colorize path: draw samples with the seeding scheme, check, recombine with L -----
#
# Every command that shows or scores a colorization goes through here (the evaluation loop,
# sample grids, the naturalness study's stimuli, the naturalness proxy), so a (seed, image,
# sample) gets the same chroma everywhere.
#
# Seeding. The evaluation loop colorizes the dataset in canonical batches: consecutive runs
# of ``batch_size`` dataset indices from index 0 (the last one shorter). The generator of the
# batch starting at index ``start`` is seeded with ``batch_seed(seed, start)``, so a batch's
# samples do not depend on which batches ran before it (resume and ``torchrun`` sharding give
# the same samples). Sample 0 comes alone from that generator (the very draw of a one-sample
# run); samples 1.. come together from a second one (``batch_seed(seed, start, stream=1)``),
# so sample 0, and every metric scored on it, is the same whether or not more samples were
# asked (``draw_samples``). A stochastic colorizer's draw for an image depends on the other
# images of its batch, so ``colorize_indices`` always colorizes whole canonical batches and
# keeps the images asked for: image i then gets exactly the chroma the loop scored for it.
#
# Precision. Chroma is rounded to float16 (``AB_DTYPE``, the score cache's storage precision:
# 0.06 Lab units at |ab| = 128, well under one uint8 level) whether or not a cache is used, so
# cached, resumed, uncached and displayed colorizations are bit-identical.

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
            raw = call_colorizer(colorizer, L, ab_true, k, gen, ids, name)
        out.append(check_ab(raw, ids, k, name))
    return out[0] if len(out) == 1 else torch.cat(out, dim=1)


def samples_parts(colorizer: Any) -> bool:
    """Whether a colorizer samples several canonical batches in one call (``colorize_parts``:
    whole-split batching, same samples as batch by batch)."""
    return callable(getattr(colorizer, "colorize_parts", None)) and \
        getattr(colorizer, "stochastic", False) and not getattr(colorizer, "by_id", False) \
        and not getattr(colorizer, "oracle", False)


def draw_samples_parts(colorizer: Any, parts: Sequence[tuple[Tensor, Tensor, int, Sequence[str]]],
                       n_samples: int, seed: int, device: str, name: str) -> list[Tensor]:
    """``draw_samples`` of several canonical batches ((L, ab_true, start, ids) each) in one
    ``colorize_parts`` call per sample stream, each batch's noise from its own generators:
    part i gets exactly ``draw_samples(..., start_i, ...)``'s chroma (a test checks it bit
    for bit). A colorizer without ``colorize_parts`` is called batch by batch."""
    if not samples_parts(colorizer) or len(parts) < 2:
        return [draw_samples(colorizer, L, ab, n_samples, seed, s, device, ids, name)
                for L, ab, s, ids in parts]
    asked = asked_samples(colorizer, n_samples)
    streams = [(asked, 0)] if asked == 1 else [(1, 0), (asked - 1, 1)]
    where = f"colorizer {name!r} on images {parts[0][3][0]!r}..{parts[-1][3][-1]!r}"
    out: list[list[Tensor]] = [[] for _ in parts]
    for k, stream in streams:
        gens = [torch.Generator(device=torch.device(device)).manual_seed(
            batch_seed(seed, s, stream)) for _, _, s, _ in parts]
        Ls = [L.clone() for L, _, _, _ in parts]
        try:
            with torch.inference_mode():
                raws = colorizer.colorize_parts(Ls, k, generators=gens)
        except PscError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure of a plug-in's code
            raise ColorizerOutputError(
                f"{where} raised {describe_exception(e)}, in its colorize_parts(), fix the "
                "colorizer and rerun (earlier batches stay cached)") from None
        if len(raws) != len(parts):
            raise ColorizerOutputError(f"{where} returned {len(raws)} parts for {len(parts)} "
                                       "batches, in its colorize_parts(), return one per batch")
        for i, ((L, _, _, ids), raw) in enumerate(zip(parts, raws)):
            if not torch.equal(Ls[i], L):
                raise ColorizerOutputError(
                    f"{where} changed its input L in place, in its colorize_parts(), work "
                    "on a copy; nothing of these batches was used")
            out[i].append(check_ab(raw, ids, k, name))
    return [o[0] if len(o) == 1 else torch.cat(o, dim=1) for o in out]


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
