"""Checkpoints as safetensors plus a JSON card; loading is strict; nothing is unpickled.

A checkpoint is a folder with ``model.safetensors`` (the weights, buffers
included) and ``card.json``: the config, the per-modality feature spec
(extractor name, version and config, width, feature names), the label spec,
a description of the training data, metrics, ``patterns`` (per availability
pattern: validated on real data or not, and how well) and ``calibration``.
Loading checks the card against the weights (feature widths, classes versus
head outputs, every tensor's shape) and refuses a mismatch in one line
naming the file. Checkpoints written before input normalisation and
calibration existed load with the identity normalisation and temperature 1.

A modality absent from the training data has no feature spec: the model
gives it a 1-wide input (``UNTRAINED_WIDTH``) that is never fed, and
:func:`hide_untrained` marks such a stream missing ("the checkpoint was not
trained on audio") so the model generates it like any missing modality.

``check_features`` refuses a clip whose streams were made differently from
the training streams: extractor name, version, width, feature names, the
extractor's output config, and the libraries it lists. Compared config
keys are those recorded on both sides (a key one side lacks predates or
postdates the other; the extractor's version covers such changes), except
the text extractor's transcript options (where the words come from:
sidecar, Whisper or PocketSphinx, chunking, alignment): the text stream's
meaning is its encoder (``embedding_model``, ``layer``, ``window_overlap``),
and analysing with a sidecar must not be refused because training used
Whisper. Library versions do change features (a new encoder or FFT
release can move every value), so each library installed on both sides
must agree in its major.minor release; patch releases are accepted, and a
library "missing" on one side (e.g. PocketSphinx for MiniLM rows) is
not compared.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from safetensors.torch import load_file, save

from sgdtam_pipe.core.errors import UserError
from sgdtam_pipe.core.records_io import atomic_write_bytes, atomic_write_json
from sgdtam_pipe.core.timeline import MODALITIES, ClipFeatures, MissingModality, TimedFeatures
from sgdtam_pipe.model.config import LabelSpec, SGDTAMConfig
from sgdtam_pipe.model.metrics import json_safe
from sgdtam_pipe.model.normalisation import identity_keys
from sgdtam_pipe.model.sgdtam import SGDTAM

CARD_FORMAT = 1
WEIGHTS, CARD = "model.safetensors", "card.json"
UNTRAINED_WIDTH = 1
"""Input width of a modality the training data lacks (nothing ever feeds it)."""


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
    patterns: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    calibration: Mapping[str, Any] | None = None

    def trained_on(self, modality: str) -> bool:
        """Whether the training data held ``modality`` (it has a feature spec)."""
        return modality in self.features


def feature_spec_from_clips(clips: Sequence[ClipFeatures], *,
                            provenance: Mapping[str, frozenset[str]] | None = None) -> dict[str, FeatureSpec]:
    """The spec of each modality from the first clip that holds it; all others must agree
    (except in ``provenance`` keys, as in :func:`check_features`)."""
    provenance = provenance or {}
    spec: dict[str, FeatureSpec] = {}
    for clip in clips:
        for m in MODALITIES:
            stream = clip.modality(m)
            if not isinstance(stream, TimedFeatures):
                continue
            mine = FeatureSpec.of(stream)
            if m not in spec:
                spec[m] = mine
            elif (problem := _difference(spec[m], mine, provenance.get(m, frozenset()))) is not None:
                raise UserError(f"{clip.clip.source}: {m} stream differs from the other training clips: {problem}")
    return spec


def save_checkpoint(target: str | Path, model: SGDTAM, *,
                    feature_spec: Mapping[str, FeatureSpec | Mapping[str, Any]], label_spec: LabelSpec,
                    data_description: Mapping[str, Any], metrics: Mapping[str, Any],
                    patterns: Mapping[str, Any] | None = None, calibration: Mapping[str, Any] | None = None) -> Path:
    """Write ``model.safetensors`` and ``card.json`` into the folder ``target``; returns it.

    ``feature_spec`` maps each trained modality to a :class:`FeatureSpec` or
    its JSON form (see :func:`feature_spec_from_clips`). NaN and infinite
    numbers are written as null.
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
        "data": json_safe(dict(data_description)), "metrics": json_safe(dict(metrics)),
        "parameters": model.num_parameters(), "patterns": json_safe(dict(patterns or {})),
        "calibration": json_safe(calibration)})
    return folder


def load_checkpoint(path: str | Path) -> tuple[SGDTAM, ModelCard]:
    """The model (eval mode) and its card from a checkpoint folder; every weight must match."""
    folder = Path(path)
    if folder.suffix == ".safetensors" or folder.name == CARD:
        folder = folder.parent
    try:
        data = json.loads((folder / CARD).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{folder / CARD}: not a readable checkpoint card ({exc})") from None
    if data.get("format") != CARD_FORMAT:
        raise UserError(f"{folder / CARD}: unsupported card format {data.get('format')!r}")
    try:
        config = SGDTAMConfig.from_json(data["config"])
        card = ModelCard(config, {m: FeatureSpec.from_json(s) for m, s in data["features"].items()},
                         LabelSpec.from_json(data["label"]), data.get("data", {}), data.get("metrics", {}),
                         int(data["parameters"]), data.get("patterns") or {}, data.get("calibration"))
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{folder / CARD}: damaged card ({exc})") from None
    problem = _card_problem(card)
    if problem is not None:
        raise UserError(f"{folder / CARD}: inconsistent card: {problem}")
    model = SGDTAM(config)
    try:
        state = load_file(str(folder / WEIGHTS))
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise UserError(f"{folder / WEIGHTS}: unreadable weights ({exc})") from None
    problem = _weights_problem(model, state)
    if problem is not None:
        raise UserError(f"{folder / WEIGHTS}: weights do not fit the card's config ({problem})")
    model.load_state_dict(state, strict=False)   # only the optional buffers may be absent (checked above)
    model.eval()
    return model, card


def _card_problem(card: ModelCard) -> str | None:
    """What in the card contradicts itself (label versus config, feature widths versus config)."""
    if card.label != card.config.label:
        return f"label {card.label.to_json()} but the config's label is {card.config.label.to_json()}"
    for m, spec in card.features.items():
        if m not in MODALITIES:
            return f"unknown modality {m!r} in its features"
        if spec.width != card.config.width(m):
            return f"{m} features are {spec.width} wide but the config's {m}_dim is {card.config.width(m)}"
    return None


def _weights_problem(model: SGDTAM, state: Mapping[str, Any]) -> str | None:
    """The first weight missing, unexpected or of the wrong shape, in words; None when all fit."""
    expected = model.state_dict()
    optional = identity_keys({m: model.config.width(m) for m in MODALITIES}) | {"temperature"}
    missing = sorted(set(expected) - set(state) - optional)
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        return f"missing {missing[:3]}, unexpected {unexpected[:3]}"
    head = f"head.{len(model.head) - 1}.weight"
    for key, tensor in expected.items():
        if key in state and tuple(state[key].shape) != tuple(tensor.shape):
            if key == head:
                return (f"the head has {state[key].shape[0]} outputs but the card's label needs "
                        f"{model.config.label.outputs}")
            return f"{key} has shape {tuple(state[key].shape)}, the config needs {tuple(tensor.shape)}"
    return None


def check_features(card: ModelCard, clip: ClipFeatures, *,
                   provenance: Mapping[str, frozenset[str]] | None = None) -> None:
    """Raise ``ValueError`` naming the modality and what differs if ``clip`` was made otherwise.

    ``provenance`` names, per modality, config keys that say where an input
    came from rather than what the features mean (the pipeline passes the
    text extractor's transcript options); they are not compared. A modality
    the checkpoint was not trained on is not checked: see
    :func:`hide_untrained`. What is compared: the module docstring.
    """
    provenance = provenance or {}
    for m in MODALITIES:
        stream = clip.modality(m)
        if not isinstance(stream, TimedFeatures) or not card.trained_on(m):
            continue
        problem = _difference(card.features[m], FeatureSpec.of(stream), provenance.get(m, frozenset()))
        if problem is not None:
            raise UserError(f"{clip.clip.source}: {m} features do not match the checkpoint: {problem}")


def hide_untrained(features: Mapping[str, FeatureSpec], clip: ClipFeatures) -> ClipFeatures:
    """``clip`` with each modality that has no spec in ``features`` marked missing (the model generates it)."""
    parts = {m: clip.modality(m) if m in features or not isinstance(clip.modality(m), TimedFeatures)
             else MissingModality(f"the checkpoint was not trained on {m}", clip.modality(m).identity)
             for m in MODALITIES}
    return ClipFeatures(clip.clip, **parts)


def _difference(expected: FeatureSpec, got: FeatureSpec, provenance: frozenset[str]) -> str | None:
    if expected.extractor != got.extractor:
        return f"extractor {got.extractor!r}, checkpoint expects {expected.extractor!r}"
    if expected.version != got.version:
        return f"{got.extractor} version {got.version!r}, checkpoint expects {expected.version!r}"
    if expected.width != got.width:
        return f"width {got.width}, checkpoint expects {expected.width}"
    if expected.names != got.names:
        first = next((i for i, (a, b) in enumerate(zip(expected.names, got.names)) if a != b), 0)
        return (f"feature name {first} is {got.names[first]!r}, checkpoint expects {expected.names[first]!r}")
    return _config_difference(expected, got, provenance)


def _config_difference(expected: FeatureSpec, got: FeatureSpec, provenance: frozenset[str]) -> str | None:
    skip = {"libraries"} | provenance
    for key in sorted(set(expected.config) & set(got.config) - skip):
        if expected.config[key] != got.config[key]:
            return f"{got.extractor} {key} {got.config[key]!r}, checkpoint expects {expected.config[key]!r}"
    theirs, ours = expected.config.get("libraries") or {}, got.config.get("libraries") or {}
    for library in sorted(set(theirs) & set(ours)):
        a, b = str(theirs[library]), str(ours[library])
        if "missing" not in (a, b) and _release(a) != _release(b):
            return f"{library} {b} installed, the checkpoint's features were made with {a}"
    return None


def _release(version: str) -> tuple[str, ...]:
    """Major and minor of a version string: ``"2.13.0+cpu" -> ("2", "13")``."""
    return tuple(version.split("+")[0].split(".")[:2])
