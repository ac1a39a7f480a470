"""Where checkpoints, judge weights and caches live: ``$PSC_HOME`` (default ~/.cache/psc-eval).

Layout::

    $PSC_HOME/judges/<dataset>/<segmenter>.pt          trained judges (psc-eval train-judge)
    $PSC_HOME/models/<dataset>/<colorizer>/            colorizer checkpoints (psc-eval train)
    $PSC_HOME/cache/                                   colorized-output caches (psc-eval miou)
"""

from __future__ import annotations

import os
from pathlib import Path


def psc_home() -> Path:
    return Path(os.environ.get("PSC_HOME", Path.home() / ".cache" / "psc-eval")).expanduser()


def judge_weights_path(dataset: str, segmenter: str) -> Path:
    return psc_home() / "judges" / dataset / f"{segmenter}.pt"


def colorizer_dir(dataset: str, colorizer: str) -> Path:
    return psc_home() / "models" / dataset / colorizer


def cache_dir() -> Path:
    return psc_home() / "cache"
