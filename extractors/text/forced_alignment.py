"""Times for text that came without them: forced alignment first, the recogniser's words second.

Given words (a ``.txt``, or cues holding several words) are first force-aligned
to their audio by PocketSphinx (:mod:`extractors.text.sphinx`), cue by cue (a
``.txt`` is one cue over the whole track). Each written word is said as
dictionary words first (:func:`spoken_words`: "F2" is "f two"); a word the
dictionary cannot say stays untimed. Aligned words are measured, not
estimated.

For a cue the aligner cannot fit, the words are matched to the recogniser's
words with :class:`difflib.SequenceMatcher` on normalised tokens (lower case,
punctuation dropped, numbers spelled out). An exact token match takes the
recognised word's times and probability. Inside a stretch the two texts
disagree on, characters are matched instead ("bimblue" gives "bin" and
"blue" times from the parts of the recognised word they share); such words
are flagged ``estimated``. Words still without a time are interpolated
between their timed neighbours, inside their cue. With no audio or no
recognised words at all, untimed text is spread over the speech regions that
voice-activity detection finds (or the whole audio), flagged.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Mapping, Sequence

from sgdtam_pipe.core.hooks import Hook
from sgdtam_pipe.core.media import AudioTrack
from sgdtam_pipe.extractors.text import asr, sphinx
from sgdtam_pipe.extractors.text.sidecars import Cue
from sgdtam_pipe.extractors.text.transcript import TimedToken, TranscriptConfig, Word, interpolate, spread

CUE_SLACK = 0.5  # seconds a matched word may lie outside its cue before the match is refused
EDGE_WORD_SECONDS = 0.3  # room given to each untimed word before the first (after the last) timed one
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(digits: str) -> list[str]:
    """English words for a run of digits ("42" -> ["forty", "two"]).

    Numbers up to 999 are spelled as said; longer runs (and runs with a
    leading zero) digit by digit.
    """
    n = int(digits)
    if len(digits) > 3 or (digits.startswith("0") and len(digits) > 1):
        return [_ONES[int(d)] for d in digits]
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10]] + ([_ONES[n % 10]] if n % 10 else [])
    rest = n % 100
    return [_ONES[n // 100], "hundred"] + (number_words(str(rest)) if rest else [])


def spell_number(digits: str) -> str:
    """:func:`number_words` run together, as a comparison key ("42" -> "fortytwo")."""
    return "".join(number_words(digits))


def normalise(word: str) -> str:
    """The comparison key of a word: lower case letters, numbers spelled, nothing else."""
    key = re.sub(r"[^0-9a-z]", "", word.lower())
    return re.sub(r"\d+", lambda m: spell_number(m.group(0)), key)


def spoken_words(word: str) -> list[str]:
    """How a written word is said, as dictionary words ("F2" -> ["f", "two"], "It-it" -> ["it", "it"]).

    Lower case, curly apostrophes made straight, split at hyphens, slashes and
    letter-digit boundaries, numbers spelled; apostrophes inside a word stay
    ("don't"), other punctuation goes.
    """
    text = word.lower().replace("\u2019", "'").replace("\u2018", "'")
    pieces = re.findall(r"[a-z]+(?:'[a-z]+)*|\d+", text)
    return [spoken for piece in pieces for spoken in (number_words(piece) if piece.isdigit() else [piece])]


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


def _accept_heard_times(tokens: list[TimedToken], heard: Sequence[Word]) -> int:
    """Time the untimed tokens from ``heard``, refusing matches that fall outside the token's cue.

    Returns how many tokens got times.
    """
    timed = 0
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
        timed += 1
    return timed


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


def _cue_groups(tokens: Sequence[TimedToken]) -> list[list[int]]:
    """Indices of the untimed tokens, grouped by the cue they came from (shared ``low``/``high``)."""
    groups: dict[tuple[float, float], list[int]] = {}
    for i, token in enumerate(tokens):
        if token.start is None:
            groups.setdefault((token.low, token.high), []).append(i)
    return list(groups.values())


def _align_group(tokens: Sequence[TimedToken], group: Sequence[int], audio: AudioTrack) -> bool:
    """Time the tokens of one cue by forced alignment inside the cue (all the audio for untimed text).

    Tokens the dictionary cannot say stay untimed (to be interpolated).
    False when no token could be said or the aligner found no path.
    """
    low, high = tokens[group[0]].low, tokens[group[0]].high
    begin = max(audio.start, low - CUE_SLACK)
    finish = min(audio.start + audio.duration, high + CUE_SLACK)
    first, last = (max(int(round((t - audio.start) * audio.sample_rate)), 0) for t in (begin, finish))
    spoken = [spoken_words(tokens[i].text) for i in group]
    sayable = [bool(parts) and all(sphinx.pronounceable(parts)) for parts in spoken]
    said = [(i, parts) for i, parts, ok in zip(group, spoken, sayable) if ok]
    heard = sphinx.align(audio.samples[first:last], [w for _, parts in said for w in parts], offset=begin)
    if heard is None:
        return False
    position = 0
    for i, parts in said:
        token = tokens[i]
        token.start = min(max(heard[position].start, low), high)
        token.end = min(max(heard[position + len(parts) - 1].end, token.start), high)
        position += len(parts)
    _share_with_unsayable(tokens, group, sayable)
    return True


def _share_with_unsayable(tokens: Sequence[TimedToken], group: Sequence[int], sayable: Sequence[bool]) -> None:
    """Give each run of unsayable words between two aligned ones a share of the word before it.

    The aligner could not model those words, so their sound went to a
    neighbour: the word before the run shares its interval with the run, in
    proportion to letters, and every word involved becomes ``estimated``.
    Runs at either end of the cue stay untimed (interpolation gives them room
    beside the aligned words).
    """
    k = 0
    while k < len(group):
        if sayable[k]:
            k += 1
            continue
        end = k
        while end < len(group) and not sayable[end]:
            end += 1
        if k == 0 or end == len(group):
            k = end
            continue
        host = tokens[group[k - 1]]
        shared = [host, *(tokens[i] for i in group[k:end])]
        for token, (s, e) in zip(shared, spread([t.text for t in shared], host.start, host.end)):
            token.start, token.end, token.estimated = s, e, True
        k = end


def _edge(tokens: Sequence[TimedToken], span: tuple[float, float], side: int) -> float:
    """Where interpolation may begin (``side`` -1) or end (1).

    Untimed words before the first timed word (after the last) get
    ``EDGE_WORD_SECONDS`` each, kept inside ``span``.
    """
    ordered = tokens if side < 0 else tokens[::-1]
    timed = next((k for k, t in enumerate(ordered) if t.start is not None), None)
    if timed is None:
        return span[0] if side < 0 else span[1]
    if side < 0:
        return max(span[0], ordered[timed].start - EDGE_WORD_SECONDS * timed)
    return min(span[1], ordered[timed].end + EDGE_WORD_SECONDS * timed)


def _cue_spans(tokens: Sequence[TimedToken], groups: Sequence[Sequence[int]],
               audio: AudioTrack) -> list[tuple[float, float]]:
    """The audio ``[start, end)`` s under the cues of ``groups`` (``CUE_SLACK`` either side), merged where
    they touch; an untimed cue (a ``.txt``) spans the whole track."""
    first, last = audio.start, audio.start + audio.duration
    spans = sorted((max(first, tokens[g[0]].low - CUE_SLACK), min(last, tokens[g[0]].high + CUE_SLACK))
                   for g in groups)
    merged: list[tuple[float, float]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        elif end > start:
            merged.append((start, end))
    return merged


def _recognise_spans(audio: AudioTrack, spans: Sequence[tuple[float, float]], *, config: TranscriptConfig,
                     hook: Hook | None) -> list[Word]:
    """The recogniser's words in each of ``spans`` (media seconds) of ``audio``, in time order.

    Only the cues the aligner could not fit are recognised, not the whole
    track: one failed cue of a long subtitle file costs its own seconds.
    ``hook`` sees the seconds recognised over all spans together.
    """
    total = round(sum(end - start for start, end in spans), 1)
    words: list[Word] = []
    before = 0.0
    for start, end in spans:
        first = max(int(round((start - audio.start) * audio.sample_rate)), 0)
        last = min(int(round((end - audio.start) * audio.sample_rate)), len(audio.samples))
        piece_hook = None if hook is None else _shifted(hook, before, total)
        words.extend(asr.recognise_samples(audio.samples[first:last], config=config,
                                           offset=audio.start + first / audio.sample_rate, hook=piece_hook))
        before += (last - first) / audio.sample_rate
    return words


def _shifted(hook: Hook, before: float, total: float) -> Hook:
    """``hook`` for one span: its seconds counted after ``before`` of ``total``."""
    def report(step: str, info: Mapping[str, Any]) -> None:
        hook(step, {**info, "done": min(round(before + float(info.get("done", 0.0)), 1), total), "total": total})
    return report


def timed_words_for_text(audio: AudioTrack | None, duration: float, cues: Sequence[Cue], *,
                         config: TranscriptConfig, hook: Hook | None = None) -> tuple[list[Word], str]:
    """Words of a sidecar's cues, each with a time; the second item says how untimed words were timed.

    Order of trust: times the sidecar gives a single word; forced alignment of
    each cue's words to its audio (PocketSphinx, English only); for cues the
    aligner could not fit, the recogniser's own word times (recognised in those
    cues' audio only) matched to the text; then
    interpolation inside the cue. With no audio to align to (``audio`` None:
    the clip has no audio stream), the text is spread over the speech regions
    (or the whole ``duration`` s), flagged.
    """
    tokens = tokens_from_cues(cues)
    if all(t.start is not None for t in tokens):
        return interpolate(tokens, start=0.0, end=max((t.end or 0.0) for t in tokens) if tokens else 0.0), ""
    span = (0.0, duration) if audio is None else (audio.start, audio.start + audio.duration)
    aligners: list[str] = []
    if config.align != "none" and audio is not None and len(audio.samples):
        forced = config.align == "auto" and config.language == "en"
        groups = _cue_groups(tokens)
        fitted = [_align_group(tokens, group, audio) for group in groups] if forced else [False] * len(groups)
        if any(fitted):
            aligners.append("pocketsphinx")
        unfitted = [group for group, ok in zip(groups, fitted) if not ok]
        if unfitted:
            heard = _recognise_spans(audio, _cue_spans(tokens, unfitted, audio), config=config, hook=hook)
            if _accept_heard_times(tokens, heard):
                aligners.append(asr.recogniser_name(config))
    if aligners:
        return interpolate(tokens, start=_edge(tokens, span, -1), end=_edge(tokens, span, 1)), \
            "+aligned:" + "+".join(aligners)
    if any(t.start is not None or t.low != float("-inf") for t in tokens):
        return interpolate(tokens, start=span[0], end=span[1]), "+interpolated"
    regions = [] if audio is None else asr.speech_regions(audio.samples, offset=audio.start)
    return _spread_over(tokens, regions or [span]), "+spread:speech" if regions else "+spread:audio"
