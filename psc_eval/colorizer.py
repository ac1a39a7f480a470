"""The Colorizer protocol, the colorizer registry, the reference colorizers, the contract
checks and THE colorize path (see its section below) every command goes through.

A colorizer returns chroma only: ``colorize(L, n_samples) -> ab`` with
L (B,1,H,W) in Lab units [0, 100] and ab (B,n_samples,2,H,W) in Lab units.
The harness recombines ab with the ORIGINAL L and converts to RGB once, so no
method can win by altering luminance.

Registry: :data:`COLORIZERS` (a :class:`psc_eval.registry.Registry`) maps the names of
the method records (``psc_eval.methods``) to their colorizer classes (timm's
``create_model`` and lm-evaluation-harness's registry are the pattern).
``get_colorizer("pkg.mod:Class")`` builds a user's own class.

Oracle colorizers (``gt``) set ``oracle = True``: the runner then passes the
sample's true chroma as ``colorize(..., target_ab=ab)``. ``gt`` returns exactly
the ab of the image the judge would otherwise see (the dataset's resized RGB
converted to Lab), so ``gt`` recombined with L reproduces the colour image up to
Lab -> RGB gamut clipping and uint8 rounding: the colour row of Fig. 8.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from .color import AB_MAX, AB_MIN, lab_parts_to_rgb, to_uint8
from .config import EvalConfig, check_temperature
from .data import collate
from .errors import ColorizerOutputError, PscError, UnknownNameError
from .methods import Method, all_methods
from .registry import Registry

# Lab units beyond the paper's [-127, 128] still accepted from a colorizer (bilinear
# upsampling and float rounding overshoot a little); anything further is refused.
AB_SLACK = 2.0
AB_LOW, AB_HIGH = AB_MIN - AB_SLACK, AB_MAX + AB_SLACK


# ``weights=RANDOM_WEIGHTS``: build without any weights file (see the Colorizer protocol).
RANDOM_WEIGHTS = "random"


@runtime_checkable
class Colorizer(Protocol):
    """What the harness calls; a class built by name from :data:`COLORIZERS`.

    Building: ``cls(dataset=..., weights=..., device=..., **options)`` (a class may name
    fewer keywords; see :func:`build_colorizer`). Convention: a registered colorizer must
    be buildable with ``weights='random'``: randomly initialised (seeded) weights, no file
    on disk, a small size where it has a size option (the paper's models take
    ``config="toy"`` or a TOML path, and ``num_classes``). Such an instance reports
    ``weights_sha256 = None`` and ``config["weights"] == "random"`` so its results can
    never pass for a trained model's. Colorizers without weights (``gray``, ``gt``)
    ignore the keyword. ``tests/unit/test_colorizer_contract.py`` builds every
    registered name this way and checks the contract: (B, n, 2, H, W) float ab inside
    [AB_LOW, AB_HIGH], L untouched, seeded generators reproducible, ``n_samples > 1``
    refused when ``stochastic`` is False.
    """

    name: str
    stochastic: bool  # False: n_samples > 1 is refused

    def colorize(
        self, L: Tensor, n_samples: int = 1, *, generator: torch.Generator | None = None
    ) -> Tensor: ...


def _colorizer_entries():
    return [(m.name, m.colorizer, m.description) for m in all_methods().values()]


# name -> class or "module:attr", read from the method records (psc_eval.methods) the
# first time it is used; a user's "pkg.mod:Class" also resolves.
COLORIZERS = Registry("colorizer", allow_paths=True, source=_colorizer_entries)


def register_colorizer(name: str, description: str = "") -> Callable:
    """Class decorator: ``@register_colorizer("mine")`` makes ``get_colorizer("mine")`` work."""
    return COLORIZERS.register(name, description)


def list_colorizers() -> dict[str, str]:
    """name -> one-line description, in registration order."""
    return COLORIZERS.list()


def resolve_colorizer_class(name: str) -> Callable[..., Any]:
    """The class (or factory) of a registry name or a ``module:attr`` path."""
    return COLORIZERS.get(name)


def get_colorizer(name: str, **kwargs: Any) -> Colorizer:
    """Build a colorizer by registry name or ``module:attr`` path."""
    cls = COLORIZERS.get(name)
    if not isinstance(cls, type):  # e.g. --colorizer os:system: never call arbitrary code
        raise UnknownNameError(
            f"{name!r} is a {type(cls).__name__}, not a colorizer class, in --colorizer, "
            "point it at a class with a colorize(L, n_samples, *, generator) method"
        )
    if not callable(getattr(cls, "colorize", None)):
        raise UnknownNameError(
            f"{name!r} has no colorize() method, in --colorizer, "
            "point it at a class implementing the Colorizer protocol"
        )
    try:
        obj = cls(**kwargs)
    except PscError:
        raise
    except TypeError as e:
        raise UnknownNameError(
            f"colorizer {name!r} cannot be built with {sorted(kwargs)} ({e}), in --colorizer, "
            "give its __init__ keyword arguments with defaults (or **kwargs)"
        ) from None
    except (Exception, SystemExit) as e:  # noqa: BLE001 - any failure of a plug-in's code
        raise UnknownNameError(
            f"colorizer {name!r} raised {_describe_exception(e)} while being built, in its "
            "__init__, fix the colorizer and rerun") from None
    if not hasattr(obj, "colorize"):
        raise UnknownNameError(
            f"{name!r} built an object without a colorize() method, in the registry, "
            "point it at a class implementing the Colorizer protocol"
        )
    check_protocol(obj, name)
    if not getattr(obj, "name", None):
        obj.name = name
    return obj


def check_protocol(obj: Any, name: str) -> None:
    """A colorizer's ``colorize`` must accept ``(L, n_samples, *, generator=...)``; say what
    is missing in one line instead of a TypeError deep in a run."""
    try:
        sig = inspect.signature(obj.colorize)
    except (TypeError, ValueError):
        return  # a builtin or C method: nothing to inspect
    try:
        sig.bind(None, 1, generator=None)
    except TypeError:
        raise UnknownNameError(
            f"colorizer {name!r} has colorize{sig}, in its class, define "
            "colorize(self, L, n_samples=1, *, generator=None) returning (B, n_samples, 2, H, W)"
        ) from None


def check_L(L: Tensor) -> None:
    """Refuse an L tensor of the wrong shape or outside [0, 100] (one clear line)."""
    if not isinstance(L, Tensor) or L.ndim != 4 or L.shape[1] != 1:
        shape = tuple(L.shape) if isinstance(L, Tensor) else type(L).__name__
        raise PscError(
            f"L must have shape (B,1,H,W), got {shape}, in the colorize() input, "
            "pass Lab luminance with one channel"
        )
    lo, hi = float(L.min()), float(L.max())
    if lo < -1e-3 or hi > 100.0 + 1e-3 or L.isnan().any():
        raise PscError(
            f"L values must lie in [0, 100], got [{lo:.3g}, {hi:.3g}], in the colorize() input, "
            "pass Lab L (not normalised, not 0-255)"
        )


def check_n_samples(colorizer: Any, n_samples: int) -> None:
    if n_samples < 1:
        raise PscError(f"n_samples must be >= 1, got {n_samples}, in colorize(), pass 1 or more")
    if n_samples > 1 and not getattr(colorizer, "stochastic", False):
        raise PscError(
            f"colorizer {getattr(colorizer, 'name', '?')!r} is deterministic, "
            f"n_samples={n_samples} was asked, use n_samples=1"
        )


class GrayColorizer:
    """ab = 0 everywhere: the gray-input row of Fig. 8 / Table 3."""

    name = "gray"
    stochastic = False
    oracle = False
    weights_sha256: str | None = None

    def __init__(self, **_: Any) -> None:
        pass

    def colorize(
        self, L: Tensor, n_samples: int = 1, *, generator: torch.Generator | None = None
    ) -> Tensor:
        check_L(L)
        check_n_samples(self, n_samples)
        B, _, H, W = L.shape
        return L.new_zeros(B, n_samples, 2, H, W)


class GroundTruthColorizer:
    """The true ab of each sample (an oracle; the runner passes ``target_ab``)."""

    name = "gt"
    stochastic = False
    oracle = True
    weights_sha256: str | None = None

    def __init__(self, **_: Any) -> None:
        pass

    def colorize(
        self,
        L: Tensor,
        n_samples: int = 1,
        *,
        generator: torch.Generator | None = None,
        target_ab: Tensor | None = None,
    ) -> Tensor:
        check_L(L)
        check_n_samples(self, n_samples)
        if target_ab is None:
            raise PscError(
                "the 'gt' colorizer needs the true chroma, in colorize(), "
                "call it as colorize(L, target_ab=ab) (the runner does this)"
            )
        if target_ab.shape[-2:] != L.shape[-2:] or target_ab.shape[1] != 2:
            raise PscError(
                f"target_ab has shape {tuple(target_ab.shape)} for L {tuple(L.shape)}, "
                "in gt.colorize(), pass (B,2,H,W) chroma of the same images"
            )
        return target_ab.unsqueeze(1).to(L.dtype).clone()


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
            f"{where} raised {_describe_exception(e)}, in its colorize(), fix the colorizer "
            "and rerun (earlier batches stay cached)") from None
    if not torch.equal(L_in, L) or (ab_in is not None and not torch.equal(ab_in, ab_true)):
        raise ColorizerOutputError(
            f"{where} changed its input L in place, in its colorize(), work on a copy "
            "(e.g. L = L.clone()); nothing of this batch was used")
    return out


def _describe_exception(e: BaseException) -> str:
    """``Type('message') at file:line`` of the innermost frame, in one line."""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    at = "" if tb is None else \
        f" at {Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno}"
    msg = " ".join(str(e).split())
    return f"{type(e).__name__}({msg[:200]!r}){at}"


def build_colorizer(name: str, dataset: str, weights: Any = None, device: str = "cpu",
                    options: dict[str, Any] | None = None) -> Any:
    """``get_colorizer`` with the keywords model colorizers take (dataset, weights, device)
    plus explicit ``options`` (e.g. ``temperature``); a user's ``module:attr`` class whose
    ``__init__`` names fewer keywords (and has no ``**kwargs``) gets only those it names,
    and an explicitly given weights file or option it does not take is an error."""
    options = dict(options or {})
    if options.get("temperature") is not None:
        check_temperature(options["temperature"])
    kw: dict[str, Any] = {"dataset": dataset, "weights": weights, "device": device, **options}
    cls = resolve_colorizer_class(name)
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # builtins / C types: pass everything
        params = None
    if params is not None and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        given = ["weights"] * (weights is not None) + list(options)
        for k in given:
            if k not in params:
                raise PscError(
                    f"colorizer {name!r} takes no {k}, in its --{k} option, drop the option"
                )
        kw = {k: v for k, v in kw.items() if k in params}
    return get_colorizer(name, **kw)


def checkpoint_check(dataset: str) -> Callable[[str, Any], None]:
    """``check(key, path)`` for ``psc-eval ship``: build the judge (``key`` "judge/<arch>")
    or colorizer ("colorizer/<name>") from ``path`` on the CPU exactly as an evaluation
    would, so a file the evaluation would refuse (not a checkpoint, NaN, wrong shapes or
    dtypes) is refused before it is shipped."""
    from .judge.build import build_segmenter
    from .judge.registry import DATASET_NUM_CLASSES

    def check(key: str, path: Any) -> None:
        kind, _, name = key.partition("/")
        if kind == "judge":
            build_segmenter(name, path, DATASET_NUM_CLASSES.get(dataset, 0), "cpu", dataset)
        else:
            build_colorizer(name, dataset, weights=str(path), device="cpu")

    return check


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
                f"{where} raised {_describe_exception(e)}, in its colorize_parts(), fix the "
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


REFERENCE_METHODS = [
    Method("gray", GrayColorizer, "reference: ab = 0 (the gray row of Fig. 8)",
           label="Gray input", group="reference", paper_table3=(66.9, None)),
    Method("gt", GroundTruthColorizer, "reference oracle: the true ab (the colour row of Fig. 8)",
           label="Ground truth (colour)", group="reference", paper_table3=(72.1, None),
           paper_table4=99.58),
]
