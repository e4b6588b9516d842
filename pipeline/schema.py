"""The stamp every JSON output carries, and the JSON Schema that describes those outputs.

Every document the tool writes (``analyze --json``, each ``batch`` JSONL line
and ``summary.json``, ``evaluate``, ``probe``, ``cache info``) starts with
``schema_version``, ``tool``, ``tool_version`` and ``kind``; the published
schema (``schemas/output.schema.json``, shipped as package data) has one
definition per kind. ``schema_version`` changes its major number when a field
is removed or changes meaning, and its minor number when fields are added.
Times in these documents are seconds rounded to the millisecond.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from sgdtam_pipe.pipeline.version import __version__

SCHEMA_VERSION = "1.1"
TOOL = "sgdtam-pipe"
SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "output.schema.json"
KINDS = ("analysis", "batch-record", "batch-summary", "evaluation", "probe", "cache-info")


def versioned(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` behind the stamp of ``kind`` (one of :data:`KINDS`); a stamp already in ``body`` is replaced."""
    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}; one of {KINDS}")
    stamp = {"schema_version": SCHEMA_VERSION, "tool": TOOL, "tool_version": __version__, "kind": kind}
    return {**stamp, **{k: v for k, v in body.items() if k not in stamp}}


def seconds(value: float | None) -> float | None:
    """A time for output: rounded to the millisecond, so ``0.8699999999999999`` is written ``0.87``."""
    return None if value is None else round(float(value), 3)


def rounded(data: Any, digits: int = 3) -> Any:
    """``data`` (JSON-like) with every float rounded to ``digits`` decimals: for documents whose
    floats are all times or rates, such as ``probe``'s."""
    if isinstance(data, float):
        return round(data, digits)
    if isinstance(data, Mapping):
        return {k: rounded(v, digits) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [rounded(v, digits) for v in data]
    return data


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The published JSON Schema (draft 2020-12) for every output kind."""
    return json.loads(SCHEMA_FILE.read_text("utf-8"))
