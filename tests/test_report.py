"""Patterns and validation on every score, and a readable summary and plot that survive absent scores."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from synthetic_clips import make_clip

from sgdtam_pipe.model.checkpoint import feature_spec_from_clips, save_checkpoint
from sgdtam_pipe.model.config import LabelSpec, SGDTAMConfig
from sgdtam_pipe.model.sgdtam import SGDTAM
from sgdtam_pipe.pipeline import analyze as analyze_module
from sgdtam_pipe.pipeline import report
from sgdtam_pipe.pipeline.analyze import Result, SegmentResult
from sgdtam_pipe.pipeline.cli import main
from sgdtam_pipe.pipeline.plot import plot_timeline
from sgdtam_pipe.pipeline.scoring import Checkpoint, load_scorer

SENTIMENT = LabelSpec("classification", ("negative", "neutral", "positive"))
PATTERNS = {"L": {"validated": True, "n": 40, "accuracy": 0.66}, "LAV": {"validated": False, "n": 0, "accuracy": None}}
MODALITIES = {"text": {"present": True, "real_rows": 4}, "audio": {"present": True, "real_rows": 30},
              "video": {"present": False, "reason": "no face in any of the 30 sampled frames"}}


def _scorer(folder: Path, label: LabelSpec = SENTIMENT, patterns=None) -> Checkpoint:
    clips = [make_clip(np.random.default_rng(0))]
    torch.manual_seed(0)
    save_checkpoint(folder, SGDTAM(SGDTAMConfig.preset("tiny", label=label)), feature_spec=feature_spec_from_clips(clips),
                    label_spec=label, data_description={}, metrics={}, patterns=patterns)
    return load_scorer(folder)


def _result(scorer: Checkpoint, present: list[tuple[str, ...]]) -> Result:
    """One two-second segment per entry of ``present`` (empty: nothing observed), scored by ``scorer``."""
    rng = np.random.default_rng(1)
    scores = scorer.score([make_clip(rng, present=p, name=str(i)) for i, p in enumerate(present)])
    segments = [SegmentResult(2.0 * i, 2.0 * i + 2.0, "", s) for i, s in enumerate(scores)]
    overall = scorer.combine(scores, [2.0] * len(scores))
    return Result("talk.mp4", "sha", 2.0 * len(present), overall, segments, MODALITIES, {"model": 0.01},
                  {"name": "tiny"})


@pytest.fixture(scope="module")
def validated_l(tmp_path_factory) -> Checkpoint:
    return _scorer(tmp_path_factory.mktemp("ckpt") / "l", patterns=PATTERNS)


def test_each_score_names_its_pattern_and_what_the_card_says_of_it(validated_l):
    result = _result(validated_l, [("text",), ("text", "audio", "video"), ()])
    first, full, empty = (s.score.to_json() for s in result.segments)
    assert (first["pattern"], first["validated"], first["dev_accuracy"]) == ("L", True, 0.66)
    assert (full["pattern"], full["validated"], full["dev_accuracy"]) == ("LAV", False, None)
    assert (empty["pattern"], empty["validated"], empty["score"]) == (None, False, None)
    overall = result.to_json()["overall"]
    assert (overall["pattern"], overall["validated"], overall["dev_accuracy"]) == ("L | LAV", False, None)
    json.dumps(result.to_json(), allow_nan=False)


def test_a_card_without_pattern_records_validates_nothing(tmp_path):
    overall = _result(_scorer(tmp_path), [("text",)]).overall
    assert (overall.pattern, overall.validated) == ("L", False)


def test_summary_marks_unvalidated_routes_and_unscored_segments(validated_l):
    lines = report.summary_text(_result(validated_l, [("text",), ("text", "audio", "video"), ()])).splitlines()
    assert lines[1].startswith("overall sentiment: ") and lines[1].endswith(
        "UNVALIDATED: 1 of 2 scored segments take routes the checkpoint was not validated on (LAV)")
    segments = lines[lines.index("segments:") + 1:][:3]
    assert segments[0].startswith("  [  0.00,   2.00)  ") and "  route L (dev accuracy 0.66)  generated" in segments[0]
    assert "UNVALIDATED route LAV" in segments[1]
    assert segments[2] == "  [  4.00,   6.00)  no score (nothing observed)"
    assert "  video  missing: no face in any of the 30 sampled frames" in lines


def test_a_validated_clip_says_so_on_the_overall_line(validated_l):
    line = report.summary_text(_result(validated_l, [("text",), ("text",)])).splitlines()[1]
    assert line.endswith("route L (dev accuracy 0.66)") and "UNVALIDATED" not in line


def test_summary_of_classes_that_are_not_a_sentiment_scale(tmp_path):
    scorer = _scorer(tmp_path, LabelSpec("classification", ("angry", "happy")))
    result = _result(scorer, [("text", "audio"), ()])
    assert result.overall.score is None and result.overall.polarity in ("angry", "happy")
    lines = report.summary_text(result).splitlines()
    assert lines[1].startswith(f"overall sentiment: class {result.overall.polarity} (confidence 0.")
    assert "UNVALIDATED route LA" in lines[lines.index("segments:") + 1]


def test_nothing_scored_gives_a_summary_and_a_plot(validated_l, tmp_path):
    result = _result(validated_l, [(), ()])
    assert report.summary_text(result).splitlines()[1] == (
        "overall sentiment: no score (nothing observed)  no segment observed anything the checkpoint can score")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_timeline(result.to_json(), tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_files_are_written_before_the_summary(validated_l, tmp_path, monkeypatch):
    """Were the summary ever to fail, --json and --plot are already on disk."""
    clip = tmp_path / "talk.mp4"
    clip.write_bytes(b"not read: analyze is replaced")
    monkeypatch.setattr(analyze_module, "analyze", lambda *a, **k: _result(validated_l, [("text",), ()]))

    def broken(result):
        raise RuntimeError("summary failed")

    monkeypatch.setattr(report, "summary_text", broken)
    done = CliRunner().invoke(main, ["analyze", str(clip), "--json", str(tmp_path / "r.json"),
                                     "--plot", str(tmp_path / "p.png")])
    assert done.exit_code != 0 and "summary failed" in done.output
    assert json.loads((tmp_path / "r.json").read_text("utf-8"))["segments"][0]["pattern"] == "L"
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_times_spread_evenly_are_said_in_the_json_and_the_summary(validated_l):
    """A stream whose source gave no times (``times_synthetic``) is reported as such, never as measured."""
    from dataclasses import replace

    from sgdtam_pipe.core.media import probe
    from sgdtam_pipe.pipeline.analyze import _modality_report
    from sgdtam_pipe.pipeline.features import ExtractedClip

    clip = make_clip(np.random.default_rng(2))
    features = replace(clip, text=replace(clip.text, times_synthetic=True))
    grid = Path(__file__).resolve().parents[1] / "examples" / "grid-bbaf2n.mpg"
    modalities = _modality_report(ExtractedClip(features, probe(grid), None))
    assert modalities["text"]["times"] == "spread evenly" and modalities["audio"]["times"] == "measured"
    result = _result(validated_l, [("text",)])
    result.modalities = modalities
    lines = report.summary_text(result).splitlines()
    assert any(line.strip().startswith("text") and "times spread evenly, not measured" in line for line in lines)
    assert not any(line.strip().startswith("audio") and "spread evenly" in line for line in lines)
