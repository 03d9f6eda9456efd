"""Unsloth's Python: ``FastLanguageModel.get_peft_model(model, …)``.

How Unsloth 2026.8 reads it (``FastLlamaModel.get_peft_model`` in ``unsloth/models/llama.py``,
``FastBaseModel.get_peft_model`` in ``unsloth/models/vision.py``): the fast path iterates ``target_modules``
(a string would be split into its characters), allows only ``lm_head`` and ``embed_tokens`` in
``modules_to_save`` and sets ``task_type`` SEQ_CLS on a model whose class says Classification (PEFT then trains
its head in full); ``FastModel.get_peft_model`` hands a string to PEFT as one regex, and CAUSAL_LM. Both fill
``target_parameters`` with the MoE experts when it is None, and pass other keyword arguments (``rank_pattern``,
``alpha_pattern``, ``fan_in_fan_out``) to ``LoraConfig``. So a list goes to the fast path, a regex or a
classifier's targets to ``FastModel``, and ``target_parameters`` is always given: every plan is said exactly.
"""

from __future__ import annotations

from modscope.render.python import call_code
from modscope.render.trainers._shared import Difference, Target, comment, heading


def snippet(target: Target, to: str) -> tuple[str, tuple[Difference, ...]]:
    kwargs = target.plan.lora_config_kwargs(target.r, target.alpha)
    kwargs["target_parameters"] = kwargs.get("target_parameters", [])
    notes = []
    if not kwargs["target_parameters"] and any(l.group == "experts" for l in target.analysis.layers):
        notes.append("target_parameters=[]: with None, Unsloth would add the MoE experts")
    fast = "FastLanguageModel"
    if isinstance(kwargs["target_modules"], str):
        fast = "FastModel"
        notes.append("FastModel: FastLanguageModel would split a regex string into its characters")
    elif "Classification" in target.analysis.architecture:
        fast = "FastModel"
        notes.append("FastModel: FastLanguageModel would set task_type SEQ_CLS here and train the head in full")
    code = f"from unsloth import {fast}\n\n" + call_code(f"model = {fast}.get_peft_model", kwargs, ("model",))
    return comment([*heading(target, "Unsloth", ()), *notes]) + "\n" + code, ()
