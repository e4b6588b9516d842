"""Timed token embeddings: time inheritance, windows past 512 tokens, layers, missing speech."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from sgdtam_pipe.core.media import probe
from sgdtam_pipe.core.timeline import MissingModality, TimedFeatures
from sgdtam_pipe.extractors.base import create_extractor
from sgdtam_pipe.extractors.text.embedding import TextExtractor, bundled_encoder, load_encoder, windows
from sgdtam_pipe.extractors.text.transcript import Transcript, Word, make_transcript, words_from_text

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
GRID = EXAMPLES / "grid-bbaf2n.mpg"


@pytest.fixture(scope="module")
def extractor() -> TextExtractor:
    torch.set_num_threads(1)
    return create_extractor("text")


@pytest.fixture(scope="module")
def encoder():
    return load_encoder(bundled_encoder())


def pieces(encoder, word: str) -> int:
    return len(encoder.pieces([word])[0])


def encode_alone(encoder, ids: list[int]) -> np.ndarray:
    """Last hidden state of ``[CLS] ids [SEP]`` without the two special rows."""
    sequence = torch.tensor([[encoder.cls_id, *ids, encoder.sep_id]])
    return encoder.hidden_state(sequence, torch.ones_like(sequence), -1)[0, 1:-1].numpy()


@given(count=st.integers(1, 2000), size=st.integers(8, 600), overlap=st.integers(0, 7))
def test_windows_emit_every_token_once_and_stay_within_size(count, size, overlap):
    parts = windows(count, size, overlap)
    assert [t for _, _, lo, hi in parts for t in range(lo, hi)] == list(range(count))
    for lo, hi, emit_lo, emit_hi in parts:
        assert 0 <= lo <= emit_lo <= emit_hi <= hi <= count and hi - lo <= size


def test_windows_overlap_and_hand_over_mid_overlap():
    assert windows(10, 6, 2) == [(0, 6, 0, 5), (4, 10, 5, 10)]
    with pytest.raises(ValueError, match="overlap"):
        windows(10, 6, 6)


def test_every_token_takes_its_words_interval(extractor, encoder):
    words = [Word("Unbelievably,", 0.2, 0.9, 0.9), Word("it", 1.0, 1.1, 0.8), Word("worked!", 1.1, 1.6, 0.7),
             Word("Tokenisation", 3.0, 3.8, None, True)]
    features = extractor.embed(make_transcript(words, "test", pause=0.8))
    counts = [pieces(encoder, w.text) for w in words]
    assert counts[0] > 1 and counts[3] > 1  # multi-piece words, so inheritance is exercised
    expected = [(w.start, w.end) for w, n in zip(words, counts) for _ in range(n)]
    assert list(zip(features.start, features.end)) == expected
    assert features.mask.all() and not features.times_synthetic
    assert features.values.shape == (sum(counts), 384) and features.names[0] == "emb_000"


def test_each_segment_is_encoded_on_its_own(extractor, encoder):
    words = [Word("I", 0.0, 0.2), Word("laughed.", 0.2, 0.6), Word("Then", 2.0, 2.3), Word("cried", 2.3, 2.8)]
    transcript = make_transcript(words, "test", pause=0.8)
    assert len(transcript.segments) == 2
    features = extractor.embed(transcript)
    first, _ = encoder.pieces(["I", "laughed."])
    np.testing.assert_allclose(features.values[:len(first)], encode_alone(encoder, first), atol=1e-4)


def test_a_transcript_past_512_tokens_is_windowed_not_truncated(extractor, encoder):
    vocabulary = "the weather turned unexpectedly wonderful and everybody smiled while grumbling quietly".split()
    texts = [vocabulary[i % len(vocabulary)] for i in range(600)]
    words = [Word(t, 0.1 * i, 0.1 * i + 0.08, 0.9) for i, t in enumerate(texts)]
    transcript = make_transcript(words, "test", pause=0.8)
    assert len(transcript.segments) == 1
    ids, _ = encoder.pieces(texts)
    assert len(ids) > 700
    features = extractor.embed(transcript)
    assert len(features) == len(ids)  # every token once: none dropped, none doubled
    assert features.end[-1] == words[-1].end and np.all(np.diff(features.start) >= 0)
    (lo, hi, elo, ehi), *_, (last_lo, last_hi, last_elo, last_ehi) = windows(len(ids), 510, 128)
    np.testing.assert_allclose(features.values[elo:ehi], encode_alone(encoder, ids[lo:hi])[elo - lo:ehi - lo],
                               atol=1e-4)
    np.testing.assert_allclose(features.values[last_elo:], encode_alone(encoder, ids[last_lo:])[last_elo - last_lo:],
                               atol=1e-4)


def test_layer_option_picks_another_hidden_state(encoder):
    words = [Word("so", 0.0, 0.3), Word("happy", 0.3, 0.8)]
    transcript = make_transcript(words, "test", pause=0.8)
    last = TextExtractor(layer=-1).embed(transcript)
    also_last = TextExtractor(layer=6).embed(transcript)
    inputs = TextExtractor(layer=0).embed(transcript)
    np.testing.assert_array_equal(last.values, also_last.values)
    assert not np.allclose(last.values, inputs.values)
    assert last.identity != inputs.identity
    with pytest.raises(ValueError, match="layer 9 out of range"):
        TextExtractor(layer=9).embed(transcript)


def test_grid_clip_gives_timed_tokens_inside_the_clip(extractor, encoder):
    duration = probe(GRID).duration
    transcript = extractor.transcribe(GRID)
    features = extractor.embed(transcript)
    assert isinstance(features, TimedFeatures)
    assert len(features) == sum(pieces(encoder, w.text) for w in transcript.words)
    assert features.start[0] == transcript.words[0].start and features.end[-1] == transcript.words[-1].end
    assert 0.0 <= features.start.min() and features.end.max() <= duration
    again = extractor.embed(Transcript.from_json(json.loads(json.dumps(transcript.to_json()))))
    np.testing.assert_array_equal(again.values, features.values)
    assert "threads" not in features.identity.config


def test_extract_reports_progress_and_matches_its_two_steps(extractor):
    steps = []
    features = extractor.extract(GRID, hook=lambda step, info: steps.append((step, dict(info))))
    heard = [info for step, info in steps if step == "whisper"]  # seconds of audio, per segment
    assert heard[0] == {"done": 0.0, "total": 3.0, "unit": "s"} and heard[-1]["done"] == 3.0
    assert {info["total"] for info in heard} == {3.0} and all(info["unit"] == "s" for info in heard)
    assert [s for s in steps if s[0] != "whisper"] == [("embed", {"done": 0, "total": 1, "unit": "windows"}),
                                                      ("embed", {"done": 1, "total": 1, "unit": "windows"})]
    np.testing.assert_array_equal(features.values, extractor.embed(extractor.transcribe(GRID)).values)


def test_no_speech_is_a_missing_modality_with_the_reason(extractor):
    result = extractor.extract(EXAMPLES / "pexels-crying-to-laughing.mp4")
    assert isinstance(result, MissingModality)
    assert result.reason.startswith("no speech detected") and result.identity == extractor.identity()
    empty = extractor.embed(make_transcript([], "sidecar:txt", pause=0.8))
    assert isinstance(empty, MissingModality) and "sidecar:txt" in empty.reason


def test_text_spread_over_a_span_is_flagged_synthetic(extractor):
    features = extractor.embed(make_transcript(words_from_text("what a day", 1.0, 2.5), "dataset:text", pause=0.8))
    assert features.times_synthetic and features.start[0] == 1.0 and features.end[-1] == 2.5


def test_bad_encoder_folder_is_a_clear_error(tmp_path):
    transcript = make_transcript([Word("hi", 0.0, 0.2)], "test", pause=0.8)
    with pytest.raises(FileNotFoundError, match="not a transformers model folder"):
        TextExtractor(embedding_model=tmp_path).embed(transcript)


def test_batched_embedding_equals_one_at_a_time(extractor):
    texts = ["hi", "what a great day this has been for all of us", "no", " ".join(["word"] * 600),
             "I hate waiting in line at the bank on Mondays"]
    transcripts = [make_transcript(words_from_text(t, 0.0, 2.0), "dataset:text", pause=0.8) for t in texts]
    transcripts.append(make_transcript([], "sidecar:txt", pause=0.8))
    batched = extractor.embed_many(transcripts)
    assert isinstance(batched[-1], MissingModality)
    for transcript, together in zip(transcripts[:-1], batched):
        alone = extractor.embed(transcript)
        assert together.values.shape == alone.values.shape
        np.testing.assert_allclose(together.values, alone.values, atol=1e-5, rtol=0)
        np.testing.assert_array_equal(together.start, alone.start)


SENTENCES = ["Oh my God, he's lost it. He's totally lost it.", "What?!", "Y'know, I don't think so...",
             "Naïve café owners re-opened at 9:30 a.m. on 12/03", "Tokenisation of unbelievably long words",
             "I absolutely HATE this, it is awful and terrible", "€100?? 😀 — ok", "Monica's apartment #2",
             " ".join(["wonderful"] * 300)]


def test_plain_torch_bert_reads_the_bundled_folder_as_transformers_does(encoder):
    """The fast path (no transformers import) gives transformers' word pieces and hidden states, every
    layer, in one padded batch: the checkpoint was trained on features from transformers' BertModel."""
    from sgdtam_pipe.extractors.text.embedding import _encode, _Window
    from sgdtam_pipe.extractors.text.encoder import _transformers

    reference = _transformers(bundled_encoder(), "cpu")
    assert encoder.kind == "bert" and reference.kind == "bert"
    assert (encoder.cls_id, encoder.sep_id, encoder.pad_id, encoder.layers, encoder.positions) == (
        reference.cls_id, reference.sep_id, reference.pad_id, reference.layers, reference.positions)
    split = [encoder.pieces(text.split()) for text in SENTENCES]
    assert split == [reference.pieces(text.split()) for text in SENTENCES]
    batch = [_Window(ids, slice(0, len(ids))) for ids, _ in split]
    for layer in (0, 3, -1):
        for ours, theirs in zip(_encode(encoder, batch, layer), _encode(reference, batch, layer)):
            np.testing.assert_allclose(ours, theirs, atol=1e-6, rtol=0)


def test_a_folder_outside_the_plain_layout_goes_through_transformers(tmp_path):
    from sgdtam_pipe.extractors.text.encoder import plain_bert

    folder = bundled_encoder()
    config = json.loads((folder / "config.json").read_text())
    assert plain_bert(folder, config)
    assert not plain_bert(folder, dict(config, position_embedding_type="relative_key"))
    assert not plain_bert(folder, dict(config, hidden_act="gelu_new"))
    assert not plain_bert(folder, dict(config, model_type="roberta"))
    assert not plain_bert(tmp_path, config)  # no safetensors weights, no tokenizer.json


def test_encoder_loads_once_when_threads_ask_together():
    """The pipeline warms the encoder up in the background while the words are recognised; an
    ``embed`` that asks meanwhile waits for that load instead of starting a second one."""
    from sgdtam_pipe.extractors.text import embedding

    embedding._load_encoder.cache_clear()
    barrier = threading.Barrier(2)
    loaded = []

    def ask() -> None:
        barrier.wait()
        loaded.append(load_encoder(bundled_encoder()))

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loaded[0] is loaded[1]
    assert embedding._load_encoder.cache_info().misses == 1
