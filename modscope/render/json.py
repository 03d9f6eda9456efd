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


def show_document(
    analysis: Any,
    plans: dict[str, TargetPlan],
    ranks: tuple[int, ...],
    r: int,
    report: Any = None,
    peft_differences: tuple[str, ...] = (),
) -> dict:
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


def check_document(report: Any, verification: Any = None) -> dict[str, Any]:
    """`modscope check --json`, in the shape of ``modscope/schemas/check.schema.json``."""
    targets = report.target_modules
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "model": report.model_id,
        "method": report.method,
        "target_modules": targets if isinstance(targets, str) or targets is None else list(targets),
        "target_parameters": list(report.target_parameters),
        "layers": [
            {
                "name": row.layer.name,
                "kind": row.layer.kind,
                "role": row.layer.role,
                "group": row.layer.group,
                "part": row.layer.part,
                "in_features": row.layer.in_features,
                "out_features": row.layer.out_features,
                "experts": row.layer.experts,
                "r": row.r,
                "params": row.params,
            }
            for row in report.rows
        ],
        "roles": [asdict(t) for t in report.roles],
        "adapter_params": report.adapter_params,
        "bias": report.bias,
        "bias_params": report.bias_params,
        "modules_to_save": list(report.saved_modules),
        "saved_params": report.saved_params,
        "base_params": report.base_params,
        "trainable": report.trainable,
        "total": report.total,
        "trainable_percent": report.trainable_percent,
        "warnings": list(report.warnings),
        "problems": list(report.problems),
        "verification": None if verification is None else {**asdict(verification), "match": verification.match},
    }
    if report.method not in ("LoRA", "AdaLoRA"):  # what other methods count by, and train beside the layers
        document.update(knob=report.knob, others=[asdict(o) for o in report.others])
        for entry, row in zip(document["layers"], report.rows, strict=True):
            entry["basis"] = row.basis
    return document


def scan_document(report: Any) -> dict[str, Any]:
    """`modscope scan --json`, in the shape of ``modscope/schemas/scan.schema.json``."""
    return {
        "schema_version": SCHEMA_VERSION,
        "versions": report.versions,
        "seconds": round(report.seconds, 1),
        "model_types": len(report.results),
        "built": len(report.built),
        "matched": len(report.matched),
        "failures_by_reason": report.failures_by_reason(),
        "results": [{**asdict(t), "built": t.built, "match": t.match} for t in report.results],
    }


def catalog_document(entries: Any) -> dict[str, Any]:
    """`modscope catalog --json`, in the shape of ``modscope/schemas/catalog.schema.json``."""
    rows = [
        {
            "id": e.id,
            "model_type": e.model_type,
            "architecture": e.architecture,
            "total_params": e.total_params,
            "card_params": (e.card_params or {}).get("text"),
            "config_url": e.config_url,
        }
        for e in entries
    ]
    return {"schema_version": SCHEMA_VERSION, "models": rows}
