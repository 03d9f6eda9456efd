"""A target plan in each trainer's own spelling: PEFT code, JSON, axolotl, LLaMA-Factory, TRL, Unsloth, ms-swift
and torchtune, one module each.

Every snippet starts with a comment that names the model, the preset and modscope's trainable count, so the
user can compare it with the trainer's own printout. Where a trainer cannot say the plan's set (no regex, no
``target_parameters``, no ``rank_pattern``, fixed module names), the snippet holds the closest set it can say,
and ``Export.differences`` states what differs and by how many parameters, counted by modscope on the
config the trainer builds from the snippet (``_shared.differences``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from modscope.errors import OptionError
from modscope.render.trainers._shared import Difference, Target

FORMATS = ("peft", "json", "axolotl", "llama-factory", "trl", "unsloth", "swift", "torchtune")
_MODULES = {"peft": "lora_config", "json": "lora_config", "llama-factory": "llama_factory"}

__all__ = ["FORMATS", "Difference", "Export", "export"]


@dataclass(frozen=True)
class Export:
    """One snippet ready to paste, and what the trainer will train differently from the plan."""

    format: str
    text: str
    trainable: int  # modscope's count of the plan at r
    differences: tuple[Difference, ...] = ()

    @property
    def exact(self) -> bool:
        return not self.differences

    @property
    def trainer_trainable(self) -> int:
        """What the trainer will report: modscope's count plus the stated differences."""
        return self.trainable + sum(d.params for d in self.differences)


def export(analysis: Any, plan: Any, to: str, r: int = 8, lora_alpha: int | None = None, label: str = "") -> Export:
    """``plan`` (a ``TargetPlan`` of ``analysis``) at rank ``r`` as the trainer ``to`` reads it. ``label`` names
    the set in the heading (the preset by default). ``OptionError`` for an unknown format, or one that cannot
    load this model at all (torchtune builds a few families only)."""
    if to not in FORMATS:
        raise OptionError(f"unknown format {to!r}: choose one of {', '.join(FORMATS)}")
    plan.lora_config_kwargs(r, lora_alpha)  # OptionError for what PEFT itself would refuse (r <= 0, …)
    target = Target(analysis, plan, r, 2 * r if lora_alpha is None else lora_alpha, label or f"preset {plan.preset}")
    module = importlib.import_module(f"modscope.render.trainers.{_MODULES.get(to, to)}")
    text, differences = module.snippet(target, to)
    return Export(to, text, target.trainable, differences)
