"""The parts of trustworthy training: normalisation, balanced epochs, calibration, metrics, checkpoint checks."""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from synthetic_clips import make_clip, make_dataset

from sgdtam_pipe.core.errors import UserError
from sgdtam_pipe.core.timeline import ClipFeatures, ExtractorIdentity, TimedFeatures
from sgdtam_pipe.model.calibration import expected_calibration_error, fit_temperature
from sgdtam_pipe.model.checkpoint import (
    check_features,
    feature_spec_from_clips,
    load_checkpoint,
    save_checkpoint,
)
from sgdtam_pipe.model.config import LabelSpec, SGDTAMConfig
from sgdtam_pipe.model.metrics import (classification_metrics, evaluate, pattern_name, pattern_report,
                                       selection_metric)
from sgdtam_pipe.model.normalisation import column_stats
from sgdtam_pipe.model.sampling import epoch_order
from sgdtam_pipe.model.sgdtam import SGDTAM, predict
from sgdtam_pipe.model.train import build_model, moving_average, train

torch.set_num_threads(1)


def _scaled(clips: list[ClipFeatures], column: int, factor: float) -> list[ClipFeatures]:
    out = []
    for c in clips:
        a = c.audio
        values = a.values.copy()
        values[:, column] = values[:, column] * factor + 300.0
        out.append(ClipFeatures(c.clip, c.text, TimedFeatures(values, a.start, a.end, a.mask, a.names, a.identity),
                                c.video))
    return out


def _audio_only(clips: list[ClipFeatures]) -> list[ClipFeatures]:
    from sgdtam_pipe.core.timeline import MissingModality
    return [ClipFeatures(c.clip, MissingModality("x"), c.audio, MissingModality("x")) for c in clips]


def _fit(train_clips, train_labels, val_clips, val_labels):
    model = build_model(SGDTAMConfig.preset("tiny"), 0)
    train(model, train_clips, train_labels, val_clips, val_labels, epochs=4, lr=5e-3, batch_size=16, patience=4,
          plateau_patience=2, modality_dropout=0.0, verbose=False)
    return model, evaluate(model, val_clips, val_labels)["all"]


def test_a_column_scaled_by_1000_trains_as_well_as_unscaled():
    train_clips, train_labels = make_dataset(1, 48)
    val_clips, val_labels = make_dataset(2, 16)
    train_clips, val_clips = _audio_only(train_clips), _audio_only(val_clips)
    _, plain = _fit(train_clips, train_labels, val_clips, val_labels)
    model, scaled = _fit(_scaled(train_clips, 0, 1000.0), train_labels, _scaled(val_clips, 0, 1000.0), val_labels)
    assert plain["acc2_has0"] > 0.8
    assert scaled["mae"] == pytest.approx(plain["mae"], abs=0.05)
    assert scaled["acc2_has0"] == pytest.approx(plain["acc2_has0"], abs=0.07)
    assert float(model.normalise.stats["audio"].mean[0]) == pytest.approx(300.0, abs=60.0)


def test_column_stats_use_measured_rows_only_and_survive_constant_columns():
    values = np.array([[1.0, 5.0], [3.0, 5.0], [1e6, 1e6]], np.float32)
    mask = np.array([True, True, False])
    stream = TimedFeatures(values, np.arange(3.0), np.arange(3.0) + 1, mask, ("a", "b"), ExtractorIdentity("x", "1"))
    mean, std = column_stats([stream, None], 2)
    assert mean.tolist() == [2.0, 5.0] and std.tolist() == [1.0, 1.0]     # column b constant: std 1, not 0
    assert column_stats([], 2)[1].tolist() == [1.0, 1.0]


def test_balanced_epochs_give_each_group_the_same_share():
    groups = ["photos"] * 28 + ["voices"] * 2
    order = epoch_order(30, torch.Generator().manual_seed(0), groups)
    counts = Counter(groups[i] for i in order)
    assert len(order) == 30 and counts == {"photos": 15, "voices": 15}
    photos = [i for i in order if groups[i] == "photos"]
    assert len(set(photos)) == 15                                  # a fresh subset, no repeats
    assert Counter(i for i in order if groups[i] == "voices") == {28: 8, 29: 7} or \
        Counter(i for i in order if groups[i] == "voices") == {28: 7, 29: 8}
    assert sorted(epoch_order(30, torch.Generator().manual_seed(0))) == list(range(30))
    assert len(epoch_order(30, torch.Generator(), groups, draws_per_group=4)) == 8
    weighted = epoch_order(30, torch.Generator().manual_seed(0), groups, draws_per_group=4, group_draws={"voices": 10})
    assert Counter(groups[i] for i in weighted) == {"photos": 4, "voices": 10}


def test_temperature_scaling_fixes_overconfidence():
    torch.manual_seed(0)
    logits = 2 * torch.randn(2000, 3)
    labels = torch.multinomial(torch.softmax(logits, -1), 1).squeeze(1)   # calibrated by construction
    temperature = fit_temperature(8 * logits, labels)                     # eight times too confident
    assert temperature == pytest.approx(8, rel=0.15)
    before = expected_calibration_error(torch.softmax(8 * logits, -1), labels)
    after = expected_calibration_error(torch.softmax(8 * logits / temperature, -1), labels)
    assert after < before / 2
    perfect = torch.tensor([[0.9, 0.1]] * 10)
    assert expected_calibration_error(perfect, torch.tensor([0] * 9 + [1])) == pytest.approx(0.0, abs=1e-6)


def test_per_class_scores_confusion_and_pattern_names():
    m = classification_metrics([0, 1, 1, 2], [0, 1, 2, 2], ("neg", "neu", "pos"))
    assert m["confusion"]["matrix"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert m["per_class"]["neu"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert m["per_class"]["pos"]["recall"] == 0.5 and m["per_class"]["pos"]["precision"] == 1.0
    assert pattern_name(["video", "text"]) == "LV" and pattern_name(("text", "audio", "video")) == "LAV"
    with pytest.raises(ValueError):
        pattern_name([])


def test_pattern_report_scores_every_subset_a_clip_really_has():
    rng = np.random.default_rng(0)
    clips = [make_clip(rng, present=p, name=str(i)) for i, p in
             enumerate([("text",), ("text", "audio"), ("text", "audio", "video"), ("video",)])]
    model = SGDTAM(SGDTAMConfig.preset("tiny"))
    report = pattern_report(model, clips, [1.0, -1.0, 1.0, -1.0], ["a", "b", "b", "c"])
    assert {k: v["n"] for k, v in report.items()} == {"L": 3, "A": 2, "V": 2, "AV": 1, "LV": 1, "LA": 2, "LAV": 1}
    assert report["L"]["by_group"]["b"]["n"] == 2 and report["V"]["by_group"].keys() == {"b", "c"}
    empty = pattern_report(model, clips[:1], [1.0], ["a"])["AV"]
    assert empty == {"validated": False, "n": 0, "accuracy": None, "f1_weighted": None, "by_group": {}}


def _saved(tmp_path: Path, label: LabelSpec = LabelSpec()) -> tuple[list[ClipFeatures], Path]:
    clips, _ = make_dataset(4, 2)
    torch.manual_seed(0)
    save_checkpoint(tmp_path, SGDTAM(SGDTAMConfig.preset("tiny", label=label)),
                    feature_spec=feature_spec_from_clips(clips), label_spec=label, data_description={}, metrics={})
    return clips, tmp_path


def _with_audio(clip: ClipFeatures, **config) -> ClipFeatures:
    a = clip.audio
    identity = ExtractorIdentity(a.identity.name, a.identity.version, config)
    return ClipFeatures(clip.clip, clip.text, TimedFeatures(a.values, a.start, a.end, a.mask, a.names, identity),
                        clip.video)


def test_check_features_compares_output_config_and_library_releases(tmp_path: Path):
    clips, _ = make_dataset(4, 1)
    made = _with_audio(clips[0], pool_window=None, libraries={"opensmile": "2.6.0", "pocketsphinx": "missing"})
    label = LabelSpec()
    torch.manual_seed(0)
    save_checkpoint(tmp_path, SGDTAM(SGDTAMConfig.preset("tiny")), feature_spec=feature_spec_from_clips([made]),
                    label_spec=label, data_description={}, metrics={})
    _, card = load_checkpoint(tmp_path)
    check_features(card, _with_audio(made, pool_window=None, libraries={"opensmile": "2.6.3", "pocketsphinx": "5"}))
    with pytest.raises(ValueError, match="audio.*pool_window 0.1, checkpoint expects None"):
        check_features(card, _with_audio(made, pool_window=0.1, libraries={"opensmile": "2.6.0"}))
    with pytest.raises(ValueError, match="opensmile 2.7.0 installed.*made with 2.6.0"):
        check_features(card, _with_audio(made, pool_window=None, libraries={"opensmile": "2.7.0"}))


def test_loading_refuses_a_card_that_contradicts_its_weights(tmp_path: Path):
    _, folder = _saved(tmp_path, LabelSpec("classification", ("neg", "neu", "pos")))
    good = json.loads((folder / "card.json").read_text())

    def broken(edit) -> None:
        card = json.loads(json.dumps(good))
        edit(card)
        (folder / "card.json").write_text(json.dumps(card))

    broken(lambda c: c["features"]["audio"].update(width=99))
    with pytest.raises(ValueError, match=r"card.json: inconsistent card: audio features are 99 wide.*is 6$"):
        load_checkpoint(folder)
    four = {"kind": "classification", "classes": ["a", "b", "c", "d"]}
    broken(lambda c: (c.update(label=four), c["config"].update(label=four)))
    with pytest.raises(ValueError, match="model.safetensors: .*the head has 3 outputs but the card's label needs 4"):
        load_checkpoint(folder)
    broken(lambda c: c.update(label=four))
    with pytest.raises(ValueError, match="inconsistent card: label"):
        load_checkpoint(folder)


def test_checkpoints_from_before_normalisation_still_load(tmp_path: Path):
    clips, folder = _saved(tmp_path)
    weights = load_file(str(folder / "model.safetensors"))
    old = {k: v for k, v in weights.items() if not k.startswith("normalise.") and k != "temperature"}
    save_file(old, str(folder / "model.safetensors"))
    model, _ = load_checkpoint(folder)
    assert float(model.temperature) == 1.0 and float(model.normalise.stats["text"].std.min()) == 1.0
    assert predict(model, clips[0]).score is not None


def test_group_accuracy_is_the_unweighted_mean_of_each_groups_accuracy():
    clips, labels = make_dataset(3, 12)
    groups = ["big"] * 9 + ["small"] * 3
    model = SGDTAM(SGDTAMConfig.preset("tiny")).eval()
    report = evaluate(model, clips, labels, groups=groups)["all"]
    for name, rows in (("big", slice(0, 9)), ("small", slice(9, 12))):
        alone = evaluate(model, clips[rows], labels[rows])["all"]
        assert report["by_group"][name] == {"n": len(clips[rows]), "accuracy": pytest.approx(alone["acc2_has0"])}
    assert report["group_accuracy"] == pytest.approx(
        (report["by_group"]["big"]["accuracy"] + report["by_group"]["small"]["accuracy"]) / 2)
    assert selection_metric("classification", "group_accuracy") == ("group_accuracy", True)
    with pytest.raises(ValueError, match="unknown selection"):
        selection_metric("classification", "loudest")
    with pytest.raises(UserError, match="val_groups"):
        train(model, clips, labels, clips, labels, epochs=1, verbose=False, selection="group_accuracy")


def test_moving_average_blends_the_steps_and_is_what_training_keeps():
    model = torch.nn.Linear(2, 1)
    averaged = moving_average(model, 0.75, None)
    first = model.weight.detach().clone()
    averaged.update_parameters(model)                 # the first update copies
    with torch.no_grad():
        model.weight.add_(1.0)
    averaged.update_parameters(model)
    assert torch.allclose(averaged.module.weight, 0.75 * first + 0.25 * (first + 1.0))
    with pytest.raises(UserError, match="decay"):
        moving_average(model, 1.0, None)

    clips, labels = make_dataset(4, 32)
    steps: list[dict[str, torch.Tensor]] = []
    model = build_model(SGDTAMConfig.preset("tiny"), 0)

    def after_each_step(step: str, info: dict) -> None:
        if step.startswith("epoch"):
            steps.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    train(model, clips, labels, clips, labels, epochs=1, lr=5e-2, batch_size=4, verbose=False, average=0.999999,
          hook=after_each_step)
    kept = model.state_dict()                     # nearly 1: the average stays at the first step's weights...
    assert len(steps) == 8
    for name, _ in model.named_parameters():
        assert torch.allclose(kept[name], steps[0][name], atol=1e-4), name
    for name, _ in model.named_buffers():         # ... while buffers (the MINE bank) are the live model's
        assert torch.equal(kept[name], steps[-1][name]), name
    assert not torch.equal(steps[0]["generator.bank"], steps[-1]["generator.bank"])
    assert any(not torch.allclose(steps[-1][k], steps[0][k], atol=1e-3) for k in kept)
