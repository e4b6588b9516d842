"""Batch runs with a real job (probe and decode every clip) over a folder of good and bad input."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from batch_jobs import crashing_media_job, media_job
from media_factory import make_media

from sgdtam_pipe.pipeline.batch import BatchBusy, _exclusive, load_job, run_batch, scan_media
from sgdtam_pipe.pipeline.runstate import RunState

REPO = Path(__file__).resolve().parents[1]
GRID = REPO / "examples" / "grid-bbaf2n.mpg"
TESTS = Path(__file__).resolve().parent


def build_mixed_folder(root: Path) -> dict[str, set[str]]:
    """Good clips, broken files, non-media files, unreadable entries and a symlink loop.

    Returns the media-named paths by what they are.
    """
    (root / "talks" / "day 2").mkdir(parents=True)
    (root / "broken").mkdir()
    good = {
        root / "grid.mpg": shutil.copyfile(GRID, root / "grid.mpg"),
        root / "talks" / "day 2" / "GRID copy.MPG": shutil.copyfile(GRID, root / "talks" / "day 2" / "GRID copy.MPG"),
    }
    good[root / "talks" / "tone.mp4"] = make_media(root / "talks" / "tone.mp4", seconds=1.0)
    good[root / "talks" / "voice.wav"] = make_media(root / "talks" / "voice.wav", seconds=0.5)
    good[root / "talks" / "mute.mkv"] = make_media(root / "talks" / "mute.mkv", seconds=0.6, audio=None)
    whole = make_media(root / "broken" / "whole.mp4", seconds=1.0).read_bytes()
    (root / "broken" / "whole.mp4").unlink()
    (root / "broken" / "truncated.mp4").write_bytes(whole[: len(whole) // 3])
    (root / "broken" / "notes.mp4").write_text("this is a text file, not a video\n")
    (root / "broken" / "empty.mp4").write_bytes(b"")
    (root / "readme.txt").write_text("not media")
    (root / "talks" / "labels.csv").write_text("clip,label\ngrid.mpg,1\n")
    (root / "gone.mp4").symlink_to(root / "deleted-long-ago.mp4")
    os.mkfifo(root / "talks" / "pipe.mp4")
    (root / "talks" / "day 2" / "loop").symlink_to("..", target_is_directory=True)
    bad = {"truncated.mp4", "notes.mp4", "empty.mp4"}
    return {"good": {str(p) for p in good},
            "broken": {str(root / "broken" / name) for name in bad},
            "unreadable": {str(root / "gone.mp4"), str(root / "talks" / "pipe.mp4")}}


@pytest.fixture()
def mixed(tmp_path) -> tuple[Path, dict[str, set[str]]]:
    root = tmp_path / "in"
    return root, build_mixed_folder(root)


def read_tables(out: Path) -> tuple[list[dict], list[dict]]:
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return rows, records


def test_scan_finds_media_by_extension_and_reports_the_rest(mixed):
    root, kinds = mixed
    scan = scan_media(root)
    assert {str(p) for p in scan.media} == kinds["good"] | kinds["broken"]
    assert list(scan.media) == sorted(scan.media)
    problems = {p.path: p for p in scan.problems}
    assert "dangling symlink" in problems[str(root / "gone.mp4")].reason
    assert "not a regular file" in problems[str(root / "talks" / "pipe.mp4")].reason
    loop = problems[str(root / "talks" / "day 2" / "loop")]
    assert "symlink loop" in loop.reason and not loop.is_clip
    assert not any(p.suffix in {".txt", ".csv"} for p in scan.media)


def test_unreadable_file_is_reported_when_permissions_apply(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod 000 does not stop root from reading "
                    "(the FIFO and dangling-symlink entries cover unreadable files here)")
    locked = shutil.copyfile(GRID, tmp_path / "locked.mpg")
    locked.chmod(0)
    (problem,) = scan_media(tmp_path).problems
    assert problem.path == str(locked) and "permission denied" in problem.reason


def test_mixed_folder_every_clip_gets_a_result_or_a_reason(mixed, tmp_path):
    root, kinds = mixed
    out = tmp_path / "out"
    events = []
    summary = run_batch(root, out_dir=out, job=media_job, workers=2,
                        hook=lambda step, info: events.append((step, dict(info))))
    assert not summary.interrupted
    assert summary.found == 8 and summary.processed == 8 and summary.skipped == 0
    assert summary.counts == {"pending": 0, "running": 0, "done": 5, "failed": 5, "total": 10}
    assert any("symlink loop" in p.reason for p in summary.problems)

    rows, records = read_tables(out)
    by_path = {r["path"]: r for r in rows}
    assert set(by_path) == kinds["good"] | kinds["broken"] | kinds["unreadable"]
    assert [r["path"] for r in records] == [r["path"] for r in rows]
    for path in kinds["good"]:
        row = by_path[path]
        assert row["status"] == "done" and row["reason"] == "" and len(row["sha256"]) == 64
    for path in kinds["broken"] | kinds["unreadable"]:
        row = by_path[path]
        assert row["status"] == "failed" and row["stage"] and row["reason"], row
        assert "\n" not in row["reason"] and "Traceback" not in row["reason"]
    assert by_path[str(root / "broken" / "empty.mp4")]["reason"] == "is empty (0 bytes)"
    assert by_path[str(root / "broken" / "truncated.mp4")]["stage"] == "media"
    assert by_path[str(root / "gone.mp4")]["stage"] == "scan"

    grid = next(r for r in records if r["path"] == str(root / "grid.mpg"))["result"]
    assert grid["duration"] == pytest.approx(3.0, abs=0.05) and grid["width"] == 360
    assert grid["audio_seconds"] == pytest.approx(3.0, abs=0.05) and grid["audio_rms"] > 0.01
    mute = next(r for r in records if r["path"].endswith("mute.mkv"))["result"]
    assert mute["has_audio"] is False and mute["audio_rms"] is None
    assert by_path[str(root / "talks" / "voice.wav")]["has_video"] == "False"

    clip_events = [info for step, info in events if step == "clip"]
    assert [e["done"] for e in clip_events] == list(range(1, 9))
    assert {e["total"] for e in clip_events} == {8}
    assert events[0] == ("scan", {"found": 8, "problems": 3})


def test_second_run_skips_finished_clips(mixed, tmp_path):
    root, kinds = mixed
    out = tmp_path / "out"
    run_batch(root, out_dir=out, job=media_job)
    before = {r["path"]: r for r in read_tables(out)[1]}
    again = run_batch(root, out_dir=out, job=media_job, retry_failed=False)
    assert (again.processed, again.skipped) == (0, 8)
    assert {r["path"]: r for r in read_tables(out)[1]} == before

    retried = run_batch(root, out_dir=out, job=media_job)  # failures are retried by default
    assert (retried.processed, retried.skipped) == (3, 5)
    after = {r["path"]: r for r in read_tables(out)[1]}
    for path in kinds["good"]:
        assert after[path] == before[path]  # untouched, same update time
    assert retried.counts["done"] == 5

    repaired = Path(sorted(kinds["broken"])[0])
    shutil.copyfile(GRID, repaired)  # a broken file replaced by a good one
    fixed = run_batch(root, out_dir=out, job=media_job, retry_failed=False)
    assert fixed.processed == 1 and fixed.counts["done"] == 6


def test_worker_that_dies_is_recorded_and_the_run_goes_on(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    for name in ("a.mpg", "b.mpg", "crash.mpg", "d.mpg"):
        shutil.copyfile(GRID, root / name)
    hook_events = []
    summary = run_batch(root, out_dir=tmp_path / "out", job=crashing_media_job, workers=2,
                        hook=lambda step, info: hook_events.append(info))
    assert len(hook_events) == 6  # the scan, the plan, then each clip once, the retried ones included
    assert summary.counts == {"pending": 0, "running": 0, "done": 3, "failed": 1, "total": 4}
    (failed,) = RunState(tmp_path / "out" / "run.sqlite").rows("failed")
    assert failed.path.endswith("crash.mpg") and failed.stage == "worker" and "died" in failed.reason


RUNNER = """
import json, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal, even when started from a
# shell that ignores SIGINT for background jobs (their children inherit the ignore)
sys.path.insert(0, {tests!r})
import sgdtam_pipe.pipeline.batch as batch
from batch_jobs import slow_media_job
batch.EXPORT_EVERY_S = 0.0  # rewrite the tables after every clip: many chances to be killed mid-write
summary = batch.run_batch({root!r}, out_dir={out!r}, job=slow_media_job, workers={workers})
print(json.dumps(summary.to_json()))
"""


def start_runner(root: Path, out: Path, workers: int = 2) -> subprocess.Popen:
    script = RUNNER.format(tests=str(TESTS), root=str(root), out=str(out), workers=workers)
    env = dict(os.environ, BATCH_TEST_DELAY_S="0.3")
    return subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_done(out: Path, count: int, runner: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and runner.poll() is None:
        if (out / "run.sqlite").exists():
            with RunState(out / "run.sqlite") as state:
                if state.counts()["done"] >= count:
                    return
        time.sleep(0.05)
    raise AssertionError(f"runner did not reach {count} done clips: {runner.poll()} {runner.stderr.read()}")


def grid_folder(root: Path, count: int) -> list[str]:
    root.mkdir()
    return [str(shutil.copyfile(GRID, root / f"clip{i:02d}.mpg")) for i in range(count)]


def test_killed_run_leaves_valid_tables_and_resumes(tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    paths = grid_folder(root, 10)
    runner = start_runner(root, out)
    wait_for_done(out, 3, runner)
    os.killpg(runner.pid, signal.SIGKILL)  # the runner and its workers, as a kill -9 of the job would
    runner.wait()
    with RunState(out / "run.sqlite") as state:
        done_before = {r.path for r in state.rows("done")}
    assert 3 <= len(done_before) < 10
    rows, records = read_tables(out)  # parse whole: no half-written line
    assert {r["path"] for r in rows if r["status"] == "done"} <= done_before
    assert all(r["result"] is not None for r in records if r["status"] == "done")

    summary = run_batch(root, out_dir=out, job=media_job)
    assert summary.skipped == len(done_before) and summary.processed == 10 - len(done_before)
    assert summary.counts == {"pending": 0, "running": 0, "done": 10, "failed": 0, "total": 10}
    rows, _ = read_tables(out)
    assert sorted(r["path"] for r in rows if r["status"] == "done") == paths


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_cleanly_and_keeps_finished_results(tmp_path, workers):
    root, out = tmp_path / "in", tmp_path / "out"
    grid_folder(root, 10)
    runner = start_runner(root, out, workers)
    wait_for_done(out, 2, runner)
    os.killpg(runner.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole process group
    stdout, stderr = runner.communicate(timeout=60)
    assert runner.returncode == 0, stderr
    summary = json.loads(stdout)
    assert json.loads((out / "summary.json").read_text()) == summary
    assert summary["interrupted"] is True
    assert summary["counts"]["running"] == 0 and summary["counts"]["done"] >= 2
    assert summary["counts"]["pending"] >= 1
    rows, _ = read_tables(out)
    assert sum(r["status"] == "done" for r in rows) == summary["counts"]["done"]
    assert run_batch(root, out_dir=out, job=media_job).counts["done"] == 10


def test_one_run_per_output_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "in").mkdir()
    with _exclusive(out):
        with pytest.raises(BatchBusy, match="another batch run"):
            run_batch(tmp_path / "in", out_dir=out, job=media_job)


def test_load_job_by_name():
    assert load_job("batch_jobs:media_job") is media_job
    with pytest.raises(ValueError, match="module:function"):
        load_job("batch_jobs.media_job")
    with pytest.raises(ValueError, match="cannot load"):
        load_job("batch_jobs:no_such_job")


def test_dask_cluster_backend(mixed, tmp_path):
    distributed = pytest.importorskip("distributed")
    root, kinds = mixed
    with distributed.LocalCluster(n_workers=1, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        summary = run_batch(root, out_dir=tmp_path / "out", job=media_job, scheduler=cluster.scheduler_address)
    assert summary.counts == {"pending": 0, "running": 0, "done": 5, "failed": 5, "total": 10}
    rows, _ = read_tables(tmp_path / "out")
    assert {r["path"] for r in rows if r["status"] == "done"} == kinds["good"]
    grid = next(r for r in rows if r["path"] == str(root / "grid.mpg"))
    assert float(grid["duration"]) == pytest.approx(3.0, abs=0.05)


def test_dask_scheduler_that_cannot_be_reached_is_a_clear_error(tmp_path):
    pytest.importorskip("distributed")
    from sgdtam_pipe.pipeline.cluster import DaskPool

    with pytest.raises(ConnectionError, match="cannot reach the Dask scheduler"):
        DaskPool("tcp://127.0.0.1:9", wait_for_workers_s=2)
