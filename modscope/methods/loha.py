"""LoHa: two low-rank pairs whose Hadamard product is the update, as ``peft.tuners.loha.layer.LoHaLayer``
creates them (``create_adapter_parameters``): 2·r·(out + in) on a Linear; on a convolution the kernel joins
``in`` (``in_channels // groups × kernel``), or, with ``use_effective_conv2d`` and a kernel larger than 1, two
r×r×kernel cores join the factors. ``r`` comes from ``rank_pattern`` as ``get_pattern_key`` picks it."""

from __future__ import annotations

import math
from typing import Any

from modscope.methods.base import LayerCount, Method
from modscope.roles import Layer


def rank(config: Any, name: str) -> int:
    """``r``, or the rank ``rank_pattern`` gives the layer at ``name`` (``LycorisTuner._create_and_replace``)."""
    from peft.utils.other import get_pattern_key

    pattern = config.rank_pattern or {}
    return pattern.get(get_pattern_key(list(pattern), name), config.r)


def conv_shape(module: Any, effective: bool) -> tuple[int, int, int, bool]:
    """(out, in per group, kernel size, effective): PEFT turns use_effective_conv2d off for a kernel of 1."""
    kernel = math.prod(module.kernel_size)
    return module.out_channels, module.in_channels // module.groups, kernel, effective and kernel != 1


def _layer(layer: Layer, config: Any, module: Any) -> LayerCount:
    r = rank(config, layer.name)
    if layer.kind == "linear":
        return LayerCount(2 * r * (layer.in_features + layer.out_features), r)
    out, fin, kernel, effective = conv_shape(module, config.use_effective_conv2d)
    if effective:  # hada_t1/t2 (r, r, *kernel) beside w1/w2 (r, out) and (r, in)
        return LayerCount(2 * (r * r * kernel + r * out + r * fin), r, "effective conv")
    return LayerCount(2 * r * (out + fin * kernel), r)


METHOD = Method(
    peft_type="LOHA",
    name="LoHa",
    config_class="LoHaConfig",
    knob="r",
    sizes=(4, 8, 16, 32, 64),
    kinds=frozenset({"linear", "torch_conv1d", "conv2d"}),  # LoHaModel.layers_mapping
    layer=_layer,
)
