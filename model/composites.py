"""Composite training examples: real streams from different single-source examples, put side by side.

No labelled corpus reachable here holds text, voice and face of one speaker
together, so without help the fusion head never sees two informative senses
at once, and at analysis time (a talking head: L, A and V all observed) the
voice and face can drown the words. Composites give it that experience:

- Each source group names the one modality whose evidence its label is (its
  *carrier*: MELD → text, RAVDESS → audio, FER2013 → video). Only that stream
  of an example is ever used (a RAVDESS clip's neutral sentence is not).
- A composite takes a label ``y`` and a pattern of two or three modalities
  (LA, LV, AV or LAV, equally likely). One modality, chosen at random, is
  drawn from examples labelled ``y``; each other one from examples labelled
  ``y`` or ``neutral`` (even odds). So the label is the non-neutral evidence,
  and senses never contradict each other (no positive voice with a negative
  sentence): the head learns to add evidence, and that a neutral voice or face
  must not cancel clear words.
- But words decide where they are clear: in a share ``words_decide`` of the
  composites that hold text under a non-neutral label, the text is drawn
  from that label and every other sense from any label, contradicting
  included. Without these, a face the expression network reads as sad (the
  GRID speaker's, 0.69 on the four negative expressions while he reads a
  neutral sentence) turned four of five positive sidecars negative; the issue
  asks that, with speech present, the words are not drowned.
- Times: each stream keeps its own measured times; a still photo's single row
  is held over the composite's whole span (a face seen throughout), so
  time-based alignment treats it as co-occurring with every word and frame.

Composites are training data only: the card's per-pattern validation never
counts them (LV, AV and LAV stay "not validated on real data").
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any, Mapping, Sequence

import numpy as np

from sgdtam_pipe.core.timeline import MODALITIES, ClipFeatures, ClipInfo, MissingModality, TimedFeatures

PATTERNS = (("text", "audio"), ("text", "video"), ("audio", "video"), ("text", "audio", "video"))
NEUTRAL = "neutral"
GROUP = "composite"
WORDS_DECIDE = 0.5


def compose(clips: Sequence[ClipFeatures], labels: Sequence[Any], groups: Sequence[str],
            carriers: Mapping[str, str], count: int, seed: int,
            words_decide: float = WORDS_DECIDE) -> tuple[list[ClipFeatures], list[Any]]:
    """``count`` composites (and their labels) from the examples of the groups named in ``carriers``.

    Deterministic for a given ``seed``, ``words_decide`` and input order.
    """
    pools = _pools(clips, labels, groups, carriers)
    rng = np.random.default_rng(seed)
    classes = sorted({label for by_label in pools.values() for label in by_label})
    made: list[ClipFeatures] = []
    made_labels: list[Any] = []
    while len(made) < count:
        label = classes[int(rng.integers(len(classes)))]
        pattern = PATTERNS[int(rng.integers(len(PATTERNS)))]
        decider = pattern[int(rng.integers(len(pattern)))]
        words_rule = "text" in pattern and label != NEUTRAL and rng.random() < words_decide
        chosen = {}
        for m in pattern:
            if words_rule:
                wanted = label if m == "text" else classes[int(rng.integers(len(classes)))]
            else:
                wanted = label if m == decider or label == NEUTRAL or rng.random() < 0.5 else NEUTRAL
            pool = pools.get(m, {}).get(wanted)
            if not pool:
                break
            chosen[m] = pool[int(rng.integers(len(pool)))]
        if len(chosen) == len(pattern):
            made.append(_assemble(clips, chosen))
            made_labels.append(label)
    return made, made_labels


def _pools(clips: Sequence[ClipFeatures], labels: Sequence[Any], groups: Sequence[str],
           carriers: Mapping[str, str]) -> dict[str, dict[Any, list[int]]]:
    """modality → label → indices of examples whose carrier is that modality and holds a measured row."""
    pools: dict[str, dict[Any, list[int]]] = {}
    for i, (clip, label, group) in enumerate(zip(clips, labels, groups)):
        modality = carriers.get(group)
        stream = clip.modality(modality) if modality else None
        if isinstance(stream, TimedFeatures) and stream.mask.any():
            pools.setdefault(modality, {}).setdefault(label, []).append(i)
    return pools


def _assemble(clips: Sequence[ClipFeatures], chosen: Mapping[str, int]) -> ClipFeatures:
    streams = {m: clips[i].modality(m) for m, i in chosen.items()}
    span = max(float(s.end.max()) for s in streams.values())
    if "video" in streams and len(streams["video"]) == 1:   # a still photo: its face held over the span
        photo = streams["video"]
        streams["video"] = replace(photo, end=np.array([max(span, float(photo.end[0]))]))
    sources = "+".join(f"{m}:{clips[i].clip.source}" for m, i in chosen.items())
    info = ClipInfo(hashlib.sha256(sources.encode("utf-8")).hexdigest(), span, f"composite {sources}")
    absent = MissingModality("not part of this composite")
    return ClipFeatures(info, **{m: streams.get(m, absent) for m in MODALITIES})
