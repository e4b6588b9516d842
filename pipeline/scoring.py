"""A loaded checkpoint as the pipeline sees it: check features, score a segment, combine segments.

Scores are on the paper's [-3, 3] scale. A regression checkpoint gives the
score directly (polarity by sign, no confidence: a regression head has no
probability). A classification checkpoint with sentiment classes gives
``3 * (p_positive - p_negative)``, the polarity is the most probable class and
the confidence its probability. Segments combine by duration-weighted mean of
scores (regression) or of class probabilities (classification).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from sgdtam_pipe.extractors.timeline import MODALITIES, ClipFeatures

STARTER = Path(__file__).resolve().parents[1] / "model" / "starter"


@dataclass(frozen=True)
class SegmentScore:
    score: float | None
    polarity: str
    confidence: float | None
    probabilities: dict[str, float] | None
    observed: tuple[str, ...]
    generated: tuple[str, ...]  # in generation order
    route: str

    def to_json(self) -> dict[str, Any]:
        rounded = None if self.probabilities is None else {k: round(v, 4) for k, v in self.probabilities.items()}
        return {"score": None if self.score is None else round(self.score, 3), "polarity": self.polarity,
                "confidence": None if self.confidence is None else round(self.confidence, 3),
                "probabilities": rounded, "observed": list(self.observed), "generated": list(self.generated),
                "route": self.route}


def polarity_of(score: float) -> str:
    return "positive" if score > 0 else "negative" if score < 0 else "neutral"


def score_from_probabilities(probabilities: dict[str, float]) -> float | None:
    if "positive" in probabilities and "negative" in probabilities:
        return 3.0 * (probabilities["positive"] - probabilities["negative"])
    return None


class Checkpoint:
    """A checkpoint folder loaded once, used for every segment of every clip."""

    def __init__(self, path: Path) -> None:
        from sgdtam_pipe.model.checkpoint import load_checkpoint

        self.path = path
        self.model, self.card = load_checkpoint(path)

    def check(self, clip: ClipFeatures) -> None:
        """Refuse features made differently from the training features (names the modality)."""
        from sgdtam_pipe.model.checkpoint import check_features

        check_features(self.card, clip)

    def score(self, clips: Sequence[ClipFeatures]) -> list[SegmentScore]:
        """One score per clip (segment), batched; a clip with no measured row is ``unknown``."""
        from sgdtam_pipe.model.batching import usable
        from sgdtam_pipe.model.sgdtam import predict_many

        scorable = [i for i, c in enumerate(clips) if any(usable(c.modality(m)) for m in MODALITIES)]
        scores = [SegmentScore(None, "unknown", None, None, (), (), "nothing observed")] * len(clips)
        for i, prediction in zip(scorable, predict_many(self.model, [clips[i] for i in scorable])):
            scores[i] = self._segment_score(prediction)
        return scores

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
        if pairs[0][0].probabilities is None:
            mean = sum(s.score * w for s, w in pairs) / total
            return SegmentScore(mean, polarity_of(mean), None, None, observed, generated, routes)
        classes = list(pairs[0][0].probabilities)
        mean_p = {c: sum(s.probabilities[c] * w for s, w in pairs) / total for c in classes}
        best = max(mean_p, key=mean_p.get)
        return SegmentScore(score_from_probabilities(mean_p), best, mean_p[best], mean_p, observed, generated, routes)

    def describe(self) -> dict[str, Any]:
        card = self.card
        return {"name": self.path.name, "path": str(self.path), "label": card.label.to_json(),
                "parameters": card.parameters, "trained_on": card.data.get("summary", card.data),
                "features": {m: {"extractor": s.extractor, "version": s.version, "width": s.width}
                             for m, s in card.features.items()}}


def load_scorer(path: str | Path | None) -> Checkpoint:
    """The checkpoint at ``path``, or the starter checkpoint shipped in the package."""
    folder = Path(path) if path is not None else STARTER
    if not (folder / "card.json").exists():
        hint = ("the starter checkpoint is missing from this install; rebuild it with "
                "'python scripts/make_starter_checkpoint.py'") if path is None else "no card.json in it"
        raise FileNotFoundError(f"{folder}: not a checkpoint ({hint})")
    return Checkpoint(folder)
