"""The time contract: timed feature streams, per-clip records, and the time helpers.

Time is float seconds on the media's own timeline (0 is the container's first
presentation time after its start offset). Every row covers ``[start, end)``.
Times come from the tool that measured them; this module never invents them,
except in :func:`spread_evenly`, whose output is flagged ``times_synthetic``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Union

import numpy as np

MODALITIES: tuple[str, ...] = ("text", "audio", "video")


class ContractError(ValueError):
    """A feature stream or clip record that breaks the time contract."""


@dataclass(frozen=True)
class ExtractorIdentity:
    """Who made a stream: name, version and the config that changes the output.

    Runtime knobs (workers, verbosity, device) must stay out of ``config``:
    the cache keys on :meth:`key`.
    """

    name: str
    version: str
    config: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "config": dict(self.config)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ExtractorIdentity":
        return cls(name=str(data["name"]), version=str(data["version"]), config=dict(data.get("config", {})))

    def key(self) -> str:
        """Stable short hash of name, version and config (canonical JSON)."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class TimedFeatures:
    """One modality stream: ``values [T, D]`` with a ``[start, end)`` interval per row.

    ``mask[t]`` is False for a row that stays in the stream but holds no
    measurement (e.g. a frame with no face); its values are zeros and must not
    be read as data. ``times_synthetic`` marks times spread evenly by us
    because the source had none.
    """

    values: np.ndarray
    start: np.ndarray
    end: np.ndarray
    mask: np.ndarray
    names: tuple[str, ...]
    identity: ExtractorIdentity
    times_synthetic: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", np.ascontiguousarray(self.values, dtype=np.float32))
        object.__setattr__(self, "start", np.ascontiguousarray(self.start, dtype=np.float64))
        object.__setattr__(self, "end", np.ascontiguousarray(self.end, dtype=np.float64))
        object.__setattr__(self, "mask", np.ascontiguousarray(self.mask, dtype=bool))
        object.__setattr__(self, "names", tuple(str(n) for n in self.names))
        _validate(self)

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def width(self) -> int:
        return int(self.values.shape[1])

    def select(self, rows: np.ndarray) -> "TimedFeatures":
        """The stream restricted to ``rows`` (indices or a boolean array), order kept."""
        return TimedFeatures(
            self.values[rows], self.start[rows], self.end[rows], self.mask[rows],
            self.names, self.identity, self.times_synthetic,
        )

    def crop(self, start: float, end: float) -> "TimedFeatures":
        """Rows whose interval overlaps ``[start, end)``."""
        return self.select(rows_overlapping(self.start, self.end, start, end))


def _validate(stream: TimedFeatures) -> None:
    v, s, e, m = stream.values, stream.start, stream.end, stream.mask
    if v.ndim != 2:
        raise ContractError(f"values must be 2-D [T, D], got shape {v.shape}")
    t, d = v.shape
    for label, arr in (("start", s), ("end", e), ("mask", m)):
        if arr.shape != (t,):
            raise ContractError(f"{label} has shape {arr.shape}, expected ({t},)")
    if len(stream.names) != d:
        raise ContractError(f"{len(stream.names)} feature names for width {d}")
    if not (np.isfinite(s).all() and np.isfinite(e).all()):
        raise ContractError("non-finite start or end time")
    if (e < s).any():
        bad = int(np.argmax(e < s))
        raise ContractError(f"row {bad}: end {e[bad]} < start {s[bad]}")
    if t > 1 and (np.diff(s) < 0).any():
        bad = int(np.argmax(np.diff(s) < 0)) + 1
        raise ContractError(f"row {bad}: start {s[bad]} before previous start {s[bad - 1]}")
    if not np.isfinite(v[m]).all():
        raise ContractError("non-finite values in a masked-in row")


@dataclass(frozen=True)
class MissingModality:
    """A modality that is absent, with the reason (never zeros pretending to be data)."""

    reason: str
    identity: ExtractorIdentity | None = None


ModalityResult = Union[TimedFeatures, MissingModality]


@dataclass(frozen=True)
class ClipInfo:
    """What identifies a clip: content hash, duration in seconds, where it came from."""

    sha256: str
    duration: float
    source: str

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "duration": self.duration, "source": self.source}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ClipInfo":
        return cls(str(data["sha256"]), float(data["duration"]), str(data["source"]))


@dataclass(frozen=True)
class ClipFeatures:
    """The three modalities of one clip (each a stream or missing with a reason)."""

    clip: ClipInfo
    text: ModalityResult
    audio: ModalityResult
    video: ModalityResult

    def modality(self, name: str) -> ModalityResult:
        if name not in MODALITIES:
            raise KeyError(f"unknown modality {name!r}; expected one of {MODALITIES}")
        return getattr(self, name)

    def present(self) -> tuple[str, ...]:
        """Names of the modalities that hold a stream, in ``MODALITIES`` order."""
        return tuple(m for m in MODALITIES if isinstance(self.modality(m), TimedFeatures))

    def crop(self, start: float, end: float) -> "ClipFeatures":
        """The clip restricted to ``[start, end)``; a modality without a real row there is missing.

        So is one whose extractor records a ``max_missing_share`` (the face
        extractor) when more of the segment's rows than that share are unmeasured:
        face presence is decided per segment, not once per clip.
        """
        cropped = {}
        for name in MODALITIES:
            stream = self.modality(name)
            if isinstance(stream, TimedFeatures):
                part = stream.crop(start, end)
                reason = _absent_reason(part, name)
                stream = part if reason is None else MissingModality(reason, stream.identity)
            cropped[name] = stream
        return ClipFeatures(self.clip, **cropped)


def _absent_reason(part: TimedFeatures, name: str) -> str | None:
    """Why a cropped stream counts as missing in its segment, ``None`` when it is present."""
    if not part.mask.any():
        return f"no {name} rows in this segment"
    limit = part.identity.config.get("max_missing_share")
    missing = 1.0 - float(part.mask.mean())
    if limit is not None and missing > limit:
        return (f"no face in {int((~part.mask).sum())} of {len(part)} frames of this segment ({missing:.0%}), "
                f"more than max_missing_share={limit:g}")
    return None


# --- time helpers -----------------------------------------------------------------

def rows_overlapping(start: np.ndarray, end: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Indices of rows whose ``[start, end)`` overlaps ``[lo, hi)``.

    A zero-length row (start == end) counts when it lies inside ``[lo, hi)``.
    """
    start = np.asarray(start, dtype=np.float64)
    end = np.asarray(end, dtype=np.float64)
    overlap = (start < hi) & ((end > lo) | ((end == start) & (start >= lo)))
    return np.flatnonzero(overlap)


def pool_windows(stream: TimedFeatures, window: float) -> TimedFeatures:
    """Mean-pool rows into consecutive windows of ``window`` seconds.

    Windows are cut on the stream's own time axis starting at its first row;
    each pooled row spans from its first member's start to the latest end
    among its members (its true interval, not a nominal one). Only masked-in rows are
    averaged; a window with none stays in the stream, masked out, with zeros.
    Empty windows (gaps in the stream) produce no row.
    """
    if window <= 0:
        raise ValueError(f"window must be positive, got {window}")
    if len(stream) == 0:
        return stream
    bins = np.floor((stream.start - stream.start[0]) / window + 1e-9).astype(np.int64)
    edges = np.flatnonzero(np.diff(bins)) + 1
    groups = np.split(np.arange(len(stream)), edges)
    values = np.zeros((len(groups), stream.width), dtype=np.float32)
    mask = np.zeros(len(groups), dtype=bool)
    for i, rows in enumerate(groups):
        real = rows[stream.mask[rows]]
        if real.size:
            values[i] = stream.values[real].mean(axis=0)
            mask[i] = True
    first = np.array([g[0] for g in groups])
    last_end = np.array([stream.end[g].max() for g in groups])
    config = dict(stream.identity.config, pooled_window=window)
    identity = ExtractorIdentity(stream.identity.name, stream.identity.version, config)
    return TimedFeatures(values, stream.start[first], last_end,
                         mask, stream.names, identity, stream.times_synthetic)


def spread_evenly(count: int, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """``count`` equal intervals over ``[0, duration)`` for sources that carry no times.

    Streams built from these must set ``times_synthetic=True``.
    """
    edges = np.linspace(0.0, float(duration), count + 1)
    return edges[:-1], edges[1:]


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Content SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
