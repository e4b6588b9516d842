"""The auxiliary objectives of SG-DTAM (Eq. 8, 17-21, 33-35).

Choices where the paper is open:

* **Eq. 8, conditional MI bound.** ``I(X; Y | Z) >= E log q(Y | X, Z) + H(Y | Z)``
  with q a diagonal Gaussian whose mean and log-variance an MLP predicts, and
  ``H(Y | Z) = -E log p(Y | Z)`` estimated by a conditional Gaussian mixture
  p. p is fitted by maximum likelihood on detached (Y, Z); in the bound
  the model maximises, p's parameters are frozen (gradients reach Y and Z,
  not p), so the generator cannot raise the bound by spoiling p as a
  density model. Log-variances are clamped to [-4, 4] and log-densities are
  per dimension (nats / d), so the term stays finite and does not grow with d.
* **InfoNCE (Eq. 17).** The denominator includes the positive (the standard
  form; without it the loss has no lower bound). Negatives are the true
  embeddings of the other samples in the batch; with one sample the loss is
  0. Both sides pass through the shared MLP projection head.
* **Reconstruction.** The generated rows live on the anchor grid, the true
  ones on their own; the truth is resampled onto the anchor grid by a time
  kernel ``softmax(-gap / sigma)`` over real intervals (overlapping rows
  share the weight) and compared by L1 in the shared space, the target
  detached so the two sides cannot collapse together.
* **Soft-DTW (Eq. 33)** replaces DTW (differentiable). Its cost is bounded:
  cosine distance in [0, 2], the sum divided by ``n + m``, and sequences longer
  than ``sdtw_max_len`` mean-pooled to that length first, so time and memory
  are ``O(max_len^2)`` whatever the clip length.
* **Smoothness (Eq. 34)** is averaged over steps and features instead of
  summed, so its size does not grow with the sequence length.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LOGVAR_RANGE = (-4.0, 4.0)
BIG = 1e10


def gaussian_log_likelihood(y: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Diagonal Gaussian ``log N(y; mean, exp(logvar))`` per dimension (mean over the last axis)."""
    logvar = logvar.clamp(*LOGVAR_RANGE)
    return -0.5 * (((y - mean) ** 2) / logvar.exp() + logvar + math.log(2 * math.pi)).mean(-1)


class ConditionalMI(nn.Module):
    """The Eq. 8 lower bound of ``I(X; Y | Z)`` with q_phi(Y | X, Z) and a mixture p(Y | Z)."""

    def __init__(self, d: int, components: int) -> None:
        super().__init__()
        self.d, self.k = d, components
        self.q = nn.Sequential(nn.Linear(2 * d, d), nn.ReLU(), nn.Linear(d, 2 * d))
        self.p = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, components * (2 * d + 1)))

    def log_q(self, y: torch.Tensor, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        mean, logvar = self.q(torch.cat([x, z], -1)).chunk(2, dim=-1)
        return gaussian_log_likelihood(y, mean, logvar)

    def log_p(self, y: torch.Tensor, z: torch.Tensor, *, frozen: bool = False) -> torch.Tensor:
        """Mixture log-density of y given z; ``frozen`` keeps gradients out of p's parameters."""
        if frozen:
            params = {k: v.detach() for k, v in self.p.named_parameters()}
            out = torch.func.functional_call(self.p, params, (z,))
        else:
            out = self.p(z)
        out = out.view(-1, self.k, 2 * self.d + 1)
        mean, logvar, logit = out[..., :self.d], out[..., self.d:2 * self.d], out[..., -1]
        per_component = gaussian_log_likelihood(y.unsqueeze(1), mean, logvar)
        return torch.logsumexp(per_component + torch.log_softmax(logit, -1), dim=-1)

    def forward(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (loss, bound): loss = -bound (p frozen) + NLL fitting p on detached (y, z)."""
        bound = (self.log_q(y, x, z) - self.log_p(y, z, frozen=True)).mean()
        fit_p = -self.log_p(y.detach(), z.detach()).mean()
        return -bound + fit_p, bound.detach()


class ProjectionHead(nn.Module):
    """The MLP that maps generated and true embeddings into the contrastive space."""

    def __init__(self, d: int, out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def info_nce(generated: torch.Tensor, true: torch.Tensor, tau: float) -> torch.Tensor:
    """InfoNCE over a batch: sample i's positive is ``true[i]``, its negatives ``true[j != i]``."""
    if generated.shape[0] < 2:
        return generated.sum() * 0.0
    sim = F.normalize(generated, dim=-1) @ F.normalize(true, dim=-1).T / tau
    return F.cross_entropy(sim, torch.arange(sim.shape[0], device=sim.device))


def resample(values: torch.Tensor, keys: torch.Tensor, gaps: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Values of a stream at another grid's rows: ``softmax(-gap / sigma)`` over its ``keys``.

    ``gaps [B, Tq, Tk]`` are time offsets from the query grid's rows to the
    stream's rows. Returns ``[B, Tq, d]`` and which query rows got any key.
    """
    weights = torch.softmax((-gaps / sigma).masked_fill(~keys.unsqueeze(1), -BIG), dim=-1)
    return weights @ values, keys.any(dim=1, keepdim=True).expand(-1, gaps.shape[1])


def reconstruction(generated: torch.Tensor, target: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Mean L1 over ``rows [B, T]`` between generated and (already detached) target rows."""
    per_row = (generated - target).abs().mean(-1)
    return (per_row * rows).sum() / rows.sum().clamp(min=1)


def smoothness(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Eq. 34 averaged: mean squared step between consecutive existing rows."""
    pairs = rows[:, 1:] & rows[:, :-1]
    steps = ((x[:, 1:] - x[:, :-1]) ** 2).mean(-1)
    return (steps * pairs).sum() / pairs.sum().clamp(min=1)


def compact(x: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each sample's existing rows to the front (order kept); returns values and lengths."""
    order = torch.argsort((~rows).to(torch.int8), dim=1, stable=True)
    return x.gather(1, order.unsqueeze(-1).expand_as(x)), rows.sum(1)


def shrink(x: torch.Tensor, lengths: torch.Tensor, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean-pool compacted sequences by a common stride so none is longer than ``max_len``."""
    t = x.shape[1]
    stride = max(1, math.ceil(t / max_len))
    if stride == 1:
        return x, lengths
    pad = (-t) % stride
    rows = (torch.arange(t + pad, device=x.device).unsqueeze(0) < lengths.unsqueeze(1)).float()
    x = F.pad(x, (0, 0, 0, pad))
    b, d = x.shape[0], x.shape[2]
    total = (x * rows.unsqueeze(-1)).view(b, -1, stride, d).sum(2)
    count = rows.view(b, -1, stride).sum(2)
    return total / count.clamp(min=1).unsqueeze(-1), torch.div(lengths + stride - 1, stride, rounding_mode="floor")


def soft_dtw(x: torch.Tensor, x_len: torch.Tensor, y: torch.Tensor, y_len: torch.Tensor, gamma: float) -> torch.Tensor:
    """Soft-DTW per sample between compacted ``x [B, N, d]`` and ``y [B, M, d]``, over ``n + m``.

    Cost: cosine distance. Computed along anti-diagonals (N + M steps of
    vector operations); padding beyond a sample's lengths cannot reach its
    end cell, so it does not change the result.
    """
    b, n, m = x.shape[0], x.shape[1], y.shape[1]
    cost = 1.0 - F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).transpose(1, 2)   # [B, N, M]
    i = torch.arange(n + 1, device=x.device)
    previous2 = torch.full((b, n + 1), BIG, device=x.device).index_fill(1, torch.tensor([0], device=x.device), 0.0)
    previous = torch.full((b, n + 1), BIG, device=x.device)
    result = torch.zeros(b, device=x.device)
    end_k, end_i = x_len + y_len, x_len.long()
    for k in range(2, n + m + 1):
        j = k - i
        inside = (i >= 1) & (j >= 1) & (j <= m) & (i <= n)
        c = cost[:, (i - 1).clamp(0, n - 1), (j - 1).clamp(0, m - 1)]
        stacked = torch.stack([F.pad(previous2[:, :-1], (1, 0), value=BIG),
                               F.pad(previous[:, :-1], (1, 0), value=BIG), previous], dim=0)
        soft_min = -gamma * torch.logsumexp(-stacked / gamma, dim=0)
        current = torch.where(inside.unsqueeze(0), c + soft_min, torch.full_like(soft_min, BIG))
        result = torch.where(end_k == k, current.gather(1, end_i.unsqueeze(1)).squeeze(1), result)
        previous2, previous = previous, current
    return result / (x_len + y_len).clamp(min=1)


def alignment(generated: torch.Tensor, generated_rows: torch.Tensor, true: torch.Tensor, true_rows: torch.Tensor,
              *, gamma: float, max_len: int) -> torch.Tensor:
    """Eq. 33 with soft-DTW, bounded: mean over samples that have rows on both sides."""
    x, x_len = shrink(*compact(generated, generated_rows), max_len)
    y, y_len = shrink(*compact(true, true_rows), max_len)
    x, y = x[:, :max(1, int(x_len.max()))], y[:, :max(1, int(y_len.max()))]
    both = (x_len > 0) & (y_len > 0)
    if not both.any():
        return generated.sum() * 0.0
    return soft_dtw(x[both], x_len[both], y[both], y_len[both], gamma).mean()
