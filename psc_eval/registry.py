"""One small lazy registry, used for colorizers, datasets, segmenters, trainable methods
and scorers (timm's ``register_model`` / ``create_model``; lm-evaluation-harness's registry).

An entry maps a name to a ``"module:attr"`` string (imported only when the entry is
used, so ``psc-eval ls`` loads no model code) or to the object itself, with a one-line
description. ``get(name)`` resolves the entry; an unknown name is one
:class:`UnknownNameError` listing the known names. Registries that allow it also
resolve a user's ``"package.module:attr"`` path that is not registered.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .errors import UnknownNameError


def import_attr(spec: str, what: str = "object") -> Any:
    """``"package.module:attr"`` -> the attribute (one-line errors naming the spec)."""
    mod_name, _, attr = spec.partition(":")
    if not mod_name or not attr:
        raise UnknownNameError(
            f"bad {what} path {spec!r}, in the name, write it as 'package.module:attr'"
        )
    # The working directory is importable, as under ``python -m``: ``--colorizer mine:Net``
    # finds ./mine.py without PYTHONPATH.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        mod = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        raise UnknownNameError(
            f"cannot import {what} module {mod_name!r} ({e}), in {spec!r}, "
            "check the module path or install the package that provides it"
        ) from None
    try:
        obj = mod
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj
    except AttributeError:
        raise UnknownNameError(
            f"module {mod_name!r} has no attribute {attr!r}, in {spec!r}, "
            "check the attribute name after the colon"
        ) from None


class Registry:
    """name -> ("module:attr" | object, description).

    ``kind`` names the registry in messages ("colorizer", "dataset", ...);
    ``allow_paths``: an unregistered ``module:attr`` name is imported as given.
    ``source``: a callable giving (name, target, description) entries, read once, the
    first time the registry is used (the method records, ``psc_eval.methods``).
    """

    def __init__(self, kind: str, *, allow_paths: bool = False, option: str | None = None,
                 source: Callable[[], Iterable[tuple[str, Any, str]]] | None = None):
        self.kind = kind
        self.allow_paths = allow_paths
        self.option = option or f"--{kind}"
        self._source = source
        self._own: dict[str, tuple[Any, str]] = {}

    @property
    def _entries(self) -> dict[str, tuple[Any, str]]:
        if self._source is not None:
            source, self._source = self._source, None
            found = {name: (target, desc) for name, target, desc in source()}
            self._own = {**found, **self._own}
        return self._own

    def add(self, name: str, target: Any, description: str = "") -> None:
        """Register ``target`` ("module:attr" or the object) under ``name``."""
        self._own[name] = (target, description)

    def register(self, name: str, description: str = "") -> Callable[[Any], Any]:
        """Decorator form of :meth:`add` (the object itself is stored)."""

        def deco(obj: Any) -> Any:
            self.add(name, obj, description or self.describe(name))
            return obj

        return deco

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)

    def list(self) -> dict[str, str]:
        """name -> description, in registration order (imports nothing)."""
        return {k: d for k, (_, d) in self._entries.items()}

    def describe(self, name: str) -> str:
        return self._entries[name][1] if name in self._entries else ""

    def target(self, name: str) -> Any:
        """The raw entry ("module:attr" string or object), or the unknown-name error."""
        if name in self._entries:
            return self._entries[name][0]
        raise self.unknown(name)

    def unknown(self, name: str) -> UnknownNameError:
        tail = " or pass a 'module:attr' path" if self.allow_paths else ""
        return UnknownNameError(
            f"unknown {self.kind} {name!r}, known: {', '.join(self._entries)}, "
            f"in {self.option}, run 'psc-eval ls'{tail}"
        )

    def get(self, name: str) -> Any:
        """The registered object (a ``"module:attr"`` entry is imported on first use and
        remembered); with ``allow_paths`` an unregistered ``"module:attr"`` is imported."""
        if name not in self._entries:
            if self.allow_paths and ":" in name:
                return import_attr(name, self.kind)
            raise self.unknown(name)
        target, desc = self._entries[name]
        if isinstance(target, str) and ":" in target:
            target = import_attr(target, self.kind)
            self._own[name] = (target, desc)
        return target

    def build(self, name: str, **kwargs: Any) -> Any:
        """``get(name)(**kwargs)``."""
        return self.get(name)(**kwargs)
