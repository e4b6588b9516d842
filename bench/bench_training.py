"""Seconds per training epoch of the paper preset on a synthetic mix shaped like the starter's data.

    python -m bench.bench_training [--examples 1300 --threads 2 --epochs 1]

The mix follows the three real sources (shares of ``--examples``): 77 %
MELD-like text rows (8-40 MiniLM tokens of width 384, one row per token),
8 % RAVDESS-like voices (3.5 s: 35 pooled eGeMAPS rows of width 25, plus
a neutral 8-token transcript) and 15 % FER-like photos (one 27-wide face
row). Epochs are balanced across the three groups; validation is 10 % of
the size. Prints one JSON line: seconds per epoch, training clips/s, and
the time an epoch of 13,000 examples would take at that rate.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from sgdtam_pipe.core.timeline import ClipFeatures, ClipInfo, ExtractorIdentity, MissingModality, TimedFeatures
from sgdtam_pipe.model.config import LabelSpec, SGDTAMConfig
from sgdtam_pipe.model.train import build_model, train

WIDTHS = {"text": 384, "audio": 25, "video": 27}
CLASSES = ("negative", "neutral", "positive")
SHARES = {"meld": 0.77, "ravdess": 0.08, "fer": 0.15}


def _stream(rng: np.random.Generator, modality: str, rows: int, seconds: float, shift: float) -> TimedFeatures:
    start = np.linspace(0.0, seconds, rows, endpoint=False)
    values = (rng.normal(size=(rows, WIDTHS[modality])) + shift).astype(np.float32)
    names = tuple(f"{modality}_{i}" for i in range(WIDTHS[modality]))
    return TimedFeatures(values, start, start + seconds / rows, np.ones(rows, bool), names,
                         ExtractorIdentity(f"bench-{modality}", "1"))


def example(rng: np.random.Generator, group: str, i: int) -> tuple[ClipFeatures, str]:
    label = int(rng.integers(3))
    shift = 0.3 * (label - 1)
    missing = MissingModality("not in this source")
    if group == "meld":
        tokens = int(rng.integers(8, 41))
        parts = (_stream(rng, "text", tokens, 0.3 * tokens, shift), missing, missing)
    elif group == "ravdess":
        parts = (_stream(rng, "text", 8, 3.5, 0.0), _stream(rng, "audio", 35, 3.5, shift), missing)
    else:
        parts = (missing, missing, _stream(rng, "video", 1, 0.1, shift))
    duration = max(p.end.max() for p in parts if isinstance(p, TimedFeatures))
    return ClipFeatures(ClipInfo(f"{group}-{i}", float(duration), f"{group}/{i}"), *parts), CLASSES[label]


def dataset(seed: int, count: int) -> tuple[list[ClipFeatures], list[str], list[str]]:
    rng = np.random.default_rng(seed)
    clips, labels, groups = [], [], []
    for group, share in SHARES.items():
        for i in range(max(1, round(share * count))):
            clip, label = example(rng, group, i)
            clips.append(clip)
            labels.append(label)
            groups.append(group)
    return clips, labels, groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1300)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train_clips, train_labels, groups = dataset(0, args.examples)
    val_clips, val_labels, _ = dataset(1, max(30, args.examples // 10))
    config = SGDTAMConfig.preset("paper", label=LabelSpec("classification", CLASSES),
                                 **{f"{m}_dim": w for m, w in WIDTHS.items()})
    model = build_model(config, 0)
    started = time.perf_counter()
    history = train(model, train_clips, train_labels, val_clips, val_labels, epochs=args.epochs,
                    batch_size=args.batch_size, patience=args.epochs + 1, plateau_patience=args.epochs,
                    groups=groups, balance_groups=True, verbose=False)
    seconds = (time.perf_counter() - started) / len(history["epochs"])
    rate = float(np.mean([e["clips_per_s"] for e in history["epochs"]]))
    print(json.dumps({"examples": len(train_clips), "threads": args.threads, "batch_size": args.batch_size,
                      "seconds_per_epoch": round(seconds, 2), "train_clips_per_s": round(rate, 1),
                      "epoch_of_13000_s": round(13000 / rate + seconds - len(train_clips) / rate, 1)}))


if __name__ == "__main__":
    main()
