"""Per-clip records to padded tensors, times and masks kept.

Each modality becomes a :class:`Stream`: values ``[B, T, D]``, the real
``start``/``end`` of every row in seconds, ``pad`` (the row exists) and
``mask`` (the row exists and holds a measurement). Attention reads only keys
with ``mask`` True, so neither padding nor an unmeasured row (a frame with
no face) is ever attended.

``available`` says the data holds the modality; ``present`` says the model
may read it. They differ only under modality dropout, where the hidden
stream still serves as the target of the generation losses.

A stream with no measured row is treated as absent: there is nothing in it
to attend to.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import numpy as np
import torch

from sgdtam_pipe.core.timeline import MODALITIES, ClipFeatures, TimedFeatures
from sgdtam_pipe.model.config import LabelSpec


@dataclass(frozen=True)
class Stream:
    values: torch.Tensor      # [B, T, D] float32, zeros where not measured
    start: torch.Tensor       # [B, T] float32 seconds
    end: torch.Tensor         # [B, T]
    pad: torch.Tensor         # [B, T] bool: row exists
    mask: torch.Tensor        # [B, T] bool: row exists and is measured
    available: torch.Tensor   # [B] bool: the data holds this modality
    present: torch.Tensor     # [B] bool: the model may read it

    def to(self, device: torch.device | str) -> "Stream":
        return Stream(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))


@dataclass(frozen=True)
class Batch:
    streams: Mapping[str, Stream]
    duration: torch.Tensor            # [B] seconds: the clip span the rows live in
    labels: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return int(self.duration.shape[0])

    def present(self) -> torch.Tensor:
        """``[B, 3]`` bool, columns in ``MODALITIES`` order."""
        return torch.stack([self.streams[m].present for m in MODALITIES], dim=1)

    def hide(self, keep: torch.Tensor) -> "Batch":
        """The batch with ``present &= keep[:, i]`` per modality; data stays as target."""
        streams = {m: replace(s, present=s.present & keep[:, MODALITIES.index(m)])
                   for m, s in self.streams.items()}
        return replace(self, streams=streams)

    def to(self, device: torch.device | str) -> "Batch":
        labels = None if self.labels is None else self.labels.to(device)
        return Batch({m: s.to(device) for m, s in self.streams.items()}, self.duration.to(device), labels)


def usable(result: object) -> bool:
    """A stream the model can read: a :class:`TimedFeatures` with a measured row."""
    return isinstance(result, TimedFeatures) and bool(result.mask.any())


def collate(clips: Sequence[ClipFeatures], labels: Sequence[float | int | str] | None = None, *,
            label_spec: LabelSpec | None = None, widths: Mapping[str, int] | None = None) -> Batch:
    """Pad ``clips`` into one :class:`Batch`.

    ``labels`` are scores (regression) or class names/indices (classification,
    mapped through ``label_spec``). ``widths`` gives the feature width of a
    modality that no clip in the batch holds (else its values are ``[B, 1, 0]``;
    the model never reads them). A clip with no usable modality is an error.
    """
    if not clips:
        raise ValueError("collate needs at least one clip")
    for clip in clips:
        if not any(usable(clip.modality(m)) for m in MODALITIES):
            raise ValueError(f"{clip.clip.source}: no modality holds a measured row")
    streams = {m: _stream([c.modality(m) for c in clips], m, (widths or {}).get(m)) for m in MODALITIES}
    duration = torch.tensor([_duration(c) for c in clips], dtype=torch.float32)
    return Batch(streams, duration, None if labels is None else encode_labels(labels, label_spec))


def encode_labels(labels: Sequence[float | int | str], spec: LabelSpec | None) -> torch.Tensor:
    spec = spec or LabelSpec()
    if spec.kind == "regression":
        return torch.tensor([float(y) for y in labels], dtype=torch.float32)
    index = {c: i for i, c in enumerate(spec.classes)}
    out = []
    for y in labels:
        if isinstance(y, (int, np.integer)) and not isinstance(y, bool) and 0 <= int(y) < len(spec.classes):
            out.append(int(y))
        elif str(y) in index:
            out.append(index[str(y)])
        else:
            raise ValueError(f"label {y!r} is not one of the classes {spec.classes}")
    return torch.tensor(out, dtype=torch.long)


def _duration(clip: ClipFeatures) -> float:
    ends = [float(r.end.max()) for r in (clip.modality(m) for m in MODALITIES) if usable(r)]
    return max([clip.clip.duration, *ends])


def _stream(results: list[object], modality: str, width: int | None) -> Stream:
    streams = [r if usable(r) else None for r in results]
    real = [s for s in streams if s is not None]
    widths = {s.width for s in real}
    if len(widths) > 1:
        raise ValueError(f"{modality}: clips in one batch have different widths {sorted(widths)}")
    d = widths.pop() if widths else int(width or 0)
    b, t = len(streams), max([len(s) for s in real] + [1])
    values = np.zeros((b, t, d), np.float32)
    start = np.zeros((b, t), np.float32)
    end = np.zeros((b, t), np.float32)
    pad = np.zeros((b, t), bool)
    mask = np.zeros((b, t), bool)
    for i, s in enumerate(streams):
        if s is None:
            continue
        n = len(s)
        values[i, :n] = np.where(s.mask[:, None], s.values, 0.0)
        start[i, :n], end[i, :n], pad[i, :n], mask[i, :n] = s.start, s.end, True, s.mask
    available = torch.tensor([s is not None for s in streams])
    return Stream(torch.from_numpy(values), torch.from_numpy(start), torch.from_numpy(end),
                  torch.from_numpy(pad), torch.from_numpy(mask), available, available.clone())
