"""``--device``: resolved per library, refused when asked for a GPU that is not there, never in a cache key."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from sgdtam_pipe.core import devices
from sgdtam_pipe.core.errors import UserError
from sgdtam_pipe.extractors.base import create_extractor
from sgdtam_pipe.pipeline.cli import main


def test_cpu_is_always_cpu_and_auto_follows_what_each_library_sees(monkeypatch) -> None:
    assert devices.torch_device("cpu") == devices.whisper_device("cpu") == "cpu"
    monkeypatch.setattr(devices, "torch_cuda", lambda: (True, "a GPU"))
    monkeypatch.setattr(devices, "ctranslate2_cuda", lambda: (False, "0 CUDA device(s)"))
    assert devices.torch_device("auto") == "cuda" and devices.whisper_device("auto") == "cpu"
    with pytest.raises(UserError, match="--device cuda: CTranslate2 .* sees no CUDA GPU"):
        devices.whisper_device("cuda")
    with pytest.raises(UserError, match="choose one of auto, cpu, cuda"):
        devices.torch_device("gpu")


def test_on_this_machine_auto_matches_what_torch_sees() -> None:
    visible, _ = devices.torch_cuda()
    assert devices.torch_device("auto") == ("cuda" if visible else "cpu")
    if not visible:
        with pytest.raises(UserError, match="no CUDA GPU"):
            devices.torch_device("cuda")


def test_device_is_runtime_only() -> None:
    on_cpu = create_extractor("text", device="cpu").identity()
    on_gpu = create_extractor("text", device="cuda").identity()
    assert on_cpu == on_gpu and "device" not in on_cpu.config


@pytest.mark.parametrize("command", ["analyze", "batch"])
def test_cli_offers_the_device_choice(command: str) -> None:
    help_text = CliRunner().invoke(main, [command, "--help"]).output
    assert "--device [auto|cpu|cuda]" in help_text
