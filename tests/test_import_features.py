"""Public feature sets from the CLI: .csd and MMSA files become dataset folders that train reads."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from sgdtam_pipe.pipeline.cli import main
from sgdtam_pipe.pipeline.dataset import load_dataset, load_example
from sgdtam_pipe.pipeline.training import train_checkpoint
from test_model_datasets import mmsa_split, write_csd


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
    return {"labels": tmp_path / "l.csd", "audio": tmp_path / "a.csd", "folds": folds}


def test_csd_import_keeps_real_intervals_and_trains(tmp_path: Path) -> None:
    files = _csd_files(tmp_path)
    out = tmp_path / "dataset"
    done = CliRunner().invoke(main, ["import-features", "csd", "--labels", str(files["labels"]), "--audio",
                                     str(files["audio"]), "--folds", str(files["folds"]), "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["splits"] == {"train": 4, "dev": 2, "test": 2}
    data = load_dataset(out)
    second = next(e for e in data["examples"] if e["label"] == -0.5 and e["split"] == "dev")
    clip = load_example(out, second)
    assert clip.present() == ("audio",) and not clip.audio.times_synthetic
    np.testing.assert_allclose(clip.audio.start[:2], [0.0, 0.05])        # [4.25, 4.3) shifted to the segment start
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
