"""Training step, the training loop and its log, metrics, modality dropout, checkpoints."""

import json

import numpy as np
import pytest
import torch
from synthetic_clips import TINY_WIDTHS, make_clip, make_dataset

from sgdtam_pipe.core.timeline import ClipFeatures, ExtractorIdentity, TimedFeatures
from sgdtam_pipe.model.batching import collate
from sgdtam_pipe.model.checkpoint import check_features, feature_spec_from_clips, load_checkpoint, save_checkpoint
from sgdtam_pipe.model.config import LabelSpec, SGDTAMConfig
from sgdtam_pipe.model.metrics import PATTERNS, classification_metrics, evaluate, regression_metrics, weighted_f1
from sgdtam_pipe.model.sgdtam import SGDTAM, predict
from sgdtam_pipe.model.train import dropout_keep, train

torch.set_num_threads(1)


def test_one_training_step_of_the_tiny_preset_lowers_the_loss_on_its_batch():
    torch.manual_seed(0)
    model = SGDTAM(SGDTAMConfig.preset("tiny"))
    clips, labels = make_dataset(0, 8)
    batch = collate(clips, labels)
    keep = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1], [1, 0, 0]],
                        dtype=torch.bool)
    batch = batch.hide(keep)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.eval()   # no dropout, so the two losses are comparable
    with torch.no_grad():
        before = float(model(batch)[1])
    model.train()
    out, loss = model(batch)
    assert {"main", "recon", "contrast", "cmi", "align", "smooth", "order"} <= set(out.losses)
    assert all(np.isfinite(v) for v in out.losses.values())
    assert out.losses["recon"] > 0 and out.losses["align"] != 0 and out.losses["cmi"] != 0
    opt.zero_grad(); loss.backward(); opt.step()
    model.eval()
    with torch.no_grad():
        after = float(model(batch)[1])
    assert after < before


def test_modality_dropout_keeps_a_nonempty_subset_of_what_a_sample_holds():
    available = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 1, 0]], dtype=torch.bool).repeat(50, 1)
    keep = dropout_keep(available, 1.0, torch.Generator().manual_seed(0))
    kept = keep & available
    assert kept.any(1).all()
    assert len({tuple(r.tolist()) for r in kept[::3]}) == 7          # all seven patterns occur
    assert torch.equal(dropout_keep(available, 0.0, torch.Generator()), torch.ones_like(available))


def test_modality_dropout_never_hides_what_a_sample_must_keep():
    available = torch.tensor([[1, 1, 0], [1, 1, 1], [0, 0, 1]], dtype=torch.bool).repeat(60, 1)
    required = torch.tensor([[0, 1, 0], [1, 0, 1], [0, 0, 0]], dtype=torch.bool).repeat(60, 1)
    kept = dropout_keep(available, 1.0, torch.Generator().manual_seed(0), required) & available
    assert (kept | ~required).all()
    assert {tuple(r.tolist()) for r in kept[::3]} == {(False, True, False), (True, True, False)}
    assert {tuple(r.tolist()) for r in kept[1::3]} == {(True, False, True), (True, True, True)}
    unconstrained = dropout_keep(available, 1.0, torch.Generator().manual_seed(0))
    none_required = dropout_keep(available, 1.0, torch.Generator().manual_seed(0), torch.zeros_like(required))
    assert torch.equal(unconstrained, none_required)


def test_training_loop_learns_logs_and_restores_the_best_epoch(tmp_path):
    torch.manual_seed(0)
    model = SGDTAM(SGDTAMConfig.preset("tiny"))
    train_clips, train_labels = make_dataset(1, 48)
    val_clips, val_labels = make_dataset(2, 16)
    events = []
    history = train(model, train_clips, train_labels, val_clips, val_labels, epochs=6, lr=5e-3, batch_size=16,
                    seed=0, patience=3, plateau_patience=1, modality_dropout=0.3, log_path=tmp_path / "log.json",
                    hook=lambda step, info: events.append(step), verbose=False)
    log = json.loads((tmp_path / "log.json").read_text())
    assert log["epochs"] == history["epochs"] and len(log["epochs"]) >= 3
    assert "epoch 1/6" in events and "validate 1/6" in events
    maes = [e["val"]["mae"] for e in history["epochs"]]
    assert min(maes) < maes[0]
    report = evaluate(model, val_clips, val_labels)
    assert abs(report["all"]["mae"] - min(maes)) < 1e-4           # best weights restored
    assert report["all"]["acc2_has0"] > 0.8


def test_evaluation_per_availability_pattern():
    model = SGDTAM(SGDTAMConfig.preset("tiny"))
    clips, labels = make_dataset(3, 6)
    report = evaluate(model, clips, labels, patterns=PATTERNS)
    assert set(report) == {"all", "L", "A", "V", "AV", "LV", "LA", "LAV"}
    assert all(report[k]["count"] == 6 for k in report)


def test_regression_metrics_by_hand():
    m = regression_metrics([1.2, -0.4, 0.1, -2.6], [2.0, -1.0, 0.0, 1.0])
    assert m["acc2_has0"] == 0.75                 # 0 counts as positive, pred 0.1 >= 0 right
    assert m["acc2_non0"] == pytest.approx(2 / 3)  # zero label dropped
    assert m["acc7"] == 0.25                       # rounded pred/label: 1/2, 0/-1, 0/0 (hit), -3/1
    assert m["mae"] == pytest.approx((0.8 + 0.6 + 0.1 + 3.6) / 4)
    assert -1 <= m["corr"] <= 1


def test_classification_metrics_and_weighted_f1():
    assert weighted_f1(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1])) == 1.0
    m = classification_metrics([0, 1, 1, 2], [0, 1, 2, 2])
    assert m["accuracy"] == 0.75
    assert m["f1_weighted"] == pytest.approx((1 * 1 + (2 / 3) * 1 + (2 / 3) * 2) / 4)


def _spec_and_model(clips, label=LabelSpec()):
    torch.manual_seed(0)
    return feature_spec_from_clips(clips), SGDTAM(SGDTAMConfig.preset("tiny", label=label))


def test_checkpoint_round_trip_gives_identical_predictions(tmp_path):
    clips, _ = make_dataset(4, 4)
    label = LabelSpec("classification", ("neg", "pos"))
    spec, model = _spec_and_model(clips, label)
    model.generator.remember("audio", torch.randn(3, 16))      # buffers travel too
    folder = save_checkpoint(tmp_path / "ckpt", model, feature_spec=spec, label_spec=label,
                             data_description={"name": "synthetic", "clips": 4}, metrics={"accuracy": 0.5})
    assert sorted(p.name for p in folder.iterdir()) == ["card.json", "model.safetensors"]
    loaded, card = load_checkpoint(folder)
    assert card.label == label and card.features["video"].width == TINY_WIDTHS["video"]
    assert card.data["name"] == "synthetic" and card.parameters == model.num_parameters()
    model.eval()
    for clip in clips:
        check_features(card, clip)
        assert predict(model, clip) == predict(loaded, clip)


def test_strict_load_refuses_features_made_differently(tmp_path):
    clips, _ = make_dataset(5, 2)
    spec, model = _spec_and_model(clips)
    save_checkpoint(tmp_path, model, feature_spec=spec, label_spec=LabelSpec(), data_description={}, metrics={})
    _, card = load_checkpoint(tmp_path / "model.safetensors")
    clip = clips[0]
    a = clip.audio
    other = TimedFeatures(a.values, a.start, a.end, a.mask, a.names, ExtractorIdentity("librosa", "1"))
    with pytest.raises(ValueError, match="audio.*extractor 'librosa'"):
        check_features(card, ClipFeatures(clip.clip, clip.text, other, clip.video))
    renamed = TimedFeatures(a.values, a.start, a.end, a.mask, ("x",) + a.names[1:], a.identity)
    with pytest.raises(ValueError, match="audio.*feature name 0 is 'x'"):
        check_features(card, ClipFeatures(clip.clip, clip.text, renamed, clip.video))
    wide = make_clip(np.random.default_rng(0), widths={**TINY_WIDTHS, "video": 9})
    with pytest.raises(ValueError, match="video.*width 9, checkpoint expects 5"):
        check_features(card, wide)


def test_strict_load_refuses_weights_that_do_not_fit(tmp_path):
    clips, _ = make_dataset(6, 2)
    spec, model = _spec_and_model(clips)
    save_checkpoint(tmp_path, model, feature_spec=spec, label_spec=LabelSpec(), data_description={}, metrics={})
    card = json.loads((tmp_path / "card.json").read_text())
    card["config"]["d_model"] = 32
    (tmp_path / "card.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="model.safetensors: weights do not fit"):
        load_checkpoint(tmp_path)
    (tmp_path / "card.json").write_text("{not json")
    with pytest.raises(ValueError, match="card.json: not a readable checkpoint card"):
        load_checkpoint(tmp_path)
