"""The C allocator tuned for a long-running process that works on arrays of a few hundred kB at a time.

glibc's ``malloc`` serves blocks above 128 kB with a fresh ``mmap`` and gives freed memory at the top of its heap
back to the system beyond 128 kB; the dynamic threshold that would stop that only rises for blocks that were
mapped. Decoding a sealed day (two or three 300 kB arrays) and accounting it (dozens of 10-100 kB temporaries)
then spend a third of their time in page faults on memory the process had a moment before. Keeping up to
:data:`TRIM_THRESHOLD` free at the top of each heap, and mapping only blocks above :data:`MMAP_THRESHOLD`, lets that
memory be used again (a sealed day's block decoded in 0.76 ms against 1.45 in a timing loop, the same thresholds
set through glibc's environment variables; ``bench/RESULTS.md``, issue 15), for at most :data:`TRIM_THRESHOLD` more
resident memory per allocator arena. Elsewhere (musl, macOS, Windows) nothing is
changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import sys

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "tune_allocator"]

log = logging.getLogger(__name__)

#: blocks at least this large get their own mapping (a year's import works on arrays of hundreds of MB) [bytes]
MMAP_THRESHOLD = 8 * 1024 * 1024
#: free memory at the top of a heap kept for the next arrays rather than given back [bytes]
TRIM_THRESHOLD = 16 * 1024 * 1024
_M_TRIM_THRESHOLD = -1  # glibc's malloc.h
_M_MMAP_THRESHOLD = -3


@functools.cache
def tune_allocator() -> bool:
    """Set glibc's thresholds (once a process); False where the C library is not glibc or refuses them."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    if not done:
        log.debug("the C library did not take the allocator thresholds; it keeps its own")
    return done
