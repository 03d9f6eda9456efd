"""What a user takes away from each view, read back the way they read it.

`show` prints a LoraConfig as Python and puts its keyword arguments in the JSON; a user pastes the one
or passes the other to ``LoraConfig(**…)``. Reading both back here lets `show` and `scan` inject exactly
what a user gets, so the count they print is proven on the handed-over text, not on an internal object.
"""

from __future__ import annotations

import json
from typing import Any

from modscope.presets import TargetPlan
from modscope.render.json import plan_document
from modscope.render.python import config_code


def pasted_config(code: str) -> Any:
    """The ``config`` that printed code defines, as a user gets it by pasting the code."""
    namespace: dict[str, Any] = {}
    exec(compile(code, "<modscope LoraConfig>", "exec"), namespace)
    return namespace["config"]


def json_config(document: dict[str, Any]) -> Any:
    """``LoraConfig(**preset["lora_config"])`` of one preset of the JSON document, after a round trip
    through JSON text."""
    from peft import LoraConfig

    return LoraConfig(**json.loads(json.dumps(document))["lora_config"])


def taken_away(plan: TargetPlan, r: int) -> Any:
    """The LoraConfig a user gets from `show`'s printed code and from its JSON at rank ``r``; both must equal
    ``plan.lora_config(r)`` field for field (``ValueError`` names the first field that differs). Returns the
    pasted one."""
    expected = plan.lora_config(r)
    pasted = pasted_config(config_code(plan.lora_config_kwargs(r)))
    for where, got in (("printed code", pasted), ("JSON lora_config", json_config(plan_document(plan, (r,), r)))):
        if got != expected:
            field = next(k for k in vars(expected) if getattr(got, k, None) != getattr(expected, k))
            raise ValueError(
                f"the {where} differs from the plan in {field}: {getattr(got, field, None)!r} "
                f"instead of {getattr(expected, field)!r}"
            )
    return pasted
