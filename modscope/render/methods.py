"""`show --method`: the method's counts per preset and size, and its config as code to paste."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from modscope.render.python import config_code
from modscope.render.readback import pasted_config
from modscope.render.rich import python_code, verification_text


def method_code(table: Any) -> str:
    return config_code(table.kwargs, cls=table.method.config_class)


def method_taken_away(table: Any) -> Any:
    """The config a user gets by pasting the printed code; it must equal the one built from the table's fields
    (``ValueError`` names the first field that differs)."""
    from modscope.methods.table import peft_config

    expected = peft_config(table.method, table.kwargs)
    got = pasted_config(method_code(table))
    if got != expected:
        field = next(k for k in vars(expected) if getattr(got, k, None) != getattr(expected, k))
        raise ValueError(f"the printed code differs in {field}: {getattr(got, field, None)!r}")
    return got


def method_table_view(table: Any) -> Table:
    m = table.method
    out = Table(
        title=f"{m.name} on {table.model_id}: trainable parameters"
        + (f" by {m.knob}" if table.sizes else "")
        + f" (base model {table.total_params:,})",
        title_justify="left",
    )
    notes = any(row.note for row in table.rows)
    out.add_column("preset" if not m.prompt else "")
    for size in table.sizes or ("trainable",):
        out.add_column(str(size), justify="right")
    if notes:
        out.add_column("note", overflow="fold")
    for row in table.rows:
        cells = [("refused" if n is None else f"{n:,}") for n in row.counts]
        marker = " ◀" if row.preset == table.chosen else ""
        out.add_row(row.preset + marker, *cells, *([row.note] if notes else []))
    return out


def method_view(table: Any, verification: Any = None) -> Group:
    size = f" at {table.method.knob}={table.size}" if table.sizes else ""
    parts: list[Any] = [
        method_table_view(table),
        Text(f"\n{table.method.config_class} for '{table.chosen}'{size}:", style="bold"),
        python_code(method_code(table)),
    ]
    if verification is not None:
        parts.append(verification_text(verification))
    return Group(*parts)


def method_document(table: Any, verification: Any = None) -> dict[str, Any]:
    """`show --method M --json`, in the shape of ``modscope/schemas/show-method.schema.json``: the counts per
    preset and size (null where PEFT refuses) and ``config``, the keyword arguments of the printed config."""
    from modscope.render.json import SCHEMA_VERSION

    m = table.method
    return {
        "schema_version": SCHEMA_VERSION,
        "model": table.model_id,
        "peft_type": m.peft_type,
        "knob": m.knob or None,
        "sizes": list(table.sizes),
        "presets": {
            row.preset: {
                "trainable": dict(zip([str(s) for s in table.sizes or ("trainable",)], row.counts, strict=True)),
                "note": row.note,
            }
            for row in table.rows
        },
        "chosen": table.chosen,
        "size": table.size if table.sizes else None,
        "config_class": m.config_class,
        "config": table.kwargs,
        "total_params": table.total_params,
        "verification": None if verification is None else {**asdict(verification), "match": verification.match},
    }
