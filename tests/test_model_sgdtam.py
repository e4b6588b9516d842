"""The whole model: size, availability patterns, routes, time grids of generated rows, padding."""

import math

import numpy as np
import pytest
import torch
from synthetic_clips import TINY_WIDTHS, make_clip

from sgdtam_pipe.core.timeline import MODALITIES, ClipFeatures, TimedFeatures
from sgdtam_pipe.model.batching import collate
from sgdtam_pipe.model.config import LabelSpec, SGDTAMConfig
from sgdtam_pipe.model.generation import StagedGenerator
from sgdtam_pipe.model.metrics import PATTERNS, restrict
from sgdtam_pipe.model.sgdtam import SGDTAM, pattern_one_hot, predict

torch.set_num_threads(1)
WIDTHS = dict(TINY_WIDTHS)


def tiny(**overrides) -> SGDTAM:
    torch.manual_seed(0)
    return SGDTAM(SGDTAMConfig.preset("tiny", **overrides))


def test_paper_preset_follows_table_3():
    config = SGDTAMConfig.preset("paper")
    assert config.d_model == 32 and config.heads == 8
    assert config.lambda_contrast == config.lambda_recon == 0.1
    assert config.lambda_order == 0.05 and config.theta == 0.12


BUDGET_TOLERANCE = 0.30
"""How far our count may be from the paper's: the paper leaves the generator's and the head's layers open."""


@pytest.mark.parametrize("text_dim, paper_count", [(768, 152_000), (300, 80_000)], ids=["bert", "glove"])
def test_paper_preset_has_the_papers_parameter_budget(text_dim, paper_count):
    # The paper: "only 152 K parameters" on CMU-MOSI with 768-d BERT text (Sec. 4, Table 4), and
    # "merely 80 K" with 300-d GloVe text (Table 10); audio is 74-d COVAREP at the preset's defaults.
    count = SGDTAM(SGDTAMConfig.preset("paper", text_dim=text_dim)).num_parameters()
    assert abs(count - paper_count) <= BUDGET_TOLERANCE * paper_count, f"{count} parameters against {paper_count}"


def test_only_the_input_projections_depend_on_the_feature_widths():
    # a feature column costs one weight per model dimension (its row of W in the Eq. 12 projection), nothing else
    d = SGDTAMConfig.preset("paper").d_model
    wide = SGDTAM(SGDTAMConfig.preset("paper", text_dim=768, audio_dim=74, video_dim=47)).num_parameters()
    narrow = SGDTAM(SGDTAMConfig.preset("paper", text_dim=300, audio_dim=25, video_dim=20)).num_parameters()
    assert wide - narrow == ((768 - 300) + (74 - 25) + (47 - 20)) * d


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
    # T_psi set by hand to T(x, y) = x_0 + y_0 (every sum here is >= 0, so the ReLUs pass it through), and
    # marginal banks with known log-mean-exp: the pointwise MI  T(x, y) - log mean_k exp T(x, m_k)  is then
    # y_0 - log mean_k exp(m_k,0): y_0 for audio (bank all 0), y_0 - ln 2 for video (half 0, half ln 3).
    config = SGDTAMConfig.preset("tiny", theta=0.12)
    generator = StagedGenerator(config)
    d, half = config.d_model, config.mine_bank // 2
    with torch.no_grad():
        for mine in generator.mine.values():
            first, _, second, _, third = mine.net
            for layer in (first, second, third):
                layer.weight.zero_()
                layer.bias.zero_()
            first.weight[0, 0] = first.weight[0, d] = 1.0     # hidden unit 0 = x_0 + y_0
            second.weight[0, 0] = third.weight[0, 0] = 1.0
        generator.bank.zero_()
        generator.bank[MODALITIES.index("video"), :half, 0] = math.log(3.0)
    x = torch.zeros(4, d)
    x[:, 0] = 1.0
    audio, video = torch.zeros(4, d), torch.zeros(4, d)
    audio[:, 0] = torch.tensor([1.0, 0.5, 0.3, 0.45])
    video[:, 0] = torch.tensor([0.5, 1.5, 0.9, 1.0])
    assert torch.allclose(generator.pointwise_mi("text", x, "audio", audio), audio[:, 0], atol=1e-6)
    assert torch.allclose(generator.pointwise_mi("text", x, "video", video), video[:, 0] - math.log(2), atol=1e-6)
    first, delta_i = generator.choose_first("text", x, ("audio", "video"), (audio, video))
    # Delta I = I_audio - I_video = y_a - y_v + ln 2 = [1.193, -0.307, 0.093, 0.143]
    assert torch.allclose(delta_i, torch.tensor([1.19315, -0.30685, 0.09315, 0.14315]), atol=1e-5)
    assert first.tolist() == [True, False, False, True]   # sample 2: Delta I > 0 but not above theta


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


@pytest.mark.parametrize("pool_std", [(), MODALITIES], ids=["mean", "mean+std"])
def test_padding_does_not_change_a_clips_prediction(pool_std):
    model = tiny(pool_std=pool_std).eval()
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


def retimed(clip: ClipFeatures, times) -> ClipFeatures:
    """``clip`` with the same values and masks; each stream's rows get ``times(stream, duration) -> (start, end)``."""
    def one(s: TimedFeatures) -> TimedFeatures:
        start, end = times(s, clip.clip.duration)
        return TimedFeatures(s.values, start, end, s.mask, s.names, s.identity)
    return ClipFeatures(clip.clip, *(one(clip.modality(m)) for m in MODALITIES))


def from_zero(s: TimedFeatures, duration: float):
    """The rows moved to start at 0 s (make_clip starts each stream 0-0.3 s late): other times, same rows."""
    return s.start - s.start[0], s.end - s.start[0]


def by_index(s: TimedFeatures, duration: float):
    """What an index-based method assumes, worked out by hand: row i of n covers [i, i + 1) * duration / n."""
    i, n = np.arange(len(s)), len(s)
    return i * duration / n, (i + 1) * duration / n


def test_time_sources_change_the_output_only_through_times():
    rng = np.random.default_rng(10)
    clips = [make_clip(rng, name=str(i)) for i in range(3)]    # three rates, each stream starting late
    moved = [retimed(c, from_zero) for c in clips]
    spread = [retimed(c, by_index) for c in clips]

    def run(clips, source="real", **overrides):
        model = tiny(time_source=source, **overrides).eval()    # same seed: the same weights for every source
        with torch.no_grad():
            return model(collate(clips, widths=WIDTHS))[0].prediction

    real = run(clips)
    assert (real - run(moved)).abs().max() > 1e-4              # with real times, the times reach the output
    index = run(clips, "index")
    assert (index - real).abs().max() > 1e-4
    assert torch.allclose(index, run(spread), atol=1e-6)       # "index" is "real" on index-spread times ...
    assert torch.equal(index, run(moved, "index"))             # ... and the real times never reach it
    none = run(clips, "none")
    assert torch.equal(none, run(moved, "none"))               # "none": times are dropped ...
    assert torch.equal(none, run(clips, use_dta_mask=False, use_awm=False))   # ... with all that reads them


LOSS_SWITCHES = {"use_cmi": "cmi", "use_contrastive": "contrast", "use_recon": "recon",
                 "use_align_loss": "align", "use_smooth_loss": "smooth"}
"""Switches that only take a term out of the loss, and the term (a key of ``ModelOutput.losses``)."""
GENERATION_SWITCHES = ("use_sca", "use_sgm", "use_bridge")
DTAM_SWITCHES = ("use_mhdta", "use_dta_mask", "use_awm", "use_gates")


def loss_weight(config: SGDTAMConfig, term: str) -> float:
    """The weight of a term in the total loss: the config's lambda for it (smoothness: lambda_align * mu_smooth)."""
    return {"cmi": config.lambda_cmi, "contrast": config.lambda_contrast, "recon": config.lambda_recon,
            "align": config.lambda_align, "smooth": config.lambda_align * config.mu_smooth}[term]


def ablation_pair(switch: str):
    """The tiny model with ``switch`` on and off, the same weights, run on the same labelled batch.

    Every clip holds all three modalities; the two clips of each pattern have the modalities outside it hidden
    (as modality dropout does), so every generated modality has a target and every generation loss term is non-zero.
    """
    rng = np.random.default_rng(11)
    clips = [make_clip(rng, name=str(i)) for i in range(2 * len(PATTERNS))]
    keep = torch.tensor([[m in p for m in MODALITIES] for p in PATTERNS for _ in range(2)])
    batch = collate(clips, list(np.linspace(-2, 2, len(clips))), widths=WIDTHS).hide(keep)
    on, off = tiny().eval(), tiny(**{switch: False}).eval()
    with torch.no_grad():       # gates away from their initial 1, where dropping them would change nothing
        for name, p in on.named_parameters():
            if name.endswith("gate_raw"):
                p.copy_(torch.linspace(-2.0, 2.0, p.numel()))
    own = off.state_dict()
    shared = {k: v for k, v in on.state_dict().items() if own[k].shape == v.shape}
    off.load_state_dict(shared, strict=False)
    unshared = {k.rsplit(".", 1)[1] for k in set(own) - set(shared)}
    assert unshared == ({"delta_raw", "gate_raw"} if switch == "use_mhdta" else set())   # one head: one threshold
    with torch.no_grad():
        return on(batch), off(batch)


@pytest.mark.parametrize("switch", [*LOSS_SWITCHES, "use_mi_order", *GENERATION_SWITCHES, *DTAM_SWITCHES])
def test_every_ablation_switch_changes_what_it_names(switch):
    (on, loss_on), (off, loss_off) = ablation_pair(switch)
    config = SGDTAMConfig.preset("tiny")
    full = torch.tensor([r.observed == MODALITIES for r in on.routes])
    if switch in LOSS_SWITCHES:                       # the same forward pass, one loss term fewer
        term = LOSS_SWITCHES[switch]
        assert torch.equal(on.prediction, off.prediction) and on.losses == off.losses
        assert abs(on.losses[term]) > 1e-4
        expected = loss_weight(config, term) * on.losses[term]
        assert float(loss_on - loss_off) == pytest.approx(expected, rel=1e-4, abs=1e-6)
    elif switch == "use_mi_order":                    # a fixed route, no Delta I, no MINE objective
        single = torch.tensor([len(r.observed) == 1 for r in on.routes])
        assert torch.isfinite(on.delta_i[single]).all() and off.delta_i.isnan().all()
        for r in off.routes:
            assert r.generated == tuple(m for m in MODALITIES if m not in r.observed)
        assert on.losses["order"] != 0.0
        others = sum(loss_weight(config, t) * off.losses[t] for t in ("cmi", "contrast", "recon", "align", "smooth"))
        assert float(loss_off) == pytest.approx(off.losses["main"] + others, rel=1e-5)   # no lambda_order term
    elif switch in GENERATION_SWITCHES:               # the generated rows change; a full sample generates none
        assert (on.prediction[~full] - off.prediction[~full]).abs().max() > 1e-4
        assert torch.allclose(on.prediction[full], off.prediction[full], atol=1e-6)
    else:                                             # DTAM runs for every sample
        assert (on.prediction[full] - off.prediction[full]).abs().max() > 1e-4
        assert (on.prediction[~full] - off.prediction[~full]).abs().max() > 1e-4


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


def test_with_two_observed_the_generated_rows_take_the_first_grid_in_anchor_order():
    model = tiny()
    clip = make_clip(np.random.default_rng(15), present=("text", "video"))
    batch = collate([clip], widths=WIDTHS)
    inputs = model._inputs(batch)
    summaries = {m: inputs.x[m].mean(1) for m in MODALITIES if inputs.x[m] is not None}
    generated, _, _ = model._generate(batch, inputs, summaries)
    assert [(g.modality, g.anchor) for g in generated] == [("audio", "video")]
    _, _, start, _ = model._assemble(batch, inputs, generated)
    np.testing.assert_allclose(start["audio"][0].numpy(), clip.video.start, atol=1e-6)


def test_std_pooling_widens_the_head_and_survives_the_config_round_trip():
    config = SGDTAMConfig.preset("tiny", pool_std=["audio"])
    assert config.pool_std == ("audio",)
    assert SGDTAMConfig.from_json(config.to_json()) == config
    older = {k: v for k, v in config.to_json().items() if k != "pool_std"}   # a checkpoint from before the field
    assert SGDTAMConfig.from_json(older).pool_std == ()
    d = config.d_model
    assert SGDTAM(config).head[0].in_features == (len(MODALITIES) + 1) * d
    with pytest.raises(ValueError, match="pool_std names unknown"):
        SGDTAMConfig.preset("tiny", pool_std=("smell",))


def test_the_pattern_head_reads_which_modalities_were_observed():
    config = SGDTAMConfig.preset("tiny", pattern_head=True)
    older = {k: v for k, v in config.to_json().items() if k != "pattern_head"}   # a checkpoint from before the field
    assert SGDTAMConfig.from_json(older).pattern_head is False
    assert SGDTAMConfig.from_json(config.to_json()) == config
    d = config.d_model
    assert SGDTAM(config).head[0].in_features == len(MODALITIES) * d + 7
    present = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 1, 1], [0, 1, 1]], dtype=torch.bool)
    assert pattern_one_hot(present).argmax(1).tolist() == [0, 1, 6, 5]
    assert torch.equal(pattern_one_hot(present).sum(1), torch.ones(4))
    model = SGDTAM(config).eval()
    clip = make_clip(np.random.default_rng(11))
    batch = collate([clip], widths=WIDTHS)
    with torch.no_grad():
        full, _ = model(batch)
        model.head[0].weight[:, -7:] = 0.0      # the pattern inputs silenced
        full_blind, _ = model(batch)
    assert not torch.allclose(full.prediction, full_blind.prediction)
