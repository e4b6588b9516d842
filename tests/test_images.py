"""Still images as media: probe, the one frame, the face on a tiny grayscale photo, extract and analyze."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from sgdtam_pipe.core.media import MEDIA_EXTENSIONS, iter_frames, probe
from sgdtam_pipe.core.timeline import MissingModality, TimedFeatures
from sgdtam_pipe.extractors.face import landmarker as face_module
from sgdtam_pipe.extractors.face.landmarker import FaceExtractor
from sgdtam_pipe.model.checkpoint import feature_spec_from_clips, save_checkpoint
from sgdtam_pipe.model.config import LabelSpec, SGDTAMConfig
from sgdtam_pipe.model.sgdtam import SGDTAM
from sgdtam_pipe.pipeline.analyze import AnalyzeOptions
from sgdtam_pipe.pipeline.cli import main
from sgdtam_pipe.pipeline.dataset import build_dataset
from sgdtam_pipe.pipeline.features import (
    ExtractionSettings,
    build_extractors,
    extract_clip,
)

PEXELS = Path(__file__).resolve().parents[1] / "examples" / "pexels-crying-to-laughing.mp4"
SENTIMENT = LabelSpec("classification", ("negative", "neutral", "positive"))


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    """``face``: a FER2013-like photo (48x48 grayscale, cut tight: brows to chin) from a frame of the
    pexels clip; ``blank``: a gradient with no face."""
    folder = tmp_path_factory.mktemp("photos")
    frame = next(f for f in iter_frames(PEXELS) if f.start >= 1.0).image
    crop = cv2.cvtColor(frame[99:277, 355:533], cv2.COLOR_RGB2GRAY)
    cv2.imwrite(str(folder / "face.png"), cv2.resize(crop, (48, 48), interpolation=cv2.INTER_AREA))
    cv2.imwrite(str(folder / "blank.jpg"), np.tile(np.linspace(0, 255, 120, dtype=np.uint8), (90, 1)))
    return {"face": folder / "face.png", "blank": folder / "blank.jpg"}


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".jpeg", ".webp", ".bmp"])
def test_each_image_format_is_one_rgb_frame_over_one_frame_time(tmp_path, suffix):
    path = tmp_path / f"gray{suffix}"
    assert cv2.imwrite(str(path), np.full((30, 40), 200, np.uint8))
    info = probe(path)
    assert suffix in MEDIA_EXTENSIONS and info.still and info.has_video and not info.has_audio
    assert (info.width, info.height) == (40, 30) and info.duration == pytest.approx(1 / 15)
    frames = list(iter_frames(path, fps=10.0))
    assert len(frames) == 1 and (frames[0].start, frames[0].end) == (0.0, pytest.approx(0.1))
    assert frames[0].image.shape == (30, 40, 3) and abs(int(frames[0].image[0, 0, 1]) - 200) <= 2


def test_tiny_grayscale_face_is_found_only_once_bordered_and_upscaled(photos):
    found = FaceExtractor().extract(photos["face"])
    assert isinstance(found, TimedFeatures) and len(found) == 1 and found.mask.all()
    assert (found.start[0], found.end[0]) == (0.0, pytest.approx(1 / 15))
    assert found.values.any()
    assert isinstance(FaceExtractor(still_border=0.0).extract(photos["face"]), MissingModality)
    view = face_module.still_view(np.zeros((48, 48, 3), np.uint8), FaceExtractor().config)
    assert view.shape == (192, 192, 3)  # 12 px of border each side, then x 8/3


def test_photo_without_a_face_says_so(photos):
    result = FaceExtractor().extract(photos["blank"])
    assert isinstance(result, MissingModality) and result.reason == "no face found in the image"


def test_one_landmarker_serves_every_photo(photos, monkeypatch):
    opened = []
    real = face_module.open_landmarker
    monkeypatch.setattr(face_module, "open_landmarker", lambda *a, **k: opened.append(k) or real(*a, **k))
    extractor = FaceExtractor()
    results = [extractor.extract(photos[name]) for name in ("face", "blank", "face")]
    assert [type(r) for r in results] == [TimedFeatures, MissingModality, TimedFeatures]
    assert opened == [{"image_mode": True}]


def test_extract_clip_runs_no_speech_or_acoustic_extractor_on_a_photo(photos, monkeypatch):
    settings = ExtractionSettings(fps=10.0)
    extractors = build_extractors(settings)

    def refuse(*args, **kwargs):
        raise AssertionError("must not run on a still image")

    monkeypatch.setattr(extractors["text"], "transcribe", refuse)
    monkeypatch.setattr(extractors["audio"], "extract", refuse)
    clip = extract_clip(photos["face"], settings, cache=None, extractors=extractors)
    assert clip.features.text.reason == clip.features.audio.reason == "still image"
    assert clip.transcript is None and clip.info.duration == pytest.approx(0.1) == clip.features.clip.duration
    assert clip.features.video.end[0] == pytest.approx(0.1)


def test_a_photo_dataset_rebuilt_elsewhere_comes_from_the_feature_cache(photos, tmp_path):
    """A photo's text and audio are neither cached nor computed, so they must not make it count as computed."""
    (tmp_path / "labels.csv").write_text(f"clip,label,split\n{photos['face']},negative,train\n", "utf-8")
    options = AnalyzeOptions(cache_dir=tmp_path / "cache")
    first = build_dataset(tmp_path / "labels.csv", tmp_path / "a", options)
    again = build_dataset(tmp_path / "labels.csv", tmp_path / "b", options)
    assert (first["computed"], first["cached"]) == (1, 0)
    assert (again["computed"], again["cached"]) == (0, 1)


@pytest.fixture(scope="module")
def video_checkpoint(photos, tmp_path_factory) -> Path:
    """An untrained checkpoint on real face features whose card validates the V route."""
    clip = extract_clip(photos["face"], ExtractionSettings(), cache=None).features
    spec = feature_spec_from_clips([clip])
    torch.manual_seed(0)
    model = SGDTAM(SGDTAMConfig.preset("tiny", text_dim=1, audio_dim=1, video_dim=spec["video"].width,
                                       label=SENTIMENT))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "faces", model, feature_spec=spec, label_spec=SENTIMENT,
                           data_description={}, metrics={},
                           patterns={"V": {"validated": True, "n": 100, "accuracy": 0.74}})


def _analyze(photo: Path, checkpoint: Path, out: Path):
    args = ["analyze", str(photo), "--checkpoint", str(checkpoint), "--no-cache",
            "--json", str(out / "result.json"), "--plot", str(out / "plot.png")]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    return done.output, json.loads((out / "result.json").read_text("utf-8"))


def test_analyze_a_face_photo(photos, video_checkpoint, tmp_path):
    output, data = _analyze(photos["face"], video_checkpoint, tmp_path)
    assert [s["observed"] for s in data["segments"]] == [["video"]]
    segment = data["segments"][0]
    assert (segment["start"], segment["end"]) == (0.0, pytest.approx(1 / 15, abs=1e-3))
    assert segment["pattern"] == "V" and segment["validated"] and segment["dev_accuracy"] == 0.74
    assert data["overall"]["pattern"] == "V" and -3 <= data["overall"]["score"] <= 3
    assert data["modalities"]["text"]["reason"] == data["modalities"]["audio"]["reason"] == "still image"
    assert "route V (dev accuracy 0.74)" in output and "UNVALIDATED" not in output
    assert (tmp_path / "plot.png").stat().st_size > 1000


def test_analyze_a_photo_without_a_face_exits_0_with_the_reason(photos, video_checkpoint, tmp_path):
    output, data = _analyze(photos["blank"], video_checkpoint, tmp_path)
    assert data["overall"]["score"] is None and data["overall"]["polarity"] == "unknown"
    assert data["modalities"]["video"]["reason"] == "no face found in the image"
    assert "overall sentiment: no score (nothing observed)" in output
    assert "video  missing: no face found in the image" in output
    assert (tmp_path / "plot.png").stat().st_size > 1000
