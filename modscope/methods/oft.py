"""OFT: a block-diagonal orthogonal rotation of each layer's input, as ``peft.tuners.oft.layer.OFTLayer``
builds it: ``r`` blocks of ``oft_block_size`` (b) with r·b = the input width, each block stored as its
b·(b−1)/2 free values (one block for all with ``block_share``). The input width is ``in_features`` on a Linear,
``embedding_dim`` on an Embedding and ``in_channels × kernel_size[0]²`` on a Conv2d.

Where the width is not a multiple of the block size, ``update_layer`` silently picks the nearest divisor
(``adjust_oft_parameters``) and only warns: the block size and the count then differ from layer to layer."""

from __future__ import annotations

from typing import Any

from modscope.counts import AdaptedLayer
from modscope.methods.base import LayerCount, Method, kernel_dim, refused
from modscope.roles import Layer


def width(layer: Layer, module: Any, method: str) -> int:
    """The input width OFT and BOFT rotate."""
    if layer.kind == "embedding":
        return layer.out_features
    if layer.kind == "conv2d":
        if module.dilation[0] > 1:
            raise refused(method, layer.name, "Conv2d layers with dilation > 1 are not supported")
        return kernel_dim(module)
    return layer.in_features


def blocks(n: int, config: Any) -> tuple[int, int]:
    """(r, block size) on a width of ``n``, adjusted as ``OFTLayer.update_layer`` adjusts them."""
    from peft.tuners.oft.layer import OFTLayer

    adjust: Any = OFTLayer.adjust_oft_parameters  # uses nothing of self
    if config.r == 0:
        b = config.oft_block_size
        if n % b or b > n:
            b = adjust(None, n, b)
        return n // b, b
    r = config.r
    if n % r or r > n:
        r = adjust(None, n, r)
    return r, n // r


def _layer(layer: Layer, config: Any, module: Any) -> LayerCount:
    n = width(layer, module, "OFT")
    r, b = blocks(n, config)
    stored = 1 if config.block_share else r
    return LayerCount(stored * (b * (b - 1) // 2), b, f"{r} blocks of {b}{' (shared)' if config.block_share else ''}")


def _traps(analysis: Any, config: Any, rows: tuple[AdaptedLayer, ...]) -> list[str]:
    asked, what = (config.oft_block_size, "oft_block_size") if config.r == 0 else (config.r, "r")
    adjusted = sorted({(row.basis, row.layer.leaf) for row in rows if _asked(row, config) != asked})
    if not adjusted:
        return []
    shown = ", ".join(f"{leaf}: {basis}" for basis, leaf in adjusted[:3])
    return [
        f"{what}={asked} does not divide the input width of every layer: PEFT silently adjusts it to the nearest "
        f"divisor ({shown}{', …' if len(adjusted) > 3 else ''}), as counted here"
    ]


def _asked(row: AdaptedLayer, config: Any) -> int:
    r = int(row.basis.split()[0])
    return row.r if config.r == 0 else r


METHOD = Method(
    peft_type="OFT",
    name="OFT",
    config_class="OFTConfig",
    knob="oft_block_size",
    sizes=(8, 16, 32, 64, 128),
    kinds=frozenset({"linear", "conv2d", "embedding"}),  # oft.model._get_tuner_layer_class
    layer=_layer,
    traps=_traps,
)
