"""modscope: which LoRA ``target_modules`` to use for a transformers model, and what each rank trains.

Public API (heavy imports are deferred until first use)::

    a = modscope.analyze("Qwen/Qwen2-0.5B")
    s = a.suggest("all-linear")
    s.target_modules, s.trainable_params(8), s.lora_config(r=16)
    modscope.verify(a, "all-linear", r=8)
    modscope.memory(a, preset="all-linear", r=8, batch=4, seq=2048, gpu="24GiB")
"""

from __future__ import annotations

from typing import Any

from modscope.errors import (
    BuildError,
    ConfigError,
    MissingExtraError,
    ModelNotFoundError,
    ModscopeError,
    OptionError,
    RemoteCodeError,
)

__version__ = "0.1.0"

__all__ = [
    "Analysis",
    "BuildError",
    "ConfigError",
    "CountReport",
    "MemoryReport",
    "MissingExtraError",
    "ModelNotFoundError",
    "ModscopeError",
    "OptionError",
    "RemoteCodeError",
    "TargetPlan",
    "VerifyReport",
    "analyze",
    "count",
    "memory",
    "verify",
]

_LAZY = {
    "analyze": "modscope.analysis",
    "verify": "modscope.analysis",
    "Analysis": "modscope.analysis",
    "TargetPlan": "modscope.presets",
    "count": "modscope.check",
    "CountReport": "modscope.check",
    "VerifyReport": "modscope.inject",
    "memory": "modscope.simulate",
    "MemoryReport": "modscope.simulate",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'modscope' has no attribute {name!r}")
