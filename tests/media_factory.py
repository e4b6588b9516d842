"""Synthetic test media encoded with the bundled ffmpeg binary (no shell, arguments as lists)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sgdtam_pipe.core.media import ffmpeg_exe

# Frame times of the variable-frame-rate file: 10 frames 40 ms apart, then 10 frames 100 ms apart.
VFR_TIMES = tuple([round(0.04 * n, 3) for n in range(10)] + [round(0.4 + 0.1 * (n - 10), 3) for n in range(10, 20)])

CODECS: dict[str, tuple[list[str], list[str]]] = {
    ".mp4": (["-c:v", "libx264", "-pix_fmt", "yuv420p"], ["-c:a", "aac"]),
    ".mkv": (["-c:v", "libx264", "-pix_fmt", "yuv420p"], ["-c:a", "flac"]),
    ".webm": (["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"], ["-c:a", "libopus"]),
    ".avi": (["-c:v", "mjpeg", "-q:v", "5"], ["-c:a", "pcm_s16le"]),
    ".mpg": (["-c:v", "mpeg1video", "-b:v", "400k"], ["-c:a", "mp2"]),
    ".mov": (["-c:v", "libx264", "-pix_fmt", "yuv420p"], ["-c:a", "aac"]),
    ".wav": ([], ["-c:a", "pcm_s16le"]),
    ".flac": ([], ["-c:a", "flac"]),
    ".mp3": ([], ["-c:a", "libmp3lame"]),
    ".ogg": ([], ["-c:a", "libopus"]),
}
AUDIO_ONLY = frozenset({".wav", ".flac", ".mp3", ".ogg"})


def run_ffmpeg(args: list[str]) -> None:
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def write_wav(source: Path, target: Path, *, sample_rate: int = 16_000) -> Path:
    """``source``'s audio as a mono 16-bit wav (what openSMILE's own file reader takes)."""
    run_ffmpeg(["-i", str(source), "-vn", "-ac", "1", "-ar", str(sample_rate), "-c:a", "pcm_s16le", str(target)])
    return target


def make_media(path: Path, *, seconds: float = 1.0, fps: int = 25, size: str = "160x120",
               audio: str | None = "tone", video: bool = True, audio_delay: float = 0.0) -> Path:
    """A clip of test pattern and/or a 440 Hz tone (``audio="tone"``) or digital silence.

    The codecs follow the suffix (see ``CODECS``); audio-only suffixes get no video.
    ``audio_delay`` starts the audio stream that many seconds after the video.
    """
    vcodec, acodec = CODECS[path.suffix]
    video = video and path.suffix not in AUDIO_ONLY
    args: list[str] = []
    if video:
        args += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}"]
    if audio:
        source = "sine=frequency=440:sample_rate=48000" if audio == "tone" else "anullsrc=r=48000:cl=mono"
        if audio_delay:
            args += ["-itsoffset", str(audio_delay)]
        args += ["-f", "lavfi", "-t", str(seconds), "-i", source]
    if video:
        args += vcodec
    if audio:
        args += acodec
    run_ffmpeg([*args, "-t", str(seconds + audio_delay), str(path)])
    return path


def make_vfr(path: Path) -> Path:
    """An mkv whose frames are shown at exactly ``VFR_TIMES`` (millisecond time base)."""
    expr = r"if(lt(N\,10)\,N*0.04\,0.4+(N-10)*0.1)/TB"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25", "-frames:v", str(len(VFR_TIMES)),
                "-vf", f"settb=1/1000,setpts={expr}", "-fps_mode", "passthrough", "-enc_time_base:v", "1/1000", "-c:v", "libx264",
                "-pix_fmt", "yuv420p", str(path)])
    return path


def make_rotated(source: Path, path: Path, degrees: int) -> Path:
    """A copy of ``source`` (no re-encode) whose display matrix rotates it by ``degrees``."""
    run_ffmpeg(["-display_rotation", str(degrees), "-i", str(source), "-c", "copy", str(path)])
    return path


# --- hostile media (tests/test_hostile.py) ---------------------------------------

def make_offset(path: Path, offset: float, seconds: float = 3.0) -> Path:
    """An mkv of ``seconds`` of test pattern and tone whose timestamps start at ``offset`` (may be negative)."""
    run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=size=96x64:rate=25:duration={seconds}", "-f", "lavfi", "-t",
                str(seconds), "-i", "sine=frequency=440:sample_rate=16000", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                "-c:a", "flac", "-avoid_negative_ts", "disabled", "-output_ts_offset", str(offset), str(path)])
    return path


def make_two_audio_streams(path: Path, seconds: float = 1.0) -> Path:
    """An mp4 whose first audio stream (#1) is digital silence and whose second (#2) is a tone."""
    run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=size=96x64:rate=25:duration={seconds}",
                "-f", "lavfi", "-t", str(seconds), "-i", "anullsrc=r=16000:cl=mono",
                "-f", "lavfi", "-t", str(seconds), "-i", "sine=frequency=440:sample_rate=16000",
                "-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
                str(path)])
    return path


def make_lying_duration(path: Path, declared: float) -> Path:
    """A 1 s mkv whose header declares ``declared`` seconds (its Segment Duration element rewritten)."""
    import struct

    make_media(path, seconds=1.0, fps=10, size="64x48")
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89\x88")  # Duration, an 8-byte float in milliseconds (the default timecode scale)
    data[at + 3:at + 11] = struct.pack(">d", declared * 1000)
    path.write_bytes(bytes(data))
    return path


def make_low_rate_wav(path: Path, seconds: float, rate: int = 10) -> Path:
    """A 16-bit wav of ``seconds`` at ``rate`` Hz: hours of audio in a small file."""
    import wave

    import numpy as np

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.sin(np.arange(int(seconds * rate))) * 8000).astype("<i2").tobytes())
    return path


def corrupt_middle(source: Path, path: Path, count: int, seed: int = 0) -> Path:
    """A copy of ``source`` with ``count`` random bytes written over its middle."""
    import random

    data = bytearray(source.read_bytes())
    middle = len(data) // 2
    rng = random.Random(seed)
    data[middle:middle + count] = bytes(rng.getrandbits(8) for _ in range(count))
    path.write_bytes(bytes(data))
    return path
