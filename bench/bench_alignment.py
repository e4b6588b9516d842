"""Does SG-DTAM's time alignment need real times? A synthetic co-occurrence task.

Each clip has three streams at different rates (text: irregular word-like
rows 0.15-0.6 s long; audio: 10 rows/s; video: 6 rows/s), each starting
up to 2 s late and ending up to 2 s early, at random. Every stream holds two
"events" (a bump on feature 0 for 0.5 s). The label says whether one event
time is shared by all three streams (positive) or all event times differ
(negative): event counts are equal in both classes, so only *when* things
happen across streams decides the label.

Three otherwise identical models are trained with modality dropout (the
validation clips, which pick the best epoch, cycle through the four
patterns below so that selection weighs the missing-modality cases too):
``real`` (masks and AWM from the rows' real times), ``index`` (rows spread
evenly over the clip, as index-based methods assume) and ``none`` (no mask,
no AWM). They are evaluated with all modalities and with one missing.

    python -m bench.bench_alignment [--train 400 --epochs 20 --dropout 0.7 --seed 0]

Prints accuracies per availability pattern, forward latency per clip and
training throughput; writes bench/results/alignment.json.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from sgdtam_pipe.core.records_io import atomic_write_json
from sgdtam_pipe.core.timeline import ClipFeatures, ClipInfo, ExtractorIdentity, TimedFeatures
from sgdtam_pipe.model.config import LabelSpec, SGDTAMConfig
from sgdtam_pipe.model.metrics import evaluate, restrict
from sgdtam_pipe.model.sgdtam import SGDTAM, predict
from sgdtam_pipe.model.train import train

WIDTHS = {"text": 8, "audio": 6, "video": 5}
EVENT = 0.5             # seconds an event lasts
LATE = 2.0              # a stream starts up to this late and ends up to this early
PATTERNS = (("text", "audio", "video"), ("text", "audio"), ("text", "video"), ("audio", "video"))
LABELS = LabelSpec("classification", ("apart", "together"))


def word_grid(rng: np.random.Generator, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Word-like rows: irregular lengths and pauses between ``lo`` and ``hi``."""
    starts, ends, t = [], [], lo
    while True:
        length = rng.uniform(0.15, 0.6)
        if t + length > hi:
            break
        starts.append(t)
        ends.append(t + length)
        t += length + rng.uniform(0.0, 0.15)
    return np.array(starts), np.array(ends)


def frame_grid(lo: float, hi: float, rate: float) -> tuple[np.ndarray, np.ndarray]:
    count = int((hi - lo) * rate)
    start = lo + np.arange(count) / rate
    return start, start + 1.0 / rate


def stream(rng: np.random.Generator, modality: str, start: np.ndarray, end: np.ndarray,
           events: list[float]) -> TimedFeatures:
    values = rng.normal(0, 0.2, size=(len(start), WIDTHS[modality])).astype(np.float32)
    for t in events:
        hit = (start < t + EVENT) & (end > t)
        values[hit, 0] += 2.0
    names = tuple(f"{modality}_{i}" for i in range(WIDTHS[modality]))
    return TimedFeatures(values, start, end, np.ones(len(start), bool), names,
                         ExtractorIdentity(f"synthetic-{modality}", "1"))


def make_clip(rng: np.random.Generator, index: int) -> tuple[ClipFeatures, str]:
    duration = rng.uniform(8.0, 9.0)
    together = bool(rng.integers(2))
    slots = np.arange(LATE, duration - LATE - EVENT, 0.6)
    needed = 4 if together else 6
    chosen = rng.permutation(slots)[:needed] + rng.uniform(-0.05, 0.05, needed)
    if together:    # one shared time, plus one private event per stream
        events = {m: [chosen[0], chosen[1 + i]] for i, m in enumerate(WIDTHS)}
    else:
        events = {m: [chosen[2 * i], chosen[2 * i + 1]] for i, m in enumerate(WIDTHS)}
    spans = {m: (rng.uniform(0.0, LATE), duration - rng.uniform(0.0, LATE)) for m in WIDTHS}
    grids = {"text": word_grid(rng, *spans["text"]), "audio": frame_grid(*spans["audio"], 10.0),
             "video": frame_grid(*spans["video"], 6.0)}
    parts = {m: stream(rng, m, *grids[m], events[m]) for m in WIDTHS}
    info = ClipInfo(f"synthetic-{index}", float(duration), f"synthetic-{index}")
    return ClipFeatures(info, **parts), LABELS.classes[int(together)]


def dataset(seed: int, count: int) -> tuple[list[ClipFeatures], list[str]]:
    rng = np.random.default_rng(seed)
    pairs = [make_clip(rng, i) for i in range(count)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def latency(model: SGDTAM, clips: list[ClipFeatures]) -> float:
    """Mean seconds of ``predict`` per clip (batch size 1, eval mode)."""
    predict(model, clips[0])
    started = time.perf_counter()
    for clip in clips:
        predict(model, clip)
    return (time.perf_counter() - started) / len(clips)


def run(source: str, data: dict, args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    config = SGDTAMConfig.preset("tiny", label=LABELS, time_source=source, delta_init=(0.05, 0.5),
                                 **{f"{m}_dim": w for m, w in WIDTHS.items()})
    model = SGDTAM(config)
    started = time.perf_counter()
    history = train(model, *data["train"], *data["val"], epochs=args.epochs, lr=3e-3, batch_size=32,
                    seed=args.seed, patience=args.epochs, modality_dropout=args.dropout, verbose=False)
    seconds = time.perf_counter() - started
    epochs = len(history["epochs"])
    report = evaluate(model, *data["test"], patterns=PATTERNS)
    return {"time_source": source, "parameters": model.num_parameters(), "epochs": epochs,
            "train_clips_per_s": epochs * len(data["train"][0]) / seconds,
            "latency_ms": 1000 * latency(model, data["test"][0][:args.latency_clips]),
            "accuracy": {k: v["accuracy"] for k, v in report.items()},
            "f1_weighted": {k: v["f1_weighted"] for k, v in report.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=400)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dropout", type=float, default=0.7, help="modality dropout while training")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--latency-clips", type=int, default=50)
    parser.add_argument("--sources", nargs="+", default=["real", "index", "none"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    val_clips, val_labels = dataset(args.seed + 1, args.test // 2)
    val_clips = [restrict(c, PATTERNS[i % len(PATTERNS)]) for i, c in enumerate(val_clips)]
    data = {"train": dataset(args.seed, args.train), "val": (val_clips, val_labels),
            "test": dataset(args.seed + 2, args.test)}
    results = []
    for source in args.sources:
        result = run(source, data, args)
        results.append(result)
        acc = "  ".join(f"{k} {v:.3f}" for k, v in result["accuracy"].items())
        print(f"{source:>5}: accuracy {acc} | {result['latency_ms']:.1f} ms/clip | "
              f"{result['train_clips_per_s']:.0f} train clips/s | {result['parameters']} params", flush=True)
    out = Path(__file__).resolve().parent / "results" / "alignment.json"
    atomic_write_json(out, {"args": vars(args), "cpu_count": os.cpu_count(), "results": results})
    print(f"wrote {out} ({time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
