"""Dataset folders from public feature sets: CMU-MultimodalSDK ``.csd`` files and MMSA feature pickles.

The loaders in :mod:`model.datasets` give clip records; this module writes them
in the dataset folder format that ``train`` and ``evaluate`` read (see
:mod:`pipeline.dataset`): one ``examples/<id>.npz`` per example, then
``dataset.json`` last and atomically, so an interrupted import never looks
complete. ``.csd`` rows keep their real intervals; MMSA rows have none and are
spread evenly (``times_synthetic``). A modality the source lacks stays missing,
and training on such a dataset runs no extractor for it.

CMU-SDK files carry no split: ``folds`` maps split names to the video ids in
each (the SDK's standard folds are such lists). MMSA pickles carry
``train``/``valid``/``test`` and keep those names.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from sgdtam_pipe.extractors.errors import UserError
from sgdtam_pipe.extractors.records_io import atomic_write_json, save_clip_file
from sgdtam_pipe.extractors.timeline import ClipFeatures
from sgdtam_pipe.pipeline.dataset import DATASET_FORMAT, example_path

MMSA_SPLITS = ("train", "valid", "test")
Split = tuple[list[ClipFeatures], list[float]]


def csd_splits(clips: Sequence[ClipFeatures], labels: Sequence[float], folds: Mapping[str, Sequence[str]],
               where: str) -> dict[str, Split]:
    """Clips grouped by the split whose video ids hold them; a segment of no split is an error."""
    split_of = {str(vid): name for name, vids in folds.items() for vid in vids}
    out: dict[str, Split] = {name: ([], []) for name in folds}
    for clip, label in zip(clips, labels):
        vid = clip.clip.source.rpartition("#")[2].rpartition("[")[0]
        if vid not in split_of:
            raise UserError(f"{where}: video {vid!r} is in no split of the folds file")
        out[split_of[vid]][0].append(clip)
        out[split_of[vid]][1].append(label)
    return out


def write_dataset(out_dir: str | Path, splits: Mapping[str, Split], *, group: str, source: str) -> dict[str, Any]:
    """Write ``splits`` (regression labels in [-3, 3]) as a dataset folder; returns the counts."""
    out_dir = Path(out_dir)
    (out_dir / "dataset.json").unlink(missing_ok=True)
    shutil.rmtree(out_dir / "examples", ignore_errors=True)
    examples = []
    for name, (clips, labels) in splits.items():
        for clip, label in zip(clips, labels):
            if not np.isfinite(label) or abs(label) > 3:
                raise UserError(f"{clip.clip.source}: label {label} is not a number in [-3, 3]")
            example_id = hashlib.sha256(f"{name}:{clip.clip.sha256}".encode()).hexdigest()[:16]
            save_clip_file(example_path(out_dir, example_id), clip)
            examples.append({"id": example_id, "split": name, "label": float(label), "group": group,
                             "source": clip.clip.source, "start": None, "end": None,
                             "present": list(clip.present())})
    atomic_write_json(out_dir / "dataset.json", {
        "format": DATASET_FORMAT, "labels_csv": None, "imported_from": source,
        "label": {"kind": "regression", "classes": []}, "settings": {},
        "examples": examples, "failures": [], "warnings": []})
    return {"dataset": str(out_dir), "examples": len(examples),
            "splits": {name: len(clips) for name, (clips, _) in splits.items()}}
