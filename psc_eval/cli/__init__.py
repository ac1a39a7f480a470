"""The ``psc-eval`` command line: thin. One file per command group; each command parses
options and calls one function of the package.

``app`` (the group, ``main``), ``options`` (shared options), ``data`` (ls, data),
``eval`` (miou, psnr, diversity, compare, sample), ``train`` (train, train-judge,
seg-curves, naturalness), ``report`` (report, reproduce, regress, ship), ``study``.
"""

from __future__ import annotations

from . import data, eval, report, study, train  # noqa: F401  (register the commands)
from .app import cli, main

__all__ = ["cli", "main"]
