"""Labels CSVs for the public corpora: emotion mapping, actor split, stratified FER subset, MELD spans."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sgdtam_pipe.core.errors import UserError
from sgdtam_pipe.pipeline import corpora
from sgdtam_pipe.pipeline.cli import main


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_emotion_mapping_is_the_documented_one() -> None:
    assert [corpora.polarity(e) for e in ("calm", "happy", "sad", "angry", "fearful", "disgust", "neutral")] == \
        ["positive", "positive", "negative", "negative", "negative", "negative", "neutral"]
    assert corpora.polarity("surprised") is None and corpora.polarity("Surprise") is None
    with pytest.raises(UserError, match="contempt"):
        corpora.polarity("contempt")


def test_ravdess_labels_come_from_the_file_name_and_split_by_actor(tmp_path: Path) -> None:
    root = tmp_path / "ravdess"
    for actor in (1, 17):
        for emotion in ("01", "02", "05", "08"):
            _touch(root / f"Actor_{actor:02d}" / f"03-01-{emotion}-01-01-01-{actor:02d}.flac")
    items = list(corpora.ravdess_items(root, tmp_path))
    assert len(items) == 6  # surprised (08) left out
    assert {(i.clip.split("/")[1], i.split) for i in items} == {("Actor_01", "train"), ("Actor_17", "dev")}
    assert [i.label for i in items if "Actor_01" in i.clip] == ["neutral", "positive", "negative"]
    _touch(root / "Actor_02" / "not-a-ravdess-name.flac")
    with pytest.raises(UserError, match="not-a-ravdess-name"):
        list(corpora.ravdess_items(root, tmp_path))


def test_fer_train_limit_keeps_classes_in_proportion_and_dev_whole(tmp_path: Path) -> None:
    root = tmp_path / "fer2013"
    for split, counts in (("train", {"happy": 40, "sad": 20, "surprise": 10}), ("dev", {"happy": 5, "sad": 3})):
        for name, count in counts.items():
            for k in range(count):
                _touch(root / split / name / f"{name}_{k:05d}.png")
    items = list(corpora.fer2013_items(root, tmp_path, train_limit=30))
    train = [i for i in items if i.split == "train"]
    assert len(train) == 30 and sum(i.label == "positive" for i in train) == 20
    assert sum(i.split == "dev" for i in items) == 8
    assert not any("surprise" in i.clip for i in items)


def test_cli_writes_a_meld_labels_csv_with_real_spans(tmp_path: Path) -> None:
    meld = tmp_path / "meld"
    meld.mkdir()
    header = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"
    (meld / "train_sent_emo.csv").write_text(header + '1,"I love it",A,joy,positive,0,0,1,1,"00:00:01,000","00:00:02,500"\n')
    (meld / "dev_sent_emo.csv").write_text(header + '1,"No.",B,anger,negative,0,0,1,1,"00:00:05,000","00:00:05,000"\n')
    out = tmp_path / "labels.csv"
    done = CliRunner().invoke(main, ["labels", "meld", str(meld), "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["rows"] == 2
    rows = list(csv.DictReader(out.open()))
    assert (rows[0]["text"], rows[0]["start"], rows[0]["end"], rows[0]["group"]) == ("I love it", "0.000", "1.500", "meld")
    assert rows[1]["end"] == "" and rows[1]["split"] == "dev"  # broken MELD time: the word-rate guess
    assert np.isclose(float(rows[0]["end"]) - float(rows[0]["start"]), 1.5)
