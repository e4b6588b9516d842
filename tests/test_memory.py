"""The malloc arena cap (core/memory.py), observed through glibc's own ``malloc_stats``."""

from __future__ import annotations

import ctypes.util
import os
import platform
import subprocess
import sys
import textwrap

import pytest

from sgdtam_pipe.core.memory import limit_malloc_arenas

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")

THREADS_THEN_STATS = textwrap.dedent("""
    import ctypes, ctypes.util, sys, threading
    from sgdtam_pipe.core.memory import limit_malloc_arenas
    if sys.argv[1] == "cap":
        print(limit_malloc_arenas(), flush=True)
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    barrier = threading.Barrier(6)
    def allocate():
        barrier.wait()  # all six alive at once: none can reuse an arena another left
        libc.malloc(4096)
        barrier.wait()
    threads = [threading.Thread(target=allocate) for _ in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    libc.malloc_stats()  # one "Arena N:" block per arena, on stderr
""")


def arenas(mode: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    run = subprocess.run([sys.executable, "-c", THREADS_THEN_STATS, mode], capture_output=True, text=True,
                         env=env, check=True)
    return run.stderr.count("Arena "), run.stdout.strip()


def test_cap_leaves_two_arenas_where_six_threads_would_make_seven() -> None:
    uncapped, _ = arenas("none")
    capped, printed = arenas("cap")
    assert printed == "True"
    assert uncapped == 7  # the main arena and one per thread
    assert capped == 2


def test_a_users_malloc_arena_max_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert limit_malloc_arenas() is False
    assert ctypes.util.find_library("c")  # the False above is the user's setting, not a missing C library
