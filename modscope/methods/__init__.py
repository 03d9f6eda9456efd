"""PEFT methods beyond LoRA, one module per method as PEFT has one ``tuners/<method>/`` each: how many parameters
the method creates on a layer (from the layer's shape and PEFT's own rules) and its traps in plain words.
LoRA, DoRA and AdaLoRA are counted by ``modscope.check``; ``counting`` runs the others over a model.

Methods PEFT has and modscope does not count are named in ``UNSUPPORTED`` with the reason, so that a config of
one is refused in one line instead of miscounted."""

from __future__ import annotations

import importlib
from typing import Any

# the name `--method` takes -> PEFT's peft_type
METHODS = {
    "lora": "LORA",
    "adalora": "ADALORA",
    "ia3": "IA3",
    "loha": "LOHA",
    "lokr": "LOKR",
    "vera": "VERA",
    "oft": "OFT",
    "boft": "BOFT",
    "fourierft": "FOURIERFT",
    "hra": "HRA",
    "miss": "MISS",
    "prompt-tuning": "PROMPT_TUNING",
    "prefix-tuning": "PREFIX_TUNING",
    "p-tuning": "P_TUNING",
    "adaption-prompt": "ADAPTION_PROMPT",
}
LORA_TYPES = frozenset({"LORA", "ADALORA"})
_MODULES = {t: name.replace("-", "_") for name, t in METHODS.items() if t not in LORA_TYPES}

_REAL_WEIGHTS = "needs the model's real weights to inject (an SVD or a mask of them), which a meta model has not"
_SHARED = "trains state shared across layers that modscope does not count yet"
UNSUPPORTED = {
    "ADAMSS": _REAL_WEIGHTS,
    "FROD": _REAL_WEIGHTS,
    "OSF": _REAL_WEIGHTS,
    "PSOFT": _REAL_WEIGHTS,
    "SHIRA": "its default mask is drawn from the model's real weights, which a meta model has not",
    "VBLORA": "its vector bank is shared across layers and counted once; " + _SHARED,
    "RANDLORA": "its shared random bases are frozen and only per-layer scales train; " + _SHARED,
    "PVERA": _SHARED,
    "UNILORA": _SHARED,
    "TINYLORA": _SHARED,
    "XLORA": "it mixes LoRA adapters trained before, which it loads from disk",
    "POLY": "it trains a router over several adapters per task; not counted yet",
    "MULTITASK_PROMPT_TUNING": "its prompts are initialised from a trained source task; not counted yet",
    "CPT": "its token masks and embeddings depend on the prompt text; not counted yet",
    "CARTRIDGE": "its KV cache prefix is initialised from text; not counted yet",
    "TRAINABLE_TOKENS": "it trains rows of tied embeddings that PEFT ties again; not counted yet",
}
_NOT_YET = "not counted yet: modscope has no formula for it"


def method(peft_type: Any) -> Any:
    """The ``Method`` of a PEFT type modscope counts (not LoRA/AdaLoRA)."""
    return importlib.import_module(f"modscope.methods.{_MODULES[str(getattr(peft_type, 'value', peft_type))]}").METHOD


def counted(peft_type: Any) -> bool:
    return str(getattr(peft_type, "value", peft_type)) in _MODULES


def refusal(peft_type: str) -> str:
    """Why modscope does not count ``peft_type``, in one line."""
    why = UNSUPPORTED.get(peft_type, _NOT_YET)
    return f"modscope does not count PEFT's {peft_type} adapters: {why}. It counts " + ", ".join(
        t for t in METHODS.values()
    )
