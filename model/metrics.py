"""Evaluation metrics, and evaluation per modality-availability pattern.

Regression (CMU-MOSI/MOSEI conventions): Acc-2 and weighted F1 in both
conventions -- has-zero (``>= 0`` is positive, all samples) and non-zero
(``> 0`` is positive, samples labelled 0 dropped) -- Acc-7 (scores rounded
and clipped to [-3, 3]), MAE, Pearson r. Classification: accuracy, weighted F1.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from sgdtam_pipe.extractors.timeline import MODALITIES, ClipFeatures, MissingModality

PATTERNS: tuple[tuple[str, ...], ...] = (
    ("text",), ("audio",), ("video",), ("audio", "video"), ("text", "video"), ("text", "audio"), MODALITIES)
PATTERN_NAMES = {p: "".join({"text": "L", "audio": "A", "video": "V"}[m] for m in p) for p in PATTERNS}


def weighted_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    """F1 per class present in ``truth``, averaged with class frequencies as weights."""
    truth, pred = np.asarray(truth), np.asarray(pred)
    if truth.size == 0:
        return float("nan")
    total = 0.0
    for c in np.unique(truth):
        tp = np.sum((pred == c) & (truth == c))
        fp = np.sum((pred == c) & (truth != c))
        fn = np.sum((pred != c) & (truth == c))
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        total += f1 * np.sum(truth == c)
    return float(total / truth.size)


def regression_metrics(pred: Sequence[float], truth: Sequence[float]) -> dict[str, float]:
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    nonzero = truth != 0
    out = {
        "acc2_has0": float(np.mean((pred >= 0) == (truth >= 0))),
        "f1_has0": weighted_f1(truth >= 0, pred >= 0),
        "acc2_non0": float(np.mean((pred[nonzero] > 0) == (truth[nonzero] > 0))) if nonzero.any() else float("nan"),
        "f1_non0": weighted_f1(truth[nonzero] > 0, pred[nonzero] > 0),
        "acc7": float(np.mean(np.clip(np.round(pred), -3, 3) == np.clip(np.round(truth), -3, 3))),
        "mae": float(np.mean(np.abs(pred - truth))),
        "corr": _pearson(pred, truth),
    }
    return out


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def classification_metrics(pred: Sequence[int], truth: Sequence[int]) -> dict[str, float]:
    pred, truth = np.asarray(pred), np.asarray(truth)
    return {"accuracy": float(np.mean(pred == truth)), "f1_weighted": weighted_f1(truth, pred)}


def metrics_for(kind: str, prediction: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Metrics from model outputs (scores or logits) and encoded labels."""
    if kind == "regression":
        return regression_metrics(prediction.tolist(), labels.tolist())
    return classification_metrics(prediction.argmax(-1).tolist(), labels.tolist())


def restrict(clip: ClipFeatures, pattern: Sequence[str]) -> ClipFeatures:
    """``clip`` with every modality outside ``pattern`` replaced by a MissingModality."""
    parts = {m: clip.modality(m) if m in pattern else MissingModality(f"masked for pattern {''.join(pattern)}")
             for m in MODALITIES}
    return ClipFeatures(clip.clip, **parts)


def selection_metric(kind: str) -> tuple[str, bool]:
    """The validation metric used for model selection and whether higher is better."""
    return ("mae", False) if kind == "regression" else ("f1_weighted", True)


@torch.no_grad()
def predict_batches(model: torch.nn.Module, clips: Sequence[ClipFeatures], labels: Sequence, *,
                    batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Predictions, encoded labels and the mean loss of ``model`` over ``clips`` (eval mode)."""
    from sgdtam_pipe.model.batching import collate

    config = model.config
    widths = {m: config.width(m) for m in MODALITIES}
    was_training = model.training
    model.eval()
    preds, truths, loss_sum = [], [], 0.0
    try:
        for i in range(0, len(clips), batch_size):
            batch = collate(clips[i:i + batch_size], labels[i:i + batch_size], label_spec=config.label, widths=widths)
            output, loss = model(batch)
            preds.append(output.prediction)
            truths.append(batch.labels)
            loss_sum += float(loss) * batch.size
    finally:
        model.train(was_training)
    return torch.cat(preds), torch.cat(truths), loss_sum / max(1, len(clips))


def evaluate(model: torch.nn.Module, clips: Sequence[ClipFeatures], labels: Sequence, *, batch_size: int = 64,
             patterns: Sequence[Sequence[str]] | None = None) -> dict[str, dict[str, float]]:
    """Metrics on ``clips`` as they are (``"all"``) and, on request, per availability pattern.

    For a pattern, only clips holding all of its modalities take part; the
    others of each clip are masked out. Keys are the paper's names (L, AV, ...).
    """
    from sgdtam_pipe.model.batching import usable

    kind = model.config.label.kind
    pred, truth, loss = predict_batches(model, clips, labels, batch_size=batch_size)
    report = {"all": {**metrics_for(kind, pred, truth), "loss": loss, "count": len(clips)}}
    for pattern in patterns or ():
        chosen = [i for i, c in enumerate(clips) if all(usable(c.modality(m)) for m in pattern)]
        name = PATTERN_NAMES.get(tuple(m for m in MODALITIES if m in pattern), "".join(pattern))
        if not chosen:
            report[name] = {"count": 0}
            continue
        subset = [restrict(clips[i], pattern) for i in chosen]
        pred, truth, loss = predict_batches(model, subset, [labels[i] for i in chosen], batch_size=batch_size)
        report[name] = {**metrics_for(kind, pred, truth), "loss": loss, "count": len(chosen)}
    return report
