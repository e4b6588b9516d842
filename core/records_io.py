"""Records to disk and back without pickle: ``.npz`` (``allow_pickle=False``) plus JSON.

A modality result is one ``.npz`` holding the arrays and a ``meta`` entry
(UTF-8 JSON stored as a uint8 array). A clip record is a folder with
``clip.json`` and one ``.npz`` per modality, or one *clip file*: a single
``.npz`` with every modality's arrays under ``<modality>.<array>`` and a
``meta`` entry (clip info, each modality's meta, caller's extras), written
with one fsync. Every write is atomic: a temporary file in the same folder,
fsync, then ``os.replace``.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from sgdtam_pipe.core.timeline import (
    MODALITIES,
    ClipFeatures,
    ClipInfo,
    ContractError,
    ExtractorIdentity,
    MissingModality,
    ModalityResult,
    TimedFeatures,
)

FORMAT_VERSION = 1


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results and caches are ordinary files (no fchmod on Windows)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, data: Any) -> None:
    """``data`` as strict JSON: a NaN or infinity raises ``ValueError`` instead of writing invalid JSON."""
    atomic_write_bytes(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=False).encode("utf-8"))


ARRAYS = ("values", "start", "end", "mask")


def _result_meta(result: ModalityResult) -> dict[str, Any]:
    if isinstance(result, MissingModality):
        return {"format": FORMAT_VERSION, "missing": True, "reason": result.reason,
                "identity": result.identity.to_json() if result.identity else None}
    return {"format": FORMAT_VERSION, "missing": False, "names": list(result.names),
            "identity": result.identity.to_json(), "times_synthetic": result.times_synthetic}


def _result_arrays(result: ModalityResult, prefix: str = "") -> dict[str, np.ndarray]:
    return {} if isinstance(result, MissingModality) else {prefix + k: getattr(result, k) for k in ARRAYS}


def _result_from(meta: dict[str, Any], npz: Any, prefix: str = "") -> ModalityResult:
    if meta.get("format") != FORMAT_VERSION:
        raise ContractError(f"unsupported record format {meta.get('format')!r}")
    identity = ExtractorIdentity.from_json(meta["identity"]) if meta.get("identity") else None
    if meta["missing"]:
        return MissingModality(meta["reason"], identity)
    values, start, end, mask = (npz[prefix + k] for k in ARRAYS)
    return TimedFeatures(values, start, end, mask, tuple(meta["names"]), identity, bool(meta["times_synthetic"]))


def _npz_bytes(arrays: dict[str, np.ndarray], meta: Any) -> bytes:
    arrays = dict(arrays, meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _meta(npz: Any) -> Any:
    return json.loads(npz["meta"].tobytes().decode("utf-8"))


def result_to_bytes(result: ModalityResult) -> bytes:
    """Serialise a stream or a missing marker to ``.npz`` bytes."""
    return _npz_bytes(_result_arrays(result), _result_meta(result))


def result_from_bytes(data: bytes) -> ModalityResult:
    """Inverse of :func:`result_to_bytes`; raises ``ContractError`` on a damaged record."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return _result_from(_meta(npz), npz)
    except ContractError:
        raise
    except Exception as exc:  # zip, JSON, key and dtype errors all mean a damaged record
        raise ContractError(f"damaged feature record: {exc}") from exc


def clip_to_bytes(clip: ClipFeatures, extra: Mapping[str, Any] | None = None) -> bytes:
    """A clip file's bytes; ``extra`` (JSON) is kept in its meta, read back by :func:`clip_file_extra`."""
    arrays: dict[str, np.ndarray] = {}
    for name in MODALITIES:
        arrays.update(_result_arrays(clip.modality(name), f"{name}."))
    meta = {"format": FORMAT_VERSION, "clip": clip.clip.to_json(), "extra": dict(extra or {}),
            "modalities": {name: _result_meta(clip.modality(name)) for name in MODALITIES}}
    return _npz_bytes(arrays, meta)


def clip_from_bytes(data: bytes) -> ClipFeatures:
    """Inverse of :func:`clip_to_bytes`; raises ``ContractError`` on a damaged file."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            meta = _meta(npz)
            if meta.get("format") != FORMAT_VERSION:
                raise ContractError(f"unsupported clip file format {meta.get('format')!r}")
            results = {name: _result_from(meta["modalities"][name], npz, f"{name}.") for name in MODALITIES}
            return ClipFeatures(ClipInfo.from_json(meta["clip"]), **results)
    except ContractError:
        raise
    except Exception as exc:  # zip, JSON, key and dtype errors all mean a damaged file
        raise ContractError(f"damaged clip file: {exc}") from exc


def save_clip_file(path: str | Path, clip: ClipFeatures, extra: Mapping[str, Any] | None = None) -> None:
    atomic_write_bytes(path, clip_to_bytes(clip, extra))


def load_clip_file(path: str | Path) -> ClipFeatures:
    try:
        return clip_from_bytes(Path(path).read_bytes())
    except ContractError as exc:
        raise ContractError(f"{path}: {exc}") from exc


def clip_file_extra(path: str | Path) -> dict[str, Any]:
    """The ``extra`` stored with a clip file, reading none of its arrays."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return dict(_meta(npz)["extra"])
    except Exception as exc:  # a missing, damaged or foreign file
        raise ContractError(f"{path}: not a readable clip file ({exc})") from exc


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
