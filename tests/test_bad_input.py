"""Bad input gets one clear line naming the file and the reason, or a modality marked missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from media_factory import make_media

from sgdtam_pipe.core import media
from sgdtam_pipe.pipeline.cli import main

GRID = Path(__file__).resolve().parents[1] / "examples" / "grid-bbaf2n.mpg"


def broken_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    """Each unusable file with the reason its error line must give."""
    text = tmp / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    empty = tmp / "empty.mp4"
    empty.touch()
    whole = make_media(tmp / "whole.mp4", seconds=2.0)
    truncated = tmp / "truncated.mp4"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    return {
        "missing": (tmp / "nope.mp4", "no such file"),
        "directory": (tmp, "is a directory"),
        "zero-byte": (empty, "is empty"),
        "text-as-mp4": (text, "not a readable media file"),
        "truncated": (truncated, "not a readable media file"),
    }


@pytest.mark.parametrize("case", ["missing", "directory", "zero-byte", "text-as-mp4", "truncated"])
def test_unusable_file_gives_one_line_and_exit_2(tmp_path: Path, case: str) -> None:
    path, reason = broken_files(tmp_path)[case]
    with pytest.raises(media.MediaError) as info:
        media.probe(path)
    assert str(path) in str(info.value) and reason in str(info.value)
    result = CliRunner().invoke(main, ["probe", str(path)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0] and reason in lines[0]
    assert "Traceback" not in result.output


def test_no_audio_stream_means_no_audio(tmp_path: Path) -> None:
    path = make_media(tmp_path / "mute.mp4", seconds=1.0, audio=None)
    assert not media.probe(path).has_audio
    assert media.decode_audio(path) is None
    assert len(list(media.iter_frames(path))) == 15


def test_no_video_stream_means_no_frames(tmp_path: Path) -> None:
    path = make_media(tmp_path / "voice.mp4", seconds=1.0, video=False)
    info = media.probe(path)
    assert info.has_audio and not info.has_video and list(media.iter_frames(path)) == []


def test_silent_track_decodes_to_zeros(tmp_path: Path) -> None:
    path = make_media(tmp_path / "silent.mp4", seconds=1.0, audio="silence")
    audio = media.decode_audio(path)
    assert audio is not None and audio.duration == pytest.approx(1.0, abs=0.05)
    assert float(abs(audio.samples).max()) == 0.0


def test_very_short_clip(tmp_path: Path) -> None:
    path = make_media(tmp_path / "short.mp4", seconds=0.2)
    frames = list(media.iter_frames(path, fps=None))
    assert len(frames) == 5 and media.probe(path).duration == pytest.approx(0.2, abs=0.05)


def test_path_with_spaces_non_ascii_and_leading_dash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "my clips ü"
    folder.mkdir()
    odd = folder / "-señal clip.mpg"
    shutil.copy(GRID, odd)
    monkeypatch.chdir(folder)
    result = CliRunner().invoke(main, ["probe", "--", odd.name])
    assert result.exit_code == 0, result.output
    assert '"has_video": true' in result.output
