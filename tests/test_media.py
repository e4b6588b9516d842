"""Media module: probing, audio with its start time, frames with their real times, ffmpeg CLI ops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from media_factory import AUDIO_ONLY, CODECS, VFR_TIMES, make_media, make_rotated, make_vfr

from sgdtam_pipe.core import media

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
GRID = EXAMPLES / "grid-bbaf2n.mpg"
PEXELS = EXAMPLES / "pexels-crying-to-laughing.mp4"


@pytest.fixture(scope="module")
def vfr(tmp_path_factory) -> Path:
    return make_vfr(tmp_path_factory.mktemp("vfr") / "vfr.mkv")


def test_grid_clip_has_75_frames_at_25_fps_and_3_s_of_audio() -> None:
    info = media.probe(GRID)
    frames = list(media.iter_frames(GRID, fps=None))
    audio = media.decode_audio(GRID)
    assert info.has_audio and info.has_video
    assert info.avg_fps == pytest.approx(25.0)
    assert abs(len(frames) - 75) <= 1
    assert np.diff([f.start for f in frames]) == pytest.approx(0.04, abs=1e-6)
    assert audio is not None and audio.sample_rate == media.AUDIO_RATE
    assert audio.duration == pytest.approx(3.0, abs=0.05)
    assert audio.samples.dtype == np.float32 and np.abs(audio.samples).max() > 0.01


def test_probe_reports_streams_codecs_and_size() -> None:
    info = media.probe(PEXELS)
    assert (info.width, info.height, info.rotation) == (640, 360, 0)
    assert {s.kind for s in info.streams} == {"video", "audio"}
    assert {s.codec for s in info.streams} == {"h264", "aac"}
    assert info.duration == pytest.approx(19.7, abs=0.05)


def test_variable_frame_rate_keeps_true_times(vfr: Path) -> None:
    frames = list(media.iter_frames(vfr, fps=None))
    assert [round(f.start, 6) for f in frames] == list(VFR_TIMES)
    assert [round(f.end, 6) for f in frames[:-1]] == list(VFR_TIMES[1:])


def test_sampling_keeps_first_frame_at_each_tick(vfr: Path) -> None:
    starts = [round(f.start, 6) for f in media.iter_frames(vfr, fps=10.0)]
    # 10 fps ticks at 0, 0.1, 0.2, ...: the dense part is thinned, the sparse part kept whole.
    assert starts == [0.0, 0.12, 0.2, 0.32, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3]
    assert set(starts) <= set(VFR_TIMES)


def test_default_sampling_is_15_fps_on_grid() -> None:
    starts = np.array([f.start for f in media.iter_frames(GRID)])
    assert len(starts) == 45  # every frame whose time reaches the next 1/15 s tick
    assert np.all(np.diff(starts) > 0) and np.all(np.diff(starts) <= 0.08 + 1e-9)


@pytest.mark.parametrize("suffix", sorted(CODECS))
def test_every_container_decodes(tmp_path: Path, suffix: str) -> None:
    path = make_media(tmp_path / f"clip{suffix}", seconds=1.0)
    info = media.probe(path)
    audio = media.decode_audio(path)
    frames = list(media.iter_frames(path, fps=None))
    assert info.has_audio and audio is not None
    assert audio.duration == pytest.approx(1.0, abs=0.06)
    if suffix in AUDIO_ONLY:
        assert not info.has_video and frames == []
    else:
        assert info.has_video and abs(len(frames) - 25) <= 1
        assert all(f.image.shape == (120, 160, 3) for f in frames[:3])


def test_late_audio_keeps_its_start_time(tmp_path: Path) -> None:
    path = make_media(tmp_path / "late.mkv", seconds=1.0, audio_delay=0.3)
    audio = media.decode_audio(path)
    first = next(media.iter_frames(path))
    assert audio is not None and audio.start == pytest.approx(0.3, abs=0.01)
    assert first.start == pytest.approx(0.0, abs=1e-6)


def test_rotation_is_applied(tmp_path: Path) -> None:
    plain = make_media(tmp_path / "plain.mp4", seconds=0.4)
    rotated = make_rotated(plain, tmp_path / "rotated.mp4", 90)
    info = media.probe(rotated)
    upright = next(media.iter_frames(plain)).image
    turned = next(media.iter_frames(rotated)).image
    assert info.rotation == 90 and (info.width, info.height) == (120, 160)
    assert turned.shape == (160, 120, 3)
    assert np.abs(turned.astype(int) - np.rot90(upright, 1).astype(int)).mean() < 1.0


def test_odd_path_names_work(tmp_path: Path) -> None:
    folder = tmp_path / "dir with spaces ü"
    folder.mkdir()
    odd = folder / "-clip ñ é.mp4"
    odd.write_bytes(GRID.read_bytes())
    assert media.probe(odd).has_video
    assert media.decode_audio(odd).duration == pytest.approx(media.probe(odd).duration, abs=0.1)
    assert next(media.iter_frames(odd)).image.ndim == 3
