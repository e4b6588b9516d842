"""Start-up: a re-analysis whose features and checkpoint are cached reads its scores back and never imports torch.

The in-process tests feed ``analyze`` synthetic features (``extract_clip``
replaced) and a tiny checkpoint, and count checkpoint loads; the last test
runs the real CLI twice on the GRID clip in fresh processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from synthetic_clips import make_clip

from sgdtam_pipe.core.timeline import ClipFeatures, ClipInfo
from sgdtam_pipe.pipeline import analyze as analyze_module
from sgdtam_pipe.pipeline import result_cache
from sgdtam_pipe.pipeline.analyze import AnalyzeOptions, analyze
from sgdtam_pipe.pipeline.cache import FeatureCache
from sgdtam_pipe.pipeline.features import ExtractedClip
from sgdtam_pipe.pipeline.scoring import CHECKPOINT_FILES, SegmentScore, checkpoint_digest

REPO = Path(__file__).resolve().parents[1]
GRID = REPO / "examples" / "grid-bbaf2n.mpg"
HEAVY = ("torch", "transformers", "faster_whisper", "ctranslate2", "mediapipe", "opensmile", "librosa", "cv2",
         "matplotlib", "safetensors.torch")


def _checkpoint(folder: Path, seed: int = 0) -> Path:
    import torch

    from sgdtam_pipe.model.checkpoint import feature_spec_from_clips, save_checkpoint
    from sgdtam_pipe.model.config import LabelSpec, SGDTAMConfig
    from sgdtam_pipe.model.sgdtam import SGDTAM

    label = LabelSpec("classification", ("negative", "neutral", "positive"))
    torch.manual_seed(seed)
    save_checkpoint(folder, SGDTAM(SGDTAMConfig.preset("tiny", label=label)),
                    feature_spec=feature_spec_from_clips([make_clip(np.random.default_rng(0))]), label_spec=label,
                    data_description={}, metrics={}, patterns={"LAV": {"validated": True, "n": 9, "accuracy": 0.5}})
    return folder


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return _checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")


def _features(seed: int) -> ClipFeatures:
    """A three-second synthetic clip whose content hash is a real (made-up) SHA-256."""
    return replace(make_clip(np.random.default_rng(seed), duration=3.0), clip=ClipInfo("ab" * 32, 3.0, "talk.mp4"))


class Harness:
    """``analyze`` over synthetic features, counting checkpoint loads."""

    def __init__(self, monkeypatch, cache_dir: Path, checkpoint: Path) -> None:
        self.loads = 0
        self.features = _features(5)
        self.cache_dir, self.checkpoint = cache_dir, checkpoint
        real_load = analyze_module.load_scorer

        def counting_load(*args, **kwargs):
            self.loads += 1
            return real_load(*args, **kwargs)

        monkeypatch.setattr(analyze_module, "load_scorer", counting_load)
        monkeypatch.setattr(analyze_module, "extract_clip", self._extract)

    def _extract(self, path, settings, *, cache, hook=None) -> ExtractedClip:
        info = SimpleNamespace(duration=self.features.clip.duration, audio_choice="")
        return ExtractedClip(self.features, info, None, {"probe": 0.0}, {m: cache is not None for m in
                                                                       ("text", "audio", "video")})

    def run(self, **options):
        options = {"cache_dir": self.cache_dir, "checkpoint": self.checkpoint, "window_seconds": 1.0, **options}
        return analyze("talk.mp4", AnalyzeOptions(**options))

    def entries(self) -> list[Path]:
        return sorted(self.cache_dir.rglob(f"{result_cache.NAME}-*.{result_cache.KIND}.json"))


def _comparable(result) -> dict:
    data = result.to_json()
    data.pop("timings_s")
    return data


def test_a_second_analysis_reads_its_scores_back_without_loading_the_checkpoint(monkeypatch, tmp_path,
                                                                                 checkpoint) -> None:
    harness = Harness(monkeypatch, tmp_path / "cache", checkpoint)
    first = harness.run()
    assert harness.loads == 1 and len(harness.entries()) == 1 and "model_load" in first.timings
    again = harness.run()
    assert harness.loads == 1, "the cached re-analysis loaded the checkpoint"
    assert "model_load" not in again.timings and "model" in again.timings
    assert again.overall == first.overall and [s.score for s in again.segments] == [s.score for s in first.segments]
    assert _comparable(again) == _comparable(first)
    assert FeatureCache(tmp_path / "cache").info()["extractors"] == {result_cache.NAME: 1}


def test_scores_are_recomputed_when_anything_they_depend_on_changes(monkeypatch, tmp_path, checkpoint) -> None:
    harness = Harness(monkeypatch, tmp_path / "cache", checkpoint)
    harness.run()
    harness.run(window_seconds=0.5)  # other segments
    assert harness.loads == 2
    other = _checkpoint(tmp_path / "other", seed=1)  # other weights
    harness.run(checkpoint=other)
    assert harness.loads == 3
    original, harness.features = harness.features, _features(6)  # other features
    harness.run()
    assert harness.loads == 4 and len(harness.entries()) == 4
    harness.features = _features(5)  # the first features again, made afresh: the same content
    assert harness.features is not original
    for options in ({}, {"window_seconds": 0.5}, {"checkpoint": other}):
        harness.run(**options)
    assert harness.loads == 4


def test_the_same_checkpoint_elsewhere_hits_and_names_its_own_folder(monkeypatch, tmp_path, checkpoint) -> None:
    harness = Harness(monkeypatch, tmp_path / "cache", checkpoint)
    first = harness.run()
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in CHECKPOINT_FILES:
        (copy / name).write_bytes((checkpoint / name).read_bytes())
    again = harness.run(checkpoint=copy)
    assert harness.loads == 1
    assert again.checkpoint == {**first.checkpoint, "name": "copy", "path": str(copy)}


def test_an_explicit_cuda_request_is_still_refused_without_a_gpu_on_a_hit(monkeypatch, tmp_path, checkpoint) -> None:
    from sgdtam_pipe.core import devices
    from sgdtam_pipe.core.errors import UserError

    harness = Harness(monkeypatch, tmp_path / "cache", checkpoint)
    harness.run()
    monkeypatch.setattr(devices, "torch_cuda", lambda: (False, "no GPU (test)"))
    with pytest.raises(UserError, match="--device cuda"):
        harness.run(device="cuda")
    assert harness.loads == 1
    harness.run(device="cpu")
    assert harness.loads == 1


def test_no_cache_neither_reads_nor_writes_scores(monkeypatch, tmp_path, checkpoint) -> None:
    harness = Harness(monkeypatch, tmp_path / "cache", checkpoint)
    harness.run()
    harness.run(use_cache=False)
    harness.run(use_cache=False)
    assert harness.loads == 3 and len(harness.entries()) == 1


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong shape", "too few segments", "bad score"])
def test_a_damaged_entry_is_never_trusted(monkeypatch, tmp_path, checkpoint, damage: str) -> None:
    harness = Harness(monkeypatch, tmp_path / "cache", checkpoint)
    first = harness.run()
    [entry] = harness.entries()
    stored = json.loads(entry.read_text())
    if damage == "garbage":
        entry.write_bytes(b"\x00not json")
    elif damage == "truncated":
        entry.write_text(entry.read_text()[:40])
    else:  # parses, with a valid checksum record, but is not what it should be
        if damage == "wrong shape":
            stored = {"format": result_cache.FORMAT, "segments": "none"}
        elif damage == "too few segments":
            stored["segments"] = stored["segments"][:1]
        else:
            stored["overall"]["score"] = "high"
        identity = result_cache.entry_identity(harness.features, analyze_module.segment_intervals(
            harness._extract(None, None, cache=True), 1.0), checkpoint)
        FeatureCache(tmp_path / "cache").put_json(harness.features.clip.sha256, identity, result_cache.KIND, stored)
    again = harness.run()
    assert harness.loads == 2, "a damaged entry was trusted"
    assert _comparable(again) == _comparable(first)
    assert json.loads(harness.entries()[0].read_text())["segments"] == json.loads(
        json.dumps([s.score.to_record() for s in first.segments]))  # rewritten whole
    harness.run()
    assert harness.loads == 2


def test_segment_score_records_round_trip_exactly_and_refuse_anything_else() -> None:
    score = SegmentScore(-1.9249999, "negative", 0.8123456789, {"negative": 0.8123456789, "neutral": 0.1,
                                                                  "positive": 0.0876543211},
                         ("text", "audio"), ("video",), "LA->V", "LA", True, 0.5)
    record = json.loads(json.dumps(score.to_record()))
    assert SegmentScore.from_record(record) == score
    for broken in ({**record, "score": True}, {**record, "observed": ["smell"]}, {**record, "extra": 1},
                   {k: v for k, v in record.items() if k != "route"}, {**record, "validated": "yes"},
                   {**record, "probabilities": {"negative": "a lot"}}, [record]):
        with pytest.raises(ValueError):
            SegmentScore.from_record(broken)


def test_checkpoint_files_are_the_ones_load_checkpoint_reads(checkpoint, tmp_path) -> None:
    from sgdtam_pipe.model.checkpoint import CARD, WEIGHTS

    assert set(CHECKPOINT_FILES) == {CARD, WEIGHTS}
    assert checkpoint_digest(checkpoint) is not None and checkpoint_digest(tmp_path) is None


def _cli(args: list[str], cache_dir: Path) -> subprocess.CompletedProcess:
    """The CLI in a fresh process, which then prints (to stderr, last line) the heavy modules it imported."""
    code = ("import json, sys\n"
            "from sgdtam_pipe.pipeline.cli import main\n"
            "code = 0\n"
            "try:\n    main(sys.argv[1:], prog_name='sgdtam-pipe')\nexcept SystemExit as exit:\n    code = exit.code\n"
            f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)\n"
            "sys.exit(code)\n")
    return subprocess.run([sys.executable, "-c", code, *args, "--cache-dir", str(cache_dir)], capture_output=True,
                          text=True, timeout=600)


def _without_run_details(analysis: dict) -> dict:
    analysis = dict(analysis, modalities={m: {k: v for k, v in entry.items() if k != "cached"}
                                          for m, entry in analysis["modalities"].items()})
    analysis.pop("timings_s")
    return analysis


@pytest.mark.slow
def test_cli_reanalysis_from_the_cache_imports_no_heavy_library(tmp_path) -> None:
    first = _cli(["-q", "analyze", str(GRID), "--json", "-"], tmp_path / "cache")
    assert first.returncode == 0, first.stderr
    assert "torch" in json.loads(first.stderr.strip().splitlines()[-1])  # the first run did score with torch
    again = _cli(["-q", "-v", "analyze", str(GRID), "--json", "-"], tmp_path / "cache")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stderr.strip().splitlines()[-1]) == []
    assert "scores from the result cache" in again.stderr and "heavy libraries imported: none" in again.stderr
    one, two = json.loads(first.stdout), json.loads(again.stdout)
    assert "model_load" in one["timings_s"] and "model_load" not in two["timings_s"]
    assert all(entry["cached"] for entry in two["modalities"].values())
    assert _without_run_details(two) == _without_run_details(one)
    summary = _cli(["-q", "analyze", str(GRID)], tmp_path / "cache")  # the readable summary, also torch-free
    assert summary.returncode == 0 and json.loads(summary.stderr.strip().splitlines()[-1]) == []
    assert summary.stdout.startswith(f"{GRID}  (3.0 s)\noverall sentiment: ") and "model_load" not in summary.stdout
