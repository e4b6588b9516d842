"""One namespace: the package imports as ``sgdtam_pipe.*``, beside a user's own ``model.py``, with no import cycle."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "pipeline", "extractors", "model")
EXAMPLE = ROOT / "examples" / "grid-bbaf2n.mpg"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(("sgdtam_pipe", *parts))


def _imports(path: Path, module: str) -> set[str]:
    """Package modules named by the imports of ``path`` (top level and inside functions alike)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("sgdtam_pipe.")}


def import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    return {name: _imports(path, name) & modules.keys() - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or ``None``."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_cycle_finder_sees_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_package_modules() -> None:
    graph = import_graph()
    assert len(graph) > 30
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


@pytest.mark.parametrize(("package", "allowed"), [
    ("core", {"core"}),
    ("extractors", {"core", "extractors"}),
    ("model", {"core", "model"}),
])
def test_the_folders_show_the_data_flow(package: str, allowed: set[str]) -> None:
    """media and the time contract (core) -> extractors -> model; only the pipeline sees them all."""
    graph = import_graph()
    crossings = {(name, target) for name, targets in graph.items() if name.split(".")[1] == package
                 for target in targets if target.split(".")[1] not in allowed}
    assert not crossings


def test_no_bare_top_level_imports() -> None:
    offenders = [f"{path.relative_to(ROOT)}: {name}"
                 for path in ROOT.rglob("*.py") if ".venv" not in path.parts and "build" not in path.parts
                 for node in ast.walk(ast.parse(path.read_text("utf-8")))
                 if isinstance(node, (ast.Import, ast.ImportFrom)) and node.__class__ is ast.ImportFrom
                 and not node.level and (name := node.module or "").split(".")[0] in PACKAGES]
    assert offenders == []


@pytest.mark.slow
def test_cli_and_api_work_beside_a_users_own_model_py(tmp_path: Path) -> None:
    for name in ("model.py", "pipeline.py", "extractors.py"):
        (tmp_path / name).write_text("raise RuntimeError('the user module was imported')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    api = ("from sgdtam_pipe.pipeline.analyze import AnalyzeOptions, analyze; "
           "from sgdtam_pipe.model.checkpoint import load_checkpoint; "
           f"r = analyze({str(EXAMPLE)!r}, AnalyzeOptions(use_cache=False)); print(r.overall.polarity)")
    done = subprocess.run([sys.executable, "-c", api], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    cli = Path(sys.executable).with_name("sgdtam-pipe")
    shown = subprocess.run([str(cli), "probe", str(EXAMPLE)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr[-2000:]
