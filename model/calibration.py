"""Temperature scaling of classification logits, and the expected calibration error.

One scalar ``T > 0`` divides the logits (Guo et al., 2017): it changes the
confidences, never the predicted class. ``T`` minimises the negative
log-likelihood of the validation labels; the NLL is convex in ``1 / T``, so a
golden-section search over ``log T`` in ``[log 0.05, log 20]`` finds it
without randomness. ECE: the confidences (the top probability) are cut into
``ECE_BINS`` equal-width bins over [0, 1]; the ECE is the mean over clips of
``|accuracy - mean confidence|`` of each clip's bin.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

ECE_BINS = 15
T_RANGE = (0.05, 20.0)
_STEPS = 80


def expected_calibration_error(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS) -> float:
    """ECE of ``probabilities [N, C]`` against class indices ``labels [N]``."""
    confidence, predicted = probabilities.max(-1)
    correct = (predicted == labels).double()
    which = (confidence.double() * bins).long().clamp(max=bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += float(inside.sum()) * abs(float(correct[inside].mean()) - float(confidence[inside].double().mean()))
    return total / max(1, labels.numel())


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The ``T`` in :data:`T_RANGE` that minimises the NLL of ``softmax(logits / T)``."""
    logits, labels = logits.double(), labels.long()

    def nll(log_t: float) -> float:
        return float(F.cross_entropy(logits / math.exp(log_t), labels))

    lo, hi = math.log(T_RANGE[0]), math.log(T_RANGE[1])
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(_STEPS):
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return math.exp((lo + hi) / 2)
