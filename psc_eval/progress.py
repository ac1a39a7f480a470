"""Progress bars: tqdm on a terminal; a few lines in a log file or a pipe.

tqdm redraws its bar on every update; written to a file (CI logs, ``make demo > log``)
each redraw stays, hundreds of kilobytes of frames. When stderr is not a terminal the bar
is redrawn at most every ``LOG_INTERVAL_S`` seconds (and at the end) instead.
"""

from __future__ import annotations

import sys
from typing import Any

LOG_INTERVAL_S = 30.0


def bar(iterable: Any = None, **kw: Any):
    """``tqdm(iterable, **kw)`` with the redraw rate chosen for where stderr goes."""
    from tqdm.auto import tqdm

    if not sys.stderr.isatty():
        kw.setdefault("mininterval", LOG_INTERVAL_S)
        kw.setdefault("maxinterval", LOG_INTERVAL_S * 4)
    return tqdm(iterable, **kw)
