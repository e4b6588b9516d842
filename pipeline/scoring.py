"""A loaded checkpoint as the pipeline sees it: check features, score a segment, combine segments.

Scores are on the paper's [-3, 3] scale. A regression checkpoint gives the
score directly (polarity by sign, no confidence: a regression head has no
probability). A classification checkpoint with sentiment classes gives
``3 * (p_positive - p_negative)``, the polarity is the most probable class and
the confidence its probability. Segments combine by duration-weighted mean of
scores (regression) or of class probabilities (classification).

Every score names its availability pattern (``L``, ``A``, ``V``, ``LA``,
``LV``, ``AV``, ``LAV``: the modalities observed, not generated) and whether
the checkpoint's card records it as validated on real dev data, with that
dev accuracy; a card without pattern records validates nothing. The overall
score's pattern joins its segments' distinct patterns (``"LAV | V"``) and is
validated only when every one of them is.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from sgdtam_pipe.core.timeline import MODALITIES, ClipFeatures
from sgdtam_pipe.extractors.text.transcript import WORD_SOURCE_KEYS

FEATURE_PROVENANCE = {"text": WORD_SOURCE_KEYS}
"""Config keys that say where a modality's input came from, not what its features mean: not compared
against a checkpoint (``model.checkpoint.check_features``), so a sidecar clip meets a Whisper-trained one."""

STARTER = Path(__file__).resolve().parents[1] / "model" / "starter"
# The files ``model.checkpoint.load_checkpoint`` reads (its CARD and WEIGHTS, repeated here so that hashing a
# checkpoint imports no torch; tests/test_startup.py checks they agree).
CHECKPOINT_FILES = ("card.json", "model.safetensors")


@dataclass(frozen=True)
class SegmentScore:
    score: float | None
    polarity: str
    confidence: float | None
    probabilities: dict[str, float] | None
    observed: tuple[str, ...]
    generated: tuple[str, ...]  # in generation order
    route: str
    pattern: str = ""  # "" when nothing was observed
    validated: bool = False
    dev_accuracy: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form, rounded as ``shown`` rounds (so the report, which reads it, prints what the CLI does)."""
        shown = self.shown()
        rounded = None if self.probabilities is None else {k: round(v, 4) for k, v in self.probabilities.items()}
        return {"score": shown.score, "polarity": self.polarity, "confidence": shown.confidence,
                "probabilities": rounded, "observed": list(self.observed), "generated": list(self.generated),
                "route": self.route, "pattern": self.pattern or None, "validated": self.validated,
                "dev_accuracy": None if self.dev_accuracy is None else round(self.dev_accuracy, 4)}

    def shown(self) -> "SegmentScore":
        """This score with ``score`` to 3 decimals and ``confidence`` to 4 (the probabilities' rounding)."""
        return replace(self, score=None if self.score is None else round(self.score, 3),
                       confidence=None if self.confidence is None else round(self.confidence, 4))

    def to_record(self) -> dict[str, Any]:
        """Every field at full precision, for the result cache (:meth:`from_record` reads it back equal)."""
        record = asdict(self)
        for name in ("score", "confidence", "dev_accuracy"):
            record[name] = None if record[name] is None else float(record[name])
        if record["probabilities"] is not None:
            record["probabilities"] = {str(k): float(v) for k, v in record["probabilities"].items()}
        record["observed"], record["generated"] = list(self.observed), list(self.generated)
        return record

    @classmethod
    def from_record(cls, record: Any) -> "SegmentScore":
        """The score :meth:`to_record` wrote; ``ValueError`` for anything else (a damaged cache entry)."""
        names = {f.name for f in fields(cls)}
        if not isinstance(record, Mapping) or set(record) != names:
            raise ValueError("not a segment score record")
        probabilities = record["probabilities"]
        if probabilities is not None and not (isinstance(probabilities, Mapping) and all(
                isinstance(k, str) and _number(v) for k, v in probabilities.items())):
            raise ValueError("probabilities must map class names to numbers")
        for name in ("observed", "generated"):
            if not isinstance(record[name], list) or not all(m in MODALITIES for m in record[name]):
                raise ValueError(f"{name} must list modalities")
        if not all(isinstance(record[name], str) for name in ("polarity", "route", "pattern")):
            raise ValueError("polarity, route and pattern must be strings")
        if not all(record[name] is None or _number(record[name]) for name in ("score", "confidence", "dev_accuracy")):
            raise ValueError("score, confidence and dev_accuracy must be numbers or null")
        if not isinstance(record["validated"], bool):
            raise ValueError("validated must be true or false")
        return cls(**{**record, "observed": tuple(record["observed"]), "generated": tuple(record["generated"]),
                      "probabilities": None if probabilities is None else dict(probabilities)})


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def polarity_of(score: float) -> str:
    return "positive" if score > 0 else "negative" if score < 0 else "neutral"


def score_from_probabilities(probabilities: dict[str, float]) -> float | None:
    if "positive" in probabilities and "negative" in probabilities:
        return 3.0 * (probabilities["positive"] - probabilities["negative"])
    return None


class Checkpoint:
    """A checkpoint folder loaded once, used for every segment of every clip."""

    def __init__(self, path: Path, device: str = "cpu") -> None:
        from sgdtam_pipe.core.devices import torch_device
        from sgdtam_pipe.model.checkpoint import load_checkpoint

        self.path = path
        self.model, self.card = load_checkpoint(path)
        self.model.to(torch_device(device))

    def check(self, clip: ClipFeatures) -> ClipFeatures:
        """Refuse features made differently from the training features (names the modality); returns
        the clip to score, with each modality the checkpoint was not trained on marked missing."""
        from sgdtam_pipe.model.checkpoint import check_features, hide_untrained

        check_features(self.card, clip, provenance=FEATURE_PROVENANCE)
        return hide_untrained(self.card.features, clip)

    def score(self, clips: Sequence[ClipFeatures]) -> list[SegmentScore]:
        """One score per clip (segment), batched; a clip with no measured row is ``unknown``."""
        from sgdtam_pipe.model.batching import usable
        from sgdtam_pipe.model.sgdtam import predict_many

        scorable = [i for i, c in enumerate(clips) if any(usable(c.modality(m)) for m in MODALITIES)]
        scores = [SegmentScore(None, "unknown", None, None, (), (), "nothing observed")] * len(clips)
        for i, prediction in zip(scorable, predict_many(self.model, [clips[i] for i in scorable])):
            scores[i] = self._validation(self._segment_score(prediction))
        return scores

    def _validation(self, score: SegmentScore) -> SegmentScore:
        """``score`` with its pattern and what the card says of that pattern (read defensively: older
        cards have no ``patterns``)."""
        from sgdtam_pipe.model.metrics import pattern_name

        pattern = pattern_name(score.observed)
        entry = (getattr(self.card, "patterns", None) or {}).get(pattern) or {}
        accuracy = entry.get("accuracy")
        return replace(score, pattern=pattern, validated=bool(entry.get("validated", False)),
                       dev_accuracy=None if accuracy is None else float(accuracy))

    @staticmethod
    def _segment_score(prediction) -> SegmentScore:
        if prediction.probabilities is None:
            return SegmentScore(prediction.score, polarity_of(prediction.score), None, None,
                                prediction.observed, prediction.generated, prediction.route)
        probabilities = prediction.probabilities
        return SegmentScore(score_from_probabilities(probabilities), prediction.label,
                            probabilities[prediction.label], probabilities, prediction.observed,
                            prediction.generated, prediction.route)

    def combine(self, scores: Sequence[SegmentScore], weights: Sequence[float]) -> SegmentScore:
        """Duration-weighted mean of the scored segments (unscored ones are left out)."""
        pairs = [(s, w) for s, w in zip(scores, weights) if s.polarity != "unknown"]
        observed = tuple(m for m in MODALITIES if any(m in s.observed for s, _ in pairs))
        generated = tuple(dict.fromkeys(m for s, _ in pairs for m in s.generated))
        routes = " | ".join(dict.fromkeys(s.route for s, _ in pairs))
        total = sum(w for _, w in pairs)
        if not pairs or total <= 0:
            return SegmentScore(None, "unknown", None, None, (), (), "nothing observed")
        patterns = list(dict.fromkeys(s.pattern for s, _ in pairs))
        accuracy = pairs[0][0].dev_accuracy if len(patterns) == 1 else None
        validation = {"pattern": " | ".join(patterns), "validated": all(s.validated for s, _ in pairs),
                      "dev_accuracy": accuracy}
        if pairs[0][0].probabilities is None:
            mean = sum(s.score * w for s, w in pairs) / total
            return SegmentScore(mean, polarity_of(mean), None, None, observed, generated, routes, **validation)
        classes = list(pairs[0][0].probabilities)
        mean_p = {c: sum(s.probabilities[c] * w for s, w in pairs) / total for c in classes}
        best = max(mean_p, key=mean_p.get)
        return SegmentScore(score_from_probabilities(mean_p), best, mean_p[best], mean_p, observed, generated, routes,
                            **validation)

    def describe(self) -> dict[str, Any]:
        card = self.card
        return {"name": self.path.name, "path": str(self.path), "label": card.label.to_json(),
                "parameters": card.parameters, "trained_on": card.data.get("summary", card.data),
                "features": {m: {"extractor": s.extractor, "version": s.version, "width": s.width}
                             for m, s in card.features.items()}}


def checkpoint_folder(path: str | Path | None) -> Path:
    """The folder :func:`load_scorer` loads for ``path`` (``None``: the starter)."""
    return Path(path) if path is not None else STARTER


_DIGESTS: dict[tuple[Any, ...], str] = {}


def checkpoint_digest(folder: Path) -> str | None:
    """SHA-256 over the content of the checkpoint's files (:data:`CHECKPOINT_FILES`), without torch;
    ``None`` when one is missing or unreadable (the load then says why). Remembered per process while
    the files' size and modification time stay the same."""
    try:
        stats = tuple((name, (st := os.stat(folder / name)).st_size, st.st_mtime_ns) for name in CHECKPOINT_FILES)
    except OSError:
        return None
    memo = (str(folder.resolve()), stats)
    if memo not in _DIGESTS:
        digest = hashlib.sha256()
        try:
            for name in CHECKPOINT_FILES:
                data = (folder / name).read_bytes()
                digest.update(f"{name}\0{len(data)}\0".encode())
                digest.update(data)
        except OSError:
            return None
        _DIGESTS[memo] = digest.hexdigest()
    return _DIGESTS[memo]


def load_scorer(path: str | Path | None, device: str = "cpu") -> Checkpoint:
    """The checkpoint at ``path``, or the starter checkpoint shipped in the package, on ``device``
    (``auto``, ``cpu`` or ``cuda``)."""
    folder = checkpoint_folder(path)
    if not (folder / "card.json").exists():
        hint = ("the starter checkpoint is missing from this install; rebuild it with "
                "'python scripts/make_starter_checkpoint.py'") if path is None else "no card.json in it"
        raise FileNotFoundError(f"{folder}: not a checkpoint ({hint})")
    return Checkpoint(folder, device)
