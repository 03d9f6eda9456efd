"""The role of every adaptable layer, from its name, its place and its shape together.

A role says what a layer does whatever the architecture calls it: ``q``, ``k``, ``v``, ``o``,
``qkv`` (fused), ``kv``, MLA's ``q_a``/``q_b``/``kv_a``/``kv_b``; MLP ``gate``, ``up``, ``down``,
``gate_up``; MoE 3-D ``experts`` parameters and the ``router``; ``embed``, ``lm_head``, ``head``.
The group says which sub-block it belongs to and the part which model it sits in.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from modscope.graph import ModuleGraph

ATTENTION_ROLES = ("q", "q_a", "q_b", "k", "v", "kv", "kv_a", "kv_b", "qkv", "o", "attn_other")
MLP_ROLES = ("gate", "up", "gate_up", "down")
ROLE_ORDER = (*ATTENTION_ROLES, *MLP_ROLES, "router", "embed", "lm_head", "head", "other")
GROUPS = ("attention", "cross_attention", "mlp", "shared_experts", "experts", "router", "embedding", "head", "other")
PARTS = ("language", "vision", "audio", "projector")

_PROJECTOR = {
    "multi_modal_projector",
    "mm_projector",
    "projector",
    "merger",
    "language_projection",
    "qformer",
    "connector",
    "vision_projection",
    "visual_projection",
    "aligner",
    "mm_input_projection",
}
_VISION = {
    "vision_tower",
    "vision_model",
    "visual",
    "vision_encoder",
    "image_encoder",
    "vision",
    "vit",
    "vision_embed_tokens",
    "img_encoder",
    "vpm",
    "image_tower",
    "vision_backbone",
}
_AUDIO = {"audio_tower", "audio_encoder", "audio_model", "audio", "speech_encoder"}
_HEAD = {
    "lm_head",
    "classifier",
    "score",
    "qa_outputs",
    "pooler",
    "cls",
    "head",
    "heads",
    "predictions",
    "lm_loss",
    "generator_lm_head",
    "seq_relationship",
    "discriminator_predictions",
    "pre_classifier",
    "classification_head",
    "sequence_summary",
    "proj_out",
    "generator_predictions",
    "lm_head_fn",
    "output_layer",
}
_CROSS = re.compile(r"cross|encoder_attn|encdecattention|crossattention", re.I)
_ATTN = re.compile(r"attn|attention|mixer", re.I)
_MLP = re.compile(r"mlp|ffn|feed_?forward|densereludense|intermediate|moe|expert", re.I)
_SHARED = re.compile(r"shared_?expert", re.I)


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


def part_of(path: str) -> str:
    parts = path.split(".")
    if any(p in _PROJECTOR for p in parts):
        return "projector"
    for p in parts:
        if p in _VISION:
            return "vision"
        if p in _AUDIO:
            return "audio"
    return "language"


def name_hint(leaf: str) -> str | None:
    """What the leaf name suggests; shapes and place confirm or overrule it."""
    low = leaf.lower()
    for pattern, hint in (("q_a", "q_a"), ("q_b", "q_b"), ("kv_a", "kv_a"), ("kv_b", "kv_b"), ("gate_up", "gate_up")):
        if pattern in low:
            return hint
    if "qkv" in low or low in {"c_attn", "query_key_value", "w_pack", "in_proj", "att_proj", "c_attn_proj"}:
        return "qkv"
    tokens = set(re.split(r"[_.\-]", low))
    if tokens & {"q", "query", "wq", "q_lin"} or low in {"q_lin", "to_q"}:
        return "q"
    if tokens & {"k", "key", "wk"} or low in {"k_lin", "to_k"}:
        return "k"
    if tokens & {"v", "value", "wv"} or low in {"v_lin", "to_v"}:
        return "v"
    if tokens & {"kv"}:
        return "kv"
    if tokens & {"gate", "w1", "wi_0"} or low in {"wi_0", "w1", "gate_proj", "fc_gate"}:
        return "gate"
    if low in {"wi_1", "w3", "up", "up_proj", "wi", "fc1", "fc_in", "c_fc", "dense_h_to_4h", "lin1", "w_in"}:
        return "up"
    if low in {"w2", "down", "down_proj", "fc2", "fc_out", "dense_4h_to_h", "lin2", "w_out"}:
        return "down"
    if tokens & {"o", "out", "output", "wo", "dense", "proj", "c_proj", "out_proj", "o_proj", "out_lin", "to_out"}:
        return "o"
    return None


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


def _linear_role(path: str, fin: int, fout: int, hidden: int, experts: int) -> tuple[str, str]:
    """(role, group) of a linear-like layer inside the transformer blocks."""
    parts = path.split(".")
    leaf, ancestors = parts[-1], ".".join(parts[:-1])
    hint = name_hint(leaf)
    shared = bool(_SHARED.search(ancestors))
    if (experts and fout == experts and fin == hidden and hint in {"gate", None}) or "router" in leaf.lower():
        return "router", "router"
    if fout == 1 and _SHARED.search(path):  # qwen2_moe's shared_expert_gate: a scalar gate, router-like
        return "router", "router"
    mlp_group = "shared_experts" if shared else "mlp"
    if _CROSS.search(ancestors):
        attn_group = "cross_attention"
    elif _ATTN.search(ancestors) and not _MLP.search(parts[-2] if len(parts) > 1 else ""):
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
    if not in_block and not _MLP.search(ancestors):  # e.g. ELECTRA's embeddings_project: outside the blocks
        return "other", "other"
    # MLP, named or by its place in the block: widths against the block's hidden size
    if hint == "gate_up" or (hint == "gate" and fin == hidden):
        return hint, mlp_group
    if fin == hidden and fout != hidden:
        return ("gate" if hint == "gate" else "up"), mlp_group
    if fout == hidden and fin != hidden:
        return "down", mlp_group
    if _MLP.search(ancestors) and hint in MLP_ROLES:
        return hint, mlp_group
    if _MLP.search(ancestors):
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
        head = any(p in _HEAD for p in path.split("."))
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
            else:
                hidden = _hidden_for(widths, path, dims.hidden if part == "language" else 0)
                role, group = _linear_role(path, fin, fout, hidden, dims.experts if part == "language" else 0)
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
