"""Training: Adam, gradient clipping, plateau scheduler, early stopping, modality dropout.

Model selection uses the validation split only: the lowest MAE for
regression, the highest weighted F1 for classes (as the paper does); the
best weights are restored at the end. The learning rate drops by 10x when the
validation loss stops improving for ``plateau_patience`` epochs.

Modality dropout: each training sample, with probability ``modality_dropout``,
keeps a random non-empty subset of the modalities it holds (each of the
seven availability patterns it can form is equally likely). The hidden
streams still serve as targets of the generation losses, so one checkpoint
learns to serve all seven patterns.
"""

from __future__ import annotations

import copy
import random
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from sgdtam_pipe.extractors.base import Hook
from sgdtam_pipe.extractors.records_io import atomic_write_json
from sgdtam_pipe.extractors.timeline import MODALITIES, ClipFeatures, TimedFeatures
from sgdtam_pipe.model.batching import collate
from sgdtam_pipe.model.metrics import evaluate, selection_metric

SUBSETS = torch.tensor([[(k >> i) & 1 for i in range(len(MODALITIES))] for k in range(1, 2 ** len(MODALITIES))],
                       dtype=torch.bool)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def length_batches(clips: Sequence[ClipFeatures], batch_size: int, generator: torch.Generator,
                   pool: int = 50) -> list[list[int]]:
    """Random batches of clips of similar length (less padding, so far less attention work).

    A random order is cut into pools of ``pool`` batches; each pool is sorted by
    the clip's longest stream and cut into batches, and the batches are shuffled.
    """
    order = torch.randperm(len(clips), generator=generator).tolist()
    batches = []
    for begin in range(0, len(order), batch_size * pool):
        chunk = sorted(order[begin:begin + batch_size * pool], key=lambda i: _longest(clips[i]))
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[k] for k in shuffled]


def _longest(clip: ClipFeatures) -> int:
    return max((len(r) for r in (clip.text, clip.audio, clip.video) if isinstance(r, TimedFeatures)), default=0)


def dropout_keep(available: torch.Tensor, probability: float, generator: torch.Generator) -> torch.Tensor:
    """``[B, 3]`` keep mask: rows chosen with ``probability`` keep a random non-empty subset of ``available``."""
    b = available.shape[0]
    keep = torch.ones_like(available)
    chosen = torch.rand(b, generator=generator) < probability
    for i in torch.nonzero(chosen).squeeze(1).tolist():
        options = SUBSETS[~(SUBSETS & ~available[i]).any(1)]   # non-empty subsets of what it holds
        keep[i] = options[int(torch.randint(len(options), (1,), generator=generator))]
    return keep


def train(model: torch.nn.Module, train_clips: Sequence[ClipFeatures], train_labels: Sequence,
          val_clips: Sequence[ClipFeatures], val_labels: Sequence, *, epochs: int = 50, lr: float = 1e-3,
          batch_size: int = 32, seed: int = 0, patience: int = 10, modality_dropout: float = 0.5,
          grad_clip: float = 0.8, plateau_patience: int = 20, log_path: str | Path | None = None,
          hook: Hook | None = None, verbose: bool = True) -> dict[str, Any]:
    """Fit ``model`` in place; returns the history (also written to ``log_path`` after every epoch)."""
    if len(train_clips) != len(train_labels) or len(val_clips) != len(val_labels):
        raise ValueError("clips and labels differ in length")
    if not train_clips or not val_clips:
        raise ValueError("training needs at least one training and one validation clip")
    seed_everything(seed)
    generator = torch.Generator().manual_seed(seed)
    config = model.config
    widths = {m: config.width(m) for m in MODALITIES}
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=plateau_patience)
    metric, higher = selection_metric(config.label.kind)
    history: dict[str, Any] = {"config": config.to_json(), "seed": seed, "selection": metric, "epochs": []}
    best_value, best_state, best_epoch, stale = None, None, -1, 0
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        model.train()
        batches = length_batches(train_clips, batch_size, generator)
        losses = []
        for step, rows in enumerate(batches):
            batch = collate([train_clips[j] for j in rows], [train_labels[j] for j in rows],
                            label_spec=config.label, widths=widths)
            available = torch.stack([batch.streams[m].available for m in MODALITIES], dim=1)
            batch = batch.hide(dropout_keep(available, modality_dropout, generator))
            _, loss = model(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            losses.append(float(loss.detach()))
            if hook:
                hook("train_step", {"epoch": epoch, "done": step + 1, "total": len(batches)})
        val = evaluate(model, val_clips, val_labels, batch_size=batch_size)["all"]
        scheduler.step(val["loss"])
        record = {"epoch": epoch, "train_loss": float(np.mean(losses)), "val": val,
                  "lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - started}
        history["epochs"].append(record)
        value = val[metric]
        improved = best_value is None or (value > best_value if higher else value < best_value)
        if improved:
            best_value, best_state, best_epoch, stale = value, copy.deepcopy(model.state_dict()), epoch, 0
        else:
            stale += 1
        history.update(best_epoch=best_epoch, best={metric: best_value})
        if log_path is not None:
            atomic_write_json(log_path, history)
        if verbose:
            print(f"epoch {epoch:3d}  train loss {record['train_loss']:.4f}  val loss {val['loss']:.4f}  "
                  f"val {metric} {value:.4f}  lr {record['lr']:.1e}  {record['seconds']:.1f}s", flush=True)
        if hook:
            hook("epoch", record)
        if stale >= patience:
            break
    model.load_state_dict(best_state)
    return history
