"""The progress callback every long stage accepts."""

from __future__ import annotations

from typing import Any, Callable, Mapping

Hook = Callable[[str, Mapping[str, Any]], None]
"""Progress callback: ``hook(step_name, info)``; ``info`` may hold ``done`` and ``total``."""
