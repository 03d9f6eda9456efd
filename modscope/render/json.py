"""Analysis results -> one JSON-serialisable document, in the shape of ``modscope/schemas/show.schema.json``.

``schema_version`` changes when a field is removed or changes meaning; new fields may appear in any version."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from modscope.presets import TargetPlan


SCHEMA_VERSION = 1


def plan_document(plan: TargetPlan, ranks: tuple[int, ...], r: int) -> dict[str, Any]:
    """One preset: its targets, its counts per rank, and ``lora_config``, the keyword arguments of
    ``peft.LoraConfig(**…)`` at rank ``r``."""
    return {
        "lora_config": plan.lora_config_kwargs(r),
        "target_modules": plan.target_modules_list,
        "target_parameters": list(plan.target_parameters),
        "rank_pattern": {key: f"{factor}r" for key, factor in plan.rank_multipliers.items()},
        "fan_in_fan_out": plan.fan_in_fan_out,
        "layers": len(plan.layers),
        "trainable": {str(r): plan.trainable_params(r) for r in ranks},
        "notes": list(plan.notes),
    }


def show_document(analysis: Any, plans: dict[str, TargetPlan], ranks: tuple[int, ...], r: int, report: Any = None,
                  peft_differences: tuple[str, ...] = ()) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "model": analysis.model_id,
        "source": analysis.source,
        "location": analysis.location,
        "model_type": analysis.model_type,
        "architecture": analysis.architecture,
        "task": analysis.task,
        "total_params": analysis.total_params,
        "notes": list(analysis.notes),
        "layers": [
            {
                "name": l.name,
                "class": l.cls,
                "kind": l.kind,
                "role": l.role,
                "group": l.group,
                "part": l.part,
                "in_features": l.in_features,
                "out_features": l.out_features,
                "experts": l.experts,
                "params": l.params,
            }
            for l in analysis.layers
        ],
        "r": r,
        "presets": {name: plan_document(plan, ranks, r) for name, plan in plans.items()},
        "verification": None if report is None else {**asdict(report), "match": report.match},
        "peft_differences": list(peft_differences),
    }
