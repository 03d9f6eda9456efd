"""``named_modules`` -> a networkx DiGraph of containment, with repeated blocks found."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

CONV_KINDS = ("torch_conv1d", "conv2d", "conv3d")


@dataclass(frozen=True)
class Run:
    """Consecutive children of a ModuleList with identical structure: ``(0-23): 24 x Qwen2DecoderLayer``."""

    parent: str
    start: int
    end: int
    cls: str

    @property
    def label(self) -> str:
        span = str(self.start) if self.start == self.end else f"{self.start}-{self.end}"
        count = self.end - self.start + 1
        return f"({span}): {count} × {self.cls}"

    @property
    def representative(self) -> str:
        return f"{self.parent}.{self.start}" if self.parent else str(self.start)


@dataclass(frozen=True)
class ModuleGraph:
    graph: Any  # networkx.DiGraph; node attrs: cls, kind, in_features, out_features, params, shape
    runs: dict[str, tuple[Run, ...]]  # ModuleList path -> its runs of identical children
    total_params: int  # tied weights counted once, as PEFT and named_parameters() do
    # the module get_output_embeddings() returns: what PEFT's all-linear leaves out (not every vocabulary
    # projection: BLIP's text decoder has one the model does not report)
    output_embeddings: str | None = None

    def children(self, node: str) -> list[str]:
        return list(self.graph.successors(node))

    def attrs(self, node: str) -> dict[str, Any]:
        return self.graph.nodes[node]


def layer_kind(module: Any) -> str:
    """What PEFT can wrap this module as: linear, conv1d (transformers' GPT-2 Conv1D), embedding, torch_conv1d,
    conv2d, conv3d (torch's convolutions), or module."""
    import torch.nn as nn
    from transformers.pytorch_utils import Conv1D

    if isinstance(module, Conv1D):
        return "conv1d"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, nn.Embedding):
        return "embedding"
    if isinstance(module, nn.Conv2d):
        return "conv2d"
    if isinstance(module, nn.Conv1d):
        return "torch_conv1d"
    if isinstance(module, nn.Conv3d):
        return "conv3d"
    return "module"


def _features(module: Any, kind: str) -> tuple[int, int]:
    if kind == "linear":
        return module.in_features, module.out_features
    if kind == "conv1d":  # transformers' Conv1D stores the weight as (in, out)
        return tuple(module.weight.shape)
    if kind == "embedding":
        return module.num_embeddings, module.embedding_dim
    if kind in CONV_KINDS:
        return module.in_channels, module.out_channels
    return 0, 0


def build_graph(model: Any) -> ModuleGraph:
    import networkx as nx
    import torch.nn as nn

    graph = nx.DiGraph()
    seen: set[int] = set()
    total = 0
    for name, module in model.named_modules(remove_duplicate=False):
        if name and name in graph:
            continue
        kind = layer_kind(module)
        own = 0
        shapes = {}
        for pname, param in module.named_parameters(recurse=False):
            shapes[pname] = tuple(param.shape)
            if id(param) not in seen:
                seen.add(id(param))
                own += param.numel()
        total += own
        fin, fout = _features(module, kind)
        graph.add_node(
            name,
            cls=type(module).__name__,
            kind=kind,
            in_features=fin,
            out_features=fout,
            params=own,
            shapes=shapes,
            groups=module.groups if kind in CONV_KINDS else 1,
            kernel=math.prod(module.kernel_size) if kind in CONV_KINDS else 1,  # weight-normed convs hide weight
            module_list=isinstance(module, nn.ModuleList),
        )
        if name:
            parent = name.rpartition(".")[0]
            graph.add_edge(parent, name)
    runs = {node: _runs(graph, node) for node, data in graph.nodes(data=True) if data["module_list"]}
    return ModuleGraph(graph, runs, total, output_embeddings_name(model))


def output_embeddings_name(model: Any) -> str | None:
    """The path of the module ``get_output_embeddings()`` returns, or None."""
    try:
        out = model.get_output_embeddings()
    except Exception:  # some models don't implement it
        return None
    if out is None:
        return None
    return next((name for name, module in model.named_modules() if module is out), None)


def _signature(graph: Any, node: str) -> tuple:
    """Structure of a subtree: relative names, classes and parameter shapes."""
    import networkx as nx

    cut = len(node) + 1
    rows = []
    for sub in [*sorted(nx.descendants(graph, node)), node]:
        data = graph.nodes[sub]
        rows.append((sub[cut:], data["cls"], tuple(sorted(data["shapes"].items()))))
    return tuple(rows)


def _runs(graph: Any, node: str) -> tuple[Run, ...]:
    runs: list[Run] = []
    last_sig = None
    for child in graph.successors(node):
        index = int(child.rpartition(".")[2]) if child.rpartition(".")[2].isdigit() else None
        if index is None:
            return ()
        sig = _signature(graph, child)
        if runs and sig == last_sig and runs[-1].end == index - 1:
            runs[-1] = Run(node, runs[-1].start, index, runs[-1].cls)
        else:
            runs.append(Run(node, index, index, graph.nodes[child]["cls"]))
        last_sig = sig
    return tuple(runs)
