"""(IA)³: one learned vector per adapted layer, as ``peft.tuners.ia3.layer.IA3Layer.update_layer`` creates it.

Its length is the layer's ``out_features`` (it scales the output), or its ``in_features`` on the layers listed in
``feedforward_modules`` (it scales their input). Two traps, both PEFT's own behaviour:

- ``IA3Model._prepare_adapter_config`` fills ``feedforward_modules`` from PEFT's per-architecture mapping when it
  is not given, *even beside the user's own target_modules*: ``down_proj`` then counts ``in`` without being asked.
- ``IA3Model._check_target_module_feedforward`` tests list entries with ``endswith`` and no dot, so BERT's
  ``output.dense`` also catches ``attention.output.dense``.
"""

from __future__ import annotations

from typing import Any

from modscope.counts import AdaptedLayer
from modscope.methods.base import ALL, LayerCount, Method
from modscope.roles import Layer


def feedforward(config: Any, name: str) -> bool:
    """Whether PEFT treats the layer at ``name`` as feed-forward (its own test)."""
    from peft.tuners.ia3.model import IA3Model

    return bool(IA3Model._check_target_module_feedforward(config, name))


def _layer(layer: Layer, config: Any, module: Any) -> LayerCount:
    if feedforward(config, layer.name):
        return LayerCount(layer.in_features, basis=f"in {layer.in_features}")
    return LayerCount(layer.out_features, basis=f"out {layer.out_features}")


def _traps(analysis: Any, config: Any, rows: tuple[AdaptedLayer, ...]) -> list[str]:
    leaves: dict[str, set[str]] = {"in": set(), "out": set()}
    for row in rows:
        leaves[row.basis.split()[0]].add(row.layer.leaf)
    out = []
    if leaves["out"]:
        out.append(f"IA3 scales the output of {', '.join(sorted(leaves['out']))}: one vector of out_features each")
    if leaves["in"]:
        out.append(
            f"IA3 scales the input of the feed-forward layers {', '.join(sorted(leaves['in']))} "
            "(feedforward_modules): one vector of in_features each"
        )
    stray = sorted(
        {r.layer.name for r in rows if r.basis.startswith("in") and r.layer.group not in ("mlp", "shared_experts")}
    )
    if stray and not isinstance(config.feedforward_modules, str):
        out.append(
            f"feedforward_modules {sorted(config.feedforward_modules)} also catches {stray[0]}"
            f"{f' and {len(stray) - 1} more' if len(stray) > 1 else ''} (not an MLP layer): PEFT tests the entries "
            "with endswith, without a dot, so it counts in_features there too"
        )
    return out


METHOD = Method(
    peft_type="IA3",
    name="IA3",
    config_class="IA3Config",
    knob="",
    sizes=(),
    kinds=ALL - {"embedding", "torch_conv1d"},  # IA3Model._create_new_module: Linear, Conv1D, Conv2d, Conv3d
    layer=_layer,
    traps=_traps,
)
