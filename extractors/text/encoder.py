"""Token encoders for the text stage, loaded from a local folder: word pieces in, hidden states out.

Importing transformers costs about 4.3 CPU-s here (its model code pulls in
``torch.distributed``, ``torch._dynamo``, sympy and ``scipy.optimize``): an
eighth of a cold one-minute ``analyze`` on 2 cores. So a folder in the classic
BERT layout (:func:`plain_bert`: absolute positions, exact GELU, safetensors
weights and a ``tokenizer.json``), the bundled MiniLM among them, is read by
:mod:`extractors.text.bert` and the ``tokenizers`` library in about 0.06 s.
Any other encoder folder goes through transformers' ``AutoModel`` and
``AutoTokenizer``. Both give the same word pieces and the same hidden states:
on 300 MELD dev sentences the largest difference was 0, and ``tests/test_text.py``
compares them on awkward sentences (accents, emoji, 300 repeated words) to 1e-6.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from sgdtam_pipe.core.devices import torch_device
from sgdtam_pipe.extractors.base import require

if TYPE_CHECKING:
    import torch

Pieces = tuple[list[int], list[int]]  # word-piece ids, and the index of the word each one comes from


@dataclass(frozen=True)
class Encoder:
    """A loaded token encoder.

    ``layers`` counts the hidden states, the input embeddings (state 0) included;
    ``positions`` is the longest input, [CLS] and [SEP] included.
    ``states`` maps ``(ids, attention)``, both ``(batch, positions)``, to every
    hidden state, each ``(batch, positions, hidden_size)``.
    """

    kind: str
    hidden_size: int
    layers: int
    positions: int
    cls_id: int
    sep_id: int
    pad_id: int
    device: Any
    pieces: Callable[[Sequence[str]], Pieces]
    states: Callable[[Any, Any], Sequence[Any]]

    def hidden_state(self, ids: "torch.Tensor", attention: "torch.Tensor", layer: int) -> "torch.Tensor":
        """Hidden state ``layer`` (negative counts from the last) of a padded batch, without gradients."""
        import torch

        with torch.inference_mode():
            return self.states(ids.to(self.device), attention.to(self.device))[layer]


def load(folder: Path, device: str = "cpu") -> Encoder:
    """The encoder in ``folder`` on ``device`` (``auto``, ``cpu`` or ``cuda``), in eval mode."""
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: not a transformers model folder (no config.json)")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if plain_bert(folder, config):
        return _plain_bert(folder, config, device)
    return _transformers(folder, device)


def plain_bert(folder: Path, config: dict[str, Any]) -> bool:
    """Whether :mod:`extractors.text.bert` can read ``folder``: a BERT encoder with absolute
    positions and exact GELU, its weights in ``model.safetensors`` and a fast ``tokenizer.json``."""
    return (config.get("model_type") == "bert" and config.get("hidden_act") == "gelu"
            and config.get("position_embedding_type", "absolute") == "absolute"
            and not config.get("is_decoder", False)
            and (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file())


def _plain_bert(folder: Path, config: dict[str, Any], device: str) -> Encoder:
    from sgdtam_pipe.extractors.text import bert

    tokenizers = require("tokenizers", "speech")
    tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    special = _special_tokens(folder)
    model = bert.BertEncoder.from_folder(folder, config).to(torch_device(device))

    def pieces(words: Sequence[str]) -> Pieces:
        encoding = tokenizer.encode(list(words), is_pretokenized=True, add_special_tokens=False)
        return list(encoding.ids), [int(owner) for owner in encoding.word_ids]

    cls_id, sep_id, pad_id = (_token_id(tokenizer, special[name], folder) for name in ("cls", "sep", "pad"))
    return Encoder("bert", config["hidden_size"], config["num_hidden_layers"] + 1, config["max_position_embeddings"],
                   cls_id, sep_id, pad_id, next(model.parameters()).device, pieces, model)


def _special_tokens(folder: Path) -> dict[str, str]:
    """The [CLS], [SEP] and [PAD] strings, from ``special_tokens_map.json`` when the folder has one."""
    tokens = {"cls": "[CLS]", "sep": "[SEP]", "pad": "[PAD]"}
    path = folder / "special_tokens_map.json"
    if path.is_file():
        named = json.loads(path.read_text(encoding="utf-8"))
        for name in tokens:
            value = named.get(f"{name}_token")
            tokens[name] = value.get("content", tokens[name]) if isinstance(value, dict) else value or tokens[name]
    return tokens


def _token_id(tokenizer: Any, token: str, folder: Path) -> int:
    found = tokenizer.token_to_id(token)
    if found is None:
        raise ValueError(f"{folder / 'tokenizer.json'}: no token {token!r} in the vocabulary")
    return int(found)


def _transformers(folder: Path, device: str) -> Encoder:
    transformers = require("transformers", "speech")
    transformers.utils.logging.disable_progress_bar()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = transformers.AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    model = model.to(torch_device(device))

    def pieces(words: Sequence[str]) -> Pieces:
        encoding = tokenizer(list(words), is_split_into_words=True, add_special_tokens=False,
                             verbose=False)  # no warning for a segment past 512 tokens: it is windowed
        return list(encoding["input_ids"]), [int(owner) for owner in encoding.word_ids()]

    def states(ids: "torch.Tensor", attention: "torch.Tensor") -> Sequence["torch.Tensor"]:
        return model(input_ids=ids, attention_mask=attention, output_hidden_states=True).hidden_states

    config = model.config
    return Encoder(config.model_type, config.hidden_size, config.num_hidden_layers + 1, config.max_position_embeddings,
                   tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id, model.device,
                   pieces, states)
