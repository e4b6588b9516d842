"""Every registered extractor, run on the real GRID clip, keeps the time contract."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from sgdtam_pipe.core.media import probe
from sgdtam_pipe.core.timeline import TimedFeatures
from sgdtam_pipe.extractors import base
from sgdtam_pipe.extractors.base import REGISTRY, create_extractor

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


@pytest.mark.parametrize("modality, backend", BACKENDS, ids=[f"{m}-{b}" for m, b in BACKENDS])
def test_identity_names_the_installed_libraries(modality: str, backend: str, monkeypatch) -> None:
    extractor = create_extractor(modality, backend)
    libraries = extractor.identity().config["libraries"]
    assert extractor.libraries and list(libraries) == list(extractor.libraries)
    assert libraries == {name: metadata.version(name) for name in extractor.libraries}
    before = extractor.identity().key()
    monkeypatch.setattr(base, "installed_version", lambda name: "0.0-upgraded")
    assert extractor.identity().key() != before  # an upgrade recomputes cached features
