"""The package imports where POSIX-only modules do not exist (Windows): none is imported at import time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POSIX_ONLY = ("fcntl", "termios", "pwd", "grp", "resource")


def test_every_module_imports_with_posix_only_modules_hidden() -> None:
    modules = sorted(".".join(("sgdtam_pipe", *path.relative_to(REPO).with_suffix("").parts))
                     for folder in ("core", "pipeline", "extractors", "model") for path in (REPO / folder).rglob("*.py")
                     if path.stem != "__init__")
    code = (f"import sys\nfor name in {POSIX_ONLY!r}:\n    sys.modules[name] = None\n"
            f"import importlib\nfor module in {modules!r}:\n    importlib.import_module(module)\n"
            "print('imported', len(" + repr(modules) + "))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == f"imported {len(modules)}"
