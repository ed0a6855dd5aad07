"""Keep freed memory in the process instead of handing it back to the system after every tile.

glibc serves a large allocation with a fresh ``mmap`` and unmaps it on free; its adaptive
threshold never catches up with a loop that allocates the same size again (a request equal to
the threshold still goes to ``mmap``). A tiled render or a fitting loop allocates buffers of
a few MB per tile or step, so the kernel maps and zeroes them again each time: measured on
this project's 2-core CPU, a third of a grid field's render time. Raising the thresholds with
``mallopt`` keeps those pages. Done by hand because no library does it: the usual advice
(jemalloc or tcmalloc through LD_PRELOAD) cannot be applied from inside a running Python.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

# mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
# Allocations below this come from the heap (glibc's own adaptive ceiling on 64-bit: 32 MiB).
MMAP_THRESHOLD = 32 * 2**20
# Free memory at the top of the heap kept for reuse before it is given back.
TRIM_THRESHOLD = 256 * 2**20


@functools.cache
def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; False where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
