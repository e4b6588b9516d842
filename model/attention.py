"""Multi-head attention with a boolean key scope and an additive per-head bias.

Every attention in SG-DTAM (SGM, SCA, MHDTA) is this one function with a
different scope and bias. Forbidden pairs get a large negative logit rather
than -inf, and a query with no allowed key outputs zeros: no NaN reaches the
forward pass or the gradients.
"""

from __future__ import annotations

import math

import torch
from torch import nn

FORBIDDEN = -1e9


def scoped_softmax(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis restricted to ``allowed``; all-forbidden rows give zeros."""
    weights = torch.softmax(logits.masked_fill(~allowed, FORBIDDEN), dim=-1)
    return weights * allowed.any(dim=-1, keepdim=True)        # [..., 1]: zero for a query with no allowed key


class MultiHeadAttention(nn.Module):
    """``softmax(Q K^T / sqrt(d_k) + bias)`` over allowed keys, heads concatenated, then ``W^O``."""

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads, self.d_k = heads, d_model // heads
        self.q, self.k, self.v, self.out = (nn.Linear(d_model, d_model) for _ in range(4))
        self.drop = nn.Dropout(dropout)

    def forward(self, query: torch.Tensor, key: torch.Tensor, allowed: torch.Tensor,
                bias: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``query [B, Tq, d]``, ``key [B, Tk, d]``, ``allowed [B, Tq, Tk]`` (or broadcastable),
        ``bias [B, H, Tq, Tk]`` (or broadcastable). Returns output and weights ``[B, H, Tq, Tk]``."""
        b, tq, _ = query.shape
        tk = key.shape[1]
        q = self.q(query).view(b, tq, self.heads, self.d_k).transpose(1, 2)    # [B, H, Tq, d_k]
        k = self.k(key).view(b, tk, self.heads, self.d_k).transpose(1, 2)      # [B, H, Tk, d_k]
        v = self.v(key).view(b, tk, self.heads, self.d_k).transpose(1, 2)      # [B, H, Tk, d_k]
        logits = q @ k.transpose(-1, -2) / math.sqrt(self.d_k)                # [B, H, Tq, Tk]
        if bias is not None:
            logits = logits + bias
        weights = scoped_softmax(logits, allowed.unsqueeze(1))                # scope [B, 1, Tq, Tk] for every head
        mixed = (self.drop(weights) @ v).transpose(1, 2)                       # [B, Tq, H, d_k]
        mixed = mixed.reshape(b, tq, self.heads * self.d_k)                    # [B, Tq, d]: heads concatenated
        return self.out(mixed), weights
