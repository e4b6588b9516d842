"""Per-feature input standardisation, fitted on the training split and stored with the weights.

Raw features differ in scale by orders of magnitude (eGeMAPS loudness near
1, spectral slopes and F0 in the hundreds); fed straight into a linear
layer, the large columns drown the others. Each column ``j`` of each
modality becomes ``(x_j - mean_j) / std_j``, with mean and std computed on
the measured rows (``mask`` True) of the training clips only. Every row
counts once, so a long clip weighs more than a short one.

The statistics are buffers (``normalise.<modality>.mean`` / ``.std`` in the
safetensors state), so a checkpoint applies the same transform at
inference. A column whose std is below ``MIN_STD`` (constant on the
training rows) keeps std 1: it is only centred, never blown up. A modality
with no training rows keeps the identity (mean 0, std 1). Unmeasured rows
stay exactly zero.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from sgdtam_pipe.core.timeline import ClipFeatures, TimedFeatures

MIN_STD = 1e-6
"""Relative to ``max(1, |mean|)``: a column with a smaller spread is treated as constant."""


class ColumnStats(nn.Module):
    """Mean and std of one modality's columns, as buffers."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("std", torch.ones(width))


class InputNormalisation(nn.Module):
    """``forward(modality, values, mask)`` standardises ``values [B, T, D]``; unmeasured rows stay zero."""

    def __init__(self, widths: dict[str, int]) -> None:
        super().__init__()
        self.stats = nn.ModuleDict({m: ColumnStats(w) for m, w in widths.items()})

    def forward(self, modality: str, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        stats = self.stats[modality]
        scaled = (values - stats.mean) / stats.std
        return torch.where(mask.unsqueeze(-1), scaled, torch.zeros_like(scaled))

    @torch.no_grad()
    def fit(self, clips: Sequence[ClipFeatures]) -> None:
        """Set every modality's statistics from the measured rows of ``clips`` (the training split)."""
        for m in self.stats:
            mean, std = column_stats([c.modality(m) for c in clips], int(self.stats[m].mean.numel()))
            self.stats[m].mean.copy_(torch.from_numpy(mean))
            self.stats[m].std.copy_(torch.from_numpy(std))


def column_stats(streams: Sequence[object], width: int) -> tuple[np.ndarray, np.ndarray]:
    """Float32 mean and std over the measured rows of the :class:`TimedFeatures` in ``streams``.

    Sums are shifted by the first measured row and kept in float64, so
    columns with a large offset and a small spread keep their precision.
    """
    count, shift = 0, None
    total = np.zeros(width, np.float64)
    squares = np.zeros(width, np.float64)
    for stream in streams:
        if not isinstance(stream, TimedFeatures) or stream.width != width or not stream.mask.any():
            continue
        rows = stream.values[stream.mask].astype(np.float64)
        if shift is None:
            shift = rows[0].copy()
        rows -= shift
        count += rows.shape[0]
        total += rows.sum(0)
        squares += (rows ** 2).sum(0)
    if count == 0:
        return np.zeros(width, np.float32), np.ones(width, np.float32)
    centred = total / count
    mean = shift + centred
    std = np.sqrt(np.maximum(squares / count - centred ** 2, 0.0))
    std = np.where(std < MIN_STD * np.maximum(1.0, np.abs(mean)), 1.0, std)
    return mean.astype(np.float32), std.astype(np.float32)


def identity_keys(widths: dict[str, int]) -> frozenset[str]:
    """State-dict keys of the statistics (absent from checkpoints written before normalisation)."""
    return frozenset(f"normalise.stats.{m}.{k}" for m in widths for k in ("mean", "std"))

