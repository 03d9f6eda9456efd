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

from modscope.graph import CONV_KINDS, ModuleGraph
from modscope.mixers import in_mixer, mixer_role
from modscope.names import (
    ATTENTION_ROLES,
    ATTN_RE,
    CROSS_RE,
    GROUPS,
    HEAD_NAMES,
    MLP_RE,
    MLP_ROLES,
    PARTS,
    POSITION_BIAS_RE,
    ROLE_ORDER,
    SHARED_RE,
    aux_role,
    block_of,
    name_hint,
    part_of,
)
from modscope.peft_rules import builds_conv
from modscope.siblings import pointwise_mlp, refine

__all__ = ["GROUPS", "PARTS", "ROLE_ORDER", "Layer", "classify"]  # the vocabulary is read from here too


@dataclass(frozen=True)
class Layer:
    """One thing PEFT can adapt: a module, or a parameter (3-D experts, a router weight)."""

    name: str  # module path, or module path + "." + parameter for parameter targets
    module: str
    parameter: str | None
    cls: str
    kind: str  # linear | conv1d (GPT-2's Conv1D) | embedding | torch_conv1d | conv2d | conv3d | param
    role: str
    group: str
    part: str
    in_features: int
    out_features: int
    params: int
    experts: int = 0  # E for 3-D expert parameters
    kernel: int = 1  # the kernel's size (kh * kw for conv2d) for convolutions
    groups: int = 1  # a convolution's groups: LoRA needs r divisible by them

    @property
    def leaf(self) -> str:
        return self.name.rpartition(".")[2]


@dataclass(frozen=True)
class Dims:
    hidden: int
    experts: int
    vocab: int = 0
    q_lora_rank: int | None = None  # multi-head latent attention (DeepSeek-V2/V3, Kimi, …)
    kv_lora_rank: int | None = None
    rope_dim: int = 0

    @classmethod
    def from_config(cls, config: Any) -> Dims:
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        hidden = _first_int(text, "hidden_size", "d_model", "n_embd", "dim", "embed_dim") or 0
        experts = _first_int(text, "num_experts", "n_routed_experts", "num_local_experts", "moe_num_experts") or 0
        q_rank, kv_rank = _first_int(text, "q_lora_rank"), _first_int(text, "kv_lora_rank")
        vocab = _first_int(text, "vocab_size") or 0
        return cls(hidden, experts, vocab, q_rank, kv_rank, _first_int(text, "qk_rope_head_dim") or 0)

    def confirms(self, role: str, fin: int, fout: int) -> bool:
        """A latent-attention role named by the layer agrees with the config's ranks (where it gives them)."""
        widths = {
            "q_a": (None, self.q_lora_rank),
            "q_b": (self.q_lora_rank, None),
            "kv_a": (None, self.kv_lora_rank),
            "kv_b": (self.kv_lora_rank, None),
        }
        if role not in widths:
            return True
        fin_wanted, fout_wanted = widths[role]
        if fin_wanted is not None and fin != fin_wanted:
            return False
        # kv_a also carries the shared rotary key: kv_lora_rank + qk_rope_head_dim
        return fout_wanted is None or fout in (fout_wanted, fout_wanted + self.rope_dim)


def _first_int(obj: Any, *names: str) -> int | None:
    for name in names:
        try:  # some configs refuse a global read of a per-layer attribute (dots3_note's kv_lora_rank)
            value = getattr(obj, name, None)
        except Exception:
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _block_widths(graph: ModuleGraph) -> dict[str, Counter]:
    """Input widths of the linear layers of each repeated block: its hidden size is the most common."""
    widths: dict[str, Counter] = {}
    for node, data in graph.graph.nodes(data=True):
        if data["kind"] in ("linear", "conv1d"):
            widths.setdefault(block_of(node), Counter())[data["in_features"]] += 1
    return widths


def _hidden_for(widths: dict[str, Counter], path: str, config_hidden: int) -> int:
    counts = widths.get(block_of(path))
    if not counts:
        return config_hidden
    width, seen = counts.most_common(1)[0]
    # the config's width where it is as common as any (a stage of Swin can have it as its MLP width)
    return config_hidden if counts.get(config_hidden, 0) == seen else width


def _linear_role(
    path: str, fin: int, fout: int, hidden: int, dims: Dims, parent_cls: str = "", resampler: bool = False
) -> tuple[str, str]:
    """(role, group) of a linear-like layer inside the transformer blocks; the parent's class is a signal
    beside the path (NemotronH keeps attention and MLP alike under ``mixer``). In a ``resampler`` (a module
    holding learned latent queries) attention is the latents' cross-attention to the input they resample."""
    parts = path.split(".")
    leaf, ancestors = parts[-1], ".".join(parts[:-1]) + " " + parent_cls
    hint = name_hint(leaf)
    experts = dims.experts
    shared = bool(SHARED_RE.search(ancestors))
    if (experts and fout == experts and fin == hidden and hint in {"gate", None}) or "router" in leaf.lower():
        return "router", "router"
    if fout == 1 and SHARED_RE.search(path):  # qwen2_moe's shared_expert_gate: a scalar gate, router-like
        return "router", "router"
    mlp_group = "shared_experts" if shared else "mlp"
    attention = ATTN_RE.search(parent_cls) or (
        ATTN_RE.search(ancestors) and not MLP_RE.search(parts[-2] if len(parts) > 1 else "")
    )
    attn_group: str | None = None
    if CROSS_RE.search(ancestors) or (attention and resampler):
        attn_group = "cross_attention"
    elif attention:
        attn_group = "attention"
    if attn_group:
        if hint in ATTENTION_ROLES:
            return (hint if dims.confirms(hint, fin, fout) else "attn_other"), attn_group
        if fin == hidden and fout == 3 * hidden:
            return "qkv", attn_group
        if fout == hidden and fin != hidden:
            return "o", attn_group
        return "attn_other", attn_group
    in_block = bool(block_of(path))
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
    widths = _block_widths(graph)
    latents = _latent_holders(graph)
    layers: list[Layer] = []
    for path, data in graph.graph.nodes(data=True):
        if not path:
            continue
        kind, shapes = data["kind"], data["shapes"]
        part = part_of(path)
        head = any(p in HEAD_NAMES for p in path.split("."))
        if kind in ("linear", "conv1d", "embedding", *CONV_KINDS):
            fin, fout = data["in_features"], data["out_features"]
            if path == graph.output_embeddings or (head and _onto_vocabulary(kind, fout, part, dims)):
                role, group = "lm_head", "head"
            elif kind == "embedding":  # T5's relative_attention_bias is a table of position biases, not tokens
                role, group = ("pos_bias", "other") if POSITION_BIAS_RE.search(path) else ("embed", "embedding")
            elif head:
                role, group = "head", "head"
            elif (aux := aux_role(path, kind)) is not None:
                role, group = aux
            elif kind in CONV_KINDS:
                role, group = _conv_role(graph, path, data["groups"], type(model.get_submodule(path)))
            elif in_mixer(graph, path):
                role, group = mixer_role(path.rpartition(".")[2]), "mixer"
            else:
                hidden = _hidden_for(widths, path, dims.hidden if part == "language" else 0)
                own_dims = dims if part == "language" else Dims(0, 0)
                parent_cls = graph.attrs(path.rpartition(".")[0])["cls"] if "." in path else ""
                resampler = any(path.startswith(f"{holder}.") for holder in latents)
                role, group = _linear_role(path, fin, fout, hidden, own_dims, parent_cls, resampler)
            own = sum(_numel(s) for s in shapes.values())
            layers.append(
                Layer(
                    path,
                    path,
                    None,
                    data["cls"],
                    kind,
                    role,
                    group,
                    part,
                    fin,
                    fout,
                    own,
                    kernel=data["kernel"],
                    groups=data["groups"],
                )
            )
        elif kind == "module":
            layers.extend(_parameter_layers(path, data, part, dims))
    return refine(graph, layers)


def _onto_vocabulary(kind: str, fout: int, part: str, dims: Dims) -> bool:
    """A head's linear layer onto the language model's vocabulary: an output layer, even where the model does not
    report it as its output embeddings (BLIP's text decoder)."""
    return kind in ("linear", "conv1d") and part == "language" and dims.vocab > 0 and fout == dims.vocab


def _latent_holders(graph: ModuleGraph) -> list[str]:
    """Modules holding learned latent queries of their own (a 2-D parameter beside no layer weight): perceiver
    resamplers (Idefics, Idefics2, Kosmos-2), whose latents attend to the features they compress; not those that
    name their cross-attention apart from the latents' self-attention (EdgeTAM's)."""
    holders = [
        node
        for node, data in graph.graph.nodes(data=True)
        if node and data["kind"] == "module" and any("latent" in p and len(s) == 2 for p, s in data["shapes"].items())
    ]
    return [h for h in holders if not any(n.startswith(f"{h}.") and CROSS_RE.search(n[len(h) :]) for n in graph.graph)]


def _conv_role(graph: ModuleGraph, path: str, groups: int, cls: type) -> tuple[str, str]:
    """A convolution doing the model's work: ``conv``, or ``conv_dw`` where it is grouped (depthwise), which LoRA
    adapts only at ranks divisible by its groups; a mixer's own causal conv is ``conv`` in the mixer; a conv class
    PEFT cannot rebuild is ``other``."""
    if in_mixer(graph, path):
        return "conv", "mixer"
    if not builds_conv(cls):
        return "other", "other"
    if (role := pointwise_mlp(graph, path)) is not None:
        return role, "mlp"
    return ("conv" if groups == 1 else "conv_dw"), "conv"


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
