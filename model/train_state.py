"""The resumable state of a training run: safetensors for every tensor, JSON for the rest; nothing pickled.

After each epoch :func:`save_state` writes ``state-<epoch>.safetensors``
(current and best weights, the weights' moving average if kept, the optimizer's moment tensors, the torch and
sampling-generator RNG states, numpy's Mersenne-Twister key) and then
``state.json`` (epoch, early-stopping counters, history, optimizer groups,
scheduler, Python's RNG state, the run's options and the sha256 of the
tensor file). Both writes are atomic and ``state.json`` is written last, so
it always names a complete tensor file: a run killed at any moment leaves
the previous epoch's state or the new one, never a mix. Older tensor files
are removed after the switch.

``state.json`` is strict JSON: a non-finite float (the scheduler's "best"
before it is set) is stored as ``{"float": "inf"}`` and read back as one.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from sgdtam_pipe.core.errors import UserError
from sgdtam_pipe.core.records_io import atomic_write_bytes, atomic_write_json

STATE_FORMAT = 1
STATE_JSON = "state.json"


@dataclass
class TrainState:
    """Everything :func:`model.train.train` needs to continue after ``epoch``."""

    epoch: int
    model: dict[str, torch.Tensor]
    best: dict[str, torch.Tensor] | None
    best_value: float | None
    best_epoch: int
    stale: int
    history: dict[str, Any]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    generator: torch.Tensor
    options: dict[str, Any]
    average: dict[str, torch.Tensor] | None = None
    """The moving average's state (``AveragedModel.state_dict()``) when the run keeps one."""


def capture(epoch: int, model: torch.nn.Module, best: Mapping[str, torch.Tensor] | None, best_value: float | None,
            best_epoch: int, stale: int, history: dict[str, Any], optimizer: torch.optim.Optimizer,
            scheduler: Any, generator: torch.Generator, options: dict[str, Any],
            average: torch.nn.Module | None = None) -> TrainState:
    """The state after ``epoch`` (tensors copied, so later steps do not change it)."""
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    averaged = None if average is None else {k: v.detach().clone() for k, v in average.state_dict().items()}
    return TrainState(epoch, weights, None if best is None else dict(best), best_value, best_epoch, stale, history,
                      optimizer.state_dict(), scheduler.state_dict(), generator.get_state(), options, averaged)


def save_state(folder: str | Path, state: TrainState) -> None:
    """Write ``state`` into ``folder`` atomically (see the module docstring)."""
    folder = Path(folder)
    tensors = {f"model/{k}": v for k, v in state.model.items()}
    tensors.update({f"best/{k}": v for k, v in (state.best or {}).items()})
    tensors.update({f"average/{k}": v for k, v in (state.average or {}).items()})
    optimizer_keys: dict[str, list[str]] = {}
    for index, slots in state.optimizer["state"].items():
        optimizer_keys[str(index)] = sorted(slots)
        tensors.update({f"optimizer/{index}/{k}": torch.as_tensor(v) for k, v in slots.items()})
    name, key, position, has_gauss, gauss = np.random.get_state()
    tensors.update({"rng/torch": torch.get_rng_state(), "rng/generator": state.generator,
                    "rng/numpy": torch.from_numpy(key.astype(np.int64))})
    blob = save_tensors({k: v.detach().contiguous().cpu() for k, v in tensors.items()})
    tensor_file = f"state-{state.epoch:04d}.safetensors"
    atomic_write_bytes(folder / tensor_file, blob)
    atomic_write_json(folder / STATE_JSON, {
        "format": STATE_FORMAT, "tensors": tensor_file, "sha256": hashlib.sha256(blob).hexdigest(),
        "epoch": state.epoch, "best_value": state.best_value, "best_epoch": state.best_epoch, "stale": state.stale,
        "has_best": state.best is not None, "history": state.history, "optimizer_keys": optimizer_keys,
        "optimizer_groups": state.optimizer["param_groups"], "scheduler": _encode_floats(state.scheduler),
        "numpy_rng": [name, int(position), int(has_gauss), float(gauss)], "python_rng": _python_rng(),
        "options": state.options})
    for old in folder.glob("state-*.safetensors"):
        if old.name != tensor_file:
            old.unlink(missing_ok=True)


def _encode_floats(value: Any) -> Any:
    """``value`` with each non-finite float as ``{"float": "inf" | "-inf" | "nan"}`` (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": str(value)}
    if isinstance(value, dict):
        return {k: _encode_floats(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode_floats(v) for v in value]
    return value


def _decode_floats(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"float"}:
            return float(value["float"])
        return {k: _decode_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_floats(v) for v in value]
    return value


def _python_rng() -> list[Any]:
    version, key, gauss = random.getstate()
    return [version, list(key), gauss]


def load_state(folder: str | Path) -> TrainState | None:
    """The saved state in ``folder`` (None when there is none); restores the global RNGs.

    A damaged state raises :class:`UserError` naming the file.
    """
    folder = Path(folder)
    path = folder / STATE_JSON
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text("utf-8"))
        blob = (folder / data["tensors"]).read_bytes()
        if data.get("format") != STATE_FORMAT or hashlib.sha256(blob).hexdigest() != data["sha256"]:
            raise ValueError("format or checksum does not match its tensor file")
        tensors = load_tensors(blob)
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path}: damaged training state ({exc}); remove the folder to start afresh") from None
    section = _sections(tensors)
    optimizer_state = {int(i): {k: section["optimizer"][f"{i}/{k}"] for k in keys}
                       for i, keys in data["optimizer_keys"].items()}
    torch.set_rng_state(section["rng"]["torch"])
    name, position, has_gauss, gauss = data["numpy_rng"]
    np.random.set_state((name, section["rng"]["numpy"].numpy().astype(np.uint32), position, has_gauss, gauss))
    version, key, python_gauss = data["python_rng"]
    random.setstate((version, tuple(key), python_gauss))
    return TrainState(int(data["epoch"]), section["model"], section["best"] if data["has_best"] else None,
                      data["best_value"], int(data["best_epoch"]), int(data["stale"]), data["history"],
                      {"state": optimizer_state, "param_groups": data["optimizer_groups"]}, _decode_floats(data["scheduler"]),
                      section["rng"]["generator"], data["options"], section["average"] or None)


def _sections(tensors: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    out: dict[str, dict[str, torch.Tensor]] = {"model": {}, "best": {}, "optimizer": {}, "rng": {}, "average": {}}
    for key, value in tensors.items():
        head, _, rest = key.partition("/")
        out[head][rest] = value
    return out
