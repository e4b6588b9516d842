"""Progress and logging from the CLI: every stage reports with units off a terminal, ``--quiet`` hides
progress but not warnings, ``--log-level error`` hides warnings, batch reports from the scan on."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from sgdtam_pipe.pipeline.cli import batch_progress, main

GRID = Path(__file__).resolve().parents[1] / "examples" / "grid-bbaf2n.mpg"
# "HH:MM:SS [step]  done/total unit": the shape of ProgressHook's log lines off a terminal
LINE = re.compile(r"^\d\d:\d\d:\d\d \[(?P<step>[\w:]+)\]  (?P<done>[\d.]+)/(?P<total>[\d.]+) (?P<unit>[a-z]+)\b")


def _run(args: list[str]):
    result = CliRunner().invoke(main, args, catch_exceptions=False)  # click 8.2+: stderr kept apart
    assert result.exit_code == 0, result.stderr
    return result


def _progress(stderr: str) -> dict[str, list[tuple[str, str, str]]]:
    lines: dict[str, list[tuple[str, str, str]]] = {}
    for line in stderr.splitlines():
        if match := LINE.match(line):
            lines.setdefault(match["step"], []).append((match["done"], match["total"], match["unit"]))
    return lines


@pytest.fixture(scope="module")
def analysed(tmp_path_factory) -> tuple[Path, str, str]:
    cache = tmp_path_factory.mktemp("cache")
    result = _run(["analyze", str(GRID), "--cache-dir", str(cache)])
    return cache, result.stdout, result.stderr


def test_every_stage_reports_with_units_and_a_total_known_up_front(analysed) -> None:
    _, stdout, stderr = analysed
    steps = _progress(stderr)
    assert {"whisper", "embed", "opensmile", "face"} <= steps.keys(), stderr
    for step, unit in (("whisper", "s"), ("embed", "windows"), ("opensmile", "s"), ("face", "frames")):
        reports = steps[step]
        assert {u for _, _, u in reports} == {unit}, (step, reports)
        assert len({t for _, t, _ in reports}) == 1, f"{step}: the total changed mid-run: {reports}"
        assert float(reports[-1][0]) == float(reports[-1][1]), f"{step} did not end at its total"
    assert steps["whisper"][0][:2] == ("0.0", "3.0") and steps["face"][-1][:2] == ("45", "45")
    for stage in ("text", "audio", "video", "model"):  # the stage lines
        assert re.search(rf"^\d\d:\d\d:\d\d \[{stage}\]$", stderr, re.M), stderr
    assert "overall sentiment" in stdout and "[whisper]" not in stdout  # results on stdout only


def test_quiet_shows_no_progress_but_still_warnings_and_log_level_error_hides_them(analysed, tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    unwritable = str(blocker / "cache")  # under a file: the cache cannot be written, even as root
    quiet = _run(["--quiet", "analyze", str(GRID), "--cache-dir", unwritable])
    assert "overall sentiment" in quiet.stdout
    assert not _progress(quiet.stderr) and "[text]" not in quiet.stderr, quiet.stderr
    assert re.search(r"^warning: feature cache not written", quiet.stderr, re.M), quiet.stderr
    hushed = _run(["-q", "--log-level", "error", "analyze", str(GRID), "--cache-dir", unwritable])
    assert hushed.stderr == "" and "overall sentiment" in hushed.stdout


def test_verbose_adds_debug_lines(analysed) -> None:
    cache, _, _ = analysed
    result = _run(["--quiet", "--verbose", "analyze", str(GRID), "--cache-dir", str(cache)])
    assert re.search(r"^debug: \[pipeline\.features\] grid-bbaf2n\.mpg: text from the cache", result.stderr,
                     re.M), result.stderr
    assert not _progress(result.stderr)


def test_batch_reports_the_scan_before_the_first_clip(analysed, tmp_path) -> None:
    cache, _, _ = analysed  # features cached: the worker only loads the model
    folder = tmp_path / "clips"
    folder.mkdir()
    shutil.copy(GRID, folder / GRID.name)
    result = _run(["batch", str(folder), "--out", str(tmp_path / "out"), "--cache-dir", str(cache)])
    clips = [line for line in result.stderr.splitlines() if "[clips]" in line]
    assert clips and re.search(r"\[clips\]  0/1 clips  found 1 media files$", clips[0]), result.stderr
    assert "1/1 clips" in clips[-1] and "grid-bbaf2n.mpg done" in clips[-1]
    assert '"found": 1' in result.stdout and "[clips]" not in result.stdout


def test_batch_progress_counts_clips_of_an_earlier_run_against_the_scan() -> None:
    seen: list[tuple[str, dict]] = []
    report = batch_progress(lambda step, info: seen.append((step, dict(info))))
    report("scan", {"found": 3, "problems": 1})
    report("plan", {"todo": 1, "skipped": 2})
    report("clip", {"done": 1, "total": 1, "path": "/x/c.mp4", "status": "failed", "skipped": 2})
    assert [(s, i["done"], i["total"], i["unit"]) for s, i in seen] == [("clips", 0, 3, "clips"),
                                                                         ("clips", 2, 3, "clips"),
                                                                         ("clips", 3, 3, "clips")]
    assert "1 unreadable" in seen[0][1]["message"] and seen[-1][1]["message"] == "c.mp4 failed"
