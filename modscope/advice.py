"""What a user's LoRA config probably did not mean, in plain words: the warnings and problems of a count,
and, when nothing matched, the model's adaptable names by role, closest to what was asked first."""

from __future__ import annotations

import difflib
import re
from typing import Any

from modscope.peft_rules import MAMBA_REFUSED, MAMBA_TYPES, matches


def _close_names(analysis: Any, wanted: str, params: bool = False) -> list[str]:
    """The real names nearest to ``wanted``: leaf names, or dotted suffixes of the same depth."""
    from modscope.names import name_hint

    depth = wanted.count(".") + 1
    names = analysis.param_names if params else [l.name for l in analysis.layers if l.parameter is None]
    candidates = sorted({".".join(n.split(".")[-depth:]) for n in names})
    close = difflib.get_close_matches(wanted, candidates, n=3, cutoff=0.4)
    # what the name means, found under this model's own name (q_proj -> BERT's query)
    role = None if params else name_hint(wanted.rpartition(".")[2])
    same_role = [l.leaf for l in analysis.layers if role and l.role == role and l.part == "language"]
    return list(dict.fromkeys(same_role[:1] + close))


def nothing_matched(analysis: Any, config: Any) -> str:
    """What was given (a list or a regex), and the model's adaptable names by role, closest to it first."""
    targets = config.target_modules
    if isinstance(targets, str):
        modules = [l.name for l in analysis.layers if l.parameter is None]
        example = next((name for name in modules if re.search(r"\.\d+\.", name)), modules[0] if modules else "")
        what = (
            f"target_modules={targets!r} (one string: a regex PEFT fullmatches against whole module names "
            f"such as {example})"
        )
        words = re.findall(r"[A-Za-z_]\w*", targets)
    else:
        what = f"target_modules={sorted(targets or [])!r} (a list: an entry matches a module's name or its end)"
        words = list(targets or [])
    if config.target_parameters:
        what += f", target_parameters={list(config.target_parameters)}"
    limits = [
        f"{key}={getattr(config, key)!r}"
        for key in ("layers_to_transform", "exclude_modules")
        if getattr(config, key) not in (None, [], set())
    ]
    hints = [h for h in [_list_hint(analysis, targets)] if h]
    close = [c for t in config.target_parameters or () for c in _close_names(analysis, t, params=True)]
    if close:
        hints.append(f"closest parameters: {', '.join(dict.fromkeys(close))}")
    return (
        f"{what}{' with ' + ' and '.join(limits) if limits else ''} matches nothing in {analysis.model_id}; "
        + "".join(h + "; " for h in hints)
        + f"its adaptable layers by role: {_by_role(analysis, words)}"
    )


_SHOWN = 15  # adaptable names listed when nothing matched; all of them up to this many


def _by_role(analysis: Any, asked: list[str]) -> str:
    """The model's adaptable leaf names grouped by role (``attention: q_proj (q), …; mlp: …``), the closest to
    ``asked`` first: by spelling, or by meaning (``q_proj`` finds BERT's ``query``)."""
    from modscope.names import name_hint

    words = [w.rpartition(".")[2] for w in asked]
    meant = {name_hint(w) for w in words} - {None}
    entries = dict.fromkeys(  # (group, leaf, role), in the model's order
        (l.group.replace("_", " ") if l.part == "language" else f"{l.part} {l.group}", l.leaf, l.role)
        for l in analysis.layers
        if l.parameter is None
    )

    def closeness(entry: tuple[str, str, str]) -> float:
        _, leaf, role = entry
        spelled = max((difflib.SequenceMatcher(None, w, leaf).ratio() for w in words), default=0.0)
        return spelled + (role in meant)

    ranked = sorted(entries, key=closeness, reverse=True)
    groups: dict[str, list[str]] = {}
    for group, leaf, role in ranked[:_SHOWN]:
        groups.setdefault(group, []).append(leaf if leaf == role else f"{leaf} ({role})")
    listing = "; ".join(f"{group}: {', '.join(leaves)}" for group, leaves in groups.items())
    more = len(ranked) - _SHOWN
    return (listing or "none that LoRA wraps") + (
        f"; and {more} more (see `modscope show {analysis.model_id}`)" if more > 0 else ""
    )


def _list_hint(analysis: Any, targets: Any) -> str | None:
    """A string target that is really leaf names: PEFT fullmatches it against whole module names."""
    if not isinstance(targets, str):
        return None
    words = [w for w in re.split(r"[\s,'\"\[\]|()]+", targets) if w]
    leaves = {l.leaf for l in analysis.layers}
    if words and all(w in leaves for w in words):
        return f"{targets!r} looks like a list of leaf names: write target_modules={words!r} to adapt them"
    return None


def warnings_for(
    analysis: Any,
    original: Any,
    config: Any,
    rows: tuple[Any, ...],
    excluded: list[str],
    saved: tuple[str, ...],
    saved_params: int,
    bias_count: int,
    bias_params: int,
) -> list[str]:
    out: list[str] = []
    targets = original.target_modules
    if isinstance(targets, str) and targets.lower() != "all-linear":
        out.append(
            f"target_modules is one string, so PEFT reads it as a regex that must match whole module "
            f"names ({len([r for r in rows if r.layer.parameter is None])} layers match)"
        )
        if hint := _list_hint(analysis, targets):
            out.append(hint)
    elif targets is not None and not isinstance(targets, str):
        rewritten = _rewritten_entries(config, original)
        for t in sorted(targets):
            if not any(matches([t], n) for n in analysis.module_names) and t not in rewritten:
                close = _close_names(analysis, t)
                out.append(
                    f"target_modules entry {t!r} matches nothing"
                    + (f"; did you mean {', '.join(close)}?" if close else "")
                )
    for t in sorted(original.target_parameters or ()):
        if not any(matches([t], p) for p in analysis.param_names):
            close = _close_names(analysis, t, params=True)
            out.append(
                f"target_parameters entry {t!r} matches nothing"
                + (f"; did you mean {', '.join(close)}?" if close else "")
            )
    for what, picked in (
        ("heads (lm_head, classifier, pooler)", [r for r in rows if r.layer.group == "head"]),
        ("the input/output embeddings", [r for r in rows if r.layer.role == "embed"]),
        ("the MoE router", [r for r in rows if r.layer.group == "router"]),
        ("the vision/audio tower", [r for r in rows if r.layer.part in ("vision", "audio")]),
        ("the multimodal projector", [r for r in rows if r.layer.part == "projector"]),
    ):
        if picked:
            out.append(f"it also adapts {what}: {few(r.layer.name for r in picked)} — check this is meant")
    conv1d = [r for r in rows if r.layer.kind == "conv1d"]
    if conv1d and not config.fan_in_fan_out:
        out.append(
            "these layers are GPT-2 style Conv1D: set fan_in_fan_out=True (PEFT turns it on itself, with a warning)"
        )
    if excluded and config.exclude_modules:
        out.append(f"exclude_modules keeps {len(excluded)} module(s) out, e.g. {excluded[0]}")
    if config.layers_to_transform is not None and isinstance(config.target_modules, str):
        out.append("layers_to_transform is ignored when target_modules is a regex string")
    if saved:
        out.append(
            f"modules_to_save trains and saves a full copy of {few(saved)}: {saved_params:,} parameters, "
            "counted in both trainable and total"
        )
    elif config.modules_to_save:
        out.append(f"modules_to_save {list(config.modules_to_save)} matches no module")
    if bias_count:
        what = (
            "every bias in the model, LayerNorm biases included"
            if config.bias == "all"
            else "the biases of the adapted layers"
        )
        out.append(f"bias={config.bias!r} trains {what}: {bias_count} tensor(s), {bias_params:,} parameters")
    return out


def _rewritten_entries(config: Any, original: Any) -> set[str]:
    """Entries PEFT moved from target_modules into target_parameters (MoE conversion)."""
    before = set(original.target_modules or ()) if not isinstance(original.target_modules, str) else set()
    after = set(config.target_modules or ()) if not isinstance(config.target_modules, str) else set()
    return before - after


def refusals(config: Any, rows: tuple[Any, ...], model_type: str, whole_model: str | None) -> list[str]:
    params = [r for r in rows if r.layer.kind == "param"]
    out = [whole_model] if whole_model else []
    refused = sorted(
        {r.layer.leaf for r in rows if r.layer.leaf in MAMBA_REFUSED} if model_type in MAMBA_TYPES else set()
    )
    if refused:
        out.append(f"PEFT refuses LoRA on {', '.join(refused)} in {model_type} (Mamba) models; leave them out")
    dropout = getattr(config, "lora_dropout", 0.0)
    if params and dropout:
        out.append(
            f"lora_dropout={dropout} with target_parameters: PEFT refuses dropout on "
            "parameter targets; set lora_dropout=0"
        )
    if params and getattr(config, "use_dora", False):
        out.append("use_dora=True with target_parameters: PEFT has no DoRA for parameter targets; drop one")
    if params and getattr(config, "fan_in_fan_out", False):  # lora.ParamWrapper refuses it, on real tensors too
        out.append(
            "fan_in_fan_out=True with target_parameters: PEFT refuses it on parameter targets (a Conv1D "
            "weight named there needs none); set fan_in_fan_out=False"
        )
    return out


def few(names: Any, n: int = 3) -> str:
    names = list(names)
    shown = ", ".join(names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")
