"""Roles -> PEFT targets: the layers each preset adapts, spelled (``targets.spell``) as the shortest
``target_modules`` that select exactly them, and ``target_parameters`` for 3-D expert weights."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from modscope.errors import OptionError, first_line
from modscope.formulas import lora_params, percent
from modscope.graph import CONV_KINDS
from modscope.peft_rules import MAMBA_REFUSED, MAMBA_TYPES, check_values, matches
from modscope.roles import ROLE_ORDER, Layer
from modscope.targets import parameter_suffixes, spell

PRESETS = ("qv", "attention", "mlp", "all-linear", "conv")
DEFAULT_PRESET = "all-linear"
_ATTENTION_GROUPS = {"attention", "cross_attention"}
_MLP_GROUPS = {"mlp", "shared_experts", "experts"}
# the convolutions 'conv' adapts: a convolutional model's own, and those doing a block's work (PoolFormer's 1x1-conv
# MLP); the other presets adapt Linear-like layers, as PEFT's all-linear does
_CONV_WORK = {"conv", *_ATTENTION_GROUPS, *_MLP_GROUPS}
# a state-space/recurrent mixer's projections that 'all-linear' adapts: what the models' own fine-tuning examples
# target (transformers' Mamba docs and the Jamba card: in_proj, x_proj, out_proj), with the gates and q/k/v of
# the other recurrences; Mamba's dt_proj (the step size) and the depthwise conv are left out, and said so
_MIXER_TAKEN = {"in", "x", "gate", "q", "k", "v", "out"}


@dataclass(frozen=True)
class Extras:
    """What a preset adds on request: the MoE router, the vision (or audio) tower, the projector."""

    router: bool = False
    vision: bool = False
    projector: bool = False


@dataclass(frozen=True)
class TargetPlan:
    """One preset compiled for PEFT, with the layers it wraps."""

    preset: str
    layers: tuple[Layer, ...]
    target_modules: tuple[str, ...] | str  # leaf names, or one regex (PEFT fullmatches a str)
    target_parameters: tuple[str, ...]
    rank_multipliers: dict[str, int] = field(default_factory=dict)  # fused gate_up experts train at 2r
    fan_in_fan_out: bool = False
    total_params: int = 0
    notes: tuple[str, ...] = ()

    def rank_of(self, layer: Layer, r: int) -> int:
        if not self.rank_multipliers:  # dense models: no peft import
            return r
        from peft.utils.other import get_pattern_key

        return r * self.rank_multipliers.get(get_pattern_key(list(self.rank_multipliers), layer.name), 1)

    def layer_params(self, layer: Layer, r: int) -> int:
        return lora_params(layer, self.rank_of(layer, r))

    def trainable_params(self, r: int) -> int:
        return sum(self.layer_params(layer, r) for layer in self.layers)

    def trainable_percent(self, r: int) -> float:
        trainable = self.trainable_params(r)
        return percent(trainable, self.total_params + trainable)

    def rank_pattern(self, r: int) -> dict[str, int]:
        return {key: r * factor for key, factor in self.rank_multipliers.items()}

    def lora_config_kwargs(self, r: int = 8, lora_alpha: int | None = None, **kwargs: Any) -> dict[str, Any]:
        """Keyword arguments for ``peft.LoraConfig``; ``lora_alpha`` defaults to 2r. Raises ``OptionError``
        for what PEFT would refuse on these targets."""
        check_values({"r": r}, ada=False)  # before 2r is worked out from it
        alpha = 2 * r if lora_alpha is None else lora_alpha
        values: dict[str, Any] = {
            "r": r,
            "lora_alpha": alpha,
            "target_modules": self.target_modules_list,
        }
        if self.target_parameters:
            values["target_parameters"] = list(self.target_parameters)
            values["lora_dropout"] = 0.0  # PEFT rejects dropout on parameter targets
        if self.rank_multipliers:
            values["rank_pattern"] = self.rank_pattern(r)
            values["alpha_pattern"] = {key: alpha * f for key, f in self.rank_multipliers.items()}
        if self.fan_in_fan_out:
            values["fan_in_fan_out"] = True
        values.update(kwargs)
        check_values(values, ada=False)
        if self.target_parameters and values.get("lora_dropout"):
            raise OptionError(
                f"lora_dropout={values['lora_dropout']} with target_parameters: PEFT refuses dropout on "
                "parameter targets (the MoE experts here); leave lora_dropout at 0"
            )
        if self.target_parameters and values.get("use_dora"):
            raise OptionError(
                "use_dora=True with target_parameters: PEFT has no DoRA for parameter targets (the MoE "
                "experts here); drop use_dora or use a preset without experts"
            )
        return values

    def lora_config(self, r: int = 8, lora_alpha: int | None = None, **kwargs: Any) -> Any:
        """A ``peft.LoraConfig`` ready for ``get_peft_model``; ``OptionError`` where PEFT would refuse it."""
        from peft import LoraConfig

        values = self.lora_config_kwargs(r, lora_alpha, **kwargs)
        try:
            return LoraConfig(**values)
        except (TypeError, ValueError) as exc:
            raise OptionError(f"PEFT rejects this LoraConfig: {first_line(exc)}") from None

    def __rich__(self) -> Any:
        from modscope.render.rich import plan_view

        return plan_view(self)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, str]:
        from modscope.render.rich import mimebundle

        return mimebundle(self)

    @property
    def target_modules_list(self) -> list[str] | str:
        return self.target_modules if isinstance(self.target_modules, str) else list(self.target_modules)

    @property
    def wrapped(self) -> frozenset[str]:
        return frozenset(layer.name for layer in self.layers)

    def draw(self, analysis: Any = None, r: int = 8) -> Any:
        """This plan on a picture of ``analysis``'s blocks (a matplotlib Figure; without the analysis, the plan's
        own layers alone), each adapted layer with its trainable count at ``r``. Needs modscope[draw]."""
        from modscope.render.diagram import block_diagram

        return block_diagram(analysis, self, r)


def select(layers: tuple[Layer, ...], preset: str, extras: Extras = Extras()) -> tuple[Layer, ...]:
    """The layers a preset adapts: the language model's attention and/or MLP (its convolutions for ``conv``), plus
    what ``extras`` asks."""
    if preset not in PRESETS:
        raise OptionError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    parts = (
        {"language"}
        | ({"vision", "audio"} if extras.vision else set())
        | ({"projector"} if extras.projector else set())
    )
    chosen: list[Layer] = []
    for layer in layers:
        if layer.part not in parts:
            continue
        if preset == "conv":  # the convolutions doing the work of a convolutional model (not grouped ones)
            if layer.kind in CONV_KINDS and layer.groups == 1 and layer.group in _CONV_WORK:
                chosen.append(layer)
        elif layer.kind in CONV_KINDS:
            continue
        elif layer.part == "projector" and layer.kind in ("linear", "conv1d"):
            chosen.append(layer)
        elif layer.group == "router":
            if extras.router and preset in ("mlp", "all-linear"):
                chosen.append(layer)
        elif (
            (preset in ("attention", "all-linear") and layer.group in _ATTENTION_GROUPS)
            or (preset in ("mlp", "all-linear") and layer.group in _MLP_GROUPS)
            or (preset == "all-linear" and layer.group == "mixer" and layer.role in _MIXER_TAKEN)
        ):
            chosen.append(layer)
    if preset == "qv":
        chosen = [l for l in chosen if l.part == "projector"] + _query_value(layers, parts)
    return tuple(chosen)


def _query_value(layers: tuple[Layer, ...], parts: set[str]) -> list[Layer]:
    """Query and value, as in the LoRA paper; the fused layer that holds them where they are not separate."""
    by_block: dict[str, list[Layer]] = {}
    for layer in layers:
        if layer.group in _ATTENTION_GROUPS and layer.part in parts:
            by_block.setdefault(layer.module.rpartition(".")[0], []).append(layer)
    chosen: list[Layer] = []
    for block in by_block.values():
        roles = {l.role for l in block}
        if "q" in roles or "q_b" in roles:
            q_role = "q" if "q" in roles else "q_b"
        else:
            q_role = "qkv"
        v_role = "v" if "v" in roles else "kv" if "kv" in roles else "kv_b" if "kv_b" in roles else "qkv"
        chosen.extend(l for l in block if l.role in {q_role, v_role})
    return chosen


def plan(
    preset: str,
    layers: tuple[Layer, ...],
    module_names: tuple[str, ...],
    param_names: tuple[str, ...],
    total_params: int,
    model_type: str,
    extras: Extras = Extras(),
) -> TargetPlan:
    """Compile a preset to ``target_modules`` / ``target_parameters`` that select exactly its layers."""
    chosen = select(layers, preset, extras)
    refused = [l for l in chosen if model_type in MAMBA_TYPES and l.leaf in MAMBA_REFUSED]
    chosen = tuple(l for l in chosen if l not in refused)
    result = compile_plan(preset, chosen, module_names, param_names, total_params, model_type)
    notes = []
    if refused:
        notes.append(
            f"PEFT refuses LoRA on {', '.join(sorted({l.leaf for l in refused}))} in {model_type} (Mamba) "
            f"models; {len(refused)} such layer(s) left out"
        )
    step = (
        sorted({l.leaf for l in layers if l.group == "mixer" and l.role == "dt" and l.part == "language"})
        if preset == "all-linear"
        else []
    )
    groups = (_MLP_GROUPS if preset in ("mlp", "all-linear") else set()) | (
        _ATTENTION_GROUPS if preset in ("qv", "attention", "all-linear") else set()
    )
    convs = [l for l in select(layers, "conv", extras) if l.group in groups]
    if convs:
        what = " and ".join(sorted({"MLP" if l.group in _MLP_GROUPS else "attention" for l in convs}))
        leaves = ", ".join(sorted({l.leaf for l in convs}))
        notes.append(f"its {what} is made of convolutions ({leaves}), which the 'conv' preset adapts")
    if step:
        notes.append(
            f"the state-space mixers' {', '.join(step)} (step size) is left out, as the models' own fine-tuning "
            "examples do; add it with `modscope check --target-modules`"
        )
    return replace(result, notes=(*result.notes, *notes)) if notes else result


def compile_plan(
    preset: str,
    chosen: tuple[Layer, ...],
    module_names: tuple[str, ...],
    param_names: tuple[str, ...],
    total_params: int,
    model_type: str,
) -> TargetPlan:
    notes: list[str] = []
    # on converted MoE types PEFT rewrites these names (and a regex, into leaf names) whatever else is targeted
    rewritten = peft_rewritten_names(model_type)
    modules = [l for l in chosen if l.kind != "param" and l.leaf not in rewritten]
    params = [l for l in chosen if l.kind == "param"]
    moved = [l for l in chosen if l.kind != "param" and l.leaf in rewritten]
    if moved:
        notes.append(
            f"PEFT rewrites targets named {', '.join(sorted({l.leaf for l in moved}))} into the experts on "
            f"{model_type}; the dense MLP / shared expert weights are reached through target_parameters instead"
        )
    param_layers = params + moved
    param_keys = [l.name if l.kind == "param" else f"{l.name}.weight" for l in param_layers]
    target_parameters = parameter_suffixes(param_keys, param_names) if param_layers else ()
    target_modules = _module_targets(modules, module_names, allow_regex=not rewritten)
    multipliers = {}
    for layer in params:
        if layer.role == "gate_up" and layer.group == "experts":
            key = next(t for t in target_parameters if matches([t], layer.name))
            multipliers[re.escape(key)] = 2
    moved_names = {l.name for l in moved}
    wrapped = tuple(l if l.name not in moved_names else _as_param(l) for l in chosen)
    return TargetPlan(
        preset=preset,
        layers=wrapped,
        target_modules=target_modules,
        target_parameters=tuple(target_parameters),
        rank_multipliers=multipliers,
        fan_in_fan_out=any(l.kind == "conv1d" for l in chosen),
        total_params=total_params,
        notes=tuple(notes),
    )


def _as_param(layer: Layer) -> Layer:
    return replace(layer, name=f"{layer.name}.weight", parameter="weight", kind="param")


def _order(layer: Layer) -> tuple[int, str]:
    return (ROLE_ORDER.index(layer.role) if layer.role in ROLE_ORDER else len(ROLE_ORDER), layer.name)


def _module_targets(modules: list[Layer], module_names: tuple[str, ...], allow_regex: bool) -> tuple[str, ...] | str:
    if not modules:
        return ()
    return spell([l.name for l in sorted(modules, key=_order)], module_names, allow_regex)


@cache
def peft_rewritten_names(model_type: str) -> frozenset[str]:
    """Leaf names that PEFT rewrites into fused expert parameters on this MoE model type (transformers 5)."""
    from transformers.conversion_mapping import get_checkpoint_conversion_mapping

    if get_checkpoint_conversion_mapping(model_type) is None:  # checked first: no peft import for dense models
        return frozenset()
    from peft.utils import transformers_weight_conversion as conv

    base = conv._MODEL_TO_CONVERSION_PATTERN.get(model_type) or ""
    mapping = conv._MOE_TARGET_MODULE_MAPPING.get(base)
    return frozenset(mapping) if mapping and conv._MOE_FUSED_TARGETS.get(base) else frozenset()
