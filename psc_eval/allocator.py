"""Keep freed memory in the process for reuse, so that every training step, sampling call
or judge batch does not fault in fresh pages for its tensors.

glibc's malloc returns large freed blocks to the kernel (``munmap``, and trimming the top of
the heap past 128 KiB, or past twice its adaptive mmap threshold); the next step's tensors
of the same sizes then take one page fault per 4 KiB page, and the kernel zeroes each page.
A toy training step of ``ours`` faulted 19,000-21,600 pages (about 80 MB) per step that
way. With ``keep_freed_memory()`` blocks up to ``MMAP_THRESHOLD`` come from the heap and up
to ``TRIM_THRESHOLD`` of free memory stays mapped, so the same step faults none and runs
1.10x faster (benchmarks/bench_allocator.py, reports/perf.md). Only where memory comes
from changes, not one number computed with it: results are bit-identical.

Called once by the command line (``psc_eval.cli.main``); a library user may call it too.
``PSC_MALLOC=system`` leaves the C library's defaults. A no-op off glibc (macOS, musl).
"""

from __future__ import annotations

import ctypes
import os
import sys

ENV = "PSC_MALLOC"  # "system": keep the C library's own defaults

# mallopt parameters (glibc malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value on 64-bit: bigger blocks still map
TRIM_THRESHOLD = 256 << 20  # free memory kept at the heap's top before it is given back


def glibc() -> ctypes.CDLL | None:
    """The C library if it is glibc on Linux (whose malloc thresholds are set here), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") else None


def keep_freed_memory() -> bool:
    """Set glibc malloc to keep freed tensor memory for reuse; True if it took effect."""
    if os.environ.get(ENV, "").strip().lower() == "system":
        return False
    libc = glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
