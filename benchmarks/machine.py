"""The machine a benchmark ran on, as reports/perf.md names it (the benchmarks' one home
for it; they run as scripts, so their folder is on ``sys.path``)."""

from __future__ import annotations

import platform


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), else what ``platform`` knows, else "?"."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"
