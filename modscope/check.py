"""Count a user's own LoraConfig: what it adapts, what it trains, and what it probably did not mean.

Over modscope's layer list, with PEFT's own functions where it has them (``check_target_module_exists``,
``get_pattern_key``, ``convert_peft_config_for_transformers``, ``replicate_layers``) and the mirrors in
``peft_rules`` where it does not, so the counts come without an injection; ``verify_count`` then proves
them with one.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from modscope.advice import nothing_matched, refusals, warnings_for
from modscope.counts import AdaptedLayer, CountReport, bias_params, copy_params, role_totals
from modscope.errors import OptionError, first_line
from modscope.formulas import lora_params
from modscope.methods import LORA_TYPES
from modscope.peft_rules import SEQ_CLS_HEADS, all_linear, matches, saved_modules
from modscope.roles import Layer
from modscope.user_config import load

_TASK_OF_TYPE = {"SEQ_CLS": "sequence-classification", "CAUSAL_LM": "causal-lm", "SEQ_2_SEQ_LM": "seq2seq-lm"}


def count(source: Any, lora_config: Any, *, task: str | None = None) -> CountReport:
    """Which layers ``lora_config`` adapts on ``source`` and how many parameters PEFT will train. ``lora_config``
    may be any PEFT config (or dict with its ``peft_type``) of a method modscope counts (``modscope.methods``)."""
    from modscope.analysis import Analysis, analyze

    config, notes = load(lora_config)
    task_type = str(getattr(config.task_type, "value", config.task_type) or "")
    if isinstance(source, Analysis):
        analysis = source
    else:
        analysis = analyze(source, task=task or _TASK_OF_TYPE.get(task_type))
    if config.peft_type not in LORA_TYPES:  # IA3, LoHa, OFT, prompt tuning, …
        from modscope.methods.counting import count_method

        return count_method(analysis, config, task_type, notes)
    if not config.layer_replication:
        return _count(analysis, config, task_type, notes)
    # PEFT repeats blocks before it adapts them: count on that model, verify on the original (PEFT replicates it)
    return replace(_count(_replicated(analysis, config.layer_replication), config, task_type, notes), analysis=analysis)


def _replicated_model(analysis: Any, layer_map: list[list[int]]) -> Any:
    """A fresh meta model with its blocks repeated by PEFT's own ``replicate_layers`` (sharing base weights), as
    ``LoraModel._prepare_model`` does for ``layer_replication``. Built from a copy of the config: PEFT rewrites
    ``num_hidden_layers`` on the model's config, which the analysis shares."""
    from peft.tuners.tuners_utils import replicate_layers

    built = analysis.rebuild(copy.deepcopy(analysis.resolved.config))
    blocks = getattr(built.model.config, "num_hidden_layers", None)
    try:
        replicate_layers(built.model, [(start, end) for start, end in layer_map])
    except ValueError as exc:  # no block list where PEFT looks for one
        raise OptionError(
            f"PEFT cannot apply layer_replication to {analysis.model_type}: {first_line(exc)}; drop layer_replication"
        ) from None
    except IndexError as exc:
        raise OptionError(
            f"PEFT cannot apply layer_replication={layer_map} to {analysis.model_type}: "
            f"{first_line(exc)}; give [start, end) ranges within its {blocks} blocks"
        ) from None
    return built


def _replicated(analysis: Any, layer_map: list[list[int]]) -> Any:
    """The analysis of the model PEFT adapts under ``layer_replication``."""
    from modscope.analysis import analysis_of

    built = _replicated_model(analysis, layer_map)
    return analysis_of(replace(analysis.resolved, config=built.model.config), built)


def _count(analysis: Any, original: Any, task_type: str, notes: list[str]) -> CountReport:
    from peft import AdaLoraConfig
    from peft.tuners.tuners_utils import _ExcludedModule, check_target_module_exists

    config = copy.deepcopy(original)
    ada = isinstance(config, AdaLoraConfig)
    warnings: list[str] = list(notes)
    problems: list[str] = []
    if task_type == "SEQ_CLS":
        config.modules_to_save = list(config.modules_to_save or []) + list(SEQ_CLS_HEADS)
    _peft_rewrites(analysis, config, ada)
    if config.target_modules is None:  # PEFT fills in its default, even beside target_parameters
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as defaults

        if analysis.model_type in defaults:
            default = defaults[analysis.model_type]  # a list, or one regex string for some types
            config.target_modules = default if isinstance(default, str) else list(default)
            warnings.append(
                f"no target_modules given: PEFT adds its default for {analysis.model_type}, "
                f"{config.target_modules}; set target_modules=[] to adapt only target_parameters"
            )
        elif not config.target_parameters:
            raise OptionError(
                f"no target_modules given and PEFT has no default for {analysis.model_type}: "
                f"name them (see `modscope show {analysis.model_id}`)"
            )
    targets = config.target_modules
    if isinstance(targets, str) and targets.lower() == "all-linear":
        targets = config.target_modules = sorted(all_linear(analysis, task_type))

    layers = {l.name: l for l in analysis.layers}
    chosen: list[Layer] = []
    excluded: list[str] = []
    for name in analysis.module_names:
        hit = check_target_module_exists(config, name)  # PEFT's own test, exclusions and layer filters included
        if isinstance(hit, _ExcludedModule):
            excluded.append(name)
        elif hit:
            layer = layers.get(name)
            if layer is None or layer.parameter is not None:
                problems.append(
                    f"{name} ({analysis.graph.attrs(name)['cls']}) matches target_modules but is not a "
                    "layer LoRA can wrap; PEFT will refuse it: name its Linear children instead"
                )
            elif ada and layer.kind not in ("linear", "conv1d"):
                problems.append(f"AdaLoRA wraps only Linear and Conv1D layers, not {name} ({layer.cls})")
            else:
                chosen.append(layer)
    for name in analysis.param_names:
        if matches(list(config.target_parameters or ()), name):
            layer = layers.get(name) or _weight_of(layers.get(name.rpartition(".")[0]), name)
            if layer is None:
                problems.append(
                    f"target_parameters hits {name}, which modscope cannot count: target a 2-D or 3-D weight"
                )
            else:
                chosen.append(layer)

    rows = tuple(_row(layer, config, ada) for layer in chosen)
    if not rows and not problems:
        raise OptionError(nothing_matched(analysis, config))
    saved = saved_modules(analysis.module_names, config.modules_to_save)
    saved_params = sum(copy_params(analysis, m) for m in saved)
    biases, bias_count = bias_params(analysis, config.bias, rows, saved)
    adapter = sum(row.params for row in rows)
    warnings += warnings_for(analysis, original, config, rows, excluded, saved, saved_params, bias_count, biases)
    problems += refusals(config, rows, analysis.model_type, analysis.peft_refusal)
    return CountReport(
        model_id=analysis.model_id,
        method="AdaLoRA" if ada else "LoRA",
        target_modules=targets if isinstance(targets, str) or targets is None else tuple(sorted(targets)),
        target_parameters=tuple(sorted(config.target_parameters or ())),
        rows=rows,
        roles=role_totals(rows),
        adapter_params=adapter,
        bias=config.bias,
        bias_params=biases,
        saved_modules=saved,
        saved_params=saved_params,
        base_params=analysis.total_params,
        trainable=adapter + biases + saved_params,
        total=analysis.total_params + adapter + sum(row.frozen for row in rows) + saved_params,
        warnings=tuple(warnings),
        problems=tuple(problems),
        config=original,
        analysis=analysis,
    )


def _peft_rewrites(analysis: Any, config: Any, ada: bool) -> None:
    """On MoE types PEFT converts for transformers 5, let PEFT itself rewrite the targets, as it will on injection."""
    from modscope.presets import peft_rewritten_names

    if ada or not peft_rewritten_names(analysis.model_type):
        return
    from peft.utils.transformers_weight_conversion import convert_peft_config_for_transformers

    try:
        convert_peft_config_for_transformers(config, analysis.model(), None)
    except ValueError as exc:
        raise OptionError(f"PEFT cannot convert these targets on {analysis.model_type}: {exc}") from None


def _weight_of(layer: Layer | None, name: str) -> Layer | None:
    """A Linear's ``weight`` named in target_parameters: PEFT wraps the parameter, with the same r·(in+out)."""
    if layer is None or layer.kind not in ("linear", "conv1d") or not name.endswith(".weight"):
        return None
    return replace(layer, name=name, parameter="weight", kind="param")


def _row(layer: Layer, config: Any, ada: bool) -> AdaptedLayer:
    if ada:  # lora_A, lora_B and lora_E (r×1) at init_r; AdaLoraLayer.update_layer adds ranknum frozen
        r = config.init_r
        return AdaptedLayer(layer, r, lora_params(layer, r) + r, frozen=1)
    from peft.utils.other import get_pattern_key

    rank_pattern = config.rank_pattern or {}
    r = rank_pattern.get(get_pattern_key(list(rank_pattern), layer.name), config.r)  # as LoraModel does
    dora = layer.out_features if config.use_dora else 0  # the magnitude vector
    return AdaptedLayer(layer, r, lora_params(layer, r) + dora)


def verify_count(report: CountReport) -> Any:
    """Inject the report's config with PEFT on a fresh meta model; a VerifyReport against the prediction."""
    from modscope.inject import compare

    if report.method not in ("LoRA", "AdaLoRA"):
        from modscope.methods.counting import verify_method

        return verify_method(report)
    config = copy.deepcopy(report.config)
    r = config.init_r if report.method == "AdaLoRA" else config.r
    if config.layer_replication:
        # get_peft_model(..., low_cpu_mem_usage=True) replicates inside init_empty_weights, which registers each
        # shared weight of a repeated block anew: the total then counts them twice, and a real model (PEFT's
        # default low_cpu_mem_usage=False) does not. So PEFT's replicate_layers runs first, outside it.
        model = _replicated_model(report.analysis, config.layer_replication).model
        config.layer_replication = None
    else:
        model = report.analysis.fresh_model()
    return compare(model, config, label="check", r=r, predicted=report.trainable, expected=report.wrapped)


def as_plan(report: CountReport) -> Any:
    """The layers a user's config adapts, compiled as a preset is (the shortest targets that select exactly them),
    so that they can be handed to a trainer like one (``modscope export --target-modules``)."""
    from modscope.presets import compile_plan

    if report.problems:
        raise OptionError(report.problems[0])
    a = report.analysis
    layers = tuple(row.layer for row in report.rows)
    return compile_plan("custom", layers, a.module_names, a.param_names, a.total_params, a.model_type)
