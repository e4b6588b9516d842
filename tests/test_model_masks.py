"""The masks of SG-DTAM on hand-made examples: SGM scopes, DTA mask from real times, AWM, padding."""

import numpy as np
import pytest
import torch

from sgdtam_pipe.core.timeline import offset_matrix
from sgdtam_pipe.model.attention import scoped_softmax
from sgdtam_pipe.model.config import SGDTAMConfig
from sgdtam_pipe.model.dtam import MHDTA, dta_mask, index_times, offsets
from sgdtam_pipe.model.generation import sgm_scope

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


def test_offsets_match_the_time_contract_helper_for_gap_and_centre():
    rng = np.random.default_rng(3)
    a_s = np.sort(rng.uniform(0, 5, 7)); a_e = a_s + rng.uniform(0, 0.5, 7)
    b_s = np.sort(rng.uniform(0, 5, 4)); b_e = b_s + rng.uniform(0, 1.0, 4)
    for kind in ("gap", "centre"):
        ours = offsets(*(torch.tensor(x, dtype=torch.float32)[None] for x in (a_s, a_e, b_s, b_e)), kind)[0]
        np.testing.assert_allclose(ours.numpy(), offset_matrix(a_s, a_e, b_s, b_e, kind=kind), atol=1e-5)


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


def test_real_times_and_index_times_disagree_when_rates_differ():
    # audio rows start 0.8 s late: by index they would be spread from 0
    pad = torch.ones(1, 4, dtype=torch.bool)
    start, end = index_times(pad, torch.tensor([4.0]))
    assert torch.allclose(start, torch.tensor([[0.0, 1.0, 2.0, 3.0]]))
    assert torch.allclose(end, torch.tensor([[1.0, 2.0, 3.0, 4.0]]))


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
