"""PEFT's behaviour that modscope must know before injecting, mirrored where PEFT has no public function
for it. Each rule cites the PEFT function it mirrors and is held to PEFT by a test (tests/test_peft_rules.py),
so a PEFT upgrade that changes a rule fails loudly."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from typing import Any

from modscope.errors import OptionError

# peft.tuners.lora.model.LoraModel._check_lora_target_modules_mamba raises on these leaf names in these types
MAMBA_TYPES = frozenset({"falcon_h1", "mamba", "mamba2", "falcon_mamba", "nemotron_h"})
MAMBA_REFUSED = frozenset({"out_proj", "conv1d"})
# what PeftModelForSequenceClassification adds to modules_to_save (its classifier_module_names)
SEQ_CLS_HEADS = ("classifier", "score")


def matches(targets: str | Iterable[str] | None, key: str) -> bool:
    """``target_modules`` / ``target_parameters`` semantics: a string is a regex fullmatched against the
    whole name; a list entry matches the name itself or any ``.suffix`` of it. Mirrors the name test of
    ``peft.tuners.tuners_utils.check_target_module_exists`` (and of ``BaseTuner._inject_parameters``), kept
    here so that compiling a plan needs no peft import; `check` calls PEFT's own function."""
    if not targets:
        return False
    if isinstance(targets, str):
        return re.fullmatch(targets, key) is not None
    return any(key == t or key.endswith(f".{t}") for t in targets)


def all_linear(analysis: Any, task_type: str) -> set[str]:
    """``target_modules="all-linear"``: every Linear and Conv1D but the output layer (or the SEQ_CLS head).
    Mirrors ``peft.tuners.tuners_utils._maybe_include_all_linear_layers``."""
    names = {l.name for l in analysis.layers if l.kind in ("linear", "conv1d") and l.parameter is None}
    # get_output_embeddings(), not the lm_head role: a vocabulary projection the model does not report stays in
    outputs = {analysis.graph.output_embeddings} - {None}
    if not outputs and task_type == "SEQ_CLS":
        outputs = set(SEQ_CLS_HEADS[:1] if "classifier" in analysis.module_names else ["score"])
    return names - outputs


def saved_modules(module_names: Any, modules_to_save: Any) -> tuple[str, ...]:
    """The modules ``modules_to_save`` copies: every module whose name ends with an entry (no dot needed),
    outermost first. Mirrors ``peft.utils.other._set_trainable``, which also wraps modules nested in a copied
    one; those train nothing beyond the outer copy, so only the outermost are counted."""
    saved: list[str] = []
    for name in module_names:
        if any(name.endswith(m) for m in modules_to_save or ()) and not any(name.startswith(s + ".") for s in saved):
            saved.append(name)
    return tuple(saved)


@cache
def builds_conv(module_cls: type) -> bool:
    """Whether PEFT can wrap a convolution of this class: ``lora.layer._ConvNd.update_layer`` builds the LoRA
    factors as ``type(base_layer)(in, r, kernel_size, stride, padding, bias=False)``, which a subclass with an
    ``__init__`` of its own (NemotronAsr's causal conv) refuses."""
    import inspect

    try:
        inspect.signature(module_cls).bind(1, 1, 1, 1, 0, bias=False)
    except (TypeError, ValueError):
        return False
    return True


def model_refusal(model: Any) -> str | None:
    """Why ``get_peft_model`` fails on ``model`` whatever the targets, or None.

    Mirrors ``peft.utils.other._get_module_names_tied_with_embedding``, which every injection calls
    (``BaseTuner._check_tied_modules``): on a model whose config does not set ``tie_word_embeddings=False``
    and whose ``_tied_weights_keys`` is a dict, it asks ``get_input_embeddings()``, which some transformers
    classes do not implement. Mirrored rather than called so that an analysis needs no peft import."""
    config = getattr(model, "config", None)
    if getattr(config, "tie_word_embeddings", None) is False:
        return None
    if not isinstance(getattr(model, "_tied_weights_keys", None), dict):
        return None
    try:
        model.get_input_embeddings()
    except NotImplementedError as exc:
        from modscope.errors import first_line

        return (
            f"PEFT cannot adapt {type(model).__name__}: it asks the model for its input embeddings, and "
            f"transformers says: {first_line(exc)}"
        )
    return None


# LoraConfig fields whose values PEFT takes on trust and fails on later (or counts wrongly)
CHECKED_FIELDS = (
    "r",
    "init_r",
    "target_r",
    "total_step",
    "lora_alpha",
    "lora_dropout",
    "target_modules",
    "exclude_modules",
    "target_parameters",
    "modules_to_save",
    "rank_pattern",
    "alpha_pattern",
    "layers_to_transform",
    "layers_pattern",
    "bias",
    "use_dora",
    "fan_in_fan_out",
    "layer_replication",
)


def check_values(values: dict[str, Any], ada: bool) -> None:
    """Values PEFT takes on trust and fails on later, or counts wrongly: each is an OptionError saying what fits.
    Regexes must compile (PEFT fullmatches a target_modules string; pattern keys, layers_pattern and modules_to_save
    entries go into its regexes)."""

    def fail(key: str, wanted: str) -> None:
        raise OptionError(f"{key} must be {wanted}, not {values[key]!r}")

    def regex(key: str, pattern: str) -> None:
        try:
            re.compile(pattern)
        except re.error as exc:
            fix = (
                "name the modules in a list such as ['q_proj', 'v_proj']"
                if key.endswith("_modules")
                else "escape its special characters"
            )
            raise OptionError(f"{key} {pattern!r} is not a valid regex ({exc}): fix it, or {fix}") from None

    def strings(value: Any) -> bool:
        return isinstance(value, (list, tuple, set)) and all(isinstance(v, str) for v in value)

    for key in ("init_r", "target_r", "total_step") if ada else ("r",):
        if key in values and not (key == "total_step" and values[key] is None) and not _int_at_least(values[key], 1):
            fail(key, "a positive integer such as 8")
    for key in ("lora_alpha", "lora_dropout"):
        if key in values and not _number(values[key]):
            fail(key, "a number")
    for key in ("target_modules", "exclude_modules"):
        value = values.get(key)
        if isinstance(value, str):
            regex(key, value)
        elif value is not None and not strings(value):
            fail(key, "a list of module names, or one regex string")
    for key in ("target_parameters", "modules_to_save"):
        if values.get(key) is not None and (isinstance(values[key], str) or not strings(values[key])):
            fail(
                key,
                "a list of names such as ['lm_head']"
                if key == "modules_to_save"
                else "a list of parameter names such as ['mlp.experts.gate_up_proj']",
            )
        for name in values.get(key) or () if key == "modules_to_save" else ():
            regex("modules_to_save entry", name)
    for key, wanted in (("rank_pattern", "a positive integer rank"), ("alpha_pattern", "a number")):
        value = values.get(key)
        if value is None or (ada and key == "rank_pattern"):  # AdaLoRA saves its learned masks here
            continue
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            fail(key, 'a mapping of names or regexes to values, such as {"down_proj": 16}')
        for name, v in value.items():
            regex(f"{key} key", name)
            if not (_int_at_least(v, 1) if key == "rank_pattern" else _number(v)):
                raise OptionError(f"{key}[{name!r}] must be {wanted}, not {v!r}")
    layers = values.get("layers_to_transform")
    if layers is not None and not (
        _int_at_least(layers, 0) or (isinstance(layers, list) and all(_int_at_least(i, 0) for i in layers))
    ):
        fail("layers_to_transform", "a block index or a list of them, such as [0, 1]")
    pattern = values.get("layers_pattern")
    if pattern is not None and not (isinstance(pattern, str) or strings(pattern)):
        fail("layers_pattern", "the name of the block list, such as 'layers', or a list of such names")
    for name in [pattern] if isinstance(pattern, str) else pattern or ():
        regex("layers_pattern", name)
    if "bias" in values and values["bias"] not in ("none", "all", "lora_only"):
        fail("bias", "'none', 'all' or 'lora_only'")
    for key in ("use_dora", "fan_in_fan_out"):
        if key in values and not isinstance(values[key], bool):
            fail(key, "true or false")
    spans = values.get("layer_replication")
    if spans is not None and not (
        isinstance(spans, list)
        and all(isinstance(s, (list, tuple)) and len(s) == 2 and all(_int_at_least(i, 0) for i in s) for s in spans)
    ):
        fail("layer_replication", "a list of [start, end) block ranges, such as [[0, 16], [8, 24]]")


def _int_at_least(value: Any, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
