"""Times for text that came without them, from the recogniser's own word times.

Given words (a ``.txt``, or cues holding several words) are matched to the
recognised words with :class:`difflib.SequenceMatcher` on normalised tokens
(lower case, punctuation dropped, numbers spelled out, so "F2" meets "f two").
An exact token match takes the recognised word's times and probability.
Inside a stretch the two texts disagree on, characters are matched instead
("bimblue" gives "bin" and "blue" times from the parts of the recognised
word they share); such words are flagged ``estimated``. Words still without
a time are interpolated between their timed neighbours, inside their cue.
With no recognised words at all, untimed text is spread over the speech
regions that voice-activity detection finds (or the whole audio), flagged.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Sequence

from extractors import asr
from extractors.media import decode_audio, probe
from extractors.sidecars import Cue
from extractors.transcript import TimedToken, TranscriptConfig, Word, interpolate

CUE_SLACK = 0.5  # seconds a matched word may lie outside its cue before the match is refused
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def spell_number(digits: str) -> str:
    """English words for a run of digits, without spaces ("42" -> "fortytwo").

    Numbers up to 999 are spelled as said; longer runs digit by digit.
    """
    n = int(digits)
    if len(digits) > 3 or (digits.startswith("0") and len(digits) > 1):
        return "".join(_ONES[int(d)] for d in digits)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + (_ONES[n % 10] if n % 10 else "")
    rest = n % 100
    return _ONES[n // 100] + "hundred" + (spell_number(str(rest)) if rest else "")


def normalise(word: str) -> str:
    """The comparison key of a word: lower case letters, numbers spelled, nothing else."""
    key = re.sub(r"[^0-9a-z]", "", word.lower())
    return re.sub(r"\d+", lambda m: spell_number(m.group(0)), key)


def match_words(given: Sequence[str], heard: Sequence[Word]) -> list[TimedToken]:
    """``given`` words with the times of the recognised words they match (untimed where none)."""
    tokens = [TimedToken(text) for text in given]
    given_keys = [normalise(t) for t in given]
    heard_keys = [normalise(w.text) for w in heard]
    matcher = difflib.SequenceMatcher(None, given_keys, heard_keys, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for token, word in zip(tokens[i1:i2], heard[j1:j2]):
                token.start, token.end, token.probability = word.start, word.end, word.probability
        elif tag == "replace":
            _match_characters(tokens[i1:i2], given_keys[i1:i2], heard[j1:j2], heard_keys[j1:j2])
    return tokens


def _match_characters(tokens: Sequence[TimedToken], keys: Sequence[str],
                      heard: Sequence[Word], heard_keys: Sequence[str]) -> None:
    """Time each token from the recognised characters that match at least half of its own.

    A recognised word's interval is shared evenly among its characters.
    """
    owner = [i for i, key in enumerate(keys) for _ in key]
    times = [(w.start + (w.end - w.start) * k / len(key), w.start + (w.end - w.start) * (k + 1) / len(key))
             for w, key in zip(heard, heard_keys) for k in range(len(key))]
    matched: dict[int, list[tuple[float, float]]] = {}
    matcher = difflib.SequenceMatcher(None, "".join(keys), "".join(heard_keys), autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            matched.setdefault(owner[block.a + k], []).append(times[block.b + k])
    for i, spans in matched.items():
        if 2 * len(spans) >= len(keys[i]):
            tokens[i].start, tokens[i].end = spans[0][0], spans[-1][1]
            tokens[i].estimated = True


def tokens_from_cues(cues: Sequence[Cue]) -> list[TimedToken]:
    """One token per word of each cue; a one-word cue with times gives that word its times."""
    tokens: list[TimedToken] = []
    for cue in cues:
        texts = cue.text.split()
        low = float("-inf") if cue.start is None else cue.start
        high = float("inf") if cue.end is None else cue.end
        timed = len(texts) == 1 and cue.start is not None
        for text in texts:
            tokens.append(TimedToken(text, cue.start if timed else None, cue.end if timed else None,
                                     cue.probability if timed else None, False, low, high))
    return tokens


def _accept_heard_times(tokens: list[TimedToken], heard: Sequence[Word]) -> None:
    """Time the untimed tokens from ``heard``, refusing matches that fall outside the token's cue."""
    untimed = [i for i, t in enumerate(tokens) if t.start is None]
    matched = match_words([tokens[i].text for i in untimed], heard)
    for i, match in zip(untimed, matched):
        token = tokens[i]
        if match.start is None or match.end is None:
            continue
        if match.end < token.low - CUE_SLACK or match.start > token.high + CUE_SLACK:
            continue
        token.start = min(max(match.start, token.low), token.high)
        token.end = min(max(match.end, token.start), token.high)
        token.probability, token.estimated = match.probability, match.estimated


def _spread_over(tokens: Sequence[TimedToken], regions: Sequence[tuple[float, float]]) -> list[Word]:
    """Words spread across ``regions`` in proportion to their lengths, each inside one region, flagged."""
    total = sum(e - s for s, e in regions)
    weights = [len(t.text) + 1 for t in tokens]
    words: list[Word] = []
    position = 0.0  # seconds of speech used so far
    unit = total / sum(weights)
    for token, weight in zip(tokens, weights):
        words.append(_place(token.text, position, position + weight * unit, regions))
        position += weight * unit
    return words


def _place(text: str, begin: float, finish: float, regions: Sequence[tuple[float, float]]) -> Word:
    """The word occupying speech-time ``[begin, finish)``, mapped into the region holding its middle."""
    middle = (begin + finish) / 2
    offset = 0.0
    for start, end in regions:
        length = end - start
        if middle <= offset + length or (start, end) == regions[-1]:
            s = start + min(max(begin - offset, 0.0), length)
            e = start + min(max(finish - offset, 0.0), length)
            return Word(text, s, max(e, s), None, True)
        offset += length
    raise ValueError("no speech regions to place words in")


def timed_words_for_text(media: Path, cues: Sequence[Cue], *, config: TranscriptConfig) -> tuple[list[Word], str]:
    """Words of a sidecar's cues, each with a time; the second item says how untimed words were timed."""
    tokens = tokens_from_cues(cues)
    if all(t.start is not None for t in tokens):
        return interpolate(tokens, start=0.0, end=max((t.end or 0.0) for t in tokens) if tokens else 0.0), ""
    heard: tuple[Word, ...] = ()
    if config.align:
        heard = asr.recognise(media, config=config).words
        _accept_heard_times(tokens, heard)
    if heard:
        start = min([heard[0].start] + [t.low for t in tokens[:1] if t.low != float("-inf")])
        end = max([heard[-1].end] + [t.high for t in tokens[-1:] if t.high != float("inf")])
        return interpolate(tokens, start=start, end=end), "+aligned:faster-whisper"
    audio = decode_audio(media)
    span = (0.0, probe(media).duration) if audio is None else (audio.start, audio.start + audio.duration)
    if any(t.start is not None or t.low != float("-inf") for t in tokens):
        return interpolate(tokens, start=span[0], end=span[1]), "+interpolated"
    regions = [] if audio is None else asr.speech_regions(audio.samples, offset=audio.start)
    return _spread_over(tokens, regions or [span]), "+spread:speech" if regions else "+spread:audio"
