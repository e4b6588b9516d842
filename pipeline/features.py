"""Media → timed features for one clip, through the content-addressed cache.

Each modality is looked up by (content SHA-256, extractor identity) and only
computed on a miss, so changing one modality's config recomputes only that
modality. The transcript is cached beside the text features, so a cached
re-analysis needs neither speech recognition nor embedding. Failures are
re-raised as :class:`StageError` naming the stage. A still image has only
video (one frame over ``[0, 1/fps)``); its text and audio are missing with
the reason "still image", and no speech or acoustic extractor runs.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from sgdtam_pipe.core.errors import UserError
from sgdtam_pipe.core.hooks import Hook
from sgdtam_pipe.core.media import MediaError, MediaInfo, still_seconds
from sgdtam_pipe.core.recording import Recording, open_recording
from sgdtam_pipe.core.timeline import MODALITIES, ClipFeatures, ClipInfo, MissingModality, ModalityResult, file_sha256
from sgdtam_pipe.extractors.base import DEFAULT_BACKEND, Extractor, MissingExtra, create_extractor
from sgdtam_pipe.extractors.face.landmarker import FaceConfig
from sgdtam_pipe.extractors.text.transcript import TranscriptConfig
from sgdtam_pipe.pipeline.cache import FeatureCache
from sgdtam_pipe.pipeline.errors import StageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractionSettings:
    """The extractor choices that change features (and so the cache key).

    Every default is read from the extractor that owns it (its config
    dataclass, or the registry's default backend); the CLI reads them here.
    """

    audio_backend: str = DEFAULT_BACKEND["audio"]
    fps: float = FaceConfig.fps
    transcript: Path | None = None
    grammar: Path | None = None
    whisper_model: Path | None = None
    whisper_window: float = TranscriptConfig.whisper_window
    face_output: str = FaceConfig.output
    device: str = TranscriptConfig.device  # runtime only (Whisper, text encoder): never in an identity


@dataclass
class ExtractedClip:
    features: ClipFeatures
    info: MediaInfo
    transcript: Any | None  # extractors.text.transcript.Transcript, None when there is no text stream
    timings: dict[str, float] = field(default_factory=dict)
    cached: dict[str, bool | None] = field(default_factory=dict)
    """Per modality: from the cache, computed (False), or neither (None: a photo's text and audio)."""


def build_extractors(settings: ExtractionSettings) -> dict[str, Extractor]:
    """One extractor per modality, configured from ``settings``."""
    return {
        "text": create_extractor("text", sidecar=settings.transcript, grammar=settings.grammar,
                                 whisper_model=settings.whisper_model, whisper_window=settings.whisper_window,
                                 device=settings.device),
        "audio": create_extractor("audio", settings.audio_backend),
        "video": create_extractor("video", fps=settings.fps, output=settings.face_output),
    }


def _run_stage(stage: str, work, *args, **kwargs):
    """Run one extractor call, turning its failures into a ``StageError`` for ``stage``."""
    try:
        return work(*args, **kwargs)
    except (MediaError, MissingExtra, StageError):
        raise
    except UserError as exc:  # its message already names the file and the reason
        raise StageError(stage, str(exc)) from exc
    except Exception as exc:  # an extractor bug or a file it cannot handle: record, do not crash a batch
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StageError(stage, f"{type(exc).__name__}: {detail}") from exc


def _text(extractor: Extractor, recording: Recording, sha: str, cache: FeatureCache | None,
          hook: Hook | None = None):
    """``(features, transcript, from_cache)``; the transcript is cached beside the features."""
    from sgdtam_pipe.extractors.text.transcript import Transcript

    identity = extractor.identity_for(Path(recording.source))
    stored = cache.get_json(sha, identity, "transcript") if cache else None
    features = cache.get(sha, identity) if cache else None
    if stored is not None and features is not None:
        return features, Transcript.from_json(stored), True
    if recording.info.duration < WARM_UP_BEFORE_S:
        threading.Thread(target=_warm_up, args=(extractor,), name="warm-up-text", daemon=True).start()
    transcript = _run_stage("text", extractor.transcribe, recording, hook=hook)
    features = _run_stage("text", extractor.embed, transcript, hook=hook)
    if cache:
        cache.put_json(sha, identity, "transcript", transcript.to_json())
        cache.put(sha, identity, features)
    return features, transcript, False


WARM_UP_BEFORE_S = 900.0
"""Recordings shorter than this load the token encoder while Whisper runs (a cold analyze of the 60 s GRID loop, back to
back: 16.8 s without, 14.5 s with); longer ones load it after recognition, because together with Whisper's peak
it raised the 60-minute audio file's peak memory from 1.41 GB to 1.73 GB, and a fixed few seconds matter little
there."""


def _warm_up(extractor: Extractor) -> None:
    """``extractor.warm_up()``, its failure only logged: the call that needs the model raises it again."""
    try:
        extractor.warm_up()
    except Exception as exc:  # noqa: BLE001 - a background convenience; the real load reports it
        log.debug("warm-up of %s failed: %s", extractor.name, exc)


def _modality(modality: str, extractor: Extractor, recording: Recording, sha: str, cache: FeatureCache | None,
              hook: Hook | None) -> tuple[ModalityResult, bool]:
    """``(result, from_cache)`` for the audio or video extractor."""
    identity = extractor.identity_for(Path(recording.source))
    result = cache.get(sha, identity) if cache else None
    if result is not None:
        return result, True
    result = _run_stage(modality, extractor.extract, recording, hook=hook)
    if cache:
        cache.put(sha, identity, result)
    return result, False


def extract_clip(path: str | Path, settings: ExtractionSettings, *, cache: FeatureCache | None,
                 extractors: dict[str, Extractor] | None = None, hook: Hook | None = None,
                 parallel: bool = True) -> ExtractedClip:
    """Probe ``path`` and get its three modalities, from the cache where possible.

    With ``parallel`` the three stages run at once, one thread each, after the
    probe: the clip's audio is decoded once, by whichever stage asks first, and
    the face stage reads frames from its own container. Results are the same as
    a sequential run (each stage is deterministic and reads only its inputs).
    Raises ``MediaError`` for a file that is not usable media and
    ``StageError`` for a stage that failed on it (the first, in text, audio,
    video order, when several fail).
    """
    path = Path(path)
    started = time.perf_counter()
    with open_recording(path) as recording:
        info = recording.info
        if info.still:
            info = replace(info, duration=still_seconds(settings.fps))
        sha = file_sha256(path)
        clip = ClipInfo(sha, info.duration, str(path))
        timings = {"probe": time.perf_counter() - started}
        extractors = extractors or build_extractors(settings)
        stages = {m: functools.partial(_stage, m, extractors[m], recording, sha, cache, hook) for m in MODALITIES}
        outcomes = run_concurrently(stages) if parallel else {m: _outcome(work) for m, work in stages.items()}
    results: dict[str, ModalityResult] = {}
    cached: dict[str, bool | None] = {}
    transcript = None
    for modality in MODALITIES:
        value, error = outcomes[modality]
        if error is not None:
            raise error
        results[modality], stage_transcript, cached[modality], timings[modality] = value
        transcript = stage_transcript if modality == "text" else transcript
        how = {True: "from the cache", False: "computed", None: "not extracted (still image)"}[cached[modality]]
        log.debug("%s: %s %s in %.2f s", path.name, modality, how, timings[modality])
    return ExtractedClip(ClipFeatures(clip, **results), info, transcript, timings, cached)


def _stage(modality: str, extractor: Extractor, recording: Recording, sha: str, cache: FeatureCache | None,
           hook: Hook | None) -> tuple[ModalityResult, Any, bool | None, float]:
    """``(result, transcript or None, from_cache, seconds)`` for one modality of one clip (``from_cache``
    None: nothing was looked up or computed)."""
    if hook:
        hook(modality, {})
    started = time.perf_counter()
    transcript = None
    if recording.info.still and modality != "video":
        result, cached = MissingModality("still image", extractor.identity()), None
    elif modality == "text":
        result, transcript, cached = _text(extractor, recording, sha, cache, hook)
    else:
        result, cached = _modality(modality, extractor, recording, sha, cache, hook)
    return result, transcript, cached, time.perf_counter() - started


def _outcome(work: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    try:
        return work(), None
    except Exception as exc:  # noqa: BLE001 - handed back to the caller, which re-raises it
        return None, exc


def run_concurrently(works: Mapping[str, Callable[[], Any]]) -> dict[str, tuple[Any, BaseException | None]]:
    """Each ``works`` value called in its own thread; ``{name: (value, exception or None)}``.

    Daemon threads, not a pool: on Ctrl-C the main thread stops waiting at
    once and the process exits without joining a stage that is still decoding.
    """
    outcomes: dict[str, tuple[Any, BaseException | None]] = {}

    def run(name: str, work: Callable[[], Any]) -> None:
        outcomes[name] = _outcome(work)

    threads = [threading.Thread(target=run, args=item, name=f"stage-{item[0]}", daemon=True) for item in works.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)  # a timed join keeps the main thread responsive to signals
    return outcomes
