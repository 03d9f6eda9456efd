"""LoKr: the update as a Kronecker product w1 ⊗ w2, as ``peft.tuners.lokr.layer.LoKrLayer.update_layer`` builds
it. ``out = a·b`` and ``in = c·d`` are split by PEFT's own ``factorization`` (near the square root, or at
``decompose_factor``); w1 (a×c) and w2 (b×d) are kept whole where r is large against them and split into r-rank
pairs where it is small (w1 only with ``decompose_both``). So the count is not linear in r: it jumps where a
factor switches from split to whole."""

from __future__ import annotations

from typing import Any

from modscope.methods.base import LayerCount, Method
from modscope.methods.loha import conv_shape, rank
from modscope.roles import Layer


def _pair(r: int, rows: int, cols: int, whole: bool) -> int:
    return rows * cols if whole else r * (rows + cols)


def _layer(layer: Layer, config: Any, module: Any) -> LayerCount:
    from peft.tuners.lokr.layer import factorization

    r = rank(config, layer.name)
    if layer.kind == "linear":
        out, fin, kernel, effective = layer.out_features, layer.in_features, 1, False
    else:
        out, fin, kernel, effective = conv_shape(module, config.use_effective_conv2d)
    (a, b), (c, d) = factorization(out, config.decompose_factor), factorization(fin, config.decompose_factor)
    whole1 = not (config.decompose_both and r < max(a, c) / 2)
    whole2 = r >= max(b, d) / 2
    w1 = _pair(r, a, c, whole1)
    if whole2:
        w2 = b * d * kernel
    elif effective:  # lokr_t2 (r, r, *kernel) with w2_a (r, b) and w2_b (r, d)
        w2 = r * r * kernel + r * b + r * d
    else:
        w2 = r * b + r * d * kernel
    split = [name for name, whole in (("w1", whole1), ("w2", whole2)) if not whole]
    basis = f"({a}×{c}) ⊗ ({b}×{d}){', ' + ' and '.join(split) + ' rank r' if split else ', both whole'}"
    return LayerCount(w1 + w2, r, basis)


METHOD = Method(
    peft_type="LOKR",
    name="LoKr",
    config_class="LoKrConfig",
    knob="r",
    sizes=(4, 8, 16, 32, 64),
    kinds=frozenset({"linear", "torch_conv1d", "conv2d"}),  # LoKrModel.layers_mapping
    layer=_layer,
)
