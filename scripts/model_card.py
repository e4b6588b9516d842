"""``MODEL_CARD.md`` for the starter checkpoint, from the numbers in its ``card.json`` and ``train_log.json``.

Nothing in the card is typed in by hand except the prose; every figure is read
from the files training wrote.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sgdtam_pipe.core.records_io import atomic_write_bytes
from sgdtam_pipe.model.composites import WORDS_DECIDE
from sgdtam_pipe.model.metrics import PATTERN_NAMES
from sgdtam_pipe.pipeline.corpora import EMOTION_POLARITY, POLARITY_REASONS, RAVDESS_DEV_ACTORS

NATIVE = {"meld": "L", "ravdess": "LA", "fer2013": "V"}
"""The pattern each source really has (RAVDESS: its voice plus the words Whisper hears)."""
BASELINES = {"ravdess": "0.697 (eGeMAPS functionals + logistic regression, actors 01-16 -> 17-20)",
             "fer2013": "0.698 (MediaPipe blendshapes + logistic regression, 6,000 train photos, dev photos "
                        "with a face found)",
             "meld": "0.664 (the previous, text-only starter)"}
"""Reference points from ``shared/baselines/README.md`` and the previous card (not measured by this script)."""

SELECTED_ON = {"default": "dev weighted F1",
               "group_accuracy": "the mean of the three sources' dev accuracies (each on the pattern it has)"}

SPARED = ("\n- **Dropout spares the evidence.** It never hides the sense a label is evidence of: a RAVDESS example "
          "keeps\n  its voice (hiding it would teach the text route that a neutral sentence is angry), and a composite "
          "keeps all\n  its senses.")
"""The sampling bullet's sequel in a card whose training spared each label's evidence from modality dropout."""

TEMPLATE = """# Starter checkpoint: SG-DTAM on text, voices and faces (3 classes)

Made by `python scripts/make_starter_checkpoint.py --threads {threads}` (seed {seed}, `{preset}` preset
at width {width}, {parameters:,} parameters; the same thread count rebuilds it bit for bit).
Weights: `model.safetensors` (input normalisation and the calibration temperature included);
machine-readable card: `card.json`; per-epoch log: `train_log.json`.

## What it learned from

Each example carries only the modalities it really has.

| source | what the model sees | train | dev | licence |
|---|---|---|---|---|
{sources}

- **Splits.** MELD and FER2013 use their own train/dev folders; RAVDESS is split by actor (dev = actors
  {dev_actors}; actors 21-24 are withheld outside the repository for an independent test). All data is read in
  place from `../shared/data`, never copied into this repository.
- **Sampling.** Every epoch draws {draws} (balanced: the {ravdess_train} voices are not
  drowned by the photos), with modality dropout {dropout}.{spared}
- **Pooling.** {pooling}
- **Composites.** {composites:,} training examples put real streams of different sources side by side (LA, LV, AV,
  LAV; `model/composites.py`): mostly the label is the non-neutral evidence and no sense contradicts another,
  but in {words_decide:.0%} of those with a clear (non-neutral) sentence the words decide and the voice and face
  are drawn from any label, so a face read as sad cannot overturn clear words. They are the only place the fusion
  head sees two informative senses at once; they are never used for validation.
- **Inputs** are standardised per feature column with statistics fitted on the train split.
- **Training** ran {epochs_run} of at most {epochs_max} epochs ({stopped}); the best epoch on {selected_on} was
  {best_epoch} and its {kept} were kept. Epoch-by-epoch dev figures: `train_log.json`.

## Emotions → sentiment

{mapping}

## Dev results (selection and calibration used these dev splits only)

Per source, on the pattern it really has:

| source | pattern | n | accuracy | reference |
|---|---|---|---|---|
{native}

{fer_note}

Every availability pattern (a dev example is scored under each non-empty subset of the modalities it has):

| pattern | validated on real data | n | accuracy | by source |
|---|---|---|---|---|
{patterns}

All dev examples together: accuracy {accuracy:.4f}, weighted F1 {f1:.4f} (n = {count}).

**Calibration** (temperature scaling on dev, {bins} bins): temperature {temperature:.3f}; expected calibration error
{ece_before:.4f} before, {ece_after:.4f} after.

## What `analyze` does with it

- Each segment's route (its observed modalities) is reported with whether this card validated it. **LV, AV and
  LAV were never validated on real data**: no reachable labelled corpus has a face and a voice (or a face and
  words) of one person together; the model met them only as composites. A talking-head video takes the LAV route,
  and the summary and JSON mark it `UNVALIDATED`.
- Scores are `3 * (p_positive - p_negative)` on [-3, 3]; the polarity is the most probable class and the
  confidence its calibrated probability.

## Licence terms you inherit

- **MELD: GPL-3.0.** **RAVDESS: CC BY-NC-SA 4.0** (attribution, non-commercial, share-alike): this checkpoint may
  not be used commercially and derivatives must carry the same terms. **FER2013: research use only.**
  Cite the three papers when reporting results.
- The audio features come from **openSMILE** (audEERING research licence, non-commercial). The librosa backend is
  licence-clean, but this checkpoint expects openSMILE features.
"""


def _source_rows(card: dict[str, Any]) -> str:
    groups, rows = card["data"].get("groups", {}), []
    for name, info in card["data"].get("sources", {}).items():
        rows.append(f"| {info['citation']} | {info['modalities']} | {groups.get('train', {}).get(name, 0):,} | "
                    f"{groups.get('dev', {}).get(name, 0):,} | {info['licence']} |")
    return "\n".join(rows)


def _mapping() -> str:
    groups: dict[str, list[str]] = {}
    for emotion, polarity in EMOTION_POLARITY.items():
        groups.setdefault(polarity or "left out", []).append(emotion)
    lines = [f"- **{polarity}**: {', '.join(names)}" for polarity, names in groups.items()]
    lines += [f"- Why {emotion}: {reason}." for emotion, reason in POLARITY_REASONS.items()]
    return "\n".join(lines)


def _native(patterns: dict[str, Any]) -> str:
    rows = []
    for group, name in NATIVE.items():
        entry = patterns.get(name, {}).get("by_group", {}).get(group)
        if entry:
            rows.append(f"| {group} | {name} | {entry['n']} | {entry['accuracy']:.4f} | {BASELINES[group]} |")
    audio = patterns.get("A", {}).get("by_group", {}).get("ravdess")
    if audio:
        rows.append(f"| ravdess | A (voice alone) | {audio['n']} | {audio['accuracy']:.4f} | {BASELINES['ravdess']} |")
    return "\n".join(rows)


def _fer_note(card: dict[str, Any]) -> str:
    entry = card["patterns"].get("V", {}).get("by_group", {}).get("fer2013")
    left_out = card["data"].get("validation_examples_left_out", 0)
    if not entry:
        return ""
    total = entry["n"] + left_out
    return (f"FER2013 dev: a face was found in {entry['n']} of {total} photos; the {left_out} others get no score "
            f"(video missing, reason given). Counting them as wrong, accuracy is "
            f"{entry['accuracy'] * entry['n'] / total:.4f}.")


def _patterns(patterns: dict[str, Any]) -> str:
    rows = []
    for name in PATTERN_NAMES.values():
        p = patterns.get(name, {})
        accuracy = "–" if p.get("accuracy") is None else f"{p['accuracy']:.4f}"
        by_group = ", ".join(f"{g} {v['accuracy']:.3f} (n {v['n']})" for g, v in (p.get("by_group") or {}).items())
        rows.append(f"| {name} | {'yes' if p.get('validated') else 'no'} | {p.get('n', 0)} | {accuracy} | "
                    f"{by_group or '–'} |")
    return "\n".join(rows)


def write_model_card(folder: Path) -> None:
    card = json.loads((folder / "card.json").read_text("utf-8"))
    data, training = card["data"], card["data"]["training"]
    (val,) = [v for k, v in card["metrics"].items() if k.startswith("validation")]
    calibration = card["calibration"]
    text = TEMPLATE.format(
        seed=data["seed"], threads=data["versions"]["torch_threads"], preset=data["preset"],
        width=card["config"]["d_model"], parameters=card["parameters"], sources=_source_rows(card),
        dev_actors=", ".join(f"{a:02d}" for a in sorted(RAVDESS_DEV_ACTORS)), draws=_draws(training),
        pooling=_pooling(card["config"]),
        selected_on=SELECTED_ON[training.get("selection", "default")], kept=_kept(training),
        ravdess_train=data["groups"]["train"].get("ravdess", 0), dropout=training["modality_dropout"],
        spared=SPARED if training.get("spare_evidence") else "",
        composites=training.get("composites", 0), epochs_run=training["epochs_run"],
        epochs_max=training["epochs_max"], stopped=training["stopped"], best_epoch=data["best_epoch"],
        mapping=_mapping(), native=_native(card["patterns"]), fer_note=_fer_note(card),
        patterns=_patterns(card["patterns"]), accuracy=val["accuracy"], f1=val["f1_weighted"], count=val["count"],
        bins=calibration["bins"], temperature=calibration["temperature"], ece_before=calibration["ece_before"],
        ece_after=calibration["ece_after"], words_decide=WORDS_DECIDE)  # the starter script keeps the default
    atomic_write_bytes(folder / "MODEL_CARD.md", text.encode("utf-8"))


def _draws(training: dict[str, Any]) -> str:
    """"5,000 MELD sentences and 2,000 examples from each other source"-style wording of the epoch's draws."""
    named = training.get("group_draws") or {}
    each = f"{training['draws_per_group']:,} examples from each {'other ' if named else ''}source"
    return ", ".join([*(f"{n:,} from {g}" for g, n in named.items()), each])


def _kept(training: dict[str, Any]) -> str:
    decay = training.get("average") or 0
    if not decay:
        return "weights"
    return (f"weights' moving average (decay {decay} per step: about the last {round(1 / (1 - decay)):,} steps, "
            "validated every epoch in place of the last step's weights)")


def _pooling(config: dict[str, Any]) -> str:
    with_std = config.get("pool_std") or []
    pattern = ("\n  The head also reads which of the seven availability patterns the example observed, so each "
               "route can weigh\n  its senses its own way." if config.get("pattern_head") else "")
    if not with_std:
        return "Each modality's aligned rows reach the head as their mean." + pattern
    return (f"The head sees the mean of each modality's aligned rows, and for {', '.join(with_std)} also their\n  "
            "standard deviation: how a voice's frames (pitch, loudness) vary carries much of its emotion." + pattern)
