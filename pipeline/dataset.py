"""Training datasets from a labels CSV: clips through the feature cache, or transcripts alone.

Labels CSV columns: ``clip`` (a media path, relative to the media root) *or*
``text`` (an utterance without media); ``label`` (a number for regression in
[-3, 3], or a class name); optional ``split`` (default ``train``); optional
``start`` and ``end`` in seconds (a segment of a longer video, or the span of
a transcript-only utterance, whose word times are then spread over it and
flagged estimated).

A dataset is a folder: ``dataset.json`` (label spec, examples with split and
label, failures with their reason) and ``examples/<id>/`` clip records
(:mod:`extractors.records_io`). ``dataset.json`` is written last and
atomically, so an interrupted build leaves no dataset that looks complete.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from sgdtam_pipe.extractors.base import Hook, create_extractor
from sgdtam_pipe.extractors.media import MediaError
from sgdtam_pipe.extractors.records_io import atomic_write_json, load_clip, save_clip
from sgdtam_pipe.extractors.timeline import ClipFeatures, ClipInfo, MissingModality
from sgdtam_pipe.pipeline.errors import StageError

DATASET_FORMAT = 1
SENTIMENT_ORDER = ("negative", "neutral", "positive")
WORD_SECONDS = 0.3
"""Spoken length assumed per word for a transcript-only row without ``start``/``end``."""


@dataclass(frozen=True)
class LabelRow:
    line: int
    clip: str | None
    text: str | None
    label: str
    split: str
    start: float | None
    end: float | None


def _float_or_none(value: str | None, what: str, csv_path: Path, line: int) -> float | None:
    if value is None or value.strip() == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{csv_path}, line {line}: {what} {value!r} is not a number") from None


def read_labels(csv_path: Path) -> list[LabelRow]:
    """Parse and check the labels CSV; errors name the file and the line."""
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or ())
        if "label" not in columns or not columns & {"clip", "text"}:
            raise ValueError(f"{csv_path}: needs a 'label' column and a 'clip' or 'text' column, has {sorted(columns)}")
        rows = []
        for line, raw in enumerate(reader, start=2):
            clip, text = (raw.get("clip") or "").strip() or None, (raw.get("text") or "").strip() or None
            if (clip is None) == (text is None):
                raise ValueError(f"{csv_path}, line {line}: give exactly one of 'clip' and 'text'")
            label = (raw.get("label") or "").strip()
            if not label:
                raise ValueError(f"{csv_path}, line {line}: empty label")
            start = _float_or_none(raw.get("start"), "start", csv_path, line)
            end = _float_or_none(raw.get("end"), "end", csv_path, line)
            if start is not None and end is not None and not end > start:
                raise ValueError(f"{csv_path}, line {line}: end {end} is not after start {start}")
            rows.append(LabelRow(line, clip, text, label, (raw.get("split") or "train").strip(), start, end))
    if not rows:
        raise ValueError(f"{csv_path}: no labelled rows")
    return rows


def label_spec_for(labels: list[str]) -> dict[str, Any]:
    """Regression when every label is a number, else classification (sentiment names in their order)."""
    try:
        values = [float(x) for x in labels]
    except ValueError:
        classes = sorted(set(labels))
        if set(classes) <= set(SENTIMENT_ORDER):
            classes = [c for c in SENTIMENT_ORDER if c in classes]
        return {"kind": "classification", "classes": classes}
    if any(abs(v) > 3 for v in values):
        raise ValueError("regression labels must lie in [-3, 3]")
    return {"kind": "regression", "classes": []}


def _example_id(row: LabelRow) -> str:
    key = f"{row.clip or ''}|{row.text or ''}|{row.start}|{row.end}|{row.line}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def text_only_features(text: str, start: float | None, end: float | None, extractor) -> ClipFeatures:
    """A clip record from an utterance alone: words spread over its span, audio and video missing."""
    from sgdtam_pipe.extractors.transcript import make_transcript, words_from_text

    start = 0.0 if start is None else start
    end = start + WORD_SECONDS * max(1, len(text.split())) if end is None else end
    words = words_from_text(text, start, end)
    transcript = make_transcript(words, "dataset:text", pause=extractor.config.pause)
    reason = "transcript-only example: no media"
    info = ClipInfo(hashlib.sha256(text.encode("utf-8")).hexdigest(), end, "text")
    return ClipFeatures(info, extractor.embed(transcript), MissingModality(reason), MissingModality(reason))


def _clip_features(row: LabelRow, media_root: Path, options, cache, extractors) -> ClipFeatures:
    from sgdtam_pipe.pipeline.analyze import crop_clip
    from sgdtam_pipe.pipeline.features import extract_clip

    extracted = extract_clip(media_root / row.clip, options.settings(), cache=cache, extractors=extractors)
    features = extracted.features
    if row.start is not None or row.end is not None:
        features = crop_clip(features, row.start or 0.0, row.end if row.end is not None else float("inf"))
    return features


def build_dataset(labels_csv: str | Path, out_dir: str | Path, options, *, media_root: str | Path | None = None,
                  hook: Hook | None = None) -> dict[str, Any]:
    """Write a dataset folder from ``labels_csv``; returns a summary of counts.

    A row whose clip cannot be used is recorded with its reason and skipped.
    """
    from sgdtam_pipe.pipeline.cache import FeatureCache
    from sgdtam_pipe.pipeline.features import build_extractors

    labels_csv, out_dir = Path(labels_csv), Path(out_dir)
    media_root = Path(media_root) if media_root is not None else labels_csv.parent
    rows = read_labels(labels_csv)
    spec = label_spec_for([r.label for r in rows])
    cache = FeatureCache(options.cache_dir) if options.use_cache else None
    extractors = build_extractors(options.settings()) if any(r.clip for r in rows) else None
    text_extractor = extractors["text"] if extractors else create_extractor("text")
    examples, failures = [], []
    for done, row in enumerate(rows, start=1):
        if hook:
            hook("extract", {"done": done, "total": len(rows)})
        try:
            features = (text_only_features(row.text, row.start, row.end, text_extractor) if row.text is not None
                        else _clip_features(row, media_root, options, cache, extractors))
        except (MediaError, StageError) as exc:
            failures.append({"line": row.line, "clip": row.clip, "reason": str(exc)})
            continue
        example_id = _example_id(row)
        save_clip(out_dir / "examples" / example_id, features)
        examples.append({"id": example_id, "line": row.line, "split": row.split, "label": row.label,
                         "source": row.clip or "text", "start": row.start, "end": row.end,
                         "present": list(features.present())})
    settings = options.settings()
    atomic_write_json(out_dir / "dataset.json", {
        "format": DATASET_FORMAT, "labels_csv": str(labels_csv), "label": spec,
        "settings": {"audio_backend": settings.audio_backend, "fps": settings.fps,
                     "face_output": settings.face_output},
        "examples": examples, "failures": failures,
    })
    splits: dict[str, int] = {}
    for example in examples:
        splits[example["split"]] = splits.get(example["split"], 0) + 1
    return {"examples": len(examples), "failed": len(failures), "splits": splits, "label": spec}


def load_dataset(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / "dataset.json"
    if not path.exists():
        raise FileNotFoundError(f"{folder}: not a dataset (no dataset.json; build one with 'sgdtam-pipe extract')")
    data = json.loads(path.read_text("utf-8"))
    if data.get("format") != DATASET_FORMAT:
        raise ValueError(f"{path}: unsupported dataset format {data.get('format')!r}")
    return data


def iter_split(folder: str | Path, split: str) -> Iterator[tuple[ClipFeatures, str]]:
    """(clip record, label) for every example of ``split``."""
    folder = Path(folder)
    for example in load_dataset(folder)["examples"]:
        if example["split"] == split:
            yield load_clip(folder / "examples" / example["id"]), example["label"]
