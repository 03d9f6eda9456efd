"""Prefix tuning: a trainable key and value prefix for every layer, as ``peft.tuners.prefix_tuning.model.
PrefixEncoder`` builds it: an embedding of virtual tokens × (layers × 2 × token_dim), or, with
``prefix_projection``, tokens × token_dim followed by a two-layer MLP (token_dim → encoder_hidden_size →
layers × 2 × token_dim). On grouped-query models ``_prepare_prompt_learning_config`` sizes token_dim by the
key/value heads (head_dim × num_key_value_heads), not the hidden size."""

from __future__ import annotations

from typing import Any

from modscope.counts import Trained
from modscope.methods.base import Method, prepared


def _prompt(analysis: Any, config: Any, warnings: list[str]) -> tuple[Trained, ...]:
    text = analysis.model().config
    text = text.get_text_config() if hasattr(text, "get_text_config") else text
    c = prepared(analysis, config)
    tokens, d, layers = c.num_virtual_tokens, c.token_dim, c.num_layers
    hidden = getattr(text, "hidden_size", None)
    if hidden and d != hidden and getattr(text, "num_key_value_heads", None):
        warnings.append(
            f"grouped-query attention: PEFT sizes each prefix by the key/value heads, token_dim = "
            f"{c.num_attention_heads} kv heads × {d // c.num_attention_heads} = {d}, not the hidden size {hidden}"
        )
    width = layers * 2 * d
    if c.prefix_projection and not c.inference_mode:
        h = c.encoder_hidden_size
        return (
            Trained("prefix embedding", tokens * d, f"{tokens} tokens × {d}"),
            Trained("prefix MLP", d * h + h + h * width + width, f"{d} → {h} → {layers} layers × 2 × {d}"),
        )
    return (Trained("prefix embedding", tokens * width, f"{tokens} tokens × {layers} layers × 2 (k, v) × {d}"),)


METHOD = Method(
    peft_type="PREFIX_TUNING",
    name="prefix tuning",
    config_class="PrefixTuningConfig",
    knob="num_virtual_tokens",
    sizes=(10, 20, 50, 100),
    prompt=_prompt,
)
