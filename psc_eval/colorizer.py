"""The Colorizer protocol, the lazy colorizer registry, and the reference colorizers.

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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from .color import AB_MAX, AB_MIN
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
    except TypeError as e:
        raise UnknownNameError(
            f"colorizer {name!r} cannot be built with {sorted(kwargs)} ({e}), in --colorizer, "
            "give its __init__ keyword arguments with defaults (or **kwargs)"
        ) from None
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


PREDICTION_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


class PredictionsColorizer:
    """Colorized images saved by any framework, scored as a row (``--predictions DIR``).

    ``DIR/<id>.<ext>`` per image (``DIR/<id>_<k>.<ext>``, k = 0, 1, ... for several
    samples per image); the chroma of each file (resized bilinearly to the dataset's size
    when it differs) is joined with the ORIGINAL L, as for any colorizer. Files are keyed
    by content: ``weights_sha256`` is a digest of every file, so changed outputs are
    never served from the cache.
    """

    oracle = False
    by_id = True

    def __init__(self, folder: str | Path, name: str | None = None):
        from .errors import DataError

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
        from .io import sha256_file

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
        from .errors import DataError

        missing = [i if n_samples == 1 else f for i in scored
                   for f in self._ids_of(i, n_samples) if f not in self.files]
        known = set(ids)
        extra = [s for s in self.files
                 if s not in known and s.rpartition("_")[0] not in known]
        for what, bad in (("missing", missing), ("extra", extra)):
            if bad:
                shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
                raise DataError(
                    f"{len(bad)} {what} prediction ids ({shown}), {self.folder}, name the files "
                    "<id>.png after the dataset's ids (psc-eval data preview shows them)"
                )

    def colorize(self, L: Tensor, n_samples: int = 1, *, generator: torch.Generator | None = None,
                 ids: Sequence[str] | None = None) -> Tensor:
        from .color import rgb_to_lab
        from .data.base import decode_image
        from .errors import DataError

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
                    rgb = torch.nn.functional.interpolate(rgb, size=(H, W), mode="bilinear",
                                                          align_corners=False,
                                                          antialias=True).clamp(0.0, 1.0)
                samples.append(rgb_to_lab(rgb.to(L.device, L.dtype))[0, 1:])
            out.append(torch.stack(samples))
        return torch.stack(out)  # (B,n,2,H,W)


def build_colorizer(name: str, dataset: str, weights: Any = None, device: str = "cpu",
                    options: dict[str, Any] | None = None) -> Any:
    """``get_colorizer`` with the keywords model colorizers take (dataset, weights, device)
    plus explicit ``options`` (e.g. ``temperature``); a user's ``module:attr`` class whose
    ``__init__`` names fewer keywords (and has no ``**kwargs``) gets only those it names,
    and an explicitly given weights file or option it does not take is an error."""
    options = dict(options or {})
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


REFERENCE_METHODS = [
    Method("gray", GrayColorizer, "reference: ab = 0 (the gray row of Fig. 8)",
           label="Gray input", group="reference", paper_table3=(66.9, None)),
    Method("gt", GroundTruthColorizer, "reference oracle: the true ab (the colour row of Fig. 8)",
           label="Ground truth (colour)", group="reference", paper_table3=(72.1, None),
           paper_table4=99.58),
]
