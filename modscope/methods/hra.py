"""HRA: r Householder reflections of each layer's input, one vector of the input width each (``hra_u``,
``in_features × r``), as ``peft.tuners.hra.layer.HRALayer.update_layer`` creates them; on a Conv2d the width is
``in_channels × kernel_size[0]²``, and grouped convolutions are refused."""

from __future__ import annotations

from typing import Any

from modscope.counts import AdaptedLayer
from modscope.methods.base import LayerCount, Method, kernel_dim, refused
from modscope.roles import Layer


def _layer(layer: Layer, config: Any, module: Any) -> LayerCount:
    if layer.kind == "conv2d":
        if module.groups > 1:
            raise refused(
                "HRA", layer.name, f"Conv2d layers with groups > 1 are not supported (groups={module.groups})"
            )
        return LayerCount(kernel_dim(module) * config.r, config.r)
    return LayerCount(layer.in_features * config.r, config.r)


def _traps(analysis: Any, config: Any, rows: tuple[AdaptedLayer, ...]) -> list[str]:
    if config.r % 2 and config.init_weights:
        return [
            f"r={config.r} is odd: PEFT cannot use HRA's symmetric initialisation and warns (the count is the same)"
        ]
    return []


METHOD = Method(
    peft_type="HRA",
    name="HRA",
    config_class="HRAConfig",
    knob="r",
    sizes=(2, 4, 8, 16, 32),
    kinds=frozenset({"linear", "conv2d"}),  # HRAModel._create_new_module
    layer=_layer,
    traps=_traps,
)
