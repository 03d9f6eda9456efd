"""A PEFT config of a method other than LoRA, counted over a model: which layers PEFT wraps (PEFT's own default
targets, ``all-linear`` and ``check_target_module_exists``), what the method trains on each, what else trains
(biases, modules_to_save copies, prompt encoders), and one real injection that proves it."""

from __future__ import annotations

import copy
import inspect
from types import SimpleNamespace
from typing import Any

from modscope.advice import nothing_matched, warnings_for
from modscope.counts import AdaptedLayer, CountReport, Trained, bias_params, copy_params, role_totals
from modscope.errors import OptionError, first_line
from modscope.methods import method
from modscope.methods.base import KIND_NAMES, Method
from modscope.peft_rules import SEQ_CLS_HEADS, all_linear, saved_modules
from modscope.roles import Layer


def count_method(analysis: Any, original: Any, task_type: str, notes: list[str]) -> CountReport:
    """What ``original`` (an IA3Config, LoHaConfig, …) trains on ``analysis``'s model."""
    m: Method = method(original.peft_type)
    config = copy.deepcopy(original)
    warnings = list(notes)
    if analysis.peft_refusal:
        raise OptionError(analysis.peft_refusal)
    if task_type == "SEQ_CLS":  # PeftModelForSequenceClassification adds its head, whatever the method
        config.modules_to_save = list(config.modules_to_save or []) + list(SEQ_CLS_HEADS)
    if m.prompt is not None and not task_type:  # get_peft_model picks the PeftModel class by it
        raise OptionError(
            f"PEFT's get_peft_model needs a task_type for {m.name}: set task_type='CAUSAL_LM' (or SEQ_2_SEQ_LM, "
            "SEQ_CLS, …)"
        )
    rows: tuple[AdaptedLayer, ...] = ()
    others: tuple = ()
    excluded: list[str] = []
    if m.prompt is not None:
        others = m.prompt(analysis, config, warnings) + _left_trainable(analysis, m, warnings)
    else:
        warnings += _peft_defaults(analysis, config, m)
        if isinstance(config.target_modules, str) and config.target_modules.lower() == "all-linear":
            config.target_modules = set(all_linear(analysis, task_type))
        chosen, excluded = _matched(analysis, config, m)
        model = analysis.model()
        rows = tuple(_row(layer, config, m, model) for layer in chosen)
    saved = saved_modules(analysis.module_names, getattr(config, "modules_to_save", None))
    saved_params = sum(copy_params(analysis, s) for s in saved)
    bias = getattr(config, "bias", "none")
    biases, bias_count = bias_params(analysis, bias, rows, saved)
    adapter = sum(r.params for r in rows) + sum(o.params for o in others)
    if rows:
        view = _lora_view(original), _lora_view(config)
        warnings += warnings_for(analysis, *view, rows, excluded, saved, saved_params, bias_count, biases)
        warnings += m.traps(analysis, config, rows)
    elif saved:
        warnings.append(f"modules_to_save trains and saves a full copy of {', '.join(saved)}: {saved_params:,}")
    targets = getattr(config, "target_modules", None)
    return CountReport(
        model_id=analysis.model_id,
        method=m.name,
        target_modules=targets if isinstance(targets, str) or targets is None else tuple(sorted(targets)),
        target_parameters=(),
        rows=rows,
        roles=role_totals(rows),
        adapter_params=adapter,
        bias=bias,
        bias_params=biases,
        saved_modules=saved,
        saved_params=saved_params,
        base_params=analysis.total_params,
        trainable=adapter + biases + saved_params,
        total=analysis.total_params + adapter + saved_params - sum(o.params for o in others if not o.added),
        warnings=tuple(warnings),
        config=original,
        analysis=analysis,
        knob=m.knob,
        others=others,
    )


def _left_trainable(analysis: Any, m: Method, warnings: list[str]) -> tuple[Trained, ...]:
    """Parameters the model holds itself, outside its submodules: ``PeftModel._setup_prompt_encoder`` freezes
    only what its children hold, so these stay trainable (BLIP-2's ``query_tokens``)."""
    if m.peft_type == "ADAPTION_PROMPT":  # AdaptionPromptModel freezes every parameter but its own
        return ()
    own = dict(analysis.model().named_parameters(recurse=False))
    if not own:
        return ()
    names = ", ".join(own)
    warnings.append(
        f"{names} belong{'s' if len(own) == 1 else ''} to the model itself, not to one of its modules: PEFT's "
        f"{m.name} freezes only the modules, so {'it stays' if len(own) == 1 else 'they stay'} trainable"
    )
    return (Trained("left trainable by PEFT", sum(p.numel() for p in own.values()), names, added=False),)


def _peft_defaults(analysis: Any, config: Any, m: Method) -> list[str]:
    """Let the method's tuner fill in what it fills in on injection (``_prepare_adapter_config``: its default
    target_modules, IA3's feedforward_modules) and say what it filled in."""
    from peft.mapping import PEFT_TYPE_TO_TUNER_MAPPING

    tuner: Any = next(cls for t, cls in PEFT_TYPE_TO_TUNER_MAPPING.items() if t == m.peft_type)
    before = {key: getattr(config, key, None) for key in ("target_modules", "feedforward_modules")}
    model_config = {"model_type": analysis.model_type}
    # a staticmethod on IA3Model, a method of BaseTuner reading only the class's target_module_mapping elsewhere
    static = isinstance(inspect.getattr_static(tuner, "_prepare_adapter_config"), staticmethod)
    try:
        tuner._prepare_adapter_config(*(() if static else (tuner,)), config, model_config)
    except ValueError as exc:
        raise OptionError(
            f"{m.name}: {first_line(exc)} — PEFT has no {m.name} default for {analysis.model_type}; "
            f"name them (see `modscope show {analysis.model_id} --method {m.name.lower()}`)"
        ) from None
    out = []
    for key, was in before.items():
        now = getattr(config, key, None)
        if was is None and now is not None:
            shown = sorted(now) if isinstance(now, (set, list)) else now
            fix = (
                "set target_modules yourself" if key == "target_modules" else "give feedforward_modules=[] or your list"
            )
            out.append(
                f"no {key} given: PEFT fills in its own {m.name} default for {analysis.model_type}, {shown} ({fix})"
            )
    return out


def _matched(analysis: Any, config: Any, m: Method) -> tuple[list[Layer], list[str]]:
    """The layers PEFT wraps (its own ``check_target_module_exists``), and those ``exclude_modules`` keeps out;
    ``OptionError`` where PEFT would refuse a match, as it raises on injection."""
    from peft.tuners.tuners_utils import _ExcludedModule, check_target_module_exists

    layers = {l.name: l for l in analysis.layers if l.parameter is None}
    chosen: list[Layer] = []
    excluded: list[str] = []
    for name in analysis.module_names:
        hit = check_target_module_exists(config, name)
        if isinstance(hit, _ExcludedModule):
            excluded.append(name)
        elif hit:
            layer = layers.get(name)
            if layer is None or layer.kind not in m.kinds:
                cls = analysis.graph.attrs(name)["cls"]
                what = f"a {KIND_NAMES[layer.kind]}" if layer else f"a {cls} (not a layer)"
                raise OptionError(
                    f"PEFT's {m.name} wraps only {m.kind_names} layers and refuses {name}, {what}: "
                    "leave it out of target_modules"
                    + (
                        "; LoRA, IA3, VeRA and FourierFT take GPT-2 Conv1D layers"
                        if layer and layer.kind == "conv1d"
                        else ""
                    )
                )
            chosen.append(layer)
    if not chosen:
        raise OptionError(nothing_matched(analysis, _lora_view(config)))
    return chosen, excluded


def _row(layer: Layer, config: Any, m: Method, model: Any) -> AdaptedLayer:
    assert m.layer is not None
    counted = m.layer(layer, config, model.get_submodule(layer.module))
    return AdaptedLayer(layer, counted.size, counted.params, basis=counted.basis)


def _lora_view(config: Any) -> Any:
    """The fields the LoRA advice reads, with what this method has of them."""
    return SimpleNamespace(
        target_modules=getattr(config, "target_modules", None),
        target_parameters=(),
        fan_in_fan_out=getattr(config, "fan_in_fan_out", True),
        layers_to_transform=getattr(config, "layers_to_transform", None),
        exclude_modules=getattr(config, "exclude_modules", None),
        modules_to_save=getattr(config, "modules_to_save", None),
        bias=getattr(config, "bias", "none"),
    )


def verify_method(report: CountReport) -> Any:
    """Inject the report's config with PEFT on a fresh meta model; a VerifyReport against the prediction."""
    from modscope.inject import compare

    config = copy.deepcopy(report.config)
    label = f"{report.method} check"
    return compare(
        report.analysis.fresh_model(), config, label=label, r=0, predicted=report.trainable, expected=report.wrapped
    )
