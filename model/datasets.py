"""Public feature sets as ClipFeatures: CMU-MultimodalSDK ``.csd`` files and MMSA pickles.

**CMU-MultimodalSDK computational sequences** are HDF5: ``/<root>/data/<video
id>/features [N, D]`` and ``intervals [N, 2]`` (seconds), and
``/<root>/metadata/<key>`` holding JSON strings ("dimension names",
"computational sequence version", ...). A labels sequence gives one row per
segment: its interval and its label(s). Each labelled segment becomes a clip
whose rows are the feature rows overlapping the segment, with their real
intervals shifted so the segment starts at 0 and clipped to the segment.
Rows with non-finite values, or all zeros (the SDK's padding words "sp"),
are kept but masked out.

**MMSA-style pickles** (``{"train": {"text": [N, T, D], "audio": ...,
"vision": ..., "regression_labels": [N], ...}, "valid": ..., "test": ...}``)
carry no times. Rows are spread evenly over ``duration`` seconds and flagged
``times_synthetic``. A pickle can run code when loaded: it is read only from
a path the user names with ``trusted=True``, and even then only numpy arrays
and plain containers are accepted (any other global is refused before it
is built).
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

from sgdtam_pipe.core.errors import UserError
from sgdtam_pipe.core.timeline import (
    MODALITIES,
    ClipFeatures,
    ClipInfo,
    ExtractorIdentity,
    MissingModality,
    TimedFeatures,
    rows_overlapping,
    spread_evenly,
)

MMSA_KEYS = {"text": "text", "audio": "audio", "video": "vision"}
_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"),
}


# --- CMU-MultimodalSDK ---------------------------------------------------------------

class ComputationalSequence:
    """One computational sequence: per video id, features and intervals; plus its metadata."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            with h5py.File(self.path, "r") as handle:
                roots = list(handle.keys())
                if len(roots) != 1 or "data" not in handle[roots[0]]:
                    raise UserError("expected one root group holding 'data'")
                root = handle[roots[0]]
                self.root = roots[0]
                self.data = {vid: (np.asarray(g["features"]), np.asarray(g["intervals"], np.float64))
                             for vid, g in root["data"].items()}
                self.metadata = {k: _metadata_value(v) for k, v in root.get("metadata", {}).items()}
        except (OSError, KeyError, ValueError) as exc:
            raise UserError(f"{self.path}: not a readable computational sequence ({exc})") from None

    def identity(self) -> ExtractorIdentity:
        version = self.metadata.get("computational sequence version", "unknown")
        return ExtractorIdentity(f"csd:{self.root}", str(version), {})

    def names(self, width: int) -> tuple[str, ...]:
        names = self.metadata.get("dimension names")
        if isinstance(names, list) and len(names) == width:
            return tuple(str(n) for n in names)
        return tuple(f"{self.root}_{i}" for i in range(width))


def _metadata_value(dataset: Any) -> Any:
    raw = dataset[0] if dataset.shape else dataset[()]
    text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
    try:
        return json.loads(text)
    except ValueError:
        return text


def load_csd(labels: str | Path, *, text: str | Path | None = None, audio: str | Path | None = None,
             video: str | Path | None = None, label_column: int = 0) -> tuple[list[ClipFeatures], list[float]]:
    """One clip per labelled segment of ``labels``; a modality without a file or entry is missing."""
    label_seq = ComputationalSequence(labels)
    streams = {m: ComputationalSequence(p) for m, p in (("text", text), ("audio", audio), ("video", video)) if p is not None}
    clips, values = [], []
    for vid in sorted(label_seq.data):
        features, intervals = label_seq.data[vid]
        for i, ((lo, hi), row) in enumerate(zip(intervals, features)):
            segment = f"{vid}[{i}]"
            parts = {m: _segment(streams[m], vid, lo, hi) if m in streams else MissingModality("no file given")
                     for m in MODALITIES}
            digest = hashlib.sha256(f"{label_seq.root}:{segment}:{lo}:{hi}".encode()).hexdigest()
            clips.append(ClipFeatures(ClipInfo(digest, float(hi - lo), f"{label_seq.path}#{segment}"), **parts))
            values.append(float(np.asarray(row).reshape(-1)[label_column]))
    return clips, values


def _segment(seq: ComputationalSequence, vid: str, lo: float, hi: float) -> TimedFeatures | MissingModality:
    if vid not in seq.data:
        return MissingModality(f"{seq.path.name} has no entry for {vid}", seq.identity())
    features, intervals = seq.data[vid]
    if features.ndim != 2 or intervals.shape != (features.shape[0], 2):
        raise UserError(f"{seq.path}: {vid} has features {features.shape} and intervals {intervals.shape}")
    rows = rows_overlapping(intervals[:, 0], intervals[:, 1], lo, hi)
    if rows.size == 0:
        return MissingModality(f"{seq.path.name}: no rows inside segment [{lo}, {hi})", seq.identity())
    rows = rows[np.argsort(intervals[rows, 0], kind="stable")]
    values = features[rows].astype(np.float32)
    mask = np.isfinite(values).all(1) & (values != 0).any(1)
    start = np.clip(intervals[rows, 0], lo, hi) - lo
    end = np.clip(intervals[rows, 1], lo, hi) - lo
    return TimedFeatures(np.where(mask[:, None], values, 0.0), start, np.maximum(end, start), mask,
                         seq.names(values.shape[1]), seq.identity())


# --- MMSA pickles ----------------------------------------------------------------------

class _NumpyOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are accepted")


def read_mmsa(path: str | Path, *, trusted: bool = False) -> Any:
    """The unpickled contents of an MMSA feature pickle the user vouches for (numpy arrays only)."""
    path = Path(path)
    if not trusted:
        raise UserError(f"{path}: refusing to unpickle without trusted=True (pickles can run code)")
    try:
        with open(path, "rb") as handle:
            return _NumpyOnly(handle).load()
    except (OSError, pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"{path}: not a usable MMSA feature pickle ({exc})") from None


def load_mmsa(path: str | Path, *, split: str, trusted: bool = False, duration: float = 1.0,
              label_key: str = "regression_labels", data: Any = None) -> tuple[list[ClipFeatures], list[float]]:
    """Clips and labels of one split of an MMSA feature pickle the user vouches for.

    ``trusted=True`` is required: pickles are not a safe format. Times are
    synthetic (rows spread evenly over ``duration`` seconds per modality).
    ``data``: the file's contents already read by :func:`read_mmsa` (one
    unpickle for several splits).
    """
    path = Path(path)
    if data is None:
        data = read_mmsa(path, trusted=trusted)
    try:
        part: Mapping[str, Any] = data[split]
        labels = np.asarray(part[label_key], np.float64).reshape(-1)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise UserError(f"{path}: not a usable MMSA feature pickle (split {split!r}: {exc!r})") from None
    ids = [str(x) for x in part.get("id", range(len(labels)))]
    for key in ("id", *MMSA_KEYS.values()):
        if key in part and len(part[key]) != len(labels):
            raise UserError(f"{path}: split {split!r} has {len(part[key])} {key!r} rows for {len(labels)} labels")
    identity = {m: ExtractorIdentity(f"mmsa:{MMSA_KEYS[m]}", "unknown", {}) for m in MODALITIES}
    clips = []
    for i, name in enumerate(ids):
        parts = {m: _mmsa_stream(part, m, i, duration, identity[m]) for m in MODALITIES}
        digest = hashlib.sha256(f"{path.name}:{split}:{name}".encode()).hexdigest()
        clips.append(ClipFeatures(ClipInfo(digest, duration, f"{path}#{split}/{name}"), **parts))
    return clips, labels.tolist()


def _mmsa_stream(part: Mapping[str, Any], modality: str, i: int, duration: float,
                 identity: ExtractorIdentity) -> TimedFeatures | MissingModality:
    key = MMSA_KEYS[modality]
    if key not in part:
        return MissingModality(f"no {key!r} array in the pickle", identity)
    values = np.asarray(part[key][i], np.float32)
    length = part.get(f"{key}_lengths")
    if length is not None:
        values = values[:int(np.asarray(length)[i])]
    if values.ndim != 2 or values.shape[0] == 0:
        return MissingModality(f"{key} sample {i} has shape {values.shape}", identity)
    mask = np.isfinite(values).all(1) & (values != 0).any(1)
    start, end = spread_evenly(values.shape[0], duration)
    names = tuple(f"{key}_{j}" for j in range(values.shape[1]))
    return TimedFeatures(np.where(mask[:, None], values, 0.0), start, end, mask, names, identity,
                         times_synthetic=True)
