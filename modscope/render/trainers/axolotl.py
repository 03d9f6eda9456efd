"""axolotl's YAML. axolotl hands its ``lora_*`` keys to ``peft.LoraConfig`` as they are (a string
``lora_target_modules`` is one regex), with ``lora_target_parameters`` and ``lora_rank_pattern``, so it says
every plan exactly. ``lora_target_linear: true`` is never written: it adds every Linear leaf name, which also
adapts vision towers, projectors and MoE routers."""

from __future__ import annotations

from typing import Any

from modscope.render.trainers._shared import Difference, Target, comment, heading, yaml_lines


def snippet(target: Target, to: str) -> tuple[str, tuple[Difference, ...]]:
    kwargs = target.plan.lora_config_kwargs(target.r, target.alpha)
    values: dict[str, Any] = {"adapter": "lora", "lora_r": kwargs["r"], "lora_alpha": kwargs["lora_alpha"]}
    lines = comment(heading(target, "axolotl", ()))
    body = yaml_lines(values)
    if isinstance(kwargs["target_modules"], str):
        body.append("# one string: a regex PEFT fullmatches against module paths")
    body += yaml_lines({"lora_target_modules": kwargs["target_modules"]})
    if "target_parameters" in kwargs:
        body += yaml_lines({"lora_target_parameters": kwargs["target_parameters"]})
        body.append("lora_dropout: 0.0  # PEFT refuses dropout on parameter targets")
    for key in ("rank_pattern", "alpha_pattern"):
        if key in kwargs:
            body += yaml_lines({f"lora_{key}": kwargs[key]})
    if kwargs.get("fan_in_fan_out"):
        body.append("lora_fan_in_fan_out: true  # GPT-2 style Conv1D weights")
    return lines + "\n".join(body) + "\n", ()
