"""The masks of SG-DTAM on hand-made examples: SGM scopes, offsets and the DTA mask from real times, AWM, padding."""

import numpy as np
import pytest
import torch

from sgdtam_pipe.core.timeline import ClipFeatures, ClipInfo, ExtractorIdentity, MissingModality, TimedFeatures
from sgdtam_pipe.model.attention import scoped_softmax
from sgdtam_pipe.model.batching import collate
from sgdtam_pipe.model.config import SGDTAMConfig
from sgdtam_pipe.model.dtam import MHDTA, dta_mask, index_times, offsets
from sgdtam_pipe.model.generation import masked_mean, sgm_scope

torch.set_num_threads(1)


def test_sgm_stage_scopes_encoder_bridge_and_causal_slots():
    # encoder: 3 tokens (the last is padding), bridge, then 3 slots (the last is padding)
    enc = torch.tensor([[True, True, False]])
    slots = torch.tensor([[True, True, False]])
    allowed = sgm_scope(enc, slots, bridge=True, staged=True)[0].int()
    expected = torch.tensor([
        # e0 e1 e2 br s0 s1 s2
        [1, 1, 0, 1, 0, 0, 0],   # encoder sees encoder + bridge, never slots
        [1, 1, 0, 1, 0, 0, 0],
        [1, 1, 0, 1, 0, 0, 0],
        [1, 1, 0, 1, 0, 0, 0],   # bridge sees encoder + itself
        [1, 1, 0, 1, 1, 0, 0],   # slot 0: encoder, bridge, itself
        [1, 1, 0, 1, 1, 1, 0],   # slot 1: ... and slot 0
        [1, 1, 0, 1, 1, 1, 0],   # padding slot 2 is never a key
    ])
    assert torch.equal(allowed, expected)


def test_sgm_stage_two_scope_adds_generated_tokens_to_encoder():
    # stage 2 encoder = observed (2 rows) + stage-1 output (2 rows): slots see all four
    enc = torch.ones(1, 4, dtype=torch.bool)
    allowed = sgm_scope(enc, torch.ones(1, 2, dtype=torch.bool), bridge=True, staged=True)[0]
    assert allowed[5, :5].all() and not allowed[5, 6]
    assert not allowed[:4, 5:].any()


def test_sgm_ablations_without_bridge_and_without_staging():
    enc = torch.ones(1, 2, dtype=torch.bool)
    slots = torch.ones(1, 2, dtype=torch.bool)
    no_bridge = sgm_scope(enc, slots, bridge=False, staged=True)
    assert no_bridge.shape == (1, 4, 4) and no_bridge[0, 2].tolist() == [True, True, True, False]
    flat = sgm_scope(enc, slots, bridge=True, staged=False)
    assert flat.all()


def test_offsets_gap_and_centre_by_hand():
    # two samples, each with its own times (every value below is exact in float32)
    # sample 0: a = [0, 1), [2, 3)        b = [0.5, 1.5), [4, 5)
    # sample 1: a = [10, 11), [11, 11)    b = [10.5, 10.75), [12, 14)    (a zero-length row)
    a_start, a_end = torch.tensor([[0.0, 2.0], [10.0, 11.0]]), torch.tensor([[1.0, 3.0], [11.0, 11.0]])
    b_start, b_end = torch.tensor([[0.5, 4.0], [10.5, 12.0]]), torch.tensor([[1.5, 5.0], [10.75, 14.0]])
    gap = offsets(a_start, a_end, b_start, b_end, "gap")
    assert torch.equal(gap, torch.tensor([[[0.0, 3.0], [0.5, 1.0]],
                                          [[0.0, 1.0], [0.25, 1.0]]]))
    centre = offsets(a_start, a_end, b_start, b_end, "centre")    # centres 0.5, 2.5 | 1, 4.5 and 10.5, 11 | 10.625, 13
    assert torch.equal(centre, torch.tensor([[[0.5, 4.0], [1.5, 2.0]],
                                             [[0.125, 2.5], [0.375, 2.0]]]))
    with pytest.raises(ValueError, match="unknown offset kind"):
        offsets(a_start, a_end, b_start, b_end, "start")


def test_dta_mask_from_known_times():
    # text word [0.0, 1.0) vs audio frames at 0.5, 1.2, 2.5 s (10 ms long)
    a_s, a_e = torch.tensor([[0.0]]), torch.tensor([[1.0]])
    b_s = torch.tensor([[0.5, 1.2, 2.5]]); b_e = b_s + 0.01
    delta = offsets(a_s, a_e, b_s, b_e, "gap")
    assert torch.allclose(delta, torch.tensor([[[0.0, 0.2, 1.5]]]))
    mask = dta_mask(delta, torch.tensor([0.3]), tau=0.01)[0, 0, 0]
    assert mask[0] > -1e-3 and mask[1] > -1e-3          # within delta = 0.3 s: about 0
    assert mask[2] < -100                              # 1.2 s beyond delta: effectively -inf
    soft = dta_mask(delta, torch.tensor([0.3]), tau=0.1)[0, 0, 0]
    assert soft[0] > soft[1] > soft[2]                 # the relaxation is monotone in the offset


def test_dta_threshold_gets_a_gradient():
    delta = torch.tensor([[[0.0, 0.4, 1.0]]])
    threshold = torch.tensor([0.3], requires_grad=True)
    dta_mask(delta, threshold, tau=0.1).sum().backward()
    assert threshold.grad is not None and threshold.grad.item() > 0


def test_awm_penalty_is_minus_lambda_delta_and_gates_scale_the_mask():
    config = SGDTAMConfig.preset("tiny", heads=2, lambda_awm=0.7, use_dta_mask=False)
    block = MHDTA(config)
    delta = torch.tensor([[[0.0, 0.5, 2.0]]])
    bias = block.bias(delta)
    assert torch.allclose(bias, -0.7 * delta.unsqueeze(1).expand(1, 2, 1, 3))
    masked = MHDTA(SGDTAMConfig.preset("tiny", heads=2, use_awm=False))
    with torch.no_grad():
        masked.gate_raw.copy_(torch.tensor([-30.0, 5.0]))   # gate ~0 on head 0, ~5 on head 1
    bias = masked.bias(delta)[0, :, 0]
    assert bias[0].abs().max() < 1e-6
    assert bias[1, 2] < -50


def rows(start: float, rate: float, count: int, width: int = 2) -> TimedFeatures:
    """``count`` rows at ``rate`` rows/s from ``start`` seconds, each ``1 / rate`` long: real times."""
    begin = start + np.arange(count) / rate
    return TimedFeatures(np.ones((count, width), np.float32), begin, begin + 1 / rate, np.ones(count, bool),
                         tuple(f"f{i}" for i in range(width)), ExtractorIdentity("hand-made", "1"))


def test_real_times_and_index_times_disagree_when_rates_differ():
    # a 4 s clip: video at 1 row/s from 0 s, audio at 2 rows/s from 0.75 s (its 4 rows end at 2.75 s)
    clip = ClipFeatures(ClipInfo("sha", 4.0, "clip.mp4"), MissingModality("none"),
                        audio=rows(0.75, 2.0, 4), video=rows(0.0, 1.0, 4))
    batch = collate([clip])
    video, audio = batch.streams["video"], batch.streams["audio"]
    assert torch.equal(audio.start, torch.tensor([[0.75, 1.25, 1.75, 2.25]]))    # the real times reach the batch
    real = offsets(video.start, video.end, audio.start, audio.end)[0]
    assert torch.equal(real, torch.tensor([[0.0, 0.25, 0.75, 1.25],       # video [0, 1) against audio [0.75, 1.25) ...
                                           [0.0, 0.0, 0.0, 0.25],
                                           [0.75, 0.25, 0.0, 0.0],
                                           [1.75, 1.25, 0.75, 0.25]]))
    # by index, both streams' 4 rows tile the 4 s: [0, 1), [1, 2), [2, 3), [3, 4) each
    (v_start, v_end), (a_start, a_end) = index_times(video.pad, batch.duration), index_times(audio.pad, batch.duration)
    assert torch.equal(a_start, torch.tensor([[0.0, 1.0, 2.0, 3.0]])) and torch.equal(a_end, a_start + 1)
    by_index = offsets(v_start, v_end, a_start, a_end)[0]
    assert torch.equal(by_index, torch.tensor([[0.0, 0.0, 1.0, 2.0],
                                               [0.0, 0.0, 0.0, 1.0],
                                               [1.0, 0.0, 0.0, 0.0],
                                               [2.0, 1.0, 0.0, 0.0]]))
    # a 0.5 s window (tau small: about the hard Eq. 26): which audio rows each video row may attend
    window = torch.tensor([0.5])
    assert torch.equal(dta_mask(real[None], window, tau=0.01)[0, 0] > -1, torch.tensor([[1, 1, 0, 0],
                                                                                       [1, 1, 1, 1],
                                                                                       [0, 1, 1, 1],
                                                                                       [0, 0, 0, 1]], dtype=torch.bool))
    assert torch.equal(dta_mask(by_index[None], window, tau=0.01)[0, 0] > -1, torch.tensor([[1, 1, 0, 0],
                                                                                           [1, 1, 1, 0],
                                                                                           [0, 1, 1, 1],
                                                                                           [0, 0, 1, 1]], dtype=torch.bool))


def test_padding_and_unmeasured_keys_are_never_attended():
    logits = torch.zeros(1, 2, 4)
    allowed = torch.tensor([[[True, False, True, False], [False, False, False, False]]])
    weights = scoped_softmax(logits, allowed)
    assert torch.allclose(weights[0, 0], torch.tensor([0.5, 0.0, 0.5, 0.0]))
    assert torch.equal(weights[0, 1], torch.zeros(4))     # no allowed key: zeros, not NaN


def test_mhdta_output_ignores_values_of_masked_keys():
    config = SGDTAMConfig.preset("tiny")
    block = MHDTA(config).eval()
    x_a = torch.randn(1, 3, 16)
    x_b = torch.randn(1, 5, 16)
    keys = torch.tensor([[True, True, False, True, False]])
    delta = torch.rand(1, 3, 5)
    out1, w = block(x_a, x_b, keys, delta)
    x_b2 = x_b.clone()
    x_b2[0, 2] = 1e3
    x_b2[0, 4] = -1e3
    out2, _ = block(x_a, x_b2, keys, delta)
    assert torch.allclose(out1, out2)
    assert w[..., 2].abs().max() == 0 and w[..., 4].abs().max() == 0


@pytest.mark.parametrize("kind", ["gap", "centre"])
def test_overlapping_rows_of_different_lengths(kind):
    # a 1 s word and a 10 ms frame in its middle: the gap says aligned, the centre distance too here
    delta = offsets(torch.tensor([[0.0]]), torch.tensor([[1.0]]), torch.tensor([[0.9]]), torch.tensor([[0.91]]), kind)
    assert (delta.item() == 0.0) if kind == "gap" else abs(delta.item() - 0.405) < 1e-5


def test_masked_mean_reads_only_measured_rows():
    x = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, -100.0]],
                      [[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]])
    keys = torch.tensor([[True, True, False], [False, False, False]])
    assert torch.equal(masked_mean(x, keys), torch.tensor([[2.0, 3.0], [0.0, 0.0]]))   # no row: zeros, not NaN
