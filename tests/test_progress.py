"""The progress hook: log lines off a terminal (first, periodic, last), nothing when quiet."""

from __future__ import annotations

import io

from sgdtam_pipe.pipeline.progress import ProgressHook


def test_off_a_terminal_logs_the_first_the_periodic_and_the_last_update() -> None:
    stream = io.StringIO()
    hook = ProgressHook(stream=stream, log_every=0.0, interactive=False)
    for done in range(1, 4):
        hook("extract", {"done": done, "total": 3, "unit": "rows"})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and "[extract]  3/3 rows" in lines[-1] and "rows/s" in lines[-1]


def test_off_a_terminal_lines_are_spaced_by_log_every() -> None:
    stream = io.StringIO()
    hook = ProgressHook(stream=stream, log_every=3600.0, interactive=False)
    for done in range(1, 101):
        hook("train", {"done": done, "total": 100, "unit": "batches", "message": "loss 0.5"})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "loss 0.5" in lines[0] and "100/100" in lines[1]


def test_quiet_prints_nothing_and_a_bar_shows_rate_on_a_terminal() -> None:
    silent = io.StringIO()
    ProgressHook(quiet=True, stream=silent)("x", {"done": 1, "total": 2})
    assert silent.getvalue() == ""
    bar = io.StringIO()
    hook = ProgressHook(stream=bar, interactive=True)
    hook("clips", {"done": 1, "total": 2, "unit": "clip"})
    hook("clips", {"done": 2, "total": 2, "unit": "clip"})
    hook.close()
    assert "2/2" in bar.getvalue() and "clip" in bar.getvalue()
