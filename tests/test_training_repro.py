"""Training a researcher can trust: reproducible, resumable, honest card, results on stdout only."""

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file
from synthetic_clips import make_dataset
from training_data import synthetic_examples, text_only, write_dataset

from sgdtam_pipe.core.errors import UserError
from sgdtam_pipe.model.checkpoint import load_checkpoint
from sgdtam_pipe.model.config import SGDTAMConfig
from sgdtam_pipe.model.train import NonFiniteLoss, build_model, train
from sgdtam_pipe.pipeline.cli import main
from sgdtam_pipe.pipeline.scoring import Checkpoint
from sgdtam_pipe.pipeline.training import Split, evidence_spares, train_checkpoint
from sgdtam_pipe.pipeline.training_options import TrainingOptions

torch.set_num_threads(1)
TINY = {"preset": "tiny", "epochs": 3, "batch_size": 8, "patience": 3, "plateau_patience": 1}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Two sources: trimodal clips and text-only rows, train/dev/test."""
    def rows(seed, count):
        mixed = synthetic_examples(seed, count, group="clips")
        texts = [(text_only(c), y, "texts") for c, y, _ in synthetic_examples(seed + 10, count)]
        return mixed + texts
    return write_dataset(tmp_path_factory.mktemp("data"), {"train": rows(0, 12), "dev": rows(1, 6),
                                                           "test": rows(2, 4)})


def test_same_seed_gives_identical_weights_and_metrics(dataset: Path, tmp_path: Path) -> None:
    cards = [train_checkpoint(dataset, tmp_path / name, seed=5, verbose=False, **TINY) for name in ("a", "b")]
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    assert cards[0]["metrics"] == cards[1]["metrics"]
    other = train_checkpoint(dataset, tmp_path / "c", seed=6, verbose=False, **TINY)
    assert (tmp_path / "c" / "model.safetensors").read_bytes() != (tmp_path / "a" / "model.safetensors").read_bytes()
    data = cards[0]["data"]
    assert data["seed"] == 5 and other["data"]["seed"] == 6
    assert {"torch", "numpy", "python", "sgdtam-pipe"} <= set(data["versions"])
    assert set(data["fingerprints"]) == {"train", "dev"} and len(data["fingerprints"]["train"]) == 64
    assert data["groups"]["train"] == {"clips": 12, "texts": 12}
    assert not (tmp_path / "a" / "state").exists()


def test_card_holds_calibration_patterns_and_per_class_metrics(dataset: Path, tmp_path: Path) -> None:
    card = train_checkpoint(dataset, tmp_path / "ckpt", seed=0, verbose=False, **TINY)
    calibration = card["calibration"]
    assert set(calibration) == {"temperature", "ece_before", "ece_after", "split", "bins"}
    assert calibration["split"] == "dev" and calibration["bins"] == 15 and calibration["temperature"] > 0
    assert calibration["ece_after"] <= calibration["ece_before"] + 1e-9
    weights = load_file(str(tmp_path / "ckpt" / "model.safetensors"))
    assert float(weights["temperature"]) == pytest.approx(calibration["temperature"])
    assert "normalise.stats.audio.mean" in weights
    patterns = card["patterns"]
    assert set(patterns) == {"L", "A", "V", "LA", "LV", "AV", "LAV"}
    assert patterns["L"]["n"] == 12 and patterns["L"]["by_group"]["texts"]["n"] == 6     # dev: 6 + 6 hold text
    assert patterns["AV"]["n"] == 6 and set(patterns["AV"]["by_group"]) == {"clips"}
    assert all(p["validated"] and set(p) == {"validated", "n", "accuracy", "f1_weighted", "by_group"}
               for p in patterns.values())
    validation = card["metrics"]["validation (dev)"]
    assert set(validation["per_class"]) == {"negative", "positive"}
    assert sum(map(sum, validation["confusion"]["matrix"])) == validation["count"] == 12
    _, loaded = load_checkpoint(tmp_path / "ckpt")
    assert loaded.patterns == patterns and loaded.calibration == calibration


def test_untrained_modalities_get_no_spec_and_are_hidden_at_analysis(tmp_path: Path) -> None:
    texts = {split: [(text_only(c), y, None) for c, y, _ in synthetic_examples(seed, n)]
             for split, seed, n in (("train", 0, 10), ("dev", 1, 4))}
    card = train_checkpoint(write_dataset(tmp_path / "data", texts), tmp_path / "ckpt", verbose=False, **TINY)
    assert set(card["features"]) == {"text"} and card["config"]["audio_dim"] == 1
    assert card["data"]["modalities_never_seen_in_training"] == ["audio", "video"]
    assert card["patterns"]["AV"] == {"validated": False, "n": 0, "accuracy": None, "f1_weighted": None,
                                      "by_group": {}}
    scorer = Checkpoint(tmp_path / "ckpt")
    clip = synthetic_examples(3, 1)[0][0]                        # holds all three, made by other extractors
    shown = scorer.check(clip)
    assert shown.audio.reason == "the checkpoint was not trained on audio" and shown.text is clip.text
    assert scorer.score([shown])[0].observed == ("text",)


@pytest.mark.parametrize("average", [0.0, 0.9], ids=["last-weights", "moving-average"])
def test_resume_after_an_interruption_ends_like_an_uninterrupted_run(dataset: Path, tmp_path: Path,
                                                                     average: float) -> None:
    options = {**TINY, "epochs": 4, "patience": 4, "seed": 1, "average": average}
    train_checkpoint(dataset, tmp_path / "whole", verbose=False, **options)

    def stop_in_epoch_3(step: str, info: dict) -> None:
        if step == "epoch 3/4":
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train_checkpoint(dataset, tmp_path / "cut", verbose=False, hook=stop_in_epoch_3, **options)
    state = json.loads((tmp_path / "cut" / "state" / "seed-1" / "state.json").read_text())
    assert state["epoch"] == 2 and not (tmp_path / "cut" / "model.safetensors").exists()
    with pytest.raises(UserError, match="differs in lr"):
        train_checkpoint(dataset, tmp_path / "cut", verbose=False, resume=True, **{**options, "lr": 0.5})
    resumed = train_checkpoint(dataset, tmp_path / "cut", verbose=False, resume=True, **options)
    assert (tmp_path / "cut" / "model.safetensors").read_bytes() == (tmp_path / "whole" / "model.safetensors").read_bytes()
    assert resumed["metrics"] == json.loads((tmp_path / "whole" / "card.json").read_text())["metrics"]
    logs = [_without_timings(json.loads((tmp_path / name / "train_log.json").read_text())) for name in ("whole", "cut")]
    assert len(logs[0]["epochs"]) == 4 and logs[0] == logs[1]         # epochs 3 and 4 too, not only the best


def _without_timings(history: dict) -> dict:
    for epoch in history["epochs"]:
        for key in ("seconds", "clips_per_s", "left_s"):
            epoch.pop(key, None)
    return history


def test_seeds_and_folds_report_mean_and_std(dataset: Path, tmp_path: Path) -> None:
    card = train_checkpoint(dataset, tmp_path / "ckpt", seeds=(0, 1), folds=2, verbose=False,
                            **{**TINY, "epochs": 2})
    seeds = card["metrics"]["seeds"]
    assert seeds["kept"] == 0 and seeds["runs"] == 2 and set(seeds["per_run"]) == {"0", "1"}
    assert seeds["per_run"]["0"]["f1_weighted"] == card["metrics"]["validation (dev)"]["f1_weighted"]
    assert seeds["std"]["accuracy"] >= 0 and 0 <= seeds["mean"]["accuracy"] <= 1
    folds = card["metrics"]["cross_validation"]
    assert folds["folds"] == 2 and folds["runs"] == 2 and 0 <= folds["mean"]["f1_weighted"] <= 1


def test_cli_prints_one_json_document_and_progress_on_stderr(dataset: Path, tmp_path: Path) -> None:
    args = ["train", str(dataset), "--out", str(tmp_path / "ckpt"), "--preset", "tiny", "--epochs", "2",
            "--batch-size", "8", "--patience", "3", "--plateau-patience", "1", "--d-model", "8", "--average", "0.5",
            "--dropout", "0.25"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["checkpoint"] == str(tmp_path / "ckpt") and "validation (dev)" in out["metrics"]
    config = load_checkpoint(tmp_path / "ckpt")[0].config
    assert out["training"]["average"] == 0.5 and config.d_model == 8 and config.dropout == 0.25  # tiny's: 0.0
    assert "epoch   2/2  train loss" in result.stderr and "val loss" in result.stderr and "clips/s" in result.stderr
    assert "[epoch 1/2]" in result.stderr                       # progress log lines (not a terminal)
    quiet = CliRunner().invoke(main, args + ["--quiet"])
    assert quiet.exit_code == 0 and quiet.stderr == "" and json.loads(quiet.stdout)["metrics"]
    evaluated = CliRunner().invoke(main, ["evaluate", str(dataset), "--checkpoint", str(tmp_path / "ckpt"),
                                          "--quiet"])
    report = json.loads(evaluated.stdout)["all"]
    assert evaluated.stderr == "" and report["count"] == 8 and report["confusion"]["classes"] == ["negative", "positive"]


def test_non_finite_regression_labels_are_refused_with_file_and_line(tmp_path: Path) -> None:
    rows = [(c, "1.5" if i else "nan", None) for i, (c, _, _) in enumerate(synthetic_examples(0, 4))]
    folder = write_dataset(tmp_path, {"train": rows[:2], "dev": rows[2:]}, kind="regression")
    with pytest.raises(UserError, match=r"labels.csv, line 2: label 'nan' is not a finite number"):
        train_checkpoint(folder, tmp_path / "ckpt", verbose=False, **TINY)


def test_a_diverging_loss_stops_training_with_a_clear_error() -> None:
    clips, labels = make_dataset(0, 8)
    model = build_model(SGDTAMConfig.preset("tiny"), 0)
    with pytest.raises(NonFiniteLoss, match="the loss became (nan|inf) in epoch"):
        train(model, clips, labels, clips, labels, epochs=3, lr=1e25, batch_size=4, verbose=False)


def test_dropout_spares_each_examples_evidence_and_every_sense_of_a_composite() -> None:
    split = Split("train", [], [], ["meld", "ravdess", "composite", "other"], [])
    options = TrainingOptions(carriers=(("meld", "text"), ("ravdess", "audio")))
    assert evidence_spares(split, options) == [("text",), ("audio",), ("text", "audio", "video"), ()]
    with pytest.raises(UserError, match="needs the groups' carriers"):
        TrainingOptions(spare_evidence=True)


def test_training_with_spared_evidence_is_seeded_and_differs_from_unspared() -> None:
    clips, labels = make_dataset(3, 24)
    spares = [("text",)] * len(clips)
    weights = []
    for spared in (spares, spares, None):
        model = build_model(SGDTAMConfig.preset("tiny"), 0)
        train(model, clips, labels, clips[:8], labels[:8], epochs=1, batch_size=8, verbose=False,
              dropout_spares=spared)
        weights.append({k: v.clone() for k, v in model.state_dict().items()})
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])
    with pytest.raises(ValueError, match="one entry per training clip"):
        train(build_model(SGDTAMConfig.preset("tiny"), 0), clips, labels, clips[:8], labels[:8], epochs=1,
              verbose=False, dropout_spares=spares[:3])
