"""Real outputs of both examples and of a batch run validate against the published JSON Schema."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import pytest
from click.testing import CliRunner

from sgdtam_pipe.pipeline.cli import main
from sgdtam_pipe.pipeline.schema import SCHEMA_VERSION, load_schema
from sgdtam_pipe.pipeline.version import __version__

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TIME_KEYS = {"start", "end", "duration", "seconds"}


def validate(document: dict[str, Any], kind: str) -> None:
    jsonschema.Draft202012Validator(load_schema(), format_checker=jsonschema.FormatChecker()).validate(document)
    assert (document["kind"], document["schema_version"], document["tool_version"]) == (kind, SCHEMA_VERSION,
                                                                                         __version__)
    for key, value in walk(document):
        if key in TIME_KEYS and isinstance(value, float):
            assert round(value, 3) == value, f"{key}={value!r} is not rounded to the millisecond"


def walk(data: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield key, value
            yield from walk(value)
    elif isinstance(data, list):
        for value in data:
            yield from walk(value)


def run_json(args: list[str]) -> dict[str, Any]:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_schema_is_itself_valid() -> None:
    jsonschema.Draft202012Validator.check_schema(load_schema())


@pytest.mark.parametrize("name", ["grid-bbaf2n.mpg", "pexels-crying-to-laughing.mp4"])
def test_analysis_and_probe_of_both_examples(name: str) -> None:
    analysis = run_json(["analyze", str(EXAMPLES / name), "--json", "-"])
    validate(analysis, "analysis")
    validate(run_json(["probe", str(EXAMPLES / name)]), "probe")


def test_a_schema_violation_is_caught() -> None:
    analysis = run_json(["analyze", str(EXAMPLES / "grid-bbaf2n.mpg"), "--json", "-"])
    analysis["segments"][0]["score"] = 7.5  # off the [-3, 3] scale
    with pytest.raises(jsonschema.ValidationError):
        validate(analysis, "analysis")


def test_probe_reports_nominal_rate_and_audio_format() -> None:
    grid = run_json(["probe", str(EXAMPLES / "grid-bbaf2n.mpg")])
    assert (grid["nominal_fps"], grid["real_fps"], grid["audio_rate"], grid["audio_channels"]) == (25.0, 50.0,
                                                                                                  44100, 2)


@pytest.fixture(scope="module")
def batch_out(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("batch")
    (root / "in").mkdir()
    shutil.copy(EXAMPLES / "grid-bbaf2n.mpg", root / "in" / "grid.mpg")
    (root / "in" / "broken.mp4").write_text("not a video")
    run_json(["batch", str(root / "in"), "--out", str(root / "out"), "--html"])
    return root / "out"


def test_batch_records_and_summary(batch_out: Path) -> None:
    records = [json.loads(line) for line in (batch_out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["status"] for r in records) == ["done", "failed"]
    for record in records:
        validate(record, "batch-record")
    validate(json.loads((batch_out / "summary.json").read_text()), "batch-summary")


def test_batch_html_index_links_each_report(batch_out: Path) -> None:
    index = (batch_out / "index.html").read_text("utf-8")
    done = next(json.loads(line) for line in (batch_out / "results.jsonl").read_text().splitlines()
                if '"done"' in line)
    assert f'href="{done["result"]["report"]}"' in index and (batch_out / done["result"]["report"]).is_file()
    assert "broken.mp4" in index and "not a readable media file" in index


def test_cache_info(tmp_path) -> None:
    validate(run_json(["cache", "info", "--cache-dir", str(tmp_path)]), "cache-info")
