"""The three stages of a clip run at once and give exactly what a sequential run gives."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from sgdtam_pipe.core.timeline import MODALITIES, TimedFeatures
from sgdtam_pipe.pipeline.features import ExtractionSettings, extract_clip, run_concurrently

GRID = Path(__file__).resolve().parents[1] / "examples" / "grid-bbaf2n.mpg"


def test_parallel_stages_equal_the_sequential_run() -> None:
    settings = ExtractionSettings()
    together = extract_clip(GRID, settings, cache=None, parallel=True)
    one_by_one = extract_clip(GRID, settings, cache=None, parallel=False)
    for modality in MODALITIES:
        a, b = together.features.modality(modality), one_by_one.features.modality(modality)
        assert isinstance(a, TimedFeatures) and isinstance(b, TimedFeatures), modality
        assert a.identity == b.identity
        assert np.array_equal(a.values, b.values) and np.array_equal(a.mask, b.mask), modality
        assert np.array_equal(a.start, b.start) and np.array_equal(a.end, b.end), modality
    assert together.transcript.to_json() == one_by_one.transcript.to_json()


def test_stages_really_overlap() -> None:
    """Each stage waits until all three have started: only concurrent threads get past the barrier."""
    barrier = threading.Barrier(3, timeout=10)
    outcomes = run_concurrently({m: (lambda m=m: (barrier.wait(), m)[1]) for m in MODALITIES})
    assert {m: value for m, (value, error) in outcomes.items()} == {m: m for m in MODALITIES}


def test_a_failing_stage_is_handed_back_not_lost() -> None:
    def boom() -> None:
        raise ValueError("no")

    outcomes = run_concurrently({"ok": lambda: 1, "bad": boom})
    assert outcomes["ok"] == (1, None)
    value, error = outcomes["bad"]
    assert value is None and isinstance(error, ValueError)
    with pytest.raises(ValueError):
        raise error
