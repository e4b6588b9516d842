"""Media for a report: the original file when a browser plays it and it fits, else a small proxy.

A browser plays MP4/WebM with H.264, VP8, VP9 or AV1 video and AAC, MP3, Opus
or Vorbis audio, the common audio files (MP3, WAV, FLAC, Ogg, M4A) and the
common image formats. Anything else, or an original over ``max_bytes``, is
re-encoded with the bundled ffmpeg (through ffmpeg-python): video to H.264
(yuv420p, at most 360 lines) with mono AAC in MP4, audio to mono AAC in MP4,
an image to JPEG. The bitrate is what ``max_bytes`` allows over the clip's
duration, capped per resolution; an encode that still comes out too large is
redone at a lower resolution and bitrate, and a clip that cannot fit even at
the lowest rung is refused with :class:`~sgdtam_pipe.core.errors.UserError`.
The proxy keeps the original's timeline (ffmpeg keeps stream start offsets).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from sgdtam_pipe.core.errors import UserError
from sgdtam_pipe.core.media import MediaError, MediaInfo, ffmpeg_exe

IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
               ".gif": "image/gif", ".bmp": "image/bmp"}
IMAGE_SUFFIXES = frozenset(IMAGE_TYPES) | {".tif", ".tiff", ".heic", ".avif"}
AUDIO_TYPES = {(".mp3", "mp3"): "audio/mpeg", (".wav", "pcm_s16le"): "audio/wav", (".flac", "flac"): "audio/flac",
               (".ogg", "vorbis"): "audio/ogg", (".ogg", "opus"): "audio/ogg", (".oga", "vorbis"): "audio/ogg",
               (".opus", "opus"): "audio/ogg", (".m4a", "aac"): "audio/mp4"}
VIDEO_CONTAINERS = {".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm"}
VIDEO_CODECS = frozenset({"h264", "vp8", "vp9", "av1"})
AUDIO_CODECS = frozenset({"aac", "mp3", "opus", "vorbis"})
RUNGS = ((360, 700), (240, 350), (144, 120))
"""Proxy video rungs: (most lines, most video kbit/s); each encode that does not fit tries the next."""
AUDIO_KBPS = (64, 32, 16)
"""AAC bitrate with each rung (and for audio-only proxies, tried in turn)."""
MARGIN = 0.9  # aim under the budget: x264's rate control overshoots a little


@dataclass(frozen=True)
class EmbeddedMedia:
    """Bytes a browser can play, their MIME type, the element to show them in and how they were made."""

    kind: str  # "video", "audio" or "image"
    mime: str
    data: bytes
    how: str  # "original" or a description of the proxy


def media_kind(path: Path, info: MediaInfo) -> str:
    """``"image"`` for a still image (by its suffix), ``"video"`` with a video stream, else ``"audio"``."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return "image"
    return "video" if info.has_video else "audio"


def browser_media(path: str | Path, info: MediaInfo, *, max_bytes: int) -> EmbeddedMedia:
    """``path`` as something a browser plays, in at most ``max_bytes`` (see the module doc)."""
    path = Path(path)
    kind = media_kind(path, info)
    mime = _native_type(path, info, kind)
    if mime is not None and path.stat().st_size <= max_bytes:
        return EmbeddedMedia(kind, mime, path.read_bytes(), "original")
    make = {"image": _image_proxy, "audio": _audio_proxy, "video": _video_proxy}[kind]
    return make(path, info, max_bytes)


def _native_type(path: Path, info: MediaInfo, kind: str) -> str | None:
    """The MIME type when a browser plays ``path`` as it is, else ``None``."""
    suffix = path.suffix.lower()
    codecs = {s.kind: s.codec for s in info.streams if s.kind in ("audio", "video")}
    if kind == "image":
        return IMAGE_TYPES.get(suffix)
    if kind == "audio":
        return AUDIO_TYPES.get((suffix, codecs.get("audio", "")))
    if codecs.get("video") in VIDEO_CODECS and codecs.get("audio", "aac") in AUDIO_CODECS:
        return VIDEO_CONTAINERS.get(suffix)
    return None


def _video_proxy(path: Path, info: MediaInfo, max_bytes: int) -> EmbeddedMedia:
    import ffmpeg

    duration = max(info.duration, 0.5)
    for (lines, ceiling), audio_kbps in zip(RUNGS, AUDIO_KBPS, strict=True):
        audio = audio_kbps if info.has_audio else 0
        video = min(ceiling, int(max_bytes * 8 * MARGIN / duration / 1000) - audio)
        if video < 24:
            continue
        source = ffmpeg.input(str(path))
        streams = [source["v:0"]] + ([source["a:0"]] if info.has_audio else [])
        options = {"vcodec": "libx264", "preset": "veryfast", "pix_fmt": "yuv420p", "profile:v": "main",
                   "vf": f"scale=-2:'trunc(min({lines},ih)/2)*2'", "b:v": f"{video}k",
                   "maxrate": f"{int(video * 1.2)}k", "bufsize": f"{video * 2}k", "movflags": "+faststart",
                   "f": "mp4"}
        if info.has_audio:
            options.update({"acodec": "aac", "b:a": f"{audio}k", "ac": 1})
        data = _encode(path, streams, options)
        if len(data) <= max_bytes:
            return EmbeddedMedia("video", "video/mp4", data, f"H.264 proxy, at most {lines} lines, {video} kbit/s")
    raise _too_large(path, max_bytes)


def _audio_proxy(path: Path, info: MediaInfo, max_bytes: int) -> EmbeddedMedia:
    import ffmpeg

    duration = max(info.duration, 0.5)
    for kbps in AUDIO_KBPS:
        if kbps * 1000 * duration / 8 > max_bytes * MARGIN:
            continue
        options = {"acodec": "aac", "b:a": f"{kbps}k", "ac": 1, "f": "mp4"}
        data = _encode(path, [ffmpeg.input(str(path))["a:0"]], options)
        if len(data) <= max_bytes:
            return EmbeddedMedia("audio", "audio/mp4", data, f"AAC proxy, {kbps} kbit/s")
    raise _too_large(path, max_bytes)


def _image_proxy(path: Path, info: MediaInfo, max_bytes: int) -> EmbeddedMedia:
    import ffmpeg

    for lines, _ in RUNGS:
        width = lines * 16 // 9 * 2  # stills keep more detail than video frames
        options = {"vframes": 1, "vf": f"scale='min({width},iw)':-2", "q:v": 4, "vcodec": "mjpeg", "f": "image2"}
        data = _encode(path, [ffmpeg.input(str(path))], options)
        if len(data) <= max_bytes:
            return EmbeddedMedia("image", "image/jpeg", data, f"JPEG proxy, at most {width} px wide")
    raise _too_large(path, max_bytes)


def _encode(source: Path, streams: list, options: dict[str, object]) -> bytes:
    """Encode ``streams`` (ffmpeg-python inputs) with ``options`` into a temporary file; its bytes."""
    import ffmpeg

    with tempfile.TemporaryDirectory(prefix="sgdtam-proxy-") as folder:
        target = str(Path(folder) / "proxy")
        graph = ffmpeg.output(*streams, target, **options).global_args("-nostdin", "-loglevel", "error")
        try:
            graph.overwrite_output().run(cmd=ffmpeg_exe(), capture_stdout=True, capture_stderr=True)
        except ffmpeg.Error as exc:
            detail = (exc.stderr or b"").decode("utf-8", "replace").strip().splitlines()
            why = detail[-1] if detail else "no message"
            raise MediaError(source, f"ffmpeg could not make a browser proxy ({why})") from exc
        return Path(target).read_bytes()


def _too_large(path: Path, max_bytes: int) -> UserError:
    return UserError(f"{path}: cannot fit a playable copy in the report's budget of {max_bytes / 1e6:.1f} MB "
                     "(the clip is too long for one report)")
