"""The labels CSV that ``extract`` reads: parsing, per-row checks, and the label spec.

Columns: ``clip`` (a media path, relative to the media root) *or* ``text``
(an utterance without media); ``label`` (a number for regression in
[-3, 3], or a class name); optional ``split`` (one of :data:`SPLITS`, any
case; default ``train``); optional ``start`` and ``end`` in seconds (a
segment of a longer clip, or the span of a transcript-only utterance);
optional ``group`` (the source, e.g. ``meld``; default ``default``), which
the trainer balances sampling across. Other columns are ignored. The file
is UTF-8, with or without a byte-order mark.

A file that cannot be read as a labels CSV raises :class:`UserError`. A bad
row does not stop the others: it is *refused* (a NaN or infinite label or
time, an unknown split, an exact repeat of an earlier row, ...) with its
line and reason. Rows that are legal but suspicious, the same input under
another label or in another split, give a *warning* and are kept.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sgdtam_pipe.core.errors import UserError

SPLITS = ("train", "dev", "val", "valid", "validation", "test")
DEFAULT_SPLIT = "train"
DEFAULT_GROUP = "default"
SENTIMENT_ORDER = ("negative", "neutral", "positive")
REGRESSION_LIMIT = 3.0


@dataclass(frozen=True)
class LabelRow:
    line: int
    clip: str | None
    text: str | None
    label: str
    split: str
    start: float | None
    end: float | None
    group: str = DEFAULT_GROUP

    def input_key(self) -> tuple[Any, ...]:
        """What the features depend on: the clip or text and the span (not label, split or group)."""
        return (self.clip, self.text, self.start, self.end)

    def source(self) -> str:
        """The clip path, or the utterance shortened for messages."""
        return self.clip if self.clip is not None else _short(self.text or "")


@dataclass
class RowNote:
    """A refused row or a warning: the CSV line and why."""

    line: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "reason": self.reason}


@dataclass
class Labels:
    """The accepted rows, in file order, and what was refused or looks wrong."""

    rows: list[LabelRow] = field(default_factory=list)
    refused: list[RowNote] = field(default_factory=list)
    warnings: list[RowNote] = field(default_factory=list)


class _RowError(ValueError):
    """A reason to refuse one row."""


def read_labels(csv_path: Path) -> Labels:
    """Parse ``csv_path`` and check every row (see the module docstring)."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            _check_columns(csv_path, reader.fieldnames)
            labels, seen = Labels(), {}
            for line, raw in enumerate(reader, start=2):
                try:
                    row = _parse_row(raw, line)
                except _RowError as exc:
                    labels.refused.append(RowNote(line, str(exc)))
                    continue
                _add(labels, seen, row)
    except UnicodeDecodeError as exc:
        raise UserError(f"{csv_path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise UserError(f"{csv_path}: not a readable CSV ({exc})") from None
    if not labels.rows and not labels.refused:
        raise UserError(f"{csv_path}: no labelled rows")
    return labels


def _check_columns(csv_path: Path, names: Any) -> None:
    columns = {str(n).strip() for n in names or ()}
    if "label" not in columns or not columns & {"clip", "text"}:
        raise UserError(f"{csv_path}: needs a 'label' column and a 'clip' or 'text' column, has {sorted(columns)}")


def _parse_row(raw: dict[str | None, Any], line: int) -> LabelRow:
    """One row, stripped and checked; raises ``_RowError`` with the reason to refuse it."""
    cell = {str(k).strip(): (v or "").strip() for k, v in raw.items() if k is not None and isinstance(v, str)}
    clip, text = cell.get("clip") or None, cell.get("text") or None
    if (clip is None) == (text is None):
        raise _RowError("give exactly one of 'clip' and 'text'")
    label = cell.get("label", "")
    if not label:
        raise _RowError("empty label")
    if _non_finite(label):
        raise _RowError(f"label {label!r} is not a finite number")
    split = (cell.get("split") or DEFAULT_SPLIT).lower()
    if split not in SPLITS:
        raise _RowError(f"unknown split {cell['split']!r}; use one of {', '.join(SPLITS)}")
    start, end = _time(cell.get("start"), "start"), _time(cell.get("end"), "end")
    if start is not None and start < 0:
        raise _RowError(f"start {start} is before the clip's beginning")
    if start is not None and end is not None and not end > start:
        raise _RowError(f"end {end} is not after start {start}")
    return LabelRow(line, clip, text, label, split, start, end, cell.get("group") or DEFAULT_GROUP)


def _non_finite(label: str) -> bool:
    try:
        return not math.isfinite(float(label))
    except ValueError:
        return False


def _time(value: str | None, what: str) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise _RowError(f"{what} {value!r} is not a number") from None
    if not math.isfinite(seconds):
        raise _RowError(f"{what} {value!r} is not a finite number")
    return seconds


def _add(labels: Labels, seen: dict[tuple[Any, ...], LabelRow], row: LabelRow) -> None:
    """Keep ``row`` unless it repeats an earlier one; warn when its input was labelled differently before."""
    first = seen.setdefault(row.input_key(), row)
    if first is row:
        labels.rows.append(row)
    elif (first.label, first.split, first.group) == (row.label, row.split, row.group):
        labels.refused.append(RowNote(row.line, f"repeats line {first.line} ({row.source()})"))
    else:
        what = "in another split" if first.split != row.split else "with another label or group"
        labels.warnings.append(RowNote(row.line, f"same input as line {first.line} {what} ({row.source()}): "
                                                 f"{first.split}/{first.label} there, {row.split}/{row.label} here"))
        labels.rows.append(row)


def refuse_out_of_range(labels: Labels, spec: dict[str, Any]) -> None:
    """Move regression rows with a label outside [-3, 3] from ``rows`` to ``refused``."""
    if spec["kind"] != "regression":
        return
    kept = []
    for row in labels.rows:
        if abs(float(row.label)) > REGRESSION_LIMIT:
            labels.refused.append(RowNote(row.line, f"regression label {row.label} is outside "
                                                    f"[-{REGRESSION_LIMIT:g}, {REGRESSION_LIMIT:g}]"))
        else:
            kept.append(row)
    labels.rows = kept


def label_spec_for(labels: list[str]) -> dict[str, Any]:
    """Regression when every label is a number, else classification (sentiment names in their order)."""
    try:
        [float(x) for x in labels]
    except ValueError:
        classes = sorted(set(labels))
        if set(classes) <= set(SENTIMENT_ORDER):
            classes = [c for c in SENTIMENT_ORDER if c in classes]
        return {"kind": "classification", "classes": classes}
    return {"kind": "regression", "classes": []}


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit - 1] + "…")
