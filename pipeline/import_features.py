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
import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from sgdtam_pipe.core.errors import UserError
from sgdtam_pipe.core.records_io import atomic_write_json, save_clip_file
from sgdtam_pipe.core.timeline import ClipFeatures
from sgdtam_pipe.pipeline.dataset import DATASET_FORMAT, _remove_unwanted, _writing, example_path

MMSA_SPLITS = ("train", "valid", "test")
Split = tuple[list[ClipFeatures], list[float]]


def read_folds(path: str | Path) -> dict[str, list[str]]:
    """A folds file: JSON ``{split name: [video ids]}``; a video in two splits is refused."""
    path = Path(path)
    try:
        folds = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path}: not a JSON folds file ({exc})") from None
    if not isinstance(folds, dict) or not folds or not all(
            isinstance(k, str) and k and isinstance(v, list) and all(isinstance(x, str) for x in v)
            for k, v in folds.items()):
        raise UserError(f'{path}: a folds file is a JSON object {{"train": ["video id", ...], "dev": [...], ...}}')
    if "train" not in folds:
        raise UserError(f"{path}: no 'train' split (its splits are {sorted(folds)})")
    seen: dict[str, str] = {}
    for name, vids in folds.items():
        for vid in vids:
            if seen.setdefault(vid, name) != name:
                raise UserError(f"{path}: video {vid!r} is in both {seen[vid]!r} and {name!r}")
    return folds


def mmsa_splits(path: str | Path, *, trusted: bool, duration: float) -> dict[str, Split]:
    """The train/valid/test splits of an MMSA pickle, unpickled once."""
    from sgdtam_pipe.model.datasets import load_mmsa, read_mmsa

    data = read_mmsa(path, trusted=trusted)
    return {name: load_mmsa(path, split=name, trusted=trusted, duration=duration, data=data)
            for name in MMSA_SPLITS}


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
    """Write ``splits`` (regression labels in [-3, 3]) as a dataset folder; returns the counts.

    Everything is checked before a file is written; ``--out`` must be new,
    empty or a dataset folder (whose old examples are replaced).
    """
    out_dir = Path(out_dir)
    todo = []
    for name, (clips, labels) in splits.items():
        for clip, label in zip(clips, labels):
            if not math.isfinite(label) or abs(label) > 3:
                raise UserError(f"{clip.clip.source}: label {label} is not a number in [-3, 3]")
            todo.append((hashlib.sha256(f"{name}:{clip.clip.sha256}".encode()).hexdigest()[:16], name, clip, label))
    ids = [t[0] for t in todo]
    if len(set(ids)) != len(ids):
        raise UserError(f"{source}: two examples of one split have the same id (duplicate segment or 'id')")
    examples = []
    with _writing(out_dir):
        for example_id, name, clip, label in todo:
            extra = {"present": list(clip.present()), "warnings": []}
            save_clip_file(example_path(out_dir, example_id), clip, extra)
            examples.append({"id": example_id, "split": name, "label": float(label), "group": group,
                             "source": clip.clip.source, "start": None, "end": None, "present": extra["present"]})
        _remove_unwanted(out_dir, set(ids))
        atomic_write_json(out_dir / "dataset.json", {
            "format": DATASET_FORMAT, "labels_csv": None, "imported_from": source,
            "label": {"kind": "regression", "classes": []}, "settings": {},
            "examples": examples, "failures": [], "warnings": []})
    return {"dataset": str(out_dir), "examples": len(examples),
            "splits": {name: len(clips) for name, (clips, _) in splits.items()}}
