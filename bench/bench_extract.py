"""Dataset building speed: transcript-only rows/s, audio clips/s, photos/s, resume and load times.

Run ``python -m bench.bench_extract [--rows N] [--clips N] [--photos N] [--load-examples N]``.
Everything is read in place from ``/work/shared/data`` (or ``$SGDTAM_DATA``)
and written to a temporary folder, never the repository:

- **text**: the first ``--rows`` MELD train utterances (``meld/train_sent_emo.csv``)
  through ``build_dataset`` with an empty feature cache. Printed: rows/s after a
  one-row warm-up build (target: at least 60) and end to end (the warm-up included);
  then a rerun into the same folder (everything reused) and a build into a new
  folder from the now warm cache.
- **audio**: ``--clips`` RAVDESS ``Actor_01/*.flac`` files (speech recognition,
  acoustic features, the video probe), models warmed on another file first: clips/s.
- **photos**: ``--photos`` FER2013 ``train/*/*.png``: photos/s, or a note when the
  pipeline does not read still images.
- **load**: ``dataset.json`` plus every example of a ``--load-examples`` dataset
  (the text dataset's files hard-linked over and over, so no extra disk): seconds.

``OMP_WAIT_POLICY`` defaults to ``PASSIVE`` here as in every ``sgdtam-pipe`` command. The machine's
load average is printed beside the figures: wall time suffers from
other work on a shared machine. Figures go to ``bench/results/extract.json``.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from sgdtam_pipe.core.threads import let_idle_threads_sleep

let_idle_threads_sleep()  # as every sgdtam-pipe command does

from sgdtam_pipe.core.records_io import atomic_write_json
from sgdtam_pipe.extractors.text.embedding import bundled_encoder, load_encoder
from sgdtam_pipe.pipeline import corpora
from sgdtam_pipe.pipeline.analyze import AnalyzeOptions
from sgdtam_pipe.pipeline.dataset import build_dataset, example_path, load_dataset, load_example

DATA = Path(os.environ.get("SGDTAM_DATA", "/work/shared/data"))
RESULTS = Path(__file__).resolve().parent / "results" / "extract.json"
TARGET_ROWS_PER_S = 60.0


def quiet(step: str, info: Any) -> None:
    """No progress: the bench prints its own figures."""


def write_labels(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["clip", "label", "split", "group"])
        writer.writerows(rows)
    return path


def timed_build(labels: Path, out: Path, cache: Path, media_root: Path | None = None) -> tuple[float, dict]:
    started = time.perf_counter()
    summary = build_dataset(labels, out, AnalyzeOptions(cache_dir=cache), media_root=media_root, hook=quiet)
    return time.perf_counter() - started, summary


def bench_text(work: Path, rows: int) -> dict[str, Any]:
    items = list(itertools.islice(corpora.meld_items(DATA / "meld"), rows))
    labels = work / "meld.csv"
    corpora.write_labels(items, labels)
    started = time.perf_counter()
    load_encoder(bundled_encoder())
    corpora.write_labels(items[:1], work / "warm.csv")
    timed_build(work / "warm.csv", work / "warm", work / "warm-cache")  # imports and first forward pass
    load_s = time.perf_counter() - started
    seconds, summary = timed_build(labels, work / "meld", work / "cache")
    rerun_s, rerun = timed_build(labels, work / "meld", work / "cache")
    warm_s, warm = timed_build(labels, work / "meld-again", work / "cache")
    return {"rows": len(items), "examples": summary["examples"], "startup_s": load_s, "build_s": seconds,
            "rows_per_s": len(items) / seconds, "rows_per_s_with_load": len(items) / (seconds + load_s),
            "rerun_s": rerun_s, "rerun_reused": rerun["reused"], "warm_cache_s": warm_s,
            "warm_cache_hits": warm["cached"]}


def bench_media(work: Path, name: str, files: list[Path], root: Path, label: str) -> dict[str, Any]:
    """Clips/s over ``files[1:]`` after a warm-up build on ``files[0]``."""
    rel = [str(f.relative_to(root)) for f in files]
    timed_build(write_labels(work / f"{name}-warm.csv", [[rel[0], label, "train", name]]),
                work / f"{name}-warm", work / f"{name}-warm-cache", root)
    labels = write_labels(work / f"{name}.csv", [[r, label, "train", name] for r in rel[1:]])
    seconds, summary = timed_build(labels, work / name, work / f"{name}-cache", root)
    present = [m for e in load_dataset(work / name)["examples"] for m in e["present"]]
    return {"files": len(rel) - 1, "examples": summary["examples"], "failed": summary["failed"],
            "present": {m: present.count(m) for m in ("text", "audio", "video")},
            "seconds": seconds, "per_s": (len(rel) - 1) / seconds,
            "first_failure": summary["failures"][0]["reason"] if summary["failures"] else None}


def bench_load(work: Path, count: int) -> dict[str, Any]:
    """Load a ``count``-example dataset made of hard links to the text dataset's files."""
    source = load_dataset(work / "meld")["examples"]
    folder = work / "load"
    (folder / "examples").mkdir(parents=True)
    examples = []
    for k, example in zip(range(count), itertools.cycle(source)):
        entry = dict(example, id=f"{k:016x}", line=k + 2)
        os.link(example_path(work / "meld", example["id"]), example_path(folder, entry["id"]))
        examples.append(entry)
    data = dict(load_dataset(work / "meld"), examples=examples, failures=[], warnings=[])
    atomic_write_json(folder / "dataset.json", data)
    started = time.perf_counter()
    clips = [load_example(folder, e) for e in load_dataset(folder)["examples"]]
    seconds = time.perf_counter() - started
    return {"examples": len(clips), "seconds": seconds, "examples_per_s": len(clips) / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000, help="MELD rows (transcript-only)")
    parser.add_argument("--clips", type=int, default=20, help="RAVDESS audio files timed")
    parser.add_argument("--photos", type=int, default=20, help="FER2013 photos timed")
    parser.add_argument("--load-examples", type=int, default=13000, help="examples in the load test")
    args = parser.parse_args()
    results: dict[str, Any] = {"load_average_before": os.getloadavg(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-extract-") as tmp:
        work = Path(tmp)
        results["text"] = text = bench_text(work, args.rows)
        print(f"text: {text['rows']} MELD rows in {text['build_s']:.1f} s = {text['rows_per_s']:.1f} rows/s "
              f"(target {TARGET_ROWS_PER_S:g}; {text['rows_per_s_with_load']:.1f} with the "
              f"{text['startup_s']:.1f} s start-up: imports, encoder load, first batch); rerun {text['rerun_s']:.2f} s "
              f"({text['rerun_reused']} reused); new folder from the cache {text['warm_cache_s']:.1f} s")
        flacs = sorted((DATA / "ravdess" / "Actor_01").glob("*.flac"))[:args.clips + 1]
        results["audio"] = audio = bench_media(work, "ravdess", flacs, DATA / "ravdess", "neutral")
        print(f"audio: {audio['files']} RAVDESS .flac in {audio['seconds']:.1f} s = {audio['per_s']:.2f} clips/s "
              f"({audio['failed']} failed; modalities present {audio['present']})")
        photos = sorted((DATA / "fer2013" / "train").glob("*/*.png"))[:args.photos + 1]
        results["photos"] = photo = bench_media(work, "fer2013", photos, DATA / "fer2013", "neutral")
        if photo["examples"]:
            print(f"photos: {photo['files']} FER2013 .png in {photo['seconds']:.1f} s = {photo['per_s']:.2f} "
                  f"photos/s ({photo['failed']} failed; modalities present {photo['present']})")
        else:
            print(f"photos: skipped, the pipeline does not read still images yet ({photo['first_failure']})")
        results["load"] = load = bench_load(work, args.load_examples)
        print(f"load: {load['examples']} examples in {load['seconds']:.1f} s = {load['examples_per_s']:.0f}/s")
    results["load_average_after"] = os.getloadavg()
    print(f"load average before {results['load_average_before']}, after {results['load_average_after']}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
