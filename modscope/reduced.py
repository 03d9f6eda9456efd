"""A model type's default config, made small enough to build in milliseconds: fewer layers (one of each kind
of a hybrid's layers kept), fewer experts; structure, not size, is what `scan` and the tests check."""

from __future__ import annotations

import contextlib
from typing import Any

# depth attributes, reduced to keep the scan fast: structure, not size, is what is checked
_DEPTH = (
    "num_hidden_layers",
    "num_layers",
    "n_layer",
    "n_layers",
    "encoder_layers",
    "decoder_layers",
    "depth",
    "num_encoder_layers",
    "num_decoder_layers",
    "num_text_layers",
    "num_vision_layers",
)
_EXPERTS = ("num_experts", "n_routed_experts", "num_local_experts", "moe_num_experts")
_TOP_K = ("num_experts_per_tok", "top_k", "moe_topk", "num_selected_experts")
# MoE types whose first layers are dense (and *_layer_offset/_period): keep one layer of each kind
_FIRST_DENSE = ("first_k_dense_replace", "first_dense_layers", "num_dense_layers")
MAX_EXPERTS = 8
MAX_LAYER_KINDS = 4  # hybrid models keep one layer of each kind, up to this depth


def reduced_config(model_type: str, layers: int = 2) -> Any:
    """The default config of ``model_type`` with its depth (and MoE expert count) reduced, sub-configs too."""
    from transformers import AutoConfig

    config = AutoConfig.for_model(model_type)
    _reduce(config, layers, set())
    return config


def _int(config: Any, name: str) -> int | None:
    try:  # some configs refuse a global read or write of a per-layer attribute
        value = getattr(config, name, None)
    except Exception:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _set(config: Any, name: str, value: Any) -> None:
    with contextlib.suppress(Exception):  # e.g. funnel's num_hidden_layers is derived from block_sizes
        setattr(config, name, value)


def _reduce(config: Any, layers: int, seen: set[int]) -> None:
    from transformers import PretrainedConfig

    if id(config) in seen:
        return
    seen.add(id(config))
    for name in _DEPTH:
        value = _int(config, name)
        depth = max(layers, min(_layer_kinds(config, value or 0), MAX_LAYER_KINDS))
        if value is not None and value > depth:
            _set(config, name, depth)
            _shorten_per_layer_lists(config, value, depth)
    for name in _FIRST_DENSE + tuple(n for n in vars(config) if n.endswith(("_layer_offset", "_layer_period"))):
        value = _int(config, name)
        limit = layers if name.endswith("_period") else max(layers - 1, 0)
        if value is not None and value > limit:  # Jamba's attention every 8th layer from the 4th: keep one
            _set(config, name, limit)
    for name in _EXPERTS:
        value = _int(config, name)
        if value is not None and value > MAX_EXPERTS:
            _set(config, name, MAX_EXPERTS)
            for k in _TOP_K:
                top = _int(config, k)
                if top is not None and top > MAX_EXPERTS // 2:
                    _set(config, k, MAX_EXPERTS // 2)
            for k in ("n_group", "topk_group"):  # DeepSeek's grouped routing must divide the experts
                if _int(config, k) is not None:
                    _set(config, k, 1)
    for value in list(vars(config).values()):
        if isinstance(value, PretrainedConfig):
            _reduce(value, layers, seen)


def _layer_kinds(config: Any, depth: int) -> int:
    """The most kinds of layer a per-layer list of this depth names (e.g. mamba, attention, moe, mlp)."""
    lists = [v for v in vars(config).values() if isinstance(v, list) and len(v) == depth]
    return max((len({repr(x) for x in v}) for v in lists), default=0)


def _shorten_per_layer_lists(config: Any, old: int, new: int) -> None:
    """Per-layer lists (layer_types, mlp_layer_types, ...) follow the new depth, keeping one layer of each
    kind where they fit (dense then sparse, sliding then full), so that every kind of block is scanned."""
    for name, value in list(vars(config).items()):
        if not isinstance(value, list) or len(value) != old:
            continue
        firsts = list({repr(v): i for i, v in reversed(list(enumerate(value)))}.values())[::-1][:new]
        rest = [i for i in range(old) if i not in firsts][: new - len(firsts)]
        _set(config, name, [value[i] for i in sorted(firsts + rest)])
