"""Transcript sidecar files: ``.json`` word lists, ``.srt`` and ``.vtt`` cues, ``.txt`` text.

Every reader returns :class:`Cue` records: a piece of text with the times the
file gives it (``None`` when it gives none). A malformed file raises
:class:`SidecarError`, whose message names the file and the line (or, for JSON
content, the word's index).

JSON shapes accepted: a list of word objects, ``{"words": [...]}``, or
``{"segments": [{"words": [...]}, ...]}`` (what Whisper tools write). A word
object has its text under ``"word"`` or ``"text"``, ``"start"`` and ``"end"``
in seconds (``null`` or absent: the word is timed from its neighbours), and
optionally ``"probability"``.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sgdtam_pipe.core.errors import UserError

SIDECAR_SUFFIXES: tuple[str, ...] = (".json", ".srt", ".vtt", ".txt")
"""Looked for next to the media in this order: word times first, then cue times, then bare text."""
MAX_SIDECAR_BYTES = 16 * 1024 * 1024
"""Largest sidecar read (a 4-hour word-timed transcript is a few MB)."""
MAX_CUE_SECONDS = 4 * 3600.0
"""No cue may start or end later than this (the longest clip accepted, ``media.MAX_MEDIA_SECONDS``)."""
OUTSIDE_SLACK = 2.0
"""Seconds a cue may start after its clip ends (container rounding) before the sidecar is refused."""

_TIME = r"(?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3}"
_TIMING = re.compile(rf"^\s*({_TIME})\s*-->\s*({_TIME})(?:\s.*)?$")
_TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")
_INLINE_TIME = re.compile(r"<((?:\d+:)?\d{2}:\d{2}\.\d{3})>")


class SidecarError(UserError):
    """A transcript file that cannot be read; ``str()`` names the file and where."""

    def __init__(self, path: str | Path, where: str, reason: str) -> None:
        self.path = str(path)
        super().__init__(f"{path}: {where}: {reason}")


@dataclass(frozen=True)
class Cue:
    """Text with the interval a sidecar gives it (``None`` where it gives no time).

    ``line`` is where the cue starts in the file (for JSON, the word's index).
    """

    text: str
    start: float | None
    end: float | None
    line: int
    probability: float | None = None


def find_sidecar(media: Path, named: Path | None = None) -> Path | None:
    """The sidecar for ``media``: ``named`` if given (it must exist), else a same-stem file."""
    if named is not None:
        if not named.is_file():
            raise FileNotFoundError(f"{named}: transcript sidecar not found")
        if named.suffix.lower() not in SIDECAR_SUFFIXES:
            raise SidecarError(named, "name", f"unsupported transcript type; use one of {SIDECAR_SUFFIXES}")
        return named
    for suffix in SIDECAR_SUFFIXES:
        candidate = media.with_suffix(suffix)
        if candidate != media and candidate.is_file():
            return candidate
    return None


def read_sidecar(path: Path) -> list[Cue]:
    """The cues of a sidecar file, chosen by its suffix."""
    readers: dict[str, Callable[[Path, str], list[Cue]]] = {
        ".json": read_json, ".srt": read_srt, ".vtt": read_vtt, ".txt": read_txt}
    try:
        reader = readers[path.suffix.lower()]
    except KeyError:
        raise SidecarError(path, "name", f"unsupported transcript type; use one of {SIDECAR_SUFFIXES}") from None
    return reader(path, _read_text(path))


def _read_text(path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_SIDECAR_BYTES:
        raise SidecarError(path, "size", f"{size / 2**20:.1f} MB, over the {MAX_SIDECAR_BYTES // 2**20} MB "
                                         "limit for a transcript")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise SidecarError(path, f"line {line}", "not UTF-8 text") from None


def read_txt(path: Path, text: str) -> list[Cue]:
    """The whole file as one untimed cue (none when it holds no words)."""
    return [Cue(" ".join(text.split()), None, None, 1)] if text.split() else []


def parse_timestamp(text: str) -> float:
    """Seconds of ``[HH:]MM:SS.mmm`` (comma or dot before the milliseconds).

    Raises ``ValueError`` when minutes or seconds are 60 or more.
    """
    parts = text.strip().replace(",", ".").split(":")
    hours = int(parts[-3]) if len(parts) == 3 else 0
    minutes, value = int(parts[-2]), float(parts[-1])
    if minutes >= 60 or value >= 60:
        raise ValueError(f"time {text.strip()!r}: minutes and seconds must be below 60")
    return hours * 3600 + minutes * 60 + value


def _blocks(text: str) -> list[tuple[int, list[str]]]:
    """Blank-line-separated blocks as ``(first line number, lines)``."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    first = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            if not current:
                first = number
            current.append(line.rstrip())
        elif current:
            blocks.append((first, current))
            current = []
    if current:
        blocks.append((first, current))
    return blocks


def _cue(path: Path, number: int, timing: str, text_lines: list[str]) -> Cue | None:
    match = _TIMING.match(timing)
    if match is None:
        raise SidecarError(path, f"line {number}",
                           f"expected a cue timing 'HH:MM:SS,mmm --> HH:MM:SS,mmm', got {timing.strip()!r}")
    try:
        start, end = parse_timestamp(match.group(1)), parse_timestamp(match.group(2))
    except ValueError as exc:
        raise SidecarError(path, f"line {number}", str(exc)) from None
    if end > MAX_CUE_SECONDS:
        raise SidecarError(path, f"line {number}", f"cue ends at {end:.0f} s, past the {MAX_CUE_SECONDS:.0f} s "
                                                    "limit for one clip")
    if end < start:
        raise SidecarError(path, f"line {number}", f"cue ends ({match.group(2)}) before it starts ({match.group(1)})")
    text = _clean(" ".join(text_lines))
    return Cue(text, start, end, number) if text else None


def _clean(text: str) -> str:
    """Cue text without markup, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(_TAG.sub("", text)).split())


def read_srt(path: Path, text: str) -> list[Cue]:
    """SubRip cues: an optional index line, a timing line, then text lines."""
    cues: list[Cue] = []
    for first, lines in _blocks(text):
        skip = 1 if lines[0].strip().isdigit() else 0
        if skip >= len(lines):
            raise SidecarError(path, f"line {first}", "cue number without a timing line")
        cue = _cue(path, first + skip, lines[skip], lines[skip + 1:])
        if cue is not None:
            cues.append(cue)
    return cues


def read_vtt(path: Path, text: str) -> list[Cue]:
    """WebVTT cues; NOTE, STYLE and REGION blocks are skipped, markup stripped.

    Inline timestamps split a cue into pieces with their own times, so
    word-by-word captions give each word its time.
    """
    blocks = _blocks(text)
    if not blocks or not blocks[0][1][0].startswith("WEBVTT"):
        raise SidecarError(path, "line 1", "a WebVTT file must start with 'WEBVTT'")
    cues: list[Cue] = []
    for first, lines in blocks[1:]:
        if lines[0].split(" ")[0] in ("NOTE", "STYLE", "REGION"):
            continue
        skip = 0 if "-->" in lines[0] else 1  # an optional cue identifier line
        if skip >= len(lines):
            raise SidecarError(path, f"line {first}", "cue identifier without a timing line")
        cue = _cue(path, first + skip, lines[skip], lines[skip + 1:])
        if cue is not None:
            cues += _split_at_inline_times(path, first + skip, cue, " ".join(lines[skip + 1:]))
    return cues


def _split_at_inline_times(path: Path, number: int, cue: Cue, raw: str) -> list[Cue]:
    """A cue cut at its inline timestamps (``<00:01.500>``, as in word-by-word captions).

    The text before the first timestamp runs from the cue's start; each later
    piece runs from its timestamp to the next one (the last to the cue's end).
    """
    pieces = _INLINE_TIME.split(raw)
    if len(pieces) == 1:
        return [cue]
    try:
        times = [cue.start] + [parse_timestamp(t) for t in pieces[1::2]] + [cue.end]
    except ValueError as exc:
        raise SidecarError(path, f"line {number}", str(exc)) from None
    if any(later < earlier for earlier, later in zip(times, times[1:])):
        raise SidecarError(path, f"line {number}", "inline timestamps go backwards or fall outside the cue")
    return [Cue(_clean(text), start, end, number)
            for text, start, end in zip(pieces[0::2], times, times[1:]) if _clean(text)]


def read_json(path: Path, text: str) -> list[Cue]:
    """One cue per word object (see the module doc for the shapes accepted)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SidecarError(path, f"line {exc.lineno}", f"not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise SidecarError(path, "top level", "JSON nested too deeply to be a transcript") from None
    entries = _json_words(path, data)
    return [_json_cue(path, i, entry) for i, entry in enumerate(entries)]


def _json_words(path: Path, data: Any) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and isinstance(data.get("words"), list):
        return data["words"]
    if isinstance(data, dict) and isinstance(data.get("segments"), list):
        words: list[Any] = []
        for i, segment in enumerate(data["segments"]):
            if not isinstance(segment, dict) or not isinstance(segment.get("words"), list):
                raise SidecarError(path, f"segment {i}", "has no 'words' list")
            words.extend(segment["words"])
        return words
    raise SidecarError(path, "top level", "expected a list of words, or an object with 'words' or 'segments'")


def _json_cue(path: Path, index: int, entry: Any) -> Cue:
    where = f"word {index}"
    if not isinstance(entry, dict):
        raise SidecarError(path, where, f"expected an object, got {type(entry).__name__}")
    text = entry.get("word", entry.get("text"))
    if not isinstance(text, str) or not text.strip():
        raise SidecarError(path, where, "has no non-empty 'word' or 'text'")
    start, end, probability = (_json_number(path, where, entry, key) for key in ("start", "end", "probability"))
    if (start is None) != (end is None):
        raise SidecarError(path, where, "has only one of 'start' and 'end'")
    if start is not None and end is not None and end < start:
        raise SidecarError(path, where, f"ends ({end}) before it starts ({start})")
    return Cue(" ".join(text.split()), start, end, index, probability)


def _json_number(path: Path, where: str, entry: dict, key: str) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or abs(value) == float("inf"):
        raise SidecarError(path, where, f"{key!r} must be a finite number of seconds, got {value!r}")
    if key != "probability" and not 0 <= value <= MAX_CUE_SECONDS:
        raise SidecarError(path, where, f"{key!r} is {value!r}: times must lie between 0 and the "
                                        f"{MAX_CUE_SECONDS:.0f} s limit for one clip")
    return float(value)


def check_within(path: Path, cues: list[Cue], duration: float) -> None:
    """Refuse a sidecar with a cue starting more than ``OUTSIDE_SLACK`` s after its clip's ``duration``:
    such text cannot be scored against the clip, and is most likely another file's transcript."""
    for cue in cues:
        if cue.start is not None and cue.start > duration + OUTSIDE_SLACK:
            where = f"word {cue.line}" if path.suffix.lower() == ".json" else f"line {cue.line}"
            raise SidecarError(path, where, f"starts at {cue.start:.3f} s, after the clip ends ({duration:.3f} s); "
                                            "is this the transcript of another file?")
