"""Fewer glibc malloc arenas, so a long clip's three concurrent stages do not each grow a heap of their own.

glibc gives every thread that contends for the heap its own arena (up to
eight per core) and returns little of an arena's freed memory to the system.
The three extraction threads, plus the libraries' worker threads, so left a
cold ``analyze`` of the 10-minute GRID loop at 1442 MB peak; with two arenas
(what ``MALLOC_ARENA_MAX=2`` sets) the same run peaked at 1316 MB, in the
same wall time (129.9 against 127.1 s, one run each, 2026-12-03).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

M_ARENA_MAX = -8
"""``mallopt``'s parameter number for the arena limit (glibc ``malloc.h``)."""
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas at ``arenas`` for the threads that start after this call.

    A ``MALLOC_ARENA_MAX`` the user set wins (glibc has read it already). Returns
    whether the cap was set: False off glibc (macOS, musl), where nothing changes.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):  # no C library found, or one without mallopt
        return False
    done = bool(mallopt(M_ARENA_MAX, arenas))
    log.debug("malloc arenas capped at %d: %s", arenas, done)
    return done
