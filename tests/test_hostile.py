"""Hostile input and faults (issue 13): nothing hangs, crashes or lies.

Each case records its outcome class (``result``, ``one-line error`` or
``marked missing``) and its wall time against the limit it documents; the
table is printed at the end of the module (``pytest -s`` or the terminal
summary). Small files are made with ``media_factory``; time limits are kept
short here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner
from media_factory import (
    corrupt_middle,
    make_low_rate_wav,
    make_lying_duration,
    make_media,
    make_offset,
    make_two_audio_streams,
)

from sgdtam_pipe.core import media
from sgdtam_pipe.core.errors import UserError
from sgdtam_pipe.core.records_io import atomic_write_json
from sgdtam_pipe.extractors.base import Extractor
from sgdtam_pipe.extractors.text import sidecars, sphinx
from sgdtam_pipe.extractors.text.transcribe import transcribe
from sgdtam_pipe.extractors.text.transcript import TimedToken, TranscriptConfig, Word, interpolate, segment_words
from sgdtam_pipe.pipeline import batch as batch_module
from sgdtam_pipe.pipeline.batch import PoolLost, SettingsChanged, run_batch
from sgdtam_pipe.pipeline.cli import main
from sgdtam_pipe.pipeline.runstate import RunState

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
PEXELS = REPO / "examples" / "pexels-crying-to-laughing.mp4"
PROGRESS_LINE = re.compile(r"^\d\d:\d\d:\d\d \[")
GRID = REPO / "examples" / "grid-bbaf2n.mpg"
ROWS: list[tuple[str, str, float, float]] = []  # case, outcome class, seconds, limit


@pytest.fixture(scope="module", autouse=True)
def report(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    lines = [f"{'case':<44} {'outcome':<16} {'seconds':>8} {'limit':>7}"]
    lines += [f"{case:<44} {outcome:<16} {seconds:8.2f} {limit:7.0f}" for case, outcome, seconds, limit in ROWS]
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("\nhostile input (issue 13):\n" + "\n".join(lines))


@contextmanager
def case(name: str, limit: float) -> Iterator[dict[str, str]]:
    """Time one case; the body sets ``outcome["class"]``. Fails when it took longer than ``limit``."""
    outcome = {"class": "?"}
    began = time.perf_counter()
    yield outcome
    seconds = time.perf_counter() - began
    ROWS.append((name, outcome["class"], seconds, limit))
    assert seconds <= limit, f"{name}: {seconds:.1f} s, over its {limit:g} s limit"


def messages(stderr: str) -> list[str]:
    """stderr's lines less the progress log lines (``HH:MM:SS [step] ...``, see pipeline/progress.py)."""
    return [line for line in stderr.strip().splitlines() if not PROGRESS_LINE.match(line)]


def one_line_error(result, *needles: str) -> str:
    """The CLI result's single stderr message, checked: exit 2, no traceback, naming every needle."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = messages(result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return "one-line error"


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``sgdtam-pipe ARGS`` in a process of its own (for what kills or hangs the process)."""
    return subprocess.run([sys.executable, "-m", "sgdtam_pipe.pipeline.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


@pytest.fixture(scope="module")
def talk(tmp_path_factory) -> Path:
    """A 2 s tone with a timed JSON sidecar: analysed without speech recognition or a face."""
    folder = tmp_path_factory.mktemp("talk")
    clip = make_media(folder / "talk.wav", seconds=2.0)
    (folder / "talk.json").write_text(json.dumps([{"word": "hello", "start": 0.1, "end": 0.5},
                                                  {"word": "there.", "start": 0.6, "end": 1.0}]))
    return clip


# --- 1. a corrupted mp4 hung forever ------------------------------------------------

def test_1_pyav_logs_without_the_gil() -> None:
    """The cause: PyAV's log callback for any level takes the GIL, and a frame-threaded decoder
    logging an error while its codec is freed under the GIL deadlocks."""
    av = media._av()
    assert av.logging.get_level() is None


def test_1_corrupted_mp4_decodes_to_the_end(tmp_path: Path) -> None:
    pytest.importorskip("mediapipe")
    bad = corrupt_middle(PEXELS, tmp_path / "corrupt.mp4", 200_000)  # hung 4 of 4 tries before the fix
    code = f"from sgdtam_pipe.extractors.face.landmarker import FaceExtractor; print(len(FaceExtractor().extract({str(bad)!r})))"
    with case("1 corrupted mp4 (face extraction)", 60) as outcome:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-2000:]
        assert int(done.stdout.split()[-1]) > 100  # frames on both sides of the damage
        outcome["class"] = "result"


def test_1_watchdog_ends_a_process_stuck_in_c_holding_the_gil() -> None:
    code = ("import ctypes; from sgdtam_pipe.pipeline.watchdog import Watchdog\n"
            "with Watchdog(1.0, 'error: x.mp4: timed out after 1 s'):\n    ctypes.PyDLL(None).sleep(60)\n")
    with case("1 watchdog (stuck in C, GIL held)", 15) as outcome:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
        assert done.returncode == -signal.SIGKILL
        assert done.stderr.strip() == "error: x.mp4: timed out after 1 s"
        outcome["class"] = "one-line error"


def test_1_watchdog_stays_quiet_when_the_work_finishes() -> None:
    code = "from sgdtam_pipe.pipeline.watchdog import Watchdog\nwith Watchdog(30, 'too late'):\n    pass\nprint('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "ok", "")


def test_1_analyze_timeout(talk: Path) -> None:
    with case("1 analyze --timeout 1", 20) as outcome:
        done = cli("analyze", str(talk), "--no-cache", "--timeout", "1")
        assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
        assert messages(done.stderr) == [f"error: {talk}: timed out after 1 s "
                                                    "(--timeout SECONDS raises the limit)"]
        outcome["class"] = "one-line error"


@pytest.mark.parametrize("workers", [1, 2])
def test_1_batch_records_a_stuck_clip_as_timed_out_and_goes_on(tmp_path: Path, workers: int) -> None:
    from batch_jobs import stuck_media_job

    root = tmp_path / "in"
    root.mkdir()
    for name in ("a.mpg", "stuck.mpg", "z.mpg"):
        shutil.copyfile(GRID, root / name)
    with case(f"1 batch stuck clip (workers={workers})", 30) as outcome:
        summary = run_batch(root, out_dir=tmp_path / "out", job=stuck_media_job, workers=workers, timeout=2)
        outcome["class"] = "result"
    assert summary.counts["done"] == 2 and summary.counts["failed"] == 1
    (failed,) = RunState(tmp_path / "out" / "run.sqlite").rows("failed")
    assert failed.path.endswith("stuck.mpg") and (failed.stage, failed.reason) == ("timeout", "timed out after 2 s")


# --- 3. a declared duration was trusted ----------------------------------------------

def test_3_header_duration_is_not_believed(tmp_path: Path) -> None:
    lying = make_lying_duration(tmp_path / "lying.mkv", 1e10)
    with case("3 header declares 1e10 s", 10) as outcome:
        assert media.probe(lying).duration == pytest.approx(1.0, abs=0.15)
        outcome["class"] = "result"


def test_3_too_long_media_is_refused_in_one_line(tmp_path: Path) -> None:
    long = make_low_rate_wav(tmp_path / "long.wav", 13.9 * 3600)
    with case("3 13.9 h wav of 10 Hz", 10) as outcome:
        outcome["class"] = one_line_error(CliRunner().invoke(main, ["probe", str(long)]),
                                          str(long), "over the 14400 s limit")


def test_3_decoding_stops_at_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clip = make_media(tmp_path / "clip.mp4", seconds=2.0)
    monkeypatch.setattr(media, "MAX_MEDIA_SECONDS", 0.5)
    assert media.decode_audio(clip).duration < 0.7
    assert max(frame.start for frame in media.iter_frames(clip, None)) <= 0.5


# --- 4. a cache that cannot be written ----------------------------------------------

def test_4_unwritable_cache_finishes_with_one_warning(talk: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with case("4 cache dir cannot be written", 120) as outcome:
        result = CliRunner().invoke(main, ["--quiet", "analyze", str(talk), "--cache-dir", str(blocker / "cache"),
                                           "--json", "-"])  # no progress lines: the warning alone
        assert result.exit_code == 0, result.output
        outcome["class"] = "result"
    assert result.stderr.strip().splitlines() == [f"warning: feature cache not written ({blocker / 'cache'}: "
                                                  "Not a directory)"]
    assert json.loads(result.stdout)["warnings"] == [f"feature cache not written ({blocker / 'cache'}: Not a directory)"]


def test_4_full_disk_is_a_skipped_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sgdtam_pipe.core import records_io
    from sgdtam_pipe.core.timeline import ExtractorIdentity, MissingModality
    from sgdtam_pipe.pipeline.cache import FeatureCache

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(records_io.os, "fsync", full)
    cache = FeatureCache(tmp_path)
    identity = ExtractorIdentity("x", "1")
    assert cache.put("ab" * 32, identity, MissingModality("none")) is None
    assert cache.unwritten == f"feature cache not written ({tmp_path}: No space left on device)"
    assert cache.get("ab" * 32, identity) is None


# --- 5. non-finite numbers ---------------------------------------------------------

def test_5_absurd_word_times_are_refused_naming_the_sidecar(talk: Path, tmp_path: Path) -> None:
    clip = shutil.copyfile(talk, tmp_path / "far.wav")
    sidecar = tmp_path / "far.json"
    sidecar.write_text(json.dumps([{"word": "hello", "start": 0.1, "end": 1e300}]))
    with case("5 word time 1e300", 60) as outcome:
        outcome["class"] = one_line_error(CliRunner().invoke(main, ["analyze", str(clip), "--no-cache"]),
                                          str(sidecar), "word 0", "'end' is 1e+300")


def test_5_json_is_written_strict(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    with pytest.raises(ValueError, match="not JSON compliant"):
        atomic_write_json(target, {"score": float("nan")})
    assert not target.exists()


# --- 6. a damaged run state --------------------------------------------------------

def test_6_damaged_state_one_line_then_fresh_state(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.sqlite").write_bytes(b"not a database " * 100)
    args = ["batch", str(tmp_path / "in"), "--out", str(out)]
    with case("6 damaged run.sqlite", 30) as outcome:
        outcome["class"] = one_line_error(CliRunner().invoke(main, args), "run.sqlite", "damaged run state",
                                          "--fresh-state")
    fresh = CliRunner().invoke(main, [*args, "--fresh-state"])
    assert fresh.exit_code == 0, fresh.output
    (kept,) = out.glob("run.sqlite.*")
    assert kept.read_bytes() == b"not a database " * 100
    assert RunState(out / "run.sqlite").counts()["total"] == 0


# --- 7. interpolate on cues it could not time ----------------------------------------

def test_7_multi_cue_srt_on_silent_audio_is_interpolated(tmp_path: Path) -> None:
    clip = make_media(tmp_path / "quiet.wav", seconds=2.0, audio="silence")
    srt = tmp_path / "quiet.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello there\n\n2\n00:00:01,000 --> 00:00:02,500\n"
                   "general kenobi\n")
    with case("7 multi-cue srt, silent audio, cue past end", 30) as outcome:
        transcript = transcribe(clip, config=TranscriptConfig(sidecar=srt, align="none"))
        outcome["class"] = "result"
    assert [w.text for w in transcript.words] == ["hello", "there", "general", "kenobi"]
    assert all(w.estimated for w in transcript.words) and transcript.words[-1].end <= 2.5


def test_7_untimed_run_before_another_cue() -> None:
    tokens = [TimedToken("a", low=0, high=1), TimedToken("b", low=1, high=2), TimedToken("c", low=5, high=6)]
    words = interpolate(tokens, start=0.0, end=3.0)
    assert [(w.text, w.start, w.end) for w in words] == [("a", 0, 1), ("b", 1, 2), ("c", 5, 5)]


# --- 8. workers outlive a killed batch ---------------------------------------------

RUNNER = """
import sys
sys.path.insert(0, {tests!r})
from batch_jobs import slow_media_job
from sgdtam_pipe.pipeline.batch import run_batch
run_batch({root!r}, out_dir={out!r}, job=slow_media_job, workers=2)
"""


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_8_workers_and_resource_tracker_exit_with_a_killed_parent(tmp_path: Path) -> None:
    root, out = tmp_path / "in", tmp_path / "out"
    root.mkdir()
    for i in range(6):
        shutil.copyfile(GRID, root / f"clip{i}.mpg")
    script = RUNNER.format(tests=str(TESTS), root=str(root), out=str(out))
    runner = subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ, BATCH_TEST_DELAY_S="2"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while len(kids := children(runner.pid)) < 3 and time.monotonic() < deadline:  # two workers, the tracker
        time.sleep(0.1)
    assert len(kids) >= 3, kids
    with case("8 kill -9 of the batch parent", 10) as outcome:
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait()
        while any(alive(pid) for pid in kids) and time.monotonic() < deadline + 10:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in kids), [pid for pid in kids if alive(pid)]
        outcome["class"] = "result"


# --- 9. Extractor.extract is abstract ------------------------------------------------

def test_9_an_extractor_must_implement_extract() -> None:
    class Incomplete(Extractor):
        name, version, modality, extra = "incomplete", "1", "audio", "none"

    with pytest.raises(TypeError, match="abstract method.*extract"):
        Incomplete()


# --- 11. resume with other settings ---------------------------------------------------

def test_11_changed_settings_are_refused(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    args = ["batch", str(tmp_path / "in"), "--out", str(tmp_path / "out")]
    assert CliRunner().invoke(main, args).exit_code == 0
    with case("11 batch resumed with other options", 30) as outcome:
        outcome["class"] = one_line_error(CliRunner().invoke(main, [*args, "--audio-backend", "librosa"]),
                                          "other settings", "audio_backend: 'opensmile' then, 'librosa' now")
    assert CliRunner().invoke(main, args).exit_code == 0  # the same settings resume
    with pytest.raises(SettingsChanged):
        run_batch(tmp_path / "in", out_dir=tmp_path / "out", job=len, settings={"checkpoint": "other"})


# --- 12. a Dask scheduler lost mid-run -------------------------------------------------

def test_12_lost_scheduler_fails_the_run_and_keeps_clips_pending(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    root, out = tmp_path / "in", tmp_path / "out"
    root.mkdir()
    for i in range(8):
        shutil.copyfile(GRID, root / f"clip{i}.mpg")
    port = 20000 + os.getpid() % 20000
    env = dict(os.environ, BATCH_TEST_DELAY_S="1.0", PYTHONPATH=str(TESTS))
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    scheduler = subprocess.Popen([*dask, "--port", str(port), "--no-dashboard"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", f"tcp://127.0.0.1:{port}",
                               "--nthreads", "1", "--no-dashboard"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        from batch_jobs import slow_media_job

        def kill_when_one_is_done(step: str, info: dict) -> None:
            if step == "clip" and info["done"] == 1:
                scheduler.kill()

        with case("12 Dask scheduler killed mid-run", 60) as outcome:
            with pytest.raises(PoolLost, match="lost the Dask scheduler"):
                run_batch(root, out_dir=out, job=slow_media_job, scheduler=f"tcp://127.0.0.1:{port}",
                          hook=kill_when_one_is_done)
            outcome["class"] = "one-line error"
    finally:
        for process in (scheduler, worker):
            process.kill()
            process.wait()
    counts = RunState(out / "run.sqlite").counts()
    assert counts["failed"] == 0 and counts["running"] == 0 and counts["pending"] >= 1 and counts["done"] >= 1


# --- minor -----------------------------------------------------------------------------

def test_internal_errors_are_one_line_and_keep_their_traceback_with_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    def bug(path):
        raise KeyError("a bug")

    monkeypatch.setattr(media, "probe", bug)
    result = CliRunner().invoke(main, ["probe", str(GRID)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == ["internal error: KeyError: 'a bug' (a bug: rerun with --debug "
                                                  "for the traceback and report it)"]
    debug = CliRunner().invoke(main, ["--debug", "probe", str(GRID)])
    assert isinstance(debug.exception, KeyError)


def test_user_error_with_debug_shows_its_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--debug", "probe", str(tmp_path / "none.mp4")])
    assert isinstance(result.exception, media.MediaError)


def test_the_audio_stream_with_signal_is_chosen_and_named(tmp_path: Path) -> None:
    clip = make_two_audio_streams(tmp_path / "two.mp4")
    info = media.probe(clip)
    assert (info.audio_stream, info.audio_choice) == (2, "audio stream #2 of 2 (#1 silent)")
    assert float(abs(media.decode_audio(clip).samples).max()) > 0.05


@pytest.mark.parametrize("offset", [-1.5, 5000.0])
def test_start_offsets_keep_the_true_duration(tmp_path: Path, offset: float) -> None:
    clip = make_offset(tmp_path / "offset.mkv", offset)
    with case(f"start offset {offset:g} s", 10) as outcome:
        assert media.probe(clip).duration == pytest.approx(3.0, abs=0.1)
        outcome["class"] = "result"


def test_cue_far_outside_the_clip_is_refused(tmp_path: Path) -> None:
    clip = make_media(tmp_path / "short.wav", seconds=1.0)
    srt = tmp_path / "short.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n\n2\n00:16:40,000 --> 00:16:41,000\nlater\n")
    with pytest.raises(sidecars.SidecarError, match=r"short\.srt: line 6: starts at 1000\.000 s, after the clip"):
        transcribe(clip, config=TranscriptConfig(sidecar=srt, align="none"))


def test_sidecar_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sidecars, "MAX_SIDECAR_BYTES", 1024)
    big = tmp_path / "big.txt"
    big.write_text("word " * 1000)
    with pytest.raises(UserError, match=r"big\.txt: size: .* over the 0 MB limit"):
        sidecars.read_sidecar(big)


def test_deeply_nested_json_names_the_file(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000)
    with case("deep JSON sidecar", 10) as outcome:
        with pytest.raises(UserError, match=r"deep\.json: .*nested too deeply"):
            sidecars.read_sidecar(deep)
        outcome["class"] = "one-line error"


def test_vtt_seconds_out_of_range_says_so(tmp_path: Path) -> None:
    vtt = tmp_path / "odd.vtt"
    vtt.write_text("WEBVTT\n\n00:00:99.000 --> 00:01:40.000\nhello\n")
    with pytest.raises(UserError, match=r"odd\.vtt: line 3: time '00:00:99.000': minutes and seconds must be below 60"):
        sidecars.read_sidecar(vtt)


@pytest.mark.parametrize("body, reason", [
    ("public <s> = <greeting> world;\n", "rules used but never defined: <greeting>"),
    ("public <s> = <NULL>;\n", "no rule says any word"),
])
def test_grammar_that_can_say_nothing_is_refused_at_load(tmp_path: Path, body: str, reason: str) -> None:
    pytest.importorskip("pocketsphinx")
    grammar = tmp_path / "g.jsgf"
    grammar.write_text("#JSGF V1.0;\ngrammar g;\n" + body)
    with pytest.raises(sphinx.GrammarError, match=reason):
        sphinx.load_grammar(grammar)


def test_cached_missing_reason_names_no_file(tmp_path: Path) -> None:
    pytest.importorskip("mediapipe")
    from sgdtam_pipe.extractors.face.landmarker import FaceExtractor

    clip = make_media(tmp_path / "voice.wav", seconds=0.5)
    assert FaceExtractor().extract(clip).reason == "no video stream"  # cached by content, shared by copies


def test_abbreviation_does_not_end_an_utterance() -> None:
    words = [Word(t, i * 0.3, i * 0.3 + 0.2) for i, t in enumerate(["I", "met", "Mrs.", "Smith.", "Then", "left."])]
    assert [s.text for s in segment_words(words, pause=0.8)] == ["I met Mrs. Smith.", "Then left."]


def test_bad_input_cases_reach_no_traceback(tmp_path: Path) -> None:
    from test_bad_input import broken_files

    for name, (path, reason) in broken_files(tmp_path).items():
        with case(f"bad input: {name}", 30) as outcome:
            outcome["class"] = one_line_error(CliRunner().invoke(main, ["analyze", "--no-cache", "--", str(path)]),
                                              reason)


def test_the_limits_are_documented() -> None:
    text = (REPO / "docs" / "cli.md").read_text("utf-8")
    assert f"`--timeout`, default {batch_module.DEFAULT_CLIP_TIMEOUT_S:g} s" in text
    assert f"{media.MAX_MEDIA_SECONDS / 3600:g} h" in text and f"{sidecars.MAX_SIDECAR_BYTES // 2**20} MB" in text
