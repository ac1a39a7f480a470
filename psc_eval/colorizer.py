"""The Colorizer protocol, the colorizer registry, the reference colorizers and the
contract checks; THE colorize path every command goes through is ``psc_eval.colorize``.

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

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from .color import AB_MAX, AB_MIN
from .config import check_temperature
from .errors import PscError, UnknownNameError
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
            f"colorizer {name!r} raised {describe_exception(e)} while being built, in its "
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


def describe_exception(e: BaseException) -> str:
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


REFERENCE_METHODS = [
    Method("gray", GrayColorizer, "reference: ab = 0 (the gray row of Fig. 8)",
           label="Gray input", group="reference", paper_table3=(66.9, None)),
    Method("gt", GroundTruthColorizer, "reference oracle: the true ab (the colour row of Fig. 8)",
           label="Ground truth (colour)", group="reference", paper_table3=(72.1, None),
           paper_table4=99.58),
]
