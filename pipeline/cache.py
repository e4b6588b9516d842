"""Content-addressed feature cache: one entry per (media content, extractor identity).

An entry lives at ``root/<sha[:2]>/<sha>/<extractor>-<identity key>`` as a
payload (``.npz`` for a modality result, ``.<kind>.json`` for a JSON artefact
such as a transcript) and a small record ``.meta.json`` beside it holding the
identity, the creation time and the payload's SHA-256. The payload is written
first and the record last, both atomically, so an entry without a record is
an interrupted write and counts as absent. A payload whose checksum or
contents do not match its record is removed and reported as a miss, so the
caller recomputes it. Changing one extractor's output config changes only
that extractor's key, so only that modality is recomputed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any, Iterator

from filelock import FileLock

from sgdtam_pipe.core.records_io import atomic_write_bytes, result_from_bytes, result_to_bytes
from sgdtam_pipe.core.timeline import ContractError, ExtractorIdentity, ModalityResult

RECORD_SUFFIX = ".meta.json"
RECORD_FORMAT = 1
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def default_cache_dir() -> Path:
    """``$SGDTAM_CACHE_DIR``, else ``$XDG_CACHE_HOME/sgdtam-pipe``, else ``~/.cache/sgdtam-pipe``."""
    if explicit := os.environ.get("SGDTAM_CACHE_DIR"):
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "sgdtam-pipe"


class FeatureCache:
    """Feature streams and JSON artefacts keyed by media SHA-256 and extractor identity.

    Safe to share between processes on one machine: readers and writers take
    a lock on the clip's folder (``filelock``: ``flock`` on POSIX, ``msvcrt``
    on Windows), and every file is replaced atomically.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.unwritten: str | None = None  # why the first write that failed (read-only, full disk) failed

    # --- modality results -------------------------------------------------------

    def get(self, sha256: str, identity: ExtractorIdentity) -> ModalityResult | None:
        """The cached result, or ``None`` when absent or damaged (a damaged entry is removed)."""
        payload = self._read(self._stem(sha256, identity), ".npz", identity)
        if payload is None:
            return None
        try:
            return result_from_bytes(payload)
        except ContractError:
            self._discard(self._stem(sha256, identity), ".npz")
            return None

    def put(self, sha256: str, identity: ExtractorIdentity, result: ModalityResult) -> Path | None:
        """Store ``result``; returns the payload's path, ``None`` when it could not be written."""
        return self._write(self._stem(sha256, identity), ".npz", identity, result_to_bytes(result))

    # --- JSON artefacts ----------------------------------------------------------

    def get_json(self, sha256: str, identity: ExtractorIdentity, kind: str) -> Any | None:
        """A cached JSON artefact of ``kind`` (e.g. ``"transcript"``), or ``None``."""
        suffix = _json_suffix(kind)
        payload = self._read(self._stem(sha256, identity), suffix, identity)
        if payload is None:
            return None
        try:
            return json.loads(payload.decode("utf-8"))
        except ValueError:
            self._discard(self._stem(sha256, identity), suffix)
            return None

    def put_json(self, sha256: str, identity: ExtractorIdentity, kind: str, data: Any) -> Path | None:
        payload = json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")
        return self._write(self._stem(sha256, identity), _json_suffix(kind), identity, payload)

    def discard_json(self, sha256: str, identity: ExtractorIdentity, kind: str) -> None:
        """Remove a JSON artefact its reader found unusable (it parsed, but not into what it should hold)."""
        self._discard(self._stem(sha256, identity), _json_suffix(kind))

    # --- maintenance -------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Root, number of entries, bytes on disk, and entries per extractor name."""
        entries, size, per_extractor = 0, 0, {}
        for folder in self._clip_folders():
            for item in folder.iterdir():
                with contextlib.suppress(OSError):
                    size += item.stat().st_size
                if not item.name.endswith(RECORD_SUFFIX):
                    continue
                entries += 1
                name = _record_name(item) or "(unreadable record)"
                per_extractor[name] = per_extractor.get(name, 0) + 1
        return {"root": str(self.root), "entries": entries, "bytes": size,
                "extractors": dict(sorted(per_extractor.items()))}

    def clear(self) -> int:
        """Remove every entry (and leftovers of interrupted writes); returns entries removed.

        Only folders this cache created are touched, so a root shared with
        other files keeps them.
        """
        removed = 0
        for folder in self._clip_folders():
            removed += sum(1 for item in folder.iterdir() if item.name.endswith(RECORD_SUFFIX))
            shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                folder.parent.rmdir()  # only when empty
        return removed

    # --- internals ---------------------------------------------------------------

    def _stem(self, sha256: str, identity: ExtractorIdentity) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError(f"not a lowercase hex SHA-256: {sha256!r}")
        name = _UNSAFE.sub("_", identity.name) or "extractor"
        return self.root / sha256[:2] / sha256 / f"{name}-{identity.key()}"

    def _read(self, stem: Path, suffix: str, identity: ExtractorIdentity) -> bytes | None:
        record_path = stem.with_name(stem.name + suffix + RECORD_SUFFIX)
        if not record_path.parent.is_dir():
            return None
        with _locked(stem.parent, exclusive=False):
            try:
                record_text = record_path.read_text("utf-8")
            except FileNotFoundError:
                return None  # never written, or a write that stopped before its record
            try:
                record = json.loads(record_text)
                payload = stem.with_name(stem.name + suffix).read_bytes()
            except (OSError, ValueError):
                record, payload = None, b""
        if (not isinstance(record, dict) or record.get("identity") != _canonical(identity)
                or record.get("sha256") != hashlib.sha256(payload).hexdigest()
                or record.get("bytes") != len(payload)):
            self._discard(stem, suffix)
            return None
        return payload

    def _write(self, stem: Path, suffix: str, identity: ExtractorIdentity, payload: bytes) -> Path | None:
        """Write an entry; a failure (read-only or full disk) is noted in ``unwritten``, not raised."""
        payload_path = stem.with_name(stem.name + suffix)
        record = {"format": RECORD_FORMAT, "identity": _canonical(identity), "created": time.time(),
                  "sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload)}
        try:
            stem.parent.mkdir(parents=True, exist_ok=True)
            with _locked(stem.parent, exclusive=True):
                atomic_write_bytes(payload_path, payload)
                atomic_write_bytes(stem.with_name(stem.name + suffix + RECORD_SUFFIX),
                                   json.dumps(record, sort_keys=True).encode("utf-8"))
        except OSError as exc:  # a payload left without its record counts as absent
            self.unwritten = self.unwritten or f"feature cache not written ({self.root}: {exc.strerror or exc})"
            return None
        return payload_path

    def _discard(self, stem: Path, suffix: str) -> None:
        """Remove a damaged entry (left in place when the cache is read-only: still a miss)."""
        with contextlib.suppress(OSError), _locked(stem.parent, exclusive=True):
            for path in (stem.with_name(stem.name + suffix + RECORD_SUFFIX), stem.with_name(stem.name + suffix)):
                path.unlink(missing_ok=True)

    def _clip_folders(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for prefix in sorted(self.root.iterdir()):
            if len(prefix.name) != 2 or not prefix.is_dir() or prefix.is_symlink():
                continue
            for folder in sorted(prefix.iterdir()):
                if _SHA256.match(folder.name) and folder.name[:2] == prefix.name and folder.is_dir():
                    yield folder


def _json_suffix(kind: str) -> str:
    if not kind or _UNSAFE.search(kind) or "." in kind:
        raise ValueError(f"artefact kind must be letters, digits, '_' or '-', got {kind!r}")
    return f".{kind}.json"


def canonical_identity(identity: ExtractorIdentity) -> Any:
    """The identity as it reads back from JSON, so a stored record compares equal."""
    return json.loads(json.dumps(identity.to_json(), sort_keys=True, default=str))


_canonical = canonical_identity


def _record_name(path: Path) -> str | None:
    try:
        return str(json.loads(path.read_text("utf-8"))["identity"]["name"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextlib.contextmanager
def _locked(folder: Path, *, exclusive: bool) -> Iterator[None]:
    """A lock on ``folder/.lock`` for the length of one read or write (reads are short, so
    readers take it too rather than a separate shared lock).

    A reader of a cache it cannot write (a read-only shared copy) reads without one.
    """
    if not exclusive and not os.access(folder, os.W_OK):
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(folder / ".lock"):
        yield
