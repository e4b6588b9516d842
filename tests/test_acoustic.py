"""Acoustic extractor: openSMILE golden values, missing audio, chunking, pooling, librosa frames."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from media_factory import write_wav

from sgdtam_pipe.core.media import MediaError, ffmpeg_exe, probe
from sgdtam_pipe.core.timeline import MissingModality, TimedFeatures
from sgdtam_pipe.extractors.acoustic.frames import level_dbfs
from sgdtam_pipe.extractors.acoustic.librosa_frames import NAMES as LIBROSA_NAMES
from sgdtam_pipe.extractors.acoustic.librosa_frames import LibrosaExtractor
from sgdtam_pipe.extractors.acoustic.opensmile_frames import OpenSmileExtractor

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GRID = EXAMPLES / "grid-bbaf2n.mpg"
PEXELS = EXAMPLES / "pexels-crying-to-laughing.mp4"
RATE = 16_000


def voice_like(seconds: float, rate: int = RATE, f0: float = 140.0, seed: int = 0) -> np.ndarray:
    """A harmonic tone at ``f0`` with a 3 Hz syllable-like envelope and a little noise."""
    t = np.arange(int(round(seconds * rate))) / rate
    harmonics = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in (1, 2, 3) if f0 * k < rate / 2)
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 3 * t)
    noise = 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    return (0.25 * harmonics * envelope + noise).astype(np.float32)


def column(stream: TimedFeatures, name: str) -> np.ndarray:
    return stream.values[:, stream.names.index(name)]


def assert_tiles(stream: TimedFeatures, hop: float) -> None:
    """Rows step by exactly one hop: no duplicate and no missing frame anywhere."""
    steps = np.diff(stream.start)
    assert np.allclose(steps, hop, rtol=0, atol=1e-9), np.unique(np.round(steps, 6))


# --- openSMILE backend -----------------------------------------------------------

@pytest.mark.parametrize("feature_set, width", [("eGeMAPSv02", 25), ("ComParE_2016", 65)])
def test_opensmile_equals_process_file_on_the_same_wav(tmp_path, feature_set, width):
    opensmile = pytest.importorskip("opensmile")
    wav = write_wav(GRID, tmp_path / "grid.wav")
    ours = OpenSmileExtractor(pool_window=None, feature_set=feature_set).extract(wav)
    theirs = opensmile.Smile(feature_set=opensmile.FeatureSet[feature_set],
                             feature_level=opensmile.FeatureLevel.LowLevelDescriptors).process_file(str(wav))
    start = theirs.index.get_level_values("start").total_seconds().to_numpy()
    end = theirs.index.get_level_values("end").total_seconds().to_numpy()
    assert ours.width == width and list(ours.names) == list(theirs.columns)
    assert np.array_equal(ours.values, theirs.to_numpy(dtype=np.float32))
    assert np.allclose(ours.start, start, rtol=0, atol=1e-9)  # pandas keeps nanoseconds
    assert np.allclose(ours.end[:-1], end[:-1], rtol=0, atol=1e-9)
    # audinterface stretches the last frame to the file's end; we keep openSMILE's own frame end
    assert end[-1] == pytest.approx(probe(wav).duration, abs=1e-3)
    assert ours.end[-1] == pytest.approx(ours.start[-1] + (ours.end[0] - ours.start[0]))
    assert ours.end[-1] <= end[-1]


def test_opensmile_on_grid_clip_is_timed_inside_the_clip():
    extractor = OpenSmileExtractor(pool_window=None)
    stream = extractor.extract(GRID)
    assert isinstance(stream, TimedFeatures)
    assert stream.width == 25 and stream.mask.all() and len(stream) > 250
    assert_tiles(stream, 0.010)
    assert stream.start[0] >= 0 and stream.end[-1] <= probe(GRID).duration + 1e-6
    assert stream.identity == extractor.identity() == OpenSmileExtractor(pool_window=None).identity()
    loudness = column(stream, "Loudness_sma3")
    assert loudness.max() > 10 * max(loudness[:10].mean(), 1e-3)  # speech is louder than the lead-in


def test_opensmile_pitch_of_a_tone():
    stream = OpenSmileExtractor(pool_window=None).extract_waveform(voice_like(2.0, f0=150.0), RATE, 0.0)
    semitones = column(stream, "F0semitoneFrom27.5Hz_sma3nz")
    voiced = semitones[semitones > 0]
    assert voiced.size > 0.8 * len(stream)
    assert np.median(voiced) == pytest.approx(12 * np.log2(150 / 27.5), abs=0.5)


def test_opensmile_chunking_changes_nothing_and_stays_out_of_the_identity():
    samples = voice_like(4.0)
    whole = OpenSmileExtractor(pool_window=None, chunk_seconds=60.0).extract_waveform(samples, RATE, 0.0)
    chunked = OpenSmileExtractor(pool_window=None, chunk_seconds=0.37).extract_waveform(samples, RATE, 0.0)
    assert np.array_equal(whole.values, chunked.values)
    assert np.array_equal(whole.start, chunked.start) and np.array_equal(whole.end, chunked.end)
    assert_tiles(chunked, 0.010)
    assert whole.identity == chunked.identity


def test_opensmile_ten_minutes_in_chunks_tiles_the_track():
    rate, seconds = 2_000, 600.0  # openSMILE's cost is mostly per frame; a low rate still trims it
    stream = OpenSmileExtractor(pool_window=None, chunk_seconds=37.0).extract_waveform(voice_like(seconds, rate=rate), rate, 0.0)
    assert_tiles(stream, 0.010)
    assert stream.start[0] == 0.0 and seconds - 0.1 < stream.end[-1] <= seconds
    assert np.isfinite(stream.values).all()


# --- what both backends share ----------------------------------------------------

BACKENDS = [OpenSmileExtractor, lambda **o: LibrosaExtractor(f0_method="yin", **o)]


@pytest.mark.parametrize("make", BACKENDS)
def test_silent_track_is_missing_with_its_level(make):
    result = make().extract(PEXELS)
    assert isinstance(result, MissingModality)
    assert "silent" in result.reason and "-inf dBFS" in result.reason and "-60 dBFS" in result.reason
    assert result.identity == make().identity()


@pytest.mark.parametrize("make", BACKENDS)
def test_file_without_audio_stream_is_missing(tmp_path, make):
    silent_video = tmp_path / "video-only.mp4"
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(GRID), "-t", "0.5", "-an",
                    str(silent_video)], check=True)
    result = make().extract(silent_video)
    assert isinstance(result, MissingModality) and result.reason == "no audio stream"


def test_silence_threshold_is_an_option_and_part_of_the_identity():
    quiet = 1e-3 * voice_like(1.0, seed=1)  # about -72 dBFS
    level = level_dbfs(quiet, RATE)
    assert -80 < level < -60
    default = OpenSmileExtractor(pool_window=None)
    assert isinstance(default.extract_waveform(quiet, RATE, 0.0), MissingModality)
    lenient = OpenSmileExtractor(pool_window=None, silence_threshold_dbfs=-90.0)
    assert isinstance(lenient.extract_waveform(quiet, RATE, 0.0), TimedFeatures)
    assert lenient.identity().key() != default.identity().key()


@pytest.mark.parametrize("make", BACKENDS)
def test_frames_are_shifted_by_the_track_start(make):
    samples = voice_like(1.0)
    at_zero = make().extract_waveform(samples, RATE, 0.0)
    later = make().extract_waveform(samples, RATE, 2.5)
    assert np.allclose(later.start, at_zero.start + 2.5) and np.allclose(later.end, at_zero.end + 2.5)
    assert np.array_equal(later.values, at_zero.values)


@pytest.mark.parametrize("make", BACKENDS)
def test_pooled_rows_keep_their_true_intervals(make):
    samples = voice_like(1.0)
    native = make(pool_window=None).extract_waveform(samples, RATE, 0.0)
    extractor = make(pool_window=0.05)
    pooled = extractor.extract_waveform(samples, RATE, 0.0)
    assert pooled.identity == extractor.identity() and pooled.identity.config["pool_window"] == 0.05
    assert pooled.identity.key() != native.identity.key()
    assert len(pooled) == -(-len(native) // 5)
    assert np.array_equal(pooled.start, native.start[::5])
    assert np.array_equal(pooled.end, native.end[np.minimum(np.arange(4, len(native) + 4, 5), len(native) - 1)])
    assert np.allclose(pooled.values[0], native.values[:5].mean(axis=0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make", BACKENDS)
def test_progress_hook_reaches_the_total(make):
    events = []
    make(chunk_seconds=4.0).extract_waveform(voice_like(12.0), RATE, 0.0, hook=lambda step, info: events.append(info))
    assert len(events) >= 2
    done = [e["done"] for e in events]
    assert done == sorted(done) and done[-1] == events[-1]["total"] > 0


def test_bad_input_raises_a_one_line_error(tmp_path):
    not_media = tmp_path / "notes.mp4"
    not_media.write_text("not a video")
    with pytest.raises(MediaError, match="notes.mp4"):
        OpenSmileExtractor(pool_window=None).extract(not_media)
    with pytest.raises(ValueError, match="feature set"):
        OpenSmileExtractor(pool_window=None, feature_set="GeMAPS-ish")
    with pytest.raises(ValueError, match="f0_method"):
        LibrosaExtractor(pool_window=None, f0_method="crepe")
    with pytest.raises(ValueError, match="floats"):
        OpenSmileExtractor(pool_window=None).extract_waveform(np.zeros(100, np.int16), RATE, 0.0)
    with pytest.raises(ValueError, match="mono"):
        OpenSmileExtractor(pool_window=None).extract_waveform(np.zeros((2, 100), np.float32), RATE, 0.0)


# --- librosa backend -------------------------------------------------------------

def test_librosa_on_grid_clip_has_documented_names_and_sample_count_times():
    import sgdtam_pipe.extractors.acoustic.librosa_frames as module

    stream = LibrosaExtractor(pool_window=None).extract(GRID)
    assert stream.names == LIBROSA_NAMES and stream.width == 32
    for name in LIBROSA_NAMES:
        if not name[-1].isdigit():
            assert f"``{name}``" in module.__doc__
    samples = 16_000 * probe(GRID).duration
    assert len(stream) == pytest.approx(1 + (samples - 400) // 160, abs=2)
    assert np.array_equal(stream.start, np.arange(len(stream)) * 160 / 16_000)
    assert np.allclose(stream.end - stream.start, 0.025)
    f0 = column(stream, "f0_hz")
    assert 0.1 < (f0 > 0).mean() < 0.9 and 70 < np.median(f0[f0 > 0]) < 250  # a male voice, with pauses


@pytest.mark.parametrize("method", ["yin", "pyin"])
def test_librosa_pitch_and_voicing_of_a_tone(method):
    samples = np.concatenate([voice_like(1.0, f0=150.0), np.zeros(RATE // 2, np.float32)])
    stream = LibrosaExtractor(pool_window=None, f0_method=method).extract_waveform(samples, RATE, 0.0)
    f0, voicing = column(stream, "f0_hz"), column(stream, "voicing_prob")
    tone, quiet = stream.end < 0.95, stream.start > 1.1
    assert np.median(f0[tone]) == pytest.approx(150.0, rel=0.03)
    assert (f0[tone] > 0).mean() > 0.9 and (f0[quiet] == 0).all()
    assert voicing[tone].mean() > voicing[quiet].mean() + 0.3
    assert column(stream, "log_energy_dbfs")[tone].min() > column(stream, "log_energy_dbfs")[quiet].max()


@pytest.mark.parametrize("rate", [8_000, 44_100])
def test_librosa_at_other_sample_rates(rate):
    stream = LibrosaExtractor(pool_window=None, f0_method="yin").extract_waveform(voice_like(1.0, rate=rate, f0=200.0), rate, 0.0)
    assert len(stream) == 1 + (rate - round(0.025 * rate)) // (rate // 100)
    f0 = column(stream, "f0_hz")
    assert np.median(f0[f0 > 0]) == pytest.approx(200.0, rel=0.03)
    reference = LibrosaExtractor(pool_window=None, f0_method="yin").extract_waveform(voice_like(1.0, f0=200.0), RATE, 0.0)
    energy, expected = column(stream, "log_energy_dbfs"), column(reference, "log_energy_dbfs")
    assert np.median(np.abs(energy[:len(expected)] - expected[:len(energy)])) < 0.5  # same windows in seconds
    assert np.isfinite(stream.values).all()
    with pytest.raises(ValueError, match="10 ms"):
        LibrosaExtractor(pool_window=None).extract_waveform(voice_like(0.5, rate=22_050), 22_050, 0.0)
    with pytest.raises(ValueError, match="f0_min"):
        LibrosaExtractor(pool_window=None, f0_min=20.0)


def test_librosa_chunked_equals_unchunked():
    samples = voice_like(5.0)
    for method in ("yin", "pyin"):
        whole = LibrosaExtractor(pool_window=None, f0_method=method, chunk_seconds=60).extract_waveform(samples, RATE, 0.0)
        chunked = LibrosaExtractor(pool_window=None, f0_method=method, chunk_seconds=1.3).extract_waveform(samples, RATE, 0.0)
        assert np.array_equal(whole.start, chunked.start) and np.array_equal(whole.end, chunked.end)
        pitch = [LIBROSA_NAMES.index("f0_hz"), LIBROSA_NAMES.index("voicing_prob")]
        other = np.setdiff1d(np.arange(len(LIBROSA_NAMES)), pitch)
        assert np.allclose(whole.values[:, other], chunked.values[:, other], rtol=1e-5, atol=1e-4)
        same_pitch = np.isclose(whole.values[:, pitch[0]], chunked.values[:, pitch[0]], rtol=1e-4, atol=1e-3)
        assert same_pitch.mean() >= (1.0 if method == "yin" else 0.99)


def test_librosa_ten_minutes_in_chunks_tiles_the_track():
    rate, seconds = 2_000, 600.0  # a low sample rate keeps this fast; the chunk logic is the same
    samples = voice_like(seconds, rate=rate)
    stream = LibrosaExtractor(pool_window=None, f0_method="yin", f0_max=400.0, chunk_seconds=37.0).extract_waveform(samples, rate, 0.0)
    assert len(stream) == 1 + (samples.size - 50) // 20
    assert_tiles(stream, 0.010)
    assert np.isfinite(stream.values).all()
    f0 = column(stream, "f0_hz")
    borders = (np.arange(1, 17) * 3700)[:, None] + np.arange(-3, 3)[None, :]  # frames around chunk borders
    assert np.median(f0[borders.ravel()][f0[borders.ravel()] > 0]) == pytest.approx(140.0, rel=0.05)
