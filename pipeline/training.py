"""``train`` and ``evaluate`` on a dataset folder (see :mod:`pipeline.dataset`).

A checkpoint's feature spec comes from its training streams. A modality that
no training example holds (MELD here has text only) still needs a spec so
that the checkpoint accepts that modality at analysis time: it is taken from
the real extractor, run with the dataset's settings on the bundled example
clip, and the card records that the model never saw such features in training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sgdtam_pipe.extractors.base import Hook
from sgdtam_pipe.extractors.timeline import MODALITIES, ClipFeatures, TimedFeatures
from sgdtam_pipe.pipeline.dataset import iter_split, load_dataset

VALIDATION_SPLITS = ("dev", "val", "valid", "validation")
REFERENCE_CLIP = Path(__file__).resolve().parents[1] / "examples" / "grid-bbaf2n.mpg"


def _split(folder: Path, name: str, label_kind: str) -> tuple[list[ClipFeatures], list[Any]]:
    pairs = list(iter_split(folder, name))
    labels = [float(label) if label_kind == "regression" else label for _, label in pairs]
    return [clip for clip, _ in pairs], labels


def validation_split(data: dict[str, Any]) -> str:
    splits = {e["split"] for e in data["examples"]}
    for name in VALIDATION_SPLITS:
        if name in splits:
            return name
    raise ValueError(f"the dataset has no validation split (one of {', '.join(VALIDATION_SPLITS)}); "
                     f"its splits are {sorted(splits)}")


def reference_specs(missing: list[str], settings: dict[str, Any]) -> dict[str, Any]:
    """Feature specs for modalities absent from training, from the real extractors on the example clip."""
    from sgdtam_pipe.model.checkpoint import FeatureSpec
    from sgdtam_pipe.pipeline.features import ExtractionSettings, build_extractors

    extractors = build_extractors(ExtractionSettings(**settings))
    specs = {}
    for modality in missing:
        if modality == "text":
            stream = extractors["text"].embed(extractors["text"].transcribe(REFERENCE_CLIP))
        else:
            stream = extractors[modality].extract(REFERENCE_CLIP)
        if not isinstance(stream, TimedFeatures):
            raise ValueError(f"{REFERENCE_CLIP}: the {modality} extractor found nothing ({stream.reason})")
        specs[modality] = FeatureSpec.of(stream)
    return specs


def train_checkpoint(dataset: str | Path, out_dir: str | Path, *, preset: str = "paper", epochs: int = 30,
                     seed: int = 0, batch_size: int = 32, lr: float = 1e-3, patience: int = 8,
                     modality_dropout: float = 0.5, description: str | None = None,
                     hook: Hook | None = None) -> dict[str, Any]:
    """Train on the ``train`` split, select on the validation split, write a checkpoint folder.

    Returns the card's JSON (config, features, label, data, metrics).
    """
    from sgdtam_pipe.model.checkpoint import feature_spec_from_clips, save_checkpoint
    from sgdtam_pipe.model.config import LabelSpec, SGDTAMConfig
    from sgdtam_pipe.model.metrics import evaluate
    from sgdtam_pipe.model.sgdtam import SGDTAM
    from sgdtam_pipe.model.train import train

    folder, out_dir = Path(dataset), Path(out_dir)
    data = load_dataset(folder)
    label = LabelSpec(data["label"]["kind"], tuple(data["label"]["classes"]))
    val_name = validation_split(data)
    train_clips, train_labels = _split(folder, "train", label.kind)
    val_clips, val_labels = _split(folder, val_name, label.kind)
    if not train_clips:
        raise ValueError(f"{folder}: the dataset has no 'train' split")
    specs = feature_spec_from_clips(train_clips)
    unseen = [m for m in MODALITIES if m not in specs]
    specs.update(reference_specs(unseen, data.get("settings", {})))
    config = SGDTAMConfig.preset(preset, label=label, **{f"{m}_dim": specs[m].width for m in MODALITIES})
    model = SGDTAM(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    history = train(model, train_clips, train_labels, val_clips, val_labels, epochs=epochs, lr=lr,
                    batch_size=batch_size, seed=seed, patience=patience, modality_dropout=modality_dropout,
                    log_path=out_dir / "train_log.json", hook=hook)
    metrics = evaluate(model, val_clips, val_labels)["all"]
    present = {m: sum(isinstance(c.modality(m), TimedFeatures) for c in train_clips) for m in MODALITIES}
    description_json = {
        "summary": description or f"trained on {folder.name} (train split), selected on '{val_name}'",
        "dataset": str(folder), "labels_csv": data.get("labels_csv"),
        "splits": {"train": len(train_clips), val_name: len(val_clips)},
        "training_examples_with_modality": present,
        "modalities_never_seen_in_training": unseen,
        "seed": seed, "preset": preset, "best_epoch": history.get("best_epoch"),
    }
    save_checkpoint(out_dir, model, feature_spec=specs, label_spec=label, data_description=description_json,
                    metrics={f"validation ({val_name})": metrics})
    return json.loads((out_dir / "card.json").read_text("utf-8"))


def evaluate_checkpoint(dataset: str | Path, checkpoint: str | Path | None, *, split: str = "test",
                        per_pattern: bool = False) -> dict[str, Any]:
    """The model issue's metrics on one split; per availability pattern on request."""
    from sgdtam_pipe.model.checkpoint import check_features
    from sgdtam_pipe.model.metrics import PATTERNS, evaluate
    from sgdtam_pipe.pipeline.scoring import load_scorer

    scorer = load_scorer(checkpoint)
    data = load_dataset(dataset)
    clips, labels = _split(Path(dataset), split, data["label"]["kind"])
    if not clips:
        splits = sorted({e["split"] for e in data["examples"]})
        raise ValueError(f"{dataset}: no examples in split {split!r}; its splits are {splits}")
    for clip in clips:
        check_features(scorer.card, clip)
    return evaluate(scorer.model, clips, labels, patterns=PATTERNS if per_pattern else None)
