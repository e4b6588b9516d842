"""A clip is opened once: one container for probing and its audio, one for its frames."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from sgdtam_pipe.core.media import AUDIO_RATE, decode_audio, probe
from sgdtam_pipe.core.recording import Recording, open_recording
from sgdtam_pipe.core.timeline import TimedFeatures
from sgdtam_pipe.extractors.acoustic.librosa_frames import LibrosaExtractor
from sgdtam_pipe.pipeline.analyze import AnalyzeOptions, analyze

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
GRID = EXAMPLES / "grid-bbaf2n.mpg"


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every ``av.open`` call made while the test runs, by file name."""
    calls: list[str] = []
    real = av.open

    def counting(file, *args, **kwargs):
        calls.append(Path(str(file)).name)
        return real(file, *args, **kwargs)

    monkeypatch.setattr(av, "open", counting)
    return calls


def test_analyze_opens_the_clip_twice_and_a_cached_rerun_once(tmp_path: Path, opens: list[str]) -> None:
    """Budget: one container probes and decodes the audio that recognition, alignment and
    acoustic frames all read; one more yields the frames. Cached features need only the probe."""
    options = AnalyzeOptions(cache_dir=tmp_path / "cache")
    analyze(GRID, options)
    assert opens == [GRID.name, GRID.name]
    opens.clear()
    analyze(GRID, options)
    assert opens == [GRID.name]


def test_recording_gives_what_the_path_functions_give() -> None:
    with open_recording(GRID) as recording:
        track = recording.audio()
        assert recording.audio() is track  # decoded once
        first = next(recording.frames(15.0))
    expected = decode_audio(GRID)
    assert recording.info == probe(GRID)
    assert track.start == expected.start and np.array_equal(track.samples, expected.samples)
    assert first.start == pytest.approx(0.0, abs=0.05) and first.image.ndim == 3


def test_extractors_take_samples_already_decoded() -> None:
    """No file at all: a 440 Hz tone held in memory gives timed acoustic frames from its start time."""
    t = np.arange(AUDIO_RATE * 2) / AUDIO_RATE
    recording = Recording.from_samples((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), start=5.0)
    stream = LibrosaExtractor().extract(recording)
    assert isinstance(stream, TimedFeatures)
    assert stream.start[0] >= 5.0 and stream.end[-1] == pytest.approx(7.0, abs=0.1)
    assert list(recording.frames(15.0)) == []
