"""FourierFT: ``n_frequency`` trainable spectral coefficients per layer (``fourierft_spectrum``), at frequencies
drawn once from ``random_loc_seed``, as ``peft.tuners.fourierft.layer.FourierFTLayer.update_layer`` creates them.
``n_frequency_pattern`` gives other layers other sizes; ``FourierFTModel._create_and_replace`` picks the first key
that ends the layer's path (``re.match(rf".*\\.{key}$", path)``), not PEFT's usual ``get_pattern_key``."""

from __future__ import annotations

import re
from typing import Any

from modscope.methods.base import LayerCount, Method, refused
from modscope.roles import Layer


def n_frequency(config: Any, name: str) -> int:
    keys = list(config.n_frequency_pattern or {})
    key = next((k for k in keys if re.match(rf".*\.{k}$", name)), name)
    return (config.n_frequency_pattern or {}).get(key, config.n_frequency)


def _layer(layer: Layer, config: Any, module: Any) -> LayerCount:
    n = n_frequency(config, layer.name)
    weights = layer.in_features * layer.out_features
    if n > weights:
        raise refused("FourierFT", f"n_frequency={n} on {layer.name}", f"it has only {weights:,} weights")
    return LayerCount(n, n)


METHOD = Method(
    peft_type="FOURIERFT",
    name="FourierFT",
    config_class="FourierFTConfig",
    knob="n_frequency",
    sizes=(500, 1000, 2000, 5000),
    kinds=frozenset({"linear", "conv1d"}),  # FourierFTModel._create_new_module
    layer=_layer,
)
