"""Adaption prompt (LLaMA-Adapter): in each of the last ``adapter_layers`` attention modules, a learned prompt of
``adapter_len`` × hidden size and one zero-initialised gate, as ``peft.tuners.adaption_prompt.layer.
AdaptedAttention`` creates them. PEFT supports it only on the model types of its ``TRANSFORMERS_MODEL_CONFIG``
(``prepare_config`` refuses the others), and finds the attention modules by the name that mapping gives."""

from __future__ import annotations

from typing import Any

from modscope.counts import Trained
from modscope.errors import OptionError
from modscope.methods.base import Method


def _prompt(analysis: Any, config: Any, warnings: list[str]) -> tuple[Trained, ...]:
    from peft.tuners.adaption_prompt.config import TRANSFORMERS_MODEL_CONFIG, prepare_config

    if analysis.model_type not in TRANSFORMERS_MODEL_CONFIG:
        raise OptionError(
            f"PEFT's adaption prompt supports only {', '.join(sorted(TRANSFORMERS_MODEL_CONFIG))} models, not "
            f"{analysis.model_type}; use prompt tuning or prefix tuning there"
        )
    if not config.adapter_len or not config.adapter_layers:
        raise OptionError("adaption prompt: set adapter_len and adapter_layers (PEFT has no default for them)")
    model = analysis.model()
    prepare_config(config, model)
    attentions = [n for n in analysis.module_names if n.endswith(f".{config.target_modules}")]
    if len(attentions) < config.adapter_layers:
        raise OptionError(
            f"adapter_layers={config.adapter_layers} but {analysis.model_id} has {len(attentions)} "
            f"'{config.target_modules}' modules; PEFT refuses it"
        )
    hidden = model.get_submodule(attentions[-1]).config.hidden_size
    layers = config.adapter_layers
    warnings.append(
        f"adaption prompts go into the last {layers} of {len(attentions)} '{config.target_modules}' modules "
        f"({attentions[-layers]} … {attentions[-1]})"
    )
    return (
        Trained(
            "adaption prompts and gates",
            layers * (config.adapter_len * hidden + 1),
            f"{layers} layers × ({config.adapter_len} × {hidden} + 1 gate)",
        ),
    )


METHOD = Method(
    peft_type="ADAPTION_PROMPT",
    name="adaption prompt",
    config_class="AdaptionPromptConfig",
    knob="adapter_len",
    sizes=(5, 10, 20, 40),
    prompt=_prompt,
    show_fields=(("adapter_layers", "all"),),
)
