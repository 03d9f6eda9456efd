"""MiSS (formerly Bone): one shared block per layer, as ``peft.tuners.miss.layer.MissLayer.update_layer`` creates
it: ``r × out_features`` by default, ``out_features/r`` blocks of r×r with ``init_weights="bat"``, or ``r × mini_r``
with ``init_weights="mini"``. r must not exceed in_features."""

from __future__ import annotations

from typing import Any

from modscope.methods.base import LayerCount, Method, refused
from modscope.roles import Layer


def _layer(layer: Layer, config: Any, module: Any) -> LayerCount:
    r, fin, out = config.r, layer.in_features, layer.out_features
    if r > fin:
        raise refused("MiSS", f"r={r} on {layer.name}", f"r must not exceed its in_features ({fin})")
    if config.init_weights == "bat":
        if fin % r or out % r:
            raise refused("MiSS", f"init_weights='bat' on {layer.name}", f"{out}×{fin} is not divisible into {r}×{r}")
        return LayerCount((out // r) * r * r, r, f"{out // r} blocks of {r}×{r}")
    if config.init_weights == "mini":
        if out % config.mini_r:
            raise refused("MiSS", f"mini_r={config.mini_r} on {layer.name}", f"it does not divide out_features {out}")
        return LayerCount(r * config.mini_r, r, f"{r}×{config.mini_r}")
    return LayerCount(r * out, r)


METHOD = Method(
    peft_type="MISS",
    name="MiSS",
    config_class="MissConfig",
    knob="r",
    sizes=(16, 32, 64, 128),
    kinds=frozenset({"linear"}),  # miss.model._get_tuner_layer_class
    layer=_layer,
)
