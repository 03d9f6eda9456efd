"""TRL's YAML for ``trl sft --config FILE`` (the ``ModelConfig`` fields).

How TRL 1.16 reads it (``trl/trainer/model_config.py``, ``get_peft_config`` in ``trl/trainer/utils.py``):
``lora_target_modules`` goes to ``LoraConfig(target_modules=…)``, but a one-item list becomes its item, a
string, which PEFT fullmatches as a regex against whole module paths, so ``[c_attn]`` matches nothing: one name
is written as the regex ``(?:.*\\.)?c_attn``. ``lora_target_parameters`` is passed on; ``lora_dropout`` defaults
to 0.05, which PEFT refuses beside parameter targets, so it is set to 0 there. There is no ``rank_pattern``: on
the MoE types PEFT converts, the fused experts are named by their transformers-4 names, which PEFT's conversion
turns into the experts at 2r; elsewhere they train at r (a stated difference).
"""

from __future__ import annotations

from typing import Any

from modscope.render.trainers._shared import (
    Difference,
    Target,
    any_of,
    comment,
    differences,
    heading,
    peft_conversion,
    yaml_lines,
)

_WHY = {
    "missing": "TRL's lora_* fields cannot name these",
    "extra": "TRL's lora_* fields cannot leave these out",
    "rank": "TRL has no rank_pattern, so the fused gate_up_proj experts train at r instead of 2r",
}


def targets(target: Target, why: dict[str, str], trainer: str) -> tuple[dict[str, Any], tuple[Difference, ...]]:
    """``target_modules`` / ``target_parameters`` / ``lora_dropout`` for a trainer with those PEFT fields and no
    ``rank_pattern`` (TRL, ms-swift), and what differs. ``target_modules`` is a list or one regex string."""
    kwargs = target.plan.lora_config_kwargs(target.r, target.alpha)
    modules: list[str] | str = kwargs["target_modules"]
    parameters = list(kwargs.get("target_parameters", ()))
    converted, covered = peft_conversion(target, fused_only=True) if target.plan.rank_multipliers else ([], set())
    if converted:
        assert isinstance(modules, list)  # PEFT's converted types get leaf names, never a regex
        modules = modules + converted
        parameters = [p for p in parameters if not any(layer == p or layer.endswith("." + p) for layer in covered)]
    values: dict[str, Any] = {"target_modules": modules}
    if parameters:
        values["target_parameters"] = parameters
        values["lora_dropout"] = 0.0
    peft_kwargs = {"r": target.r, "lora_alpha": target.alpha, **values}
    found = differences(target, peft_kwargs, trainer, why) if target.plan.rank_multipliers else ()
    return values, found


def snippet(target: Target, to: str) -> tuple[str, tuple[Difference, ...]]:
    values, found = targets(target, _WHY, "TRL")
    modules = values["target_modules"]
    body = yaml_lines({"model_name_or_path": target.analysis.model_id, "use_peft": True})
    body += yaml_lines({"lora_r": target.r, "lora_alpha": target.alpha})
    if isinstance(modules, list) and len(modules) == 1:
        body.append("# one name as a regex: TRL turns a one-item list into a string, which PEFT reads as a regex")
        modules = any_of(modules)
    elif isinstance(modules, str):
        body.append("# one string: a regex PEFT fullmatches against module paths")
    body += _converted_note(target, values)
    body += yaml_lines({"lora_target_modules": modules})
    if "target_parameters" in values:
        body += yaml_lines({"lora_target_parameters": values["target_parameters"]})
        body.append("lora_dropout: 0.0  # TRL's default 0.05 is refused by PEFT beside parameter targets")
    return comment(heading(target, "TRL", found)) + "\n".join(body) + "\n", found


def _converted_note(target: Target, values: dict[str, Any]) -> list[str]:
    extra = [m for m in values["target_modules"] if m not in target.plan.target_modules_list]
    if not extra or isinstance(values["target_modules"], str):
        return []
    return [f"# {', '.join(extra)}: PEFT turns these into the fused MoE experts at 2r on {target.analysis.model_type}"]
