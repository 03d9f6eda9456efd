"""BOFT: butterfly products of block-diagonal orthogonal matrices, as ``peft.tuners.boft.layer.BOFTLayer`` builds
them: ``boft_R`` holds m butterfly factors × ``boft_block_num`` blocks of ``boft_block_size``² values, and
``boft_s`` one scale per output (out_features). The input width is ``in_features`` on a Linear and
``in_channels × kernel_size[0]²`` on a Conv2d; unlike OFT, BOFT refuses a block size that does not divide it.

The number of factors depends on the machine: ``update_layer`` compiles PEFT's ``fbd_cuda`` extension and, where
that fails (no CUDA toolkit, no ninja), falls back to ``boft_n_butterfly_factor=1`` with a warning. modscope
asks PEFT's own ``get_fbd_cuda`` the same way, so the count is this machine's, and says what the other gives."""

from __future__ import annotations

import contextlib
import sys
import warnings
from typing import Any

from modscope.counts import AdaptedLayer
from modscope.errors import OptionError
from modscope.methods.base import LayerCount, Method
from modscope.methods.oft import width
from modscope.roles import Layer


def factors(config: Any) -> int:
    """The butterfly factors PEFT uses here: the configured number where its fbd_cuda extension builds, else 1."""
    wanted = config.boft_n_butterfly_factor
    if wanted <= 1:
        return max(wanted, 1)
    from peft.tuners.boft.layer import get_fbd_cuda

    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):  # the build log is not our output
        warnings.simplefilter("ignore")
        return wanted if get_fbd_cuda() is not None else 1


def params(n: int, out: int, config: Any, m: int) -> tuple[int, int, int]:
    """(parameters, blocks, block size) on an input width ``n`` with ``m`` butterfly factors; ``OptionError``
    where ``BOFTLayer.update_layer`` raises."""
    size, num, extra = config.boft_block_size, config.boft_block_num, m - 1
    if size == 0:
        bad = n % num or (extra and (extra > num.bit_length() - 1 or num % 2**extra))
        size = n // num
    else:
        bad = n % size or (extra and n % (size * 2**extra))
        num = n // size
    if bad or (extra and (num % 2 or size % 2)):
        raise OptionError(
            f"PEFT's BOFT refuses boft_block_size={config.boft_block_size}, boft_block_num={config.boft_block_num} "
            f"with {m} butterfly factor(s) on an input width of {n}: the blocks must divide it"
            + (" (and come in even numbers and sizes)" if extra else "")
            + "; choose a block size that divides every adapted layer's width"
        )
    return m * num * size * size + out, num, size


def _layer(layer: Layer, config: Any, module: Any) -> LayerCount:
    m = factors(config)
    count, num, size = params(width(layer, module, "BOFT"), layer.out_features, config, m)
    return LayerCount(count, size, f"{m} × {num} blocks of {size}², + out scale")


def _traps(analysis: Any, config: Any, rows: tuple[AdaptedLayer, ...]) -> list[str]:
    wanted = config.boft_n_butterfly_factor
    if wanted <= 1:
        return []
    here = factors(config)
    other = 1 if here == wanted else wanted
    try:
        model = analysis.model()
        alt = sum(
            params(width(r.layer, model.get_submodule(r.layer.module), "BOFT"), r.layer.out_features, config, other)[0]
            for r in rows
        )
    except OptionError as exc:
        alt_text = f"PEFT would refuse it ({exc})"
    else:
        alt_text = f"the adapters would train {alt:,}"
    where = "builds here" if here == wanted else "cannot be built here (PEFT warns and falls back to 1)"
    return [
        f"boft_n_butterfly_factor={wanted} depends on the machine: PEFT's fbd_cuda extension {where}, so this "
        f"count uses {here}; with {other} factor(s) {alt_text}"
    ]


METHOD = Method(
    peft_type="BOFT",
    name="BOFT",
    config_class="BOFTConfig",
    knob="boft_block_size",
    sizes=(2, 4, 8, 16, 32),
    kinds=frozenset({"linear", "conv2d"}),  # boft.model._get_tuner_layer_class
    layer=_layer,
    traps=_traps,
)
