"""Composite examples: the carrier stream only, the label is the non-neutral evidence, photos held over the span."""

from __future__ import annotations

import numpy as np

from sgdtam_pipe.core.timeline import ClipFeatures, ClipInfo, ExtractorIdentity, MissingModality, TimedFeatures
from sgdtam_pipe.model.composites import compose

CARRIERS = {"meld": "text", "ravdess": "audio", "fer": "video"}


def _stream(value: float, starts: list[float], width: int = 2) -> TimedFeatures:
    start = np.array(starts)
    return TimedFeatures(np.full((len(starts), width), value), start, start + 0.5, np.ones(len(starts), bool),
                         tuple(f"f{k}" for k in range(width)), ExtractorIdentity("x", "1"))


def _clip(name: str, **streams: TimedFeatures) -> ClipFeatures:
    missing = MissingModality("absent")
    return ClipFeatures(ClipInfo(name, 1.0, name), **{m: streams.get(m, missing) for m in ("text", "audio", "video")})


VALUE = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}


def _examples() -> tuple[list[ClipFeatures], list[str], list[str]]:
    clips, labels, groups = [], [], []
    for label, v in VALUE.items():
        for k in range(3):
            clips.append(_clip(f"m{label}{k}", text=_stream(v, [0.0, 0.5, 1.0])))
            clips.append(_clip(f"r{label}{k}", text=_stream(9.0, [0.0]), audio=_stream(v, [0.0, 0.1, 0.2, 0.3])))
            clips.append(_clip(f"f{label}{k}", video=_stream(v, [0.0])))
            labels += [label] * 3
            groups += ["meld", "ravdess", "fer"]
    return clips, labels, groups


def test_composites_carry_the_non_neutral_evidence_and_nothing_contradicts_it() -> None:
    clips, labels, groups = _examples()
    made, made_labels = compose(clips, labels, groups, CARRIERS, 300, seed=0, words_decide=0.0)
    assert len(made) == 300 and set(made_labels) == set(VALUE)
    for clip, label in zip(made, made_labels):
        present = clip.present()
        assert len(present) >= 2
        values = {float(clip.modality(m).values[0, 0]) for m in present}
        assert 9.0 not in values                       # a RAVDESS clip's sentence is never used
        assert values <= {VALUE[label], 0.0} and VALUE[label] in values


def test_a_photo_is_held_over_the_composite_span_and_compose_is_seeded() -> None:
    clips, labels, groups = _examples()
    made, _ = compose(clips, labels, groups, CARRIERS, 100, seed=3)
    with_text = [c for c in made if {"text", "video"} <= set(c.present())]
    assert with_text and all(c.video.end[0] == max(c.modality(m).end.max() for m in c.present()) for c in with_text)
    again, _ = compose(clips, labels, groups, CARRIERS, 100, seed=3)
    assert [c.clip.source for c in made] == [c.clip.source for c in again]


def test_clear_words_decide_over_senses_that_contradict_them() -> None:
    clips, labels, groups = _examples()
    made, made_labels = compose(clips, labels, groups, CARRIERS, 300, seed=1, words_decide=1.0)
    contradicted = 0
    for clip, label in zip(made, made_labels):
        present = clip.present()
        if "text" not in present or label == "neutral":
            continue
        assert float(clip.text.values[0, 0]) == VALUE[label]
        contradicted += any(float(clip.modality(m).values[0, 0]) == -VALUE[label] for m in present)
    assert contradicted > 30
    default, default_labels = compose(clips, labels, groups, CARRIERS, 300, seed=1)
    agree = [all(float(c.modality(m).values[0, 0]) in {VALUE[y], 0.0} for m in c.present())
             for c, y in zip(default, default_labels)]
    assert not all(agree) and sum(agree) > len(agree) / 2  # the default mixes both kinds
