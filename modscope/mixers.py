"""State-space and recurrent token mixers (Mamba, Mamba-2 and their hybrids, RecurrentGemma's RG-LRU, RWKV's
time mixing, xLSTM, gated delta nets, short-conv mixers): how to tell one, and the role of each projection."""

from __future__ import annotations

import re

from modscope.graph import ModuleGraph
from modscope.names import RECURRENT_RE, block_of, name_hint


def is_mixer(graph: ModuleGraph, module: str) -> bool:
    """A state-space or recurrent token mixer: a module with a depthwise causal Conv1d beside its projections
    (Mamba, Mamba-2, RG-LRU, gated delta nets, short-conv mixers), or a known recurrence without one."""
    if not module or module not in graph.graph:
        return False
    if RECURRENT_RE.search(graph.attrs(module)["cls"]):
        return True
    for child in graph.children(module):
        data = graph.attrs(child)  # depthwise: one group per channel, as many out as in
        if (
            data["kind"] == "torch_conv1d"
            and data["groups"] > 1
            and data["groups"] == data["in_features"] == data["out_features"]
        ):
            return True
    return False


def in_mixer(graph: ModuleGraph, path: str) -> bool:
    """The layer's parent is a mixer, or its grandparent (a mixer's own gate module, as in Kimi's delta net)."""
    parent = path.rpartition(".")[0]
    return is_mixer(graph, parent) or (bool(block_of(parent)) and is_mixer(graph, parent.rpartition(".")[0]))


def mixer_role(leaf: str) -> str:
    low = leaf.lower()
    if low == "x_proj":
        return "x"
    if low == "dt_proj":
        return "dt"
    if (
        low.startswith("in_proj_b")
        or "gate" in low
        or low == "linear_y"
        or low == "receptance"
        or re.match(r"[abfg]_", low)
    ):
        return "gate"  # Qwen3-Next's in_proj_ba (beta, alpha), RG-LRU's gate branch, RWKV's receptance, xLSTM's
        # gate pre-activations, the delta nets' a/b/g/f projections
    if low.startswith(("in_proj", "qkv")) or low == "linear_x":
        return "in"
    if low in {"out_proj", "linear_out", "output", "o_proj"}:
        return "out"
    hint = name_hint(leaf)
    return hint if hint in {"q", "k", "v"} else "other"
