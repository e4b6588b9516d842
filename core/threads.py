"""Idle OpenMP threads sleep instead of spinning: the one setting every entry point makes before torch loads.

analyze runs three stages at once on the cores, so the machine is always busy,
and OpenMP worker threads (CTranslate2's for Whisper, torch's) that spin while
idle take cycles from the other stages. With ``OMP_WAIT_POLICY=PASSIVE`` on 2
cores, a cold analyze of the 60 s GRID loop took a median 15.14 s against
15.88 s in nine alternating pairs, and extract's text encoder ran 72 rows/s
against 26 at load 4.5 (2026-12-03). OpenMP reads the variable once, when a
library first loads it, so it must be set before torch or CTranslate2 is
imported; a value already in the environment wins.
"""

from __future__ import annotations

import os
from typing import MutableMapping

OMP_WAIT_POLICY = "PASSIVE"


def let_idle_threads_sleep(env: MutableMapping[str, str] = os.environ) -> None:
    """Set ``OMP_WAIT_POLICY`` in ``env`` (this process's environment by default) unless it is set."""
    env.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)
