"""Fewer glibc malloc arenas, so a long clip's three concurrent stages do not each grow a heap of their own.

glibc gives each new thread that allocates an arena of its own (up to eight
per core) and returns little of an arena's freed memory to the system. The
three extraction threads, plus the libraries' worker threads, so left cold
``analyze`` runs of the 10-minute GRID loop peaking at 1395 to 1562 MB (eight
runs); with two arenas, six runs peaked at 1257 to 1327 MB, and paired runs
took as long (130.3 and 128.0 s capped, 141.4 and 127.1 s not; 2026-12-03).
The CLI sets the cap; a program that calls the Python API may call
:func:`limit_malloc_arenas` itself, first thing."""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

GLIBC = "libc.so.6"
"""glibc's soname, opened by name: ``ctypes.util.find_library`` would run ``ldconfig`` (4 ms) at every start."""
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
    done = mallopt(M_ARENA_MAX, arenas)
    log.debug("malloc arenas capped at %d: %s", arenas, done)
    return done


def mallopt(parameter: int, value: int) -> bool:
    """glibc's ``mallopt(parameter, value)`` for this process; whether it was set (False off glibc)."""
    try:
        call = ctypes.CDLL(GLIBC).mallopt
    except (OSError, AttributeError):  # musl, macOS and other C libraries
        return False
    return bool(call(parameter, value))
