"""PocketSphinx: grammar-held recognition on real speech, grammar checks, and how words are said."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from media_factory import run_ffmpeg

from sgdtam_pipe.core.media import probe
from sgdtam_pipe.extractors.text.forced_alignment import number_words, spoken_words
from sgdtam_pipe.extractors.text.sphinx import GrammarError, grammar_words, load_grammar
from sgdtam_pipe.extractors.text.transcribe import transcribe
from sgdtam_pipe.extractors.text.transcript import TranscriptConfig
from sgdtam_pipe.pipeline.cli import main
from sgdtam_pipe.pipeline.features import ExtractionSettings, build_extractors

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
GRID = EXAMPLES / "grid-bbaf2n.mpg"
GRID_GRAMMAR = EXAMPLES / "grid.jsgf"


def in_time_order(words, lo: float, hi: float) -> bool:
    return all(lo <= w.start <= w.end <= hi for w in words) and all(
        a.end <= b.start for a, b in zip(words, words[1:]))


def test_grid_grammar_recognises_the_sentence_with_times():
    transcript = transcribe(GRID, config=TranscriptConfig(source="asr", grammar=GRID_GRAMMAR))
    print("pocketsphinx + GRID grammar:", [(w.text, w.start, w.end, round(w.probability, 2)) for w in transcript.words])
    assert transcript.source == "asr:pocketsphinx-jsgf"
    assert transcript.text == "bin blue at f two now"
    assert in_time_order(transcript.words, 0.0, probe(GRID).duration)
    assert all(0.0 <= w.probability <= 1.0 and not w.estimated for w in transcript.words)
    assert 0.7 <= transcript.words[0].start <= 1.05 and transcript.words[-1].end <= 2.5  # speech: 1.00-2.46 s


def test_grammar_decodes_each_speech_region_as_one_sentence(tmp_path):
    looped = tmp_path / "grid-x3.wav"
    run_ffmpeg(["-stream_loop", "2", "-i", str(GRID), "-vn", "-ac", "1", "-ar", "16000", str(looped)])
    transcript = transcribe(looped, config=TranscriptConfig(source="asr", grammar=GRID_GRAMMAR))
    assert [s.text for s in transcript.segments] == ["bin blue at f two now"] * 3
    period = probe(GRID).duration
    single = transcribe(GRID, config=TranscriptConfig(source="asr", grammar=GRID_GRAMMAR)).words
    for k, segment in enumerate(transcript.segments):
        assert k * period <= segment.start and segment.end <= (k + 1) * period
        assert segment.words[2].start == pytest.approx(single[2].start + k * period, abs=0.05)


def test_grammar_words_skip_rule_names_tags_weights_and_comments():
    text = ("#JSGF V1.0;\ngrammar g;\n// a comment = nothing\n/* block = none */\n"
            "public <s> = (hello /2/ | \"big world\") {tag} [please] <x>*;\n<x> = yes+;\n")
    assert grammar_words(text) == {"hello", "big", "world", "please", "yes"}
    assert len(grammar_words(GRID_GRAMMAR.read_text())) == 4 + 4 + 4 + 25 + 10 + 4


@pytest.mark.parametrize("body, reason", [
    ("#JSGF V1.0;\ngrammar g;\npublic <s> = hello | zzqxw;\n", "missing from the pronouncing dictionary: zzqxw"),
    ("hello there\n", "must begin with a '#JSGF V1.0;' header"),
    ("#JSGF V1.0;\ngrammar g;\npublic <s> = (hello | world;\n", "not a usable JSGF grammar"),
])
def test_unusable_grammars_are_refused_naming_the_file(tmp_path, body, reason):
    grammar = tmp_path / "bad.jsgf"
    grammar.write_text(body)
    with pytest.raises(GrammarError, match=reason) as caught:
        load_grammar(grammar)
    assert str(caught.value).startswith(f"{grammar}: ")
    with pytest.raises(GrammarError, match="no such grammar file"):
        load_grammar(tmp_path / "absent.jsgf")


def test_cli_refuses_a_bad_grammar_in_one_line(tmp_path):
    grammar = tmp_path / "bad.jsgf"
    grammar.write_text("#JSGF V1.0;\ngrammar g;\npublic <s> = zzqxw;\n")
    result = CliRunner().invoke(main, ["analyze", str(GRID), "--grammar", str(grammar), "--no-cache"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: {grammar}: words missing from the pronouncing "
                                                  "dictionary: zzqxw"]


def test_a_grammar_needs_english():
    with pytest.raises(ValueError, match="US-English"):
        TranscriptConfig(grammar=GRID_GRAMMAR, language="fr")


def test_editing_the_grammar_changes_the_cache_key(tmp_path):
    grammar = tmp_path / "g.jsgf"
    grammar.write_text(GRID_GRAMMAR.read_text())
    text = build_extractors(ExtractionSettings(grammar=grammar))["text"]
    before = text.identity_for(GRID).key()
    grammar.write_text(GRID_GRAMMAR.read_text().replace("| soon", ""))
    assert text.identity_for(GRID).key() != before
    moved = tmp_path / "moved.jsgf"
    moved.write_text(grammar.read_text())
    elsewhere = build_extractors(ExtractionSettings(grammar=moved))["text"]
    assert elsewhere.identity_for(GRID).key() == text.identity_for(GRID).key()  # content, not path


@pytest.mark.parametrize("written, said", [
    ("F2", ["f", "two"]), ("It-it", ["it", "it"]), ("don\u2019t", ["don't"]), ("\u2026and", ["and"]),
    ("Woo-hoo.", ["woo", "hoo"]), ("42", ["forty", "two"]), ("305", ["three", "hundred", "five"]),
    ("2000", ["two", "zero", "zero", "zero"]), ("?!", []),
])
def test_written_words_are_said_as_dictionary_words(written, said):
    assert spoken_words(written) == said


def test_numbers_are_spelled_as_said():
    assert number_words("0") == ["zero"] and number_words("17") == ["seventeen"]
    assert number_words("90") == ["ninety"] and number_words("07") == ["zero", "seven"]


def test_alignment_does_not_depend_on_what_the_decoder_heard_before():
    from sgdtam_pipe.core.media import decode_audio
    from sgdtam_pipe.extractors.text import sphinx

    grid = decode_audio(GRID).samples
    said = "bin blue at f two now".split()
    first = sphinx.align(grid, said)
    noise = np.random.default_rng(0).normal(0.0, 0.05, 3 * 16_000).astype(np.float32)
    sphinx.align(noise, said)  # PocketSphinx's noise estimate and cepstral mean move to the noise
    assert sphinx.align(grid, said) == first
