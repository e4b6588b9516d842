"""Scores kept beside a clip's features, so a cached re-analysis never starts torch.

Scoring is the one step of ``analyze`` that needs torch (about 3 s to import
before a single weight loads). Its output is a pure function of

* the exact features it is given: every modality's rows, times, mask, names
  and extractor identity (so of the clip's content and each extractor's
  ``identity_for(path)``, sidecar and grammar included), or the reason it is
  missing, and the clip's content hash and duration;
* the segments it scores (start, end, text: the transcript's utterances, or
  the fixed windows ``window_seconds`` cuts);
* the checkpoint's content (SHA-256 of ``card.json`` and ``model.safetensors``);
* the code that scores: the package version, the content of the model
  package and of the scoring modules, and the torch and numpy versions.

The entry's identity is a digest of all of that. The features are hashed as
they are handed to the model, not trusted from their cache keys, so a feature
recomputed differently (another device, a library changed without a version
bump) can never be paired with scores made from its predecessor. The device is
left out, as everywhere: results agree up to float rounding.

An entry is a ``scores`` JSON artefact of the feature cache
(:class:`~sgdtam_pipe.pipeline.cache.FeatureCache`), in the clip's folder: written
atomically with a checksum record, counted by ``cache info`` (as
``sgdtam-scores``), removed by ``cache clear``, bypassed by ``--no-cache``.
An entry that fails to parse, or parses into anything but the scores it should
hold, is removed and the clip is scored again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from sgdtam_pipe.core.timeline import MODALITIES, ClipFeatures, ExtractorIdentity, TimedFeatures
from sgdtam_pipe.extractors.base import installed_version
from sgdtam_pipe.pipeline.cache import FeatureCache, canonical_identity
from sgdtam_pipe.pipeline.scoring import SegmentScore, checkpoint_digest
from sgdtam_pipe.pipeline.version import __version__

log = logging.getLogger(__name__)

NAME = "sgdtam-scores"
KIND = "scores"
FORMAT = 1
PACKAGE = Path(__file__).resolve().parents[1]
# The code whose change can change a score: the whole model package, and the modules that feed it.
CODE = ("model/*.py", "pipeline/scoring.py", "pipeline/analyze.py", "pipeline/result_cache.py", "core/timeline.py")


@dataclass(frozen=True)
class CachedScores:
    segments: list[SegmentScore]
    overall: SegmentScore
    checkpoint: dict[str, Any]  # Checkpoint.describe() of the run that stored it


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 over the scoring code (:data:`CODE`), the package version and the torch and numpy versions."""
    digest = hashlib.sha256(json.dumps([__version__, installed_version("torch"),
                                        installed_version("numpy")]).encode())
    for pattern in CODE:
        for path in sorted(PACKAGE.glob(pattern)):
            try:
                data = path.read_bytes()
            except OSError:
                data = b"(unreadable)"
            digest.update(f"\0{path.relative_to(PACKAGE).as_posix()}\0{len(data)}\0".encode())
            digest.update(data)
    return digest.hexdigest()


def features_digest(features: ClipFeatures) -> str:
    """SHA-256 over what the model reads of ``features``: every modality's arrays, names, identity and
    flags, or its missing reason; and the clip's content hash and duration (not its path)."""
    digest = hashlib.sha256(json.dumps([features.clip.sha256, float(features.clip.duration)]).encode())
    for name in MODALITIES:
        stream = features.modality(name)
        identity = None if stream.identity is None else canonical_identity(stream.identity)
        if isinstance(stream, TimedFeatures):
            head = ["rows", name, identity, list(stream.names), bool(stream.times_synthetic),
                    list(stream.values.shape)]
            digest.update(json.dumps(head, sort_keys=True).encode())
            for array in (stream.values, stream.start, stream.end, stream.mask):
                digest.update(array.dtype.str.encode())
                digest.update(array.tobytes())
        else:
            digest.update(json.dumps(["missing", name, identity, stream.reason], sort_keys=True).encode())
    return digest.hexdigest()


def entry_identity(features: ClipFeatures, intervals: Sequence[tuple[float, float, str]],
                   checkpoint: Path) -> ExtractorIdentity | None:
    """The identity the scores of ``features`` cut into ``intervals`` by ``checkpoint`` are stored under;
    ``None`` when the checkpoint's files cannot be read (no caching: loading it will say why)."""
    weights = checkpoint_digest(checkpoint)
    if weights is None:
        return None
    segments = hashlib.sha256(json.dumps([[float(a), float(b), str(t)] for a, b, t in intervals]).encode())
    return ExtractorIdentity(NAME, str(FORMAT), {
        "features": features_digest(features), "segments": segments.hexdigest(), "checkpoint": weights,
        "code": code_fingerprint()})


def lookup(cache: FeatureCache, sha256: str, identity: ExtractorIdentity, count: int) -> CachedScores | None:
    """The stored scores for ``count`` segments, or ``None`` (absent, or damaged: then removed)."""
    stored = cache.get_json(sha256, identity, KIND)
    if stored is None:
        return None
    try:
        if not isinstance(stored, dict) or stored.get("format") != FORMAT:
            raise ValueError("not a scores entry of this format")
        segments = [SegmentScore.from_record(s) for s in stored["segments"]]
        if len(segments) != count:
            raise ValueError(f"{len(segments)} segment scores for {count} segments")
        overall = SegmentScore.from_record(stored["overall"])
        checkpoint = stored["checkpoint"]
        if not isinstance(checkpoint, dict):
            raise ValueError("no checkpoint description")
    except (KeyError, TypeError, ValueError) as exc:
        log.debug("result cache entry %s unusable (%s): scoring again", identity.key(), exc)
        cache.discard_json(sha256, identity, KIND)
        return None
    return CachedScores(segments, overall, checkpoint)


def store(cache: FeatureCache, sha256: str, identity: ExtractorIdentity, scores: CachedScores) -> None:
    """Keep ``scores`` (a failed write is noted in ``cache.unwritten``, like a feature's)."""
    cache.put_json(sha256, identity, KIND, {"format": FORMAT, "segments": [s.to_record() for s in scores.segments],
                                            "overall": scores.overall.to_record(), "checkpoint": scores.checkpoint})
