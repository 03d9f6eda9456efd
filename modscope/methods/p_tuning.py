"""P-tuning: virtual-token embeddings passed through a small trainable encoder, as
``peft.tuners.p_tuning.model.PromptEncoder`` builds it: the embedding (tokens × token_dim), then an MLP of three
Linear layers (token_dim → h → h → token_dim) or a two-way LSTM (``encoder_num_layers`` layers) with a two-layer
MLP head, where h is ``encoder_hidden_size`` (token_dim unless given)."""

from __future__ import annotations

from typing import Any

from modscope.counts import Trained
from modscope.methods.base import Method, prepared


def _linear(fin: int, fout: int) -> int:
    return fin * fout + fout


def _lstm(fin: int, h: int, layers: int) -> int:
    """torch.nn.LSTM(fin, h, layers, bidirectional=True): per direction and layer, four gates' weights and two
    biases; the layers after the first read both directions (2h)."""
    return sum(2 * (4 * h * ((fin if i == 0 else 2 * h) + h) + 8 * h) for i in range(layers))


def _prompt(analysis: Any, config: Any, warnings: list[str]) -> tuple[Trained, ...]:
    c = prepared(analysis, config)
    tokens, d, h = c.num_virtual_tokens * c.num_transformer_submodules, c.token_dim, c.encoder_hidden_size
    embedding = Trained("prompt embedding", tokens * d, f"{tokens} tokens × {d}")
    if c.inference_mode:
        return (embedding,)
    if c.encoder_reparameterization_type == "LSTM":
        n = c.encoder_num_layers
        head = _lstm(d, h, n) + _linear(2 * h, 2 * h) + _linear(2 * h, d)
        return embedding, Trained("LSTM encoder", head, f"{n}-layer two-way LSTM of {h}, MLP head")
    if c.encoder_num_layers != 2:
        warnings.append(f"encoder_num_layers={c.encoder_num_layers} is ignored by the MLP encoder: PEFT uses 3 layers")
    mlp = _linear(d, h) + _linear(h, h) + _linear(h, d)
    return embedding, Trained("MLP encoder", mlp, f"{d} → {h} → {h} → {d}")


METHOD = Method(
    peft_type="P_TUNING",
    name="p-tuning",
    config_class="PromptEncoderConfig",
    knob="num_virtual_tokens",
    sizes=(10, 20, 50, 100),
    prompt=_prompt,
)
