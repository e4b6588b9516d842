"""doctor: its checks run in worker processes, and a missing, broken, crashing or hung component is still one
FAIL line with a fix while every other check reports.

A broken component is simulated by a stand-in package put first on the workers' ``PYTHONPATH``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from sgdtam_pipe.pipeline import doctor
from sgdtam_pipe.pipeline.cli import main

CHEAP = ["ffmpeg (imageio-ffmpeg)", "PyAV", "librosa (licence-clean)", "CTranslate2 (Whisper)"]


def _stand_in(monkeypatch, tmp_path: Path, package: str, code: str) -> None:
    """``package`` replaced, for worker processes, by one whose ``__init__`` runs ``code``."""
    folder = tmp_path / "stand-ins" / package
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(code)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path / "stand-ins"),
                                                                   os.environ.get("PYTHONPATH")])))


def _by_backend(checks: list[doctor.Check]) -> dict[str, doctor.Check]:
    return {check.backend: check for check in checks}


def test_every_check_is_in_exactly_one_worker_group_and_torch_ones_share_a_process() -> None:
    backends = [c[1] for c in doctor.CHECKS]
    assert len(set(backends)) == len(backends)
    torch_checks = [c[1] for c in doctor.CHECKS if c[3] in doctor.TORCH_PROBES]
    assert torch_checks == ["MiniLM embeddings", "FER2013 expression network", "torch (encoder, SG-DTAM)", "SG-DTAM"]


def test_workers_report_what_the_checks_report_in_process() -> None:
    parallel = doctor.run_checks(backends=CHEAP)
    assert [c.backend for c in parallel] == CHEAP and all(c.ok for c in parallel), parallel
    assert parallel == doctor.run_checks(parallel=False, backends=CHEAP)


def test_a_broken_import_fails_its_check_only(monkeypatch, tmp_path) -> None:
    _stand_in(monkeypatch, tmp_path, "mediapipe", "raise ImportError('mediapipe is broken (test stand-in)')\n")
    checks = _by_backend(doctor.run_checks(backends=["PyAV", "MediaPipe FaceLandmarker", "librosa (licence-clean)"]))
    face = checks["MediaPipe FaceLandmarker"]
    assert not face.ok and "mediapipe is not installed" in face.detail and "sgdtam-pipe[face]" in face.fix
    assert checks["PyAV"].ok and checks["librosa (licence-clean)"].ok


def test_a_crashing_library_fails_its_check_and_the_next_checks_still_run(monkeypatch, tmp_path) -> None:
    _stand_in(monkeypatch, tmp_path, "opensmile",
              "import os, sys\nprint('opensmile stand-in: about to abort', file=sys.stderr, flush=True)\nos.abort()\n")
    checks = _by_backend(doctor.run_checks(backends=["PyAV", "opensmile (default)", "librosa (licence-clean)"]))
    crashed = checks["opensmile (default)"]
    assert not crashed.ok and "crashed the check process" in crashed.detail
    assert "opensmile stand-in: about to abort" in crashed.detail
    assert checks["PyAV"].ok and checks["librosa (licence-clean)"].ok


def test_a_hung_check_times_out_and_the_next_checks_still_run(monkeypatch, tmp_path) -> None:
    _stand_in(monkeypatch, tmp_path, "opensmile", "import time\ntime.sleep(120)\n")
    checks = _by_backend(doctor.run_checks(backends=["opensmile (default)", "librosa (licence-clean)"], timeout=3))
    assert not checks["opensmile (default)"].ok and "did not finish within 3 s" in checks["opensmile (default)"].detail
    assert checks["librosa (licence-clean)"].ok


def test_in_process_checks_still_turn_a_failure_into_a_line(monkeypatch) -> None:
    def broken() -> str:
        raise RuntimeError("the bundled model is damaged\nsecond line")

    checks = tuple((s, b, d, broken if b == "PyAV" else p, f) for s, b, d, p, f in doctor.CHECKS)
    monkeypatch.setattr(doctor, "CHECKS", checks)
    [pyav] = doctor.run_checks(parallel=False, backends=["PyAV"])
    assert not pyav.ok and pyav.detail == "the bundled model is damaged"


def test_worker_usage_is_checked() -> None:
    assert doctor._worker_main([]) == 2


@pytest.mark.slow
def test_doctor_cli_fails_on_a_broken_component_and_reports_every_other_stage(monkeypatch, tmp_path) -> None:
    _stand_in(monkeypatch, tmp_path, "mediapipe", "raise ImportError('mediapipe is broken (test stand-in)')\n")
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    failed = [line for line in lines if line.startswith("FAIL")]
    assert len(failed) == 1 and failed[0].split()[1] == "video"
    assert lines[lines.index(failed[0]) + 1].strip().startswith("fix: pip install 'sgdtam-pipe[face]'")
    passed = [line.split() for line in lines if line.startswith("ok ")]
    assert {words[1] for words in passed} == {"media", "audio", "text", "video", "device", "model"}
    assert [words[1] for words in passed].count("video") == 1  # the expression network needs no MediaPipe
    assert sum(line.startswith(("ok ", "FAIL")) for line in lines) == len(doctor.CHECKS)
