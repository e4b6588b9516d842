"""The shipped starter checkpoint means something: words decide with speech present, faces without it,
and its card says honestly which routes were validated on real data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.bench_starter import NEGATIVE, PEXELS, POSITIVE, quarter_means, sidecar_score
from sgdtam_pipe.pipeline.analyze import AnalyzeOptions, analyze
from sgdtam_pipe.pipeline.scoring import STARTER, load_scorer

PATTERNS = ("L", "A", "V", "LA", "LV", "AV", "LAV")


@pytest.fixture(scope="module")
def scorer():
    return load_scorer(None)


@pytest.mark.slow
def test_grid_with_a_negative_and_a_positive_sidecar_scores_opposite_signs(scorer, tmp_path: Path) -> None:
    negative = sidecar_score(NEGATIVE[0], tmp_path, scorer, tmp_path / "cache")
    positive = sidecar_score(POSITIVE[0], tmp_path, scorer, tmp_path / "cache")
    assert negative < 0 < positive, (negative, positive)


@pytest.mark.slow
def test_the_silent_close_up_goes_from_crying_to_laughing(scorer, tmp_path: Path) -> None:
    result = analyze(PEXELS, AnalyzeOptions(cache_dir=tmp_path), scorer=scorer)
    first, last = quarter_means(result)
    assert first < 0 < last, (first, last)
    assert {s.score.pattern for s in result.segments} == {"V"} and all(s.score.validated for s in result.segments)


def test_the_card_says_per_pattern_what_was_validated_and_how_it_was_calibrated() -> None:
    card = json.loads((STARTER / "card.json").read_text("utf-8"))
    assert set(card["patterns"]) == set(PATTERNS)
    validated = {name for name, p in card["patterns"].items() if p["validated"]}
    assert {"L", "A", "V", "LA"} <= validated and not validated & {"LV", "AV", "LAV"}
    assert set(card["patterns"]["LA"]["by_group"]) == {"ravdess"}
    calibration = card["calibration"]
    assert calibration["temperature"] > 0 and 0 <= calibration["ece_after"] < 1 and 0 <= calibration["ece_before"] < 1
    assert set(card["data"]["sources"]) == {"meld", "ravdess", "fer2013"}
    text = (STARTER / "MODEL_CARD.md").read_text("utf-8")
    for phrase in ("GPL-3.0", "CC BY-NC-SA 4.0", "research use only", "calm", "surprised", "UNVALIDATED"):
        assert phrase in text
