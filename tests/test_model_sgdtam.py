"""The whole model: size, availability patterns, routes, time grids of generated rows, padding."""

import numpy as np
import pytest
import torch
from model_clips import TINY_WIDTHS, make_clip

from sgdtam_pipe.core.timeline import MODALITIES
from sgdtam_pipe.model.batching import collate
from sgdtam_pipe.model.config import LabelSpec, SGDTAMConfig
from sgdtam_pipe.model.generation import StagedGenerator
from sgdtam_pipe.model.metrics import PATTERNS, restrict
from sgdtam_pipe.model.sgdtam import SGDTAM, predict

torch.set_num_threads(1)
WIDTHS = dict(TINY_WIDTHS)


def tiny(**overrides) -> SGDTAM:
    torch.manual_seed(0)
    return SGDTAM(SGDTAMConfig.preset("tiny", **overrides))


def test_paper_preset_has_the_papers_parameter_budget():
    model = SGDTAM(SGDTAMConfig.preset("paper", text_dim=768, audio_dim=74, video_dim=47))
    assert 80_000 <= model.num_parameters() <= 200_000
    assert model.config.d_model == 32 and model.config.heads == 8
    assert model.config.lambda_contrast == model.config.lambda_recon == 0.1
    assert model.config.lambda_order == 0.05 and model.config.theta == 0.12


def test_unknown_preset_and_bad_config_are_refused():
    with pytest.raises(ValueError, match="unknown preset"):
        SGDTAMConfig.preset("huge")
    with pytest.raises(ValueError, match="divisible"):
        SGDTAMConfig.preset("tiny", heads=3)


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: "".join(m[0] for m in p))
def test_each_availability_pattern_runs_and_reports_its_route(pattern):
    model = tiny()
    rng = np.random.default_rng(1)
    clip = make_clip(rng, present=pattern)
    output, loss = model(collate([clip], [1.0], widths=WIDTHS))
    assert output.prediction.shape == (1,) and torch.isfinite(output.prediction).all()
    assert -3 <= float(output.prediction.detach()) <= 3
    route = output.routes[0]
    assert route.observed == pattern
    assert sorted(route.generated) == sorted(m for m in MODALITIES if m not in pattern)
    assert torch.isfinite(loss)
    assert np.isnan(float(output.delta_i[0])) == (len(pattern) != 1)


def test_mixed_batch_of_all_seven_patterns_backpropagates():
    model = tiny()
    rng = np.random.default_rng(2)
    clips = [make_clip(rng, present=p, name=str(i)) for i, p in enumerate(PATTERNS)]
    output, loss = model(collate(clips, [0.5] * 7, widths=WIDTHS))
    loss.backward()
    assert [r.observed for r in output.routes] == list(PATTERNS)
    grads = [p.grad for p in model.parameters()]
    assert all(g is None or torch.isfinite(g).all() for g in grads)


def test_route_follows_the_sign_of_delta_i_against_theta():
    config = SGDTAMConfig.preset("tiny", theta=0.12)
    generator = StagedGenerator(config)
    torch.manual_seed(0)
    x = torch.randn(4, 16)
    previews = (torch.randn(4, 16), torch.randn(4, 16))
    first, delta_i = generator.choose_first("text", x, ("audio", "video"), previews)
    assert torch.equal(first, delta_i > 0.12)
    # Delta I is the difference of the two pointwise MI estimates
    expected = generator.pointwise_mi("text", x, "audio", previews[0]) - generator.pointwise_mi("text", x, "video", previews[1])
    assert torch.allclose(delta_i, expected)


def test_route_is_chosen_per_sample_from_mine():
    model = tiny(theta=0.0).eval()
    rng = np.random.default_rng(4)
    clips = [make_clip(rng, present=("text",), name=str(i), signal=s) for i, s in enumerate(np.linspace(-3, 3, 12))]
    torch.manual_seed(1)
    with torch.no_grad():   # a random T_psi and marginal bank: some samples prefer audio, some video
        for p in model.generator.mine.parameters():
            p.normal_(0, 1.0)
        model.generator.bank.normal_()
    output, _ = model(collate(clips, widths=WIDTHS))
    orders = {r.generated for r in output.routes}
    for route, delta in zip(output.routes, output.delta_i):
        assert route.generated == (("audio", "video") if delta > 0 else ("video", "audio"))
    assert len(orders) == 2, "random T_psi should send different samples different ways"


def test_fixed_order_without_dynamic_sequence_decision():
    model = tiny(use_mi_order=False)
    clip = make_clip(np.random.default_rng(5), present=("video",))
    output, _ = model(collate([clip], widths=WIDTHS))
    assert output.routes[0].generated == ("text", "audio")


def test_generated_modality_lives_on_the_anchor_grid_with_its_real_times():
    model = tiny()
    rng = np.random.default_rng(6)
    clip = make_clip(rng, present=("audio",))
    batch = collate([clip], widths=WIDTHS)
    inputs = model._inputs(batch)
    summaries = {m: inputs.x[m].mean(1) for m in MODALITIES if inputs.x[m] is not None}
    generated, _, _ = model._generate(batch, inputs, summaries)
    x, keys, start, end = model._assemble(batch, inputs, generated)
    n = len(clip.audio)
    for m in ("text", "video"):
        assert x[m].shape[1] == n and keys[m].all()
        np.testing.assert_allclose(start[m][0].numpy(), clip.audio.start, atol=1e-6)
        np.testing.assert_allclose(end[m][0].numpy(), clip.audio.end, atol=1e-6)


def test_padding_does_not_change_a_clips_prediction():
    model = tiny().eval()
    rng = np.random.default_rng(7)
    short = make_clip(rng, duration=1.0, name="short")
    long = make_clip(rng, duration=3.0, name="long")
    with torch.no_grad():
        alone, _ = model(collate([short], widths=WIDTHS))
        together, _ = model(collate([short, long], widths=WIDTHS))
    assert torch.allclose(alone.prediction[0], together.prediction[0], atol=1e-5)


def test_unmeasured_rows_do_not_change_the_prediction():
    model = tiny().eval()
    clip = make_clip(np.random.default_rng(8))
    assert not clip.video.mask[1]
    values = clip.video.values.copy()
    values[1] = 99.0    # a row masked out (no face) must never be read
    from sgdtam_pipe.core.timeline import ClipFeatures, TimedFeatures
    v = clip.video
    noisy = ClipFeatures(clip.clip, clip.text, clip.audio,
                         TimedFeatures(values, v.start, v.end, v.mask, v.names, v.identity))
    with torch.no_grad():
        a, _ = model(collate([clip], widths=WIDTHS))
        b, _ = model(collate([noisy], widths=WIDTHS))
    assert torch.allclose(a.prediction, b.prediction)


def test_batch_size_one_and_predict_for_regression_and_classes():
    clip = make_clip(np.random.default_rng(9), present=("text", "video"))
    result = predict(tiny(), clip)
    assert -3 <= result.score <= 3 and result.probabilities is None
    assert result.observed == ("text", "video") and result.generated == ("audio",)
    assert result.route == "text+video -> audio"
    spec = LabelSpec("classification", ("neg", "neu", "pos"))
    result = predict(tiny(label=spec), clip)
    assert result.score is None and set(result.probabilities) == {"neg", "neu", "pos"}
    assert abs(sum(result.probabilities.values()) - 1) < 1e-5 and result.label in spec.classes


def test_time_sources_change_the_output_only_through_times():
    rng = np.random.default_rng(10)
    clips = [make_clip(rng, name=str(i)) for i in range(3)]
    outs = {}
    for source in ("real", "index", "none"):
        model = tiny(time_source=source).eval()
        with torch.no_grad():
            outs[source] = model(collate(clips, widths=WIDTHS))[0].prediction
    assert not torch.allclose(outs["real"], outs["index"])
    assert not torch.allclose(outs["real"], outs["none"])


@pytest.mark.parametrize("switch", ["use_mi_order", "use_sca", "use_sgm", "use_bridge", "use_cmi", "use_contrastive",
                                    "use_recon", "use_mhdta", "use_dta_mask", "use_awm", "use_gates",
                                    "use_align_loss", "use_smooth_loss"])
def test_every_ablation_switch_runs(switch):
    model = tiny(**{switch: False})
    rng = np.random.default_rng(11)
    clips = [make_clip(rng, present=p, name=str(i)) for i, p in enumerate(PATTERNS)]
    _, loss = model(collate(clips, [1.0] * 7, widths=WIDTHS))
    loss.backward()
    assert torch.isfinite(loss)


def test_restrict_masks_modalities_for_pattern_evaluation():
    clip = make_clip(np.random.default_rng(12))
    assert restrict(clip, ("audio",)).present() == ("audio",)


def test_inference_uses_the_same_relaxed_mask_as_training():
    model = tiny()            # the tiny preset has no dropout: train and eval mode compute the same function
    clips = [make_clip(np.random.default_rng(13), name=str(i)) for i in range(2)]
    batch = collate(clips, widths=WIDTHS)
    with torch.no_grad():
        model.train()
        a = model(batch)[0].prediction
        model.eval()
        b = model(batch)[0].prediction
    assert torch.allclose(a, b)


def test_sca_uses_softmax_weights_not_sigmoid():
    # Eq. 5 writes a sigmoid; we use softmax: weights over the allowed keys sum to one
    generator = StagedGenerator(SGDTAMConfig.preset("tiny"))
    keys = torch.tensor([[True, True, False, True]])
    _, weights = generator.sca["text"](torch.randn(1, 3, 16), torch.randn(1, 4, 16), keys.unsqueeze(1))
    assert torch.allclose(weights.sum(-1), torch.ones(1, 4, 3))
    assert weights[..., 2].abs().max() == 0


def test_wrong_feature_width_is_a_clear_error():
    clip = make_clip(np.random.default_rng(14), widths={**WIDTHS, "audio": 9})
    with pytest.raises(ValueError, match="audio features have width 9, the model takes 6"):
        tiny()(collate([clip]))


def test_with_two_observed_the_generated_rows_take_the_denser_grid():
    model = tiny()
    clip = make_clip(np.random.default_rng(15), present=("text", "video"))
    batch = collate([clip], widths=WIDTHS)
    inputs = model._inputs(batch)
    summaries = {m: inputs.x[m].mean(1) for m in MODALITIES if inputs.x[m] is not None}
    generated, routes, _ = model._generate(batch, inputs, summaries)
    assert [(g.modality, g.anchor) for g in generated] == [("audio", "video")]
    _, _, start, _ = model._assemble(batch, inputs, generated)
    np.testing.assert_allclose(start["audio"][0].numpy(), clip.video.start, atol=1e-6)
