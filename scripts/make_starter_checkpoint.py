"""Reproduce the starter checkpoint (``model/starter/``) from MELD's text sentiment labels.

Reads ``../shared/data/meld/{train,dev}_sent_emo.csv`` in place (the data is
not copied into the repository), writes a labels CSV with one transcript-only
row per utterance (its span from MELD's start and end times, so word times
are spread over the real utterance length and flagged estimated), builds the
dataset with the real MiniLM text extractor, trains the ``paper`` preset on
train and selects on dev.

    .venv/bin/python scripts/make_starter_checkpoint.py [--meld DIR] [--out model/starter]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SPLITS = {"train": "train_sent_emo.csv", "dev": "dev_sent_emo.csv"}
SUMMARY = ("MELD (Poria et al., ACL 2019) text sentiment, 3 classes (negative/neutral/positive): trained on "
           "the train split (9,989 utterances), selected on dev (1,109). Text only: MELD's audio and video are "
           "not available here, so the audio and video pathways (generators, alignment heads) never saw real "
           "acoustic or face features; they were trained only through the sentiment loss on text-only examples.")


def seconds(stamp: str) -> float:
    """MELD's ``hh:mm:ss,ms`` as seconds."""
    clock, _, millis = stamp.strip().partition(",")
    hours, minutes, secs = (int(x) for x in clock.split(":"))
    return hours * 3600 + minutes * 60 + secs + int(millis or 0) / 1000


def write_labels(meld: Path, target: Path) -> int:
    """One ``text,label,split,start,end`` row per MELD utterance; returns the row count."""
    count = 0
    with open(target, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["text", "label", "split", "start", "end"])
        for split, name in SPLITS.items():
            with open(meld / name, newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    text = " ".join(row["Utterance"].replace("\u2019", "'").split())
                    if not text:
                        continue
                    start, end = 0.0, seconds(row["EndTime"]) - seconds(row["StartTime"])
                    if not end > 0.05:  # a few MELD rows carry broken times: fall back to the word-rate guess
                        end = ""
                    writer.writerow([text, row["Sentiment"], split, start, end])
                    count += 1
    return count


MODEL_CARD = """# Starter checkpoint: SG-DTAM, MELD text sentiment (3 classes)

Made by `scripts/make_starter_checkpoint.py` (seed {seed}, `paper` preset: d = 32, 8 heads,
{parameters:,} parameters). Weights: `model.safetensors`; machine-readable card: `card.json`;
per-epoch log: `train_log.json`.

## What it learned from

- **Data:** MELD (Poria et al., ACL 2019), dialogue utterances from *Friends*, sentiment labels
  negative / neutral / positive. Trained on the train split ({train} utterances), checkpoint
  selected on the dev split ({dev} utterances). Read in place from `../shared/data/meld`; not
  copied into this repository. MELD is GPL-3.0; cite the paper when reporting results on it.
- **Text only.** MELD's audio and video are not available here. Each utterance became a
  transcript-only example: its words spread evenly over the utterance's real length (from
  MELD's start and end times), flagged as estimated, embedded by the same MiniLM text extractor
  that `analyze` uses.
- **Audio and video were never seen in training.** Their feature specs (openSMILE eGeMAPSv02
  pooled to 100 ms, 25 columns; MediaPipe action units and head pose at 15 fps, 27 columns) come
  from running the real extractors on the bundled example clip, so the checkpoint accepts them,
  but the weights that read them were never trained on real values, and the generators that
  produce them from text had no real audio or video to reconstruct: they learned only through
  the sentiment loss on text-only examples.

## Validation (MELD dev, {dev} utterances, text only)

| metric | value |
|---|---|
| accuracy | {accuracy:.4f} |
| weighted F1 | {f1:.4f} |

Majority class (neutral) on dev: accuracy {majority:.4f}.

## What `analyze` does with it

- **Speech present:** the score of each utterance comes mostly from its words. Audio and face
  features are passed in and aligned by time, but since the checkpoint never learned from real
  acoustic or face features, they add little that is meaningful.
- **No speech (e.g. `pexels-crying-to-laughing.mp4`):** text and audio are generated from the
  face features (the route is reported in the JSON). With this checkpoint that route is
  **untrained on real faces**: its scores should not be read as the clip's sentiment. Train a
  checkpoint on your own labelled clips (README, "extract, train, evaluate") for a model that
  reads faces and voices.
- Scores are `3 * (p_positive - p_negative)` on the [-3, 3] scale; the polarity is the most
  probable class and the confidence its probability.
"""


def report_steps(step: str, info: dict) -> None:
    """Print training progress every 50 batches."""
    if step == "train_step" and (info["done"] % 50 == 0 or info["done"] == info["total"]):
        print(f"  epoch {info['epoch']} batch {info['done']}/{info['total']}", flush=True)


def write_model_card(folder: Path, meld: Path) -> None:
    """``MODEL_CARD.md`` from the numbers in ``card.json`` (nothing typed in by hand)."""
    from sgdtam_pipe.extractors.records_io import atomic_write_bytes

    card = json.loads((folder / "card.json").read_text("utf-8"))
    (val,) = [v for k, v in card["metrics"].items() if k.startswith("validation")]
    with open(meld / SPLITS["dev"], newline="", encoding="utf-8") as handle:
        labels = [row["Sentiment"] for row in csv.DictReader(handle)]
    majority = labels.count("neutral") / len(labels)
    text = MODEL_CARD.format(seed=card["data"]["seed"], parameters=card["parameters"],
                             train=card["data"]["splits"]["train"], dev=card["data"]["splits"]["dev"],
                             accuracy=val["accuracy"], f1=val["f1_weighted"], majority=majority)
    atomic_write_bytes(folder / "MODEL_CARD.md", text.encode("utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meld", type=Path, default=ROOT.parent / "shared" / "data" / "meld")
    parser.add_argument("--out", type=Path, default=ROOT / "model" / "starter")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="Keep the labels CSV and dataset here (reused when present).")
    args = parser.parse_args()

    import torch

    from sgdtam_pipe.extractors.records_io import atomic_write_json
    from sgdtam_pipe.pipeline.analyze import AnalyzeOptions
    from sgdtam_pipe.pipeline.dataset import build_dataset
    from sgdtam_pipe.pipeline.training import train_checkpoint

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        dataset = work / "dataset"
        if not (dataset / "dataset.json").exists():
            work.mkdir(parents=True, exist_ok=True)
            rows = write_labels(args.meld, work / "meld_labels.csv")
            started = time.perf_counter()
            summary = build_dataset(work / "meld_labels.csv", dataset, AnalyzeOptions(use_cache=False))
            print(f"dataset: {rows} rows -> {json.dumps(summary)} in {time.perf_counter() - started:.0f} s", flush=True)
        card = train_checkpoint(dataset, args.out, preset="paper", epochs=args.epochs, seed=args.seed,
                                description=SUMMARY, hook=report_steps)
    card_path = args.out / "card.json"
    data = json.loads(card_path.read_text("utf-8"))
    data["data"].update(dataset=f"MELD {', '.join(SPLITS.values())} from {args.meld.name}/ (read in place)",
                        labels_csv="written by scripts/make_starter_checkpoint.py")
    atomic_write_json(card_path, data)
    write_model_card(args.out, args.meld)
    print(json.dumps(card["metrics"], indent=2))


if __name__ == "__main__":
    main()
