"""PEFT's LoRA counting formulas, from layer shapes alone (no injection)."""

from __future__ import annotations

from modscope.graph import CONV_KINDS
from modscope.roles import Layer


def lora_params(layer: Layer, r: int) -> int:
    """Trainable parameters LoRA adds to ``layer`` at rank ``r``, as PEFT creates them."""
    if layer.kind in ("linear", "conv1d", "embedding"):
        return r * (layer.in_features + layer.out_features)
    if layer.kind in CONV_KINDS:  # lora_A: ConvNd(Cin, r, k); lora_B: ConvNd(r, Cout, 1, groups=groups)
        return r * layer.in_features * layer.kernel + layer.out_features * r // layer.groups
    if layer.kind == "param":  # ParamWrapper: one A/B pair per expert (E=1 for a 2-D weight)
        return max(layer.experts, 1) * r * (layer.in_features + layer.out_features)
    raise ValueError(f"PEFT cannot adapt a {layer.kind} layer ({layer.name})")


def percent(trainable: int, total: int) -> float:
    return 100.0 * trainable / total if total else 0.0
