"""Each auxiliary loss: finite, correct on hand-made cases, and decreasing when optimised on a tiny problem."""

import math

import torch

from sgdtam_pipe.model.config import SGDTAMConfig
from sgdtam_pipe.model.generation import StagedGenerator
from sgdtam_pipe.model.losses import (
    ConditionalMI,
    ProjectionHead,
    alignment,
    compact,
    info_nce,
    reconstruction,
    resample,
    shrink,
    smoothness,
    soft_dtw,
)

torch.set_num_threads(1)


def optimise(params, loss_fn, steps=60, lr=0.05):
    opt = torch.optim.Adam(params, lr=lr)
    first = float(loss_fn().detach())
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        assert torch.isfinite(loss)
        loss.backward()
        opt.step()
    return first, float(loss_fn().detach())


def test_soft_dtw_matches_exact_dtw_for_small_gamma():
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]])
    y = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    value = soft_dtw(x, torch.tensor([3]), y, torch.tensor([2]), gamma=1e-4)
    assert abs(float(value)) < 1e-3                       # perfect warp: cost 0
    z = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])            # reversed order cannot be warped for free
    worse = soft_dtw(x, torch.tensor([3]), z, torch.tensor([2]), gamma=1e-4)
    assert float(worse) > 0.3


def test_soft_dtw_ignores_padding_beyond_each_length():
    torch.manual_seed(0)
    x, y = torch.randn(1, 4, 3), torch.randn(1, 3, 3)
    base = soft_dtw(x, torch.tensor([4]), y, torch.tensor([3]), 0.1)
    padded = soft_dtw(torch.cat([x, torch.randn(1, 5, 3)], 1), torch.tensor([4]),
                      torch.cat([y, torch.randn(1, 2, 3)], 1), torch.tensor([3]), 0.1)
    assert torch.allclose(base, padded, atol=1e-5)


def test_alignment_cost_is_bounded_on_long_sequences():
    torch.manual_seed(1)
    x = torch.randn(2, 500, 4)
    rows = torch.ones(2, 500, dtype=torch.bool)
    value = alignment(x, rows, -x, rows, gamma=0.1, max_len=16)
    assert -1.0 < float(value) <= 2.0
    pooled, lengths = shrink(*compact(x, rows), 16)
    assert pooled.shape[1] <= 16 and lengths.max() <= 16


def test_alignment_loss_decreases():
    torch.manual_seed(2)
    target = torch.randn(2, 12, 4)
    gen = torch.randn(2, 7, 4, requires_grad=True)
    rows_g = torch.ones(2, 7, dtype=torch.bool)
    rows_t = torch.tensor([[True] * 12, [True] * 8 + [False] * 4])
    first, last = optimise([gen], lambda: alignment(gen, rows_g, target, rows_t, gamma=0.1, max_len=8))
    assert last < first - 0.1


def test_reconstruction_compares_rows_at_matching_times():
    # the target stream has two rows [0,1) and [1,2); the query grid asks at [0,0.5) and [1.5,2)
    values = torch.tensor([[[1.0], [5.0]]])
    keys = torch.ones(1, 2, dtype=torch.bool)
    gaps = torch.tensor([[[0.0, 0.5], [0.5, 0.0]]])
    resampled, covered = resample(values, keys, gaps, sigma=0.05)
    assert torch.allclose(resampled[0, :, 0], torch.tensor([1.0, 5.0]), atol=1e-3) and covered.all()
    gen = torch.zeros(1, 2, 1, requires_grad=True)
    first, last = optimise([gen], lambda: reconstruction(gen, resampled, covered), steps=200, lr=0.1)
    assert last < 0.1 * first


def test_smoothness_decreases_and_skips_padding():
    x = torch.tensor([[[0.0], [1.0], [100.0]]])
    rows = torch.tensor([[True, True, False]])
    assert float(smoothness(x, rows)) == 1.0
    y = torch.randn(1, 10, 3, requires_grad=True)
    first, last = optimise([y], lambda: smoothness(y, torch.ones(1, 10, dtype=torch.bool)))
    assert last < 0.1 * first


def test_info_nce_with_projection_head_decreases_and_is_zero_for_one_sample():
    torch.manual_seed(3)
    head = ProjectionHead(8, 4)
    true = torch.randn(6, 8)
    gen = torch.randn(6, 8, requires_grad=True)
    first, last = optimise([gen, *head.parameters()], lambda: info_nce(head(gen), head(true), 0.1))
    assert last < first and last < math.log(6)
    assert float(info_nce(head(gen[:1]), head(true[:1]), 0.1).detach()) == 0.0


def test_conditional_mi_bound_rises_when_y_depends_on_x_given_z():
    torch.manual_seed(4)
    cmi = ConditionalMI(4, components=2)
    x, z = torch.randn(64, 4), torch.randn(64, 4)
    y = x + 0.1 * torch.randn(64, 4)                 # Y is predictable from X, not from Z
    losses = []
    opt = torch.optim.Adam(cmi.parameters(), lr=0.02)
    for _ in range(150):
        loss, bound = cmi(x, y, z)
        assert torch.isfinite(loss)
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(float(loss.detach()))
    _, bound = cmi(x, y, z)
    assert losses[-1] < losses[0]
    assert float(bound) > 0.5                            # nats per dimension


def test_mine_bound_separates_dependent_from_independent_pairs():
    torch.manual_seed(5)
    gen = StagedGenerator(SGDTAMConfig.preset("tiny"))
    x = torch.randn(128, 16)
    y = x + 0.1 * torch.randn(128, 16)
    opt = torch.optim.Adam(gen.mine.parameters(), lr=0.01)
    with torch.no_grad():
        first = float(gen.mine_bound("text", x, "audio", y))
    for _ in range(150):
        loss = -gen.mine_bound("text", x, "audio", y)
        opt.zero_grad(); loss.backward(); opt.step()
    with torch.no_grad():
        dependent = float(gen.mine_bound("text", x, "audio", y))
        independent = float(gen.mine_bound("text", x, "audio", torch.randn(128, 16)))
    assert dependent > first and dependent > independent + 0.5


def test_conditional_mi_bound_does_not_train_p_through_the_bound():
    torch.manual_seed(6)
    cmi = ConditionalMI(4, components=2)
    x, z = torch.randn(8, 4), torch.randn(8, 4)
    y = torch.randn(8, 4, requires_grad=True)
    _, bound = cmi(x, y, z)
    (-cmi.log_q(y, x, z) + cmi.log_p(y, z, frozen=True)).mean().backward()
    assert all(p.grad is None for p in cmi.p.parameters())
    assert y.grad is not None and y.grad.abs().sum() > 0
