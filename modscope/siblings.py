"""Roles that only a layer's siblings settle: a layer's name and shape alone do not say that a two-layer projector
is an MLP, that an MLP's first layer is a fused gate+up, that a bottleneck of two Linear layers is a low-rank
delta on a third, that two 1x1 convolutions are a channel MLP, or that a vision tower is a model's only body.
Each pass refines what ``roles.classify`` decided from the layer itself."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from modscope.graph import CONV_KINDS, ModuleGraph
from modscope.names import name_hint

Layer = Any  # roles.Layer, which imports this module

_LINEAR = ("linear", "conv1d")


def refine(graph: ModuleGraph, layers: list[Layer]) -> tuple[Layer, ...]:
    return _sole_tower(_low_rank_deltas(graph, _fused_gate_up(_projector_mlp(_confirm_cross_kv(layers)))))


def _sole_tower(layers: tuple[Layer, ...]) -> tuple[Layer, ...]:
    """A vision or audio model on its own (ViT's image classifier keeps its body under ``vit.``, SAM's vision
    model under ``vision_encoder.``): its tower is no side part of a language model but the model itself, which
    the presets adapt as they adapt a language model's blocks."""
    towers = {l.part for l in layers if l.group not in ("head", "embedding", "other")}
    if len(towers) != 1 or towers & {"language", "projector"}:
        return layers
    return tuple(replace(l, part="language") if l.part in towers else l for l in layers)


def _by_parent(layers: list[Layer], keep) -> dict[str, list[Layer]]:
    found: dict[str, list[Layer]] = {}
    for layer in layers:
        if keep(layer):
            found.setdefault(layer.module.rpartition(".")[0], []).append(layer)
    return found


def _renamed(layers: list[Layer], roles: dict[str, tuple[str, str]]) -> list[Layer]:
    """``layers`` with the (role, group) of those named in ``roles`` replaced."""
    return [replace(l, role=roles[l.name][0], group=roles[l.name][1]) if l.name in roles else l for l in layers]


def _confirm_cross_kv(layers: list[Layer]) -> list[Layer]:
    """Cross-attention keys and values both read the encoder's states: named k and v of one module must have
    the same shape, else neither is taken for what its name says."""
    odd = {}
    for found in _by_parent(layers, lambda l: l.group == "cross_attention" and l.role in ("k", "v")).values():
        pair = {l.role: l for l in found}
        if len(pair) == 2 and (pair["k"].in_features, pair["k"].out_features) != (
            pair["v"].in_features,
            pair["v"].out_features,
        ):
            odd.update({l.name: ("attn_other", "cross_attention") for l in pair.values()})
    return _renamed(layers, odd)


def _projector_mlp(layers: list[Layer]) -> list[Layer]:
    """A projector's two Linear layers in one module (LLaVA's linear_1/linear_2, Qwen2-VL's merger mlp.0/mlp.2)
    are an MLP: the first widens (up), the second projects (down)."""
    pairs = {
        found[i].name: (role, "mlp")
        for found in _by_parent(
            layers, lambda l: l.part == "projector" and l.kind == "linear" and l.group in ("other", "mlp")
        ).values()
        if len(found) == 2
        for i, role in ((0, "up"), (1, "down"))
    }
    return _renamed(layers, pairs)


def _fused_gate_up(layers: list[Layer]) -> list[Layer]:
    """An MLP of two layers whose first gives twice the width its second takes chunks that output into gate and
    up (act(gate) * up): a fused gate_up, whatever its name (Granite's shared_mlp.input_linear)."""
    fused = {}
    for found in _by_parent(layers, lambda l: l.kind in _LINEAR and l.group in ("mlp", "shared_experts")).values():
        roles = {l.role: l for l in found}
        up, down = roles.get("up"), roles.get("down")
        if len(found) == 2 and up and down and up.out_features == 2 * down.in_features:
            fused[up.name] = ("gate_up", up.group)
    return _renamed(layers, fused)


def _low_rank_deltas(graph: ModuleGraph, layers: list[Layer]) -> tuple[Layer, ...]:
    """A Sequential of two Linear layers with nothing between them, narrowing then widening (in -> r -> out,
    r smaller than both), is a low-rank delta added to the layer of the same (in, out) beside it (Zamba2's
    per-invocation adapter lists on its shared block's gate_up_proj, q, k and v): both halves take that
    layer's role and group. Where several layers have that shape, the container's name picks one."""
    by_name = {l.name: l for l in layers}
    deltas = {}
    for node, data in graph.graph.nodes(data=True):
        if data["cls"] != "Sequential":
            continue
        halves = [by_name.get(child) for child in graph.children(node)]
        if len(halves) != 2 or not all(h is not None and h.kind == "linear" for h in halves):
            continue
        a, b = halves
        assert a is not None and b is not None
        if not (a.out_features == b.in_features < min(a.in_features, b.out_features)) or a.group == "mixer":
            continue
        target = _delta_target(graph, by_name, node, a.in_features, b.out_features)
        if target is not None:
            deltas.update({h.name: (target.role, target.group) for h in (a, b)})
    return tuple(_renamed(layers, deltas))


def _delta_target(graph: ModuleGraph, by_name: dict, node: str, fin: int, fout: int) -> Layer | None:
    """The Linear layer of shape (fin, fout) beside ``node`` or beside the list holding it."""
    path = node
    for _ in range(2):
        path, _, container = path.rpartition(".")
        same = [
            by_name[c]
            for c in graph.children(path)
            if c in by_name and (by_name[c].in_features, by_name[c].out_features) == (fin, fout)
        ]
        if len(same) > 1:  # the list's name says whose: linear_q_adapter_list, gate_up_proj_adapter_list
            named = {name_hint(container), *re.split(r"[_.\-]", container.lower())}
            same = [l for l in same if l.role in named]
        if same:
            return same[0] if len(same) == 1 else None
    return None


def pointwise_mlp(graph: ModuleGraph, path: str) -> str | None:
    """``up`` or ``down`` where the convolution at ``path`` is one of two ungrouped 1x1 convolutions of one module
    that widen C -> nC and come back to C, with no other layer beside them but a grouped (depthwise) conv: the
    channel MLP of a MetaFormer built from convolutions (PoolFormer's PoolFormerOutput, SwiftFormer). A
    squeeze-excite narrows first; a VQ model's quant_conv/post_quant_conv or VITS's conv_pre/conv_post have
    an encoder or a WaveNet beside them."""
    import networkx as nx

    siblings = graph.children(path.rpartition(".")[0])
    convs = [c for c in siblings if graph.attrs(c)["kind"] in CONV_KINDS and graph.attrs(c)["groups"] == 1]
    if len(convs) != 2 or path not in convs:
        return None
    a, b = (graph.attrs(c) for c in convs)
    if a["kernel"] != 1 or b["kernel"] != 1:
        return None
    if not a["out_features"] == b["in_features"] > a["in_features"] == b["out_features"]:
        return None
    for other in siblings:
        if other not in convs and any(
            graph.attrs(n)["kind"] != "module" and (n != other or graph.attrs(n)["kind"] not in CONV_KINDS)
            for n in (other, *nx.descendants(graph.graph, other))
        ):
            return None
    return "up" if path == convs[0] else "down"
