"""Every registered extractor, run on the real GRID clip, keeps the time contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from extractors.base import REGISTRY, create_extractor
from extractors.media import probe
from extractors.timeline import TimedFeatures

GRID = Path(__file__).resolve().parents[1] / "examples" / "grid-bbaf2n.mpg"
BACKENDS = [(modality, name) for modality, names in REGISTRY.items() for name in names]


@pytest.fixture(scope="module")
def duration() -> float:
    return probe(GRID).duration


@pytest.mark.parametrize("modality, backend", BACKENDS, ids=[f"{m}-{b}" for m, b in BACKENDS])
def test_extractor_keeps_the_time_contract(modality: str, backend: str, duration: float) -> None:
    extractor = create_extractor(modality, backend)
    assert extractor.modality == modality and extractor.name == backend
    result = extractor.extract(GRID)
    assert isinstance(result, TimedFeatures), f"{backend} found nothing on the GRID clip: {result}"
    assert len(result) > 0 and result.width == len(result.names) == len(set(result.names))
    assert result.mask.dtype == bool and result.mask.any()
    assert np.all(np.diff(result.start) >= 0)
    assert np.all(result.end >= result.start)
    assert result.start.min() >= 0 and result.end.max() <= duration + 0.05
    assert np.isfinite(result.values[result.mask]).all()
    assert not result.times_synthetic
    again = create_extractor(modality, backend)
    assert result.identity == again.identity() == extractor.identity()
    assert result.identity.key() == again.identity().key()
