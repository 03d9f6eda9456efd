"""A memory estimate as rich renderables and as a JSON document (``schemas/memory.schema.json``)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from modscope.render.json import SCHEMA_VERSION

_LABELS = {
    "weights": "weights (frozen) and buffers",
    "adapters": "adapters (trainable)",
    "gradients": "gradients",
    "optimizer": "optimizer states",
    "activations": "activations and temporaries",
}


def size(n: int) -> str:
    """Bytes as GiB (or MiB below one GiB), two decimals: the units nvidia-smi and torch use."""
    return f"{n / (1 << 30):.2f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.2f} MiB"


def memory_view(report: Any) -> Group:
    s = report.setup
    method = {"nf4": "QLoRA nf4", "int8": "LoRA on int8"}.get(s.quant, "LoRA")
    title = (
        f"{report.model_id}: {method} ({report.adapter}), batch {s.batch} × seq {s.seq}, {s.dtype}, "
        f"{'gradient checkpointing, ' if s.gradient_checkpointing else ''}{s.optimizer}"
    )
    terms = Table(title=title, title_justify="left", show_edge=False)
    terms.add_column("at the peak")
    terms.add_column("bytes", justify="right")
    terms.add_column("share", justify="right")
    total = report.tracked_bytes
    for name, value in report.terms.items():
        terms.add_row(_LABELS[name], size(value), f"{100 * value / total:.1f}%" if total else "-")
    for term in report.device:
        if term.added:
            terms.add_row(term.name, size(term.bytes), "")
    terms.add_row(Text("peak allocated", style="bold"), Text(size(report.peak_bytes), style="bold"), "")
    lines: list[Any] = [
        terms,
        Text(f"peak at {report.peak_op}; {report.trainable_params:,} trainable parameters"),
        Text(_depth_line(report), style="dim"),
    ]
    if report.fit is not None:
        lines.append(_fit_text(report.fit))
    lines.append(Text("assumed: " + "; ".join(report.assumptions), style="dim"))
    others = [t for t in report.device if not t.added]
    for term in others:
        lines.append(Text(f"not added: {term.name} ({size(term.bytes)}): {term.source}", style="dim"))
    lines.append(
        Text(
            "reserved (what nvidia-smi shows, less the CUDA context) is at least the peak allocated, more with "
            "fragmentation; not yet measured on a GPU (bench/README.md)",
            style="dim",
        )
    )
    return Group(*lines)


def _depth_line(report: Any) -> str:
    plan = report.depths
    if plan is None or len(plan.short) == 1:
        return "simulated at full depth"
    return (
        f"simulated at {plan.short[0]} and {plan.short[1]} blocks, extended to {plan.depth} "
        f"({plan.period} block{'s' if plan.period > 1 else ''} per repetition)"
    )


def _fit_text(fit: Any) -> Text:
    verdict = "fits" if fit.fits else "does not fit"
    style = "green" if fit.fits else "red"
    text = Text(f"{fit.gpu}: {verdict} ({size(fit.needed)} with the CUDA context)", style=f"bold {style}")
    if fit.largest is not None:
        capped = " (the model's maximum)" if fit.largest == fit.limit and fit.over == "seq" else ""
        found = f"; largest {fit.over} that fits: {fit.largest}{capped}"
        text.append(found if fit.largest else f"; not even {fit.over} 1 fits", style="bold")
    return text


def memory_document(report: Any) -> dict[str, Any]:
    s = report.setup
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "model": report.model_id,
        "adapter": report.adapter,
        "setup": {
            "batch": s.batch,
            "seq": s.seq,
            "dtype": s.dtype,
            "gradient_checkpointing": s.gradient_checkpointing,
            "optimizer": s.optimizer,
            "attention": s.attention,
            "quant": s.quant,
            "double_quant": s.double_quant,
        },
        "trainable_params": report.trainable_params,
        "peak_bytes": report.peak_bytes,
        "peak_op": report.peak_op,
        "terms": dict(report.terms),
        "device_terms": [
            {"name": t.name, "bytes": t.bytes, "added": t.added, "source": t.source} for t in report.device
        ],
        "depths": None
        if report.depths is None
        else {"depth": report.depths.depth, "simulated": list(report.depths.short), "period": report.depths.period},
        "assumptions": list(report.assumptions),
        "fit": None,
    }
    if report.fit is not None:
        f = report.fit
        document["fit"] = {
            "gpu": f.gpu,
            "capacity_bytes": f.capacity,
            "needed_bytes": f.needed,
            "fits": f.fits,
            "largest": f.largest,
            "over": f.over,
            "limit": f.limit,
        }
    return document
