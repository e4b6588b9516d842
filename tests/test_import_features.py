"""Public feature sets from the CLI: .csd and MMSA files become dataset folders that train reads."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from test_model_datasets import mmsa_split, write_csd

from sgdtam_pipe.pipeline.cli import main
from sgdtam_pipe.pipeline.dataset import load_dataset, load_example
from sgdtam_pipe.pipeline.training import train_checkpoint


def _csd_files(tmp_path: Path) -> dict[str, Path]:
    t = np.arange(0, 10, 0.05)
    rng = np.random.default_rng(0)
    labels, audio = {}, {}
    for k, vid in enumerate(("v1", "v2", "v3", "v4")):
        audio[vid] = (rng.normal(size=(len(t), 3)), np.stack([t, t + 0.05], 1))
        labels[vid] = (np.array([[1.5 - k], [-0.5]]), np.array([[0.0, 3.0], [4.25, 8.0]]))
    write_csd(tmp_path / "a.csd", "COVAREP", audio, {"dimension names": ["f0", "energy", "nasality"]})
    write_csd(tmp_path / "l.csd", "Opinion Segment Labels", labels, {})
    folds = tmp_path / "folds.json"
    folds.write_text(json.dumps({"train": ["v1", "v2"], "dev": ["v3"], "test": ["v4"]}))
    return {"labels": tmp_path / "l.csd", "audio": tmp_path / "a.csd", "folds": folds, "t": t,
            "v3": audio["v3"][0]}


def test_csd_import_keeps_real_intervals_and_trains(tmp_path: Path) -> None:
    files = _csd_files(tmp_path)
    out = tmp_path / "dataset"
    done = CliRunner().invoke(main, ["import-features", "csd", "--labels", str(files["labels"]), "--audio",
                                     str(files["audio"]), "--folds", str(files["folds"]), "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["splits"] == {"train": 4, "dev": 2, "test": 2}
    data = load_dataset(out)
    second = next(e for e in data["examples"] if e["source"].endswith("#v3[1]"))
    assert second["split"] == "dev" and second["label"] == -0.5
    clip = load_example(out, second)
    assert clip.present() == ("audio",) and not clip.audio.times_synthetic
    np.testing.assert_allclose(clip.audio.start[:2], [0.0, 0.05])        # [4.25, 4.3) shifted to the segment start
    rows = np.flatnonzero((files["t"] + 0.05 > 4.25) & (files["t"] < 8.0))
    np.testing.assert_allclose(clip.audio.start, np.clip(files["t"][rows], 4.25, 8.0) - 4.25, atol=1e-9)
    np.testing.assert_allclose(clip.audio.end, np.clip(files["t"][rows] + 0.05, 4.25, 8.0) - 4.25, atol=1e-9)
    np.testing.assert_allclose(clip.audio.values, files["v3"][rows], rtol=1e-6)   # v3: the dev video
    assert clip.audio.names == ("f0", "energy", "nasality")
    card = train_checkpoint(out, tmp_path / "ckpt", preset="tiny", epochs=2, verbose=False)
    assert card["data"]["modalities_never_seen_in_training"] == ["text", "video"]


def test_csd_segment_outside_every_fold_is_refused(tmp_path: Path) -> None:
    files = _csd_files(tmp_path)
    files["folds"].write_text(json.dumps({"train": ["v1"]}))
    done = CliRunner().invoke(main, ["import-features", "csd", "--labels", str(files["labels"]), "--folds",
                                     str(files["folds"]), "--out", str(tmp_path / "d")])
    assert done.exit_code == 2 and "video 'v2' is in no split" in done.stderr


def test_mmsa_import_needs_trust_and_keeps_its_splits(tmp_path: Path) -> None:
    path = tmp_path / "mosi.pkl"
    path.write_bytes(pickle.dumps({"train": mmsa_split(), "valid": mmsa_split(), "test": mmsa_split()}))
    args = ["import-features", "mmsa", str(path), "--out", str(tmp_path / "d"), "--duration", "2"]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2 and "trusted" in refused.stderr
    done = CliRunner().invoke(main, [*args, "--trust-pickle"])
    assert done.exit_code == 0, done.output
    data = load_dataset(tmp_path / "d")
    assert sorted({e["split"] for e in data["examples"]}) == ["test", "train", "valid"]
    clip = load_example(tmp_path / "d", data["examples"][0])
    assert clip.present() == ("text", "audio", "video") and clip.text.times_synthetic
    card = train_checkpoint(tmp_path / "d", tmp_path / "ckpt", preset="tiny", epochs=2, verbose=False)
    assert "validation (valid)" in card["metrics"]


def _csd_args(files: dict, out: Path) -> list[str]:
    return ["import-features", "csd", "--labels", str(files["labels"]), "--folds", str(files["folds"]),
            "--out", str(out)]


def test_csd_bad_folds_and_foreign_out_folder_are_refused(tmp_path: Path) -> None:
    files = _csd_files(tmp_path)
    for folds, message in ((["v1"], "a folds file is a JSON object"), ("{", "not a JSON folds file"),
                           ({"dev": ["v1"]}, "no 'train' split"),
                           ({"train": ["v1", "v2"], "test": ["v2", "v3", "v4"]}, "'v2' is in both")):
        files["folds"].write_text(folds if isinstance(folds, str) else json.dumps(folds))
        done = CliRunner().invoke(main, _csd_args(files, tmp_path / "d"))
        assert done.exit_code == 2 and "folds.json" in done.stderr and message in done.stderr, done.stderr
    files["folds"].write_text(json.dumps({"train": ["v1", "v2"], "dev": ["v3", "v4"]}))
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    done = CliRunner().invoke(main, _csd_args(files, foreign))
    assert done.exit_code == 2 and "not a dataset folder" in done.stderr
    assert (foreign / "notes.txt").read_text() == "keep me"
    out = tmp_path / "d"
    assert CliRunner().invoke(main, _csd_args(files, out)).exit_code == 0
    files["folds"].write_text(json.dumps({"train": ["v1", "v2", "v3"], "dev": ["v4"]}))
    assert CliRunner().invoke(main, _csd_args(files, out)).exit_code == 0   # re-import over a dataset folder
    wanted = {e["id"] + ".npz" for e in load_dataset(out)["examples"]}
    assert {p.name for p in (out / "examples").iterdir()} == wanted and len(wanted) == 8


def test_mmsa_bad_files_are_refused_naming_them(tmp_path: Path) -> None:
    short = mmsa_split()
    short["audio"] = short["audio"][:2]
    cases = {"nosplit.pkl": ({"train": mmsa_split(), "test": mmsa_split()}, "split 'valid'"),
             "short.pkl": ({"train": short, "valid": mmsa_split(), "test": mmsa_split()}, "2 'audio' rows"),
             "junk.pkl": (None, "not a usable MMSA feature pickle")}
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(b"junk" if content is None else pickle.dumps(content))
        done = CliRunner().invoke(main, ["import-features", "mmsa", str(path), "--trust-pickle",
                                         "--out", str(tmp_path / "d")])
        assert done.exit_code == 2 and name in done.stderr and message in done.stderr, done.stderr
        assert not (tmp_path / "d" / "dataset.json").exists()
