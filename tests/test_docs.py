"""The docs hold: the labels.csv example runs as printed, links resolve, the citation matches the release."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import jsonschema
from click.testing import CliRunner
from media_factory import make_media

from sgdtam_pipe.pipeline.cli import main
from sgdtam_pipe.pipeline.schema import load_schema
from sgdtam_pipe.pipeline.version import __version__

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def block(text: str, language: str) -> str:
    """The first fenced code block in ``language``."""
    return re.search(rf"```{language}\n(.*?)```", text, re.S).group(1)


def test_the_labels_csv_example_runs_as_printed(tmp_path, monkeypatch) -> None:
    page = (REPO / "docs" / "training.md").read_text("utf-8")
    (tmp_path / "labels.csv").write_text(block(page, "csv"), "utf-8")
    command = next(line for line in block(page, "sh").splitlines() if line.startswith("sgdtam-pipe extract"))
    args = shlex.split(command, comments=True)[1:]
    folder = tmp_path / args[1]
    folder.mkdir()
    make_media(folder / "a.mp4", seconds=3.0)
    make_media(folder / "b.mp4", seconds=1.0)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    rows = len(block(page, "csv").strip().splitlines()) - 1
    assert (summary["examples"], summary["failed"]) == (rows, 0)
    assert summary["splits"] == {"train": 2, "dev": 1, "test": 1}
    # the dataset evaluates with the starter checkpoint (its test row is text only), in the published schema
    evaluated = CliRunner().invoke(main, ["evaluate", args[args.index("--out") + 1], "--split", "test", "--quiet"])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    jsonschema.validate(report, load_schema())
    assert report["kind"] == "evaluation" and report["all"]["count"] == 1


def test_relative_links_in_the_docs_resolve() -> None:
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text("utf-8")):
            if not re.match(r"[a-z]+:", target):
                assert (page.parent / target).exists(), f"{page.name}: broken link {target}"


def test_citation_names_this_release_and_the_paper() -> None:
    citation = (REPO / "CITATION.cff").read_text("utf-8")
    assert f"version: {__version__}\n" in citation
    assert "doi: 10.1016/j.eswa.2025.129750" in citation and "Expert Systems With Applications" in citation
