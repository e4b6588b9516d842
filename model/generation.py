"""Staged Generation Module (paper Section 3.2): MINE route choice, SGT with SGM masks, SCA.

Choices where the paper is open, each with the tests that hold it to its word
(``sgdtam::test_x`` is ``tests/test_model_sgdtam.py::test_x``; ``masks::`` and
``losses::`` are tests/test_model_masks.py and tests/test_model_losses.py):

* **Time grid of a generated modality.** Eq. 13 gives the generated audio
  ``T_L`` rows: a generated modality lives on the grid of the *anchor*, one
  row per anchor row with the anchor row's real ``[start, end)``. With one
  observed modality the anchor is that modality (both stages share its
  grid); with two it is the first of them in ``sgdtam.ANCHOR_ORDER``
  (audio, then video, then text: a fixed order, not a measured density; its
  docstring says why). DTAM thus sees real times for every stream, generated
  or not. Tests: ``sgdtam::test_generated_modality_lives_on_the_anchor_grid_with_its_real_times``,
  ``sgdtam::test_with_two_observed_the_generated_rows_take_the_first_grid_in_anchor_order``.
* **Decoding.** The decoder is ``[bridge, s_1 .. s_T]`` with slot
  ``s_t = anchor_t + e_target`` (the anchor row in the shared space plus a
  learned embedding of the target modality). It runs in one pass, without
  teacher forcing: training and inference evaluate the same graph, and the
  true modality enters only through the losses. The SGM mask keeps Eq. 10's
  scopes: encoder tokens (observed and already generated modalities) and
  [bridge] attend to each other; slot ``i`` attends to the encoder, [bridge]
  and slots ``j <= i`` (the autoregressive scope of Section 3.2.5).
  Tests: ``masks::test_sgm_*`` (the scopes on hand-made sequences).
* **Stages.** Stage 1 scope: the observed modalities. Stage 2 scope: the
  observed modality plus the stage-1 output. One observed modality: two
  stages (route chosen by MINE); two observed: one stage; three: none.
  Test: ``sgdtam::test_each_availability_pattern_runs_and_reports_its_route``.
* **SCA (Eq. 5, 14, 16)** is cross-attention from the slots to each source
  modality in the stage's scope, summed over sources. Eq. 5 writes a sigmoid;
  we use softmax as Eq. 9, 14 and 16 do (sigmoid weights do not sum to 1 and
  grow with the number of keys). Test: ``sgdtam::test_sca_uses_softmax_weights_not_sigmoid``.
* **Route choice (Sec. 3.2.1).** The missing modality is not there at
  inference, so the per-sample MI is the MINE pointwise estimate
  ``T(h_src, h_hat_c) - log mean_k exp T(h_src, m_k)`` where ``h_hat_c`` is the
  stage-1 preview of candidate c and ``m_k`` a bank of true embeddings of c
  seen in training (the marginal). If ``I_first - I_second > theta`` the
  first candidate (in (text, audio, video) order) is generated first.
  T_psi is two hidden layers of width d with ReLU, trained by the
  Donsker-Varadhan bound on detached embeddings (weight lambda_order).
  Tests: ``sgdtam::test_route_follows_the_sign_of_delta_i_against_theta``,
  ``sgdtam::test_route_is_chosen_per_sample_from_mine``,
  ``losses::test_mine_bound_separates_dependent_from_independent_pairs``.
* **Embeddings h_t, h_a, h_v** (Sec. 3.1.2) are the masked means of the
  projected streams, not a BERT [CLS] / sLSTM state.
  Test: ``masks::test_masked_mean_reads_only_measured_rows``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sgdtam_pipe.core.timeline import MODALITIES
from sgdtam_pipe.model.attention import MultiHeadAttention
from sgdtam_pipe.model.config import SGDTAMConfig


def masked_mean(x: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Mean of ``x [B, T, d]`` over rows with ``keys [B, T]``; zeros where none."""
    w = keys.unsqueeze(-1).float()                                      # [B, T, 1]
    return (x * w).sum(1) / w.sum(1).clamp(min=1.0)


def sgm_scope(encoder_keys: torch.Tensor, slot_pad: torch.Tensor, *, bridge: bool, staged: bool) -> torch.Tensor:
    """Allowed pairs ``[B, L, L]`` for the sequence ``[encoder | bridge? | slots]`` (Eq. 10).

    ``staged=False`` is the "w/o SGM" ablation: every existing token sees every existing token.
    """
    b, te = encoder_keys.shape
    ts = slot_pad.shape[1]
    parts = [encoder_keys]
    if bridge:
        parts.append(torch.ones(b, 1, dtype=torch.bool, device=encoder_keys.device))
    parts.append(slot_pad)
    keys = torch.cat(parts, dim=1)                        # which tokens exist
    length = keys.shape[1]
    if not staged:
        return keys.unsqueeze(1).expand(b, length, length).clone()      # [B, L, L]: each row = which tokens exist
    n_enc = te + int(bridge)                               # encoder tokens incl. bridge
    allowed = torch.zeros(b, length, length, dtype=torch.bool, device=keys.device)
    allowed[:, :, :n_enc] = keys[:, None, :n_enc]          # [B, 1, n_enc]: everyone sees encoder and bridge
    causal = torch.ones(ts, ts, dtype=torch.bool, device=keys.device).tril()     # [Ts, Ts]
    allowed[:, n_enc:, n_enc:] = causal & slot_pad[:, None, :]     # & [B, 1, Ts] -> [B, Ts, Ts]: slot i sees j <= i
    return allowed


class SGTLayer(nn.Module):
    """Eq. 11: ``LayerNorm(X + SGM(X))``."""

    def __init__(self, config: SGDTAMConfig) -> None:
        super().__init__()
        self.attention = MultiHeadAttention(config.d_model, config.heads, config.dropout)
        self.norm = nn.LayerNorm(config.d_model)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.attention(x, x, allowed)[0])


class MINE(nn.Module):
    """T_psi for one pair of modalities: two hidden layers of width d, ReLU."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * d, d), nn.ReLU(), nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 1))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, y], dim=-1)).squeeze(-1)         # [..., 2d] -> [..., 1] -> [...]


def pair_key(a: str, b: str) -> str:
    first, second = sorted((a, b), key=MODALITIES.index)
    return f"{first}_{second}"


class StagedGenerator(nn.Module):
    """Generates a missing modality's rows on the anchor grid from the modalities in scope."""

    def __init__(self, config: SGDTAMConfig) -> None:
        super().__init__()
        d = config.d_model
        self.config = config
        self.bridge = nn.ParameterDict({m: nn.Parameter(torch.randn(1, 1, d) * 0.02) for m in MODALITIES})
        self.target_embedding = nn.ParameterDict({m: nn.Parameter(torch.randn(1, 1, d) * 0.02) for m in MODALITIES})
        self.source_embedding = nn.ParameterDict({m: nn.Parameter(torch.randn(1, 1, d) * 0.02) for m in MODALITIES})
        self.layers = nn.ModuleList(SGTLayer(config) for _ in range(config.sgt_layers))
        self.sca = nn.ModuleDict({m: MultiHeadAttention(d, config.heads, config.dropout) for m in MODALITIES})
        self.sca_norm = nn.LayerNorm(d)
        self.head = nn.ModuleDict({m: nn.Linear(d, d) for m in MODALITIES})
        self.mine = nn.ModuleDict({pair_key(a, b): MINE(d) for i, a in enumerate(MODALITIES)
                                   for b in MODALITIES[i + 1:]})
        self.register_buffer("bank", torch.zeros(len(MODALITIES), config.mine_bank, d))
        self.register_buffer("bank_next", torch.zeros(len(MODALITIES), dtype=torch.long))

    def forward(self, target: str, scope: list[tuple[str, torch.Tensor, torch.Tensor]],
                anchor: torch.Tensor, anchor_pad: torch.Tensor) -> torch.Tensor:
        """Rows of ``target`` ``[B, Ta, d]`` from ``scope`` = [(modality, tokens [B,T,d], keys [B,T])]."""
        encoder = torch.cat([x + self.source_embedding[m] for m, x, _ in scope], dim=1)   # [B, Te, d]
        encoder_keys = torch.cat([k for _, _, k in scope], dim=1)                         # [B, Te]
        slots = anchor + self.target_embedding[target]                                    # [B, Ta, d]
        b = anchor.shape[0]
        # the bridge [1, 1, d] expanded to [B, 1, d]
        parts = [encoder, self.bridge[target].expand(b, 1, -1)] if self.config.use_bridge else [encoder]
        x = torch.cat([*parts, slots], dim=1)                  # [B, L, d], L = Te (+ 1) + Ta
        allowed = sgm_scope(encoder_keys, anchor_pad, bridge=self.config.use_bridge, staged=self.config.use_sgm)
        for layer in self.layers:
            x = layer(x, allowed)
        out = x[:, -anchor.shape[1]:]                          # [B, Ta, d]: the slots
        if self.config.use_sca:
            # a source's keys [B, T] -> [B, 1, T]: the same keys for every slot
            cross = sum(self.sca[m](out, tokens, keys.unsqueeze(1))[0] for m, tokens, keys in scope)
            out = self.sca_norm(out + cross)
        return self.head[target](out)

    def choose_first(self, source: str, source_summary: torch.Tensor, candidates: tuple[str, str],
                     previews: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per sample: True where ``candidates[0]`` goes first; also Delta I ``[B]``."""
        mi = [self.pointwise_mi(source, source_summary, c, p) for c, p in zip(candidates, previews)]
        delta_i = mi[0] - mi[1]
        return delta_i > self.config.theta, delta_i

    def score(self, a: str, x: torch.Tensor, b: str, y: torch.Tensor) -> torch.Tensor:
        """T_psi(x, y) for modalities a, b, whatever their order (one network per pair)."""
        mine = self.mine[pair_key(a, b)]
        return mine(x, y) if MODALITIES.index(a) < MODALITIES.index(b) else mine(y, x)

    def pointwise_mi(self, source: str, x: torch.Tensor, target: str, y: torch.Tensor) -> torch.Tensor:
        """Per-sample ``T(x, y) - log mean_k exp T(x, bank_k)`` -> ``[B]``."""
        bank = self.bank[MODALITIES.index(target)]
        b, k = x.shape[0], bank.shape[0]
        # each sample [B, 1, d] against each bank row [1, K, d], both expanded to [B, K, d] -> scores [B, K]
        marginal = self.score(source, x.unsqueeze(1).expand(b, k, -1), target, bank.unsqueeze(0).expand(b, k, -1))
        return self.score(source, x, target, y) - (torch.logsumexp(marginal, dim=1) - math.log(k))

    def mine_bound(self, a: str, x: torch.Tensor, b: str, y: torch.Tensor) -> torch.Tensor:
        """Donsker-Varadhan bound of I(a; b): ``E_joint T - log E_marginal exp T`` (marginal: y rolled)."""
        joint = self.score(a, x, b, y).mean()
        marginal = self.score(a, x, b, y.roll(1, dims=0))
        return joint - (torch.logsumexp(marginal, dim=0) - math.log(marginal.shape[0]))

    @torch.no_grad()
    def remember(self, modality: str, summaries: torch.Tensor) -> None:
        """Write true embeddings of ``modality`` into its ring buffer (the MINE marginal)."""
        i = MODALITIES.index(modality)
        size = self.bank.shape[1]
        for row in summaries[-size:]:
            self.bank[i, self.bank_next[i]] = row
            self.bank_next[i] = (self.bank_next[i] + 1) % size
