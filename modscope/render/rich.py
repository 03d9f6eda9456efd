"""Analysis results -> rich renderables. Never prints; the CLI or Jupyter does."""

from __future__ import annotations

import io
import re
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from modscope.advice import few
from modscope.formulas import percent
from modscope.presets import TargetPlan
from modscope.render.python import config_code
from modscope.roles import ROLE_ORDER, Layer

_SOURCE_WORDS = {
    "local": "local files",
    "cache": "Hugging Face cache (offline)",
    "catalog": "modscope's bundled catalog (offline)",
    "hub": "Hugging Face Hub (config.json only)",
    "object": "a PretrainedConfig object",
}


def header(analysis: Any) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Model", analysis.model_id)
    grid.add_row("Config from", f"{_SOURCE_WORDS.get(analysis.source, analysis.source)}: {analysis.location}")
    grid.add_row("Class", f"{analysis.architecture} (model_type {analysis.model_type}, task {analysis.task})")
    grid.add_row("Parameters", f"{analysis.total_params:,} (tied weights once, built on the meta device)")
    for note in analysis.notes:
        grid.add_row("Note", note)
    return grid


def _layer_label(layer: Layer) -> str:
    where = "" if layer.part == "language" else f" {layer.part}"
    group = {"cross_attention": " cross"}.get(layer.group, "")
    shape = f"{layer.in_features}→{layer.out_features}"
    if layer.experts:
        shape = f"{layer.experts} experts × {shape}"
    return f"[{layer.role}{group}{where}] {shape}"


def module_tree(analysis: Any) -> Tree:
    """The module tree with repeated blocks collapsed, one representative expanded, roles and sizes shown."""
    graph = analysis.graph
    by_module: dict[str, list[Layer]] = {}
    for layer in analysis.layers:
        by_module.setdefault(layer.module, []).append(layer)
    root = Tree(Text(analysis.architecture, style="bold"))

    def add(node: str, branch: Tree) -> None:
        runs = graph.runs.get(node)
        if runs:
            for run in runs:
                sub = branch.add(Text(f"{run.label}", style="cyan"))
                add_children(run.representative, sub)
            return
        add_children(node, branch)

    def add_children(node: str, branch: Tree) -> None:
        for child in graph.children(node):
            data = graph.attrs(child)
            leaf = child.rpartition(".")[2]
            label = Text(f"{leaf}: {data['cls']}")
            layers = by_module.get(child, [])
            if layers and layers[0].parameter is None:
                label.append(f"  {_layer_label(layers[0])}", style="green" if layers[0].group != "head" else "yellow")
            elif not graph.children(child) and not layers:
                label.stylize("dim")
            sub = branch.add(label)
            for layer in layers:
                if layer.parameter is not None:
                    sub.add(Text(f"{layer.parameter}  {_layer_label(layer)}", style="magenta"))
            add(child, sub)

    add("", root)
    return root


def _example(layers: list[Layer]) -> str:
    return re.sub(r"\.\d+\.", ".N.", layers[0].name)


def roles_table(analysis: Any) -> Table:
    table = Table(title="Adaptable layers by role", title_justify="left")
    for column in ("group", "role", "layers", "in → out", "example"):
        table.add_column(column, justify="right" if column == "layers" else "left", overflow="fold")
    groups = analysis.layers_by_role()
    for (part, group, role), layers in sorted(
        groups.items(), key=lambda kv: (kv[0][0] != "language", kv[0][0], kv[0][1], ROLE_ORDER.index(kv[0][2]))
    ):
        shapes = {(l.in_features, l.out_features, l.experts) for l in layers}
        shape = "various" if len(shapes) > 1 else _layer_label(layers[0]).split("] ")[1]
        where = group if part == "language" else f"{part} {group}"
        table.add_row(where, role, str(len(layers)), shape, _example(layers))
    return table


def python_code(code: str) -> Text:
    """Code to copy: highlighted, never wrapped or cropped by rich (print the group with ``crop=False``;
    a terminal narrower than the code soft-wraps it), and the same text without colour."""
    text = Syntax(code, "python", theme="ansi_dark", background_color="default").highlight(code.rstrip("\n"))
    text.no_wrap, text.overflow = True, "ignore"
    return text


def lora_config_code(plan: TargetPlan, r: int) -> Text:
    return python_code(config_code(plan.lora_config_kwargs(r)))


def counts_table(analysis: Any, plans: dict[str, TargetPlan], ranks: tuple[int, ...], chosen: str) -> Table:
    """Ranks down, presets across: trainable count and % of all parameters (adapters included)."""
    table = Table(title="Trainable parameters (% of all, adapters included)", title_justify="left")
    table.add_column("r", justify="right")
    for name, plan in plans.items():
        table.add_column(
            f"{name}\n{len(plan.layers)} layers",
            justify="right",
            overflow="fold",
            style="bold" if name == chosen else None,
        )
    for r in ranks:
        cells = []
        for plan in plans.values():
            trainable = plan.trainable_params(r)
            cells.append(f"{trainable:,}\n{percent(trainable, plan.total_params + trainable):.4f}%")
        table.add_row(str(r), *cells)
    return table


def plan_summary(plan: TargetPlan, r: int) -> Table:
    """Where the trainable parameters of a plan come from, per role."""
    table = Table(title=f"'{plan.preset}' at r={r}: where the trainable parameters are", title_justify="left")
    for column in ("group", "role", "layers", "trainable", "share"):
        table.add_column(column, justify="right" if column in ("layers", "trainable", "share") else "left")
    total = plan.trainable_params(r) or 1
    rows: dict[tuple[str, str], list[int]] = {}
    for layer in plan.layers:
        row = rows.setdefault((layer.group, layer.role), [0, 0])
        row[0] += 1
        row[1] += plan.layer_params(layer, r)
    for (group, role), (n, params) in rows.items():
        table.add_row(group, role, str(n), f"{params:,}", f"{100 * params / total:.1f}%")
    return table


def plan_view(plan: TargetPlan, ranks: tuple[int, ...] = (4, 8, 16, 32, 64, 128)) -> Group:
    """A preset on its own (notebooks): its LoraConfig at r=8, and its count per rank."""
    table = Table(title=f"'{plan.preset}': {len(plan.layers)} layers", title_justify="left")
    for column in ("r", "trainable", "% of all"):
        table.add_column(column, justify="right")
    for r in ranks:
        table.add_row(str(r), f"{plan.trainable_params(r):,}", f"{plan.trainable_percent(r):.4f}%")
    return Group(lora_config_code(plan, 8), table)


def verification_text(report: Any) -> Text:
    return Text(("✔ " if report.match else "✘ ") + report.summary, style="bold green" if report.match else "bold red")


def show_view(
    analysis: Any,
    plans: dict[str, TargetPlan],
    chosen: str,
    ranks: tuple[int, ...],
    r: int,
    report: Any = None,
    peft_differences: tuple[str, ...] = (),
) -> Group:
    plan = plans[chosen]
    parts: list[Any] = [header(analysis), Text(""), module_tree(analysis), roles_table(analysis), Text("")]
    parts.append(Text(f"Suggested LoraConfig ('{chosen}' preset, r={r}):", style="bold"))
    for note in plan.notes:
        parts.append(Text(f"note: {note}", style="yellow"))
    parts += [lora_config_code(plan, r), counts_table(analysis, plans, ranks, chosen)]
    if any(l.group == "experts" for l in plan.layers):
        parts.append(plan_summary(plan, r))
    if peft_differences:
        parts.append(Text("What PEFT's own defaults would do instead (injected for real):", style="bold"))
        parts += [Text(f"  • {line}", style="yellow") for line in peft_differences]
    if report is not None:
        parts.append(verification_text(report))
    return Group(*parts)


def analysis_view(analysis: Any) -> Group:
    plans = analysis.plans()
    return Group(
        header(analysis), roles_table(analysis), counts_table(analysis, plans, (4, 8, 16, 32, 64), "all-linear")
    )


# --- check -------------------------------------------------------------------------------------------------


def check_view(report: Any, verification: Any = None) -> Group:
    """`modscope check`: how a regex target is read, the table, PEFT's verdict."""
    parts: list[Any] = []
    targets = report.config.target_modules
    if isinstance(targets, str) and targets.lower() != "all-linear":
        parts.append(Text(f"target_modules is treated as a regex: {targets!r}"))
    parts.append(check_table(report))
    if verification is not None:
        parts.append(verification_text(verification))
    return Group(*parts)


def check_table(report: Any) -> Any:
    """Adapted layers by role, what else trains, the totals; warnings in the caption."""
    targets = report.target_modules
    title = f"{report.method} check on {report.model_id}: target_modules=" + (
        f"r'{targets}' (regex)" if isinstance(targets, str) else repr(list(targets or []))
    )
    if report.target_parameters:
        title += f", target_parameters={list(report.target_parameters)}"
    lines = [f"✘ {p}" for p in report.problems] + [f"! {w}" for w in report.warnings]
    table = Table(title=title, title_justify="left", caption="\n".join(lines) or None, caption_justify="left")
    size = report.knob or "scales"  # r, oft_block_size, …; IA3 scales the input or the output
    for column in ("group", "role", "layers", size, "trainable", "example"):
        table.add_column(
            column, justify="right" if column in ("layers", size, "trainable") else "left", overflow="fold"
        )
    for total in report.roles:
        rows = [
            r
            for r in report.rows
            if (r.layer.part, r.layer.group, r.layer.role) == (total.part, total.group, total.role)
        ]
        example = rows[0].layer.name
        where = total.group if total.part == "language" else f"{total.part} {total.group}"
        table.add_row(
            where,
            total.role,
            str(total.layers),
            ",".join(map(str, total.ranks)) if report.knob else ",".join(sorted({r.basis for r in rows})),
            f"{total.params:,}",
            re.sub(r"\.\d+\.", ".N.", example),
        )
    for other in report.others:  # prompt encoders and the like
        table.add_row(other.what, "", "", "", f"{other.params:,}", other.detail)
    table.add_section()
    table.add_row("adapters", "", str(len(report.rows)), "", f"{report.adapter_params:,}", "")
    if report.bias != "none":
        table.add_row(f"bias={report.bias}", "", "", "", f"{report.bias_params:,}", "")
    if report.saved_modules:
        table.add_row(
            "modules_to_save",
            "",
            str(len(report.saved_modules)),
            "",
            f"{report.saved_params:,}",
            few(report.saved_modules, 2),
        )
    table.add_section()
    table.add_row("trainable", "", "", "", f"{report.trainable:,}", f"{report.trainable_percent:.4f}% of all")
    table.add_row("all", "", "", "", f"{report.total:,}", "base model + adapters + copies")
    return table


# --- scan and catalog --------------------------------------------------------------------------------------


def scan_view(report: Any, *, all_rows: bool = False) -> Any:
    """The summary: one row per model type that did not pass (every row with ``all_rows``), then the totals."""
    table = Table(title="modscope scan", title_justify="left")
    for column in ("model type", "status", "class", "presets (predicted = PEFT at r=4)", "PEFT's own defaults"):
        table.add_column(column, overflow="fold")
    shown = [t for t in report.results if all_rows or not t.match]
    for t in shown:
        presets = " ".join(f"{p.preset}{'' if p.match else '✘' if not p.empty else '∅'}" for p in t.presets)
        detail = presets if t.status == "analysed" else t.reason or ""
        table.add_row(t.model_type, t.status, t.architecture, detail, "\n".join(t.peft_differences))
    totals = Table(title="totals", title_justify="left")
    totals.add_column("")
    totals.add_column("model types", justify="right")
    totals.add_row("scanned", str(len(report.results)))
    totals.add_row("built from the default config", str(len(report.built)))
    totals.add_row("all presets equal PEFT", str(len(report.matched)))
    idle = [t for t in report.matched if t.presets and all(p.empty for p in t.presets)]
    totals.add_row("  of which no preset applies (each says why)", str(len(idle)))
    for reason, types in report.failures_by_reason().items():
        listed = ", ".join(types[:6]) + (", …" if len(types) > 6 else "")
        totals.add_row(f"{reason}: {listed}", str(len(types)))
    footer = Text(f"{report.seconds:.1f} s, " + ", ".join(f"{k} {v}" for k, v in report.versions.items()))
    return Group(*([table] if shown else []), totals, footer)


def catalog_table(entries: Any) -> Table:
    """The catalog by family (model type, a heading row each), smallest first, with each entry's kind and size.
    Ids are never wrapped, so they copy whole; on a narrow terminal the exact count gives way first."""
    table = Table(
        title=f"modscope catalog: {len(entries)} model(s), by family",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
    )
    table.add_column("family / id", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("parameters", justify="right")
    family = None
    for e in sorted(entries, key=lambda e: (e.model_type, e.total_params or 0, e.id.lower())):
        if e.model_type != family:
            family = e.model_type
            table.add_row(Text(family, style="bold"))
        exact = f"{e.total_params:,}" if e.total_params else "needs its own code"
        table.add_row(f"  {e.id}", e.kind, _short_count(e.total_params), exact)
    return table


def _short_count(n: int | None) -> str:
    """494M, 7.6B, 405B: the size people say."""
    if not n:
        return "?"
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= 0.9995 * scale:  # 999.9M reads 1.0B
            value = n / scale
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
    return str(n)


def mimebundle(renderable: Any) -> dict[str, str]:
    """text/plain and text/html of a rich renderable, for Jupyter."""
    console = Console(record=True, width=120, force_jupyter=False, color_system="truecolor", file=io.StringIO())
    console.print(renderable, crop=False)
    return {
        "text/plain": console.export_text(styles=False, clear=False),
        "text/html": console.export_html(inline_styles=True),
    }
