"""Batch runs: find the media under a folder and run a job on every clip, resumably.

The state of a run lives in ``out_dir/run.sqlite`` (:class:`~pipeline.runstate.RunState`);
only the parent process writes it, as each clip's outcome comes back, so a
local pool and a remote Dask cluster behave alike. ``results.csv`` and
``results.jsonl`` are regenerated from that state, atomically, every few
seconds and at the end: a killed run leaves the previous complete tables and
a state from which the next run resumes. One run uses an output folder at a
time (an advisory lock on ``out_dir/run.lock``, released by the OS even when
the run is killed), so clips left ``running`` by a dead run are re-queued.

A job is a picklable top-level callable ``job(path: str) -> dict`` returning
a JSON-serialisable result. It raises :class:`~pipeline.errors.StageError`
to say where a clip failed; a :class:`~core.media.MediaError` counts as
stage ``media`` and any other exception as stage ``unknown``. Clips run in
worker processes (:mod:`pipeline.pools`), ``workers=1`` included, so a clip
that runs past the per-clip ``timeout`` (``DEFAULT_CLIP_TIMEOUT_S``) is
stopped and recorded as failed in stage ``timeout`` while the run goes on. A
clip whose worker process dies (a crash in native code, the OOM killer) is
retried alone; when it kills its worker again it is recorded as failed in
stage ``worker``. A lost Dask scheduler ends the run with :class:`PoolLost`,
its clips back to pending.

The settings that shape the results (``settings``) are recorded with the
state; a later run into the same folder with other settings is refused
(:class:`SettingsChanged`), since "skipped" would keep results made the old
way. ``fresh_state`` sets the old state aside (``run.sqlite.<UTC time>``)
and starts anew: the way on from a damaged state file too.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import math
import os
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, CancelledError, Future, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from filelock import FileLock, Timeout

from sgdtam_pipe.core.errors import UserError
from sgdtam_pipe.core.hooks import Hook
from sgdtam_pipe.core.media import MEDIA_EXTENSIONS, MediaError
from sgdtam_pipe.core.records_io import atomic_write_bytes, atomic_write_json
from sgdtam_pipe.core.timeline import file_sha256
from sgdtam_pipe.pipeline.errors import StageError
from sgdtam_pipe.pipeline.pools import DEFAULT_CLIP_TIMEOUT_S, ClipTimeout, LocalPool, WorkerPool
from sgdtam_pipe.pipeline.runstate import DamagedState, RunState

if TYPE_CHECKING:
    import pandas as pd

Job = Callable[[str], Mapping[str, Any]]
STATE_FILE = "run.sqlite"
LOCK_FILE = "run.lock"
RESULTS_CSV = "results.csv"
RESULTS_PARQUET = "results.parquet"
DETAIL_KEY = "analysis"  # a result's full analysis: kept whole in the JSONL, left out of the flat tables
RESULTS_JSONL = "results.jsonl"
SUMMARY_JSON = "summary.json"
EXPORT_EVERY_S = 10.0
MAX_REASON_CHARS = 500
_BASE_COLUMNS: tuple[str, ...] = ("path", "status", "stage", "reason", "sha256", "seconds", "updated")


class BatchBusy(RuntimeError):
    """Another batch run holds the output folder."""


class SettingsChanged(UserError):
    """The output folder holds results made with other settings."""


class PoolLost(RuntimeError):
    """The pool as a whole went away mid-run (a Dask scheduler lost); its clips are pending again."""


# --- finding media -------------------------------------------------------------------

@dataclass(frozen=True)
class ScanProblem:
    """Something under the root that could not be used; ``is_clip`` when it looked like media."""

    path: str
    reason: str
    is_clip: bool


@dataclass(frozen=True)
class MediaScan:
    media: tuple[Path, ...]
    problems: tuple[ScanProblem, ...]


def scan_media(root: str | Path) -> MediaScan:
    """Media files under ``root`` and the entries that could not be used, without raising for them.

    Media is recognised by extension (``MEDIA_EXTENSIONS``, any case).
    Directory symlinks are followed, but a directory already scanned (a
    symlink loop, or a second link to the same folder) is reported and not
    entered again. A media-named entry that is a dangling symlink, not a
    regular file (a FIFO would block a reader forever) or not readable is
    reported instead of returned; so is a directory that cannot be listed.
    ``root`` may also be a single media file.
    """
    root = Path(root).absolute()
    if root.is_file():
        if root.suffix.lower() not in MEDIA_EXTENSIONS:
            raise UserError(f"{root}: not a media file (unknown extension {root.suffix!r})")
        return MediaScan((root,), ())
    if not root.is_dir():
        raise UserError(f"{root}: no such folder")
    media: list[Path] = []
    problems: list[ScanProblem] = []
    seen: set[tuple[int, int]] = set()
    real_dirs, linked_dirs = [root], []  # real folders first, so paths avoid detours through links
    while real_dirs or linked_dirs:
        folder = real_dirs.pop() if real_dirs else linked_dirs.pop()
        try:
            stat = folder.stat()
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            problems.append(ScanProblem(str(folder), f"folder cannot be read ({_os_reason(exc)})", False))
            continue
        if (stat.st_dev, stat.st_ino) in seen:
            problems.append(ScanProblem(str(folder), "folder already scanned through another path "
                                        "(symlink loop or second link), not entered again", False))
            continue
        seen.add((stat.st_dev, stat.st_ino))
        for entry in entries:
            _sort_entry(entry, media, problems, real_dirs, linked_dirs)
    return MediaScan(tuple(sorted(media)), tuple(problems))


def _sort_entry(entry: os.DirEntry, media: list[Path], problems: list[ScanProblem],
                real_dirs: list[Path], linked_dirs: list[Path]) -> None:
    try:
        if entry.is_dir(follow_symlinks=True):
            (linked_dirs if entry.is_symlink() else real_dirs).append(Path(entry.path))
            return
    except OSError as exc:
        problems.append(ScanProblem(entry.path, f"cannot be inspected ({_os_reason(exc)})", False))
        return
    if Path(entry.name).suffix.lower() not in MEDIA_EXTENSIONS:
        return
    reason = _unusable_reason(entry)
    if reason is None:
        media.append(Path(entry.path))
    else:
        problems.append(ScanProblem(entry.path, reason, True))


def _unusable_reason(entry: os.DirEntry) -> str | None:
    """Why a media-named entry cannot be read, or ``None`` when it is a readable regular file."""
    try:
        if not entry.is_file(follow_symlinks=True):
            if entry.is_symlink() and not os.path.exists(entry.path):
                return "dangling symlink (its target does not exist)"
            return "not a regular file (FIFO, socket or device)"
    except OSError as exc:
        return f"cannot be inspected ({_os_reason(exc)})"
    if not os.access(entry.path, os.R_OK):
        return "cannot be read (permission denied)"
    return None


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


# --- running a job on one clip (in the worker) --------------------------------------

@dataclass(frozen=True)
class ClipOutcome:
    """What came back for one clip."""

    path: str
    status: str  # "done" or "failed"
    result: dict[str, Any] | None = None
    sha256: str | None = None
    stage: str | None = None
    reason: str | None = None
    seconds: float | None = None


def run_clip(job: Job, path: str) -> ClipOutcome:
    """Run ``job`` on ``path`` and turn its result or error into an outcome (never raises ``Exception``)."""
    began = time.perf_counter()
    try:
        result = job(path)
        if not isinstance(result, Mapping):
            raise StageError("result", f"job returned {type(result).__name__}, expected a dict")
        try:
            result = json.loads(json.dumps(dict(result), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise StageError("result", f"result is not strict JSON ({exc})") from exc
        sha256 = result.get("sha256") if isinstance(result.get("sha256"), str) else file_sha256(path)
        return ClipOutcome(path, "done", result=result, sha256=sha256, seconds=time.perf_counter() - began)
    except Exception as exc:
        stage, reason = _stage_and_reason(exc)
        return ClipOutcome(path, "failed", stage=stage, reason=reason, seconds=time.perf_counter() - began)


def _stage_and_reason(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, StageError):
        return exc.stage, _one_line(exc.reason)
    if isinstance(exc, MediaError):
        return "media", _one_line(exc.reason)
    return "unknown", _one_line(f"{type(exc).__name__}: {exc}")


def _one_line(text: str) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= MAX_REASON_CHARS else line[: MAX_REASON_CHARS - 1] + "…"


def load_job(spec: str) -> Job:
    """The callable named by ``"package.module:function"``."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise UserError(f"job must be given as 'module:function', got {spec!r}")
    try:
        job = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise UserError(f"cannot load job {spec!r}: {exc}") from exc
    if not callable(job):
        raise UserError(f"job {spec!r} is not callable")
    return job


def open_pool(workers: int, scheduler: str | None, timeout: float | None = None) -> WorkerPool:
    """A Dask pool when ``scheduler`` is given, else ``workers`` local processes; ``timeout`` per call."""
    if scheduler:
        from sgdtam_pipe.pipeline.cluster import DaskPool

        return DaskPool(scheduler, timeout=timeout)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    return LocalPool(workers, timeout)


# --- the run -------------------------------------------------------------------------

@dataclass(frozen=True)
class BatchSummary:
    """How a run went: ``counts`` are over every clip in the state (this run and earlier ones)."""

    out_dir: Path
    found: int
    skipped: int
    processed: int
    counts: dict[str, int]
    problems: tuple[ScanProblem, ...]
    interrupted: bool
    seconds: float
    results_csv: Path
    results_jsonl: Path

    def to_json(self) -> dict[str, Any]:
        from sgdtam_pipe.pipeline.schema import versioned

        return versioned("batch-summary", {
            "out_dir": str(self.out_dir), "found": self.found, "skipped": self.skipped,
            "processed": self.processed, "counts": dict(self.counts), "interrupted": self.interrupted,
            "seconds": round(self.seconds, 3), "results_csv": str(self.results_csv),
            "results_parquet": str(self.results_csv.with_name(RESULTS_PARQUET)),
            "results_jsonl": str(self.results_jsonl),
            "problems": [{"path": p.path, "reason": p.reason} for p in self.problems]})


def run_batch(root: str | Path, *, out_dir: str | Path, job: Job, workers: int = 1,
              scheduler: str | None = None, hook: Hook | None = None,
              retry_failed: bool = True, timeout: float | None = DEFAULT_CLIP_TIMEOUT_S,
              settings: Mapping[str, Any] | None = None, fresh_state: bool = False) -> BatchSummary:
    """Run ``job`` on every media file under ``root``; resumable through ``out_dir``.

    Clips already done (and unchanged since) are skipped; failed ones are
    retried unless ``retry_failed`` is False. ``workers`` spawned processes
    run the clips; ``scheduler`` (a Dask
    address such as ``"tcp://host:8786"``) sends the clips to a Dask cluster
    whose workers have this package installed and see the same paths.
    ``timeout``: seconds per clip (``None``: no limit). ``settings`` and
    ``fresh_state``: see the module doc.
    ``hook`` receives ``("scan", {"found", "problems"})`` as soon as the scan ends,
    ``("plan", {"todo", "skipped"})`` once the state says what is left, then
    ``("clip", {"done", "total", "path", "status", "skipped"})`` per clip.
    Ctrl-C stops the run cleanly: clips in flight go back to pending, the
    tables are written, and the summary says ``interrupted``. The summary is
    also written to ``out_dir/summary.json``.
    """
    began = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scan = scan_media(root)
    if hook:
        hook("scan", {"found": len(scan.media), "problems": len(scan.problems)})
    with _exclusive(out_dir):
        if fresh_state:
            _set_aside(out_dir / STATE_FILE)
        with _open_state(out_dir) as state:
            _check_settings(state, settings)
            state.requeue("running")  # left by a run that was killed; we hold the folder now
            todo = _plan(state, scan, retry_failed=retry_failed)
            skipped = len(scan.media) - len(todo)
            if hook:
                hook("plan", {"todo": len(todo), "skipped": skipped})
            progress = _Progress(state, out_dir, hook, total=len(todo), skipped=skipped)
            try:
                interrupted = bool(todo) and _drive(open_pool(workers, scheduler, timeout), job, todo, progress)
            finally:  # a lost pool too leaves complete tables
                csv_path, jsonl_path = write_results(state, out_dir)
            summary = BatchSummary(out_dir, len(scan.media), skipped, progress.done, state.counts(), scan.problems,
                                   interrupted, time.perf_counter() - began, csv_path, jsonl_path)
        atomic_write_json(out_dir / SUMMARY_JSON, summary.to_json())
    return summary


def _open_state(out_dir: Path) -> RunState:
    try:
        return RunState(out_dir / STATE_FILE)
    except DamagedState as exc:
        raise DamagedState(f"{exc}; rerun with --fresh-state to start a new state "
                           f"(the damaged file is kept as {STATE_FILE}.<time>)") from None


def _set_aside(state_file: Path) -> None:
    """Move a state file (and its WAL files) to ``<name>.<UTC time>``, keeping it for inspection."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for suffix in ("", "-wal", "-shm"):
        path = state_file.with_name(state_file.name + suffix)
        if path.exists():
            os.replace(path, state_file.with_name(f"{state_file.name}.{stamp}{suffix}"))


def _check_settings(state: RunState, settings: Mapping[str, Any] | None) -> None:
    """Record ``settings`` with a new state; refuse ones that differ from those recorded."""
    if settings is None:
        return
    wanted = json.loads(json.dumps(settings, sort_keys=True, default=str))
    recorded = state.settings()
    if recorded is not None and recorded != wanted:
        changed = sorted(k for k in recorded.keys() | wanted.keys() if recorded.get(k) != wanted.get(k))
        detail = ", ".join(f"{k}: {recorded.get(k)!r} then, {wanted.get(k)!r} now" for k in changed)
        raise SettingsChanged(f"{state.db_path.parent}: holds results made with other settings ({detail}); "
                              "give another --out, or --fresh-state to start over (the old state is kept)")
    state.record_settings(wanted)


def _plan(state: RunState, scan: MediaScan, *, retry_failed: bool) -> list[str]:
    """Register the scan in the state and return the clips to process, in path order."""
    paths = [str(p) for p in scan.media]
    state.add_pending(paths + [p.path for p in scan.problems if p.is_clip])
    rows = {row.path: row for row in state.rows()}
    for problem in scan.problems:
        known = rows.get(problem.path)
        if problem.is_clip and (known is None or (known.status, known.reason) != ("failed", problem.reason)):
            state.mark_failed(problem.path, "scan", problem.reason)
    status = {path: row.status for path, row in rows.items()}
    wanted = {"pending", "failed"} if retry_failed else {"pending"}
    return [p for p in paths if status.get(p) in wanted]


@dataclass
class _Progress:
    """Records outcomes, reports them to the hook and refreshes the tables now and then."""

    state: RunState
    out_dir: Path
    hook: Hook | None
    total: int
    skipped: int
    done: int = 0
    exported: float = field(default_factory=time.monotonic)

    def record(self, outcome: ClipOutcome) -> None:
        if outcome.status == "done":
            self.state.mark_done(outcome.path, outcome.result or {}, sha256=outcome.sha256,
                                 seconds=outcome.seconds)
        else:
            self.state.mark_failed(outcome.path, outcome.stage or "unknown", outcome.reason or "",
                                   seconds=outcome.seconds)
        self.done += 1
        if self.hook:
            self.hook("clip", {"done": self.done, "total": self.total, "path": outcome.path,
                               "status": outcome.status, "skipped": self.skipped})
        if time.monotonic() - self.exported >= EXPORT_EVERY_S:
            write_results(self.state, self.out_dir)
            self.exported = time.monotonic()


def _drive(pool: WorkerPool, job: Job, todo: list[str], progress: _Progress) -> bool:
    """Keep the pool fed until every clip has an outcome; returns True when interrupted.

    At most ``pool.depth`` calls per slot are in flight, so an interrupt has
    little to cancel. A clip whose worker died is retried alone ("solo").
    Raises :class:`PoolLost` when the pool as a whole goes away.
    """
    queue, solo = deque(todo), deque()
    inflight: dict[Future, tuple[str, bool]] = {}
    try:
        while queue or solo or inflight:
            _feed(pool, job, queue, solo, inflight, progress.state)
            finished, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
            for future in finished:
                path, alone = inflight.pop(future)
                if (future.cancelled() or future.exception() is not None) and (lost := pool.lost()):
                    raise PoolLost(f"{lost} mid-run; its clips are pending again: run the batch again to resume")
                outcome = _outcome(future, path, alone)
                if outcome is None:  # the worker died under this clip
                    solo.append(path)
                    continue
                progress.record(outcome)
    except (KeyboardInterrupt, PoolLost) as exc:
        pool.close(cancel=True)
        progress.state.requeue("running")  # every running clip is ours: we hold the folder's lock
        if isinstance(exc, PoolLost):
            raise
        return True
    except BaseException:
        pool.close(cancel=True)  # no orphaned workers when the hook or the state fails
        raise
    pool.close(cancel=False)
    return False


def _feed(pool: WorkerPool, job: Job, queue: deque, solo: deque,
          inflight: dict[Future, tuple[str, bool]], state: RunState) -> None:
    if solo:
        if not inflight:
            path = solo.popleft()
            state.mark_running(path)
            inflight[pool.submit(run_clip, job, path)] = (path, True)
        return
    while queue and len(inflight) < pool.depth * pool.slots:
        path = queue.popleft()
        state.mark_running(path)
        inflight[pool.submit(run_clip, job, path)] = (path, False)


def _outcome(future: Future, path: str, alone: bool) -> ClipOutcome | None:
    """The clip's outcome; ``None`` when its worker died and it deserves a solo retry."""
    try:
        return future.result()
    except ClipTimeout as exc:
        return ClipOutcome(path, "failed", stage="timeout", reason=str(exc))
    except BrokenExecutor:
        if not alone:
            return None
        return ClipOutcome(path, "failed", stage="worker",
                           reason="the worker process died on this clip (a crash in native code or out of memory)")
    except CancelledError:
        return ClipOutcome(path, "failed", stage="worker", reason="cancelled by the executor")
    except Exception as exc:  # a remote worker lost, a result that failed to travel back
        return ClipOutcome(path, "failed", stage="worker", reason=_one_line(f"{type(exc).__name__}: {exc}"))


@contextlib.contextmanager
def _exclusive(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir/run.lock`` for the run; the OS drops it if the process dies."""
    lock = FileLock(out_dir / LOCK_FILE, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise BatchBusy(f"{out_dir}: another batch run is using this output folder") from None
    try:
        yield
    finally:
        lock.release()


# --- results tables ------------------------------------------------------------------

def write_results(state: RunState, out_dir: str | Path) -> tuple[Path, Path]:
    """Regenerate ``results.jsonl``, ``results.csv`` and ``results.parquet`` from the state, each
    replaced atomically; returns the CSV's and the JSONL's paths.

    One row per clip in every status. Each JSONL line is a versioned
    ``batch-record`` (``schemas/output.schema.json``) nesting the result whole.
    The CSV and Parquet tables are flat, one column per field: path, status,
    stage, reason, sha256, seconds, updated (ISO 8601 UTC), then the result's
    fields (nested mappings as ``outer.inner`` columns, lists of scalars joined
    with ``+``; the full ``analysis`` and lists of records stay in the JSONL
    only). A result key that clashes with a base column becomes ``result.<key>``.
    """
    import pandas as pd

    from sgdtam_pipe.pipeline.schema import versioned

    out_dir = Path(out_dir)
    rows = state.rows()
    records = [versioned("batch-record", {
        "path": r.path, "status": r.status, "stage": r.stage, "reason": r.reason, "sha256": r.sha256,
        "seconds": None if r.seconds is None else round(r.seconds, 3),
        "updated": datetime.fromtimestamp(r.updated, timezone.utc).isoformat(timespec="seconds"),
        "result": r.result}) for r in rows]
    flat = [{**{c: record[c] for c in _BASE_COLUMNS}, **_flat_result(record["result"])} for record in records]
    table = _arrow_safe(pd.DataFrame(flat, columns=_columns(flat)))
    parquet = io.BytesIO()
    table.to_parquet(parquet, index=False)
    jsonl = "".join(json.dumps(record, sort_keys=True) + "\n" for record in records)
    csv_path, jsonl_path = out_dir / RESULTS_CSV, out_dir / RESULTS_JSONL
    atomic_write_bytes(csv_path, table.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    atomic_write_bytes(out_dir / RESULTS_PARQUET, parquet.getvalue())
    atomic_write_bytes(jsonl_path, jsonl.encode("utf-8"))
    return csv_path, jsonl_path


def _flat_result(result: Mapping[str, Any] | None) -> dict[str, Any]:
    from sgdtam_pipe.pipeline.tables import flatten

    kept = {k: v for k, v in (result or {}).items() if k != DETAIL_KEY}
    return {f"result.{k}" if k in _BASE_COLUMNS else k: v for k, v in flatten(kept).items()}


def _columns(flat: list[dict[str, Any]]) -> list[str]:
    extra = sorted({key for row in flat for key in row} - set(_BASE_COLUMNS))
    return list(_BASE_COLUMNS) + extra


def _arrow_safe(table: "pd.DataFrame") -> "pd.DataFrame":
    """Columns whose values mix types (jobs may differ per clip) become text; non-finite numbers empty."""
    for column in table.columns:
        kinds = {type(v) for v in table[column] if v is not None and v == v}
        if len(kinds) > 1 and not kinds <= {int, float}:
            table[column] = [None if v is None or v != v else str(v) for v in table[column]]
    return table.replace([math.inf, -math.inf], None)


__all__ = ["BatchBusy", "BatchSummary", "ClipOutcome", "DEFAULT_CLIP_TIMEOUT_S", "MediaScan", "PoolLost",
           "ScanProblem", "SettingsChanged", "WorkerPool",
           "load_job", "open_pool", "run_batch", "run_clip", "scan_media", "write_results"]
