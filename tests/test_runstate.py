"""The SQLite run state: lifecycle, change detection, recovery, and several processes at once."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from pathlib import Path

import pytest

from sgdtam_pipe.pipeline.runstate import RunState


def make_files(folder: Path, count: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"clip{i:03d}.mp4"
        path.write_bytes(b"x" * (i + 1))
        paths.append(str(path))
    return paths


def test_lifecycle(tmp_path):
    paths = make_files(tmp_path / "clips", 4)
    with RunState(tmp_path / "run.sqlite") as state:
        assert state.add_pending(paths) == 4
        assert state.add_pending(paths) == 0  # unchanged files are not queued twice
        state.mark_running(paths[0])
        state.mark_running(paths[1])
        assert state.counts() == {"pending": 2, "running": 2, "done": 0, "failed": 0, "total": 4}
        state.mark_done(paths[0], {"score": 1.5, "segments": [[0.0, 1.0]]}, sha256="ab" * 32, seconds=0.25)
        state.mark_failed(paths[1], "media", "is empty (0 bytes)")
        state.mark_running(paths[2])
        assert state.counts() == {"pending": 1, "running": 1, "done": 1, "failed": 1, "total": 4}
        done, = state.rows("done")
        assert (done.path, done.result, done.sha256, done.seconds) == (paths[0], {"score": 1.5,
                                                                                 "segments": [[0.0, 1.0]]},
                                                                        "ab" * 32, 0.25)
        failed, = state.rows("failed")
        assert (failed.stage, failed.reason, failed.result) == ("media", "is empty (0 bytes)", None)
        assert [r.path for r in state.rows()] == paths
        with pytest.raises(ValueError, match="status"):
            state.rows("finished")


def test_state_survives_reopening_and_running_clips_are_recovered(tmp_path):
    paths = make_files(tmp_path / "clips", 3)
    db = tmp_path / "run.sqlite"
    with RunState(db) as state:
        state.add_pending(paths)
        state.mark_done(paths[0], {"ok": True})
        state.mark_running(paths[1])
        state.mark_running(paths[2])  # then the run "dies" without finishing them
    with RunState(db) as state:
        assert state.counts()["running"] == 2
        assert state.requeue("running") == 2
        assert state.counts() == {"pending": 2, "running": 0, "done": 1, "failed": 0, "total": 3}
        assert [r.path for r in state.rows("done")] == paths[:1]
    mode = sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_changed_file_is_queued_again(tmp_path):
    paths = make_files(tmp_path / "clips", 2)
    with RunState(tmp_path / "run.sqlite") as state:
        state.add_pending(paths)
        for path in paths:
            state.mark_done(path, {"n": 1})
        Path(paths[1]).write_bytes(b"re-encoded, longer content")
        assert state.add_pending(paths) == 1
        assert [r.path for r in state.rows("pending")] == [paths[1]]
        assert state.rows("pending")[0].result is None
        assert [r.path for r in state.rows("done")] == paths[:1]


def _worker(db: str, barrier, paths: list[str]) -> None:
    """Mark each of ``paths`` running, then done (failed for names ending in 7), as a batch worker does."""
    state = RunState(db)
    barrier.wait()
    for path in paths:
        state.mark_running(path)
        if path.endswith("7.mp4"):
            state.mark_failed(path, "media", f"failed in {os.getpid()}")
        else:
            state.mark_done(path, {"pid": os.getpid()})
    state.close()


def test_two_processes_share_the_state(tmp_path):
    paths = make_files(tmp_path / "clips", 120)
    db = tmp_path / "run.sqlite"
    with RunState(db) as state:
        state.add_pending(paths)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    shares = [paths[0::2], paths[1::2]]  # interleaved, so the two processes write at the same moments
    workers = [context.Process(target=_worker, args=(str(db), barrier, share)) for share in shares]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0]
    with RunState(db) as state:
        counts = state.counts()
        assert counts == {"pending": 0, "running": 0, "done": 108, "failed": 12, "total": 120}
        owner = {r.path: r.result["pid"] for r in state.rows("done")}
    for worker, share in zip(workers, shares):  # no write was lost or landed on the other's rows
        assert {owner[p] for p in share if p in owner} == {worker.pid}


def test_a_transaction_left_open_by_an_interrupt_is_rolled_back_not_a_crash(tmp_path):
    paths = make_files(tmp_path / "clips", 2)
    with RunState(tmp_path / "run.sqlite") as state:
        state.add_pending(paths)
        state.mark_running(paths[0])
        state._db.execute("BEGIN IMMEDIATE")  # as when Ctrl-C lands between BEGIN and the try in _transaction
        state.requeue("running")
        assert state.counts()["running"] == 0 and state.counts()["pending"] == 2
