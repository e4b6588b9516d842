"""Where a transcript comes from: a sidecar next to the media, else speech recognition.

Source preference (``TranscriptConfig.source="auto"``): a sidecar file with the
media's stem (``.json``, ``.srt``, ``.vtt``, ``.txt``, in that order) or the one
named by ``sidecar``; otherwise :mod:`extractors.text.asr`. Sidecar text without
per-word times is aligned by :mod:`extractors.text.forced_alignment`. The audio
comes from the clip's :class:`core.recording.Recording`, decoded once.
"""

from __future__ import annotations

from pathlib import Path

from sgdtam_pipe.core.hooks import Hook
from sgdtam_pipe.core.recording import Recording, recording_of
from sgdtam_pipe.extractors.text import asr, sidecars
from sgdtam_pipe.extractors.text.forced_alignment import timed_words_for_text
from sgdtam_pipe.extractors.text.transcript import Transcript, TranscriptConfig, make_transcript


def transcribe(source: Recording | str | Path, *, config: TranscriptConfig = TranscriptConfig(),
               hook: Hook | None = None) -> Transcript:
    """The transcript of a recording, from a sidecar or from speech recognition (see the module doc);
    ``hook`` gets the recogniser's progress (:func:`extractors.text.asr.recognise_samples`)."""
    with recording_of(source) as recording:
        return _transcribe(recording, config, hook)


def _transcribe(recording: Recording, config: TranscriptConfig, hook: Hook | None) -> Transcript:
    path = Path(recording.source)
    sidecar = None
    if config.source != "asr" and (recording.path is not None or config.sidecar is not None):
        sidecar = sidecars.find_sidecar(path, config.sidecar)
    if sidecar is None:
        if config.source == "sidecar":
            raise FileNotFoundError(f"{path}: no transcript sidecar (.json, .srt, .vtt or .txt) found")
        recognised = asr.recognise(recording.audio(), config=config, hook=hook)
        return make_transcript(recognised.words, recognised.source, pause=config.pause, note=recognised.note)
    cues = sidecars.read_sidecar(sidecar)
    sidecars.check_within(sidecar, cues, recording.info.duration)
    source = f"sidecar:{sidecar.suffix.lstrip('.').lower()}"
    words, how = timed_words_for_text(recording.audio(), recording.info.duration, cues, config=config, hook=hook)
    return make_transcript(words, source + how, pause=config.pause)
