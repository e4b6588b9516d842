"""BERT's encoder in plain torch (Devlin et al. 2019), for checkpoints in the classic layout.

The same computation as transformers' ``BertModel`` without its pooler, in
eval mode: word, segment (always 0) and absolute position embeddings, layer
norm, then post-norm layers of multi-head self-attention and an exact-GELU
feed-forward block. Padding positions are masked out of the attention. The
weights keep transformers' names on disk (``model.safetensors``, with or
without a ``bert.`` prefix) and are read without unpickling.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional

# transformers' parameter names, as prefixes, and this module's: applied in order
RENAMES = (("embeddings.word_embeddings.", "words."), ("embeddings.position_embeddings.", "positions."),
           ("embeddings.token_type_embeddings.", "segments."), ("embeddings.LayerNorm.", "embedding_norm."),
           ("encoder.layer.", "layers."), ("attention.self.", ""), ("attention.output.dense.", "attention_out."),
           ("attention.output.LayerNorm.", "attention_norm."), ("intermediate.dense.", "expand."),
           ("output.dense.", "contract."), ("output.LayerNorm.", "output_norm."))
UNUSED = ("pooler.", "embeddings.position_ids")


class BertLayer(nn.Module):
    """One post-norm transformer layer: self-attention, then the feed-forward block."""

    def __init__(self, hidden: int, heads: int, intermediate: int, eps: float) -> None:
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.attention_out = nn.Linear(hidden, hidden)
        self.attention_norm = nn.LayerNorm(hidden, eps=eps)
        self.expand = nn.Linear(hidden, intermediate)
        self.contract = nn.Linear(intermediate, hidden)
        self.output_norm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """``x`` is ``(batch, positions, hidden)``; ``keep`` a ``(batch, 1, 1, positions)`` boolean key mask."""
        batch, positions, hidden = x.shape

        def split(projection: nn.Linear) -> torch.Tensor:
            return projection(x).view(batch, positions, self.heads, hidden // self.heads).transpose(1, 2)

        context = functional.scaled_dot_product_attention(split(self.query), split(self.key), split(self.value),
                                                          attn_mask=keep)
        attended = self.attention_norm(self.attention_out(context.transpose(1, 2).reshape(x.shape)) + x)
        return self.output_norm(self.contract(functional.gelu(self.expand(attended))) + attended)


class BertEncoder(nn.Module):
    """Token ids and an attention mask to every hidden state (the embeddings first)."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        hidden, eps = config["hidden_size"], config["layer_norm_eps"]
        self.words = nn.Embedding(config["vocab_size"], hidden)
        self.positions = nn.Embedding(config["max_position_embeddings"], hidden)
        self.segments = nn.Embedding(config["type_vocab_size"], hidden)
        self.embedding_norm = nn.LayerNorm(hidden, eps=eps)
        self.layers = nn.ModuleList(
            BertLayer(hidden, config["num_attention_heads"], config["intermediate_size"], eps)
            for _ in range(config["num_hidden_layers"]))

    @classmethod
    def from_folder(cls, folder: Path, config: dict[str, Any]) -> "BertEncoder":
        """The encoder with ``folder/model.safetensors`` loaded (every parameter must be there), in eval mode."""
        from safetensors.torch import load_file

        weights = {}
        for name, tensor in load_file(str(folder / "model.safetensors")).items():
            name = name.removeprefix("bert.")
            if not name.startswith(UNUSED):
                weights[_renamed(name)] = tensor
        model = cls(config)
        model.load_state_dict(weights, strict=True)
        return model.eval()

    def forward(self, ids: torch.Tensor, attention: torch.Tensor) -> list[torch.Tensor]:
        """``ids`` and ``attention`` (1 for a real token, 0 for padding) are ``(batch, positions)``."""
        x = self.words(ids) + self.segments(torch.zeros_like(ids))
        x = self.embedding_norm(x + self.positions(torch.arange(ids.shape[1], device=ids.device)))
        keep = attention.bool()[:, None, None, :]
        states = [x]
        for layer in self.layers:
            states.append(layer(states[-1], keep))
        return states


def _renamed(name: str) -> str:
    for old, new in RENAMES:
        if old in name:
            name = name.replace(old, new, 1)
    return name
