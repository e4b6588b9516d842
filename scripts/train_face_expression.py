"""Train the face-expression network (:mod:`extractors.face.expression`) on FER2013's train photos.

Reads ``../shared/data/fer2013/{train,dev}/<class>/*.png`` in place, trains
:func:`extractors.face.expression.expression_net` on train only (random flips,
shifts, small rotations and zooms, brightness and contrast; label smoothing;
one-cycle learning rate), reports dev accuracy over the seven classes and over
the three polarities of :mod:`pipeline.corpora`, and writes the weights
(safetensors) and a JSON of what they are beside them.

    .venv/bin/python scripts/train_face_expression.py [--data DIR] [--epochs N] [--out FILE.safetensors]

The features it yields are only as good as its dev split is honest: the
starter checkpoint is later trained on the same train photos, so keep dev out
of everything but the report.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from sgdtam_pipe.core.errors import UserError
from sgdtam_pipe.core.records_io import atomic_write_bytes
from sgdtam_pipe.extractors.face import expression
from sgdtam_pipe.pipeline.corpora import polarity

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "fer2013"
WIDTH = 16
"""Channels of the first block (294,615 weights): on 2 cores a 9,000-frame clip costs a few seconds more."""
EPOCHS = 14
BATCH = 128
PEAK_LR = 2e-3


def load_split(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 ``[n, 48, 48]`` photos and their class indices in :data:`expression.CLASSES`."""
    import cv2

    photos, labels = [], []
    for index, name in enumerate(expression.CLASSES):
        folder = root / split / name
        if not folder.is_dir():
            raise UserError(f"{folder}: no such class folder")
        for path in sorted(folder.glob("*.png")):
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if image is None or image.shape != (expression.SIDE, expression.SIDE):
                raise UserError(f"{path}: not a {expression.SIDE}x{expression.SIDE} grayscale photo")
            photos.append(image)
            labels.append(index)
    return np.stack(photos), np.array(labels)


def augment(pixels, generator):
    """A random flip, shift (±8 %), rotation (±12°), zoom (±10 %), brightness and contrast per photo."""
    import torch
    import torch.nn.functional as F

    count = pixels.shape[0]

    def uniform(half_width: float):
        return (torch.rand(count, generator=generator) - 0.5) * 2 * half_width

    angle, zoom = uniform(math.radians(12)), 1 + uniform(0.1)
    flip = torch.where(torch.rand(count, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos * flip, -sin, uniform(0.08)], 1),
                         torch.stack([sin * flip, cos, uniform(0.08)], 1)], 1)
    grid = F.affine_grid(theta, list(pixels.shape), align_corners=False)
    pixels = F.grid_sample(pixels, grid, padding_mode="border", align_corners=False)
    return pixels * (1 + uniform(0.2).view(-1, 1, 1, 1)) + uniform(0.1).view(-1, 1, 1, 1)


def accuracies(net, photos: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Dev accuracy over the seven classes, and over the polarities (summed probabilities; surprise left out)."""
    import torch

    net.eval()
    with torch.inference_mode():
        pixels = torch.from_numpy(photos).float().div_(255).unsqueeze(1)
        probabilities = torch.cat([torch.softmax(net(expression.standardise(part)), 1)
                                   for part in pixels.split(512)]).numpy()
    net.train()
    polarities = ("negative", "neutral", "positive")
    members = np.array([[polarity(name) == p for name in expression.CLASSES] for p in polarities], float)
    truth = np.array([polarity(expression.CLASSES[i]) for i in labels], dtype=object)
    kept = truth != None  # noqa: E711 (elementwise)
    guess = np.array(polarities, dtype=object)[(probabilities @ members.T).argmax(1)]
    return {"accuracy_7": float((probabilities.argmax(1) == labels).mean()),
            "accuracy_polarity": float((guess[kept] == truth[kept]).mean()), "n_polarity": int(kept.sum())}


def train(train_set, dev_set, epochs: int, seed: int, width: int) -> tuple[object, list[dict]]:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    net = expression.expression_net(width)
    photos = torch.from_numpy(train_set[0]).float().div_(255).unsqueeze(1)
    labels = torch.from_numpy(train_set[1])
    steps_per_epoch = len(labels) // BATCH
    optimiser = torch.optim.AdamW(net.parameters(), PEAK_LR, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, PEAK_LR, total_steps=epochs * steps_per_epoch)
    log = []
    for epoch in range(1, epochs + 1):
        began, total = time.monotonic(), 0.0
        order = torch.randperm(len(labels), generator=generator)
        for step in range(steps_per_epoch):
            batch = order[step * BATCH:(step + 1) * BATCH]
            logits = net(expression.standardise(augment(photos[batch], generator)))
            loss = F.cross_entropy(logits, labels[batch], label_smoothing=0.1)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item()
        log.append({"epoch": epoch, "loss": round(total / steps_per_epoch, 4), **accuracies(net, *dev_set),
                    "seconds": round(time.monotonic() - began, 1)})
        print(f"epoch {epoch}/{epochs} " + " ".join(f"{k} {v}" for k, v in log[-1].items() if k != "epoch"),
              flush=True)
    return net.eval(), log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="FER2013 folder holding train/ and dev/.")
    parser.add_argument("--out", type=Path, default=expression.WEIGHTS)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=WIDTH)
    parser.add_argument("--threads", type=int, default=2,
                        help="Torch threads (the shipped weights were trained with 2).")
    args = parser.parse_args(argv)
    import torch
    from safetensors.torch import save

    torch.set_num_threads(args.threads)
    try:
        train_set, dev_set = load_split(args.data, "train"), load_split(args.data, "dev")
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"FER2013: {len(train_set[1])} train, {len(dev_set[1])} dev photos", flush=True)
    net, log = train(train_set, dev_set, args.epochs, args.seed, args.width)
    info = {"classes": list(expression.CLASSES), "width": args.width, "side": expression.SIDE,
            "data": "FER2013 train split (research use only), read from ../shared/data/fer2013",
            "train_photos": int(len(train_set[1])), "dev_photos": int(len(dev_set[1])),
            "epochs": args.epochs, "seed": args.seed, "threads": args.threads, "dev": log[-1], "log": log}
    atomic_write_bytes(args.out, save({k: v.contiguous() for k, v in net.state_dict().items()}))
    atomic_write_bytes(args.out.with_suffix(".json"), (json.dumps(info, indent=2) + "\n").encode())
    print(f"wrote {args.out} and {args.out.with_suffix('.json').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
