"""PEFT's LoRA counting formulas, from layer shapes alone (no injection)."""

from __future__ import annotations

from modscope.roles import Layer


def lora_params(layer: Layer, r: int) -> int:
    """Trainable parameters LoRA adds to ``layer`` at rank ``r``, as PEFT creates them."""
    if layer.kind in ("linear", "conv1d", "embedding"):
        return r * (layer.in_features + layer.out_features)
    if layer.kind == "conv2d":  # lora_A: Conv2d(Cin, r, k); lora_B: 1x1 Conv2d(r, Cout)
        return r * layer.in_features * layer.kernel + layer.out_features * r
    if layer.kind == "param":  # ParamWrapper: one A/B pair per expert (E=1 for a 2-D weight)
        return max(layer.experts, 1) * r * (layer.in_features + layer.out_features)
    raise ValueError(f"PEFT cannot adapt a {layer.kind} layer ({layer.name})")


def percent(trainable: int, total: int) -> float:
    return 100.0 * trainable / total if total else 0.0
