"""A picture of the model: one repeated block of each stack of layers (each tower of a multimodal model), and
what sits outside the blocks. Layers are boxes coloured by group; those a preset adapts are solid, framed, and
carry their trainable count. matplotlib lays out and writes the figure; it is an optional extra
(``pip install 'modscope[draw]'``), imported only when a picture is drawn."""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from modscope.errors import MissingExtraError, OptionError
from modscope.presets import TargetPlan
from modscope.roles import Layer

COLOURS = {
    "attention": "#4c72b0",
    "cross_attention": "#8172b3",
    "mixer": "#937860",
    "mlp": "#55a868",
    "shared_experts": "#2a9d8f",
    "experts": "#dd8452",
    "router": "#c44e52",
    "conv": "#9c9c1c",
    "embedding": "#ccb974",
    "head": "#da8bc3",
    "other": "#8c8c8c",
}
_SPARE = ("#17becf", "#9467bd", "#e377c2", "#bcbd22", "#7f7f7f", "#1f77b4")  # for groups added after this file
MAX_KINDS = 4  # different blocks drawn per stack (DeepSeek-V3: dense and MoE; Jamba: attention or Mamba, each either)
MAX_SECTIONS = 8  # blocks drawn in all
MAX_BOXES = 30  # per section; the rest are counted in its title
MAX_ROWS = 6  # per section, where sub-modules two levels down (or one) allow
_BOX_W, _BOX_H, _GAP, _LABEL_W, _MARGIN, _LINE = 1.95, 0.62, 0.12, 1.45, 0.2, 0.3
INSTALL = "pip install 'modscope[draw]'"


def colour(group: str) -> str:
    """One colour per group; a stable spare one for a group this module does not know."""
    return COLOURS.get(group) or _SPARE[zlib.crc32(group.encode()) % len(_SPARE)]


@dataclass(frozen=True)
class Box:
    row: str  # the sub-module inside the block: 'self_attn', 'mlp.experts.*'
    name: str  # 'q_proj', 'experts.gate_up_proj', 'gate.weight'
    layer: Layer  # the first layer the box stands for
    copies: int  # identical numbered siblings it stands for (a ModuleList of experts)
    trainable: int | None  # LoRA parameters of each copy at r; None where the preset leaves it alone


@dataclass(frozen=True)
class Section:
    title: str
    boxes: tuple[Box, ...]
    root: str = "(block)"  # the row of layers that sit directly in the block


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingExtraError(f"the block diagram needs matplotlib, which is not installed: {INSTALL}") from None


def sections(layers: tuple[Layer, ...], trainable: Callable[[Layer], int | None], graph: Any = None) -> list[Section]:
    """One section per kind of block in each stack (the most frequent ``MAX_KINDS``), then the layers outside
    the blocks. A stack is a ModuleList of blocks (any numbered path segment when there is no ``graph``)."""

    def is_list(path: str) -> bool:
        return graph is None or bool(graph.graph.nodes.get(path, {}).get("module_list"))

    def repeated(path: str, index: int) -> bool:  # one of a run of identical siblings (a ModuleList of experts)
        return graph is None or any(r.start <= index <= r.end and r.end > r.start for r in graph.runs.get(path, ()))

    stacks: dict[str, dict[int, list[Layer]]] = {}
    outside: list[Layer] = []
    for layer in layers:
        parts = layer.module.split(".")
        at = next((i for i in range(1, len(parts) - 1) if parts[i].isdigit() and is_list(".".join(parts[:i]))), 0)
        if at:
            stacks.setdefault(".".join(parts[:at]), {}).setdefault(int(parts[at]), []).append(layer)
        else:
            outside.append(layer)
    found: list[tuple[str, Section]] = []
    for stack, blocks in stacks.items():
        kinds: dict[tuple, list[int]] = {}
        drawn: dict[tuple, tuple[Box, ...]] = {}
        for index, members in blocks.items():
            boxes = _boxes(members, f"{stack}.{index}.", trainable, repeated)
            key = tuple((b.row, b.name, b.copies, b.trainable, *_shape(b.layer)) for b in boxes)
            kinds.setdefault(key, []).append(index)
            drawn.setdefault(key, boxes)
        chosen = sorted(kinds, key=lambda k: -len(kinds[k]))[:MAX_KINDS]
        left = sorted(i for k in kinds if k not in chosen for i in kinds[k])
        ordered = sorted(chosen, key=lambda k: kinds[k][0])
        for key in ordered:
            indices = kinds[key]
            first = f"{stack}.{indices[0]}"
            cls = f" {graph.attrs(first)['cls']}" if graph is not None else ""
            which = f"block {indices[0]}" if len(indices) == 1 else f"blocks {_spans(indices)}"
            title = f"{blocks[indices[0]][0].part} · {first}: {len(indices)} ×{cls} ({which})"
            if _lora(drawn[key]):
                title += f", LoRA +{_lora(drawn[key]):,} in each"
            if left and key == ordered[-1]:
                title += f"; {len(left)} other block(s) not drawn ({_spans(left)})"
            found.append((first, Section(title, drawn[key])))
    # a detection model has a dozen stacks: those the preset adapts and the largest are drawn
    kept = {f for f, s in sorted(found, key=lambda f: (not _lora(f[1].boxes), -len(f[1].boxes)))[:MAX_SECTIONS]}
    result = [s for f, s in found if f in kept]
    if rest := [f for f, _ in found if f not in kept]:
        result.append(
            Section(f"{len(rest)} more block(s) not drawn: {', '.join(rest[:4])}{', …' * (len(rest) > 4)}", ())
        )
    if outside:
        boxes = _boxes(outside, "", trainable, repeated)
        title = "outside the repeated blocks" + (f", LoRA +{_lora(boxes):,}" if _lora(boxes) else "")
        result.append(Section(title, boxes, "(model)"))
    return result


def _lora(boxes: tuple[Box, ...]) -> int:
    return sum(b.trainable * b.copies for b in boxes if b.trainable is not None)


def _boxes(
    members: list[Layer], prefix: str, trainable: Callable[[Layer], int | None], repeated: Callable[[str, int], bool]
) -> tuple[Box, ...]:
    """Boxes of one block, numbered siblings under a ModuleList (experts) folded into one box with copies; a row
    per sub-module, or, where that makes more than ``MAX_ROWS`` (deep convolution stages), per sub-module two
    or one levels down, the rest of the path in the names."""
    for depth in (99, 2, 1):
        boxes = _boxes_to(depth, members, prefix, trainable, repeated)
        if len({b.row for b in boxes}) <= MAX_ROWS:
            break
    return boxes


def _boxes_to(
    depth: int,
    members: list[Layer],
    prefix: str,
    trainable: Callable[[Layer], int | None],
    repeated: Callable[[str, int], bool],
) -> tuple[Box, ...]:
    groups: dict[tuple, list[Layer]] = {}
    for layer in members:
        parts = layer.module[len(prefix) :].split(".")
        folded = [
            "*" if i and p.isdigit() and repeated(prefix + ".".join(parts[:i]), int(p)) else p
            for i, p in enumerate(parts)
        ]
        cut = len(folded) - (2 if len(folded) > 1 and (folded[-1] == "*" or folded[-1].isdigit()) else 1)
        cut = min(cut, depth + (folded[depth : depth + 1] == ["*"]))
        name = ".".join(folded[cut:]) + (f".{layer.parameter}" if layer.parameter else "")
        key = (".".join(folded[:cut]), name, trainable(layer), *_shape(layer))
        groups.setdefault(key, []).append(layer)
    return tuple(Box(k[0], k[1], ls[0], len(ls), k[2]) for k, ls in groups.items())


def _shape(layer: Layer) -> tuple:
    return layer.role, layer.group, layer.kind, layer.in_features, layer.out_features, layer.experts, layer.kernel


def _spans(indices: list[int]) -> str:
    runs: list[list[int]] = []
    for i in sorted(indices):
        if runs and runs[-1][1] == i - 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    text = [str(a) if a == b else f"{a}-{b}" for a, b in runs]
    return ", ".join(text[:4]) + (", …" if len(text) > 4 else "")


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def block_diagram(analysis: Any = None, plan: TargetPlan | None = None, r: int = 8) -> Any:
    """The picture as a matplotlib Figure (shown in Jupyter as SVG): ``analysis``'s blocks with ``plan``'s
    layers marked, or, without an analysis, the plan's own layers alone."""
    require_matplotlib()
    if analysis is None and plan is None:
        raise OptionError("nothing to draw: give an Analysis, a TargetPlan, or both")
    counts = {l.name: plan.layer_params(l, r) for l in plan.layers} if plan else {}

    def trainable(layer: Layer) -> int | None:  # a dense MLP reached through target_parameters is named '….weight'
        return counts.get(layer.name, counts.get(f"{layer.name}.weight"))

    if analysis is not None:
        drawn = sections(analysis.layers, trainable, analysis.graph)
        title = f"{analysis.model_id} · {analysis.architecture}"
    else:
        assert plan is not None
        drawn = sections(plan.layers, trainable)
        title = "the plan's own layers (draw it with its Analysis to see the whole block)"
    if plan:
        subtitle = (
            f"'{plan.preset}' at r={r}: {len(plan.layers):,} layers, {plan.trainable_params(r):,} trainable "
            f"({plan.trainable_percent(r):.4f}% of all); solid, framed boxes are adapted, with their LoRA parameters"
        )
    else:
        subtitle = "no preset marked"
    return _figure(drawn, title, subtitle, plan.preset if plan else None)


def _figure(drawn: list[Section], title: str, subtitle: str, preset: str | None) -> Any:
    from matplotlib.colors import to_rgba
    from matplotlib.patches import FancyBboxPatch, Patch

    rows = [(s, _rows(s.boxes[:MAX_BOXES])) for s in drawn]
    cols = max([3, *(min(5, len(boxes)) for _, rs in rows for boxes in rs.values())])
    width = 2 * _MARGIN + _LABEL_W + cols * (_BOX_W + _GAP)
    lines = sum(-(-len(boxes) // cols) for _, rs in rows for boxes in rs.values())
    height = 0.75 + len(drawn) * (_LINE + 0.15) + lines * (_BOX_H + _GAP) + 0.55
    fig = _diagram_class()(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(-height, 0)
    ax.axis("off")
    ax.text(_MARGIN, -0.25, title, fontsize=11, weight="bold", va="center")
    ax.text(_MARGIN, -0.5, subtitle, fontsize=8, va="center", color="#444444")
    y = -0.75
    for section, section_rows in rows:
        hidden = len(section.boxes) - MAX_BOXES
        y -= 0.15
        label = section.title + (f"; {hidden} more layer(s) not drawn" if hidden > 0 else "")
        ax.text(_MARGIN, y - _LINE / 2, label, fontsize=9, weight="bold", va="center")
        y -= _LINE
        for row, boxes in section_rows.items():
            ax.text(_MARGIN, y - _BOX_H / 2, _fit(row or section.root, 24), fontsize=7.5, va="center", color="#444")
            for i, box in enumerate(boxes):
                x = _MARGIN + _LABEL_W + (i % cols) * (_BOX_W + _GAP)
                top = y - (i // cols) * (_BOX_H + _GAP)
                marked = box.trainable is not None
                fill = colour(box.layer.group)
                ax.add_patch(
                    FancyBboxPatch(
                        (x, top - _BOX_H),
                        _BOX_W,
                        _BOX_H,
                        boxstyle="round,pad=0,rounding_size=0.06",
                        facecolor=fill if marked else to_rgba(fill, 0.2),
                        edgecolor="#111111" if marked else to_rgba(fill, 0.8),
                        linewidth=2.2 if marked else 0.8,
                        gid=f"{'adapted' if marked else 'layer'}:{box.layer.name}",
                    )
                )
                ink = "white" if marked else "#222222"
                copies = f" × {box.copies}" if box.copies > 1 else ""
                text = [(_fit(box.name, 26 - len(copies)) + copies, "bold"), (_label(box.layer), "normal")]
                if box.trainable is not None:
                    text.append((f"LoRA +{box.trainable * box.copies:,}", "bold"))
                for j, (line, weight) in enumerate(text):
                    ax.text(x + 0.08, top - 0.14 - 0.17 * j, line, fontsize=7.5, weight=weight, va="center", color=ink)
            y -= -(-len(boxes) // cols) * (_BOX_H + _GAP)
    groups = list(dict.fromkeys(b.layer.group for s, _ in rows for b in s.boxes[:MAX_BOXES]))
    handles = [Patch(facecolor=colour(g), label=g.replace("_", " ")) for g in groups]
    if preset:
        handles.append(Patch(facecolor="white", edgecolor="#111111", linewidth=2.2, label=f"adapted ('{preset}')"))
    if not drawn:
        ax.text(_MARGIN, y - _LINE / 2, "no layer that LoRA can adapt", fontsize=9, va="center")
    if not handles:
        return fig
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(_MARGIN, y - 0.05),
        bbox_transform=ax.transData,
        ncol=min(len(handles), 6),
        frameon=False,
        fontsize=7.5,
    )
    return fig


def _rows(boxes: tuple[Box, ...]) -> dict[str, list[Box]]:
    rows: dict[str, list[Box]] = {}
    for box in boxes:
        rows.setdefault(box.row, []).append(box)
    return rows


def _label(layer: Layer) -> str:
    shape = f"{layer.in_features}→{layer.out_features}"
    if layer.experts:
        shape = f"{layer.experts} × {shape}"
    if layer.kernel > 1:
        shape += f", kernel {layer.kernel}"
    return f"{layer.role} · {shape}"


@cache
def _diagram_class() -> type:
    """A Figure that Jupyter shows as SVG without pyplot (whose global figures a library should not touch)."""
    from matplotlib.figure import Figure

    class BlockDiagram(Figure):
        def _repr_svg_(self) -> str:
            return svg_text(self)

    return BlockDiagram


def svg_text(figure: Any) -> str:
    import matplotlib

    out = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "modscope"}):  # text as text; same ids
        figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def write_svg(figure: Any, path: str | Path) -> None:
    try:
        Path(path).write_text(svg_text(figure), encoding="utf-8")
    except OSError as exc:
        raise OptionError(f"cannot write the picture to {path}: {exc.strerror or exc}") from None
