"""PocketSphinx: forced alignment of given words, and recognition held to a grammar.

Both use the US-English acoustic model and CMU pronouncing dictionary that ship
inside the ``pocketsphinx`` wheel; nothing is downloaded.

* :func:`align` finds where each of a list of known words was said: the
  aligner may only walk through those words, in order, with optional silence
  between them. A word the dictionary cannot pronounce is left untimed for the
  caller to interpolate.
* :func:`recognise` decodes speech against a JSGF grammar: for corpora whose
  sentences follow a closed grammar (GRID, command sets), where an open
  vocabulary recogniser mishears nonsense-but-valid sentences.

Times come from 10 ms frames; a word's end is the end of its last frame.
Decoders are built once per process (about 0.4 s each) and used under one lock,
since a decoder holds the state of the utterance being decoded; each
utterance starts from a fresh front end (noise estimate, cepstral mean), so
its words do not depend on what was decoded before it.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from sgdtam_pipe.core.errors import UserError
from sgdtam_pipe.core.media import AUDIO_RATE
from sgdtam_pipe.extractors.base import require

FRAME_SECONDS = 0.01
_LOCK = threading.Lock()
_VARIANT = re.compile(r"\(\d+\)$")  # "two(2)": the second pronunciation of "two"


class GrammarError(UserError):
    """A grammar file that cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class Heard:
    """A word the decoder placed over ``[start, end)`` seconds, with its posterior probability."""

    word: str
    start: float
    end: float
    probability: float


def _new_decoder(**options):
    pocketsphinx = require("pocketsphinx", "speech")
    return pocketsphinx.Decoder(samprate=AUDIO_RATE, loglevel="FATAL", **options)


@lru_cache(maxsize=1)
def _aligner():
    return _new_decoder()


@lru_cache(maxsize=4)
def _grammar_decoder(grammar: Path, modified_ns: int):
    """A decoder whose search is ``grammar``; ``modified_ns`` makes an edited file load afresh."""
    text = grammar.read_text(encoding="utf-8", errors="replace")
    if not text.lstrip().startswith("#JSGF"):  # PocketSphinx's parser would echo such a file to stdout
        raise GrammarError(f"{grammar}: not a JSGF grammar (it must begin with a '#JSGF V1.0;' header)")
    problem = rule_problem(text)
    if problem:
        raise GrammarError(f"{grammar}: {problem}")
    decoder = _new_decoder()
    unknown = sorted(w for w in grammar_words(text) if decoder.lookup_word(w) is None)
    if unknown:
        raise GrammarError(f"{grammar}: words missing from the pronouncing dictionary: {', '.join(unknown[:10])}")
    try:
        decoder.add_jsgf_file("grammar", str(grammar))
        decoder.activate_search("grammar")
    except RuntimeError as exc:
        raise GrammarError(f"{grammar}: not a usable JSGF grammar ({exc})") from None
    return decoder


def _rules(text: str) -> list[tuple[str, str]]:
    """``(head, body)`` of each rule definition, comments removed."""
    text = re.sub(r"//[^\n]*|/\*.*?\*/", " ", text, flags=re.S)
    return [tuple(statement.split("=", 1)) for statement in text.split(";") if "=" in statement]


def grammar_words(text: str) -> set[str]:
    """The words a JSGF grammar's rules can say (rule references, tags and weights left out)."""
    words: set[str] = set()
    for _, body in _rules(text):
        body = re.sub(r"<[^>]*>|\{[^}]*\}|/[^/]*/", " ", body)
        words.update(re.findall(r"[^\s()\[\]|*+\"]+", body))
    return words


def rule_problem(text: str) -> str | None:
    """Why a JSGF grammar could recognise nothing (a rule used but never defined, no word at all), or None.

    PocketSphinx loads such a grammar and then silently hears nothing.
    """
    rules = _rules(text)
    defined = {name for head, _ in rules for name in re.findall(r"<([^>]+)>", head)}
    used = {name for _, body in rules for name in re.findall(r"<([^>]+)>", body)} - {"NULL", "VOID"}
    if used - defined:
        return f"rules used but never defined: {', '.join(f'<{n}>' for n in sorted(used - defined))}"
    if not grammar_words(text):
        return "no rule says any word"
    return None


def load_grammar(grammar: Path):
    """The decoder for ``grammar``; :class:`GrammarError` when the file is missing or unusable."""
    if not grammar.is_file():
        raise GrammarError(f"{grammar}: no such grammar file")
    return _grammar_decoder(grammar.resolve(), grammar.stat().st_mtime_ns)


def pronounceable(words: Sequence[str]) -> list[bool]:
    """Whether the dictionary has each (lower-case) word."""
    with _LOCK:
        aligner = _aligner()
        return [aligner.lookup_word(w) is not None for w in words]


def _pcm(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def _decode(decoder, samples: np.ndarray, offset: float) -> list[Heard]:
    """The words (fillers and silences dropped) the decoder's active search finds in ``samples``.

    The front end (noise estimate, cepstral mean) is built afresh for every
    utterance (``reinit_feat``, a tenth of a millisecond), as in a new
    decoder: PocketSphinx carries both over from the previous utterance, so
    without this a cue's word times depended on what the decoder had heard
    before (a subtitle file aligned twice in one process gave times 10 ms
    apart).
    """
    decoder.reinit_feat()
    decoder.start_utt()
    decoder.process_raw(_pcm(samples), full_utt=True)
    decoder.end_utt()
    if decoder.hyp() is None:
        return []
    return [Heard(_VARIANT.sub("", s.word), round(offset + s.start_frame * FRAME_SECONDS, 6),
                  round(offset + (s.end_frame + 1) * FRAME_SECONDS, 6), float(min(max(s.prob, 0.0), 1.0)))
            for s in decoder.seg() if not s.word.startswith(("<", "["))]  # silence, noise


def align(samples: np.ndarray, words: Sequence[str], *, offset: float = 0.0) -> list[Heard] | None:
    """Where each of ``words`` (lower-case dictionary words, in order) was said in 16 kHz ``samples``.

    Returns one :class:`Heard` per word (probability 1: the words were given,
    not recognised), or None when the aligner finds no path through the
    audio for them (too little audio, or text that does not fit it).
    """
    if not words or len(samples) < AUDIO_RATE // 10:
        return None
    with _LOCK:
        decoder = _aligner()
        try:
            decoder.set_align_text(" ".join(words))
        except RuntimeError:
            return None
        heard = _decode(decoder, samples, offset)
    if [h.word for h in heard] != list(words):
        return None
    return heard


def recognise(samples: np.ndarray, grammar: Path, *, offset: float = 0.0) -> list[Heard]:
    """The grammar's best sentence for 16 kHz ``samples`` (one utterance), as timed words."""
    decoder = load_grammar(grammar)
    if len(samples) < AUDIO_RATE // 10:
        return []
    with _LOCK:
        return _decode(decoder, samples, offset)
