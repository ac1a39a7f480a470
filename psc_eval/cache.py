"""The evaluation cache: keys and per-batch shards (resume of evaluations).

Layout under ``$PSC_HOME/cache/eval`` (or ``cache_dir``), one shard file per batch, written
atomically as soon as the batch is done, so an interrupted run loses at most the batch in
flight and a rerun resumes where it stopped:

* ``ab/<key>/<start>-<count>.pt``: the colorizer's float16 ab, keyed by (colorizer name
  and class, its code (``code_sha256``: the class's file and the project modules it
  imports), weights sha256, config, seed, dataset fingerprint, n_samples, batch size
  for stochastic colorizers). Not written for the reference rows (gray, gt): their ab
  costs nothing to recompute. The key holds the fingerprint's name, root, split, size
  (and toy seed) but not its id list; each shard stores its image ids and is used only
  when they are the batch's ids, so ``--limit`` runs and full runs share batches.
* ``scores/<key>/<start>-<count>.pt``: the batch's scorer states (``Scorer.state_dict``,
  by scorer name) and skipped ids, keyed by the ab key plus the judge (name, class, weights
  sha256, config) and the device type. A repeated run reads only these small files, so it
  is nearly free. A shard serves a run when it holds a state for each of the run's scorers,
  written by the same scorer code (``scorer_code``: the scorer class's source file, every
  module of ``psc_eval/metrics`` and ``psc_eval/color.py``, stored in the shard per
  scorer): a shard of an
  edited formula, or one written before this check existed, is recomputed from the cached
  chroma, never merged.

Each key folder holds ``key.json``, the identity the key hashes, for inspection.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .colorize import AB_DTYPE as AB_CACHE_DTYPE
from .io import atomic_write, atomic_write_json

CACHE_VERSION = 1


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
                            sorted(_imported_modules(src, cls.__module__).items())}
    return digest(parts, 64)


def _imported_modules(src: str, module: str) -> dict[str, str]:
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
    from .io import sha256_file

    return sha256_file(path)


def row_keys(colorizer: Any, name: str, seg: Any, ds: Any, seed: int, n_samples: int,
             batch_size: int, device: str, scorer_options: Mapping[str, Any] | None = None,
             ) -> tuple[str, str, dict[str, Any]]:
    """(ab key, score key, the identities they hash) of one row of a run.

    ``scorer_options``: scorer name -> the options that change its batch states
    (``Scorer.options()``: PSNR's histogram bins, the MS-SSIM variant, the semantic law and
    prior); each scorer declares its own, the cache names none."""
    ab_ident = {
        "cache_version": CACHE_VERSION,
        "colorizer": name,
        "class": class_path(colorizer),
        "code_sha256": code_sha256(colorizer),
        "weights_sha256": getattr(colorizer, "weights_sha256", None),
        "config": jsonable(getattr(colorizer, "config", None)),
        "seed": int(seed),
        # The fingerprint without its id list: every shard stores its ids and is used only
        # when they match, so a --limit run and a full run share their common batches.
        "dataset": {k: v for k, v in ds.fingerprint().items()
                    if k not in ("num_images", "ids_sha256")},
        "n_samples": int(n_samples),
        "batch_size": int(batch_size) if getattr(colorizer, "stochastic", False) else None,
        "ab_dtype": str(AB_CACHE_DTYPE),
    }
    if n_samples > 1:  # sample 0 drawn alone, samples 1.. from stream 1 (colorize.draw_samples)
        ab_ident["sample_streams"] = 2
    ab_key = digest(ab_ident)
    seg_ident = None if seg is None else {
        "segmenter": getattr(seg, "name", None),
        "class": class_path(seg),
        "code_sha256": code_sha256(seg),
        "weights_sha256": getattr(seg, "weights_sha256", None),
        "num_classes": int(getattr(seg, "num_classes", ds.num_classes)),
        "config": jsonable(getattr(seg, "config", None)),
    }
    score_ident = {"ab": ab_key, "judge": seg_ident, "device": torch.device(device).type}
    if scorer_options:
        score_ident["scorer_options"] = jsonable(dict(scorer_options))
    return ab_key, digest(score_ident), {"ab": ab_ident, "scores": score_ident}


def load_shard(path: Path) -> dict[str, Any] | None:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001  (a foreign or damaged file: recompute and overwrite it)
        return None


def save_shard(path: Path, obj: dict[str, Any]) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


def shard_name(start: int, count: int) -> str:
    return f"{start:08d}-{count:05d}.pt"


@dataclass
class RowCache:
    """The ab and score shard folders of one row (None: not cached)."""

    ab_dir: Path | None = None
    score_dir: Path | None = None
    ab_names: set[str] = field(default_factory=set)  # shard files present when opened
    score_names: set[str] = field(default_factory=set)

    @classmethod
    def open(cls, root: Path, keys: tuple[str, str, dict[str, Any]], *, store_ab: bool,
             enabled: bool) -> RowCache:
        """The row's folders under ``root`` (``key.json`` written once); ``store_ab``: keep
        the colorizer's chroma too (not for the free reference rows)."""
        if not enabled:
            return cls()
        ab_key, score_key, ident = keys
        rc = cls(root / "ab" / ab_key if store_ab else None, root / "scores" / score_key)
        for d, meta in ((rc.score_dir, ident), (rc.ab_dir, ident["ab"])):
            if d is not None and not (d / "key.json").is_file():
                atomic_write_json(d / "key.json", jsonable(meta))
        rc.ab_names = set(os.listdir(rc.ab_dir)) if rc.ab_dir is not None else set()
        rc.score_names = set(os.listdir(rc.score_dir))
        return rc

    def load_scores(self, fname: str, all_ids: list[str], scorers: Mapping[str, Any],
                    codes: Mapping[str, str] | None = None) -> dict[str, Any] | None:
        """The batch's shard with ``states`` for every scorer, or None (not cached).
        ``codes``: the scorers' ``scorer_code`` when the caller already has them."""
        if self.score_dir is None or fname not in self.score_names:
            return None
        shard = load_shard(self.score_dir / fname)
        if shard is None or list(shard.get("all_ids", ())) != all_ids:
            return None
        states, shard_codes = shard.get("states") or {}, shard.get("code") or {}
        # a shard without this run's scorers, from other scorer code or an older state
        # layout: recompute
        want = codes if codes is not None else {n: scorer_code(s) for n, s in scorers.items()}
        if any(states.get(n) is None or shard_codes.get(n) != want[n]
               or set(states[n]) != set(s.state) for n, s in scorers.items()):
            return None
        return shard

    def save_scores(self, fname: str, shard: dict[str, Any]) -> None:
        if self.score_dir is not None:
            save_shard(self.score_dir / fname, shard)

    def load_ab(self, fname: str, ids: list[str]) -> Tensor | None:
        if self.ab_dir is None or fname not in self.ab_names:
            return None
        cached = load_shard(self.ab_dir / fname)
        if cached is None or list(cached["ids"]) != ids:
            return None
        return cached["ab"]

    def save_ab(self, fname: str, ids: list[str], ab: Tensor) -> None:
        if self.ab_dir is not None:
            save_shard(self.ab_dir / fname, {"ids": list(ids), "ab": ab.cpu()})
