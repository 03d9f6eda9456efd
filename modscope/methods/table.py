"""`show --method`: a method's count across its main size knob for each preset, and the config to paste.

Each cell is a full count of the config `show` would print at that size (``count_method``), so a cell PEFT
would refuse (a Linear-only method on Conv1D layers, a size larger than a layer) says so instead of a number."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from modscope.errors import OptionError
from modscope.methods import method
from modscope.methods.base import Method
from modscope.methods.counting import count_method

_TASK_TYPES = {"causal-lm": "CAUSAL_LM", "seq2seq-lm": "SEQ_2_SEQ_LM", "speech-seq2seq": "SEQ_2_SEQ_LM"}
_CONV1D_AWARE = {"IA3", "VERA", "FOURIERFT"}  # take GPT-2 Conv1D layers with fan_in_fan_out=True


@dataclass(frozen=True)
class MethodRow:
    preset: str
    counts: tuple[int | None, ...]  # per size; None where PEFT refuses
    note: str = ""  # why a size is refused, or what the preset leaves out


@dataclass(frozen=True)
class MethodTable:
    method: Method
    model_id: str
    sizes: tuple[int, ...]  # () for a method without a size knob (IA3)
    rows: tuple[MethodRow, ...]
    chosen: str  # the preset printed as a config
    size: int  # the size printed
    kwargs: dict[str, Any]  # the printed config's fields
    total_params: int

    def __rich__(self) -> Any:
        from modscope.render.methods import method_table_view

        return method_table_view(self)


def default_size(m: Method) -> int:
    """PEFT's own default for the knob, where it has one among the sizes shown; else the second size."""
    import peft

    field = next((f for f in dataclasses.fields(getattr(peft, m.config_class)) if f.name == m.knob), None)
    return field.default if field is not None and field.default in m.sizes else m.sizes[1]


def method_kwargs(analysis: Any, m: Method, plan: Any, size: int | None) -> dict[str, Any]:
    """The config fields `show` prints for ``plan`` (None for a prompt method) at ``size``."""
    values: dict[str, Any] = {}
    if plan is None:
        values["task_type"] = _TASK_TYPES.get(analysis.task, "FEATURE_EXTRACTION")
    else:
        values["target_modules"] = plan.target_modules_list
        if m.peft_type == "IA3":  # said explicitly, or PEFT fills in its own mapping
            values["feedforward_modules"] = sorted({l.leaf for l in plan.layers if l.role == "down"})
        if plan.fan_in_fan_out and m.peft_type in _CONV1D_AWARE:
            values["fan_in_fan_out"] = True
    if m.knob and size is not None:
        values[m.knob] = size
    if m.peft_type == "ADAPTION_PROMPT":  # every attention module
        from peft.tuners.adaption_prompt.config import TRANSFORMERS_MODEL_CONFIG

        mapped = TRANSFORMERS_MODEL_CONFIG.get(analysis.model_type)
        name = mapped.target_modules if mapped else "self_attn"
        values["adapter_layers"] = sum(n.endswith(f".{name}") for n in analysis.module_names)
    return values


def peft_config(m: Method, values: dict[str, Any]) -> Any:
    import peft

    return getattr(peft, m.config_class)(**values)


def _trainable(analysis: Any, m: Method, values: dict[str, Any]) -> tuple[int | None, str]:
    try:
        config = peft_config(m, values)
        task_type = str(getattr(config.task_type, "value", config.task_type) or "")
        return count_method(analysis, config, task_type, []).trainable, ""
    except (OptionError, ValueError, TypeError) as exc:
        return None, " ".join(str(exc).split())


def method_table(analysis: Any, peft_type: str, preset: str | None = None, **extras: bool) -> MethodTable:
    """The count of ``peft_type`` per preset (one row for a prompt method) and size, and the config to print."""
    m = method(peft_type)
    sizes = m.sizes
    plans: dict[str, Any] = {"prompt": None} if m.prompt else analysis.plans(**extras)
    size = default_size(m) if sizes else 0
    rows = []
    for name, plan in plans.items():
        note = ""
        if plan is not None and plan.target_parameters:
            if not plan.target_modules_list:
                continue
            note = "the 3-D expert weights are left out: only LoRA adapts them (target_parameters)"
            plan = dataclasses.replace(
                plan, target_parameters=(), layers=tuple(l for l in plan.layers if not l.experts)
            )
            plans[name] = plan
        counts = []
        for s in sizes or (None,):
            n, why = _trainable(analysis, m, method_kwargs(analysis, m, plan, s))
            counts.append(n)
            note = note or why
        rows.append(MethodRow(name, tuple(counts), note))
    usable = [r.preset for r in rows if r.counts[sizes.index(size) if sizes else 0] is not None]
    if preset is not None and preset not in usable:
        why = next((r.note for r in rows if r.preset == preset), "it selects no layer")
        tries = f"; try {', '.join(usable)}" if usable else ""
        raise OptionError(f"{m.name} cannot take preset {preset!r} on {analysis.model_id}: {why}{tries}")
    if not usable:
        raise OptionError(f"PEFT's {m.name} can adapt no preset of {analysis.model_id}: {rows[0].note if rows else ''}")
    chosen = preset or next(p for p in ("all-linear", *usable) if p in usable)
    return MethodTable(
        method=m,
        model_id=analysis.model_id,
        sizes=sizes,
        rows=tuple(rows),
        chosen=chosen,
        size=size,
        kwargs=method_kwargs(analysis, m, plans[chosen], size if sizes else None),
        total_params=analysis.total_params,
    )
