"""Where a transcript comes from: a sidecar next to the media, else speech recognition.

Source preference (``TranscriptConfig.source="auto"``): a sidecar file with the
media's stem (``.json``, ``.srt``, ``.vtt``, ``.txt``, in that order) or the one
named by ``sidecar``; otherwise :mod:`extractors.asr`. Sidecar text without
per-word times is aligned by :mod:`extractors.alignment`.
"""

from __future__ import annotations

from pathlib import Path

from sgdtam_pipe.extractors import asr, sidecars
from sgdtam_pipe.extractors.alignment import timed_words_for_text
from sgdtam_pipe.extractors.base import Hook
from sgdtam_pipe.extractors.media import probe
from sgdtam_pipe.extractors.transcript import Transcript, TranscriptConfig, make_transcript


def transcribe(path: str | Path, *, config: TranscriptConfig = TranscriptConfig(),
               hook: Hook | None = None) -> Transcript:
    """The transcript of ``path``, from a sidecar or from speech recognition (see the module doc);
    ``hook`` gets the recogniser's progress (:func:`extractors.asr.recognise_samples`)."""
    path = Path(path)
    sidecar = None if config.source == "asr" else sidecars.find_sidecar(path, config.sidecar)
    if sidecar is None:
        if config.source == "sidecar":
            raise FileNotFoundError(f"{path}: no transcript sidecar (.json, .srt, .vtt or .txt) found")
        recognised = asr.recognise(path, config=config, hook=hook)
        return make_transcript(recognised.words, recognised.source, pause=config.pause, note=recognised.note)
    cues = sidecars.read_sidecar(sidecar)
    sidecars.check_within(sidecar, cues, probe(path).duration)
    source = f"sidecar:{sidecar.suffix.lstrip('.').lower()}"
    words, how = timed_words_for_text(path, cues, config=config, hook=hook)
    return make_transcript(words, source + how, pause=config.pause)
