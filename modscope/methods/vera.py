"""VeRA: two trainable scaling vectors per layer, ``vera_lambda_b`` (out_features) and ``vera_lambda_d`` (r), as
``peft.tuners.vera.layer.VeraLayer.update_layer`` creates them. The random projections ``vera_A`` (r × largest
in) and ``vera_B`` (largest out × r) are shared by every layer and frozen: ``VeraModel._init_vera_A_vera_B``
registers them as buffers, so PEFT counts them in neither the trainable nor the total parameters."""

from __future__ import annotations

from typing import Any

from modscope.counts import AdaptedLayer
from modscope.methods.base import LayerCount, Method
from modscope.roles import Layer


def _layer(layer: Layer, config: Any, module: Any) -> LayerCount:
    return LayerCount(layer.out_features + config.r, config.r)


def _traps(analysis: Any, config: Any, rows: tuple[AdaptedLayer, ...]) -> list[str]:
    fin = max(row.layer.in_features for row in rows)
    fout = max(row.layer.out_features for row in rows)
    shared = config.r * (fin + fout)
    saved = "saved with the adapter" if config.save_projection else "rebuilt from projection_prng_key, not saved"
    return [
        f"VeRA trains only the scaling vectors (out_features + r per layer); its shared random projections "
        f"vera_A ({config.r}×{fin}) and vera_B ({fout}×{config.r}), {shared:,} values, are frozen buffers PEFT "
        f"counts nowhere ({saved})"
    ]


METHOD = Method(
    peft_type="VERA",
    name="VeRA",
    config_class="VeraConfig",
    knob="r",
    sizes=(64, 128, 256, 512, 1024),
    kinds=frozenset({"linear", "conv1d"}),  # vera.model._get_tuner_layer_class
    layer=_layer,
    traps=_traps,
)
