"""PEFT itself: the ``LoraConfig`` as Python to paste (``--to peft``), or its keyword arguments in a JSON document
(``--to json``, read as ``LoraConfig(**document["lora_config"])``). Both say the plan exactly."""

from __future__ import annotations

import json

from modscope.render.python import config_code
from modscope.render.trainers._shared import Difference, Target, comment, heading

SCHEMA_VERSION = 1


def snippet(target: Target, to: str) -> tuple[str, tuple[Difference, ...]]:
    kwargs = target.plan.lora_config_kwargs(target.r, target.alpha)
    if to == "json":
        document = {
            "schema_version": SCHEMA_VERSION,
            "model": target.analysis.model_id,
            "preset": target.plan.preset,
            "r": target.r,
            "trainable": target.trainable,
            "lora_config": kwargs,
        }
        return json.dumps(document, indent=2) + "\n", ()
    return comment(heading(target, "PEFT", ())) + "\n" + config_code(kwargs), ()
