"""The extractor registry, missing extras, and doctor."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from sgdtam_pipe.extractors.base import DEFAULT_BACKEND, REGISTRY, MissingExtra, extractor_class, require
from sgdtam_pipe.pipeline.cli import main


@pytest.mark.parametrize("modality, backend", [(m, b) for m, names in REGISTRY.items() for b in names])
def test_every_registered_class_declares_its_identity(modality: str, backend: str) -> None:
    cls = extractor_class(modality, backend)
    assert (cls.name, cls.modality) == (backend, modality)
    assert cls.extra in {"speech", "acoustic", "face"} and cls.version


def test_defaults_are_registered_and_unknown_backends_list_the_choices() -> None:
    assert all(DEFAULT_BACKEND[m] in REGISTRY[m] for m in REGISTRY)
    with pytest.raises(ValueError, match="choose one of: opensmile, librosa"):
        extractor_class("audio", "praat")


def test_a_missing_extra_names_the_extra_and_the_install_command() -> None:
    with pytest.raises(MissingExtra) as info:
        require("surely_not_an_installed_module", "face")
    message = str(info.value)
    assert "surely_not_an_installed_module is not installed" in message
    assert "pip install 'sgdtam-pipe[face]'" in message


def test_doctor_finds_every_stage_ready() -> None:
    result = CliRunner().invoke(main, ["doctor"])
    lines = result.output.strip().splitlines()
    stages = {line.split()[1] for line in lines if line.startswith("ok ")}
    assert result.exit_code == 0, result.output
    assert stages == {"media", "audio", "text", "video", "device", "model"}
    assert not any(line.startswith("FAIL") for line in lines)
