"""psc-eval: reference implementation and benchmark of Pixelated Semantic Colorization."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("psc-eval")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

from .colorizer import get_colorizer, list_colorizers, register_colorizer
from .errors import PscError

__all__ = ["PscError", "__version__", "get_colorizer", "list_colorizers", "register_colorizer"]
