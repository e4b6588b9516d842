"""Every command answers --help; --version; the CLI imports no heavy dependency for --help."""

from __future__ import annotations

import os
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from sgdtam_pipe.pipeline.cli import main
from sgdtam_pipe.pipeline.version import __version__


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name, command in group.commands.items():
        paths.append(prefix + (name,))
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, prefix + (name,)))
    return paths


@pytest.mark.parametrize("path", command_paths(main), ids=lambda p: " ".join(p))
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and path[-1] in result.output


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_help_imports_no_heavy_dependency() -> None:
    code = ("import sys; from click.testing import CliRunner; from sgdtam_pipe.pipeline.cli import main; "
            "CliRunner().invoke(main, ['analyze', '--help']); "
            "print(sorted(m for m in ('torch', 'transformers', 'mediapipe', 'opensmile', 'av') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cache_info_and_clear(tmp_path) -> None:
    from sgdtam_pipe.core.timeline import ExtractorIdentity, MissingModality
    from sgdtam_pipe.pipeline.cache import FeatureCache

    cache = FeatureCache(tmp_path)
    cache.put("ab" * 32, ExtractorIdentity("x", "1"), MissingModality("nothing"))
    info = CliRunner().invoke(main, ["cache", "info", "--cache-dir", str(tmp_path)])
    assert info.exit_code == 0 and '"entries": 1' in info.output
    cleared = CliRunner().invoke(main, ["cache", "clear", "--yes", "--cache-dir", str(tmp_path)])
    assert cleared.exit_code == 0 and "removed 1 entries" in cleared.output
    assert FeatureCache(tmp_path).info()["entries"] == 0


@pytest.mark.parametrize(("given", "kept"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_every_command_lets_idle_openmp_threads_sleep_unless_the_user_chose(tmp_path, monkeypatch, given,
                                                                           kept) -> None:
    if given is None:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    else:
        monkeypatch.setenv("OMP_WAIT_POLICY", given)
    result = CliRunner().invoke(main, ["cache", "info", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0
    assert os.environ["OMP_WAIT_POLICY"] == kept


def test_console_command_keeps_status_output_and_exit_handlers(tmp_path) -> None:
    """``run`` ends the process with ``os._exit``: the status, buffered stdout in a pipe and the atexit
    handlers (here one that writes a file) must all survive that."""
    code = ("import atexit, pathlib, sys; from sgdtam_pipe.pipeline import cli; "
            f"atexit.register(pathlib.Path({str(tmp_path / 'handler-ran')!r}).touch); "
            "sys.argv = ['sgdtam-pipe', *sys.argv[1:]]; cli.run()")
    shown = subprocess.run([sys.executable, "-c", code, "--version"], capture_output=True, text=True)
    assert shown.returncode == 0 and __version__ in shown.stdout
    assert (tmp_path / "handler-ran").is_file()
    missing = subprocess.run([sys.executable, "-c", code, "probe", str(tmp_path / "absent.mp4")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "absent.mp4" in missing.stderr
    wrong = subprocess.run([sys.executable, "-c", code, "no-such-command"], capture_output=True, text=True)
    assert wrong.returncode == 2 and "No such command" in wrong.stderr
