"""Identities of code and configs: what cache keys, run keys and provenance hash.

``code_sha256(obj)``: the source of an object's class and of the modules it imports from
its own package and the model packages; ``scorer_code(scorer)``: that plus the metric
formulas; ``digest``: a short sha256 of a JSON-safe config. Infrastructure: it imports only
``io``, so the metrics (a semantic prior's file name), the cache and the results may all
use it.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from .io import sha256_file


def jsonable(x: Any) -> Any:
    """A JSON-safe copy of a config (dataclasses, paths, tensors; anything else as repr)."""
    if is_dataclass(x) and not isinstance(x, type):
        return jsonable(asdict(x))
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, Tensor):
        return x.tolist()
    return repr(x)


def digest(obj: Any, n: int = 20) -> str:
    return hashlib.sha256(json.dumps(jsonable(obj), sort_keys=True).encode()).hexdigest()[:n]


def location_free(config: Any) -> Any:
    """A judge's config as keys hash it: without ``weights``, the file's path (its content
    is ``weights_sha256``), so the same run from two clones at other paths gets one key."""
    if isinstance(config, dict):
        return {k: v for k, v in config.items() if k != "weights"}
    return config


def class_path(obj: Any) -> str:
    t = type(obj)
    return f"{t.__module__}:{t.__qualname__}"


# Packages of this repository whose code a colorizer or judge of another package may run
# (a baseline built on the paper's network, say): their imports are followed too.
MODEL_PACKAGES = ("psc_eval.models", "psc_eval.baselines")


def code_sha256(obj: Any) -> str:
    """Identity of an object's code: sha256 of the source file that defines its class and of
    every module that file imports, directly or through other such modules, from its own
    package (the one holding the file) or from ``MODEL_PACKAGES`` (found by reading the
    import statements, those inside functions included), plus its ``version`` attribute if
    it declares one. An edited colorizer (or judge), or an edited sampler or network it
    calls, gets a new cache key, so it is never served its old outputs."""
    cls = obj if isinstance(obj, type) else type(obj)
    try:
        src = inspect.getsourcefile(cls)
    except TypeError:  # builtins
        src = None
    parts: dict[str, Any] = {"class": f"{cls.__module__}:{cls.__qualname__}",
                             "version": jsonable(getattr(obj, "version", None)),
                             "source": None}
    if src and os.path.isfile(src):
        parts["source"] = _file_sha256(src)
        parts["imports"] = {m: _file_sha256(f) for m, f in
                            sorted(imported_modules(src, cls.__module__).items())}
    return digest(parts, 64)


def imported_modules(src: str, module: str) -> dict[str, str]:
    """Module name -> file of what ``src`` (module ``module``) imports from its own package
    and from MODEL_PACKAGES, transitively (package ``__init__`` files included, ``src``
    itself not)."""
    is_pkg = os.path.basename(src) == "__init__.py"
    own = module if is_pkg else module.rpartition(".")[0]
    prefixes = tuple(p for p in (own, *MODEL_PACKAGES) if p)
    this = os.path.realpath(src)
    # A top-level module (a script such as mycolor.py) has no package: the modules and
    # packages in its folder stand for it.
    folder = None if own else os.path.dirname(this)

    def follow(name: str) -> bool:
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return True
        top = _locate(name.split(".")[0]) if folder else None
        return (top is not None and os.path.dirname(top) in (folder, os.path.join(
            folder, name.split(".")[0])) and not _installed(top))

    found: dict[str, str] = {}
    todo = [(module, this, is_pkg)]
    while todo:
        mod, f, pkg = todo.pop()
        for name in _import_names(f, mod, pkg):
            bits = name.split(".")
            for i in range(1, len(bits) + 1):  # a.b.c runs a/__init__, a/b/__init__, a/b/c
                sub = ".".join(bits[:i])
                if sub in found or not follow(sub):
                    continue
                target = _locate(sub)
                if target is not None and target != this:
                    found[sub] = target
                    todo.append((sub, target, target.endswith("__init__.py")))
    return found


def _installed(path: str) -> bool:
    parts = set(Path(path).parts)
    return "site-packages" in parts or "dist-packages" in parts


def _locate(name: str) -> str | None:
    """The source file of module ``name`` (imports at most its parent package)."""
    import importlib.util
    import sys

    m = sys.modules.get(name)
    if m is not None:
        f = getattr(m, "__file__", None)
    else:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError, AttributeError):  # not a module (a name in one)
            spec = None
        f = spec.origin if spec is not None and spec.has_location else None
    return os.path.realpath(f) if f and f.endswith(".py") and os.path.isfile(f) else None


def _import_names(path: str, module: str, is_package: bool) -> tuple[str, ...]:
    st = os.stat(path)
    return _import_names_cached(path, module, is_package, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=512)
def _import_names_cached(path: str, module: str, is_package: bool, mtime_ns: int,
                         size: int) -> tuple[str, ...]:
    """Absolute names a file imports (``from a import b`` gives a and a.b: b may be a
    module); relative imports resolved against ``module``."""
    import ast

    try:
        tree = ast.parse(Path(path).read_bytes())
    except (SyntaxError, ValueError):
        return ()
    package = module.split(".") if is_package else module.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level > len(package) + (0 if package else 1):
                    continue
                base = package[:len(package) - node.level + 1]
            else:
                base = []
            mod = ".".join(base + ([node.module] if node.module else []))
            if not mod:
                continue
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names if a.name != "*")
    return tuple(sorted(out))


def scorer_code(scorer: Any) -> str:
    """Identity of a scorer's code: its class (``code_sha256``) and the sources of every
    module of ``psc_eval/metrics`` (the formulas it calls) and of ``psc_eval/color.py``
    (the Lab -> uint8 RGB conversion of what it scores)."""
    here = os.path.dirname(os.path.abspath(__file__))
    metrics_dir = os.path.join(here, "metrics")
    files = [os.path.join(here, "color.py")] + sorted(
        os.path.join(metrics_dir, f) for f in os.listdir(metrics_dir) if f.endswith(".py"))
    return digest({"scorer": code_sha256(scorer),
                   "sources": {os.path.relpath(f, here): _file_sha256(f) for f in files}}, 64)


def _file_sha256(path: str) -> str:
    st = os.stat(path)
    return _file_sha256_cached(path, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=256)
def _file_sha256_cached(path: str, mtime_ns: int, size: int) -> str:
    return sha256_file(path)
