"""torchtune's recipe YAML: the LoRA keys of the ``model:`` section.

torchtune 0.7 builds its own modules (``torchtune/models/<family>/_component_builders.py``): LoRA goes on the
attention projections listed in ``lora_attn_modules`` (a non-empty subset of q_proj, k_proj, v_proj,
output_proj), on the whole MLP (w1, w2, w3) with ``apply_lora_to_mlp``, and on the output with
``apply_lora_to_output``, each ``LoRALinear`` with r·(in+out) parameters, as PEFT's. Its checkpoints map onto a
Hugging Face model by ``torchtune/models/convert_weights.py``: o_proj is output_proj, gate/up/down_proj are
w1/w3/w2. So only the families below, with separate q/k/v and gate/up projections, can be said, and a set
without attention (the mlp preset) gets the smallest attention projection too, a stated difference.
"""

from __future__ import annotations

from typing import Any

from modscope.errors import OptionError
from modscope.render.trainers._shared import Difference, Target, comment, differences, heading, yaml_lines

# model_type -> torchtune.models packages that build it
FAMILIES = {
    "llama": "llama2, llama3, llama3_1, llama3_2 or llama3_3",
    "mistral": "mistral",
    "gemma": "gemma",
    "gemma2": "gemma2",
    "qwen2": "qwen2 or qwen2_5",
    "qwen3": "qwen3",
}
ATTENTION = {"q_proj": "q_proj", "k_proj": "k_proj", "v_proj": "v_proj", "o_proj": "output_proj"}
MLP = ("gate_proj", "up_proj", "down_proj")
# catalog models with a torchtune model builder (torchtune/models/*/_model_builders.py, bd2a0fc, 2026-04-23)
BUILDERS = {
    "Qwen/Qwen2-0.5B": "qwen2.lora_qwen2_0_5b",
    "Qwen/Qwen2-0.5B-Instruct": "qwen2.lora_qwen2_0_5b",
    "Qwen/Qwen2.5-0.5B": "qwen2_5.lora_qwen2_5_0_5b",
    "Qwen/Qwen2.5-1.5B": "qwen2_5.lora_qwen2_5_1_5b_base",
    "Qwen/Qwen2.5-3B": "qwen2_5.lora_qwen2_5_3b",
    "Qwen/Qwen2.5-7B": "qwen2_5.lora_qwen2_5_7b_base",
    "Qwen/Qwen2.5-7B-Instruct": "qwen2_5.lora_qwen2_5_7b_instruct",
    "Qwen/Qwen2.5-14B": "qwen2_5.lora_qwen2_5_14b_base",
    "Qwen/Qwen2.5-32B": "qwen2_5.lora_qwen2_5_32b_base",
    "Qwen/Qwen2.5-72B": "qwen2_5.lora_qwen2_5_72b_base",
    "Qwen/Qwen3-0.6B": "qwen3.lora_qwen3_0_6b_instruct",
    "Qwen/Qwen3-1.7B": "qwen3.lora_qwen3_1_7b_instruct",
    "Qwen/Qwen3-4B": "qwen3.lora_qwen3_4b_instruct",
    "Qwen/Qwen3-8B": "qwen3.lora_qwen3_8b_instruct",
    "Qwen/Qwen3-14B": "qwen3.lora_qwen3_14b_instruct",
    "Qwen/Qwen3-32B": "qwen3.lora_qwen3_32b",
    "meta-llama/Llama-2-7b-hf": "llama2.lora_llama2_7b",
    "meta-llama/Llama-2-13b-hf": "llama2.lora_llama2_13b",
    "meta-llama/Llama-2-70b-hf": "llama2.lora_llama2_70b",
    "meta-llama/Llama-3.1-8B": "llama3_1.lora_llama3_1_8b",
    "meta-llama/Llama-3.1-8B-Instruct": "llama3_1.lora_llama3_1_8b",
    "meta-llama/Llama-3.1-70B": "llama3_1.lora_llama3_1_70b",
    "meta-llama/Llama-3.1-405B": "llama3_1.lora_llama3_1_405b",
    "meta-llama/Llama-3.2-1B": "llama3_2.lora_llama3_2_1b",
    "meta-llama/Llama-3.2-3B": "llama3_2.lora_llama3_2_3b",
    "mistralai/Mistral-7B-v0.1": "mistral.lora_mistral_7b",
    "google/gemma-2b": "gemma.lora_gemma_2b",
    "google/gemma-7b": "gemma.lora_gemma_7b",
    "google/gemma-2-2b": "gemma2.lora_gemma2_2b",
    "google/gemma-2-9b": "gemma2.lora_gemma2_9b",
    "google/gemma-2-27b": "gemma2.lora_gemma2_27b",
}
_WHY = {
    "missing": "torchtune adapts only attention q/k/v/output_proj and the whole MLP of its decoder layers",
    "extra": "torchtune's lora_attn_modules must name at least one attention projection (the smallest is added), "
    "and apply_lora_to_mlp adapts w1, w2 and w3 together",
    "rank": "torchtune has one rank for every layer",
}


def snippet(target: Target, to: str) -> tuple[str, tuple[Difference, ...]]:
    analysis = target.analysis
    if analysis.model_type not in FAMILIES:
        raise OptionError(
            f"torchtune has no model builder for {analysis.model_type} models that modscope can map onto "
            f"Hugging Face modules (it builds {', '.join(sorted(FAMILIES))}); export to another trainer"
        )
    layers = [l for l in target.plan.layers if l.part == "language" and l.kind == "linear"]
    attention = [hf for hf in ATTENTION if any(l.leaf == hf for l in layers)]
    mlp = any(l.leaf in MLP for l in layers)
    if not attention:
        attention = [_smallest(analysis)]
    names = [*attention, *(MLP if mlp else ())]
    found = differences(target, {"r": target.r, "lora_alpha": target.alpha, "target_modules": names}, "torchtune", _WHY)
    builder = BUILDERS.get(analysis.model_id)
    family = FAMILIES[analysis.model_type]
    notes = [] if builder else [f"merge into the model: section of a LoRA recipe of torchtune.models.{family}"]
    section: dict[str, Any] = {"_component_": f"torchtune.models.{builder}"} if builder else {}
    section.update(
        lora_attn_modules=[ATTENTION[n] for n in attention],
        apply_lora_to_mlp=mlp,
        lora_rank=target.r,
        lora_alpha=target.alpha,
    )
    body = ["model:", *yaml_lines(section, indent="  ")]
    return comment([*heading(target, "torchtune", found), *notes]) + "\n".join(body) + "\n", found


def _smallest(analysis: Any) -> str:
    """The attention projection with the fewest LoRA parameters (k_proj or v_proj under grouped-query attention)."""
    sizes = {
        hf: l.in_features + l.out_features
        for hf in ATTENTION
        for l in analysis.layers
        if l.leaf == hf and l.part == "language"
    }
    return min(sizes, key=lambda hf: (sizes[hf], list(ATTENTION).index(hf)))
