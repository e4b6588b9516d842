"""Training: Adam, gradient clipping, plateau scheduler, early stopping, modality dropout, balanced epochs.

**Selection** uses the validation split only: the lowest MAE for regression,
the highest weighted F1 for classes (as the paper does); the best epoch's
weights are restored at the end.

**Patience.** The scheduler and early stopping watch the same number, the
selection metric on the validation split. After ``plateau_patience``
epochs without improvement the learning rate drops 10x (on the next such
epoch); after ``patience`` such epochs training stops. ``plateau_patience``
must be smaller than ``patience``, so a lowered rate always gets epochs to
act: with the defaults (3 and 8) the rate drops on the 4th epoch without
improvement and training stops on the 8th, unless an epoch in between
improves (which resets both counts).

**Modality dropout**: each training sample, with probability
``modality_dropout``, keeps a random non-empty subset of the modalities it
holds (each of the seven availability patterns it can form is equally
likely). The hidden streams still serve as targets of the generation
losses, so one checkpoint learns to serve all seven patterns. With
``dropout_spares`` the subsets are only those that keep a clip's spared
modalities (the starter: the sense its label is evidence of).

**Epochs** are plain or balanced across groups (sources): model/sampling.py.
Inputs are standardised with statistics fitted on the training clips
(model/normalisation.py) unless ``normalise=False``.

**Reproducible**: :func:`build_model` seeds before the weights are drawn and
:func:`train` seeds Python, numpy, torch and its own sampling generator from
``seed``, so the same data and seed give bit-identical weights on the CPU
(same thread count). **Resumable**: with ``state_dir``, the full state is
saved after every epoch (model/train_state.py); ``resume=True`` continues
from it and ends exactly where the uninterrupted run would.

**Progress** goes to ``hook``: ``"epoch E/N"`` steps count training clips
(rate and ETA come from the hook), ``"validate E/N"`` steps count
validation clips. One line per epoch goes to stderr when ``verbose``: the
train and validation loss with each term (unweighted), the validation
metrics, the learning rate, clips/s and at most how long is left (the
epochs left at the mean epoch time; early stopping may end sooner).
"""

from __future__ import annotations

import hashlib
import random
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from sgdtam_pipe.core.errors import UserError
from sgdtam_pipe.core.hooks import Hook
from sgdtam_pipe.core.records_io import atomic_write_json
from sgdtam_pipe.core.timeline import MODALITIES, ClipFeatures
from sgdtam_pipe.model.batching import collate
from sgdtam_pipe.model.config import PATIENCE, PLATEAU_PATIENCE, SGDTAMConfig
from sgdtam_pipe.model.metrics import evaluate, json_safe, selection_metric
from sgdtam_pipe.model.sampling import epoch_order, length_batches
from sgdtam_pipe.model.sgdtam import SGDTAM
from sgdtam_pipe.model.train_state import capture, load_state, save_state

SUBSETS = torch.tensor([[(k >> i) & 1 for i in range(len(MODALITIES))] for k in range(1, 2 ** len(MODALITIES))],
                       dtype=torch.bool)


class NonFiniteLoss(UserError):
    """The training loss became NaN or infinite; the message names the epoch, the batch and its clips."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_model(config: SGDTAMConfig, seed: int) -> SGDTAM:
    """A fresh model whose initial weights depend only on ``config`` and ``seed``."""
    seed_everything(seed)
    return SGDTAM(config)


def dropout_keep(available: torch.Tensor, probability: float, generator: torch.Generator,
                 required: torch.Tensor | None = None) -> torch.Tensor:
    """``[B, 3]`` keep mask: rows chosen with ``probability`` keep a random non-empty subset of ``available``
    that holds their ``required`` modalities (``[B, 3]``; None: none required). Without ``required`` the
    draws are those of the unconstrained rule, so earlier runs stay reproducible."""
    b = available.shape[0]
    keep = torch.ones_like(available)
    required = torch.zeros_like(available) if required is None else required & available
    chosen = torch.rand(b, generator=generator) < probability
    for i in torch.nonzero(chosen).squeeze(1).tolist():
        fits = ~(SUBSETS & ~available[i]).any(1) & ~(required[i] & ~SUBSETS).any(1)
        options = SUBSETS[fits]   # non-empty subsets of what it holds, holding what it must keep
        keep[i] = options[int(torch.randint(len(options), (1,), generator=generator))]
    return keep


def data_fingerprint(clips: Sequence[ClipFeatures], labels: Sequence) -> str:
    """sha256 of the clips' content hashes and labels, in order (what a resumed run must see again)."""
    digest = hashlib.sha256()
    for clip, label in zip(clips, labels):
        digest.update(f"{clip.clip.sha256}\t{label}\n".encode("utf-8"))
    return digest.hexdigest()


def train(model: SGDTAM, train_clips: Sequence[ClipFeatures], train_labels: Sequence,
          val_clips: Sequence[ClipFeatures], val_labels: Sequence, *, epochs: int = 50, lr: float = 1e-3,
          batch_size: int = 32, seed: int = 0, patience: int = PATIENCE, plateau_patience: int = PLATEAU_PATIENCE,
          modality_dropout: float = 0.5, grad_clip: float = 0.8, groups: Sequence[str] | None = None,
          balance_groups: bool = False, draws_per_group: int | None = None,
          group_draws: Mapping[str, int] | None = None, normalise: bool = True,
          state_dir: str | Path | None = None, resume: bool = False, log_path: str | Path | None = None,
          hook: Hook | None = None, verbose: bool = True, name: str = "", val_groups: Sequence[str] | None = None,
          selection: str = "default", average: float = 0.0,
          dropout_spares: Sequence[Sequence[str]] | None = None) -> dict[str, Any]:
    """Fit ``model`` in place; returns the history (also written to ``log_path`` after every epoch).

    ``average`` > 0 keeps an exponential moving average of the weights
    (decay ``average`` per optimizer step): that average is what each epoch
    validates and what is kept, since one step's weights swing more from
    epoch to epoch than the average of the last few hundred.

    ``selection="group_accuracy"`` selects on the mean of the per-group validation
    accuracies (``val_groups``: one name per validation clip; model/metrics.py
    ``selection_metric``) instead of the kind's default metric.

    ``dropout_spares`` (one list of modality names per training clip) are
    the modalities modality dropout never hides from that clip: those its
    label is evidence of (a voice's label is not the evidence of its neutral
    sentence, so hiding the voice would teach the text route a wrong label).

    ``groups`` (one name per training clip) with ``balance_groups`` gives
    balanced epochs (``group_draws``: the draws of named groups, model/sampling.py). ``name`` prefixes progress steps and epoch lines (e.g.
    ``"seed 1"``). ``resume`` needs ``state_dir`` and the same options and
    data as the saved run (``epochs`` may differ); without a saved state it
    starts afresh. Raises :class:`NonFiniteLoss` if the loss stops being finite.
    """
    _check_inputs(model, train_clips, train_labels, val_clips, val_labels, patience, plateau_patience)
    options = {"seed": seed, "lr": lr, "batch_size": batch_size, "patience": patience,
               "plateau_patience": plateau_patience, "modality_dropout": modality_dropout, "grad_clip": grad_clip,
               "balance_groups": balance_groups, "draws_per_group": draws_per_group, "normalise": normalise,
               **({"group_draws": dict(group_draws)} if group_draws else {}),  # absent: older states resume
               "groups": None if groups is None else hashlib.sha256("\n".join(groups).encode()).hexdigest(),
               "train": data_fingerprint(train_clips, train_labels), "val": data_fingerprint(val_clips, val_labels),
               "config": model.config.to_json()}
    if selection != "default":     # (absent from older saved states, which stay resumable)
        options["selection"] = selection
    if average:
        options["average"] = average
    spared = None
    if dropout_spares is not None:
        if len(dropout_spares) != len(train_clips):
            raise ValueError("dropout_spares needs one entry per training clip")
        spared = torch.tensor([[m in names for m in MODALITIES] for names in dropout_spares], dtype=torch.bool)
        options["dropout_spares"] = hashlib.sha256(spared.numpy().tobytes()).hexdigest()
    config = model.config
    widths = {m: config.width(m) for m in MODALITIES}
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    metric, higher = selection_metric(config.label.kind, selection)
    if metric == "group_accuracy" and val_groups is None:
        raise UserError("selection on group_accuracy needs the validation groups (val_groups)")
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max" if higher else "min", factor=0.1,
                                                           patience=plateau_patience, threshold=0.0,
                                                           threshold_mode="abs")
    generator = torch.Generator()
    saved = load_state(state_dir) if resume and state_dir is not None else None
    if saved is not None:
        _check_resumable(state_dir, saved.options, options)
        model.load_state_dict(saved.model)
        optimizer.load_state_dict(saved.optimizer)
        scheduler.load_state_dict(saved.scheduler)
        generator.set_state(saved.generator)
        history, start = saved.history, saved.epoch
        best_value, best_state, best_epoch, stale = saved.best_value, saved.best, saved.best_epoch, saved.stale
    else:
        seed_everything(seed)
        generator.manual_seed(seed)
        if normalise:
            model.normalise.fit(train_clips)
        history = {"config": config.to_json(), "seed": seed, "selection": metric, "epochs": []}
        best_value, best_state, best_epoch, stale, start = None, None, -1, 0, 0
    averaged = moving_average(model, average, saved.average if saved is not None else None)
    validated = averaged.module if averaged is not None else model
    prefix = f"{name} " if name else ""
    for epoch in range(start + 1, epochs + 1):
        if stale >= patience:
            break
        started = time.perf_counter()
        model.train()
        order = epoch_order(len(train_clips), generator, groups if balance_groups else None, draws_per_group,
                            group_draws)
        sums: dict[str, float] = {}
        for step, rows in enumerate(length_batches(train_clips, order, batch_size, generator), start=1):
            batch = collate([train_clips[j] for j in rows], [train_labels[j] for j in rows],
                            label_spec=config.label, widths=widths)
            available = torch.stack([batch.streams[m].available for m in MODALITIES], dim=1)
            required = None if spared is None else spared[rows]
            batch = batch.hide(dropout_keep(available, modality_dropout, generator, required))
            output, loss = model(batch)
            if not torch.isfinite(loss):
                sources = ", ".join(train_clips[j].clip.source for j in rows[:3])
                raise NonFiniteLoss(f"training stopped: the loss became {float(loss.detach())} in epoch {epoch}, batch {step} "
                                    f"(clips {sources}, ...); check their features and labels, or lower the "
                                    f"learning rate (now {optimizer.param_groups[0]['lr']:g})")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            if averaged is not None:
                averaged.update_parameters(model)
            for k, v in {"loss": float(loss.detach()), **output.losses}.items():
                sums[k] = sums.get(k, 0.0) + v * len(rows)
            sums["clips"] = sums.get("clips", 0.0) + len(rows)
            if hook:
                hook(f"{prefix}epoch {epoch}/{epochs}", {
                    "done": int(sums["clips"]), "total": len(order), "unit": "clips",
                    "message": f"loss {sums['loss'] / sums['clips']:.4f}"})
        train_seconds = time.perf_counter() - started
        if averaged is not None:
            live_buffers(averaged.module, model)
        val = evaluate(validated, val_clips, val_labels, batch_size=2 * batch_size, hook=hook,
                       step=f"{prefix}validate {epoch}/{epochs}", groups=val_groups)["all"]
        value = val[metric]
        scheduler.step(value)
        seen = sums.pop("clips")
        record = {"epoch": epoch, "train_loss": sums.pop("loss") / seen,
                  "train_losses": {k: v / seen for k, v in sums.items()}, "val": val,
                  "lr": optimizer.param_groups[0]["lr"], "clips_per_s": seen / train_seconds,
                  "seconds": time.perf_counter() - started}
        history["epochs"].append(json_safe(record))
        record["left_s"] = float(np.mean([e["seconds"] for e in history["epochs"]])) * (epochs - epoch)
        improved = best_value is None or (value > best_value if higher else value < best_value)
        if improved:
            best_value, best_epoch, stale = value, epoch, 0
            best_state = {k: v.detach().clone() for k, v in validated.state_dict().items()}
        else:
            stale += 1
        history.update(best_epoch=best_epoch, best={metric: best_value})
        if state_dir is not None:
            save_state(state_dir, capture(epoch, model, best_state, best_value, best_epoch, stale, history,
                                          optimizer, scheduler, generator, options, averaged))
        if log_path is not None:
            atomic_write_json(log_path, history)
        if verbose:
            print(prefix + epoch_line(record, metric, epochs, config.label.kind), file=sys.stderr, flush=True)
    history["stopped"] = (f"early stopping: no better validation {metric} in {patience} epochs" if stale >= patience
                          else f"the last epoch ({epochs})")
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


def moving_average(model: SGDTAM, decay: float,
                   saved: Mapping[str, torch.Tensor] | None) -> torch.optim.swa_utils.AveragedModel | None:
    """The EMA of ``model``'s parameters (None when ``decay`` is 0), restored from ``saved`` if given.

    Buffers are not averaged: the input statistics and temperature do not
    change in training, and a blend of MINE bank rows or ring indices would
    mean nothing; :func:`live_buffers` copies them over before each validation.
    """
    if not decay:
        return None
    if not 0 < decay < 1:
        raise UserError(f"the weight average's decay must be in (0, 1), got {decay}")
    averaged = torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(decay), use_buffers=False)
    if saved is not None:
        averaged.load_state_dict(saved)
    return averaged


@torch.no_grad()
def live_buffers(target: torch.nn.Module, model: torch.nn.Module) -> None:
    """Copy ``model``'s buffers (the MINE bank and its ring index among them) into ``target``."""
    for mine, live in zip(target.buffers(), model.buffers(), strict=True):
        mine.copy_(live)


def _check_inputs(model: SGDTAM, train_clips: Sequence[ClipFeatures], train_labels: Sequence,
                  val_clips: Sequence[ClipFeatures], val_labels: Sequence, patience: int, plateau_patience: int) -> None:
    if len(train_clips) != len(train_labels) or len(val_clips) != len(val_labels):
        raise ValueError("clips and labels differ in length")
    if not train_clips or not val_clips:
        raise ValueError("training needs at least one training and one validation clip")
    if not 0 <= plateau_patience < patience:
        raise UserError(f"plateau_patience ({plateau_patience}) must be below patience ({patience}), "
                         "or the learning rate never drops before training stops")
    if model.config.label.kind == "regression":
        for i, y in enumerate([*train_labels, *val_labels]):
            if not np.isfinite(float(y)):
                raise ValueError(f"regression label {i} is {y}: labels must be finite numbers")


def _check_resumable(state_dir: str | Path, saved: dict[str, Any], wanted: dict[str, Any]) -> None:
    differ = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
    if differ:
        raise UserError(f"{Path(state_dir)}: cannot resume: the saved run differs in {', '.join(differ)} "
                        "(train into a new folder, or remove this one to start afresh)")


def epoch_line(record: dict[str, Any], metric: str, epochs: int, kind: str) -> str:
    """One readable line about a finished epoch (see the module docstring)."""
    val = record["val"]
    shown = ("mae", "acc2_has0", "f1_has0", "corr") if kind == "regression" else ("accuracy", "f1_weighted")
    shown += ("group_accuracy",)     # present when selecting on it
    scores = " ".join(f"{k} {val[k]:.4f}" for k in shown if isinstance(val.get(k), float))
    scores += "".join(f" {g} {v['accuracy']:.4f}" for g, v in val.get("by_group", {}).items())
    return (f"epoch {record['epoch']:3d}/{epochs}  train loss {_terms(record['train_loss'], record['train_losses'])}"
            f"  val loss {_terms(val['loss'], val.get('losses', {}))}  val {scores}  (selects on {metric})"
            f"  lr {record['lr']:.1e}  {record['clips_per_s']:.0f} clips/s  {record['seconds']:.1f}s"
            f"  at most {_clock(record['left_s'])} left")


def _terms(total: float, terms: dict[str, float]) -> str:
    aux = " ".join(f"{k} {v:.3f}" for k, v in terms.items() if k != "main")
    return f"{total:.4f} (main {terms.get('main', float('nan')):.4f}; {aux})"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
