"""Records to disk and back without pickle: ``.npz`` (``allow_pickle=False``) plus JSON.

A modality result is one ``.npz`` holding the arrays and a ``meta`` entry
(UTF-8 JSON stored as a uint8 array). A clip record is a folder with
``clip.json`` and one ``.npz`` per modality. Every write is atomic: a
temporary file in the same folder, fsync, then ``os.replace``.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from sgdtam_pipe.extractors.timeline import (
    MODALITIES, ClipFeatures, ClipInfo, ContractError, ExtractorIdentity, MissingModality,
    ModalityResult, TimedFeatures,
)

FORMAT_VERSION = 1


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; results and caches are ordinary files
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_bytes(path, json.dumps(data, indent=2, sort_keys=True).encode("utf-8"))


def result_to_bytes(result: ModalityResult) -> bytes:
    """Serialise a stream or a missing marker to ``.npz`` bytes."""
    if isinstance(result, MissingModality):
        meta = {"format": FORMAT_VERSION, "missing": True, "reason": result.reason,
                "identity": result.identity.to_json() if result.identity else None}
        arrays: dict[str, np.ndarray] = {}
    else:
        meta = {"format": FORMAT_VERSION, "missing": False, "names": list(result.names),
                "identity": result.identity.to_json(), "times_synthetic": result.times_synthetic}
        arrays = {"values": result.values, "start": result.start, "end": result.end, "mask": result.mask}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def result_from_bytes(data: bytes) -> ModalityResult:
    """Inverse of :func:`result_to_bytes`; raises ``ContractError`` on a damaged record."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            meta = json.loads(npz["meta"].tobytes().decode("utf-8"))
            if meta.get("format") != FORMAT_VERSION:
                raise ContractError(f"unsupported record format {meta.get('format')!r}")
            identity = ExtractorIdentity.from_json(meta["identity"]) if meta.get("identity") else None
            if meta["missing"]:
                return MissingModality(meta["reason"], identity)
            return TimedFeatures(npz["values"], npz["start"], npz["end"], npz["mask"],
                                 tuple(meta["names"]), identity, bool(meta["times_synthetic"]))
    except ContractError:
        raise
    except Exception as exc:  # zip, JSON, key and dtype errors all mean a damaged record
        raise ContractError(f"damaged feature record: {exc}") from exc


def save_result(path: str | Path, result: ModalityResult) -> None:
    atomic_write_bytes(path, result_to_bytes(result))


def load_result(path: str | Path) -> ModalityResult:
    return result_from_bytes(Path(path).read_bytes())


def save_clip(folder: str | Path, clip: ClipFeatures) -> None:
    """Write a clip record; ``clip.json`` goes last so its presence marks a complete record."""
    folder = Path(folder)
    for name in MODALITIES:
        save_result(folder / f"{name}.npz", clip.modality(name))
    atomic_write_json(folder / "clip.json", {"format": FORMAT_VERSION, "clip": clip.clip.to_json()})


def load_clip(folder: str | Path) -> ClipFeatures:
    folder = Path(folder)
    try:
        meta = json.loads((folder / "clip.json").read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ContractError(f"{folder}: no readable clip.json ({exc})") from exc
    results = {name: load_result(folder / f"{name}.npz") for name in MODALITIES}
    return ClipFeatures(ClipInfo.from_json(meta["clip"]), **results)
