"""Checkpoints as safetensors plus a JSON card; loading is strict; nothing is unpickled.

A checkpoint is a folder with ``model.safetensors`` (the weights, buffers
included) and ``card.json``: the config, the per-modality feature spec
(extractor name, version and config, width, feature names), the label spec,
a description of the training data, and metrics. ``check_features`` refuses
a clip whose streams were made differently from the training streams.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from safetensors.torch import load_file, save

from sgdtam_pipe.extractors.records_io import atomic_write_bytes, atomic_write_json
from sgdtam_pipe.extractors.timeline import MODALITIES, ClipFeatures, TimedFeatures
from sgdtam_pipe.model.config import LabelSpec, SGDTAMConfig
from sgdtam_pipe.model.sgdtam import SGDTAM

CARD_FORMAT = 1
WEIGHTS, CARD = "model.safetensors", "card.json"


@dataclass(frozen=True)
class FeatureSpec:
    """How one modality's training streams were made."""

    extractor: str
    version: str
    width: int
    names: tuple[str, ...]
    config: Mapping[str, Any]

    @classmethod
    def of(cls, stream: TimedFeatures) -> "FeatureSpec":
        return cls(stream.identity.name, stream.identity.version, stream.width, stream.names,
                   dict(stream.identity.config))

    def to_json(self) -> dict[str, Any]:
        return {"extractor": self.extractor, "version": self.version, "width": self.width,
                "names": list(self.names), "config": dict(self.config)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "FeatureSpec":
        return cls(str(data["extractor"]), str(data["version"]), int(data["width"]), tuple(data["names"]),
                   dict(data.get("config", {})))


@dataclass(frozen=True)
class ModelCard:
    config: SGDTAMConfig
    features: Mapping[str, FeatureSpec]
    label: LabelSpec
    data: Mapping[str, Any]
    metrics: Mapping[str, Any]
    parameters: int


def feature_spec_from_clips(clips: Sequence[ClipFeatures]) -> dict[str, FeatureSpec]:
    """The spec of each modality from the first clip that holds it; all others must agree."""
    spec: dict[str, FeatureSpec] = {}
    for clip in clips:
        for m in MODALITIES:
            stream = clip.modality(m)
            if not isinstance(stream, TimedFeatures):
                continue
            mine = FeatureSpec.of(stream)
            if m not in spec:
                spec[m] = mine
            elif (problem := _difference(spec[m], mine)) is not None:
                raise ValueError(f"{clip.clip.source}: {m} stream differs from the other training clips: {problem}")
    return spec


def save_checkpoint(target: str | Path, model: SGDTAM, *,
                    feature_spec: Mapping[str, FeatureSpec | Mapping[str, Any]], label_spec: LabelSpec,
                    data_description: Mapping[str, Any], metrics: Mapping[str, Any]) -> Path:
    """Write ``model.safetensors`` and ``card.json`` into the folder ``target``; returns it.

    ``feature_spec`` maps modality to a :class:`FeatureSpec` or its JSON form
    (see :func:`feature_spec_from_clips`).
    """
    folder = Path(target)
    feature_spec = {m: s if isinstance(s, FeatureSpec) else FeatureSpec.from_json(s) for m, s in feature_spec.items()}
    if label_spec != model.config.label:
        raise ValueError(f"label spec {label_spec} differs from the model's {model.config.label}")
    for m, spec in feature_spec.items():
        if spec.width != model.config.width(m):
            raise ValueError(f"{m}: feature spec width {spec.width} but the model takes {model.config.width(m)}")
    atomic_write_bytes(folder / WEIGHTS, save({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}))
    atomic_write_json(folder / CARD, {
        "format": CARD_FORMAT, "model": "SG-DTAM", "config": model.config.to_json(),
        "features": {m: s.to_json() for m, s in feature_spec.items()}, "label": label_spec.to_json(),
        "data": dict(data_description), "metrics": dict(metrics), "parameters": model.num_parameters()})
    return folder


def load_checkpoint(path: str | Path) -> tuple[SGDTAM, ModelCard]:
    """The model (eval mode) and its card from a checkpoint folder; every weight must match."""
    folder = Path(path)
    if folder.suffix == ".safetensors" or folder.name == CARD:
        folder = folder.parent
    try:
        data = json.loads((folder / CARD).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{folder / CARD}: not a readable checkpoint card ({exc})") from None
    if data.get("format") != CARD_FORMAT:
        raise ValueError(f"{folder / CARD}: unsupported card format {data.get('format')!r}")
    try:
        config = SGDTAMConfig.from_json(data["config"])
        card = ModelCard(config, {m: FeatureSpec.from_json(s) for m, s in data["features"].items()},
                         LabelSpec.from_json(data["label"]), data.get("data", {}), data.get("metrics", {}),
                         int(data["parameters"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{folder / CARD}: damaged card ({exc})") from None
    model = SGDTAM(config)
    try:
        state = load_file(str(folder / WEIGHTS))
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise ValueError(f"{folder / WEIGHTS}: unreadable weights ({exc})") from None
    missing, unexpected = set(model.state_dict()) - set(state), set(state) - set(model.state_dict())
    if missing or unexpected:
        raise ValueError(f"{folder / WEIGHTS}: weights do not fit the card's config "
                         f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{folder / WEIGHTS}: weights do not fit the card's config ({exc})") from None
    model.eval()
    return model, card


def check_features(card: ModelCard, clip: ClipFeatures) -> None:
    """Raise ``ValueError`` naming the modality and what differs if ``clip`` was made otherwise.

    Compared: extractor name, version, width and feature names (the extractor
    config is recorded in the card for information).
    """
    for m in MODALITIES:
        stream = clip.modality(m)
        if not isinstance(stream, TimedFeatures):
            continue
        if m not in card.features:
            raise ValueError(f"{clip.clip.source}: {m}: the checkpoint was trained without {m} features")
        problem = _difference(card.features[m], FeatureSpec.of(stream))
        if problem is not None:
            raise ValueError(f"{clip.clip.source}: {m} features do not match the checkpoint: {problem}")


def _difference(expected: FeatureSpec, got: FeatureSpec) -> str | None:
    if expected.extractor != got.extractor:
        return f"extractor {got.extractor!r}, checkpoint expects {expected.extractor!r}"
    if expected.version != got.version:
        return f"{got.extractor} version {got.version!r}, checkpoint expects {expected.version!r}"
    if expected.width != got.width:
        return f"width {got.width}, checkpoint expects {expected.width}"
    if expected.names != got.names:
        first = next((i for i, (a, b) in enumerate(zip(expected.names, got.names)) if a != b), 0)
        return (f"feature name {first} is {got.names[first]!r}, checkpoint expects {expected.names[first]!r}")
    return None
