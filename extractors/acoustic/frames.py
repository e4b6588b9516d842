"""Acoustic frames from a clip's audio: what the two backends share.

Two backends, chosen by name in the registry:

- ``opensmile`` (:mod:`extractors.acoustic.opensmile_frames`, the default):
  eGeMAPSv02 or ComParE_2016 low-level descriptors at openSMILE's 10 ms hop,
  each frame with openSMILE's own start and length.
- ``librosa`` (:mod:`extractors.acoustic.librosa_frames`, licence-clean):
  COVAREP-style frames at a 10 ms hop with times from sample counts.

Both read the recording's audio, decoded once (:meth:`core.recording.Recording.audio`),
or take decoded samples through ``extract_waveform``; both shift frame times by the track's start onto the
media timeline, and optionally mean-pool frames into ``pool_window``-second
windows that keep their true intervals (:func:`core.timeline.pool_windows`).

The audio modality is missing when the file has no audio stream, and when the
whole track is silent: its level, the RMS of its loudest
``LEVEL_BLOCK_SECONDS`` block in dBFS (a full-scale sine is -3 dBFS; digital
silence is -inf), is below ``silence_threshold_dbfs`` (default
``DEFAULT_SILENCE_DBFS`` = -60 dBFS: far below the loudest moment of a real
recording, far above 16-bit dither or digital zeros).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from sgdtam_pipe.core.hooks import Hook
from sgdtam_pipe.core.recording import Recording, recording_of
from sgdtam_pipe.core.timeline import MissingModality, ModalityResult, TimedFeatures, pool_windows
from sgdtam_pipe.extractors.base import Extractor, ExtractorConfig

DEFAULT_SILENCE_DBFS = -60.0
LEVEL_BLOCK_SECONDS = 0.05


@dataclass(frozen=True)
class AcousticConfig(ExtractorConfig):
    """Options both backends take.

    ``pool_window``: seconds per pooled row (the model sees 10 ms frames pooled into
    100 ms rows, true intervals kept), or ``None`` to keep native frames.
    ``chunk_seconds``: audio handled per step, which bounds working memory.
    """

    pool_window: float | None = 0.1
    silence_threshold_dbfs: float = DEFAULT_SILENCE_DBFS
    chunk_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.pool_window is not None and not self.pool_window > 0:
            raise ValueError(f"pool_window must be positive seconds or None, got {self.pool_window}")
        if not self.chunk_seconds > 0:
            raise ValueError(f"chunk_seconds must be positive, got {self.chunk_seconds}")
        if math.isnan(self.silence_threshold_dbfs):
            raise ValueError("silence_threshold_dbfs must be a number of dBFS, got nan")


class Frames(NamedTuple):
    """Native frames of one track: times in seconds from its first sample."""

    values: np.ndarray  # float32 [T, D]
    start: np.ndarray  # float64 [T]
    end: np.ndarray  # float64 [T]
    names: tuple[str, ...]


def level_dbfs(samples: np.ndarray, sample_rate: int, block_seconds: float = LEVEL_BLOCK_SECONDS) -> float:
    """RMS level of the loudest ``block_seconds`` block in dBFS; ``-inf`` for digital silence."""
    block = max(1, int(round(block_seconds * sample_rate)))
    loudest = 0.0
    for first in range(0, len(samples), block * 4096):  # bounded temporaries on long tracks
        part = np.asarray(samples[first:first + block * 4096], dtype=np.float64)
        padded = np.zeros(-(-len(part) // block) * block)
        padded[:len(part)] = part
        loudest = max(loudest, float(np.max(np.mean(padded.reshape(-1, block) ** 2, axis=1))))
    return 10.0 * math.log10(loudest) if loudest > 0 else -math.inf


def chunk_bounds(count: int, size: int) -> list[tuple[int, int]]:
    """``[first, stop)`` ranges of at most ``size`` that tile ``range(count)`` without gaps."""
    return [(first, min(count, first + size)) for first in range(0, count, max(1, size))]


class AcousticExtractor(Extractor):
    """Decoding, silence check, time shift and pooling around a backend's ``_frames``.

    An instance is not thread-safe (the opensmile backend keeps its engine
    between calls): use one per worker.
    """

    modality = "audio"
    extra = "acoustic"
    config: AcousticConfig

    def extract(self, source: Recording | str | Path, *, hook: Hook | None = None) -> ModalityResult:
        with recording_of(source) as recording:
            track = recording.audio()
        if track is None:
            return MissingModality("no audio stream", self.identity())
        return self.extract_waveform(track.samples, track.sample_rate, track.start, hook=hook)

    def extract_waveform(self, samples: np.ndarray, sample_rate: int, start: float = 0.0, *,
                         hook: Hook | None = None) -> ModalityResult:
        """Frames of mono ``samples`` in [-1, 1] whose first sample lies at ``start`` seconds."""
        if np.asarray(samples).dtype.kind != "f":
            raise ValueError(f"samples must be floats in [-1, 1], got {np.asarray(samples).dtype}")
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"samples must be mono (1-D), got shape {samples.shape}")
        if not (isinstance(sample_rate, (int, np.integer)) and sample_rate > 0):
            raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
        if not np.isfinite(samples).all():
            raise ValueError("samples contain NaN or infinity")
        identity = self.identity()
        level = level_dbfs(samples, sample_rate)
        threshold = self.config.silence_threshold_dbfs
        if level < threshold:
            return MissingModality(
                f"silent audio track: loudest {LEVEL_BLOCK_SECONDS * 1000:.0f} ms at {level:.1f} dBFS, "
                f"below the {threshold:g} dBFS silence threshold", identity)
        frames = self._frames(samples, int(sample_rate), hook)
        if len(frames.values) == 0:
            return MissingModality(
                f"audio track too short for one frame ({len(samples) / sample_rate:.3f} s)", identity)
        stream = TimedFeatures(frames.values, frames.start + start, frames.end + start,
                               np.ones(len(frames.values), dtype=bool), frames.names, identity)
        if self.config.pool_window is not None:
            stream = replace(pool_windows(stream, self.config.pool_window), identity=identity)
        return stream

    @abstractmethod
    def _frames(self, samples: np.ndarray, sample_rate: int, hook: Hook | None) -> Frames:
        """The backend's native frames of ``samples`` (float32 mono, finite)."""


def report_progress(hook: Hook | None, step: str, **info: Any) -> None:
    """Call ``hook(step, info)`` when there is a hook."""
    if hook is not None:
        hook(step, info)

