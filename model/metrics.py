"""Evaluation metrics, and evaluation per modality-availability pattern.

Regression (CMU-MOSI/MOSEI conventions): Acc-2 and weighted F1 in both
conventions -- has-zero (``>= 0`` is positive, all samples) and non-zero
(``> 0`` is positive, samples labelled 0 dropped) -- Acc-7 (scores rounded
and clipped to [-3, 3]), MAE, Pearson r. Classification: accuracy, weighted
F1, precision/recall/F1 per class and the confusion matrix (rows: the true
class, columns: the predicted one).

Availability patterns (the paper's L, A, V, LA, LV, AV, LAV): a clip takes
part in pattern P when it really holds every modality of P, and is scored
with the others hidden. :func:`pattern_report` scores each clip under every
non-empty subset of what it holds, per pattern and per group (source).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from sgdtam_pipe.core.hooks import Hook
from sgdtam_pipe.core.timeline import MODALITIES, ClipFeatures, MissingModality
from sgdtam_pipe.model.batching import collate, usable
from sgdtam_pipe.model.config import LabelSpec

PATTERNS: tuple[tuple[str, ...], ...] = (
    ("text",), ("audio",), ("video",), ("audio", "video"), ("text", "video"), ("text", "audio"), MODALITIES)
LETTERS = {"text": "L", "audio": "A", "video": "V"}
PATTERN_NAMES = {p: "".join(LETTERS[m] for m in p) for p in PATTERNS}


def pattern_name(observed: Iterable[str]) -> str:
    """The paper's name of a set of observed modalities: ``("audio", "text") -> "LA"``."""
    chosen = set(observed)
    if not chosen or not chosen <= set(MODALITIES):
        raise ValueError(f"not an availability pattern: {sorted(chosen)} (modalities are {MODALITIES})")
    return "".join(LETTERS[m] for m in MODALITIES if m in chosen)


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


def classification_metrics(pred: Sequence[int], truth: Sequence[int],
                           classes: Sequence[str] | None = None) -> dict[str, Any]:
    """Accuracy and weighted F1; with ``classes`` (index -> name) also per-class scores and the confusion matrix."""
    pred, truth = np.asarray(pred), np.asarray(truth)
    out: dict[str, Any] = {"accuracy": float(np.mean(pred == truth)), "f1_weighted": weighted_f1(truth, pred)}
    if classes is not None:
        out["per_class"] = per_class_scores(pred, truth, classes)
        out["confusion"] = {"classes": list(classes), "matrix": confusion_matrix(pred, truth, len(classes))}
    return out


def per_class_scores(pred: np.ndarray, truth: np.ndarray, classes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Precision, recall, F1 and support per class; a ratio with nothing to count is None."""
    out = {}
    for c, name in enumerate(classes):
        tp = int(np.sum((pred == c) & (truth == c)))
        predicted, support = int(np.sum(pred == c)), int(np.sum(truth == c))
        precision = tp / predicted if predicted else None
        recall = tp / support if support else None
        f1 = 2 * tp / (predicted + support) if predicted + support else None
        out[name] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return out


def confusion_matrix(pred: np.ndarray, truth: np.ndarray, classes: int) -> list[list[int]]:
    """``matrix[true][predicted]`` counts."""
    matrix = np.zeros((classes, classes), np.int64)
    np.add.at(matrix, (truth.astype(np.int64), pred.astype(np.int64)), 1)
    return matrix.tolist()


def metrics_for(spec: LabelSpec, prediction: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
    """Metrics from model outputs (scores or logits) and encoded labels."""
    if spec.kind == "regression":
        return regression_metrics(prediction.tolist(), labels.tolist())
    return classification_metrics(prediction.argmax(-1).tolist(), labels.tolist(), spec.classes)


def headline(kind: str, metrics: dict[str, Any]) -> tuple[float | None, float | None]:
    """(accuracy, weighted F1) of a metrics dict: Acc-2 / F1 in the has-zero convention for regression."""
    if kind == "regression":
        return metrics.get("acc2_has0"), metrics.get("f1_has0")
    return metrics.get("accuracy"), metrics.get("f1_weighted")


def restrict(clip: ClipFeatures, pattern: Sequence[str]) -> ClipFeatures:
    """``clip`` with every modality outside ``pattern`` replaced by a MissingModality."""
    parts = {m: clip.modality(m) if m in pattern else MissingModality(f"masked for pattern {''.join(pattern)}")
             for m in MODALITIES}
    return ClipFeatures(clip.clip, **parts)


SELECTIONS = ("default", "group_accuracy")
"""``default``: the kind's metric below; ``group_accuracy``: the mean over validation groups of their accuracy."""


def selection_metric(kind: str, selection: str = "default") -> tuple[str, bool]:
    """The validation metric used for model selection and whether higher is better.

    ``group_accuracy`` (the mean of the per-group accuracies, Acc-2 for regression)
    keeps a large source from deciding alone which epoch is kept."""
    if selection == "group_accuracy":
        return "group_accuracy", True
    if selection != "default":
        raise ValueError(f"unknown selection {selection!r}; choose one of: {', '.join(SELECTIONS)}")
    return ("mae", False) if kind == "regression" else ("f1_weighted", True)


@dataclass
class Predictions:
    """Raw outputs (scores or logits), encoded labels, the mean loss and the mean of each loss term."""

    outputs: torch.Tensor
    labels: torch.Tensor
    loss: float
    terms: dict[str, float]


@torch.no_grad()
def predict_batches(model: torch.nn.Module, clips: Sequence[ClipFeatures], labels: Sequence, *,
                    batch_size: int = 64, hook: Hook | None = None, step: str = "evaluate") -> Predictions:
    """``model`` over ``clips`` in eval mode; ``hook(step, ...)`` reports clips done."""
    config = model.config
    widths = {m: config.width(m) for m in MODALITIES}
    was_training = model.training
    model.eval()
    outputs, truths, loss_sum, terms = [], [], 0.0, {}
    try:
        for i in range(0, len(clips), batch_size):
            batch = collate(clips[i:i + batch_size], labels[i:i + batch_size], label_spec=config.label, widths=widths)
            output, loss = model(batch)
            outputs.append(output.prediction)
            truths.append(batch.labels)
            loss_sum += float(loss) * batch.size
            for k, v in output.losses.items():
                terms[k] = terms.get(k, 0.0) + v * batch.size
            if hook:
                hook(step, {"done": min(i + batch_size, len(clips)), "total": len(clips), "unit": "clips"})
    finally:
        model.train(was_training)
    n = max(1, len(clips))
    return Predictions(torch.cat(outputs), torch.cat(truths), loss_sum / n, {k: v / n for k, v in terms.items()})


def evaluate(model: torch.nn.Module, clips: Sequence[ClipFeatures], labels: Sequence, *, batch_size: int = 64,
             patterns: Sequence[Sequence[str]] | None = None, hook: Hook | None = None,
             step: str = "evaluate", groups: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Metrics on ``clips`` as they are (``"all"``, with ``losses``: the mean of each loss term)
    and, on request, per availability pattern. With ``groups`` (one per clip) ``"all"`` also holds
    ``by_group`` (``n`` and ``accuracy`` per group) and ``group_accuracy``, their unweighted mean.

    For a pattern, only clips holding all of its modalities take part; the
    others of each clip are masked out. Keys are the paper's names (L, AV, ...).
    """
    spec = model.config.label
    out = predict_batches(model, clips, labels, batch_size=batch_size, hook=hook, step=step)
    report = {"all": {**metrics_for(spec, out.outputs, out.labels), "loss": out.loss, "losses": out.terms,
                      "count": len(clips)}}
    if groups is not None:
        if len(groups) != len(clips):
            raise ValueError(f"{len(groups)} groups for {len(clips)} clips")
        hits, names = _hits(spec.kind, out.outputs, out.labels), np.asarray(groups)
        by_group = {g: {"n": int((names == g).sum()), "accuracy": float(hits[names == g].mean())}
                    for g in sorted(set(groups))}
        report["all"]["by_group"] = by_group
        report["all"]["group_accuracy"] = float(np.mean([v["accuracy"] for v in by_group.values()]))
    for pattern in patterns or ():
        chosen = [i for i, c in enumerate(clips) if all(usable(c.modality(m)) for m in pattern)]
        name = pattern_name(pattern)
        if not chosen:
            report[name] = {"count": 0}
            continue
        subset = [restrict(clips[i], pattern) for i in chosen]
        part = predict_batches(model, subset, [labels[i] for i in chosen], batch_size=batch_size, hook=hook,
                               step=f"{step} {name}")
        report[name] = {**metrics_for(spec, part.outputs, part.labels), "loss": part.loss, "count": len(chosen)}
    return report


def pattern_report(model: torch.nn.Module, clips: Sequence[ClipFeatures], labels: Sequence, groups: Sequence[str],
                   *, batch_size: int = 64, hook: Hook | None = None) -> dict[str, dict[str, Any]]:
    """Per pattern (all seven): ``validated``, ``n``, ``accuracy``, ``f1_weighted`` and ``by_group``.

    Each clip is scored under every non-empty subset of the modalities it
    really holds (the others hidden), so a pattern's ``n`` counts the clips
    that hold all of its modalities. ``validated`` is ``n > 0``: the route
    was measured on real data of this split. Regression reports Acc-2 and F1
    in the has-zero convention as ``accuracy`` and ``f1_weighted``.
    """
    spec = model.config.label
    report = {}
    for pattern in PATTERNS:
        chosen = [i for i, c in enumerate(clips) if all(usable(c.modality(m)) for m in pattern)]
        name = pattern_name(pattern)
        if not chosen:
            report[name] = {"validated": False, "n": 0, "accuracy": None, "f1_weighted": None, "by_group": {}}
            continue
        part = predict_batches(model, [restrict(clips[i], pattern) for i in chosen], [labels[i] for i in chosen],
                               batch_size=batch_size, hook=hook, step=f"patterns {name}")
        accuracy, f1 = headline(spec.kind, metrics_for(spec, part.outputs, part.labels))
        hits = _hits(spec.kind, part.outputs, part.labels)
        by_group: dict[str, dict[str, Any]] = {}
        for g in sorted({groups[i] for i in chosen}):
            rows = [k for k, i in enumerate(chosen) if groups[i] == g]
            by_group[g] = {"n": len(rows), "accuracy": float(hits[rows].mean())}
        report[name] = {"validated": True, "n": len(chosen), "accuracy": accuracy, "f1_weighted": f1,
                        "by_group": by_group}
    return report


def _hits(kind: str, outputs: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Per clip, whether the prediction is right (regression: same side of zero, has-zero convention)."""
    if kind == "regression":
        return ((outputs >= 0) == (labels >= 0)).numpy()
    return (outputs.argmax(-1) == labels).numpy()


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (strict JSON; e.g. Pearson r of a constant)."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
