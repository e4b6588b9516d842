"""Dynamic Time Alignment Module (paper Section 3.3): MHDTA, the DTA mask, AWM.

Choices where the paper is open, each with the tests that hold it to its word
(``masks::test_x`` is ``tests/test_model_masks.py::test_x``; ``sgdtam::`` is
tests/test_model_sgdtam.py):

* **Offsets from real times.** Delta (Eq. 25) is computed from the rows' real
  ``[start, end)`` intervals, never from indices. ``offset_kind="gap"``
  (default) is the empty time between two intervals, 0 when they overlap, so
  a 1 s ASR word and a 10 ms audio frame inside it are aligned whatever their
  lengths; ``"centre"`` is the centre-to-centre distance of Eq. 25 read
  literally. :func:`offsets` is the package's one offset matrix. Tests:
  ``masks::test_offsets_gap_and_centre_by_hand``, ``masks::test_overlapping_rows_of_different_lengths``,
  ``masks::test_real_times_and_index_times_disagree_when_rates_differ``.
* **Differentiable delta.** Eq. 26 is a hard threshold, which gives delta no
  gradient. We use the relaxation ``M = log sigmoid((delta - Delta) / tau)``:
  about 0 inside the window, falling linearly (slope 1/tau per second) beyond
  it, and exactly Eq. 26 in the limit tau -> 0. Training *and inference* use
  the same relaxed mask, so the function evaluated at test time is the one
  that was trained. delta is learnable per head (positive via softplus),
  initialised spread over ``delta_init`` so heads start at different scales.
  Tests: ``masks::test_dta_mask_from_known_times``, ``masks::test_dta_threshold_gets_a_gradient``,
  ``sgdtam::test_inference_uses_the_same_relaxed_mask_as_training``.
* **Gates.** Each head scales its mask by ``g_i = softplus(w_i) >= 0``
  (Eq. 6), initialised to 1. Test: ``masks::test_awm_penalty_is_minus_lambda_delta_and_gates_scale_the_mask``.
* **AWM in the same softmax.** Eq. 28 has the same Q, K and softmax as
  Eq. 23, so ``-lambda * Delta`` is added to the MHDTA logits: one attention
  with logits ``Q K^T / sqrt(d_k) + g_i M_i - lambda Delta``. Test: as for the gates.
* **Time sources** (benchmark): ``real`` uses the rows' times, ``index``
  spreads each stream's rows evenly over the clip (what index-based methods
  assume), ``none`` drops the mask and AWM (Delta = 0). Test:
  ``sgdtam::test_time_sources_change_the_output_only_through_times``.
* **w/o MHDTA** (Table 17) is one head with neither mask nor gates. Test:
  ``sgdtam::test_every_ablation_switch_changes_what_it_names``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sgdtam_pipe.core.timeline import MODALITIES
from sgdtam_pipe.model.attention import MultiHeadAttention
from sgdtam_pipe.model.config import SGDTAMConfig


def offsets(a_start: torch.Tensor, a_end: torch.Tensor, b_start: torch.Tensor, b_end: torch.Tensor,
            kind: str = "gap") -> torch.Tensor:
    """``Delta [B, Ta, Tb] >= 0`` between the rows of stream a and of stream b, from times ``[B, T]``.

    ``kind="gap"``: the empty time between the two ``[start, end)`` intervals
    (0 when they overlap). ``kind="centre"``: the distance between their centres.
    """
    a_s, a_e = a_start.unsqueeze(-1), a_end.unsqueeze(-1)      # [B, Ta, 1]
    b_s, b_e = b_start.unsqueeze(-2), b_end.unsqueeze(-2)      # [B, 1, Tb]
    if kind == "gap":
        return torch.clamp(torch.maximum(a_s - b_e, b_s - a_e), min=0.0)
    if kind == "centre":
        return ((a_s + a_e) - (b_s + b_e)).abs() / 2
    raise ValueError(f"unknown offset kind {kind!r}; expected 'gap' or 'centre'")


def index_times(pad: torch.Tensor, duration: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows spread evenly over ``[0, duration)`` by index: the index-based baseline's times."""
    count = pad.sum(dim=1, keepdim=True).clamp(min=1).float()     # [B, 1] rows that exist
    step = duration.unsqueeze(1) / count                           # [B, 1] seconds per row
    index = torch.arange(pad.shape[1], device=pad.device, dtype=torch.float32).unsqueeze(0)   # [1, T]
    return index * step, (index + 1) * step                        # [B, T] each


def dta_mask(delta_matrix: torch.Tensor, delta: torch.Tensor, tau: float) -> torch.Tensor:
    """Soft Eq. 26 per head: ``log sigmoid((delta_h - Delta) / tau)`` -> ``[B, H, Ta, Tb]``.

    ``delta`` has one threshold per head (seconds). Tends to 0 / -inf as tau -> 0.
    """
    # thresholds [1, H, 1, 1] against offsets [B, 1, Ta, Tb]
    return F.logsigmoid((delta.view(1, -1, 1, 1) - delta_matrix.unsqueeze(1)) / tau)


class MHDTA(nn.Module):
    """``MHDTA_{beta -> alpha}``: queries from alpha, keys and values from beta (Eq. 22-28)."""

    def __init__(self, config: SGDTAMConfig) -> None:
        super().__init__()
        self.config = config
        heads = config.heads if config.use_mhdta else 1
        self.attention = MultiHeadAttention(config.d_model, heads, config.dropout)
        self.masked = config.use_mhdta and config.use_dta_mask and config.time_source != "none"
        self.weighted = config.use_awm and config.time_source != "none"
        lo, hi = config.delta_init
        init = torch.linspace(lo, hi, heads)
        self.delta_raw = nn.Parameter(init + torch.log(-torch.expm1(-init)))   # softplus^-1
        self.gate_raw = nn.Parameter(torch.full((heads,), math.log(math.e - 1)))  # softplus(.) = 1

    def delta(self) -> torch.Tensor:
        return F.softplus(self.delta_raw)

    def gates(self) -> torch.Tensor:
        if self.config.use_gates and self.config.use_mhdta:
            return F.softplus(self.gate_raw)
        return torch.ones_like(self.gate_raw)

    def bias(self, delta_matrix: torch.Tensor) -> torch.Tensor | None:
        """The additive logits ``g_i M_i^DTA - lambda Delta``, or None when both are off."""
        bias = None
        if self.masked:
            # gates [1, H, 1, 1] scale each head's mask [B, H, Ta, Tb]
            bias = self.gates().view(1, -1, 1, 1) * dta_mask(delta_matrix, self.delta(), self.config.dta_tau)
        if self.weighted:
            awm = -self.config.lambda_awm * delta_matrix.unsqueeze(1)     # [B, 1, Ta, Tb]: the same for every head
            bias = awm if bias is None else bias + awm
        return bias

    def forward(self, x_alpha: torch.Tensor, x_beta: torch.Tensor, keys: torch.Tensor,
                delta_matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``keys [B, Tb]`` says which beta rows may be attended."""
        # keys [B, 1, Tb]: the same beta rows for every alpha row
        return self.attention(x_alpha, x_beta, keys.unsqueeze(1), self.bias(delta_matrix))


class DTAM(nn.Module):
    """Eq. 30-32: each modality attends to the other two by MHDTA, then its output projection.

    A residual connection and LayerNorm close each layer (the paper's Eq. 32
    gives the projection only; the residual keeps a modality's own content
    when no key of the others falls in its window).
    """

    def __init__(self, config: SGDTAMConfig) -> None:
        super().__init__()
        pairs = [f"{b}_to_{a}" for a in MODALITIES for b in MODALITIES if a != b]
        self.layers = nn.ModuleList(
            nn.ModuleDict({p: MHDTA(config) for p in pairs}) for _ in range(config.dtam_layers))
        self.project = nn.ModuleList(
            nn.ModuleDict({m: nn.Linear(config.d_model, config.d_model) for m in MODALITIES})
            for _ in range(config.dtam_layers))
        self.norm = nn.ModuleList(
            nn.ModuleDict({m: nn.LayerNorm(config.d_model) for m in MODALITIES}) for _ in range(config.dtam_layers))

    def forward(self, x: dict[str, torch.Tensor], keys: dict[str, torch.Tensor],
                deltas: dict[tuple[str, str], torch.Tensor]) -> dict[str, torch.Tensor]:
        """``x[m] [B, T_m, d]``, ``keys[m] [B, T_m]``, ``deltas[(a, b)] [B, T_a, T_b]``."""
        for mhdta, project, norm in zip(self.layers, self.project, self.norm):
            out = {}
            for a in MODALITIES:
                y = sum(mhdta[f"{b}_to_{a}"](x[a], x[b], keys[b], deltas[(a, b)])[0]
                        for b in MODALITIES if b != a)
                out[a] = norm[a](x[a] + project[a](y))
            x = out
        return x
