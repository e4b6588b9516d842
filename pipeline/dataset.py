"""Training datasets from a labels CSV (:mod:`pipeline.labels_csv`): clips through the cache, or transcripts alone.

A dataset is a folder (format 2; the README's "Dataset folder format"):
``examples/<id>.npz``, one clip file per example
(:func:`core.records_io.save_clip_file`), each written atomically as
soon as its example is done; and ``dataset.json`` (label spec, settings,
examples, failures, warnings), written last and atomically, and removed
when a build starts, so a folder with it is complete.

Resumable: an example's id hashes its input (clip path, size and mtime, or
text; span; occurrence) and the identities of the extractors that make it,
so a rerun keeps every file whose id is still wanted and computes only the
rest; files no longer wanted are removed before ``dataset.json`` is written.
Changing labels, splits or groups recomputes nothing.

Transcript-only rows are embedded ``batch_rows`` at a time and go through
the feature cache like media rows, keyed by the content hash of their text
and span. A transcript-only row's word times are spread over its span (or
``WORD_SECONDS`` a word) and flagged estimated. A media row's segment that
ends past the clip is cut at the clip's end, with a warning; one that starts
at or after the clip's end is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from filelock import FileLock, Timeout

from sgdtam_pipe.core.errors import UserError
from sgdtam_pipe.core.hooks import Hook
from sgdtam_pipe.core.media import MediaError
from sgdtam_pipe.core.records_io import (
    atomic_write_json,
    clip_file_extra,
    load_clip,
    load_clip_file,
    save_clip_file,
)
from sgdtam_pipe.core.timeline import ClipFeatures, ClipInfo, ContractError, MissingModality
from sgdtam_pipe.extractors.base import Extractor, create_extractor
from sgdtam_pipe.pipeline.errors import StageError
from sgdtam_pipe.pipeline.labels_csv import LabelRow, Labels, RowNote, label_spec_for, read_labels, refuse_out_of_range

DATASET_FORMAT = 2
READABLE_FORMATS = (1, 2)  # format 1: examples/<id>/ folders (core.records_io.save_clip)
EXAMPLES = "examples"
BATCH_ROWS = 64
WORD_SECONDS = 0.3
"""Spoken length assumed per word for a transcript-only row without ``start``/``end``."""
END_SLACK = 0.05
"""Seconds a segment may end past its clip before it is worth a warning (container rounding)."""


@dataclass
class _Build:
    """One run of :func:`build_dataset`: where it writes, what it found, what it counts."""

    out_dir: Path
    media_root: Path
    options: Any
    hook: Hook | None
    total: int
    cache: Any = None
    extractors: dict[str, Extractor] | None = None
    text_extractor: Extractor = field(default_factory=lambda: create_extractor("text"))
    entries: dict[int, dict[str, Any]] = field(default_factory=dict)  # line -> dataset.json example
    failures: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[RowNote] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"reused": 0, "cached": 0, "computed": 0})

    def progress(self) -> None:
        if self.hook:
            self.hook("extract", {"done": len(self.entries) + len(self.failures), "total": self.total,
                                  "unit": "rows"})

    def fail(self, row: LabelRow, reason: str) -> None:
        self.failures.append({"line": row.line, "source": row.source(), "reason": reason})

    def keep(self, row: LabelRow, example_id: str, extra: dict[str, Any]) -> None:
        self.entries[row.line] = {"id": example_id, "line": row.line, "split": row.split, "label": row.label,
                                  "group": row.group, "source": row.clip or "text", "start": row.start,
                                  "end": row.end, "present": extra["present"]}
        self.warnings += [RowNote(row.line, w) for w in extra["warnings"]]

    def write(self, row: LabelRow, example_id: str, features: ClipFeatures, warnings: list[str]) -> None:
        extra = {"present": list(features.present()), "warnings": warnings}
        save_clip_file(example_path(self.out_dir, example_id), features, extra)
        self.keep(row, example_id, extra)


def build_dataset(labels_csv: str | Path, out_dir: str | Path, options, *, media_root: str | Path | None = None,
                  hook: Hook | None = None, batch_rows: int = BATCH_ROWS) -> dict[str, Any]:
    """Write (or finish) a dataset folder from ``labels_csv``; returns a summary.

    The summary counts examples, failed rows, warnings, splits and groups,
    and how examples were got: ``reused`` (already in the folder), ``cached``
    (from the feature cache), ``computed``; ``failures`` and ``warnings``
    list each with its line and reason. A row that cannot be used is
    recorded and skipped; raises ``UserError`` for an unreadable CSV or an
    output folder that is not a dataset or is being written by another run.
    """
    from sgdtam_pipe.pipeline.cache import FeatureCache
    from sgdtam_pipe.pipeline.features import build_extractors

    started = time.perf_counter()
    labels_csv, out_dir = Path(labels_csv), Path(out_dir)
    media_root = Path(media_root) if media_root is not None else labels_csv.parent
    labels = read_labels(labels_csv)
    spec = label_spec_for([r.label for r in labels.rows])
    refuse_out_of_range(labels, spec)
    with _writing(out_dir):
        build = _Build(out_dir, media_root, options, hook, len(labels.rows) + len(labels.refused),
                       cache=FeatureCache(options.cache_dir) if options.use_cache else None)
        if any(r.clip for r in labels.rows):
            build.extractors = build_extractors(options.settings())
        for note in labels.refused:
            build.failures.append({"line": note.line, "source": None, "reason": note.reason})
        wanted = _ids(labels.rows, build)
        pending = _reuse(build, labels.rows, wanted)
        build.progress()
        _text_rows(build, [(r, wanted[r.line]) for r in pending if r.text is not None], batch_rows)
        _media_rows(build, [(r, wanted[r.line]) for r in pending if r.clip is not None])
        _remove_unwanted(out_dir, set(wanted.values()))
        summary = _finish(build, labels, labels_csv, spec)
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary


def _finish(build: _Build, labels: Labels, labels_csv: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Write ``dataset.json`` and return the summary."""
    examples = [build.entries[r.line] for r in labels.rows if r.line in build.entries]
    failures = sorted(build.failures, key=lambda f: f["line"])
    warnings = [w.to_json() for w in sorted(labels.warnings + build.warnings, key=lambda w: w.line)]
    settings = build.options.settings()
    atomic_write_json(build.out_dir / "dataset.json", {
        "format": DATASET_FORMAT, "labels_csv": str(labels_csv), "label": spec,
        "settings": {"audio_backend": settings.audio_backend, "fps": settings.fps,
                     "face_output": settings.face_output},
        "examples": examples, "failures": failures, "warnings": warnings,
    })
    return {"dataset": str(build.out_dir), "examples": len(examples), "failed": len(failures),
            "warnings": warnings, "failures": failures, "splits": _count(e["split"] for e in examples),
            "groups": _count(e["group"] for e in examples), "label": spec, **build.counts}


def _count(values: Iterator[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


# --- ids and resuming -----------------------------------------------------------------

def _ids(rows: list[LabelRow], build: _Build) -> dict[int, str]:
    """line -> example id (see the module docstring)."""
    text_key = f"{build.text_extractor.identity().key()}|{WORD_SECONDS}"
    media_key = "|".join(e.identity().key() for e in (build.extractors or {}).values())
    occurrences: dict[tuple[Any, ...], int] = {}
    ids = {}
    for row in rows:
        seen = occurrences[row.input_key()] = occurrences.get(row.input_key(), -1) + 1
        source = f"text|{row.text}|{text_key}" if row.text is not None else \
            f"clip|{row.clip}|{_stat(build.media_root / row.clip)}|{media_key}"
        key = f"{source}|{row.start}|{row.end}|{seen}"
        ids[row.line] = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return ids


def _stat(path: Path) -> str:
    try:
        info = path.stat()
    except OSError:
        return "unreadable"
    return f"{info.st_size}:{info.st_mtime_ns}"


def _reuse(build: _Build, rows: list[LabelRow], wanted: dict[int, str]) -> list[LabelRow]:
    """Take the examples already in the folder; returns the rows still to do."""
    folder = build.out_dir / EXAMPLES
    present = {p.name for p in os.scandir(folder)} if folder.is_dir() else set()
    pending = []
    for row in rows:
        example_id = wanted[row.line]
        extra = _readable_extra(build.out_dir, example_id) if f"{example_id}.npz" in present else None
        if extra is None:
            pending.append(row)
            continue
        build.keep(row, example_id, extra)
        build.counts["reused"] += 1
    return pending


def _readable_extra(out_dir: Path, example_id: str) -> dict[str, Any] | None:
    try:
        extra = clip_file_extra(example_path(out_dir, example_id))
    except ContractError:
        return None  # damaged: recompute it
    return extra if {"present", "warnings"} <= set(extra) else None


def _remove_unwanted(out_dir: Path, wanted: set[str]) -> None:
    """Remove example files of rows no longer in the CSV (or of old settings) and leftovers of killed writes."""
    folder = out_dir / EXAMPLES
    for entry in os.scandir(folder) if folder.is_dir() else ():
        if entry.name.endswith(".npz") and entry.name[:-4] in wanted:
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)  # a format-1 example folder
        else:
            os.unlink(entry.path)


@contextlib.contextmanager
def _writing(out_dir: Path) -> Iterator[None]:
    """Hold the folder for one build: refuse a folder that is not a dataset, or one another build holds."""
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (
            (out_dir / "dataset.json").exists() or (out_dir / EXAMPLES).is_dir()):
        raise UserError(f"{out_dir}: not empty and not a dataset folder; give a new or empty --out folder")
    (out_dir / EXAMPLES).mkdir(parents=True, exist_ok=True)
    lock = FileLock(out_dir / ".extract.lock", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise UserError(f"{out_dir}: another extract is writing this dataset") from None
    try:
        (out_dir / "dataset.json").unlink(missing_ok=True)  # from here until the end the folder is unfinished
        yield
    finally:
        lock.release()


# --- transcript-only rows ---------------------------------------------------------------

def text_span(text: str, start: float | None, end: float | None) -> tuple[float, float]:
    """The span a transcript-only row's words are spread over."""
    start = 0.0 if start is None else start
    return start, start + WORD_SECONDS * max(1, len(text.split())) if end is None else end


def _transcript(row: LabelRow, extractor: Extractor):
    from sgdtam_pipe.extractors.text.transcript import make_transcript, words_from_text

    words = words_from_text(row.text, *text_span(row.text, row.start, row.end))
    return make_transcript(words, "dataset:text", pause=extractor.config.pause)


def _text_sha(row: LabelRow) -> str:
    """The cache key of a transcript-only row: its text and span."""
    return hashlib.sha256(f"text-row|{WORD_SECONDS}|{row.text}|{row.start}|{row.end}".encode("utf-8")).hexdigest()


def _text_rows(build: _Build, todo: list[tuple[LabelRow, str]], batch_rows: int) -> None:
    """Embed the rows ``batch_rows`` at a time (cache hits skip the encoder).

    A batch is written (cache entries, then example files) by a writer thread
    while the next one is encoded, so the fsyncs overlap the encoder; at most
    one batch waits to be written.
    """
    identity = build.text_extractor.identity()
    with ThreadPoolExecutor(1, thread_name_prefix="dataset-writer") as writer:
        writing: Future | None = None
        for begin in range(0, len(todo), batch_rows):
            batch = todo[begin:begin + batch_rows]
            found = {row.line: build.cache.get(_text_sha(row), identity) if build.cache else None
                     for row, _ in batch}
            misses = [row for row, _ in batch if found[row.line] is None]
            transcripts = [_transcript(row, build.text_extractor) for row in misses]
            computed = dict(zip((row.line for row in misses), build.text_extractor.embed_many(transcripts)))
            if writing is not None:
                writing.result()  # raises the writer's error, if any
            writing = writer.submit(_write_text_batch, build, batch, {**found, **computed}, misses)
        if writing is not None:
            writing.result()


def _write_text_batch(build: _Build, batch: list[tuple[LabelRow, str]], results: dict[int, Any],
                      misses: list[LabelRow]) -> None:
    identity = build.text_extractor.identity()
    for row in misses if build.cache else ():
        build.cache.put(_text_sha(row), identity, results[row.line])
    for row, example_id in batch:
        build.write(row, example_id, _text_clip(row, results[row.line]), [])
    build.counts["computed"] += len(misses)
    build.counts["cached"] += len(batch) - len(misses)
    build.progress()


def _text_clip(row: LabelRow, text) -> ClipFeatures:
    reason = "transcript-only example: no media"
    _, end = text_span(row.text, row.start, row.end)
    info = ClipInfo(hashlib.sha256(row.text.encode("utf-8")).hexdigest(), end, "text")
    return ClipFeatures(info, text, MissingModality(reason), MissingModality(reason))


# --- media rows -------------------------------------------------------------------------

def _media_rows(build: _Build, todo: list[tuple[LabelRow, str]]) -> None:
    """Extract each clip with the one set of extractors; a clip that cannot be used is a failure."""
    for row, example_id in todo:
        try:
            features, warnings, cached = _clip_features(row, build)
        except (MediaError, StageError, UserError) as exc:
            build.fail(row, str(exc))
        else:
            build.write(row, example_id, features, warnings)
            build.counts["cached" if cached else "computed"] += 1
        build.progress()


def _clip_features(row: LabelRow, build: _Build) -> tuple[ClipFeatures, list[str], bool]:
    """``(features, warnings, all from cache)``; the row's segment cut out and checked against the clip."""
    from sgdtam_pipe.pipeline.features import extract_clip

    extracted = extract_clip(build.media_root / row.clip, build.options.settings(), cache=build.cache,
                             extractors=build.extractors, hook=_heartbeat(build, row))
    features, duration, warnings = extracted.features, extracted.info.duration, []
    if row.start is not None and duration and row.start >= duration:
        raise UserError(f"segment starts at {row.start:g} s, at or after the clip's end ({duration:g} s)")
    if row.end is not None and duration and row.end > duration + END_SLACK:
        warnings.append(f"segment ends at {row.end:g} s, past the clip's end ({duration:g} s): cut there")
    if row.start is not None or row.end is not None:
        features = features.crop(row.start or 0.0, row.end if row.end is not None else float("inf"))
    return features, warnings, all(c for c in extracted.cached.values() if c is not None)


def _heartbeat(build: _Build, row: LabelRow) -> Hook | None:
    """A hook that turns a clip's own progress into messages on the rows' progress (lines during long clips)."""
    if build.hook is None:
        return None
    hook = build.hook

    def beat(step: str, info: Any) -> None:
        done, total = info.get("done"), info.get("total")
        counts = f" {done}/{total} {info.get('unit', '')}".rstrip() if done is not None and total else ""
        hook("extract", {"unit": "rows", "message": f"line {row.line}: {step}{counts}"})

    return beat


# --- reading ----------------------------------------------------------------------------

def example_path(folder: str | Path, example_id: str) -> Path:
    return Path(folder) / EXAMPLES / f"{example_id}.npz"


def load_dataset(folder: str | Path) -> dict[str, Any]:
    """``dataset.json`` of a finished dataset (format 1 or 2)."""
    path = Path(folder) / "dataset.json"
    if not path.exists():
        unfinished = (Path(folder) / EXAMPLES).is_dir()
        raise FileNotFoundError(f"{folder}: " + ("an unfinished dataset (run the same 'sgdtam-pipe extract' "
                                                 "again to finish it)" if unfinished else
                                                 "not a dataset (no dataset.json; build one with "
                                                 "'sgdtam-pipe extract')"))
    data = json.loads(path.read_text("utf-8"))
    if data.get("format") not in READABLE_FORMATS:
        raise UserError(f"{path}: unsupported dataset format {data.get('format')!r}")
    return data


def load_example(folder: str | Path, example: dict[str, Any]) -> ClipFeatures:
    """The clip record of one ``dataset.json`` example."""
    path = example_path(folder, example["id"])
    legacy = path.with_suffix("")
    return load_clip(legacy) if not path.exists() and legacy.is_dir() else load_clip_file(path)


def iter_split(folder: str | Path, split: str) -> Iterator[tuple[ClipFeatures, str]]:
    """(clip record, label) for every example of ``split``."""
    folder = Path(folder)
    for example in load_dataset(folder)["examples"]:
        if example["split"] == split:
            yield load_example(folder, example), example["label"]
