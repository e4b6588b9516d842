"""All media decoding: probe, audio at 16 kHz mono, video frames with their real times.

PyAV (which bundles FFmpeg's libraries) does the probing and decoding, so no
ffprobe is needed. Times are seconds on the media timeline: a packet's
presentation time minus the container's start offset. A still image
(``IMAGE_EXTENSIONS``) is one frame shown over ``[0, 1/fps)`` (:func:`still_seconds`),
the span of one sampled video frame, so a photo's face row looks like a
video's. Where a command-line
ffmpeg is needed (the report's browser-playable copy), ffmpeg-python drives
the binary bundled in imageio-ffmpeg, with arguments as a list and no shell.
The extractors do not call these functions on a path: they get a
:class:`core.recording.Recording`, which opens the file once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

AUDIO_RATE = 16_000
DEFAULT_FPS = 15.0
MAX_MEDIA_SECONDS = 4 * 3600.0
"""Longest media accepted: a longer file is refused at probe (cut it into parts), and decoding stops there."""
SIGNAL_PEAK = 1e-4
"""An audio stream whose samples never reach this magnitude (-80 dBFS) carries no signal."""
SIGNAL_CHECK_SECONDS = 30.0
_TAIL_PACKETS = 20_000  # most packets read after seeking to the end to find where the content stops
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})
"""Still images, recognised by extension (any case); an animated file gives its first frame."""
MEDIA_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".mov", ".ts", ".flv", ".wmv",
    ".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac",
}) | IMAGE_EXTENSIONS


class MediaError(Exception):
    """A file that cannot be used as media; ``str()`` is one line naming the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class StreamInfo:
    index: int
    kind: str  # "audio", "video", or another FFmpeg stream type
    codec: str
    start: float | None  # first presentation time on the media timeline
    duration: float | None


@dataclass(frozen=True)
class MediaInfo:
    """What a probe learns without decoding the whole file."""

    path: str
    duration: float
    start_offset: float  # the container's start time, subtracted from every timestamp
    streams: tuple[StreamInfo, ...]
    width: int | None
    height: int | None  # after rotation
    rotation: int  # degrees counter-clockwise that display applies (0, 90, 180, 270)
    avg_fps: float | None
    real_fps: float | None  # FFmpeg's guess of the base frame rate; differs from avg_fps on VFR input
    has_audio: bool
    has_video: bool
    audio_stream: int | None = None  # index of the audio stream decoded (see choose_audio_stream)
    audio_choice: str = ""  # why that stream, when the file has several
    nominal_fps: float | None = None  # the declared frame rate (FFmpeg's guess from container and codec)
    audio_rate: int | None = None  # the chosen audio stream's sample rate as stored (Hz)
    audio_channels: int | None = None  # and its channel count
    still: bool = False  # a still image: one frame, no audio, ``duration`` is ``still_seconds(DEFAULT_FPS)``


def is_still_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def still_seconds(fps: float | None) -> float:
    """How long a still image is shown: one frame at ``fps`` (``DEFAULT_FPS`` when ``None``)."""
    return 1.0 / (fps or DEFAULT_FPS)


@dataclass(frozen=True)
class AudioTrack:
    """Mono float32 samples in [-1, 1]; ``start`` is the time of sample 0 on the media timeline."""

    samples: np.ndarray
    sample_rate: int
    start: float

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class VideoFrame:
    """An RGB frame (``uint8 [H, W, 3]``, C-contiguous, rotation applied) shown over ``[start, end)``."""

    image: np.ndarray
    start: float
    end: float


def _av():
    import av  # local: keeps `--help` fast and the error clear if the core install is broken

    # None installs PyAV's no-op log callback. Any level installs one that takes the GIL for every
    # error FFmpeg logs (PANIC included), and a frame-threaded decoder logging from its own thread
    # while the codec is freed under the GIL deadlocks (a damaged H.264 stream hung forever).
    av.logging.set_level(None)
    return av


def check_readable(path: str | Path) -> Path:
    """Refuse what is plainly not a media file before FFmpeg sees it."""
    path = Path(path)
    if not path.exists():
        raise MediaError(path, "no such file")
    if path.is_dir():
        raise MediaError(path, "is a directory, not a media file")
    try:
        size = path.stat().st_size
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise MediaError(path, f"cannot be read ({exc.strerror or exc})") from exc
    if size == 0:
        raise MediaError(path, "is empty (0 bytes)")
    return path


def open_container(path: Path):
    """An open PyAV input container (``MediaError`` naming the file if FFmpeg refuses it)."""
    av = _av()
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        raise MediaError(path, f"not a readable media file ({_ffmpeg_reason(exc)})") from exc


def _ffmpeg_reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc).splitlines()[0]


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _frame_rotation(frame) -> int:
    """Counter-clockwise display rotation of a decoded frame (its display matrix), 0 when none."""
    return int(round(getattr(frame, "rotation", 0) or 0)) % 360


def _first_frame_rotation(container, stream) -> int:
    """Rotation read off the first decodable frame: PyAV exposes the display matrix per frame."""
    av = _av()
    try:
        for frame in container.decode(stream):
            return _frame_rotation(frame)
    except av.error.FFmpegError:
        pass
    return 0


def _content_end(container) -> float | None:
    """The latest packet end time of the audio and video streams (seconds, container timeline).

    Read from the packets after a seek to the end, so a header that declares
    another duration (or a start offset it does not count) is not believed.
    ``None`` when no stream gives an answer.
    """
    av = _av()
    ends: list[float] = []
    for stream in (*container.streams.video, *container.streams.audio):
        try:
            container.seek(2**62, backward=True, any_frame=False, stream=stream)
            for count, packet in enumerate(container.demux(stream)):
                if packet.pts is not None and packet.time_base is not None:
                    ends.append(float((packet.pts + (packet.duration or 0)) * packet.time_base))
                if count >= _TAIL_PACKETS:
                    break
        except av.error.FFmpegError:
            continue
    return max(ends) if ends else None


def _duration(container, offset: float, streams: tuple[StreamInfo, ...]) -> float:
    """Seconds of content: where the packets end, else what the container or the streams declare."""
    end = _content_end(container)
    if end is not None and end - offset > 0:
        return end - offset
    duration = (container.duration or 0) / 1_000_000
    return duration if duration > 0 else max(((s.duration or 0.0) for s in streams), default=0.0)


def _is_default(stream) -> bool:
    return bool(int(stream.disposition) & 1)  # AV_DISPOSITION_DEFAULT


def _has_signal(container, stream) -> bool:
    """Whether the first ``SIGNAL_CHECK_SECONDS`` of ``stream`` hold a sample of magnitude ``SIGNAL_PEAK``."""
    av = _av()
    to_float = av.AudioResampler(format="flt")
    seen = 0.0
    try:
        container.seek(0)
        for frame in container.decode(stream):
            for out in to_float.resample(frame):
                if np.abs(out.to_ndarray()).max(initial=0.0) >= SIGNAL_PEAK:
                    return True
            seen += frame.samples / (frame.sample_rate or AUDIO_RATE)
            if seen > SIGNAL_CHECK_SECONDS:
                break
    except av.error.FFmpegError:
        pass
    return False


def choose_audio_stream(container) -> tuple[int | None, str]:
    """The audio stream to decode and a line saying why (empty when the file has one or none).

    The default-disposition stream (else the first) unless it is silent and
    another one carries signal. Only a file with several audio streams is
    decoded for this, at most ``SIGNAL_CHECK_SECONDS`` of each.
    """
    order = sorted(container.streams.audio, key=lambda s: (not _is_default(s), s.index))
    if len(order) < 2:
        return (order[0].index if order else None), ""
    for position, stream in enumerate(order):
        if _has_signal(container, stream):
            silent = ", ".join(f"#{s.index}" for s in order[:position])
            why = f"{silent} silent" if silent else "default" if _is_default(stream) else "first"
            return stream.index, f"audio stream #{stream.index} of {len(order)} ({why})"
    return order[0].index, f"audio stream #{order[0].index} of {len(order)} (all silent)"


def probe(path: str | Path) -> MediaInfo:
    """Duration, start offset, streams, codecs, size, rotation and frame rates of a file.

    The duration is where the content ends (see :func:`_content_end`);
    over ``MAX_MEDIA_SECONDS`` the file is refused.
    """
    path = check_readable(path)
    with open_container(path) as container:
        return probe_container(container, path)


def probe_container(container, path: Path) -> MediaInfo:
    """:func:`probe` on an open container (it reads the file's head and tail; seek before decoding)."""
    offset = (container.start_time or 0) / 1_000_000
    streams = tuple(
        StreamInfo(
            s.index, s.type, s.codec_context.name if s.codec_context else "unknown",
            None if s.start_time is None else _seconds(s.start_time, s.time_base) - offset,
            _seconds(s.duration, s.time_base),
        )
        for s in container.streams
    )
    video = container.streams.video[0] if container.streams.video else None
    has_audio = bool(container.streams.audio)
    if video is None and not has_audio:
        raise MediaError(path, "has neither an audio nor a video stream")
    width = height = None
    rotation = 0
    avg_fps = real_fps = None
    if video is not None:
        rotation = _first_frame_rotation(container, video)
        width, height = video.codec_context.width, video.codec_context.height
        if rotation in (90, 270):
            width, height = height, width
        avg_fps = float(video.average_rate) if video.average_rate else None
        real_fps = float(video.base_rate) if video.base_rate else None
    if video is not None and is_still_image(path):
        return MediaInfo(str(path), still_seconds(DEFAULT_FPS), 0.0, streams, width, height, rotation,
                         None, None, False, True, still=True)
    duration = _duration(container, offset, streams)
    if duration > MAX_MEDIA_SECONDS:
        raise MediaError(path, f"lasts {duration:.0f} s, over the {MAX_MEDIA_SECONDS:.0f} s limit for one clip "
                               "(cut it into parts)")
    audio_stream, audio_choice = choose_audio_stream(container)
    nominal_fps = float(video.guessed_rate) if video is not None and video.guessed_rate else None
    audio = container.streams[audio_stream].codec_context if audio_stream is not None else None
    return MediaInfo(str(path), duration, offset, streams, width, height, rotation,
                     avg_fps, real_fps, has_audio, video is not None, audio_stream, audio_choice,
                     nominal_fps, audio.sample_rate if audio else None, audio.channels if audio else None)


def decode_audio(path: str | Path, sample_rate: int = AUDIO_RATE) -> AudioTrack | None:
    """The chosen audio stream (:func:`choose_audio_stream`) as mono float32 at ``sample_rate``;
    ``None`` if there is none.

    ``start`` is the presentation time of the first decoded sample, so an audio
    stream that begins after the video keeps its true place on the timeline.
    A file that breaks off mid-stream keeps what decoded before the break;
    decoding stops after ``MAX_MEDIA_SECONDS``.
    """
    path = check_readable(path)
    with open_container(path) as container:
        return decode_audio_container(container, path, sample_rate)


def decode_audio_container(container, path: Path, sample_rate: int = AUDIO_RATE, *,
                           stream_index: int | None = None) -> AudioTrack | None:
    """:func:`decode_audio` on an open container, from wherever it was left (seeks to the start).

    ``stream_index`` is the audio stream a probe already chose; ``None`` chooses again.
    """
    av = _av()
    if not container.streams.audio:
        return None
    offset = (container.start_time or 0) / 1_000_000
    index = stream_index if stream_index is not None else choose_audio_stream(container)[0]
    stream = next(s for s in container.streams.audio if s.index == index)
    container.seek(0)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    expected = (container.duration or 0) / 1_000_000  # the header's guess, seconds; 0 when unknown
    buffer = _Samples(int((min(expected, MAX_MEDIA_SECONDS) + 1.0) * sample_rate))
    start: float | None = None
    budget = int(MAX_MEDIA_SECONDS * sample_rate)
    try:
        for frame in container.decode(stream):
            if start is None and frame.time is not None:
                start = frame.time - offset
            for out in resampler.resample(frame):
                buffer.append(out.to_ndarray().reshape(-1))
            if buffer.count >= budget:
                break
    except av.error.FFmpegError as exc:
        if not buffer.count:
            raise MediaError(path, f"audio stream cannot be decoded ({_ffmpeg_reason(exc)})") from exc
    for out in resampler.resample(None):
        buffer.append(out.to_ndarray().reshape(-1))
    samples = buffer.samples()
    return AudioTrack(samples, sample_rate, max(0.0, start or 0.0))


class _Samples:
    """A float32 buffer filled block by block: sized from the header's duration, grown by half when
    that was short, so a long track is never held twice (a list of blocks, then their concatenation)."""

    def __init__(self, capacity: int) -> None:
        self._data = np.empty(max(capacity, 1), np.float32)
        self.count = 0

    def append(self, block: np.ndarray) -> None:
        if self.count + len(block) > len(self._data):
            grown = np.empty(max(self.count + len(block), len(self._data) * 3 // 2), np.float32)
            grown[:self.count] = self._data[:self.count]
            self._data = grown
        self._data[self.count:self.count + len(block)] = block
        self.count += len(block)

    def samples(self) -> np.ndarray:
        """The samples so far; a copy only when over a tenth of the buffer would be left unused."""
        used = self._data[:self.count]
        return used.copy() if self.count < 0.9 * len(self._data) - 16_000 else used


def iter_frames(path: str | Path, fps: float | None = DEFAULT_FPS) -> Iterator[VideoFrame]:
    """Decoded video frames at up to ``fps`` per second (``None`` keeps every frame).

    Sampling keeps the first frame whose time reaches each tick of a
    ``1/fps`` grid, so variable-frame-rate input keeps its true times and no
    frame is invented. A frame's interval runs from its presentation time to
    the next decoded frame's (the span it is on screen). One frame of look-ahead
    is held, so memory does not grow with the clip. Rotation metadata is applied.
    Frames after ``MAX_MEDIA_SECONDS`` are not decoded. A still image gives its
    one frame over ``[0, still_seconds(fps))``.
    """
    av = _av()
    path = check_readable(path)
    if fps is not None and not fps > 0:
        raise ValueError(f"fps must be positive or None, got {fps}")
    if is_still_image(path):
        yield from _still_frame(path, fps)
        return
    with open_container(path) as container:
        if not container.streams.video:
            return
        offset = (container.start_time or 0) / 1_000_000
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fallback = 1.0 / float(stream.average_rate) if stream.average_rate else 0.04
        pending: tuple[np.ndarray, float] | None = None
        next_tick = -math.inf
        last_time = -math.inf
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                time = frame.time - offset
                if time > MAX_MEDIA_SECONDS:
                    break
                if time <= last_time:  # duplicate or out-of-order timestamp: not a new frame
                    continue
                last_time = time
                if pending is not None:
                    yield VideoFrame(pending[0], pending[1], time)
                    pending = None
                if time + 1e-9 >= next_tick:
                    image = frame.to_ndarray(format="rgb24")  # may be a strided view when rows are padded
                    turns = _frame_rotation(frame) // 90
                    pending = (np.ascontiguousarray(np.rot90(image, turns) if turns else image), time)
                    if fps is not None:
                        next_tick = (math.floor(time * fps + 1e-6) + 1) / fps
        except av.error.FFmpegError as exc:
            if last_time == -math.inf:
                raise MediaError(path, f"video stream cannot be decoded ({_ffmpeg_reason(exc)})") from exc
        if pending is not None:
            yield VideoFrame(pending[0], pending[1], pending[1] + fallback)


def _still_frame(path: Path, fps: float | None) -> Iterator[VideoFrame]:
    """The first frame of an image file, shown over ``[0, still_seconds(fps))`` (EXIF rotation applied)."""
    av = _av()
    with open_container(path) as container:
        if not container.streams.video:
            return
        try:
            for frame in container.decode(container.streams.video[0]):
                image = frame.to_ndarray(format="rgb24")
                turns = _frame_rotation(frame) // 90
                yield VideoFrame(np.ascontiguousarray(np.rot90(image, turns) if turns else image),
                                 0.0, still_seconds(fps))
                return
        except av.error.FFmpegError as exc:
            raise MediaError(path, f"image cannot be decoded ({_ffmpeg_reason(exc)})") from exc


# --- command-line ffmpeg (bundled binary) -----------------------------------------

def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary that ships in imageio-ffmpeg."""
    from imageio_ffmpeg import get_ffmpeg_exe

    return get_ffmpeg_exe()
