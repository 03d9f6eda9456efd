"""What the trainer formats share: the heading, YAML text, target spellings and the differences, counted."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from modscope.errors import OptionError
from modscope.peft_rules import matches
from modscope.roles import ROLE_ORDER


@dataclass(frozen=True)
class Difference:
    """One way the trainer's set differs from modscope's, in words, and what it adds (or removes, negative)."""

    what: str
    params: int

    def __str__(self) -> str:
        return f"{self.what} ({self.params:+,} parameters)"


@dataclass(frozen=True)
class Target:
    """What is exported: a plan of an analysis at rank ``r`` with ``alpha``, under a label (the preset)."""

    analysis: Any
    plan: Any
    r: int
    alpha: int
    label: str

    @property
    def trainable(self) -> int:
        return int(self.plan.trainable_params(self.r))

    @cached_property
    def modules(self) -> list[str]:
        """The module layers the plan wraps (not parameter targets), in role order."""
        layers = [l for l in self.plan.layers if l.kind != "param"]
        return [l.name for l in sorted(layers, key=_role_order)]


def _role_order(layer: Any) -> tuple[int, str]:
    return (ROLE_ORDER.index(layer.role) if layer.role in ROLE_ORDER else len(ROLE_ORDER), layer.name)


def heading(target: Target, trainer: str, differences: tuple[Difference, ...]) -> list[str]:
    """The comment lines (without ``#``) that open every snippet."""
    plan, r = target.plan, target.r
    lines = [
        f"modscope: {target.analysis.model_id}, {target.label}, r={r}, lora_alpha={target.alpha}",
        f"modscope counts {target.trainable:,} trainable parameters ({plan.trainable_percent(r):.4f}%), "
        "as PEFT reports them",
    ]
    if differences:
        total = target.trainable + sum(d.params for d in differences)
        lines.append(f"{trainer} cannot say this set exactly; this closest one trains {total:,}:")
        lines += [f"  {d}" for d in differences]
    return lines


def comment(lines: Iterable[str]) -> str:
    return "".join(f"# {line}".rstrip() + "\n" for line in lines)


# --- YAML, written by hand so it reads like the trainers' own examples; tests load it with yaml.safe_load ---

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")


def yaml_scalar(value: Any, flow: bool = False) -> str:
    """A YAML scalar that loads back as ``value``: plain where that is safe, else single-quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    plain = _PLAIN.fullmatch(text.replace(",", "")) and (not flow or "," not in text)
    if plain:
        import yaml

        if yaml.safe_load(text) == text:  # not a bool, number or null to YAML
            return text
    return "'" + text.replace("'", "''") + "'"


def yaml_lines(values: dict[str, Any], indent: str = "") -> list[str]:
    """``key: value`` lines; a list in flow style when it fits on one line, else one item a line; a dict
    one entry a line."""
    lines = []
    for key, value in values.items():
        if isinstance(value, (list, tuple)):
            flow = f"{indent}{key}: [{', '.join(yaml_scalar(v, flow=True) for v in value)}]"
            if len(flow) <= 100:
                lines.append(flow)
            else:
                lines += [f"{indent}{key}:", *(f"{indent}  - {yaml_scalar(v)}" for v in value)]
        elif isinstance(value, dict):
            lines += [f"{indent}{key}:", *(f"{indent}  {yaml_scalar(k)}: {yaml_scalar(v)}" for k, v in value.items())]
        else:
            lines.append(f"{indent}{key}: {yaml_scalar(value)}")
    return lines


# --- target spellings ---


def any_of(names: Iterable[str]) -> str:
    """One regex that fullmatches exactly what a list of these names selects (TRL and Unsloth read one string
    as a regex)."""
    body = "|".join(re.escape(n) for n in names)
    return rf"(?:.*\.)?(?:{body})" if "|" in body else rf"(?:.*\.)?{body}"


def peft_conversion(target: Target, fused_only: bool) -> tuple[list[str], set[str]]:
    """The transformers-4 names that make PEFT's MoE conversion recreate some of the plan's parameter targets,
    with the rank it gives fused experts (2r): (names for ``target_modules``, parameter layers they cover).
    Only where the conversion adapts exactly the plan's layers of that name (it adapts every one in the model)."""
    from modscope.presets import peft_rewritten_names

    model_type = target.analysis.model_type
    if not peft_rewritten_names(model_type):
        return [], set()
    from peft.utils import transformers_weight_conversion as conversion

    mapping = conversion._MOE_TARGET_MODULE_MAPPING[conversion._MODEL_TO_CONVERSION_PATTERN.get(model_type, "")]
    olds: dict[str, list[str]] = {}
    for old, new in mapping.items():
        olds.setdefault(new, []).append(old)
    params = [l.name for l in target.plan.layers if l.kind == "param"]
    names, covered = [], set()
    for new, old_names in olds.items():
        mine = {p for p in params if matches([new], p)}
        wanted = mine and (len(old_names) > 1 or not fused_only)
        if wanted and mine == {p for p in target.analysis.param_names if matches([new], p)}:
            names += old_names
            covered |= mine
    return names, covered


# --- what differs, counted by modscope on the config the trainer builds ---


def differences(
    target: Target, lora_kwargs: dict[str, Any], trainer: str, why: dict[str, str]
) -> tuple[Difference, ...]:
    """How the LoraConfig that ``trainer`` builds from the snippet (``lora_kwargs``) differs from the plan, layer
    by layer: left out, added, or at another rank, each with ``why[kind]``, and what it trains in full."""
    from modscope.check import count

    plan, r = target.plan, target.r
    want = {l.name: plan.layer_params(l, r) for l in plan.layers}
    try:
        report = count(target.analysis, lora_kwargs)
    except OptionError:  # matches nothing at all
        got: dict[str, int] = {}
        saved: tuple[tuple[str, ...], int] = ((), 0)
    else:
        if report.problems:
            raise OptionError(f"{trainer} cannot take the closest set modscope finds: {report.problems[0]}")
        got = {row.layer.name: row.params for row in report.rows}
        saved = (report.saved_modules, report.saved_params + report.bias_params)
    found = []
    missing = [n for n in want if n not in got]
    if missing:
        found.append(Difference(f"leaves out {_layers(missing)}: {why['missing']}", -sum(want[n] for n in missing)))
    extra = [n for n in got if n not in want]
    if extra:
        found.append(Difference(f"also adapts {_layers(extra)}: {why['extra']}", sum(got[n] for n in extra)))
    other = [n for n in want if n in got and got[n] != want[n]]
    if other:
        found.append(
            Difference(f"trains {_layers(other)} at another rank: {why['rank']}", sum(got[n] - want[n] for n in other))
        )
    if saved[1]:
        found.append(Difference(f"also trains {', '.join(saved[0]) or 'biases'} in full", saved[1]))
    return tuple(found)


def _layers(names: list[str]) -> str:
    templates = Counter(re.sub(r"(?<=\.)\d+(?=\.|$)", "*", name) for name in names)
    shown = [f"{t} ×{n}" if n > 1 else t for t, n in list(templates.items())[:3]]
    more = f" and {len(templates) - 3} more kinds" if len(templates) > 3 else ""
    return f"{len(names)} layer{'s' if len(names) > 1 else ''} ({', '.join(shown)}{more})"
