"""``train`` and ``evaluate`` on a dataset folder (see :mod:`pipeline.dataset`).

**Splits.** The model trains on ``train`` and is selected (early stopping,
best epoch, calibration) on the validation split (the first of
``VALIDATION_SPLITS`` present); the test split is never looked at here.
Each example may carry a ``group`` (its source, e.g. ``"meld"``;
``"default"`` when absent); epochs are balanced across groups by default
(model/sampling.py).

**Modalities.** A modality no training example holds gets no feature spec:
the model gives it a 1-wide input that nothing feeds, the card lists it in
``data.modalities_never_seen_in_training``, and at analysis time such a
stream is treated as missing ("the checkpoint was not trained on audio").
No extractor runs for it.

**Several runs.** ``seeds=(0, 1, 2)`` trains one model per seed and reports
the mean and sample std (ddof 1) of the validation metrics; the checkpoint
kept is the one of the *first* seed listed (choosing the best seed on the
validation split would make its validation figures optimistic). ``folds=K``
adds K-fold cross-validation over the train split (examples shuffled with
the first seed, example ``j`` of that order in fold ``j mod K``): fold k's
model trains on the other folds and is selected and scored on fold k; the
mean and std over folds are reported beside the validation figures of the
kept checkpoint, which still trains on the whole train split.

**State and resume.** Every run keeps its state under ``<out>/state/<run>/``
after each epoch; a finished side run (another seed, a fold) leaves its
``result.json`` there. ``resume=True`` reuses finished runs and continues
the unfinished one; the folder is removed once the checkpoint is written.

**Card.** Besides the config, features and label, ``data`` records the
seeds, library versions, the sha256 fingerprint of each split (its sorted
example ids and labels), the group counts, the sampling and the stopping
reason; ``metrics`` the validation metrics (per class and confusion matrix
for classes), ``seeds`` and ``cross_validation`` summaries; ``calibration``
the temperature fitted on the validation split with the ECE before and
after (classification; null for regression); ``patterns`` the seven
availability patterns on the validation split (model/metrics.py
``pattern_report``).
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sgdtam_pipe.core.errors import UserError
from sgdtam_pipe.core.hooks import Hook
from sgdtam_pipe.core.records_io import atomic_write_json
from sgdtam_pipe.core.timeline import MODALITIES, ClipFeatures, TimedFeatures
from sgdtam_pipe.model.batching import usable
from sgdtam_pipe.pipeline.dataset import load_dataset, load_example
from sgdtam_pipe.pipeline.labels_csv import DEFAULT_GROUP
from sgdtam_pipe.pipeline.scoring import FEATURE_PROVENANCE
from sgdtam_pipe.pipeline.training_options import TrainingOptions
from sgdtam_pipe.pipeline.version import __version__

VALIDATION_SPLITS = ("dev", "val", "valid", "validation")
STATE = "state"
DEFAULT_THREADS_MAX = 4
SUMMARISED = ("accuracy", "f1_weighted", "loss", "mae", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc7",
              "corr")


@dataclass(frozen=True)
class Split:
    """One split's clips, labels, groups and example ids, in dataset order."""

    name: str
    clips: list[ClipFeatures]
    labels: list[Any]
    groups: list[str]
    ids: list[str]

    def subset(self, name: str, rows: Sequence[int]) -> "Split":
        return Split(name, [self.clips[i] for i in rows], [self.labels[i] for i in rows],
                     [self.groups[i] for i in rows], [self.ids[i] for i in rows])

    def fingerprint(self) -> str:
        """sha256 of the sorted ``id<TAB>label`` lines: equal for the same examples and labels."""
        lines = sorted(f"{i}\t{label}" for i, label in zip(self.ids, self.labels))
        return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def load_split(folder: Path, data: dict[str, Any], name: str) -> Split:
    """The examples of split ``name``; a regression label that is not a finite number is refused
    with the labels file and line."""
    rows = [e for e in data["examples"] if e["split"] == name]
    labels = [_label(folder, data, e) for e in rows]
    clips = [load_example(folder, e) for e in rows]
    return Split(name, clips, labels, [str(e.get("group") or DEFAULT_GROUP) for e in rows], [e["id"] for e in rows])


def _label(folder: Path, data: dict[str, Any], example: dict[str, Any]) -> Any:
    if data["label"]["kind"] != "regression":
        return example["label"]
    where = (f"{data['labels_csv']}, line {example['line']}" if data.get("labels_csv") and "line" in example
             else f"{folder / 'dataset.json'}: example {example['id']}")
    try:
        value = float(example["label"])
    except (TypeError, ValueError):
        raise UserError(f"{where}: label {example['label']!r} is not a number") from None
    if not np.isfinite(value):
        raise UserError(f"{where}: label {example['label']!r} is not a finite number")
    return value


def validation_split(data: dict[str, Any]) -> str:
    splits = {e["split"] for e in data["examples"]}
    for name in VALIDATION_SPLITS:
        if name in splits:
            return name
    raise UserError(f"the dataset has no validation split (one of {', '.join(VALIDATION_SPLITS)}); "
                    f"its splits are {sorted(splits)}")


def set_threads(threads: int | None) -> int:
    """Give torch ``threads`` CPU threads, by default the CPUs this process may use, at most
    ``DEFAULT_THREADS_MAX``; returns the number set.

    The model's matrices are small (d = 32), so threads help little beyond a
    few: the benchmark (bench/bench_training.py) measured 1.27x from one to
    two. Bit-identical reruns need the same thread count (the card records it).
    """
    import os

    import torch

    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    count = threads or max(1, min(available, DEFAULT_THREADS_MAX))
    torch.set_num_threads(count)
    return count


def library_versions() -> dict[str, str]:
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "sgdtam-pipe": __version__, "torch_threads": str(torch.get_num_threads())}


def train_checkpoint(dataset: str | Path, out_dir: str | Path, *, options: TrainingOptions | None = None,
                     resume: bool = False, description: str | None = None, hook: Hook | None = None,
                     verbose: bool = True, **overrides: Any) -> dict[str, Any]:
    """Train on the ``train`` split, select on the validation split, write a checkpoint folder.

    ``overrides`` set :class:`TrainingOptions` fields (``seed=3`` means
    ``seeds=(3,)``). Returns the card's JSON.
    """
    from sgdtam_pipe.model.checkpoint import UNTRAINED_WIDTH, feature_spec_from_clips, hide_untrained, save_checkpoint
    from sgdtam_pipe.model.config import LabelSpec, SGDTAMConfig

    if "seed" in overrides:
        overrides["seeds"] = (overrides.pop("seed"),)
    options = replace(options or TrainingOptions(), **overrides)
    folder, out_dir = Path(dataset), Path(out_dir)
    data = load_dataset(folder)
    label = LabelSpec(data["label"]["kind"], tuple(data["label"]["classes"]))
    train_split = load_split(folder, data, "train")
    if not train_split.clips:
        raise UserError(f"{folder}: the dataset has no 'train' split")
    val_split = load_split(folder, data, validation_split(data))
    specs = feature_spec_from_clips(train_split.clips, provenance=FEATURE_PROVENANCE)
    # validation streams must be made alike
    feature_spec_from_clips(train_split.clips + val_split.clips, provenance=FEATURE_PROVENANCE)
    unseen = [m for m in MODALITIES if m not in specs]
    train_split, _ = _usable(train_split, train_split.clips)   # e.g. a photo in which no face was found
    if options.composites:
        train_split = with_composites(train_split, options)
    val_split, left_out = _usable(val_split, [hide_untrained(specs, c) for c in val_split.clips])
    overrides = {**({"d_model": options.d_model} if options.d_model else {}),
                 **({"dropout": options.dropout} if options.dropout is not None else {})}
    config = SGDTAMConfig.preset(options.preset, label=label, pool_std=options.pool_std,
                                 pattern_head=options.pattern_head, **overrides,
                                 **{f"{m}_dim": specs[m].width if m in specs else UNTRAINED_WIDTH for m in MODALITIES})
    state = out_dir / STATE
    if resume and not state.exists():
        raise UserError(f"{out_dir}: nothing to resume (no {STATE}/ folder: the run finished or never started)")
    if not resume:
        shutil.rmtree(state, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    runner = _Runner(config, options, state, resume, hook, verbose)
    cross_validation = _cross_validate(runner, train_split) if options.folds else None
    other_seeds = {s: runner.side_run(f"seed {s}", s, train_split, val_split) for s in options.seeds[1:]}
    kept_seed = options.seeds[0]
    model, history = runner.run(f"seed {kept_seed}" if other_seeds else "", kept_seed, train_split, val_split,
                                log_path=out_dir / "train_log.json")
    card_metrics, calibration, patterns = _final_report(model, val_split, hook)
    metrics: dict[str, Any] = {f"validation ({val_split.name})": card_metrics}
    if other_seeds:
        metrics["seeds"] = {"kept": kept_seed, **summarise({kept_seed: card_metrics, **other_seeds})}
    if cross_validation is not None:
        metrics["cross_validation"] = cross_validation
    description_json = {
        "summary": description or f"trained on {folder.name} (train split), selected on '{val_split.name}'",
        "dataset": str(folder), "labels_csv": data.get("labels_csv"),
        "splits": {"train": len(train_split.clips), val_split.name: len(val_split.clips)},
        "validation_examples_left_out": left_out,
        "groups": {s.name: _counts(s.groups) for s in (train_split, val_split)},
        "fingerprints": {s.name: s.fingerprint() for s in (train_split, val_split)},
        "training_examples_with_modality": {m: sum(isinstance(c.modality(m), TimedFeatures) for c in train_split.clips)
                                            for m in MODALITIES},
        "modalities_never_seen_in_training": unseen,
        "seed": kept_seed, "seeds": list(options.seeds), "preset": options.preset,
        "versions": library_versions(), "training": _training_json(options, history, len(train_split.clips)),
        "best_epoch": history.get("best_epoch"),
    }
    save_checkpoint(out_dir, model, feature_spec=specs, label_spec=label, data_description=description_json,
                    metrics=metrics, patterns=patterns, calibration=calibration)
    shutil.rmtree(state, ignore_errors=True)
    return json.loads((out_dir / "card.json").read_text("utf-8"))


def _usable(split: Split, clips: list[ClipFeatures]) -> tuple[Split, int]:
    """``split`` with ``clips`` in place of its own, less those with no usable modality; and how many left."""
    rows = [i for i, c in enumerate(clips) if any(usable(c.modality(m)) for m in MODALITIES)]
    if not rows:
        raise UserError(f"no '{split.name}' example holds a modality the training split has")
    kept = Split(split.name, clips, split.labels, split.groups, split.ids).subset(split.name, rows)
    return kept, len(clips) - len(rows)


def with_composites(split: Split, options: TrainingOptions) -> Split:
    """``split`` plus ``options.composites`` composite examples (seeded by the first seed)."""
    from sgdtam_pipe.model import composites

    clips, labels = composites.compose(split.clips, split.labels, split.groups, dict(options.carriers),
                                       options.composites, options.seeds[0])
    ids = [f"{composites.GROUP}-{k}" for k in range(len(clips))]
    return Split(split.name, split.clips + clips, split.labels + labels,
                 split.groups + [composites.GROUP] * len(clips), split.ids + ids)


def evidence_spares(split: Split, options: TrainingOptions) -> list[tuple[str, ...]]:
    """Per training example, the modalities modality dropout must not hide: the carrier of its group
    (``options.carriers``), every modality of a composite (each sense it holds may be the one its label was
    drawn for), nothing for a group without a carrier."""
    from sgdtam_pipe.model import composites

    carriers = dict(options.carriers)
    return [MODALITIES if group == composites.GROUP else (carriers[group],) if group in carriers else ()
            for group in split.groups]


def _counts(values: Sequence[str]) -> dict[str, int]:
    return {v: values.count(v) for v in sorted(set(values))}


def _training_json(options: TrainingOptions, history: dict[str, Any], count: int) -> dict[str, Any]:
    return {"epochs_max": options.epochs, "epochs_run": len(history["epochs"]), "stopped": history.get("stopped"),
            "lr": options.lr, "batch_size": options.batch_size,
            "patience": options.patience, "plateau_patience": options.plateau_patience,
            "modality_dropout": options.modality_dropout, "balance_groups": options.balance_groups,
            "draws_per_group": options.draws_per_group, "group_draws": dict(options.group_draws),
            "train_examples": count,
            "composites": options.composites, "carriers": dict(options.carriers),
            "folds": options.folds, "pool_std": list(options.pool_std), "selection": options.selection,
            "average": options.average, "spare_evidence": options.spare_evidence}


class _Runner:
    """Trains one model per call, each with its own state folder under ``state``."""

    def __init__(self, config, options: TrainingOptions, state: Path, resume: bool, hook: Hook | None,
                 verbose: bool) -> None:
        self.config, self.options, self.state, self.resume = config, options, state, resume
        self.hook, self.verbose = hook, verbose

    def run(self, name: str, seed: int, train_split: Split, val_split: Split, *,
            log_path: Path | None = None) -> tuple[Any, dict[str, Any]]:
        from sgdtam_pipe.model.train import build_model, train

        o = self.options
        model = build_model(self.config, seed)
        history = train(model, train_split.clips, train_split.labels, val_split.clips, val_split.labels,
                        epochs=o.epochs, lr=o.lr, batch_size=o.batch_size, seed=seed, patience=o.patience,
                        plateau_patience=o.plateau_patience, modality_dropout=o.modality_dropout,
                        groups=train_split.groups, balance_groups=o.balance_groups,
                        draws_per_group=o.draws_per_group, state_dir=self._folder(name or f"seed {seed}"),
                        group_draws=dict(o.group_draws), val_groups=val_split.groups, selection=o.selection,
                        average=o.average, resume=self.resume, log_path=log_path, hook=self.hook,
                        verbose=self.verbose, name=name,
                        dropout_spares=evidence_spares(train_split, o) if o.spare_evidence else None)
        return model, history

    def side_run(self, name: str, seed: int, train_split: Split, val_split: Split) -> dict[str, Any]:
        """Validation metrics of a run whose model is not kept (read back when it finished before)."""
        from sgdtam_pipe.model.metrics import evaluate, json_safe

        result = self._folder(name) / "result.json"
        if self.resume and result.exists():
            return json.loads(result.read_text("utf-8"))["metrics"]
        model, history = self.run(name, seed, train_split, val_split)
        metrics = json_safe(evaluate(model, val_split.clips, val_split.labels)["all"])
        atomic_write_json(result, {"metrics": metrics, "best_epoch": history["best_epoch"]})
        return metrics

    def _folder(self, name: str) -> Path:
        folder = self.state / name.replace(" ", "-")
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def _cross_validate(runner: _Runner, train_split: Split) -> dict[str, Any]:
    """K-fold over the train split with the first seed (see the module docstring)."""
    k, seed = runner.options.folds, runner.options.seeds[0]
    if k > len(train_split.clips):
        raise UserError(f"--folds {k} is more than the {len(train_split.clips)} training examples")
    order = np.random.default_rng(seed).permutation(len(train_split.clips)).tolist()
    results = {}
    for fold in range(k):
        held = [i for j, i in enumerate(order) if j % k == fold]
        rest = [i for j, i in enumerate(order) if j % k != fold]
        results[fold] = runner.side_run(f"fold {fold + 1} of {k}", seed, train_split.subset("train", rest),
                                        train_split.subset(f"fold {fold + 1}", held))
    return {"folds": k, "seed": seed, **summarise(results)}


def summarise(runs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample std (None for one run) of each scalar metric over ``runs``, and each run's values."""
    mean, std = {}, {}
    for key in SUMMARISED:
        values = [r[key] for r in runs.values() if isinstance(r.get(key), (int, float)) and np.isfinite(r[key])]
        if values:
            mean[key] = float(np.mean(values))
            std[key] = float(np.std(values, ddof=1)) if len(values) > 1 else None
    per_run = {str(name): {k: r.get(k) for k in SUMMARISED if k in r} for name, r in runs.items()}
    return {"runs": len(runs), "mean": mean, "std": std, "per_run": per_run}


def _final_report(model, val_split: Split, hook: Hook | None) -> tuple[dict[str, Any], dict[str, Any] | None,
                                                                       dict[str, Any]]:
    """Validation metrics, calibration (temperature fitted and stored in ``model``) and the pattern card."""
    import torch

    from sgdtam_pipe.model.calibration import ECE_BINS, expected_calibration_error, fit_temperature
    from sgdtam_pipe.model.metrics import evaluate, pattern_report, predict_batches

    calibration = None
    if model.config.label.kind == "classification":
        out = predict_batches(model, val_split.clips, val_split.labels, hook=hook, step="calibrate")
        temperature = fit_temperature(out.outputs, out.labels)
        before = expected_calibration_error(torch.softmax(out.outputs, -1), out.labels)
        after = expected_calibration_error(torch.softmax(out.outputs / temperature, -1), out.labels)
        model.temperature.fill_(temperature)
        calibration = {"temperature": temperature, "ece_before": before, "ece_after": after,
                       "split": val_split.name, "bins": ECE_BINS}
    metrics = evaluate(model, val_split.clips, val_split.labels, hook=hook, step="validate")["all"]
    patterns = pattern_report(model, val_split.clips, val_split.labels, val_split.groups, hook=hook)
    return metrics, calibration, patterns


def evaluate_checkpoint(dataset: str | Path, checkpoint: str | Path | None, *, split: str = "test",
                        per_pattern: bool = False, hook: Hook | None = None) -> dict[str, Any]:
    """The model issue's metrics on one split (per class and confusion matrix for classes);
    per availability pattern on request. Modalities the checkpoint was not trained on are hidden;
    examples left with nothing the checkpoint can read are counted in ``all.left_out``."""
    from sgdtam_pipe.model.checkpoint import check_features, hide_untrained
    from sgdtam_pipe.model.metrics import PATTERNS, evaluate
    from sgdtam_pipe.pipeline.scoring import load_scorer

    scorer = load_scorer(checkpoint)
    folder = Path(dataset)
    data = load_dataset(folder)
    chosen = load_split(folder, data, split)
    if not chosen.clips:
        splits = sorted({e["split"] for e in data["examples"]})
        raise UserError(f"{dataset}: no examples in split {split!r}; its splits are {splits}")
    for clip in chosen.clips:
        check_features(scorer.card, clip, provenance=FEATURE_PROVENANCE)
    chosen, left_out = _usable(chosen, [hide_untrained(scorer.card.features, c) for c in chosen.clips])
    report = evaluate(scorer.model, chosen.clips, chosen.labels, patterns=PATTERNS if per_pattern else None,
                      hook=hook, step=f"evaluate {split}")
    report["all"]["left_out"] = left_out
    return report
