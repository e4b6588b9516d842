"""One clip opened once: its probe, its audio decoded at most once, its frames on demand.

Every extractor takes a :class:`Recording` rather than a path, so a clip is
probed once and its audio decoded once however many extractors read it
(speech recognition, forced alignment and acoustic frames all need the
samples). The container budget per clip is two: :func:`open_recording`
probes through one container and keeps it open, and the first
:meth:`Recording.audio` call decodes from that same container; each
:meth:`Recording.frames` call opens its own, so the frame loop can run in
one thread while another stage reads the audio.

:meth:`Recording.from_samples` builds one from samples already in memory
(no file; a caller that holds a waveform, and tests that skip decoding).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from sgdtam_pipe.core.media import (
    AUDIO_RATE,
    AudioTrack,
    MediaInfo,
    VideoFrame,
    check_readable,
    decode_audio_container,
    iter_frames,
    open_container,
    probe_container,
)

_NOT_DECODED = object()


class Recording:
    """A probed clip; use as a context manager (or call :meth:`close`) to release the container."""

    def __init__(self, info: MediaInfo, path: Path | None, container=None,
                 audio: AudioTrack | None | object = _NOT_DECODED) -> None:
        self.info = info
        self.path = path  # None for samples held in memory
        self._container = container
        self._audio = audio
        self._lock = threading.Lock()

    @classmethod
    def from_samples(cls, samples: np.ndarray, sample_rate: int = AUDIO_RATE, *, start: float = 0.0,
                     name: str = "<samples>") -> "Recording":
        """Audio only, from mono float32 ``samples`` at ``sample_rate`` whose sample 0 is at ``start`` s."""
        if sample_rate != AUDIO_RATE:
            raise ValueError(f"samples must be at {AUDIO_RATE} Hz (resample first), got {sample_rate}")
        track = AudioTrack(np.asarray(samples, np.float32).reshape(-1), sample_rate, start)
        info = MediaInfo(name, start + track.duration, 0.0, (), None, None, 0, None, None, True, False,
                         audio_rate=sample_rate, audio_channels=1)
        return cls(info, None, audio=track)

    @property
    def source(self) -> str:
        """The file name used in messages (the path, or the name given to :meth:`from_samples`)."""
        return self.info.path

    def audio(self) -> AudioTrack | None:
        """The chosen audio stream as mono float32 at ``AUDIO_RATE`` (``None`` if there is none);
        decoded on the first call, from the probe's container, and kept."""
        with self._lock:
            if self._audio is _NOT_DECODED:
                if self._container is None or not self.info.has_audio or self.info.still:
                    self._audio = None
                else:
                    self._audio = decode_audio_container(self._container, Path(self.info.path), AUDIO_RATE,
                                                         stream_index=self.info.audio_stream)
                self._release()
            return self._audio  # type: ignore[return-value]

    def frames(self, fps: float | None) -> Iterator[VideoFrame]:
        """Video frames at up to ``fps`` with their real times (see :func:`core.media.iter_frames`)."""
        if self.path is None or not self.info.has_video:
            return iter(())
        return iter_frames(self.path, fps)

    def _release(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def close(self) -> None:
        with self._lock:
            self._release()

    def __enter__(self) -> "Recording":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def open_recording(path: str | Path) -> Recording:
    """Probe ``path`` (``MediaError`` if it is not usable media), keeping its container for the audio."""
    path = check_readable(path)
    container = open_container(path)
    try:
        info = probe_container(container, path)
    except BaseException:
        container.close()
        raise
    return Recording(info, path, container)


@contextmanager
def recording_of(source: "Recording | str | Path") -> Iterator[Recording]:
    """``source`` itself (left open: its owner closes it), or a recording opened from a path and
    closed on exit; lets one extractor be called on a path."""
    if isinstance(source, Recording):
        yield source
        return
    with open_recording(source) as recording:
        yield recording
