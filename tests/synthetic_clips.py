"""Small synthetic ClipFeatures for the model tests: three rates, real times, optional gaps."""

from __future__ import annotations

import numpy as np

from sgdtam_pipe.core.timeline import (
    MODALITIES,
    ClipFeatures,
    ClipInfo,
    ExtractorIdentity,
    MissingModality,
    TimedFeatures,
)

TINY_WIDTHS = {"text": 8, "audio": 6, "video": 5}
RATES = {"text": 3.0, "audio": 20.0, "video": 10.0}   # rows per second


def stream(rng: np.random.Generator, modality: str, duration: float, width: int, *, offset: float = 0.0,
           signal: float = 0.0) -> TimedFeatures:
    """Rows at ``RATES[modality]`` from ``offset`` with real intervals; values carry ``signal``."""
    step = 1.0 / RATES[modality]
    count = max(1, int((duration - offset) / step))
    start = offset + step * np.arange(count)
    end = start + step
    values = rng.normal(size=(count, width)).astype(np.float32) * 0.5 + signal
    mask = np.ones(count, bool)
    if modality == "video" and count > 2:
        mask[1] = False                                # a frame without a face
    names = tuple(f"{modality}_{i}" for i in range(width))
    return TimedFeatures(values, start, end, mask, names, ExtractorIdentity(f"synthetic-{modality}", "1"))


def make_clip(rng: np.random.Generator, *, present: tuple[str, ...] = MODALITIES, duration: float = 2.0,
              widths: dict[str, int] = TINY_WIDTHS, signal: float = 0.0, name: str = "clip") -> ClipFeatures:
    parts = {m: stream(rng, m, duration, widths[m], offset=float(rng.uniform(0, 0.3)), signal=signal)
             if m in present else MissingModality("left out by the test") for m in MODALITIES}
    return ClipFeatures(ClipInfo(f"sha-{name}", duration, f"{name}.mp4"), **parts)


def make_dataset(seed: int, count: int, *, widths: dict[str, int] = TINY_WIDTHS) -> tuple[list[ClipFeatures], list[float]]:
    """Clips whose label is the sign of a shift in every modality's values (learnable quickly)."""
    rng = np.random.default_rng(seed)
    clips, labels = [], []
    for i in range(count):
        y = float(rng.choice([-2.0, 2.0]))
        clips.append(make_clip(rng, widths=widths, signal=0.5 * np.sign(y), duration=float(rng.uniform(1.0, 2.0)),
                               name=f"c{i}"))
        labels.append(y)
    return clips, labels
