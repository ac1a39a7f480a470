"""Import a module of ``models/`` from another checkout (the code before a change), so a
benchmark times old and new side by side in one process.

    python benchmarks/bench_sampling.py --old /tmp/old   # /tmp/old: git worktree add /tmp/old <commit>

The old files are loaded as the package ``psc_old.models`` (their relative imports resolve
inside the old copy; absolute ``psc_eval`` imports use the installed core).
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path


def load_old(root: str | Path, module: str):
    """``models/<module>.py`` of the checkout at ``root``, e.g. load_old(p, "sampling")."""
    models = Path(root).resolve() / "models"
    if not (models / f"{module}.py").is_file():
        raise FileNotFoundError(f"{models / module}.py")
    if "psc_old" not in sys.modules:
        pkg = types.ModuleType("psc_old")
        pkg.__path__ = []
        sys.modules["psc_old"] = pkg
        sub = types.ModuleType("psc_old.models")
        sub.__path__ = [str(models)]
        sys.modules["psc_old.models"] = sub
    return importlib.import_module(f"psc_old.models.{module}")
