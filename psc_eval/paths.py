"""Where checkpoints, judge weights and caches live: ``$PSC_HOME`` (default ~/.cache/psc-eval).

Layout::

    $PSC_HOME/judges/<dataset>/<segmenter>.pt          trained judges (psc-eval train-judge)
    $PSC_HOME/models/<dataset>/<colorizer>/            the protocol run of a colorizer (a
                                                       config its record names, as it is):
                                                       what evaluation reads by default
    $PSC_HOME/models/<dataset>/<colorizer>/runs/<config>-<key>/
                                                       any other training of it (overrides,
                                                       --epochs, a TOML path): keyed on its
                                                       resolved config, so a short run never
                                                       lands where the protocol's is read
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


def run_dir(dataset: str, colorizer: str, tag: str) -> Path:
    """The folder of a training run that is not the protocol's (``tag``: the config's
    name and a digest of its resolved values)."""
    return colorizer_dir(dataset, colorizer) / "runs" / tag


def cache_dir() -> Path:
    return psc_home() / "cache"
