"""The labels CSV checks, the dataset folder's guards and formats: no model is loaded here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sgdtam_pipe.core.errors import UserError
from sgdtam_pipe.core.records_io import atomic_write_json, save_clip, save_clip_file
from sgdtam_pipe.core.timeline import ClipFeatures, ClipInfo, ExtractorIdentity, MissingModality, TimedFeatures
from sgdtam_pipe.pipeline import dataset
from sgdtam_pipe.pipeline.analyze import AnalyzeOptions
from sgdtam_pipe.pipeline.cli import main
from sgdtam_pipe.pipeline.labels_csv import read_labels


def write(path: Path, text: str, *, bom: bool = False) -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def test_bom_group_and_split_case_are_read(tmp_path: Path) -> None:
    labels = read_labels(write(tmp_path / "l.csv", "text,label,split,group\nhi,positive,Dev,meld\nyo,negative,,\n",
                               bom=True))
    assert [(r.text, r.split, r.group) for r in labels.rows] == [("hi", "dev", "meld"), ("yo", "train", "default")]
    assert not labels.refused and not labels.warnings


def test_bad_rows_are_refused_or_warned_with_their_line(tmp_path: Path) -> None:
    csv = write(tmp_path / "l.csv", "\n".join([
        "text,label,split,start,end",
        "good,1.5,train,,",          # 2
        "nan label,nan,train,,",     # 3
        "inf label,-inf,train,,",    # 4
        "bad split,1,training,,",    # 5
        "good,1.5,train,,",          # 6: repeats 2
        "good,-1,test,,",            # 7: same input, other split and label
        "bad time,1,train,0,nan",    # 8
        "backwards,1,train,2,1",     # 9
    ]) + "\n")
    labels = read_labels(csv)
    assert [r.line for r in labels.rows] == [2, 7]
    refused = {n.line: n.reason for n in labels.refused}
    assert refused.keys() == {3, 4, 5, 6, 8, 9}
    assert "'nan' is not a finite number" in refused[3] and "'-inf' is not a finite number" in refused[4]
    assert "unknown split 'training'" in refused[5] and "validation" in refused[5]
    assert "repeats line 2" in refused[6] and "'nan' is not a finite number" in refused[8]
    assert "not after start" in refused[9]
    assert [(n.line, "line 2 in another split" in n.reason) for n in labels.warnings] == [(7, True)]


def test_a_file_that_is_not_a_labels_csv_is_one_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"l\.csv: needs a 'label' column"):
        read_labels(write(tmp_path / "l.csv", "path,sentiment\na,b\n"))
    (tmp_path / "latin1.csv").write_bytes("text,label\ncafé,x\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"latin1\.csv: not UTF-8"):
        read_labels(tmp_path / "latin1.csv")
    with pytest.raises(UserError, match="no labelled rows"):
        read_labels(write(tmp_path / "l.csv", "text,label\n"))


def test_extract_exits_1_when_every_row_failed_and_prints_each_reason(tmp_path: Path) -> None:
    csv = write(tmp_path / "l.csv", "text,label,split\na,nan,train\nb,1,nope\n", bom=True)
    result = CliRunner().invoke(main, ["extract", str(tmp_path), "--labels", str(csv), "--out",
                                       str(tmp_path / "ds"), "--quiet"])
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["examples"] == 0 and summary["failed"] == 2 and summary["failure_lines"] == [2, 3]
    lines = result.stderr.strip().splitlines()
    splits = "train, dev, val, valid, validation, test"
    assert lines == [f"failed: {csv}, line 2: label 'nan' is not a finite number",
                     f"failed: {csv}, line 3: unknown split 'nope'; use one of {splits}"]


def test_an_out_folder_that_is_not_a_dataset_is_refused(tmp_path: Path) -> None:
    csv = write(tmp_path / "l.csv", "text,label\na,nan\n")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "thesis.tex").write_text("keep me")
    with pytest.raises(UserError, match="not empty and not a dataset folder"):
        dataset.build_dataset(csv, tmp_path / "home", AnalyzeOptions(cache_dir=tmp_path / "cache"))
    assert (tmp_path / "home" / "thesis.tex").exists()


def test_a_folder_another_build_holds_is_refused(tmp_path: Path) -> None:
    from filelock import FileLock

    csv = write(tmp_path / "l.csv", "text,label\na,nan\n")
    (tmp_path / "ds" / "examples").mkdir(parents=True)
    with FileLock(tmp_path / "ds" / ".extract.lock"), pytest.raises(UserError, match="another extract is writing"):
        dataset.build_dataset(csv, tmp_path / "ds", AnalyzeOptions(cache_dir=tmp_path / "cache"))


def clip(seed: int) -> ClipFeatures:
    rng = np.random.default_rng(seed)
    start = np.arange(3) * 0.2
    text = TimedFeatures(rng.standard_normal((3, 4)).astype(np.float32), start, start + 0.2, np.ones(3, bool),
                         tuple("abcd"), ExtractorIdentity("t", "1", {}), True)
    return ClipFeatures(ClipInfo("0" * 64, 0.6, "text"), text, MissingModality("none"), MissingModality("none"))


def same(a: ClipFeatures, b: ClipFeatures) -> bool:
    return a.clip == b.clip and a.present() == b.present() and np.array_equal(a.text.values, b.text.values) \
        and a.text.names == b.text.names and a.audio == b.audio


@pytest.mark.parametrize("version", [1, 2])
def test_both_folder_formats_load(tmp_path: Path, version: int) -> None:
    examples = [{"id": f"{k:016x}", "line": k + 2, "split": "train", "label": "positive"} for k in range(3)]
    for k, example in enumerate(examples):
        if version == 1:
            save_clip(tmp_path / "examples" / example["id"], clip(k))
        else:
            save_clip_file(dataset.example_path(tmp_path, example["id"]), clip(k), {"present": [], "warnings": []})
    atomic_write_json(tmp_path / "dataset.json", {"format": version, "label": {"kind": "classification"},
                                                  "examples": examples})
    loaded = [c for c, _ in dataset.iter_split(tmp_path, "train")]
    assert len(loaded) == 3 and all(same(c, clip(k)) for k, c in enumerate(loaded))


def test_an_unfinished_folder_says_so(tmp_path: Path) -> None:
    (tmp_path / "examples").mkdir()
    with pytest.raises(FileNotFoundError, match="unfinished dataset"):
        dataset.load_dataset(tmp_path)
