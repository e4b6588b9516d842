"""End to end on real clips with real extractors and a real checkpoint: analyze, cache, extract, train, evaluate."""

from __future__ import annotations

import csv
import json
import shutil
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner
from media_factory import make_media

from sgdtam_pipe.pipeline.analyze import AnalyzeOptions, analyze
from sgdtam_pipe.pipeline.cli import main
from sgdtam_pipe.pipeline.dataset import build_dataset
from sgdtam_pipe.pipeline.scoring import STARTER, load_scorer
from sgdtam_pipe.pipeline.training import evaluate_checkpoint, train_checkpoint

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
GRID = EXAMPLES / "grid-bbaf2n.mpg"
PEXELS = EXAMPLES / "pexels-crying-to-laughing.mp4"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def scorer():
    return load_scorer(None)


@pytest.fixture(scope="module")
def grid_result(cache_dir, scorer):
    return analyze(GRID, AnalyzeOptions(cache_dir=cache_dir), scorer=scorer)


def test_starter_checkpoint_ships_with_a_model_card() -> None:
    card = json.loads((STARTER / "card.json").read_text("utf-8"))
    assert card["label"] == {"kind": "classification", "classes": ["negative", "neutral", "positive"]}
    assert card["data"]["modalities_never_seen_in_training"] == []
    assert card["data"]["training_examples_with_modality"]["audio"] > 0 and card["data"]["groups"]["train"]["fer2013"] > 0
    assert (STARTER / "MODEL_CARD.md").exists()


def test_grid_clip_all_modalities_observed(grid_result) -> None:
    data = grid_result.to_json()
    assert [data["modalities"][m]["present"] for m in ("text", "audio", "video")] == [True, True, True]
    assert -3 <= data["overall"]["score"] <= 3 and data["overall"]["polarity"] in ("negative", "neutral", "positive")
    assert 0 < data["overall"]["confidence"] <= 1
    assert data["segments"] and all(0 <= s["start"] < s["end"] <= 3.05 for s in data["segments"])
    assert data["overall"]["generated"] == [] and data["overall"]["observed"] == ["text", "audio", "video"]
    assert set(data["timings_s"]) >= {"probe", "text", "audio", "video", "model"}
    assert data["checkpoint"]["name"] == "starter"
    assert data["modalities"]["text"]["transcript"].lower().endswith("f2 now.")  # tiny.en mishears "bin blue at"
    json.dumps(data, allow_nan=False)


def test_cached_reanalysis_reuses_every_modality(grid_result, cache_dir, scorer) -> None:
    again = analyze(GRID, AnalyzeOptions(cache_dir=cache_dir), scorer=scorer)
    assert all(again.modalities[m]["cached"] for m in ("text", "audio", "video"))
    assert again.overall == grid_result.overall
    assert sum(again.timings[m] for m in ("text", "audio", "video")) < 0.5 * sum(
        grid_result.timings[m] for m in ("text", "audio", "video"))


def test_changing_one_modality_recomputes_only_that_one(grid_result, cache_dir) -> None:
    from sgdtam_pipe.pipeline.cache import FeatureCache
    from sgdtam_pipe.pipeline.features import ExtractionSettings, extract_clip

    extracted = extract_clip(GRID, ExtractionSettings(fps=10.0), cache=FeatureCache(cache_dir))
    assert extracted.cached == {"text": True, "audio": True, "video": False}


def test_silent_face_clip_takes_the_video_only_route(cache_dir, scorer) -> None:
    result = analyze(PEXELS, AnalyzeOptions(cache_dir=cache_dir), scorer=scorer).to_json()
    assert not result["modalities"]["text"]["present"] and "no speech" in result["modalities"]["text"]["reason"]
    assert not result["modalities"]["audio"]["present"] and "silent" in result["modalities"]["audio"]["reason"]
    assert result["modalities"]["video"]["present"]
    assert len(result["segments"]) == 5 and result["segments"][-1]["end"] == pytest.approx(19.69, abs=0.05)
    for segment in result["segments"]:
        assert segment["observed"] == ["video"]
        assert sorted(segment["generated"]) == ["audio", "text"]
    assert "video" in result["overall"]["route"]


def test_cli_json_to_stdout_and_plot(tmp_path: Path, cache_dir: Path) -> None:
    plot = tmp_path / "timeline.png"
    result = CliRunner().invoke(main, ["analyze", str(GRID), "--json", "-", "--plot", str(plot),
                                       "--cache-dir", str(cache_dir)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["source"] == str(GRID)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", plot.read_bytes()[16:24])
    assert (width, height) == (1000, 600)


@pytest.mark.parametrize("kind", ["no-audio", "no-video", "silent", "short"])
def test_clips_missing_a_modality_are_marked_with_a_reason(tmp_path: Path, kind: str, cache_dir: Path,
                                                           scorer) -> None:
    options = {"no-audio": dict(audio=None, seconds=1.0), "no-video": dict(video=False, seconds=1.0),
               "silent": dict(audio="silence", seconds=1.0), "short": dict(seconds=0.2)}[kind]
    clip = make_media(tmp_path / f"{kind}.mp4", **options)
    modalities = analyze(clip, AnalyzeOptions(cache_dir=cache_dir), scorer=scorer).to_json()["modalities"]
    reasons = {m: modalities[m].get("reason", "") for m in modalities}
    if kind == "no-audio":
        assert "no audio stream" in reasons["audio"] and not modalities["text"]["present"]
    if kind == "no-video":
        assert "no video stream" in reasons["video"]
    if kind == "silent":
        assert "silent" in reasons["audio"] and not modalities["text"]["present"]
    if kind != "no-video":  # a test pattern has no face
        assert not modalities["video"]["present"] and "no face" in reasons["video"]


def test_cli_analyze_bad_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "-fake clip é.mp4"
    bad.write_text("not a video")
    result = CliRunner().invoke(main, ["analyze", "--no-cache", "--", str(bad)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and str(bad) in result.output and "Traceback" not in result.output


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, cache_dir) -> Path:
    """Clip segments cut out of a longer video plus transcript-only rows, with train/dev/test splits."""
    root = tmp_path_factory.mktemp("labelled")
    shutil.copy(GRID, root / "grid.mpg")
    labels = root / "labels.csv"
    with open(labels, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["clip", "text", "label", "split", "start", "end"])
        for i, (split, label) in enumerate([("train", "positive"), ("train", "negative"), ("dev", "neutral"),
                                            ("test", "positive")]):
            writer.writerow(["grid.mpg", "", label, split, 0.0 + 0.5 * i, 1.5 + 0.5 * i])
        for text, label, split in [("I love this so much", "positive", "train"), ("this is awful", "negative", "train"),
                                   ("it is a table", "neutral", "train"), ("what a great day", "positive", "dev"),
                                   ("I hate waiting", "negative", "test")]:
            writer.writerow(["", text, label, split, "", ""])
    out = root / "dataset"
    summary = build_dataset(labels, out, AnalyzeOptions(cache_dir=cache_dir))
    assert summary["examples"] == 9 and summary["splits"] == {"train": 5, "dev": 2, "test": 2}
    return out


def test_train_and_evaluate_a_checkpoint_from_labelled_clips(dataset: Path, tmp_path: Path) -> None:
    card = train_checkpoint(dataset, tmp_path / "ckpt", preset="tiny", epochs=2)
    assert card["data"]["training_examples_with_modality"] == {"text": 5, "audio": 2, "video": 2}
    assert card["features"]["audio"]["extractor"] == "opensmile"
    metrics = evaluate_checkpoint(dataset, tmp_path / "ckpt", split="test", per_pattern=True)
    assert metrics["all"]["count"] == 2 and 0 <= metrics["all"]["accuracy"] <= 1
    assert metrics["LAV"]["count"] == 1 and metrics["L"]["count"] == 2
    result = CliRunner().invoke(main, ["evaluate", str(dataset), "--checkpoint", str(tmp_path / "ckpt"),
                                       "--split", "nope"])
    assert result.exit_code == 2 and "no examples in split 'nope'" in result.output


def test_checkpoint_refuses_features_from_another_backend(tmp_path: Path, cache_dir: Path, scorer) -> None:
    result = CliRunner().invoke(main, ["analyze", str(GRID), "--audio-backend", "librosa",
                                       "--cache-dir", str(cache_dir)])
    assert result.exit_code == 2
    assert "audio" in result.output and "opensmile" in result.output and "librosa" in result.output


def test_batch_cli_with_the_real_analysis_on_a_mixed_folder(tmp_path: Path, cache_dir: Path) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(GRID, folder / "sub" / "grid copy.mpg")
    (folder / "broken.mp4").write_text("not a video")
    (folder / "notes.txt").write_text("ignored")
    (folder / "sub" / "loop").symlink_to(folder, target_is_directory=True)
    out = tmp_path / "out"
    args = ["batch", str(folder), "--out", str(out), "--cache-dir", str(cache_dir)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    rows = {Path(r["path"]).name: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert set(rows) == {"grid copy.mpg", "broken.mp4"}
    good = rows["grid copy.mpg"]
    assert good["status"] == "done" and good["result"]["text"] == "observed" and -3 <= good["result"]["score"] <= 3
    assert good["result"]["analysis"]["modalities"]["video"]["present"]
    assert rows["broken.mp4"]["status"] == "failed" and rows["broken.mp4"]["stage"] == "media"
    assert "not a readable media file" in rows["broken.mp4"]["reason"]
    again = json.loads(CliRunner().invoke(main, args).stdout)
    assert again["skipped"] == 1 and again["counts"]["done"] == 1
