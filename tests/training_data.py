"""Tiny dataset folders (dataset.json + clip records) from synthetic ClipFeatures, for the training tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
from synthetic_clips import make_clip

from sgdtam_pipe.core.records_io import save_clip
from sgdtam_pipe.core.timeline import ClipFeatures, MissingModality

CLASSES = ("negative", "positive")


def synthetic_examples(seed: int, count: int, *, present: Sequence[tuple[str, ...]] = (("text", "audio", "video"),),
                       group: str | None = None) -> list[tuple[ClipFeatures, str, str | None]]:
    """(clip, class, group): the class is the sign of a shift in every modality's values."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        positive = bool(i % 2)
        clip = make_clip(rng, present=present[i % len(present)], signal=0.5 if positive else -0.5,
                         duration=float(rng.uniform(1.0, 2.0)), name=f"s{seed}-{i}")
        out.append((clip, CLASSES[positive], group))
    return out


def write_dataset(folder: Path, splits: dict[str, list[tuple[ClipFeatures, str, str | None]]], *,
                  kind: str = "classification") -> Path:
    """A dataset folder as ``extract`` writes it; labels CSV lines are numbered from 2 in split order."""
    examples, line = [], 2
    for split, rows in splits.items():
        for k, (clip, label, group) in enumerate(rows):
            example_id = f"{split}-{k:03d}"
            save_clip(folder / "examples" / example_id, clip)
            entry = {"id": example_id, "line": line, "split": split, "label": label, "source": clip.clip.source,
                     "present": list(clip.present())}
            if group is not None:
                entry["group"] = group
            examples.append(entry)
            line += 1
    label = {"kind": kind, "classes": list(CLASSES) if kind == "classification" else []}
    (folder / "dataset.json").write_text(json.dumps({
        "format": 1, "labels_csv": str(folder / "labels.csv"), "label": label, "settings": {},
        "examples": examples, "failures": []}), "utf-8")
    return folder


def text_only(clip: ClipFeatures) -> ClipFeatures:
    reason = MissingModality("transcript-only example: no media")
    return ClipFeatures(clip.clip, clip.text, reason, reason)
