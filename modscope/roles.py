"""The role of every adaptable layer, from its name, its place and its shape together.

A role says what a layer does whatever the architecture calls it: ``q``, ``k``, ``v``, ``o``,
``qkv`` (fused), ``kv``, MLA's ``q_a``/``q_b``/``kv_a``/``kv_b``; MLP ``gate``, ``up``, ``down``,
``gate_up``; MoE 3-D ``experts`` parameters and the ``router``; ``embed``, ``lm_head``, ``head``.
State-space and recurrent token mixers (Mamba, Mamba-2 and their hybrids, RecurrentGemma's RG-LRU,
RWKV's time mixing, xLSTM, gated delta nets) form the ``mixer`` group: ``in`` (input projection),
``x`` and ``dt`` (Mamba's projections to the SSM parameters and its step size), ``gate``, ``q``/``k``/``v``
where the recurrence has them, and ``out``. They are never attention or MLP.
The group says which sub-block it belongs to and the part which model it sits in.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from modscope.graph import ModuleGraph
from modscope.names import ATTN_RE, CROSS_RE, HEAD_NAMES, MLP_RE, RECURRENT_RE, SHARED_RE, name_hint, part_of

ATTENTION_ROLES = ("q", "q_a", "q_b", "k", "v", "kv", "kv_a", "kv_b", "qkv", "o", "attn_other")
MLP_ROLES = ("gate", "up", "gate_up", "down")
MIXER_ROLES = ("in", "x", "dt", "out")  # with q, k, v and gate where a recurrence has them
ROLE_ORDER = (*ATTENTION_ROLES, *MLP_ROLES, *MIXER_ROLES, "router", "embed", "lm_head", "head", "other")
GROUPS = (
    "attention",
    "cross_attention",
    "mixer",
    "mlp",
    "shared_experts",
    "experts",
    "router",
    "embedding",
    "head",
    "other",
)
PARTS = ("language", "vision", "audio", "projector")


@dataclass(frozen=True)
class Layer:
    """One thing PEFT can adapt: a module, or a parameter (3-D experts, a router weight)."""

    name: str  # module path, or module path + "." + parameter for parameter targets
    module: str
    parameter: str | None
    cls: str
    kind: str  # linear | conv1d | embedding | conv2d | param
    role: str
    group: str
    part: str
    in_features: int
    out_features: int
    params: int
    experts: int = 0  # E for 3-D expert parameters
    kernel: int = 1  # kh * kw for conv2d

    @property
    def leaf(self) -> str:
        return self.name.rpartition(".")[2]


@dataclass(frozen=True)
class Dims:
    hidden: int
    experts: int

    @classmethod
    def from_config(cls, config: Any) -> Dims:
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        hidden = _first_int(text, "hidden_size", "d_model", "n_embd", "dim", "embed_dim") or 0
        experts = _first_int(text, "num_experts", "n_routed_experts", "num_local_experts", "moe_num_experts") or 0
        return cls(hidden, experts)


def _first_int(obj: Any, *names: str) -> int | None:
    for name in names:
        value = getattr(obj, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def is_mixer(graph: ModuleGraph, module: str) -> bool:
    """A state-space or recurrent token mixer: a module with a depthwise causal Conv1d beside its projections
    (Mamba, Mamba-2, RG-LRU, gated delta nets, short-conv mixers), or a known recurrence without one."""
    if not module or module not in graph.graph:
        return False
    if RECURRENT_RE.search(graph.attrs(module)["cls"]):
        return True
    for child in graph.children(module):
        data = graph.attrs(child)
        weight = data["shapes"].get("weight")
        if data["cls"] == "Conv1d" and weight is not None and len(weight) == 3 and weight[1] == 1:
            return True
    return False


def _in_mixer(graph: ModuleGraph, path: str) -> bool:
    """The layer's parent is a mixer, or its grandparent (a mixer's own gate module, as in Kimi's delta net)."""
    parent = path.rpartition(".")[0]
    return is_mixer(graph, parent) or (bool(_block_of(parent)) and is_mixer(graph, parent.rpartition(".")[0]))


def _mixer_role(leaf: str) -> str:
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
    if low.startswith("in_proj") or low == "linear_x":
        return "in"
    if low in {"out_proj", "linear_out", "output", "o_proj"}:
        return "out"
    hint = name_hint(leaf)
    return hint if hint in {"q", "k", "v"} else "other"


def _block_of(path: str) -> str:
    """The innermost repeated block (a numbered ModuleList child) holding ``path``, or ''."""
    parts = path.split(".")
    for i in range(len(parts) - 2, 0, -1):
        if parts[i].isdigit():
            return ".".join(parts[: i + 1])
    return ""


def _block_widths(graph: ModuleGraph) -> dict[str, Counter]:
    """Input widths of the linear layers of each repeated block: its hidden size is the most common."""
    widths: dict[str, Counter] = {}
    for node, data in graph.graph.nodes(data=True):
        if data["kind"] in ("linear", "conv1d"):
            widths.setdefault(_block_of(node), Counter())[data["in_features"]] += 1
    return widths


def _hidden_for(widths: dict[str, Counter], path: str, config_hidden: int) -> int:
    counts = widths.get(_block_of(path))
    if not counts or config_hidden in counts:
        return config_hidden
    return counts.most_common(1)[0][0]


def _linear_role(path: str, fin: int, fout: int, hidden: int, experts: int, parent_cls: str = "") -> tuple[str, str]:
    """(role, group) of a linear-like layer inside the transformer blocks; the parent's class is a signal
    beside the path (NemotronH keeps attention and MLP alike under ``mixer``)."""
    parts = path.split(".")
    leaf, ancestors = parts[-1], ".".join(parts[:-1]) + " " + parent_cls
    hint = name_hint(leaf)
    shared = bool(SHARED_RE.search(ancestors))
    if (experts and fout == experts and fin == hidden and hint in {"gate", None}) or "router" in leaf.lower():
        return "router", "router"
    if fout == 1 and SHARED_RE.search(path):  # qwen2_moe's shared_expert_gate: a scalar gate, router-like
        return "router", "router"
    mlp_group = "shared_experts" if shared else "mlp"
    if CROSS_RE.search(ancestors):
        attn_group = "cross_attention"
    elif ATTN_RE.search(parent_cls) or (
        ATTN_RE.search(ancestors) and not MLP_RE.search(parts[-2] if len(parts) > 1 else "")
    ):
        attn_group = "attention"
    else:
        attn_group = None
    if attn_group:
        if hint in ATTENTION_ROLES:
            return hint, attn_group
        if fin == hidden and fout == 3 * hidden:
            return "qkv", attn_group
        if fout == hidden and fin != hidden:
            return "o", attn_group
        return "attn_other", attn_group
    in_block = bool(_block_of(path))
    if not in_block and not MLP_RE.search(ancestors):  # e.g. ELECTRA's embeddings_project: outside the blocks
        return "other", "other"
    # MLP, named or by its place in the block: widths against the block's hidden size
    if hint == "gate_up" or (hint == "gate" and fin == hidden):
        return hint, mlp_group
    if fin == hidden and fout != hidden:
        return ("gate" if hint == "gate" else "up"), mlp_group
    if fout == hidden and fin != hidden:
        return "down", mlp_group
    if MLP_RE.search(ancestors) and hint in MLP_ROLES:
        return hint, mlp_group
    if MLP_RE.search(ancestors):
        return ("up" if hint == "up" else "down" if hint in {"down", "o"} else "other"), mlp_group
    if hint in {"q", "k", "v", "qkv", "o"} and in_block:
        return hint, "attention"
    return "other", "other"


def classify(graph: ModuleGraph, model: Any, config: Any) -> tuple[Layer, ...]:
    """Every adaptable layer of ``model``, with its role, group and part."""
    dims = Dims.from_config(config)
    output_embeddings = _output_embedding_name(model)
    widths = _block_widths(graph)
    layers: list[Layer] = []
    for path, data in graph.graph.nodes(data=True):
        if not path:
            continue
        kind, shapes = data["kind"], data["shapes"]
        part = part_of(path)
        head = any(p in HEAD_NAMES for p in path.split("."))
        if kind in ("linear", "conv1d", "embedding", "conv2d"):
            fin, fout = data["in_features"], data["out_features"]
            kernel = 1
            if kind == "conv2d":
                kh, kw = shapes["weight"][2:]
                kernel = kh * kw
            if path == output_embeddings:
                role, group = "lm_head", "head"
            elif kind == "embedding":
                role, group = "embed", "embedding"
            elif head:
                role, group = "head", "head"
            elif kind == "conv2d":
                role, group = "other", "other"
            elif _in_mixer(graph, path):
                role, group = _mixer_role(path.rpartition(".")[2]), "mixer"
            else:
                hidden = _hidden_for(widths, path, dims.hidden if part == "language" else 0)
                experts = dims.experts if part == "language" else 0
                parent_cls = graph.attrs(path.rpartition(".")[0])["cls"] if "." in path else ""
                role, group = _linear_role(path, fin, fout, hidden, experts, parent_cls)
            own = sum(_numel(s) for s in shapes.values())
            layers.append(Layer(path, path, None, data["cls"], kind, role, group, part, fin, fout, own, kernel=kernel))
        elif kind == "module":
            layers.extend(_parameter_layers(path, data, part, dims))
    return tuple(layers)


def _parameter_layers(path: str, data: dict, part: str, dims: Dims) -> list[Layer]:
    """3-D expert weights, and 2-D router weights held by non-Linear modules."""
    found = []
    for pname, shape in data["shapes"].items():
        name = f"{path}.{pname}"
        if len(shape) == 3 and (shape[0] == dims.experts or "expert" in data["cls"].lower()):
            experts, out_f, in_f = shape
            low = pname.lower()
            role = "gate_up" if "gate_up" in low else "down" if "down" in low else name_hint(pname) or "other"
            if role not in MLP_ROLES:
                role = "other"
            found.append(
                Layer(
                    name,
                    path,
                    pname,
                    data["cls"],
                    "param",
                    role,
                    "experts",
                    part,
                    in_f,
                    out_f,
                    _numel(shape),
                    experts=experts,
                )
            )
        elif len(shape) == 2 and pname == "weight" and re.search(r"router|gate", data["cls"] + path, re.I):
            out_f, in_f = shape
            if dims.experts and out_f != dims.experts:
                continue
            found.append(
                Layer(name, path, pname, data["cls"], "param", "router", "router", part, in_f, out_f, _numel(shape))
            )
    return found


def _numel(shape: tuple) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _output_embedding_name(model: Any) -> str | None:
    try:
        out = model.get_output_embeddings()
    except Exception:  # some models don't implement it
        return None
    if out is None:
        return None
    for name, module in model.named_modules():
        if module is out:
            return name
    return None
