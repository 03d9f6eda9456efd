"""What PEFT's own defaults would do instead of modscope's presets: ``target_modules="all-linear"`` and
``target_modules=None`` (PEFT's per-architecture mapping). `show` explains them from a prediction (no extra
injection); `scan` and the tests hold the prediction to real injections."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modscope.errors import ModscopeError, OptionError, typed_line


def surprising(analysis: Any) -> bool:
    """Where PEFT's own all-linear / default mapping differ from the presets: MoE and multimodal models."""
    return any(l.group in ("experts", "router") or l.part != "language" for l in analysis.layers)


def peft_wrapped(analysis: Any, target_modules: str | list[str] | None, r: int = 4) -> frozenset[str]:
    """The layers PEFT wraps with its own ``target_modules`` (``"all-linear"``, or ``None`` for its mapping)."""
    from peft import LoraConfig

    from modscope.inject import inject, wrapped_layers

    model, _ = inject(analysis.fresh_model(), LoraConfig(r=r, target_modules=target_modules))
    return frozenset(wrapped_layers(model))


def peft_wrapped_predicted(analysis: Any, target_modules: str | list[str] | None) -> frozenset[str]:
    """What PEFT would wrap for its own ``target_modules``, from PEFT's resolution and matching rules without
    an injection (``modscope.check``; tests hold it to ``peft_wrapped``); raises where PEFT would refuse."""
    from modscope.check import count

    report = count(analysis, {"r": 4, "target_modules": target_modules})
    if report.problems:
        raise OptionError(report.problems[0])
    return report.wrapped


PEFT_DEFAULTS = (("all-linear", "all-linear"), (None, "qv"))  # PEFT's own target -> the preset it compares to


def peft_default_sets(
    analysis: Any, wrapped: Callable[[Any, Any], frozenset[str]] = peft_wrapped_predicted
) -> dict[str | None, frozenset[str] | str]:
    """For PEFT's ``all-linear`` and ``None``: the layers it wraps, or why it refuses (one line).
    ``wrapped`` tells how: predicted (fast, for ``show``) or ``peft_wrapped`` (a real injection)."""
    sets: dict[str | None, frozenset[str] | str] = {}
    for target, _ in PEFT_DEFAULTS:
        try:
            sets[target] = wrapped(analysis, target)
        except Exception as exc:  # PEFT's ValueError, or anything its mapping trips over
            sets[target] = str(exc) if isinstance(exc, ModscopeError) else typed_line(exc)
    return sets


def peft_differences(analysis: Any, sets: dict[str | None, frozenset[str] | str] | None = None) -> tuple[str, ...]:
    """In plain words: what PEFT's ``all-linear`` and ``target_modules=None`` would adapt instead of
    modscope's ``all-linear`` and ``qv`` presets (layers added, layers dropped, or the refusal)."""
    sets = peft_default_sets(analysis) if sets is None else sets
    lines = []
    plans = {} if analysis.peft_refusal else analysis.plans()
    for target, preset in PEFT_DEFAULTS:
        label = f'target_modules="{target}"' if target else "target_modules=None"
        theirs = sets[target]
        if isinstance(theirs, str):
            lines.append(f"{label}: PEFT refuses it ({theirs})")
            continue
        ours = plans[preset].wrapped if preset in plans else frozenset()
        added, dropped = _describe(analysis, theirs - ours), _describe(analysis, ours - theirs)
        if added:
            lines.append(f"{label}: PEFT would also adapt {added}")
        if dropped:
            lines.append(f"{label}: PEFT would leave out {dropped} (in modscope's '{preset}')")
    return tuple(lines)


def same_outcome(a: frozenset[str] | str, b: frozenset[str] | str) -> bool:
    """The same layers wrapped, or both refused (the wording of a refusal may differ)."""
    return (isinstance(a, str) and isinstance(b, str)) or a == b


def _describe(analysis: Any, names: frozenset[str]) -> str:
    """'3 vision tower layers (q_proj, k_proj), 2 router layers (gate)' for a set of wrapped names."""
    if not names:
        return ""
    by_name = {l.name: l for l in analysis.layers}
    by_name.update({f"{l.name}.weight": l for l in analysis.layers if l.kind != "param"})
    kinds: dict[str, list[str]] = {}
    for name in sorted(names):
        layer = by_name.get(name)
        kinds.setdefault(_kind_words(layer), []).append(
            ".".join(
                name.split(".")[
                    -2 if name.endswith("weight") or (layer is not None and layer.kind == "param") else -1 :
                ]
            )
        )
    parts = []
    for words, leaves in kinds.items():
        unique = list(dict.fromkeys(leaves))
        shown = ", ".join(unique[:4]) + (", …" if len(unique) > 4 else "")
        parts.append(f"{len(leaves)} {words} layer{'s' if len(leaves) > 1 else ''} ({shown})")
    return ", ".join(parts)


_GROUP_WORDS = {
    "mlp": "dense MLP",
    "shared_experts": "shared-expert",
    "experts": "expert",
    "router": "router",
    "cross_attention": "cross-attention",
    "attention": "attention",
    "head": "head",
    "embedding": "embedding",
    "other": "other",
}


def _kind_words(layer: Any) -> str:
    if layer is None:
        return "unclassified"
    if layer.part == "projector":
        return "projector"
    group = _GROUP_WORDS.get(layer.group, layer.group)
    return group if layer.part == "language" else f"{layer.part} tower {group}"
