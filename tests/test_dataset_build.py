"""Building datasets with the real text encoder: the feature cache, resuming after a kill, clip segments."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from media_factory import make_media

from sgdtam_pipe.pipeline.analyze import AnalyzeOptions
from sgdtam_pipe.pipeline.cli import main
from sgdtam_pipe.pipeline.dataset import build_dataset, load_dataset, load_example

pytestmark = pytest.mark.slow
WORDS = ("bright", "awful", "quiet", "table", "lovely", "broken", "sunny", "late", "kind", "cold")


def text_rows(count: int, label_shift: int = 0) -> list[list[str]]:
    """``count`` different utterances as ``text, label, split, group`` rows."""
    labels = ("negative", "neutral", "positive")
    return [[f"row {i} was {WORDS[i % 10]} and {WORDS[i * 7 % 10]} today", labels[(i + label_shift) % 3],
             ("train", "dev", "test")[i % 3], ("meld", "other")[i % 2]] for i in range(count)]


def write_csv(path: Path, rows: list[list[str]], header=("text", "label", "split", "group")) -> Path:
    with open(path, "w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def assert_same_dataset(a: Path, b: Path) -> None:
    """Same examples in ``dataset.json`` and the same features to float rounding (batches may differ)."""
    first, second = load_dataset(a), load_dataset(b)
    assert first["examples"] == second["examples"] and first["label"] == second["label"]
    for example in first["examples"]:
        x, y = load_example(a, example), load_example(b, example)
        assert x.clip == y.clip and x.present() == y.present() and x.audio == y.audio
        np.testing.assert_allclose(x.text.values, y.text.values, atol=1e-5, rtol=0)
        np.testing.assert_array_equal(x.text.start, y.text.start)


def test_text_rows_hit_the_cache_and_a_label_change_recomputes_nothing(tmp_path: Path) -> None:
    options = AnalyzeOptions(cache_dir=tmp_path / "cache")
    labels = write_csv(tmp_path / "labels.csv", text_rows(12))
    first = build_dataset(labels, tmp_path / "a", options)
    assert (first["examples"], first["computed"], first["cached"]) == (12, 12, 0)
    assert first["groups"] == {"meld": 6, "other": 6}
    assert [e["group"] for e in load_dataset(tmp_path / "a")["examples"]][:2] == ["meld", "other"]
    elsewhere = build_dataset(labels, tmp_path / "b", options)
    assert (elsewhere["computed"], elsewhere["cached"]) == (0, 12)
    assert_same_dataset(tmp_path / "a", tmp_path / "b")
    changed = text_rows(13, label_shift=1)[1:]  # new labels, first row gone, one row added
    again = build_dataset(write_csv(labels, changed), tmp_path / "a", options)
    assert (again["reused"], again["cached"], again["computed"]) == (11, 0, 1)
    data = load_dataset(tmp_path / "a")
    assert [e["label"] for e in data["examples"]] == [row[1] for row in changed]
    assert sorted(p.stem for p in (tmp_path / "a" / "examples").iterdir()) == sorted(e["id"] for e in data["examples"])


def test_a_killed_extract_reruns_only_what_is_missing(tmp_path: Path) -> None:
    total, batch = 240, 16
    labels = write_csv(tmp_path / "labels.csv", text_rows(total))
    build_dataset(labels, tmp_path / "reference", AnalyzeOptions(cache_dir=tmp_path / "reference-cache"))
    command = [str(Path(sys.executable).with_name("sgdtam-pipe")), "extract", str(tmp_path), "--labels", str(labels),
               "--out", str(tmp_path / "ds"), "--cache-dir", str(tmp_path / "cache"), "--batch-rows", str(batch),
               "--quiet"]
    examples = tmp_path / "ds" / "examples"
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline and \
            not (examples.is_dir() and sum(1 for p in examples.glob("*.npz")) >= batch):
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written = sum(1 for p in examples.glob("*.npz"))
    assert process.returncode == -signal.SIGKILL and batch <= written < total
    assert not (tmp_path / "ds" / "dataset.json").exists()  # never looks complete when it is not
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["examples"] == total and summary["reused"] == written
    assert summary["cached"] + summary["computed"] == total - written
    assert all(p.suffix == ".npz" for p in examples.iterdir())  # leftovers of the killed write are gone
    assert_same_dataset(tmp_path / "reference", tmp_path / "ds")


def test_segments_outside_their_clip_are_warned_about_or_refused(tmp_path: Path) -> None:
    make_media(tmp_path / "tone.wav", seconds=1.0)
    labels = write_csv(tmp_path / "labels.csv", [["tone.wav", "", "positive", "0.5", "3.0"],
                                                 ["tone.wav", "", "negative", "2.0", "3.0"],
                                                 ["", "a kind word", "positive", "", ""]],
                       header=("clip", "text", "label", "start", "end"))
    result = CliRunner().invoke(main, ["extract", str(tmp_path), "--labels", str(labels), "--out",
                                       str(tmp_path / "ds"), "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["examples"], summary["failure_lines"], summary["warning_lines"]) == (2, [3], [2])
    assert f"warning: {labels}, line 2: segment ends at 3 s, past the clip's end (1 s): cut there" in result.stderr
    assert f"failed: {labels}, line 3: segment starts at 2 s, at or after the clip's end (1 s)" in result.stderr
    again = json.loads(CliRunner().invoke(main, ["extract", str(tmp_path), "--labels", str(labels), "--out",
                                                 str(tmp_path / "ds"), "--cache-dir", str(tmp_path / "cache"),
                                                 "--quiet"]).stdout)
    assert again["reused"] == 2 and again["warning_lines"] == [2]  # a reused example keeps its warning
