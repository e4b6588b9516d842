"""Which clips of a batch are pending, running, done or failed, in one SQLite file.

SQLite is the embedded default: the file sits in the batch's output folder,
uses WAL journalling (readers never block the writer) and a busy timeout, and
every change is one short transaction, so several processes can share it.
Each process opens its own :class:`RunState`; a connection never crosses a
fork. A clip is also re-queued when its file changed (size or modification
time) since it was recorded.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from sgdtam_pipe.core.errors import UserError

STATUSES: tuple[str, ...] = ("pending", "running", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS clips (
    path     TEXT PRIMARY KEY,
    sha256   TEXT,
    status   TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    stage    TEXT,
    reason   TEXT,
    result   TEXT,
    seconds  REAL,
    size     INTEGER,
    mtime_ns INTEGER,
    updated  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS clips_status ON clips (status);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class ClipRow:
    """One clip's state; ``result`` is the job's JSON result once done."""

    path: str
    sha256: str | None
    status: str
    stage: str | None
    reason: str | None
    result: dict[str, Any] | None
    seconds: float | None
    updated: float


class DamagedState(UserError):
    """A state file SQLite cannot read."""


class RunState:
    """The state table of one batch run folder (``db_path`` is created on first use).

    Raises :class:`DamagedState` when the file is not a readable SQLite database.
    """

    def __init__(self, db_path: str | Path, *, timeout: float = 60.0) -> None:
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.db_path, timeout=timeout, isolation_level=None)
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            with self._transaction() as db:
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement)
                (check,) = db.execute("PRAGMA quick_check").fetchone()
                if check != "ok":
                    raise sqlite3.DatabaseError(check)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise DamagedState(f"{self.db_path}: damaged run state ({exc})") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "RunState":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing -----------------------------------------------------------------

    def add_pending(self, paths: Iterable[str | Path]) -> int:
        """Register clips; new ones, and ones whose file changed since, become pending.

        Returns how many clips became pending.
        """
        now = time.time()
        queued = 0
        with self._transaction() as db:
            for path in paths:
                size, mtime_ns = _fingerprint(path)
                row = db.execute("SELECT size, mtime_ns FROM clips WHERE path = ?", (str(path),)).fetchone()
                if row is None:
                    db.execute("INSERT INTO clips (path, status, size, mtime_ns, updated) "
                               "VALUES (?, 'pending', ?, ?, ?)", (str(path), size, mtime_ns, now))
                    queued += 1
                elif tuple(row) != (size, mtime_ns):
                    db.execute("UPDATE clips SET status = 'pending', sha256 = NULL, stage = NULL, reason = NULL, "
                               "result = NULL, seconds = NULL, size = ?, mtime_ns = ?, updated = ? WHERE path = ?",
                               (size, mtime_ns, now, str(path)))
                    queued += 1
        return queued

    def mark_running(self, path: str | Path) -> None:
        self._set(path, "running")

    def mark_done(self, path: str | Path, result: dict[str, Any], *, sha256: str | None = None,
                  seconds: float | None = None) -> None:
        """Record a finished clip; ``result`` must be JSON-serialisable."""
        self._set(path, "done", sha256=sha256, result=json.dumps(result, sort_keys=True), seconds=seconds)

    def mark_failed(self, path: str | Path, stage: str, reason: str, *, seconds: float | None = None) -> None:
        self._set(path, "failed", stage=stage, reason=reason, seconds=seconds)

    def requeue(self, status: str) -> int:
        """Turn every clip in ``status`` back to pending; returns how many.

        ``requeue("running")`` recovers clips left running by a run that was
        killed; call it only while no other run uses this state.
        """
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {STATUSES}")
        with self._transaction() as db:
            return db.execute("UPDATE clips SET status = 'pending', updated = ? WHERE status = ?",
                              (time.time(), status)).rowcount

    def record_settings(self, settings: Mapping[str, Any]) -> None:
        """Keep the settings the run's results were made with (JSON-serialisable)."""
        with self._transaction() as db:
            db.execute("INSERT INTO meta (key, value) VALUES ('settings', ?) ON CONFLICT (key) DO UPDATE "
                       "SET value = excluded.value", (json.dumps(settings, sort_keys=True),))

    # --- reading -----------------------------------------------------------------

    def settings(self) -> dict[str, Any] | None:
        """The settings recorded with :meth:`record_settings`, ``None`` when none were."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'settings'").fetchone()
        return None if row is None else json.loads(row[0])

    def counts(self) -> dict[str, int]:
        """Clips per status, every status present, plus ``total``."""
        found = dict(self._db.execute("SELECT status, COUNT(*) FROM clips GROUP BY status").fetchall())
        counts = {status: int(found.get(status, 0)) for status in STATUSES}
        counts["total"] = sum(counts.values())
        return counts

    def rows(self, status: str | None = None) -> list[ClipRow]:
        """Every clip (or those in ``status``), ordered by path."""
        query = "SELECT path, sha256, status, stage, reason, result, seconds, updated FROM clips"
        args: tuple[str, ...] = ()
        if status is not None:
            if status not in STATUSES:
                raise ValueError(f"unknown status {status!r}; expected one of {STATUSES}")
            query, args = query + " WHERE status = ?", (status,)
        return [ClipRow(p, sha, st, stage, reason, json.loads(res) if res else None, sec, upd)
                for p, sha, st, stage, reason, res, sec, upd in self._db.execute(query + " ORDER BY path", args)]

    # --- internals ---------------------------------------------------------------

    def _set(self, path: str | Path, status: str, *, sha256: str | None = None, stage: str | None = None,
             reason: str | None = None, result: str | None = None, seconds: float | None = None) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO clips (path, sha256, status, stage, reason, result, seconds, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256, "
                "status = excluded.status, stage = excluded.stage, reason = excluded.reason, "
                "result = excluded.result, seconds = excluded.seconds, updated = excluded.updated",
                (str(path), sha256, status, stage, reason, result, seconds, time.time()))

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, taken at once (``BEGIN IMMEDIATE``) to avoid deadlocks.

        A transaction left open by an interrupt that landed between ``BEGIN`` and
        the ``try`` (Ctrl-C during the ``execute``) is rolled back first.
        """
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


def _fingerprint(path: str | Path) -> tuple[int | None, int | None]:
    """Size and modification time of a file, ``(None, None)`` when it cannot be stat'ed."""
    try:
        stat = os.stat(path)
    except OSError:
        return None, None
    return stat.st_size, stat.st_mtime_ns
